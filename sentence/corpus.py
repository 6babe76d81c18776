"""The ordered book corpus: Gutenberg bodies -> sentences (blingfire) -> word-level token ids, cached.

Quick-thought learns from which sentence follows which, so order inside a book is kept
exactly and whole books (not random sentences) are held out for validation. The processed
corpus is one ``.npz`` of flat arrays (token ids, sentence offsets, book offsets, the raw
sentence text for sentence-transformers, the tokenizer as JSON), written atomically under
``cache_dir()`` and keyed by the input files and the corpus settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.io import atomic_write_bytes
from common.paths import cache_dir, data_dir
from sentence.config import CorpusConfig

START_MARK = "*** START OF"
END_MARK = "*** END OF"
PAD_ID, UNK_ID = 0, 1
SPECIAL_TOKENS = ["[PAD]", "[UNK]"]
_CACHE_VERSION = 1


def books_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "books" / "gutenberg"


def find_books(root: Path | None = None) -> list[Path]:
    """The staged book files in a fixed order, or a ``UserError`` naming where they were expected."""
    folder = books_dir(root)
    books = sorted(folder.glob("*.txt"))
    if not books:
        raise UserError(
            f"no books found: expected {folder}/*.txt (Project Gutenberg plain text); "
            "set DATA_DIR to the folder holding books/gutenberg/"
        )
    return books


def strip_gutenberg(text: str) -> str:
    """The body between the ``*** START OF`` and ``*** END OF`` lines (whole text when unmarked)."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(START_MARK)), -1)
    end = next((i for i, line in enumerate(lines) if i > start and line.lstrip().startswith(END_MARK)), len(lines))
    return "\n".join(lines[start + 1 : end])


def split_sentences(body: str) -> list[str]:
    """Sentences in reading order; blingfire joins hard-wrapped lines and breaks at blank lines."""
    import blingfire

    body = body.replace("\r\n", "\n").replace("_", " ")  # Gutenberg marks italics with underscores
    return [s for s in (s.strip() for s in blingfire.text_to_sentences(body).split("\n")) if s]


def build_tokenizer():
    """An untrained word-level tokenizer: NFKC, lower case, words and punctuation runs as tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def train_tokenizer(sentences: list[str], vocab_size: int):
    """Word-level vocabulary of the ``vocab_size`` most frequent tokens of ``sentences``."""
    from tokenizers import trainers

    tokenizer = build_tokenizer()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(sentences, trainer=trainer, length=len(sentences))
    return tokenizer


def encode(tokenizer, sentences: list[str], max_tokens: int | None = None) -> list[list[int]]:
    """Token ids of each sentence (Rust, multi-threaded), truncated to ``max_tokens``."""
    ids = [enc.ids for enc in tokenizer.encode_batch_fast(sentences, add_special_tokens=False)]
    return ids if max_tokens is None else [x[:max_tokens] for x in ids]


@dataclass
class Corpus:
    """Flat arrays: sentence ``k`` is ``tokens[offsets[k]:offsets[k + 1]]``; book ``b`` owns
    sentences ``book_offsets[b]:book_offsets[b + 1]``; ``is_val[b]`` marks held-out books."""

    tokens: np.ndarray
    offsets: np.ndarray
    book_offsets: np.ndarray
    book_names: list[str]
    is_val: np.ndarray
    text: np.ndarray  # utf-8 bytes of all sentences
    text_offsets: np.ndarray
    tokenizer_json: str

    @property
    def num_sentences(self) -> int:
        return len(self.offsets) - 1

    def tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.tokenizer_json)

    def sentence_text(self, index: int) -> str:
        return bytes(self.text[self.text_offsets[index] : self.text_offsets[index + 1]]).decode()

    def split_ranges(self, val: bool, max_books: int = 0) -> list[tuple[int, int]]:
        """Sentence ranges ``[start, end)`` of the validation or training books (first ``max_books``)."""
        books = [b for b in range(len(self.book_names)) if bool(self.is_val[b]) == val]
        if max_books:
            books = books[:max_books]
        return [(int(self.book_offsets[b]), int(self.book_offsets[b + 1])) for b in books]


def _cache_key(books: list[Path], config: CorpusConfig) -> str:
    digest = hashlib.sha256(json.dumps({"v": _CACHE_VERSION, "config": asdict(config)}, sort_keys=True).encode())
    for book in books:
        stat = book.stat()
        digest.update(f"{book.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _validation_mask(num_books: int, config: CorpusConfig) -> np.ndarray:
    if not 0 < config.val_books < num_books:
        raise UserError(f"the corpus has {num_books} usable book(s), but the profile holds out {config.val_books} for "
                        f"validation and trains on the rest; add books to {books_dir()} (DATA_DIR)")
    chosen = np.random.default_rng(config.split_seed).choice(num_books, size=config.val_books, replace=False)
    mask = np.zeros(num_books, dtype=bool)
    mask[chosen] = True
    return mask


def _flatten(rows: list[list[int]] | list[bytes], dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if rows and isinstance(rows[0], bytes):
        flat = np.frombuffer(b"".join(rows), dtype=np.uint8)
    else:
        flat = np.fromiter((t for r in rows for t in r), dtype=dtype, count=int(offsets[-1]))
    return flat, offsets


def _text_books(books: list[Path]) -> dict[Path, str]:
    """The text of every book; a binary file (NUL bytes: an image, an archive, UTF-16) is skipped with a warning."""
    texts = {}
    for book in books:
        data = book.read_bytes()
        if b"\x00" in data:
            print(f"warning: {book} is not plain text (NUL bytes); skipping it", file=sys.stderr)
            continue
        texts[book] = data.decode("utf-8", errors="replace")
    return texts


def build_corpus(books: list[Path], config: CorpusConfig) -> Corpus:
    """Split every text book, train the vocabulary on the training books, encode everything."""
    texts = _text_books(books)
    books = list(texts)
    is_val = _validation_mask(len(books), config)
    per_book = [split_sentences(strip_gutenberg(texts[b])) for b in books]
    train_sentences = [s for b, sents in enumerate(per_book) if not is_val[b] for s in sents]
    tokenizer = train_tokenizer(train_sentences, config.vocab_size)
    sentences: list[str] = []
    book_offsets = [0]
    all_ids: list[list[int]] = []
    for sents in per_book:
        ids = encode(tokenizer, sents)
        keep = [k for k, x in enumerate(ids) if len(x) >= config.min_tokens]
        sentences.extend(sents[k] for k in keep)
        all_ids.extend(ids[k] for k in keep)
        book_offsets.append(len(sentences))
    dtype = np.uint16 if tokenizer.get_vocab_size() <= np.iinfo(np.uint16).max else np.int32
    tokens, offsets = _flatten(all_ids, dtype)
    text, text_offsets = _flatten([s.encode() for s in sentences], np.uint8)
    return Corpus(
        tokens=tokens,
        offsets=offsets,
        book_offsets=np.asarray(book_offsets, dtype=np.int64),
        book_names=[b.stem for b in books],
        is_val=is_val,
        text=text,
        text_offsets=text_offsets,
        tokenizer_json=tokenizer.to_str(),
    )


def _save(path: Path, corpus: Corpus) -> None:
    buffer = io.BytesIO()
    arrays = {k: v for k, v in vars(corpus).items() if isinstance(v, np.ndarray)}
    np.savez(buffer, **arrays, book_names=np.asarray(corpus.book_names), tokenizer_json=np.asarray(corpus.tokenizer_json))
    atomic_write_bytes(path, buffer.getvalue())


def _load(path: Path) -> Corpus:
    with np.load(path, allow_pickle=False) as data:
        fields = {k: data[k] for k in data.files}
    fields["book_names"] = [str(x) for x in fields["book_names"]]
    fields["tokenizer_json"] = str(fields["tokenizer_json"])
    return Corpus(**fields)


def load_corpus(config: CorpusConfig, root: Path | None = None, *, verbose: bool = True) -> Corpus:
    """The processed corpus from the cache, building and caching it on the first call."""
    books = find_books(root)
    path = cache_dir() / "sentence" / f"corpus-{_cache_key(books, config)}.npz"
    if path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # a truncated or foreign cache is rebuilt, never trusted
    start = time.perf_counter()
    corpus = build_corpus(books, config)
    _save(path, corpus)
    if verbose:
        print(
            f"corpus: {len(books)} books, {corpus.num_sentences} sentences, {len(corpus.tokens)} tokens, "
            f"vocab {config.vocab_size}, built in {time.perf_counter() - start:.1f} s -> {path}",
            flush=True,
        )
    return corpus
