"""SeMi's balanced confidence-decay memory bank (Eq. 7), vectorised."""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice, check_fits_in_memory, check_float, check_int

BANK_POLICIES = ("confidence", "fifo")


class BalancedMemoryBank:
    """``slots`` embeddings per class, ranked by confidence.

    * **push**: a new embedding enters its (pseudo-)class only if its confidence beats the
      class's lowest stored confidence, and replaces that entry. Many candidates at once give the
      same result as inserting them one by one: each class keeps the ``slots`` most confident of
      its stored and new embeddings (ties keep the stored one).
    * **decay** (Eq. 7): every stored confidence is multiplied by ``decay`` (β), so old
      easy examples eventually make room for new ones.
    * **prototypes**: the mean of each class's *filled* slots.

    ``policy="fifo"`` keeps the newest embeddings instead (a DASO-style class-balanced queue;
    the "w/o bank" ablation). All operations run on the device without host synchronisation.
    """

    def __init__(self, num_classes: int, slots: int, dim: int, decay: float = 0.99, policy: str = "confidence",
                 device: torch.device | str = "cpu") -> None:
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.slots = check_int("slots", slots, minimum=1)
        self.dim = check_int("dim", dim, minimum=1)
        self.decay_factor = check_float("decay", decay, 0.0, 1.0)
        self.policy = check_choice("policy", policy, BANK_POLICIES)
        check_fits_in_memory(f"a memory bank of {num_classes} classes × {slots:,} slots × {dim} dimensions",
                             num_classes * slots * (4 * dim + 12), device, "lower slots (CLI: --bank-slots)")
        self.features = torch.zeros(num_classes, slots, dim, device=device)
        self.confidences = torch.zeros(num_classes, slots, device=device)
        self.stamps = torch.full((num_classes, slots), -1, dtype=torch.long, device=device)  # push count at entry
        self.pushes = 0

    @property
    def filled(self) -> Tensor:
        """``K×B`` booleans: which slots hold an embedding."""
        return self.stamps >= 0

    @torch.no_grad()
    def push(self, embeddings: Tensor, labels: Tensor, confidences: Tensor, mask: Tensor | None = None) -> None:
        """Offer ``embeddings`` (N×D) with (pseudo-)``labels`` and ``confidences``; ``mask`` > 0 marks candidates."""
        k, b, n = self.num_classes, self.slots, embeddings.shape[0]
        device = self.features.device
        candidate = labels.view(1, n) == torch.arange(k, device=device).view(k, 1)  # K×N
        if mask is not None:
            candidate &= (mask > 0).view(1, n)
        neg_inf = torch.tensor(float("-inf"), device=device)
        if self.policy == "confidence":
            stored = torch.where(self.filled, self.confidences, neg_inf)
            offered = torch.where(candidate, confidences.float().view(1, n), neg_inf)
        else:  # fifo: newer wins
            stored = torch.where(self.filled, self.stamps.float(), neg_inf)
            offered = torch.where(candidate, torch.tensor(float(self.pushes), device=device), neg_inf)
        # stable sort: among equal priorities the stored entry (lower index) stays
        priority, order = torch.sort(torch.cat([stored, offered], 1), dim=1, descending=True, stable=True)
        order = order[:, :b]
        from_bank = order < b
        rows = torch.arange(k, device=device).view(k, 1)
        source = torch.where(from_bank, rows * b + order, k * b + (order - b))  # index into the pools below
        self.features = torch.cat([self.features.view(k * b, -1), embeddings.detach().float()])[source]
        self.confidences = torch.cat([self.confidences.view(-1), confidences.detach().float()])[source]
        new_stamps = torch.cat([self.stamps.view(-1), torch.full((n,), self.pushes, dtype=torch.long, device=device)])
        self.stamps = torch.where(torch.isfinite(priority[:, :b]), new_stamps[source], torch.full_like(order, -1))
        self.pushes += 1

    @torch.no_grad()
    def decay(self) -> None:
        """Eq. 7: ``a_{k,i} ← β · a_{k,i}`` for every stored confidence."""
        self.confidences.mul_(self.decay_factor)

    @torch.no_grad()
    def prototypes(self) -> tuple[Tensor, Tensor]:
        """Per-class mean of the filled slots (``K×D``) and which classes have any (``K``)."""
        filled = self.filled.float()
        count = filled.sum(1)
        protos = (self.features * filled.unsqueeze(2)).sum(1) / count.clamp_min(1).unsqueeze(1)
        return protos, count > 0

    def state_dict(self) -> dict:
        return {"features": self.features, "confidences": self.confidences, "stamps": self.stamps,
                "pushes": self.pushes}

    def load_state_dict(self, state: dict) -> None:
        device = self.features.device
        self.features, self.confidences = state["features"].to(device), state["confidences"].to(device)
        self.stamps, self.pushes = state["stamps"].to(device), int(state["pushes"])
