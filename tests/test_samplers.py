import torch

from cissl_kit.data import ClassBalancedSampler, RandomSampler, make_sampler
from cissl_kit.utils import make_generator

GEN = lambda: make_generator(0, torch.device("cpu"))  # noqa: E731


def test_random_sampler_visits_every_index_once_per_epoch():
    indices = torch.arange(100, 130)
    sampler = RandomSampler(indices, 7, GEN())
    drawn = torch.cat([sampler.next() for _ in range(30)])  # 210 = 7 epochs
    for epoch in drawn.view(7, 30):
        assert sorted(epoch.tolist()) == list(range(100, 130))


def test_class_balanced_sampler_is_uniform_over_classes():
    counts = [1000, 300, 100, 30, 10, 3]
    labels = torch.repeat_interleave(torch.arange(6), torch.tensor(counts))
    indices = torch.arange(labels.numel()) + 5000
    sampler = ClassBalancedSampler(indices, labels, 6, 64, GEN())
    drawn = torch.cat([sampler.next() for _ in range(200)])
    assert drawn.min() >= 5000 and drawn.max() < 5000 + labels.numel()
    freq = torch.bincount(labels[drawn - 5000], minlength=6).float() / drawn.numel()
    # rounds over the classes make every class exactly 1/6 of each 6 consecutive draws (±1 round)
    assert (freq - 1 / 6).abs().max() < 0.002
    # inside the rarest class every sample is drawn
    rare = drawn[labels[drawn - 5000] == 5]
    assert set(rare.tolist()) == set(indices[labels == 5].tolist())


def test_class_balanced_sampler_skips_empty_classes():
    labels = torch.tensor([0, 0, 0, 2, 2])
    sampler = make_sampler("balanced", torch.arange(5), 10, labels=labels, num_classes=4, generator=GEN())
    classes = labels[torch.cat([sampler.next() for _ in range(20)])]
    assert set(classes.tolist()) == {0, 2}
    assert abs((classes == 0).float().mean().item() - 0.5) < 0.01


def test_random_sampling_follows_the_class_distribution():
    labels = torch.tensor([0] * 90 + [1] * 10)
    sampler = make_sampler("random", torch.arange(100), 50, generator=GEN())
    drawn = torch.cat([sampler.next() for _ in range(20)])
    assert int((labels[drawn] == 1).sum()) == 100  # exactly 10% of 1,000 draws over 10 epochs
