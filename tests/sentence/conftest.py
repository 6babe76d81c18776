"""Fixtures: a tiny synthetic Gutenberg corpus in tmp_path and a private cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.paths import REPO_ROOT

STAGED = REPO_ROOT.parent / "shared" / "data"

HEADER = "The Project Gutenberg eBook of {title}\n\nLicence text that must go.\n\n*** START OF THE PROJECT GUTENBERG EBOOK {title} ***\n"
FOOTER = "\n*** END OF THE PROJECT GUTENBERG EBOOK {title} ***\n\nMore licence. Donations.\n"


def write_book(folder: Path, name: str, sentences: list[str]) -> Path:
    """A Gutenberg-style file: header, hard-wrapped body (two sentences per paragraph), licence footer."""
    paragraphs = []
    for i in range(0, len(sentences), 2):
        words = " ".join(sentences[i : i + 2]).split()
        paragraphs.append("\n".join(" ".join(words[j : j + 7]) for j in range(0, len(words), 7)))
    path = folder / f"{name}.txt"
    path.write_text(HEADER.format(title=name) + "\n\n".join(paragraphs) + FOOTER.format(title=name), encoding="utf-8")
    return path


def book_sentences(book: int, count: int) -> list[str]:
    return [f"Book {book} says that sentence number {k} is here." for k in range(count)]


def use_tiny_books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR with four books of 30 sentences each; caches go to tmp_path too."""
    folder = tmp_path / "data" / "books" / "gutenberg"
    folder.mkdir(parents=True)
    for book in range(4):
        write_book(folder, f"pg{book}__Author__Title", book_sentences(book, 30))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


@pytest.fixture
def tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_tiny_books(tmp_path, monkeypatch)


def use_books_and_trec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR with eight books (the quick profile holds six out for validation) and a small task in TREC's format:
    enough for `sentence run` end to end in seconds. The task's sentences are the books' words and its label is
    (book + sentence number) modulo 3, so the score depends on the encoder (unknown words would score every encoder at chance)."""
    data = tmp_path / "data"
    (data / "books" / "gutenberg").mkdir(parents=True)
    for book in range(8):
        write_book(data / "books" / "gutenberg", f"pg{book}__Author__Title", book_sentences(book, 30))
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    trec = data / "senteval" / "TREC"
    trec.mkdir(parents=True)
    labels = ("DESC", "NUM", "LOC")
    for name, numbers in (("train_5500.label", range(150)), ("TREC_10.label", range(150, 210))):
        (trec / name).write_text("".join(f"{labels[(k % 8 + k * 7 % 30) % 3]}:x Book {k % 8} says that sentence number {k * 7 % 30} is here ?\n"
                                         for k in numbers))
    return data
