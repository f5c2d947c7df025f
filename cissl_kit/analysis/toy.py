"""A 2-D picture of LayerMatch's argument: wrong pseudo-labels in a low-density region tilt a
linear classifier.

Two Gaussian classes (the head on the left, the tail on the right) are separated by a sparse
"bridge". A linear classifier fitted on the few labeled points pseudo-labels the unlabeled ones;
those above the confidence threshold are used. In the bridge's upper half, a fraction of the
tail's pseudo-labels is wrong — they go to the head class, as a head-biased model would label
them. Refitting the linear classifier on these pseudo-labels tilts its boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_float


@dataclass
class TiltDemo:
    """Points, pseudo-labels and three fitted boundaries ``w·x + b = 0``."""

    labeled_x: np.ndarray
    labeled_y: np.ndarray
    unlabeled_x: np.ndarray
    unlabeled_y: np.ndarray  # true labels
    pseudo_labels: np.ndarray
    used: np.ndarray  # above the threshold
    wrong: np.ndarray  # used and wrong
    boundaries: dict[str, tuple[np.ndarray, float]]
    accuracy: dict[str, float]  # on fresh points from both classes
    bridge_accuracy: dict[str, float]  # on fresh points of the low-density bridge

    def tilt_degrees(self, name: str) -> float:
        """Angle between a boundary and the ideal vertical one, in degrees."""
        w, _ = self.boundaries[name]
        return math.degrees(math.atan2(w[1], w[0]))


def fit_linear(x: np.ndarray, y: np.ndarray, l2: float = 0.02, steps: int = 200) -> tuple[np.ndarray, float]:
    """Logistic regression ``p(y=1) = σ(w·x + b)`` with an L2 penalty on w, by L-BFGS."""
    xs = torch.as_tensor(x, dtype=torch.float64)
    ys = torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, ys) + l2 * (w @ w)
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy().copy(), float(b.detach())


def _sample(rng: np.random.Generator, n: int, centre: float, spread: float) -> np.ndarray:
    return np.array([centre, 0.0]) + spread * rng.standard_normal((n, 2))


def pseudo_label_tilt(noise_rate: float = 0.5, threshold: float = 0.7, seed: int = 0) -> TiltDemo:
    """Fit boundaries on labeled data only, and with clean and with noisy pseudo-labels."""
    noise_rate = check_float("noise_rate", noise_rate, 0.0, 1.0)
    threshold = check_float("threshold", threshold, 0.5, 1.0)
    rng = np.random.default_rng(seed)
    spread = 0.8
    labeled_x = np.concatenate([_sample(rng, 8, -2.0, spread), _sample(rng, 8, 2.0, spread)])
    labeled_y = np.repeat([0, 1], 8)
    bridge = np.stack([rng.uniform(-1.0, 1.0, 80), rng.uniform(-3.0, 3.0, 80)], 1)
    unlabeled_x = np.concatenate([_sample(rng, 300, -2.0, spread), _sample(rng, 100, 2.0, spread), bridge])
    unlabeled_y = np.concatenate([np.zeros(300, int), np.ones(100, int), (bridge[:, 0] > 0).astype(int)])

    w0, b0 = fit_linear(labeled_x, labeled_y)
    p1 = 1.0 / (1.0 + np.exp(-(unlabeled_x @ w0 + b0)))
    pseudo = (p1 >= 0.5).astype(int)
    used = np.maximum(p1, 1 - p1) >= threshold
    # head bias in the upper half of the bridge: tail pseudo-labels turn into head ones
    in_bridge = np.arange(len(unlabeled_x)) >= 400
    flip = in_bridge & (unlabeled_x[:, 1] > 0) & (pseudo == 1) & (rng.uniform(size=len(pseudo)) < noise_rate)
    noisy = np.where(flip, 0, pseudo)

    def fit_with(labels: np.ndarray) -> tuple[np.ndarray, float]:
        return fit_linear(np.concatenate([labeled_x, unlabeled_x[used]]), np.concatenate([labeled_y, labels[used]]))

    boundaries = {"labeled only": (w0, b0), "clean pseudo-labels": fit_with(pseudo),
                  "noisy pseudo-labels": fit_with(noisy)}
    test_x = np.concatenate([_sample(rng, 500, -2.0, spread), _sample(rng, 500, 2.0, spread)])
    test_y = np.repeat([0, 1], 500)
    bridge_x = np.stack([rng.uniform(-1.0, 1.0, 1000), rng.uniform(-3.0, 3.0, 1000)], 1)

    def accuracy(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return {name: float(np.mean(((x @ w + b) > 0).astype(int) == y)) for name, (w, b) in boundaries.items()}

    return TiltDemo(labeled_x, labeled_y, unlabeled_x, unlabeled_y, noisy, used, used & (noisy != unlabeled_y),
                    boundaries, accuracy(test_x, test_y), accuracy(bridge_x, (bridge_x[:, 0] > 0).astype(int)))
