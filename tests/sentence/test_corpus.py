"""Corpus: Gutenberg header/licence removal, sentence order, held-out books, the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from sentence.config import CorpusConfig
from sentence.corpus import find_books, load_corpus, split_sentences, strip_gutenberg
from tests.sentence.conftest import book_sentences, write_book


def test_strip_gutenberg_keeps_only_the_body(tmp_path: Path) -> None:
    text = write_book(tmp_path, "pg1", ["First real sentence.", "Second one."]).read_text()
    body = strip_gutenberg(text)
    assert "First real sentence." in body and "Second one." in body
    assert "Licence" not in body and "licence" not in body and "***" not in body and "Donations" not in body


def test_sentences_keep_reading_order_across_wrapped_lines(tmp_path: Path) -> None:
    sentences = book_sentences(7, 12)
    text = write_book(tmp_path, "pg7", sentences).read_text()
    assert split_sentences(strip_gutenberg(text)) == sentences


def test_corpus_books_order_and_held_out_split(tiny_data: Path) -> None:
    corpus = load_corpus(CorpusConfig(vocab_size=100, val_books=1))
    assert corpus.num_sentences == 4 * 30
    assert corpus.book_offsets.tolist() == [0, 30, 60, 90, 120]
    assert int(corpus.is_val.sum()) == 1
    for book in range(4):
        start = int(corpus.book_offsets[book])
        assert [corpus.sentence_text(start + k) for k in range(30)] == book_sentences(book, 30)
    tokenizer = corpus.tokenizer()
    ids = corpus.tokens[corpus.offsets[3] : corpus.offsets[4]].tolist()
    assert tokenizer.decode(ids) == "book 0 says that sentence number 3 is here ."
    val_start, val_end = corpus.split_ranges(val=True)[0]
    assert val_end - val_start == 30


def test_corpus_is_cached_and_reloaded_identically(tiny_data: Path, tmp_path: Path) -> None:
    first = load_corpus(CorpusConfig(vocab_size=100, val_books=1))
    cached = list((tmp_path / "cache" / "sentence").glob("corpus-*.npz"))
    assert len(cached) == 1
    second = load_corpus(CorpusConfig(vocab_size=100, val_books=1), verbose=False)
    np.testing.assert_array_equal(first.tokens, second.tokens)
    assert first.tokenizer_json == second.tokenizer_json and first.book_names == second.book_names
    load_corpus(CorpusConfig(vocab_size=50, val_books=1), verbose=False)
    assert len(list((tmp_path / "cache" / "sentence").glob("corpus-*.npz"))) == 2  # settings are part of the key


def test_missing_books_name_the_expected_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"books/gutenberg/\*\.txt"):
        find_books(tmp_path)
