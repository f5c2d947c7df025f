"""Speed of FixMatch on digits-LT and the data pipeline's share of a step, measured in one run.

    python benchmarks/bench_pipeline.py [--repeats 7] [--steps 20] [--threads 2] [--device auto]

Prints steps per second and ratios (pipeline / step, step / bare forward+backward). Rounds of
each measurement are interleaved and the median is taken, so a busy shared machine slows all
of them alike. Target: the pipeline (sampling + weak + strong views) is at most 10% of a step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cissl_kit import TrainConfig, Trainer, make_ssl_data


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
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = make_ssl_data("digits", device=args.device)
    config = TrainConfig(progress=False)
    trainer = Trainer("fixmatch", data, config=config)
    device = data.device
    batch = trainer.next_batch()
    net = trainer.net

    def bare_forward_backward() -> None:
        logits = net(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        F.cross_entropy(logits[: batch.x_lb.shape[0]], batch.y_lb).backward()

    for _ in range(5):  # warm-up
        trainer.train_step()
    rounds = {"step": [], "pipeline": [], "bare": []}
    for _ in range(args.repeats):
        rounds["step"].append(timed(trainer.train_step, args.steps, device))
        rounds["pipeline"].append(timed(trainer.next_batch, args.steps, device))
        rounds["bare"].append(timed(bare_forward_backward, args.steps, device))
    step, pipeline, bare = (statistics.median(rounds[k]) for k in ("step", "pipeline", "bare"))

    n_lb, n_ulb = config.batch_size, config.batch_size * config.uratio
    print(f"FixMatch on digits-LT, {device}, {torch.get_num_threads()} threads, "
          f"batch {n_lb} labeled + 2×{n_ulb} unlabeled (8×8), median of {args.repeats} rounds × {args.steps} steps")
    print(f"{'training step':<38}{1000 * step:8.1f} ms   {1 / step:6.1f} steps/s")
    print(f"{'data pipeline (sample + weak + strong)':<38}{1000 * pipeline:8.1f} ms")
    print(f"{'bare forward + backward':<38}{1000 * bare:8.1f} ms")
    print(f"pipeline / step              = {pipeline / step:.3f}   (target <= 0.10: {'met' if pipeline / step <= 0.10 else 'NOT met'})")
    print(f"step / bare forward+backward = {step / bare:.2f}")


if __name__ == "__main__":
    main()
