"""Image data sets as uint8 tensors in memory, and the SimCLR augmentation applied per batch.

Every data set is held as ``(N, 3, H, W)`` uint8 (CIFAR-10 is 150 MB), so a batch is one
index into a tensor. The augmentation works on whole batches of such tensors on any
device: on a GPU the images live on the device and no loader workers are needed, on a
CPU it avoids a per-image Python pipeline.

The staged CIFAR-10 is a zip of JPEG files (quality 75); it is decoded once into a
``.npz`` in the cache. torchvision's CIFAR-10, CIFAR-100 and STL-10 readers are used for
users who have those files (or pass ``--download``).
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from common.errors import UserError
from common.io import atomic_write_bytes
from common.paths import cache_dir, data_dir

DATASETS = {
    "cifar10-jpeg": "CIFAR-10 (JPEG q75)",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "stl10": "STL-10",
}
JPEG_ZIP = Path("images") / "cifar10_jpeg" / "cifar10_jpeg.zip"
# Normalisation of the released code (CIFAR-10 statistics), used for every data set.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)
_GRAY = (0.299, 0.587, 0.114)


@dataclass
class ImageData:
    """Pretraining images, labelled train split (kNN bank, linear probe) and test split."""

    name: str
    pretrain: Tensor
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int

    @property
    def label(self) -> str:
        return DATASETS[self.name]


def load_dataset(name: str, *, train_per_class: int = 0, seed: int = 0, download: bool = False) -> ImageData:
    """Load ``name``; with ``train_per_class > 0`` keep a class-balanced subset of the train split.

    For the CIFAR sets the pretraining set is the (subset of the) train split; for STL-10
    it is ``train+unlabeled`` and the subset only shrinks the labelled split.
    """
    if name == "cifar10-jpeg":
        train_x, train_y, test_x, test_y = _cifar10_jpeg_arrays()
    elif name in ("cifar10", "cifar100", "stl10"):
        train_x, train_y, test_x, test_y, unlabeled = _torchvision_arrays(name, download)
    else:
        raise UserError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    train_images, train_labels = _to_chw(train_x), torch.from_numpy(train_y).long()
    if train_per_class > 0:
        keep = balanced_subset(train_labels, train_per_class, seed)
        train_images, train_labels = train_images[keep], train_labels[keep]
    pretrain = torch.cat([train_images, _to_chw(unlabeled)]) if name == "stl10" else train_images
    return ImageData(
        name=name,
        pretrain=pretrain,
        train_images=train_images,
        train_labels=train_labels,
        test_images=_to_chw(test_x),
        test_labels=torch.from_numpy(test_y).long(),
        num_classes=int(train_labels.max()) + 1,
    )


def balanced_subset(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """Sorted indices of ``per_class`` random examples of every class (fixed by ``seed``)."""
    counts = torch.bincount(labels)
    if per_class > int(counts.min()):
        raise UserError(f"train_per_class={per_class} but the smallest class has {int(counts.min())} images")
    generator = torch.Generator().manual_seed(seed)
    # Rank the examples of each class by a random key; keep the first `per_class` of each.
    keys = torch.rand(labels.shape[0], generator=generator)
    order = torch.argsort(labels * 2.0 + keys)  # groups by class, random within a class
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(labels.shape[0]) - starts[labels[order]]
    return order[rank_in_class < per_class].sort().values


def _to_chw(array: np.ndarray) -> Tensor:
    """NHWC uint8 array to a contiguous NCHW tensor (STL-10 arrives as NCHW already)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor if tensor.shape[1] == 3 else tensor.permute(0, 3, 1, 2).contiguous()


def _cifar10_jpeg_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decoded arrays of the staged zip, from the cache when the zip has not changed."""
    path = data_dir() / JPEG_ZIP
    if path.is_dir():
        raise UserError(f"CIFAR-10 JPEG zip {path} is a folder; it must be the zip file itself (cifar10_jpeg.zip)")
    if not path.is_file():
        raise UserError(
            f"CIFAR-10 JPEG zip not found at {path}; stage cifar10_jpeg.zip there (layout train|test/<class>/NNNN.jpg), "
            "point DATA_DIR at the folder holding images/, or use --dataset cifar10 with torchvision's files"
        )
    stat = path.stat()
    cache = cache_dir() / f"cifar10_jpeg-{stat.st_size}-{stat.st_mtime_ns}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                return stored["train_x"], stored["train_y"], stored["test_x"], stored["test_y"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            cache.unlink(missing_ok=True)  # a truncated or foreign cache is rebuilt from the zip, never trusted
    arrays = _decode_zip(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(cache, buffer.getvalue())
    return arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"]


def _decode_zip(path: Path) -> dict[str, np.ndarray]:
    """Decode every ``split/<class>/*.jpg``; classes are numbered in sorted order (CIFAR's own)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{path} is not a readable zip ({err}); replace it with a fresh copy") from None
    with archive:
        members = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg") and n.count("/") == 2)
        classes = sorted({n.split("/")[1] for n in members})
        _check_classes(path, members, classes)
        out: dict[str, np.ndarray] = {}
        for split in ("train", "test"):
            names = [n for n in members if n.startswith(split + "/")]
            if not names:
                raise UserError(f"{path} has no {split}/<class>/*.jpg images")
            images = [_decode_member(archive, path, n) for n in names]
            odd = next((n for n, image in zip(names, images, strict=True) if image.shape != images[0].shape), None)
            if odd is not None:
                raise UserError(f"{path}: {odd} is not {images[0].shape[1]}x{images[0].shape[0]} like {names[0]}; "
                                "every image must have the same size")
            out[f"{split}_x"] = np.stack(images)
            out[f"{split}_y"] = np.array([classes.index(n.split("/")[1]) for n in names], dtype=np.int64)
    return out


def _check_classes(path: Path, members: list[str], classes: list[str]) -> None:
    """Two classes or more, each with training images: a one-class zip scores 100% and measures nothing."""
    if len(classes) < 2:
        raise UserError(f"{path} has {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); a classification "
                        "needs two or more (layout train|test/<class>/NNNN.jpg)")
    trained = {n.split("/")[1] for n in members if n.startswith("train/")}
    untrained = [c for c in classes if c not in trained]
    if untrained:
        raise UserError(f"{path}: class(es) {', '.join(untrained)} have test images but no train/ images")


def _decode_member(archive: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    """One member as an RGB array; a damaged member (bad CRC, broken compression, not an image) is a ``UserError``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(archive.read(name))) as image:
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise UserError(f"{path}: {name} is not an image PIL can read; replace the zip with a fresh copy") from None
    # zipfile raises NotImplementedError for a compression method it lacks, zlib.error for a broken stream
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError, ValueError,
            Image.DecompressionBombError) as err:
        raise UserError(f"{path}: {name} cannot be read ({err}); replace the zip with a fresh copy") from None


def _torchvision_arrays(name: str, download: bool) -> tuple[np.ndarray, ...]:
    """(train_x, train_y, test_x, test_y, unlabeled_x) from torchvision's readers."""
    import torchvision.datasets as tvd

    roots = [data_dir() / "images", cache_dir() / "torchvision"]
    expected = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary"}[name]
    root = next((r for r in roots if (r / expected).is_dir()), None)
    if root is None:
        if not download:
            raise UserError(
                f"{name} not found: looked for {' and '.join(str(r / expected) for r in roots)}; "
                f"pass --download to fetch it into {roots[1]} (needs internet) or use --dataset cifar10-jpeg"
            )
        root = roots[1]
    if name == "stl10":
        train = tvd.STL10(str(root), split="train", download=download)
        test = tvd.STL10(str(root), split="test", download=download)
        unlabeled = tvd.STL10(str(root), split="unlabeled", download=download)
        return train.data, train.labels.astype(np.int64), test.data, test.labels.astype(np.int64), unlabeled.data
    reader = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    train, test = reader(str(root), train=True, download=download), reader(str(root), train=False, download=download)
    empty = np.empty((0, 32, 32, 3), np.uint8)
    return train.data, np.array(train.targets), test.data, np.array(test.targets), empty


def normalize(images: Tensor) -> Tensor:
    """uint8 ``(B, 3, H, W)`` to float, standardised with the released code's mean and std."""
    x = images.float().div_(255.0)
    mean = x.new_tensor(MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


class SimCLRAugment:
    """The released code's augmentation, applied to a whole batch with per-image random draws.

    RandomResizedCrop(size, scale 0.08-1, ratio 3/4-4/3), horizontal flip p=0.5, colour
    jitter (brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1) with p=0.8, grayscale
    p=0.2, then normalisation. Two deliberate differences from torchvision's per-image
    version, both to stay vectorised: a crop too large for the image is clipped to the
    image instead of re-drawn, and the jitter runs in a fixed order (brightness, contrast,
    saturation, hue) with the hue shift done as a rotation of the YIQ chroma plane.
    """

    def __init__(self, size: int = 32, jitter_p: float = 0.8, gray_p: float = 0.2) -> None:
        self.size, self.jitter_p, self.gray_p = size, jitter_p, gray_p

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """uint8 ``(B, 3, H, W)`` to two-view-ready float ``(B, 3, size, size)``; draws from ``generator``."""
        x = images.float().div_(255.0)
        x = self._crop_and_flip(x, generator)
        x = torch.where(self._coin(x, self.jitter_p, generator), self._jitter(x, generator), x)
        gray = _grayscale(x).expand_as(x)
        x = torch.where(self._coin(x, self.gray_p, generator), gray, x)
        mean = x.new_tensor(MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(STD).view(1, 3, 1, 1)
        return (x - mean) / std

    @staticmethod
    def _uniform(x: Tensor, low: float, high: float, generator: torch.Generator) -> Tensor:
        return torch.rand(x.shape[0], device=x.device, generator=generator) * (high - low) + low

    def _coin(self, x: Tensor, p: float, generator: torch.Generator) -> Tensor:
        return (torch.rand(x.shape[0], device=x.device, generator=generator) < p).view(-1, 1, 1, 1)

    def _crop_and_flip(self, x: Tensor, generator: torch.Generator) -> Tensor:
        area = self._uniform(x, 0.08, 1.0, generator)
        log_ratio = self._uniform(x, math.log(3 / 4), math.log(4 / 3), generator)
        width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)  # fractions of the image side
        height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        center_x = (self._uniform(x, -1.0, 1.0, generator)) * (1.0 - width)  # crop stays inside [-1, 1]
        center_y = (self._uniform(x, -1.0, 1.0, generator)) * (1.0 - height)
        flip = torch.where(self._uniform(x, 0.0, 1.0, generator) < 0.5, -1.0, 1.0)
        theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2] = width * flip, center_x
        theta[:, 1, 1], theta[:, 1, 2] = height, center_y
        grid = F.affine_grid(theta, [x.shape[0], 3, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _jitter(self, x: Tensor, generator: torch.Generator) -> Tensor:
        def factor(spread: float) -> Tensor:
            return self._uniform(x, 1.0 - spread, 1.0 + spread, generator).view(-1, 1, 1, 1)

        x = (x * factor(0.4)).clamp_(0.0, 1.0)
        mean = _grayscale(x).mean(dim=(2, 3), keepdim=True)
        x = ((x - mean) * factor(0.4) + mean).clamp_(0.0, 1.0)
        gray = _grayscale(x)
        x = ((x - gray) * factor(0.4) + gray).clamp_(0.0, 1.0)
        return _rotate_hue(x, self._uniform(x, -0.1, 0.1, generator)).clamp_(0.0, 1.0)


def _grayscale(x: Tensor) -> Tensor:
    """ITU-R 601 luma ``(B, 1, H, W)``, as torchvision's rgb_to_grayscale."""
    weights = x.new_tensor(_GRAY).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Shift hue by ``shift`` turns (per image) as a rotation of the I/Q chroma plane; luma is kept."""
    to_yiq = _RGB_TO_YIQ.to(x.device, x.dtype)
    angle = shift * (2 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    transform = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3) in RGB
    return torch.einsum("bij,bjhw->bihw", transform, x)
