"""Index-batch samplers that draw on the training device without host synchronisation."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_choice, check_fits_in_memory, check_int

SAMPLERS = ("random", "balanced")


class RandomSampler:
    """Random sampling: a fresh permutation of ``indices`` each epoch; a batch may span two epochs."""

    def __init__(self, indices: Tensor, batch_size: int, generator: torch.Generator | None = None) -> None:
        if indices.numel() == 0:
            raise ValueError("indices must not be empty: there is nothing to sample from")
        self.indices = indices
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        # one batch spanning many epochs draws their permutations at once: 4-byte keys and 8-byte indices
        check_fits_in_memory(f"a batch of {batch_size:,} indices", 12 * batch_size, indices.device,
                             "lower batch_size")
        self.generator = generator
        self._order = self._permutation()
        self._position = 0

    def _permutation(self) -> Tensor:
        return self.indices[torch.randperm(self.indices.numel(), generator=self.generator, device=self.indices.device)]

    def next(self) -> Tensor:
        parts, needed, size = [], self.batch_size, self.indices.numel()
        while needed > 0:
            if self._position == size:
                if needed > size:  # whole epochs inside one batch: all their permutations in one draw
                    epochs = needed // size
                    keys = torch.rand(epochs, size, generator=self.generator, device=self.indices.device)
                    parts.append(self.indices[keys.argsort(1)].flatten())
                    needed -= epochs * size
                    continue
                self._order, self._position = self._permutation(), 0
            take = min(needed, size - self._position)
            parts.append(self._order[self._position : self._position + take])
            self._position += take
            needed -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {"order": self._order, "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        self._order, self._position = state["order"].to(self.indices.device), int(state["position"])


class ClassBalancedSampler:
    """Class-balanced sampling: every class equally likely, whatever its size.

    The class of each draw comes from a stream of shuffled rounds over the non-empty classes
    (each round names every class once, so any ``K`` consecutive draws are exactly balanced);
    the sample inside its class is drawn uniformly. Empty classes are skipped.
    """

    def __init__(
        self,
        indices: Tensor,
        labels: Tensor,
        num_classes: int,
        batch_size: int,
        generator: torch.Generator | None = None,
    ) -> None:
        if indices.numel() == 0:
            raise ValueError("indices must not be empty: there is nothing to sample from")
        if labels.shape != indices.shape:
            raise ValueError(f"labels must have one entry per index: {tuple(labels.shape)} vs {tuple(indices.shape)}")
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes - 1}] for class-balanced sampling")
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.generator = generator
        order = torch.argsort(labels, stable=True)
        self.sorted_indices = indices[order]
        counts = torch.bincount(labels, minlength=num_classes)
        self.class_counts = counts
        self.class_offsets = torch.cumsum(counts, 0) - counts
        self.classes = torch.nonzero(counts > 0).flatten()  # non-empty classes (one sync, at set-up)
        self._rounds = RandomSampler(self.classes, batch_size, generator)

    def next(self) -> Tensor:
        classes = self._rounds.next()
        u = torch.rand(classes.shape, generator=self.generator, device=classes.device)
        within = (u * self.class_counts[classes]).long().clamp_max(self.class_counts[classes] - 1)
        return self.sorted_indices[self.class_offsets[classes] + within]

    def state_dict(self) -> dict:
        return self._rounds.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._rounds.load_state_dict(state)


def make_sampler(
    kind: str,
    indices: Tensor,
    batch_size: int,
    labels: Tensor | None = None,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
) -> RandomSampler | ClassBalancedSampler:
    """``random`` or ``balanced`` (class-balanced; needs ``labels`` of the indices and ``num_classes``)."""
    check_choice("sampler", kind, SAMPLERS)
    if kind == "random":
        return RandomSampler(indices, batch_size, generator)
    if labels is None or num_classes is None:
        raise ValueError("the balanced sampler needs labels and num_classes")
    return ClassBalancedSampler(indices, labels, num_classes, batch_size, generator)
