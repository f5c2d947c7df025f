"""Speed report, measured in one run on one batch: steps per second, each method's step time as a
ratio to FixMatch's and to a bare forward + backward (Alternate Sampling: its two training
stages), the data pipeline's share of a step, the share of SeMi's memory bank + certainty
enhancement, evaluation throughput, and FixMatch's step with AMP, channels-last and
``torch.compile`` switched on and off.

    python benchmarks/bench.py [--dataset digits] [--device auto] [--uratio 2] [--compile]
    python benchmarks/bench.py --dataset synthetic-cifar10 --device cuda --batch-size 64 --uratio 7

Rounds of every measurement are interleaved and the median is taken, so a busy shared machine
slows all of them alike. Targets: pipeline <= 10% of a FixMatch step (5% on a GPU); SeMi <= 1.25×
FixMatch; SeMi's bank update + certainty enhancement <= 10% of its step; LayerMatch <= 1.15×
FixMatch; on a GPU FixMatch <= 1.2× a bare forward + backward. On CUDA every method's step also
runs under ``torch.cuda.set_sync_debug_mode("error")``: a step that waits for the GPU fails there.
Also printed: the layer-gradient tracker's cost, per report and spread over its interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F

from cissl_kit import TrainConfig, Trainer, make_ssl_data
from cissl_kit.algorithms import BalancedHeadNet, ClassifierTraining, EmbeddingTraining, TemporalConsistency
from cissl_kit.algorithms.darp import darp_refine
from cissl_kit.analysis import layer_gradient_report
from cissl_kit.losses import certainty_enhanced_labels, semantic_labels
from cissl_kit.models import build_model, default_model
from cissl_kit.registry import ALGORITHMS, build_algorithm


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``n`` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="calls per timed round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dataset", default="digits", help="digits, mnist, synthetic-cifar10 (WRN-28-2 at 32×32) …")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--uratio", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time FixMatch's step under torch.compile")
    parser.add_argument("--track-every", type=int, default=50, help="the tracker's interval, for its overhead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = make_ssl_data(args.dataset, device=args.device)
    config = TrainConfig(progress=False, steps=10_000, batch_size=args.batch_size, uratio=args.uratio)
    device = data.device
    trainers = {name: Trainer(build_algorithm(name), data, config=config) for name in ALGORITHMS}
    if device.type == "cuda":
        check_no_sync(trainers)
    # FixMatch with each speed setting switched the other way (AMP exists on CUDA only)
    variants = {"fixmatch, channels-last off": dict(channels_last=False)}
    if device.type == "cuda":
        variants["fixmatch, AMP off"] = dict(amp=False)
    if args.compile:
        variants["fixmatch, torch.compile on"] = dict(compile=True)
    for name, change in variants.items():
        trainers[name] = Trainer(build_algorithm("fixmatch"), data, config=dataclasses.replace(config, **change))
    # Alternate Sampling's stages 2 and 3 on the labeled part of the same batch
    embedding = EmbeddingTraining()
    embedding.memory = TemporalConsistency(data.images.shape[0], data.num_classes, device)
    stage_net = BalancedHeadNet(build_model(default_model(data.input_shape), data.num_classes, data.input_shape))
    trainers["alternate: embedding stage"] = Trainer(embedding, data, stage_net, config)
    trainers["alternate: classifier stage"] = Trainer(ClassifierTraining(), data, stage_net, config)
    fixmatch = trainers["fixmatch"]
    batch = trainers["simpro"].next_batch()  # every method steps on this same batch (SimPro's has every view)
    net = fixmatch.net
    for name in ("acr", "abc", "darp", "daso"):  # mid-run: estimates, refinement and blending all on
        trainers[name].step = int(0.5 * config.steps)
    darp = trainers["darp"].algorithm

    def bare_forward_backward() -> None:
        logits = net(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        F.cross_entropy(logits[: batch.x_lb.shape[0]], batch.y_lb).backward()

    semi = trainers["semi"]
    semi.step = int(0.5 * config.steps)  # past the warm-up: every SeMi component is on
    with torch.no_grad():
        emb = semi.net.features(batch.x_ulb_s)
        probs = torch.softmax(semi.net.head(semi.net.features(batch.x_ulb_w)), 1)
    confidence, labels = probs.max(1)
    mask = (confidence >= semi.algorithm.threshold).float()

    def semi_bank_and_plce() -> None:
        protos, available = semi.algorithm.bank.prototypes()
        semantic = semantic_labels(emb, protos, available, semi.algorithm.proto_temperature)
        certainty_enhanced_labels(probs, semantic, semi.algorithm.class_weights() * available.any(), 0.2)
        semi.algorithm.bank.push(emb, labels, confidence, mask)

    jobs = {f"step {name}": (lambda t=t: t.train_step(batch)) for name, t in trainers.items()}
    jobs["data pipeline (sample + weak + strong)"] = fixmatch.next_batch
    jobs["bare forward + backward"] = bare_forward_backward
    jobs["SeMi bank update + certainty enhancement"] = semi_bank_and_plce
    jobs["DARP refinement of the whole table"] = lambda: darp_refine(darp.pseudo_orig, darp.target, darp.darp_alpha,
                                                                      darp.darp_iter_T)
    jobs["evaluation (EMA model, whole test set)"] = fixmatch.evaluate
    jobs["layer-gradient report (tracker, once)"] = lambda: layer_gradient_report(
        net, batch.x_lb, batch.y_lb, batch.x_ulb_w, batch.x_ulb_s, batch.y_ulb)
    for job in jobs.values():  # warm-up
        for _ in range(3):
            job()
    rounds: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            rounds[name].append(timed(job, args.steps, device))
    t = {name: statistics.median(values) for name, values in rounds.items()}

    n_lb, n_ulb = config.batch_size, config.batch_size * config.uratio
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    size = "×".join(map(str, data.input_shape))
    print(f"{args.dataset}, {device} ({where}), {default_model(data.input_shape)}, batch {n_lb} labeled + 2×{n_ulb} unlabeled ({size}), "
          f"median of {args.repeats} rounds × {args.steps} calls")
    fix, bare = t["step fixmatch"], t["bare forward + backward"]
    print(f"{'':<42}{'ms':>8}{'× FixMatch':>12}{'× fwd+bwd':>11}")
    for name in jobs:
        print(f"{name:<42}{1000 * t[name]:8.1f}{t[name] / fix:12.2f}{t[name] / bare:11.2f}")
    pipeline = t["data pipeline (sample + weak + strong)"] / fix
    semi_ratio = t["step semi"] / fix
    bank_share = t["SeMi bank update + certainty enhancement"] / t["step semi"]
    layermatch_ratio = t["step layermatch"] / fix
    tracker = t["layer-gradient report (tracker, once)"] / (args.track_every * fix)
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    num_test = data.test_images.shape[0]
    pipeline_target = 0.05 if device.type == "cuda" else 0.10
    print(f"\nFixMatch: {1 / fix:.1f} steps/s; evaluation: {num_test / t['evaluation (EMA model, whole test set)']:.0f} "
          f"test images/s ({num_test} images)")
    print(f"FixMatch step / bare fwd + bwd      = {fix / bare:.2f}   (target on a GPU <= 1.2: {verdict(fix / bare <= 1.2)})")
    print(f"pipeline / FixMatch step            = {pipeline:.3f}  (target <= {pipeline_target}: "
          f"{verdict(pipeline <= pipeline_target)})")
    print(f"SeMi step / FixMatch step           = {semi_ratio:.2f}   (target <= 1.25: {verdict(semi_ratio <= 1.25)})")
    print(f"SeMi bank + certainty / SeMi step   = {bank_share:.3f}  (target <= 0.10: {verdict(bank_share <= 0.10)})")
    print(f"LayerMatch step / FixMatch step     = {layermatch_ratio:.2f}   (target <= 1.15: {verdict(layermatch_ratio <= 1.15)})")
    print(f"tracker overhead, every {args.track_every} steps     = {tracker:.3f}  of training time")
    for name in ("daso", "abc"):
        ratio = t[f"step {name}"] / fix
        print(f"{name.upper() + ' step / FixMatch step':<36}= {ratio:.2f}   (target <= 1.3: {verdict(ratio <= 1.3)})")
    fixmatch_images = n_lb + 2 * n_ulb
    # the methods whose official code trains on more views: the ratio per image, next to the per-step one
    for name, images in (("acr", n_lb + 3 * n_ulb), ("simpro", 2 * n_lb + 3 * n_ulb), ("cdmad", n_lb + 3 * n_ulb + 1),
                         ("cpe", fixmatch_images)):
        step, per_image = t[f"step {name}"] / fix, t[f"step {name}"] / fix * fixmatch_images / images
        target = per_image if images != fixmatch_images else step
        print(f"{name.upper() + ' step / FixMatch step':<36}= {step:.2f}   per image {per_image:.2f} ({images} images "
              f"against {fixmatch_images}; target <= 1.3: {verdict(target <= 1.3)})")
    darp_share = t["DARP refinement of the whole table"] / (darp.darp_refine_every * t["step darp"])
    print(f"DARP solver, every {darp.darp_refine_every} steps (|U| = {darp.pseudo_orig.shape[0]}) = {darp_share:.3f}  "
          f"of DARP's training time (target <= 0.10: {verdict(darp_share <= 0.10)})")
    for name in variants:
        print(f"{name + ' / defaults':<36}= {t['step ' + name] / fix:.2f}")
    if device.type == "cuda":
        print("no host synchronisation inside any method's step (checked under set_sync_debug_mode('error'))")


def check_no_sync(trainers: dict) -> None:
    """Run one step of every method with CUDA's sync debug mode on 'error': any wait for the GPU raises."""
    for name, trainer in trainers.items():
        batch = trainer.next_batch()
        trainer.train_step(batch)  # the first step may allocate and compile kernels
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            trainer.train_step(batch)
        except RuntimeError as error:
            raise SystemExit(f"{name}: a training step synchronised with the host: {error}") from None
        finally:
            torch.cuda.set_sync_debug_mode("default")


if __name__ == "__main__":
    main()
