import pytest
import torch

from cissl_kit.data import ImageAugmenter, VectorAugmenter
from cissl_kit.data.augment import equalize, posterize, solarize
from cissl_kit.utils import make_generator

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _same_image(digits, n=64):
    return digits.images[:1].repeat(n, 1, 1, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_views_shapes_dtypes_and_device(digits, device):
    aug = digits.augmenter
    x = digits.images[:32].to(device)
    gen = make_generator(0, torch.device(device))
    for view in (aug.weak(x, gen), aug.strong(x, gen), aug.plain(x)):
        assert view.shape == (32, 1, 8, 8) and view.dtype == torch.float32 and view.device.type == device
        assert torch.isfinite(view).all()


def test_strong_views_vary_per_sample(digits):
    views = digits.augmenter.strong(_same_image(digits), make_generator(0, torch.device("cpu")))
    distinct = torch.unique(views.flatten(1), dim=0).shape[0]
    assert distinct >= 48  # 64 copies of one image give (almost) 64 different strong views


def test_weak_views_vary_but_stay_close_to_the_image(digits):
    x = _same_image(digits)
    aug = digits.augmenter
    weak = aug.weak(x, make_generator(0, torch.device("cpu")))
    assert torch.unique(weak.flatten(1), dim=0).shape[0] >= 5  # up to 9 translations of ±1 pixel
    plain = aug.plain(x)
    # a one-pixel shift with reflection keeps the same set of intensities in most rows
    assert (weak - plain).abs().mean() < (aug.strong(x, make_generator(0, torch.device("cpu"))) - plain).abs().mean()


def test_same_seed_same_views_different_seed_different_views(digits):
    x = digits.images[:50]
    aug = digits.augmenter
    a = aug.strong(x, make_generator(7, torch.device("cpu")))
    b = aug.strong(x, make_generator(7, torch.device("cpu")))
    c = aug.strong(x, make_generator(8, torch.device("cpu")))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_padding_no_flip_weak_equals_plain(digits):
    aug = ImageAugmenter(digits.augmenter.mean, digits.augmenter.std, flip=False, crop_padding=0.0)
    x = digits.images[:10]
    assert torch.equal(aug.weak(x), aug.plain(x))


def test_flip_mirrors_images():
    aug = ImageAugmenter((0.0,), (1.0,), flip=True, crop_padding=0.0)
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    views = aug.weak(x, make_generator(0, torch.device("cpu")))
    mirrored = (views == (x.float() / 255).flip(-1)).flatten(1).all(1)
    unchanged = (views == x.float() / 255).flatten(1).all(1)
    assert (mirrored | unchanged).all() and 60 < int(mirrored.sum()) < 140


def test_colour_ops_known_answers():
    x = torch.linspace(0, 1, 16).view(1, 1, 4, 4)
    zero = torch.zeros(1)
    assert torch.equal(solarize(x, zero), torch.where(x >= 1, 1 - x, x))
    quantised = torch.round(x * 255) / 255
    assert torch.allclose(posterize(quantised, zero), quantised)
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert torch.equal(equalize(flat, zero), flat)  # a constant image is left alone
    ramp = torch.tensor([0.1, 0.1, 0.2, 0.9]).view(1, 1, 2, 2)
    assert torch.allclose(equalize(ramp, zero).flatten(), torch.tensor([0.0, 0.0, 0.5, 1.0]))


def test_bad_augmenter_settings_name_the_parameter():
    with pytest.raises(ValueError, match="cutout"):
        ImageAugmenter((0.5,), (0.2,), cutout=1.5)
    with pytest.raises(ValueError, match="std"):
        ImageAugmenter((0.5,), (0.0,))
    with pytest.raises(ValueError, match="channels"):
        ImageAugmenter((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)).plain(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_vector_views():
    aug = VectorAugmenter(0.05, 0.5)
    x = torch.zeros(1000, 2)
    gen = make_generator(0, torch.device("cpu"))
    weak, strong = aug.weak(x, gen), aug.strong(x, gen)
    assert weak.shape == x.shape and abs(weak.std().item() - 0.05) < 0.01 and abs(strong.std().item() - 0.5) < 0.05


def test_weak_view_is_a_reflect_padded_crop():
    import torch.nn.functional as F

    aug = ImageAugmenter((0.0,), (1.0,), flip=True, crop_padding=0.25)  # 2 pixels on 8×8
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    views = aug.weak(x, make_generator(0, torch.device("cpu")))
    padded = F.pad(x.float() / 255, (2, 2, 2, 2), mode="reflect")
    for view, image in zip(views, padded):
        candidates = [image[:, i:i + 8, j:j + 8] for i in range(5) for j in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(view, c) for c in candidates)


def test_per_op_selection_gives_the_same_strong_views():
    """On the CPU colour ops run on the images that drew them only: bit for bit the masked result."""
    from cissl_kit.data.augment import ImageAugmenter

    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    views = []
    for select in (True, False):
        augmenter = ImageAugmenter((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        augmenter.select_per_op = select
        views.append(augmenter.strong(images, torch.Generator().manual_seed(3)))
    assert torch.equal(*views)
