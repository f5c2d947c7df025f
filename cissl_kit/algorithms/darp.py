"""DARP (Kim et al., NeurIPS 2020): distribution aligning refinery of pseudo-labels, on FixMatch,
as in USB (``semilearn/imb_algorithms/darp``), which copies the official ``bbuing9/DARP`` code.

Every unlabeled image's latest weak-view prediction is kept (``pseudo_orig``). After the warm-up,
every ``refine_every`` steps the whole table is refined so that its class totals match the target
distribution (the labeled class distribution scaled to the unlabeled set's size, as USB does):

1. *Iterative normalisation* (``estimate_pseudo``): per class k, the ``int(α·q_k)`` most confident
   rows vote for k; each row is rescaled by ``q_k / (sum of those confidences)`` and renormalised.
2. *The convex solver* (``opt_solver``, DARP Eq. 6–8): the refined labels ``M = A/e · X · Y``
   minimise an entropy-weighted KL to the predictions subject to rows summing to 1 and columns
   to q; alternating row normalisation and a secant-method root per class for the column dual.

The step's pseudo-label is the argmax of the refined row; the mask stays FixMatch's (the original
prediction's confidence). The first step past the warm-up refines too: the code starts refining at
the next multiple of ``refine_every`` and until then reads its all-uniform refined table, whose
argmax is class 0 for every image (9 of 250,000 steps there, 9 of the 600 after the warm-up of a
1,000-step run). The whole refinement is vectorised on the device: the official code's
per-class ``scipy.optimize.newton`` calls are run for all classes at once by the same secant
iterations (start point, step formula and stopping rule ``|p − p1| ≤ tol`` as SciPy's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..losses import Consistency, logit_adjusted_cross_entropy, masked_cross_entropy
from ..utils import sync_is_free
from .base import Batch, StepContext, StepOutput, forward_split, hparam
from .fixmatch import FixMatch


def estimate_pseudo(target: Tensor, saved: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """DARP's iterative normalisation: (0/1 votes (N, K), per-class scale ``(q + 1e-6)/(k + 1e-6)``)."""
    n, _ = saved.shape
    take = (alpha * target).floor().clamp_max(n)  # int(α·q_k), at most N rows
    sorted_probs, order = saved.sort(dim=0, descending=True)
    ranks = torch.arange(n, device=saved.device, dtype=saved.dtype).unsqueeze(1)
    chosen = (ranks < take.unsqueeze(0)).to(saved.dtype)
    votes = torch.zeros_like(saved).scatter_(0, order, chosen)
    k_probs = (sorted_probs * chosen).sum(0)
    return votes, (target + 1e-6) / (k_probs + 1e-6)


def _secant_roots(func, start: Tensor, tol: float, max_iter: int) -> Tensor:
    """Roots of ``func`` (vectorised over its argument's entries) by SciPy's secant iteration."""
    p0 = start
    p1 = start * (1 + 1e-4)
    p1 = p1 + torch.where(p1 >= 0, 1e-4, -1e-4)
    q0, q1 = func(p0), func(p1)
    swap = q1.abs() < q0.abs()
    p0, p1, q0, q1 = torch.where(swap, p1, p0), torch.where(swap, p0, p1), torch.where(swap, q1, q0), torch.where(swap, q0, q1)
    active = torch.ones_like(start, dtype=torch.bool)
    result = p1.clone()
    for _ in range(max_iter):
        flat = q1 == q0
        safe_q1, safe_q0 = torch.where(flat, 1.0, q1), torch.where(flat, 1.0, q0)
        p = torch.where(q1.abs() > q0.abs(), (-q0 / safe_q1 * p1 + p0) / (1 - q0 / safe_q1),
                        (-q1 / safe_q0 * p0 + p1) / (1 - q1 / safe_q0))
        p = torch.where(flat, (p1 + p0) / 2, p)
        done = flat | ((p - p1).abs() <= tol)
        result = torch.where(active, p, result)
        active = active & ~done
        if sync_is_free(start.device) and not active.any():  # the CPU may stop early; a GPU runs all
            break
        p0, q0, p1 = p1, q1, torch.where(active, p, p1)
        q1 = func(p1)
    return result


def darp_solve(probs: Tensor, target: Tensor, num_iter: int = 10, num_newton: int = 30) -> Tensor:
    """DARP's ``opt_solver``: refined labels (N, K) with rows summing to 1 and columns ≈ ``target``."""
    entropy = -(probs * torch.log(probs + 1e-6)).sum(1)
    w = (1.0 / entropy).unsqueeze(1)  # (N, 1)
    a_e = probs / math.e
    r = torch.ones(probs.shape[0], dtype=probs.dtype, device=probs.device)
    y_dual = torch.zeros(probs.shape[1], dtype=probs.dtype, device=probs.device)  # prev_Y
    y_t = torch.exp(-torch.ones_like(y_dual).unsqueeze(0) / w)
    for _ in range(num_iter):
        x_t = r / (a_e * y_t).sum(1)  # row normalisation
        weighted = a_e * x_t.unsqueeze(1)  # (N, K)
        y_dual = _secant_roots(lambda y: (weighted * torch.exp(-y.unsqueeze(0) / w)).sum(0) - target,
                               y_dual, tol=0.1, max_iter=num_newton)
        y_t = torch.exp(-y_dual.unsqueeze(0) / w)
    x_t = r / (a_e * y_t).sum(1)
    return a_e * x_t.unsqueeze(1) * y_t


def darp_refine(saved: Tensor, target: Tensor, alpha: float, num_iter: int) -> Tensor:
    """One DARP refinement of the saved predictions: iterative normalisation, then the solver."""
    votes, scale = estimate_pseudo(target, saved, alpha)
    scaled = saved * (votes * scale.unsqueeze(0)) + 1e-6
    return darp_solve(scaled / scaled.sum(1, keepdim=True), target, num_iter)


@dataclass
class DARP(FixMatch):
    """FixMatch whose pseudo-labels come from DARP's refined table after the warm-up."""

    name = "darp"
    darp_warmup: float = hparam(0.4, "fraction of training before refinement starts (DARP code: 200 of 500 epochs)",
                                low=0.0, high=1.0)
    darp_alpha: float = hparam(2.0, "α of the iterative normalisation (code: 2)", low=0.0, low_open=True)
    darp_iter_T: int = hparam(10, "iterations of the convex solver (code: 10)", low=1)
    darp_refine_every: int = hparam(10, "steps between refinements of the whole table (code: 10)", low=1)

    def setup(self, net: nn.Module, data) -> None:
        super().setup(net, data)
        device, pool = data.device, data.unlabeled_idx
        self.dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        n, k = pool.numel(), data.num_classes
        self.row_of = torch.full((data.images.shape[0],), -1, dtype=torch.long, device=device)
        self.row_of[pool] = torch.arange(n, device=device)
        self.target = (data.class_prior() * n).to(self.dtype)  # USB: the labeled distribution × |U|
        self.pseudo_orig = torch.full((n, k), 1.0 / k, dtype=self.dtype, device=device)
        self.pseudo_refine = self.pseudo_orig.clone()

    def first_refinement(self, total_steps: int) -> int:
        """The first step past the warm-up: the first step k with k > warm-up · total (in exact arithmetic;
        the product is rounded to 9 decimals first, so 0.29 · 100 counts as 29, not 28.999…)."""
        return math.floor(round(self.darp_warmup * total_steps, 9)) + 1

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w, logits_s = forward_split(net, batch.x_lb, batch.x_ulb_w, batch.x_ulb_s)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        probs = torch.softmax(logits_w.detach().float(), dim=1)
        mask = self._mask(probs, ctx)
        rows = self.row_of[batch.idx_ulb]
        self.pseudo_orig[rows] = probs.to(self.dtype)
        targets = probs
        first = self.first_refinement(ctx.total_steps)
        if ctx.step >= first:  # past the warm-up, in whole steps (no float comparison of fractions)
            if ctx.step % self.darp_refine_every == 0 or ctx.step == first:
                self.pseudo_refine = darp_refine(self.pseudo_orig, self.target, self.darp_alpha, self.darp_iter_T)
            targets = self.pseudo_refine[rows].float()
        pseudo_labels = targets.argmax(1)
        u = Consistency(masked_cross_entropy(logits_s, pseudo_labels, mask), mask, pseudo_labels, probs)
        return self._output(loss_s, u, **self._fairness(logits_s, mask))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pseudo_orig": self.pseudo_orig, "pseudo_refine": self.pseudo_refine}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.pseudo_orig, self.pseudo_refine = state.pop("pseudo_orig"), state.pop("pseudo_refine")
        super().load_state_dict(state)
