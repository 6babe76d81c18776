"""A tiny zip in the staged CIFAR-10 JPEG layout, and environment pointing the pipeline at it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = ("bird", "cat", "dog")  # sorted, as the reader numbers them
TRAIN_PER_CLASS, TEST_PER_CLASS = 8, 4


def write_jpeg_zip(path: Path, seed: int = 0) -> None:
    """``train|test/<class>/NNNN.jpg`` 32x32 JPEGs; each class has its own dominant colour."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            for label, name in enumerate(CLASSES):
                for index in range(count):
                    pixels = rng.integers(0, 60, (32, 32, 3))
                    pixels[..., label] += 180
                    buffer = io.BytesIO()
                    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=75)
                    archive.writestr(f"{split}/{name}/{index:04d}.jpg", buffer.getvalue())


@pytest.fixture
def jpeg_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR holding the tiny zip and an empty cache; returns DATA_DIR."""
    data = tmp_path / "data"
    write_jpeg_zip(data / "images" / "cifar10_jpeg" / "cifar10_jpeg.zip")
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    return data
