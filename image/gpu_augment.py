r"""SimCLR's two-view augmentation on a batch already on the device, with torchvision.transforms.v2's semantics.

The per-image pipeline it reproduces (SimCLR, Chen et al. 2020; the released HCL code)::

    v2.RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))   # bilinear
    v2.RandomHorizontalFlip(0.5)
    v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)
    v2.RandomGrayscale(0.2)
    v2.Normalize(MEAN, STD)

applied to a whole ``(N, 3, H, W)`` batch with per-image draws and no Python loop over images, every draw taken
from one ``torch.Generator`` on the images' device (a seed reproduces a batch). The draws are made first
(:func:`sample_params`) and applied second (:func:`apply`), so a test can force them and compare with torchvision
image by image.

Where it matches torchvision, and where it cannot:

- The crop box follows ``RandomResizedCrop.get_params`` exactly: ten tries of (area, log-ratio), the first box that
  fits, an integer offset, the central fallback; all ten tries are drawn at once and the first fitting one kept.
- The resize is bilinear with half-pixel centres and edge clamping, sampled by ``grid_sample`` at the very
  coordinates ``interpolate`` uses: equal to torchvision's resize (whose antialias only acts when shrinking) for
  any crop no larger than the output, which is every crop of a 32x32 image at size 32. A crop larger than the
  output (STL-10's 96 px to 32) is sampled without antialiasing.
- The colour jitter applies its four operations in a random order per image, as ``ColorJitter`` draws a
  permutation per call (per image in a data loader). The order matters (brightness clips before or after a
  contrast stretch; saturation and contrast blend towards a grey that hue changes), and the cost of keeping
  torchvision's semantics is small: brightness, contrast and saturation are one blend ``f x + (1 - f) g`` with a
  per-image target ``g``, so each of the four steps is one blend plus one hue rotation of the whole batch.
- The arithmetic is torchvision's float arithmetic: uint8 input is scaled to [0, 1] once and stays float, like a
  ``ToDtype(float32, scale=True)`` first; torchvision on uint8 images would round to uint8 after every operation.
  Half and bfloat16 images are computed in float32 (float64 stays float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from image.data import MEAN, STD

#: torchvision's luma weights (``rgb_to_grayscale``; ITU-R 601-2 with its 0.2989).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # ColorJitter's fn_idx numbering
CROP_TRIES = 10  # RandomResizedCrop.get_params


@dataclass(frozen=True)
class AugmentConfig:
    """The augmentation's settings; the defaults are SimCLR's for CIFAR-10."""

    size: int = 32
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    gray_p: float = 0.2
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be 0 < low <= high, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must be 0 < low <= high, got {self.ratio}")
        for name in ("flip_p", "jitter_p", "gray_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # factors 1 ± spread stay >= 0, as torchvision requires
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need three values each, std > 0; got {self.mean}, {self.std}")


@dataclass(frozen=True)
class AugmentParams:
    """Every random draw of one batch, one row per image: what torchvision's transforms would have drawn."""

    top: Tensor  # (N,) long: the crop box in pixels
    left: Tensor
    height: Tensor
    width: Tensor
    flip: Tensor  # (N,) bool
    jitter: Tensor  # (N,) bool: the colour jitter applies (RandomApply)
    factors: Tensor  # (N, 4) float: brightness, contrast, saturation factors and the hue shift
    order: Tensor  # (N, 4) long: each row a permutation of the four operations (ColorJitter's fn_idx)
    gray: Tensor  # (N,) bool


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, device: torch.device,
             dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=dtype) * (high - low) + low


def crop_boxes(n: int, height: int, width: int, generator: torch.Generator, device: torch.device | str,
               scale: tuple[float, float] = (0.08, 1.0),
               ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(top, left, h, w) of ``n`` boxes drawn as ``RandomResizedCrop.get_params`` draws one, all tries at once."""
    device = torch.device(device)
    area = height * width
    target = area * _uniform((n, CROP_TRIES), *scale, generator, device, torch.float64)
    aspect = _uniform((n, CROP_TRIES), math.log(ratio[0]), math.log(ratio[1]), generator, device, torch.float64).exp()
    w = torch.round(torch.sqrt(target * aspect)).long()  # half to even, as Python's round
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first fitting try (0 when none fits)
    w, h, found = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1), fits.any(dim=1)
    offsets = torch.rand((n, 2), generator=generator, device=device, dtype=torch.float64)
    top = (offsets[:, 0] * (height - h + 1)).floor().long().clamp(max=height - 1)
    left = (offsets[:, 1] * (width - w + 1)).floor().long().clamp(max=width - 1)
    # The central fallback: the largest box of the nearest allowed ratio.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = int(round(height * ratio[1])), height
    else:
        fallback_w, fallback_h = width, height
    top = torch.where(found, top, (height - fallback_h) // 2)
    left = torch.where(found, left, (width - fallback_w) // 2)
    return top, left, torch.where(found, h, fallback_h), torch.where(found, w, fallback_w)


def sample_params(n: int, height: int, width: int, generator: torch.Generator,
                  config: AugmentConfig = AugmentConfig()) -> AugmentParams:
    """Draw every random choice for ``n`` images of ``height`` x ``width`` from ``generator`` (on its device)."""
    device = generator.device
    top, left, h, w = crop_boxes(n, height, width, generator, device, config.scale, config.ratio)
    coins = torch.rand((n, 3), generator=generator, device=device)
    spreads = [(1 - config.brightness, 1 + config.brightness), (1 - config.contrast, 1 + config.contrast),
               (1 - config.saturation, 1 + config.saturation), (-config.hue, config.hue)]
    draws = torch.rand((n, 4), generator=generator, device=device)
    low = torch.tensor([s[0] for s in spreads], device=device)
    high = torch.tensor([s[1] for s in spreads], device=device)
    order = torch.rand((n, 4), generator=generator, device=device).argsort(dim=1)  # uniform over permutations
    return AugmentParams(top=top, left=left, height=h, width=w, flip=coins[:, 0] < config.flip_p,
                         jitter=coins[:, 1] < config.jitter_p, factors=low + draws * (high - low), order=order,
                         gray=coins[:, 2] < config.gray_p)


def _compute_dtype(images: Tensor) -> torch.dtype:
    return torch.float64 if images.dtype == torch.float64 else torch.float32


def to_float(images: Tensor) -> Tensor:
    """uint8 to [0, 1] (``ToDtype(scale=True)``); float images are taken as already in [0, 1]."""
    dtype = _compute_dtype(images)
    if images.is_floating_point():
        return images.to(dtype)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return images.to(dtype).div_(255.0)


def resized_crop(x: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor, size: int,
                 flip: Tensor | None = None) -> Tensor:
    """Each image's box resized to ``size`` x ``size`` (bilinear), then mirrored where ``flip``: one ``grid_sample``.

    Source coordinates are ``interpolate``'s (half-pixel centres, ``(i + 0.5) * in / out - 0.5`` clamped to the
    box), so the bilinear weights never reach outside the box.
    """
    n, _, full_h, full_w = x.shape
    centres = (torch.arange(size, device=x.device, dtype=x.dtype) + 0.5) / size  # (S,)

    def source(offset: Tensor, extent: Tensor, full: int) -> Tensor:  # (N, S) normalised source coordinates
        extent = extent.to(x.dtype).unsqueeze(1)
        inside = torch.minimum((centres * extent - 0.5).clamp(min=0.0), extent - 1)
        return (2 * (inside + offset.to(x.dtype).unsqueeze(1)) + 1) / full - 1

    ys, xs = source(top, height, full_h), source(left, width, full_w)
    if flip is not None:
        xs = torch.where(flip.unsqueeze(1), xs.flip(1), xs)
    grid = torch.stack((xs.unsqueeze(1).expand(n, size, size), ys.unsqueeze(2).expand(n, size, size)), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _per_image(values: Tensor, x: Tensor) -> Tensor:
    """(N,) to (N, 1, 1, 1): a mask stays boolean, a number takes ``x``'s dtype."""
    return values.view(-1, 1, 1, 1) if values.dtype == torch.bool else values.to(x.dtype).view(-1, 1, 1, 1)


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """Luma ``(N, 1, H, W)`` with torchvision's weights."""
    r, g, b = x.unbind(dim=1)
    return (r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]).unsqueeze(1)


def _blend(x: Tensor, target: Tensor, factor: Tensor) -> Tensor:
    """``factor x + (1 - factor) target`` clipped to [0, 1]: torchvision's ``_blend`` with a factor per image."""
    f = _per_image(factor, x)
    return (x * f + target * (1 - f)).clamp(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x[:, :1]), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, rgb_to_grayscale(x), factor)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Hue turned by ``shift`` (a fraction of the circle, per image) in HSV; saturation and value are kept."""
    r, g, b = x.unbind(dim=1)
    value = torch.maximum(torch.maximum(r, g), b)
    chroma = value - torch.minimum(torch.minimum(r, g), b)
    tiny = torch.finfo(x.dtype).tiny  # where a denominator is 0 its numerator is 0 too: the quotient stays 0
    saturation = chroma / value.clamp(min=tiny)
    chroma = chroma.clamp(min=tiny)
    # Six times the hue, in [-1, 5), the sector's order as torchvision's (red first, then green).
    hue6 = torch.where(value == r, (g - b) / chroma, torch.where(value == g, (b - r) / chroma + 2, (r - g) / chroma + 4))
    hue6 = hue6.add_(_per_image(shift, x).squeeze(1), alpha=6.0).unsqueeze(1)
    # HSV to RGB in closed form: channel n is v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6.
    k = hue6 + torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = k.sub_(torch.floor(k / 6).mul_(6))
    ramp = torch.minimum(k, 4 - k).clamp_(0.0, 1.0)
    value, saturation = value.unsqueeze(1), saturation.unsqueeze(1)
    return (value - ramp.mul_(saturation).mul_(value)).clamp_(0.0, 1.0)


def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """``ColorJitter`` with per-image ``factors`` (brightness, contrast, saturation, hue) applied in per-image
    ``order`` (rows of permutations of 0-3, torchvision's numbering)."""
    gray = None
    for step in range(4):
        op = order[:, step]
        # Brightness, contrast and saturation are one blend towards a per-image target: black, the mean luma, luma.
        gray = rgb_to_grayscale(x)
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        target = torch.where(_per_image(op == BRIGHTNESS, x), 0.0,
                             torch.where(_per_image(op == CONTRAST, x), mean, gray))
        blended = _blend(x, target, factors.gather(1, op.unsqueeze(1)).squeeze(1))
        x = torch.where(_per_image(op == HUE, x), adjust_hue(x, factors[:, HUE]), blended)
    return x


def apply(images: Tensor, params: AugmentParams, config: AugmentConfig = AugmentConfig(), *,
          normalize: bool = True) -> Tensor:
    """The augmentation with the draws in ``params``: float ``(N, 3, size, size)``, normalised unless told not."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    x = resized_crop(to_float(images), params.top, params.left, params.height, params.width, config.size,
                     params.flip)
    x = torch.where(_per_image(params.jitter, x), color_jitter(x, params.factors, params.order), x)
    x = torch.where(_per_image(params.gray, x), rgb_to_grayscale(x).expand_as(x), x)
    if not normalize:
        return x
    mean = torch.tensor(config.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(images: Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig(), *,
            normalize: bool = True) -> Tensor:
    """One random view of every image: draws from ``generator`` (on the images' device), then :func:`apply`."""
    if generator.device != images.device:
        raise ValueError(f"generator on {generator.device}, images on {images.device}: draw where the images are")
    params = sample_params(images.shape[0], images.shape[2], images.shape[3], generator, config)
    return apply(images, params, config, normalize=normalize)


def two_views(images: Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()) -> tuple[Tensor, Tensor]:
    """Two independent views of every image, drawn as one batch of 2N (one kernel launch per operation)."""
    views = augment(torch.cat((images, images)), generator, config)
    return views[: images.shape[0]], views[images.shape[0]:]


class GPUAugment:
    """Drop-in for ``image.data.SimCLRAugment``: ``augment(images, generator)`` returns one normalised view."""

    def __init__(self, size: int = 32, config: AugmentConfig | None = None) -> None:
        self.config = config if config is not None else AugmentConfig(size=size)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        return augment(images, generator, self.config)
