"""Easy / hard / ultra-hard examples (SeMi Sec. 3.1) and a replay of SeMi's memory bank."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..data import SSLData
from ..memory_bank import BalancedMemoryBank
from ..utils import make_generator

EASY, HARD, ULTRA_HARD = 0, 1, 2


def hardness_categories(confidence: Tensor, threshold: float, easy_threshold: float = 0.95) -> Tensor:
    """0 = easy (max p >= 0.95), 1 = hard (τ <= max p < 0.95), 2 = ultra-hard (max p < τ)."""
    categories = torch.full_like(confidence, HARD, dtype=torch.long)
    categories[confidence >= max(threshold, easy_threshold)] = EASY
    categories[confidence < threshold] = ULTRA_HARD
    return categories


@torch.no_grad()
def replay_memory_banks(
    net: nn.Module,
    data: SSLData,
    banks: Mapping[str, BalancedMemoryBank],
    steps: int = 300,
    batch_size: int = 192,
    threshold: float = 0.7,
    decay_every: int = 50,
    seed: int = 0,
) -> Mapping[str, BalancedMemoryBank]:
    """Feed the same stream of strong-view embeddings into each bank, as SeMi's training does.

    Each step draws ``batch_size`` unlabeled images, makes a strong view, embeds it with ``net``
    (eval mode) and pushes the embeddings whose confidence passes ``threshold`` under their
    pseudo-label; every ``decay_every`` steps each bank decays (a bank with ``decay=1`` never does).
    """
    net.eval()
    generator = make_generator(seed, data.device)
    pool = data.unlabeled_idx
    for step in range(steps):
        idx = pool[torch.randint(pool.numel(), (batch_size,), generator=generator, device=data.device)]
        embeddings = net.features(data.augmenter.strong(data.images[idx], generator))
        confidence, labels = torch.softmax(net.head(embeddings), 1).max(1)
        mask = (confidence >= threshold).float()
        for bank in banks.values():
            bank.push(embeddings, labels, confidence, mask)
            if (step + 1) % decay_every == 0:
                bank.decay()
    return banks
