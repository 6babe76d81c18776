"""Data: the JPEG zip reader and its cache, class-balanced subsets, the two-view augmentation."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from common.paths import data_dir
from image.data import JPEG_ZIP, MEAN, STD, SimCLRAugment, balanced_subset, load_dataset, normalize
from tests.image.conftest import CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS


def test_zip_is_decoded_once_into_the_cache(jpeg_data: Path, tmp_path: Path) -> None:
    data = load_dataset("cifar10-jpeg")
    assert data.label == "CIFAR-10 (JPEG q75)"
    assert data.train_images.shape == (len(CLASSES) * TRAIN_PER_CLASS, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (len(CLASSES) * TEST_PER_CLASS, 3, 32, 32)
    assert data.num_classes == len(CLASSES)
    assert torch.bincount(data.train_labels).tolist() == [TRAIN_PER_CLASS] * len(CLASSES)
    # Class k's images were drawn with channel k bright: labels follow the folder names.
    channel_means = data.train_images.float().mean(dim=(2, 3)).argmax(dim=1)
    assert torch.equal(channel_means, data.train_labels)
    cached = list((tmp_path / "cache").glob("cifar10_jpeg-*.npz"))
    assert len(cached) == 1
    # A second load must come from the cache: it still works with the zip's bytes unreadable.
    zip_path = jpeg_data / JPEG_ZIP
    stat = zip_path.stat()
    zip_path.write_bytes(b"x" * stat.st_size)
    os.utime(zip_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = load_dataset("cifar10-jpeg")
    assert torch.equal(again.train_images, data.train_images)


def test_missing_zip_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    with pytest.raises(UserError, match="cifar10_jpeg.zip"):
        load_dataset("cifar10-jpeg")


def test_corrupt_zip_is_a_user_error(jpeg_data: Path) -> None:
    (jpeg_data / JPEG_ZIP).write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable zip"):
        load_dataset("cifar10-jpeg")


def test_missing_torchvision_set_names_what_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="stl10_binary"):
        load_dataset("stl10")


def test_balanced_subset_takes_equal_counts_without_repeats() -> None:
    labels = torch.tensor([0] * 7 + [1] * 5 + [2] * 9)[torch.randperm(21, generator=torch.Generator().manual_seed(1))]
    keep = balanced_subset(labels, 4, seed=3)
    assert keep.unique().numel() == keep.numel() == 12
    assert torch.bincount(labels[keep]).tolist() == [4, 4, 4]
    assert not torch.equal(keep, balanced_subset(labels, 4, seed=4))
    with pytest.raises(UserError, match="smallest class has 5"):
        balanced_subset(labels, 6, seed=0)


def test_subset_shrinks_the_pretraining_set(jpeg_data: Path) -> None:
    data = load_dataset("cifar10-jpeg", train_per_class=3)
    assert data.pretrain.shape[0] == data.train_images.shape[0] == 3 * len(CLASSES)
    assert data.test_images.shape[0] == TEST_PER_CLASS * len(CLASSES)


def test_two_views_differ_and_keep_their_images_order() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    augment = SimCLRAugment(32)
    view1, view2 = augment(images, generator), augment(images, generator)
    assert view1.shape == view2.shape == (16, 3, 32, 32)
    assert torch.isfinite(view1).all()
    assert ((view1 - view2).abs().flatten(1).amax(dim=1) > 0.1).all()  # every pair differs
    # Flat-coloured images stay flat under crops and flips, so without colour changes view i
    # must equal image i: the batch order (and so its labels) is kept.
    colours = torch.randint(0, 256, (16, 3, 1, 1), dtype=torch.uint8).expand(16, 3, 32, 32)
    plain = SimCLRAugment(32, jitter_p=0.0, gray_p=0.0)(colours, generator)
    assert torch.allclose(plain, normalize(colours), atol=1e-5)


def test_colour_jitter_and_grayscale_follow_their_probabilities() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2000, 3, 8, 8), dtype=torch.uint8)
    views = SimCLRAugment(8)(images, generator)
    pixels = views * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    gray = (pixels.amax(dim=1) - pixels.amin(dim=1)).flatten(1).amax(dim=1) < 1e-5
    assert 0.16 < gray.float().mean().item() < 0.24  # p = 0.2
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5


def test_staged_zip_layout_when_present() -> None:
    path = data_dir() / JPEG_ZIP
    if not path.is_file():
        pytest.skip(f"staged data not found at {path}")
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".jpg")]
    assert len(names) == 60000
    assert {n.split("/")[1] for n in names} == {
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert sum(n.startswith("test/") for n in names) == 10000
