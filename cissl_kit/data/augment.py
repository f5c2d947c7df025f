"""Batched weak and strong views, made on the training device with one random draw per sample.

Images enter as uint8 tensors ``N×C×H×W`` and leave normalised float tensors. Every op works on
the whole batch at once: geometric ops are one per-sample affine matrix through
``affine_grid``/``grid_sample``; on an accelerator colour ops are computed for the batch and kept
per sample with ``torch.where`` (no Python loop over samples, no host-device synchronisation); on
the CPU each colour op runs on just the images that drew it, with the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_float, check_int
from ..utils import sync_is_free

GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
COLOUR_OPS = ("autocontrast", "brightness", "color", "contrast", "equalize", "posterize", "sharpness", "solarize")
# The FixMatch RandAugment pool: identity, 5 geometric and 8 colour ops.
STRONG_OPS = ("identity",) + GEOMETRIC_OPS + COLOUR_OPS

MAX_ROTATE_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.3  # fraction of the image side
MAX_ENHANCE = 0.95  # brightness / color / contrast / sharpness factor in [1 - 0.95, 1 + 0.95]


class ImageAugmenter:
    """Weak (pad-crop + optional flip) and strong (RandAugment + Cutout) views of uint8 images.

    Args:
        mean, std: per-channel normalisation, in [0, 1] units.
        flip: horizontal flips are label-preserving for this dataset (not for digits).
        crop_padding: pad-crop translation, as a fraction of the side (FixMatch: 4/32 = 0.125).
        num_ops: ops per strong view (FixMatch: 2), each applied with probability 0.5.
        cutout: Cutout square side as a fraction of the image side (FixMatch: 0.5).
        fill: background value in [0, 1] for pixels that geometric ops move into view.
    """

    kind = "image"

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        flip: bool = True,
        crop_padding: float = 0.125,
        num_ops: int = 2,
        cutout: float = 0.5,
        fill: float = 0.5,
    ) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean and std must have one entry per channel, got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive per channel, got {tuple(std)}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.flip = bool(flip)
        self.crop_padding = check_float("crop_padding", crop_padding, 0.0, 0.5)
        self.num_ops = check_int("num_ops", num_ops, 0, len(STRONG_OPS))
        self.cutout = check_float("cutout", cutout, 0.0, 1.0)
        self.fill = check_float("fill", fill, 0.0, 1.0)
        self._stats: dict[tuple, tuple[Tensor, Tensor]] = {}
        # colour ops on just the images that drew them (True) or on all, then torch.where (False);
        # None: the first on the CPU (measured faster, identical views), the second elsewhere
        self.select_per_op: bool | None = None

    # -- public views -------------------------------------------------------------------------
    def plain(self, images: Tensor) -> Tensor:
        """Normalised images without augmentation (evaluation)."""
        return self.normalize(to_unit(images))

    def weak(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Random translation by up to ``crop_padding`` of the side (reflect padding) and flip."""
        return self.normalize(self._crop_flip(to_unit(images), generator))

    def strong(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Weak view, then ``num_ops`` random RandAugment ops per sample, then Cutout."""
        x = self._crop_flip(to_unit(images), generator)
        n = x.shape[0]
        ops = torch.randint(0, len(STRONG_OPS), (n, self.num_ops), generator=generator, device=x.device)
        applied = torch.rand(n, self.num_ops, generator=generator, device=x.device) < 0.5
        magnitude = torch.rand(n, self.num_ops, generator=generator, device=x.device)
        sign = torch.where(torch.rand(n, self.num_ops, generator=generator, device=x.device) < 0.5, -1.0, 1.0)
        # per sample and op of the pool: is it on, and its signed magnitude in [-1, 1]
        chosen = F.one_hot(ops, len(STRONG_OPS)) * applied.unsqueeze(-1)  # N × num_ops × pool
        on = chosen.any(1)
        strength = (chosen * (magnitude * sign).unsqueeze(-1)).sum(1).clamp(-1, 1)
        select = sync_is_free(x.device) if self.select_per_op is None else self.select_per_op
        for name in COLOUR_OPS:
            j = STRONG_OPS.index(name)
            if select:  # only the images that draw this op (a host sync, free on the CPU)
                chosen_idx = on[:, j].nonzero().squeeze(1)
                if chosen_idx.numel():
                    done = _COLOUR_FUNCS[name](x.index_select(0, chosen_idx), strength[:, j].index_select(0, chosen_idx))
                    x = x.index_copy(0, chosen_idx, done)
            else:  # every image, then keep it where drawn: no host sync on an accelerator
                x = torch.where(on[:, j].view(n, 1, 1, 1), _COLOUR_FUNCS[name](x, strength[:, j]), x)
        x = self._geometric(x, {name: strength[:, STRONG_OPS.index(name)] for name in GEOMETRIC_OPS})
        x = self._cutout(x, generator)
        return self.normalize(x.clamp_(0.0, 1.0))

    # -- helpers ------------------------------------------------------------------------------
    def _crop_flip(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Reflect-pad by ``crop_padding`` of the side, crop back at a random offset, maybe mirror.

        Done as two gathers with per-sample index maps (exactly torchvision's
        ``RandomCrop(padding_mode="reflect")`` + ``RandomHorizontalFlip``).
        """
        n, c, h, w = x.shape
        shift = max(1, round(self.crop_padding * h)) if self.crop_padding > 0 else 0
        if not shift and not self.flip:
            return x
        offsets = torch.randint(-shift, shift + 1, (n, 2), generator=generator, device=x.device)
        rows = _reflect(torch.arange(h, device=x.device).view(1, h) + offsets[:, :1], h)
        cols = _reflect(torch.arange(w, device=x.device).view(1, w) + offsets[:, 1:], w)
        if self.flip:
            mirror = torch.rand(n, 1, generator=generator, device=x.device) < 0.5
            cols = torch.where(mirror, (w - 1) - cols, cols)
        x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
        return x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))

    def normalize(self, x: Tensor) -> Tensor:
        """(x - mean) / std per channel, x in [0, 1]."""
        mean, std = self._mean_std(x)
        return (x - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`normalize`: back to [0, 1] for display."""
        mean, std = self._mean_std(x)
        return x * std + mean

    def _mean_std(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] != len(self.mean):
            raise ValueError(f"images have {x.shape[1]} channels but the augmenter expects {len(self.mean)}")
        key = (x.device, x.dtype)
        if key not in self._stats:
            shape = (1, len(self.mean), 1, 1)
            self._stats[key] = (
                torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(shape),
                torch.tensor(self.std, device=x.device, dtype=x.dtype).view(shape),
            )
        return self._stats[key]

    def _geometric(self, x: Tensor, m: dict[str, Tensor]) -> Tensor:
        """One affine warp per sample composing rotate, shear and translate (bilinear)."""
        n = x.shape[0]
        angle = m["rotate"] * math.radians(MAX_ROTATE_DEGREES)
        cos, sin = torch.cos(angle), torch.sin(angle)
        sx, sy = m["shear_x"] * MAX_SHEAR, m["shear_y"] * MAX_SHEAR
        tx, ty = m["translate_x"] * (2 * MAX_TRANSLATE), m["translate_y"] * (2 * MAX_TRANSLATE)
        # [rotate · shear | translate], written out: rotate = [[cos, -sin], [sin, cos]], shear = [[1, sx], [sy, 1]]
        theta = torch.stack([cos - sin * sy, cos * sx - sin, tx, sin + cos * sy, sin * sx + cos, ty], 1).view(n, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # sample (x - fill) with zero padding, so pixels moved in from outside take the fill value
        return F.grid_sample(x - self.fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + self.fill

    def _cutout(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Grey square of side ``cutout * H`` at a uniform random centre (clipped at the border)."""
        if self.cutout <= 0:
            return x
        n, _, h, w = x.shape
        size = max(1.0, self.cutout * h)
        cy = torch.rand(n, 1, 1, generator=generator, device=x.device) * h
        cx = torch.rand(n, 1, 1, generator=generator, device=x.device) * w
        rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + 0.5
        cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + 0.5
        box = ((rows - cy).abs() <= size / 2) & ((cols - cx).abs() <= size / 2)
        return torch.where(box.unsqueeze(1), torch.full_like(x, 0.5), x)


class VectorAugmenter:
    """Views of feature vectors (the 2-D toy): Gaussian jitter, small for weak, larger for strong."""

    kind = "vector"

    def __init__(self, weak_noise: float = 0.05, strong_noise: float = 0.25) -> None:
        self.weak_noise = check_float("weak_noise", weak_noise, 0.0)
        self.strong_noise = check_float("strong_noise", strong_noise, 0.0)

    def plain(self, x: Tensor) -> Tensor:
        return x.float()

    def weak(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self._jitter(x, self.weak_noise, generator)

    def strong(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self._jitter(x, self.strong_noise, generator)

    @staticmethod
    def _jitter(x: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
        x = x.float()
        return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


Augmenter = ImageAugmenter | VectorAugmenter


def to_unit(images: Tensor) -> Tensor:
    """uint8 in [0, 255] -> float in [0, 1]; float input is taken as already in [0, 1]."""
    if images.dim() != 4:
        raise ValueError(f"images must be N×C×H×W, got shape {tuple(images.shape)}")
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def _reflect(index: Tensor, size: int) -> Tensor:
    """Mirror out-of-range indices back into [0, size) without repeating the edge (numpy "reflect")."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


# -- colour ops: x in [0, 1] (N×C×H×W), m in [-1, 1] per sample ----------------------------------
def _per_sample(m: Tensor) -> Tensor:
    return m.view(-1, 1, 1, 1)


def _blend(degenerate: Tensor, x: Tensor, m: Tensor) -> Tensor:
    """PIL ImageEnhance: degenerate + factor * (x - degenerate), factor = 1 + 0.95 m."""
    return (degenerate + (1 + MAX_ENHANCE * _per_sample(m)) * (x - degenerate)).clamp(0, 1)


def _grey(x: Tensor) -> Tensor:
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def autocontrast(x: Tensor, m: Tensor) -> Tensor:
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-8), x)


def brightness(x: Tensor, m: Tensor) -> Tensor:
    return _blend(torch.zeros_like(x), x, m)


def color(x: Tensor, m: Tensor) -> Tensor:
    return _blend(_grey(x).expand_as(x), x, m)


def contrast(x: Tensor, m: Tensor) -> Tensor:
    return _blend(_grey(x).mean((1, 2, 3), keepdim=True).expand_as(x), x, m)


def sharpness(x: Tensor, m: Tensor) -> Tensor:
    """Blend with PIL's SMOOTH filter, (3×3 sum + 4·centre) / 13."""
    box = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1) * 9
    return _blend((box + 4 * x) / 13, x, m)


def posterize(x: Tensor, m: Tensor) -> Tensor:
    """Keep 8 - round(4|m|) bits (between 4 and 8)."""
    drop = torch.pow(2.0, torch.round(4 * _per_sample(m).abs()))
    return torch.floor(torch.floor(x * 255) / drop) * drop / 255


def solarize(x: Tensor, m: Tensor) -> Tensor:
    """Invert pixels at or above the threshold 1 - |m|."""
    return torch.where(x >= 1 - _per_sample(m).abs(), 1 - x, x)


def equalize(x: Tensor, m: Tensor) -> Tensor:
    """Histogram equalisation per image and channel through a 256-bin cumulative histogram."""
    n, c, h, w = x.shape
    levels = (x * 255).round().long().clamp(0, 255).view(n, c, h * w)
    hist = torch.zeros(n, c, 256, device=x.device, dtype=x.dtype).scatter_add_(2, levels, torch.ones_like(x).view(n, c, -1))
    cdf = hist.cumsum(2)
    cdf_min = torch.where(hist > 0, cdf, torch.full_like(cdf, float(h * w))).amin(2, keepdim=True)
    span = (h * w - cdf_min).clamp_min(1)
    lut = ((cdf - cdf_min) / span).clamp(0, 1)
    out = lut.gather(2, levels).view(n, c, h, w)
    return torch.where((h * w - cdf_min).view(n, c, 1, 1) > 0, out, x)


_COLOUR_FUNCS = {
    "autocontrast": autocontrast,
    "brightness": brightness,
    "color": color,
    "contrast": contrast,
    "equalize": equalize,
    "posterize": posterize,
    "sharpness": sharpness,
    "solarize": solarize,
}
