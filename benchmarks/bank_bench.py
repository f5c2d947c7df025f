"""SeMi's memory bank: the kit's against the official one, side by side in one run.

    python benchmarks/bank_bench.py [--classes 10,100] [--slots 128] [--dim 128] [--candidates 448] [--mask-rate 1.0]

``OfficialBank`` re-implements the bank of SeMi's public code (``pywin/SeMi``,
``utils_sup/memorybank.py``) with its push and decay semantics as published: a Python loop over
the confident samples, each accepted one shifted into its class's sorted row and the row re-sorted
(the code also drops the row's *first*, most confident, feature when it does so: copied, since it
is what that code costs); a decay that spares the entries pushed since the last decay and
re-sorts each class; prototypes as the mean over all slots. One step is a push of ``--candidates``
embeddings (``--mask-rate`` of them confident enough to be offered: all by default, 448 candidates a
step as the target states), the prototypes, and a decay every 50 steps (amortised). Both banks are first filled by 100 steps; then rounds of 50 steps (one decay each) are interleaved
and the median taken. Target: the kit's bank ≥ 20× faster at K = 100 and ≥ 10× at K = 10. The
last columns time the kit's bank as it was before it stopped recounting its prototype sums at
every decay (a decay changes only confidences).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cissl_kit.memory_bank import BalancedMemoryBank
from cissl_kit.utils import resolve_device

DECAY_EVERY = 50


class OfficialBank:
    """The official SeMi bank's algorithm (see the module docstring), on ``device``."""

    def __init__(self, classes: int, slots: int, dim: int, device: torch.device, beta: float = 0.99) -> None:
        self.classes, self.beta, self.device = classes, beta, device
        self.memory = torch.zeros(classes, slots, dim, device=device)
        self.confidences = torch.zeros(classes, slots, device=device)
        self.exceed_confidences: list[list[Tensor]] = [[] for _ in range(classes)]

    def push(self, features, labels, confidences, mask) -> None:
        selected = mask.bool()
        if not bool(selected.any()):
            return
        feats, targets, confs = features[selected], labels[selected], confidences[selected]
        for i in range(feats.size(0)):  # one sample at a time, as the official code does
            c = targets[i]
            if confs[i] > self.confidences[c][-1]:
                self.memory[c] = torch.cat((self.memory[c][1:], feats[i].unsqueeze(0)))
                self.confidences[c][-1] = confs[i]
                order = torch.argsort(self.confidences[c], descending=True)
                self.exceed_confidences[c].append(confs[i])
                self.memory[c] = self.memory[c][order]
                self.confidences[c] = self.confidences[c][order]

    def decay(self) -> None:
        for c in range(self.classes):  # spare the entries pushed since the last decay, re-sort
            stored = self.confidences[c]
            unique1, count1 = torch.unique(stored, return_counts=True)
            pushed = torch.tensor(self.exceed_confidences[c], device=self.device)
            unique2, count2 = torch.unique(pushed, return_counts=True)
            common = unique1[torch.isin(unique1, unique2)]
            others = torch.nonzero(~torch.isin(stored, common)).flatten()
            in1, in2 = count1[torch.isin(unique1, unique2)], count2[torch.isin(unique2, unique1)]
            old_values, old_counts = common[in1 > in2], in1[in1 > in2] - in2[in1 > in2]
            old = []
            for value, count in zip(old_values, old_counts):
                old.extend(torch.where(stored == value)[0][: int(count)].tolist())
            indices = torch.cat([torch.tensor(old, dtype=torch.long, device=self.device), others])
            if indices.numel():
                self.confidences[c][indices] *= self.beta
                order = torch.argsort(self.confidences[c], descending=True)
                self.memory[c] = self.memory[c][order]
                self.confidences[c] = self.confidences[c][order]
        self.exceed_confidences = [[] for _ in range(self.classes)]

    def prototypes(self):
        return self.memory.mean(1)


Tensor = torch.Tensor


class RecountingBank(BalancedMemoryBank):
    """The kit's bank as it was before: every decay recounted the prototype sums from the whole bank."""

    def decay(self) -> None:
        super().decay()
        self._recount()


def _batches(count: int, n: int, classes: int, dim: int, device: torch.device, seed: int,
             mask_rate: float = 1.0) -> list[tuple]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for _ in range(count):
        feats = torch.randn(n, dim, generator=g)
        labels = torch.randint(0, classes, (n,), generator=g)
        confs = 0.7 + 0.3 * torch.rand(n, generator=g)
        mask = (torch.rand(n, generator=g) < mask_rate).float()
        out.append(tuple(t.to(device) for t in (feats, labels, confs, mask)))
    return out


def _step(bank, batch, step: int) -> None:
    feats, labels, confs, mask = batch
    bank.push(feats, labels, confs, mask)
    bank.prototypes()
    if (step + 1) % DECAY_EVERY == 0:
        bank.decay()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(classes: int, slots: int, dim: int, n: int, device: torch.device, repeats: int, per_round: int,
            mask_rate: float = 1.0) -> dict:
    banks = {"official": OfficialBank(classes, slots, dim, device),
             "kit": BalancedMemoryBank(classes, slots, dim, device=device),
             "kit, recount at decay (before)": RecountingBank(classes, slots, dim, device=device)}
    batches = _batches(100 + repeats * per_round, n, classes, dim, device, seed=classes, mask_rate=mask_rate)
    for name, bank in banks.items():  # fill both banks first
        for step in range(100):
            _step(bank, batches[step], step)
    times = {name: [] for name in banks}
    step = 100
    for _ in range(repeats):
        chunk = batches[step: step + per_round]
        for name, bank in banks.items():  # interleaved: a busy machine slows both alike
            _sync(device)
            start = time.perf_counter()
            for i, batch in enumerate(chunk):
                _step(bank, batch, step + i)
            _sync(device)
            times[name].append((time.perf_counter() - start) / per_round)
        step += per_round
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", default="10,100")
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--candidates", type=int, default=448, help="embeddings per step (64 × uratio 7)")
    parser.add_argument("--mask-rate", type=float, default=1.0, help="share of them confident enough to be offered")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=DECAY_EVERY,
                        help=f"steps per timed round (default {DECAY_EVERY}: each round holds one decay, so the "
                             "median cannot leave the decays out)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"SeMi memory bank, {device}, {torch.get_num_threads()} threads: B = {args.slots} slots, D = {args.dim}, "
          f"{args.candidates} embeddings a step, {args.mask_rate:.0%} of them offered, decay every {DECAY_EVERY} steps; "
          f"median of {args.repeats} rounds × {args.steps} steps")
    print(f"{'K':>5}{'official ms':>14}{'kit ms':>10}{'kit speed-up':>15}  target"
          f"{'before: kit ms':>20}{'speed-up':>10}")
    for classes in (int(c) for c in args.classes.split(",")):
        t = measure(classes, args.slots, args.dim, args.candidates, device, args.repeats, args.steps, args.mask_rate)
        ratio = t["official"] / t["kit"]
        before = t["kit, recount at decay (before)"]
        target = 20 if classes >= 100 else 10
        print(f"{classes:>5}{1000 * t['official']:14.2f}{1000 * t['kit']:10.3f}{ratio:14.1f}×  >= {target}×: "
              f"{'met' if ratio >= target else 'NOT met':<8}{1000 * before:11.3f}{t['official'] / before:9.1f}×")


if __name__ == "__main__":
    main()
