"""The batched augmentation against torchvision.transforms.v2, image by image, with its draws forced or replayed."""

from __future__ import annotations

import math

import pytest
import torch

from image.gpu_augment import (
    BRIGHTNESS,
    CONTRAST,
    HUE,
    SATURATION,
    AugmentConfig,
    AugmentParams,
    GPUAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    apply,
    augment,
    crop_boxes,
    sample_params,
    two_views,
)

tv = pytest.importorskip("torchvision.transforms.v2")
TF = pytest.importorskip("torchvision.transforms.v2.functional")
CONFIG = AugmentConfig()


def images(n: int = 16, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def forced(n: int, side: int, *, flip: bool = False, **overrides) -> AugmentParams:
    """Whole-image crops, no jitter, no grayscale, unless overridden."""
    fields = dict(top=torch.zeros(n, dtype=torch.long), left=torch.zeros(n, dtype=torch.long),
                  height=torch.full((n,), side), width=torch.full((n,), side), flip=torch.full((n,), flip),
                  jitter=torch.zeros(n, dtype=torch.bool), factors=torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(n, 1),
                  order=torch.arange(4).repeat(n, 1), gray=torch.zeros(n, dtype=torch.bool))
    return AugmentParams(**(fields | overrides))


def torchvision_view(image: torch.Tensor, p: AugmentParams, i: int, size: int, normalize: bool = True) -> torch.Tensor:
    """Image ``i`` through torchvision's functional ops with the draws of ``p``, in SimCLR's order."""
    x = TF.to_dtype(image, torch.float64 if image.dtype == torch.float64 else torch.float32, scale=True)
    x = TF.resized_crop(x, int(p.top[i]), int(p.left[i]), int(p.height[i]), int(p.width[i]), [size, size],
                        interpolation=tv.InterpolationMode.BILINEAR, antialias=True)
    if p.flip[i]:
        x = TF.horizontal_flip(x)
    if p.jitter[i]:
        ops = {BRIGHTNESS: TF.adjust_brightness, CONTRAST: TF.adjust_contrast, SATURATION: TF.adjust_saturation,
               HUE: TF.adjust_hue}
        for op in p.order[i].tolist():
            x = ops[op](x, float(p.factors[i, op]))
    if p.gray[i]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    return TF.normalize(x, list(CONFIG.mean), list(CONFIG.std)) if normalize else x


def test_whole_image_no_jitter_equals_torchvision_pipeline():
    """Crop forced to the whole image, flip forced, jitter and grayscale off: torchvision's own composed pipeline."""
    x = images(8)
    pipeline = tv.Compose([tv.ToDtype(torch.float32, scale=True),
                           tv.RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0)),
                           tv.RandomHorizontalFlip(p=1.0), tv.Normalize(list(CONFIG.mean), list(CONFIG.std))])
    expected = torch.stack([pipeline(image) for image in x])
    torch.testing.assert_close(apply(x, forced(8, 32, flip=True)), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.uint8])
def test_random_draws_replayed_through_torchvision(dtype):
    """Every draw of a batch (crop boxes up to upsampling, flip, jitter in its per-image order, grayscale) replayed
    through torchvision.transforms.v2.functional image by image gives the same views."""
    x = images(48)
    if dtype == torch.float64:
        x = x.double() / 255
    p = sample_params(48, 32, 32, torch.Generator().manual_seed(3))
    assert p.jitter.any() and (~p.jitter).any() and p.gray.any() and p.flip.any()
    ours = apply(x, p)
    expected = torch.stack([torchvision_view(x[i], p, i, 32) for i in range(48)])
    # torchvision's hue runs in float32 whatever the input; the rest agrees to float64 rounding
    torch.testing.assert_close(ours.double(), expected.double(), atol=2e-5, rtol=0)


def test_non_square_images_and_a_smaller_output():
    """Crops of a 24x40 image resized to 16 (some shrink: torchvision's antialias differs there, so compare only the
    upsampled and same-size crops)."""
    x = images(64, seed=1)[:, :, :24, :]
    x = torch.cat([x, x[:, :, :, :8]], dim=3)  # 24 x 40
    p = sample_params(64, 24, 40, torch.Generator().manual_seed(5), AugmentConfig(size=16))
    assert bool(((p.top + p.height <= 24) & (p.left + p.width <= 40)).all())
    ours = apply(x.double() / 255, p, AugmentConfig(size=16))
    upsampled = ((p.height <= 16) & (p.width <= 16)).nonzero().flatten().tolist()
    assert upsampled
    for i in upsampled:
        torch.testing.assert_close(ours[i], torchvision_view(x[i].double() / 255, p, i, 16), atol=2e-5, rtol=0)


@pytest.mark.parametrize(("ours", "theirs"), [(adjust_brightness, TF.adjust_brightness),
                                              (adjust_contrast, TF.adjust_contrast),
                                              (adjust_saturation, TF.adjust_saturation),
                                              (adjust_hue, TF.adjust_hue)])
def test_colour_operations_equal_torchvision_per_image(ours, theirs):
    x = torch.rand(12, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x[0] = 0.5  # grey: no hue, zero saturation
    x[1] = 0.0  # black: value 0
    x[2, 0] = x[2, 1]  # ties between the largest channels
    factors = (torch.linspace(-0.5, 0.5, 12, dtype=torch.float64) if ours is adjust_hue
               else torch.linspace(0.0, 2.0, 12, dtype=torch.float64))
    expected = torch.stack([theirs(x[i], float(factors[i])) for i in range(12)])
    tolerance = 2e-6 if ours is adjust_hue else 1e-12  # torchvision's hue computes in float32
    torch.testing.assert_close(ours(x, factors), expected.double(), atol=tolerance, rtol=0)


def test_crop_boxes_follow_torchvision_get_params_in_distribution():
    """Same rule, different random streams: the drawn box areas and aspect ratios agree in distribution."""
    n = 4000
    top, left, h, w = crop_boxes(n, 32, 32, torch.Generator().manual_seed(0), "cpu")
    torch.manual_seed(0)
    theirs = torch.tensor([tv.RandomResizedCrop.get_params(torch.zeros(3, 32, 32), [0.08, 1.0], [3 / 4, 4 / 3])
                           for _ in range(n)], dtype=torch.float64)
    assert bool(((top >= 0) & (left >= 0) & (top + h <= 32) & (left + w <= 32) & (h > 0) & (w > 0)).all())
    area, their_area = (h * w).double() / 1024, theirs[:, 2] * theirs[:, 3] / 1024
    assert abs(area.mean() - their_area.mean()) < 5 * math.sqrt(2 * their_area.var() / n)
    log_ratio, their_log_ratio = (w / h).double().log(), (theirs[:, 3] / theirs[:, 2]).log()
    assert abs(log_ratio.mean() - their_log_ratio.mean()) < 5 * math.sqrt(2 * their_log_ratio.var() / n)
    # the offset is uniform over the free pixels: a full-width box starts at 0, others spread over their range
    assert bool((left[w == 32] == 0).all()) and int(left[w < 16].max()) > 16


def test_crop_falls_back_to_the_central_box_as_torchvision():
    """A 4x100 strip: no box of ratio <= 4/3 and area >= 8% fits its height, so every draw is the central fallback."""
    boxes = torch.stack(crop_boxes(50, 4, 100, torch.Generator().manual_seed(0), "cpu"), dim=1)
    theirs = tv.RandomResizedCrop.get_params(torch.zeros(3, 4, 100), [0.08, 1.0], [3 / 4, 4 / 3])
    assert boxes.tolist() == [list(theirs)] * 50


def test_draw_frequencies_and_ranges():
    p = sample_params(20000, 32, 32, torch.Generator().manual_seed(1))
    for coin, rate in ((p.flip, 0.5), (p.jitter, 0.8), (p.gray, 0.2)):
        assert abs(coin.double().mean().item() - rate) < 0.015
    low, high = torch.tensor([0.6, 0.6, 0.6, -0.1]), torch.tensor([1.4, 1.4, 1.4, 0.1])
    assert bool(((p.factors >= low) & (p.factors <= high)).all())
    assert bool((p.order.sort(dim=1).values == torch.arange(4)).all())  # each row a permutation
    assert len({tuple(row) for row in p.order.tolist()}) == 24
    hue_at = (p.order == HUE).double().argmax(dim=1)
    assert torch.bincount(hue_at.long(), minlength=4).min() > 4500  # every position about a quarter


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_dtypes_give_finite_views_in_unit_range(dtype):
    x = images(32)
    x = x if dtype == torch.uint8 else (x.double() / 255).to(dtype)
    out = augment(x, torch.Generator().manual_seed(0), normalize=False)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert out.shape == (32, 3, 32, 32) and bool(out.isfinite().all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    normalised = augment(x, torch.Generator().manual_seed(0))
    mean, std = torch.tensor(CONFIG.mean).view(1, 3, 1, 1), torch.tensor(CONFIG.std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalised.float(), ((out - mean.to(out)) / std.to(out)).float())


def test_low_precision_input_matches_float32_input():
    x = images(16)
    half = (x.float() / 255).to(torch.bfloat16)
    ours = augment(half, torch.Generator().manual_seed(4))
    reference = augment(half.float(), torch.Generator().manual_seed(4))
    torch.testing.assert_close(ours, reference)


def test_batch_of_one_and_determinism():
    x = images(1)
    a = augment(x, torch.Generator().manual_seed(7))
    assert a.shape == (1, 3, 32, 32) and bool(a.isfinite().all())
    batch = images(64)
    first = augment(batch, torch.Generator().manual_seed(11))
    assert torch.equal(first, augment(batch, torch.Generator().manual_seed(11)))
    assert not torch.equal(first, augment(batch, torch.Generator().manual_seed(12)))


def test_two_views_differ_and_replay():
    x = images(8)
    v1, v2 = two_views(x, torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (8, 3, 32, 32) and not torch.equal(v1, v2)
    w1, w2 = two_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(v1, w1) and torch.equal(v2, w2)


def test_drop_in_module_and_errors():
    x = images(4)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(GPUAugment(32)(x, g1), augment(x, g2))
    assert GPUAugment(24)(x, g1).shape == (4, 3, 24, 24)
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="hue"):
        AugmentConfig(hue=0.7)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        apply(x[:, :1], forced(4, 32))
    with pytest.raises(TypeError, match="uint8 or floating"):
        augment(x.int(), torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_the_device_generator_and_images_stay_there():
    x = images(64).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    out = augment(x, g)
    assert out.device == x.device
    assert torch.equal(out, augment(x, torch.Generator(device="cuda").manual_seed(0)))
    p = sample_params(64, 32, 32, torch.Generator(device="cuda").manual_seed(1))
    cpu = AugmentParams(**{k: getattr(p, k).cpu() for k in p.__dataclass_fields__})
    torch.testing.assert_close(apply(x, p).cpu(), apply(x.cpu(), cpu), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="draw where"):
        augment(x, torch.Generator())
