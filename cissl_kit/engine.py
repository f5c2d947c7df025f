"""The one training loop: batches, optimiser, schedule, EMA, AMP, evaluation and history.

Layer: above the algorithms; it imports their interface (:mod:`cissl_kit.algorithms.base`) and the
layers below, never a concrete method, a recipe or the registry. Every method runs through
:class:`Trainer`; an :class:`~cissl_kit.algorithms.Algorithm` only turns a batch into a loss. Logged values stay on the device and reach the host every ``log_every``
steps, so a CUDA step never waits on the host.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import distributed
from ._checks import check_bool, check_choice, check_fits_in_memory, check_float, check_int
from .algorithms.base import Algorithm, Batch, StepContext
from .checkpoint import check_resumable, check_same, data_identity, fits_this_run, load_checkpoint, save_checkpoint
from .data import SSLData, make_sampler
from .metrics import PseudoLabelStats, classification_report
from .models import MODELS, build_model, check_model, default_model
from .utils import make_generator, seed_everything

SCHEDULES = ("cosine", "constant")
MAX_SEED = 2**63 - 1  # torch's generators take 64-bit seeds


@dataclass
class TrainConfig:
    """Settings of the training loop (not of the algorithm). Defaults: FixMatch's, scaled to digits."""

    steps: int = 1500
    batch_size: int = 64
    uratio: int = 2  # unlabeled batch = uratio × batch_size (the CIFAR-LT standard; FixMatch: 7)
    lr: float = 0.03
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # FixMatch's cos(7πk / 16K)
    ema: float = 0.999
    eval_every: int = 100
    log_every: int = 25
    eval_batch_size: int | None = None  # None: 1024 on CUDA, 128 on the CPU (measured faster there)
    seed: int = 0
    model: str | None = None  # None: small_cnn up to 16×16 images, wrn28_2 above, mlp for vectors
    amp: bool = True  # only on CUDA
    channels_last: bool = True  # image models on CUDA and the CPU (measured faster on both: benchmarks/bench.py)
    compile: bool = False  # torch.compile the algorithm's training step (PyTorch ≥ 2.0)
    progress: bool = True
    checkpoint: str | None = None  # file written every checkpoint_every steps and at the end
    checkpoint_every: int = 0  # 0: only at the end

    def __post_init__(self) -> None:
        if isinstance(self.checkpoint, os.PathLike):
            self.checkpoint = os.fspath(self.checkpoint)
        if self.checkpoint is not None and (not isinstance(self.checkpoint, str) or not self.checkpoint):
            raise TypeError(f"checkpoint must be a file path (str or Path) or None, got {self.checkpoint!r}")
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        for name in ("steps", "batch_size", "uratio", "eval_every", "log_every"):
            check_int(name, getattr(self, name), minimum=1)
        if self.eval_batch_size is not None:
            check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_float("lr", self.lr, 0.0, min_inclusive=False)
        check_float("momentum", self.momentum, 0.0, 1.0, max_inclusive=False)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_float("ema", self.ema, 0.0, 1.0, max_inclusive=False)
        check_choice("schedule", self.schedule, SCHEDULES)
        for name in ("nesterov", "amp", "channels_last", "compile", "progress"):
            check_bool(name, getattr(self, name))
        if self.model is not None:
            check_choice("model", self.model, MODELS)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted; ``.result`` is the :class:`TrainResult` so far, marked ``interrupted``
    (also :func:`last_interrupted`)."""

    def __init__(self, result: "TrainResult") -> None:
        self.result = result
        step, steps = result.final.get("step", "?"), result.config.get("steps", "?")
        super().__init__(f"{result.method} was interrupted at step {step} of {steps} (Ctrl-C, or a time limit such "
                         "as nbval's --nbval-cell-timeout); the cell stops here. Its partial result is "
                         "cissl_kit.engine.last_interrupted() (train(..., keep_partial=True) returns it instead)")


_last_interrupted: list = [None]


def last_interrupted() -> "TrainResult | None":
    """The result of the latest run that was interrupted, or None."""
    return _last_interrupted[0]


def stop_or_return(result: "TrainResult", keep_partial: bool) -> "TrainResult":
    """``result``; for an interrupted run, raise :class:`TrainingInterrupted` unless ``keep_partial``."""
    if result.interrupted:
        _last_interrupted[0] = result
        if not keep_partial:
            raise TrainingInterrupted(result)
    return result


@dataclass
class TrainResult:
    """History (one row per evaluation) and final metrics of a run; ``net`` / ``ema_net`` are the trained networks."""

    method: str
    hparams: dict
    config: dict
    data: dict
    history: list[dict]
    final: dict
    seconds: float
    interrupted: bool = False
    net: nn.Module | None = field(default=None, repr=False)
    ema_net: nn.Module | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """Scalar headline numbers (fractions in [0, 1])."""
        keys = ("accuracy", "balanced_accuracy", "many", "medium", "few", "pl_accuracy", "utilization")
        return {"method": self.method, **{k: self.final.get(k, float("nan")) for k in keys}, "seconds": self.seconds}

    def to_dict(self) -> dict:
        """JSON-ready copy without the networks."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("net", "ema_net")}


class Trainer:
    """Trains one algorithm on one :class:`SSLData`.

    >>> trainer = Trainer(FixMatch(), data, config=TrainConfig(steps=500))  # or build_algorithm("fixmatch")
    >>> result = trainer.fit()
    """

    def __init__(
        self,
        algorithm: Algorithm,
        data: SSLData,
        model: nn.Module | None = None,
        config: TrainConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.config = config_with(config, overrides)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module with features(x) and a linear head, got {model!r}; "
                            f"to pick a backbone by name set TrainConfig(model=...), one of {', '.join(MODELS)}")
        if not isinstance(algorithm, Algorithm):
            raise TypeError(
                f"algorithm must be a one-step Algorithm, got {algorithm!r}: build one by name with "
                "cissl_kit.build_algorithm(name); a multi-stage recipe (decoupling, alternate, crest_plus …) runs "
                "with cissl_kit.train(recipe, data) or its fit()")
        self.algorithm = algorithm
        if not isinstance(data, SSLData):
            raise TypeError(f"data must be an SSLData (see make_ssl_data), got {type(data).__name__}")
        self.data = data
        self.device = data.device
        cfg = self.config
        seed_everything(cfg.seed)
        if model is None:
            model = build_model(cfg.model or default_model(data.input_shape), data.num_classes, data.input_shape)
        check_model(model)
        if model.head.out_features != data.num_classes:
            raise ValueError(f"model.head has {model.head.out_features} outputs but the data has {data.num_classes} classes")
        self.net = self.algorithm.build_network(model).to(self.device)
        check_step_memory(self.net, data, cfg, len(self.algorithm.unlabeled_views), len(self.algorithm.labeled_views))
        self.channels_last = cfg.channels_last and self.device.type in ("cuda", "cpu") and len(data.input_shape) == 3
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.algorithm.setup(self.net, data)
        self.optimizer = _sgd(self.algorithm.trainable_parameters(self.net), cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        # bf16 where the GPU has it, else fp16 with a scaler; without AMP the dtype is unused, and bf16 is the one
        # every torch accepts in a disabled CPU autocast (torch 2.1 refuses fp16 there even when disabled)
        self.amp_dtype = torch.float16 if self.use_amp and not torch.cuda.is_bf16_supported() else torch.bfloat16
        self.scaler = _grad_scaler(enabled=self.use_amp and self.amp_dtype == torch.float16)
        self._training_step = torch.compile(self.algorithm.training_step) if cfg.compile else self.algorithm.training_step
        if distributed.initialized():  # under torchrun: DDP, each rank on its share of the global batch
            distributed.check_divisible(cfg.batch_size)
            self._training_step = distributed.wrap_training_step(self.algorithm, self.net, self.device)
        self.generator = make_generator(cfg.seed, self.device)
        self.labeled_sampler = make_sampler(
            self.algorithm.labeled_sampler, data.labeled_idx, cfg.batch_size,
            labels=data.targets[data.labeled_idx], num_classes=data.num_classes, generator=self.generator,
        )
        self.uses_unlabeled = bool(self.algorithm.unlabeled_views) and data.unlabeled_idx.numel() > 0
        self.unlabeled_sampler = (
            make_sampler("random", data.unlabeled_idx, cfg.batch_size * cfg.uratio, generator=self.generator)
            if self.uses_unlabeled else None
        )
        self.class_prior = data.class_prior()
        self.pl_stats = PseudoLabelStats(data.num_classes, self.device, getattr(self.algorithm, "threshold", 0.95))
        self.step = 0
        self.history: list[dict] = []
        self.final: dict = {}
        self.seconds = 0.0
        self._log_sums: dict[str, Tensor] = {}
        self._log_steps = 0
        self._ema_params = list(self.ema_net.parameters())
        self._net_params = list(self.net.parameters())
        self._ema_buffers = list(self.ema_net.buffers())
        self._net_buffers = list(self.net.buffers())
        # called with the trainer where a checkpoint is due; None writes config.checkpoint
        # (a multi-stage recipe sets it to save its whole run)
        self.checkpoint_writer: Callable[[Trainer], None] | None = None
        self._fit_started: float | None = None

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, keep_partial: bool = False) -> TrainResult:
        """Train until ``config.steps``. Ctrl-C (or any KeyboardInterrupt, such as nbval's cell timeout) stops
        early: the result so far is evaluated and kept, then :class:`TrainingInterrupted` is raised with it, so
        that a notebook cell stops there (no later run starts, no partial number passes for a finished one);
        ``keep_partial=True`` returns that result, marked ``interrupted``, instead."""
        cfg = self.config
        start = self._fit_started = time.perf_counter()
        # one redraw a second at most: in a notebook each redraw is a few widget messages, and a
        # kernel that sends thousands while nobody reads them drops some (nbval then waits forever)
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.algorithm.name, mininterval=1.0,
                   disable=not cfg.progress or not distributed.is_main(), dynamic_ncols=True)
        interrupted, postfix = False, {}
        try:
            while self.step < cfg.steps:
                self.train_step()
                bar.update(1)
                last = self.step == cfg.steps
                log_due, eval_due = self.step % cfg.log_every == 0 or last, self.step % cfg.eval_every == 0 or last
                if log_due or eval_due:
                    means = self._log_means()  # one host pull (under torchrun: one all-reduce) per such step
                    if log_due:  # the progress bar: running loss and mask rate, then accuracy
                        postfix.update({k: f"{v:.3f}" for k, v in means.items() if k in ("loss", "mask")})
                    if eval_due:
                        self._record_evaluation(means)
                        postfix["acc"] = f"{self.history[-1]['accuracy']:.3f}"
                    if log_due:
                        bar.set_postfix(postfix, refresh=False)
                if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or last:
                    self._write_checkpoint()
        except KeyboardInterrupt:  # the last checkpoint on disk stays as it was
            interrupted = True
            if not self.history or self.history[-1]["step"] != self.step:
                self._record_evaluation()
        finally:
            bar.close()
            self.seconds += time.perf_counter() - start
            self._fit_started = None
        return stop_or_return(self.result(interrupted), keep_partial)

    def elapsed(self) -> float:
        """Seconds of training so far, the running ``fit`` included (what a checkpoint records)."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self.seconds + running

    def train_step(self, batch: Batch | None = None) -> None:
        """One optimisation step of the algorithm on ``batch`` (default: the next one), then the EMA update."""
        self.net.train()
        batch = self._local_share(self.next_batch() if batch is None else batch)
        ctx = StepContext(self.step, self.config.steps, self.data.num_classes, self.class_prior, self.ema_net)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp), distributed.peers_answer():
            out = self._training_step(self.net, batch, ctx)
        self.optimizer.zero_grad(set_to_none=True)
        with distributed.peers_answer():  # DDP averages the gradients across ranks here
            self.scaler.scale(out.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self._update_ema()
        self._accumulate({"loss": out.loss.detach(), **out.logs})
        if out.pseudo_labels is not None and batch.y_ulb is not None:
            self.pl_stats.update(batch.y_ulb, out.pseudo_labels, out.mask, out.probs)
        self.step += 1

    def next_batch(self) -> Batch:
        """Sample index batches on the device and build the views the algorithm asks for."""
        data, aug, gen = self.data, self.data.augmenter, self.generator
        layout = self._layout
        idx_lb = self.labeled_sampler.next()
        batch = Batch(x_lb=layout(aug.weak(data.images[idx_lb], gen)), y_lb=data.targets[idx_lb], idx_lb=idx_lb)
        if "strong" in self.algorithm.labeled_views:
            batch.x_lb_s = layout(aug.strong(data.images[idx_lb], gen))
        if self.uses_unlabeled:
            idx = self.unlabeled_sampler.next()
            raw = data.images[idx]
            batch.idx_ulb, batch.y_ulb = idx, data.true_labels[idx]
            batch.x_ulb_w = layout(aug.weak(raw, gen))
            if "strong" in self.algorithm.unlabeled_views:
                batch.x_ulb_s = layout(aug.strong(raw, gen))
            if "strong2" in self.algorithm.unlabeled_views:
                batch.x_ulb_s2 = layout(aug.strong(raw, gen))
        elif self.algorithm.unlabeled_views:  # no unlabeled images at all: empty views, unlabeled losses 0
            empty = data.unlabeled_idx
            batch.idx_ulb, batch.y_ulb = empty, data.true_labels[empty]
            batch.x_ulb_w = batch.x_ulb_s = batch.x_ulb_s2 = layout(aug.plain(data.images[empty]))
        return batch

    @staticmethod
    def _local_share(batch: Batch) -> Batch:
        """Under torchrun, this rank's share of the global batch (every rank draws the same one)."""
        if not distributed.initialized():
            return batch
        return Batch(**{f.name: distributed.local_rows(getattr(batch, f.name)) for f in dataclasses.fields(batch)})

    def _layout(self, images: Tensor) -> Tensor:
        """Images in the memory format the network was put in (channels-last for image models)."""
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: Tensor, use_ema: bool = True) -> Tensor:
        """Logits of the (EMA) network for raw images, in evaluation batches."""
        net = self.ema_net if use_ema else self.net
        net.eval()
        outputs = []
        for chunk in images.split(eval_batch_size(self.config, self.device)):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                outputs.append(self.algorithm.predict(net, self._layout(self.data.augmenter.plain(chunk))).float())
        return torch.cat(outputs)

    def evaluate(self, use_ema: bool = True) -> dict:
        """Test metrics: overall, balanced, per-class and group accuracy, and the confusion matrix."""
        images = self.data.test_images  # under torchrun each rank predicts a block, then all are gathered
        predictions = distributed.gather_rows(self.predict(distributed.local_rows(images), use_ema).argmax(1), len(images))
        return classification_report(predictions, self.data.test_labels, self.data.num_classes, self.data.groups)

    def result(self, interrupted: bool = False) -> TrainResult:
        return TrainResult(
            method=self.algorithm.name,
            hparams=self.algorithm.hparams(),
            config=dataclasses.asdict(self.config),
            data={**self.data.settings, "labeled_counts": self.data.labeled_counts,
                  "unlabeled_counts": self.data.unlabeled_counts, "groups": self.data.groups},
            history=list(self.history),
            final=dict(self.final),
            seconds=self.seconds,
            interrupted=interrupted,
            net=self.net,
            ema_net=self.ema_net,
        )

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit for bit: networks, optimiser, schedule,
        AMP scaler, algorithm state, samplers, random-number generators, step, history and logs."""
        cuda = self.device.type == "cuda"
        return {
            "kind": "trainer", "method": self.algorithm.name, "hparams": self.algorithm.hparams(),
            "config": dataclasses.asdict(self.config), "data": data_identity(self.data), "step": self.step,
            "net": self.net.state_dict(), "ema_net": self.ema_net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "algorithm": self.algorithm.state_dict(),
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
            "labeled_sampler": self.labeled_sampler.state_dict(),
            "unlabeled_sampler": self.unlabeled_sampler.state_dict() if self.unlabeled_sampler else None,
            "history": list(self.history), "final": dict(self.final), "seconds": self.elapsed(),
            "log_sums": dict(self._log_sums), "log_steps": self._log_steps, "pl_stats": self.pl_stats.counts,
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        """Continue from :meth:`state_dict`; the method, its hyper-parameters, the loop settings
        (except those in ``checkpoint.RESUME_MAY_CHANGE``) and the data must be the ones it was made with."""
        check_same(source, "method", {"method": state.get("method")}, {"method": self.algorithm.name})
        check_resumable(source, state, self.algorithm.hparams(), self.data, dataclasses.asdict(self.config))
        with fits_this_run(source):
            self.net.load_state_dict(state["net"])
            self.ema_net.load_state_dict(state["ema_net"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler.is_enabled() and state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.algorithm.load_state_dict(state["algorithm"])
            restore_generator(self.generator, state["generator"], self.config.seed, int(state["step"]))
            torch.set_rng_state(state["torch_rng"].cpu())
            if state["cuda_rng"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
            self.labeled_sampler.load_state_dict(state["labeled_sampler"])
            if self.unlabeled_sampler is not None:
                self.unlabeled_sampler.load_state_dict(state["unlabeled_sampler"])
            self.pl_stats.counts = state["pl_stats"].to(self.device)
            self._log_sums = {k: v.to(self.device) for k, v in state["log_sums"].items()}
            self._log_steps = int(state["log_steps"])
            self.history, self.final = list(state["history"]), dict(state["final"])
            self.seconds, self.step = float(state["seconds"]), int(state["step"])

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        save_checkpoint(self.state_dict(), path)

    def resume(self, path: str | os.PathLike) -> "Trainer":
        """Load the checkpoint at ``path`` (``torch.load(weights_only=True)``); ``fit()`` then continues it."""
        self.load_state_dict(load_checkpoint(path, "trainer", self.device), f"checkpoint {path}")
        return self

    def _write_checkpoint(self) -> None:
        if not distributed.is_main():  # rank 0 writes (the generators are alike on every rank)
            return
        if self.checkpoint_writer is not None:
            self.checkpoint_writer(self)
        elif self.config.checkpoint:
            self.save_checkpoint(self.config.checkpoint)

    # -- internals ---------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        if self.config.schedule == "constant":
            return 1.0
        return math.cos(7 * math.pi * step / (16 * self.config.steps))

    @torch.no_grad()
    def _update_ema(self) -> None:
        # warm-up: the decay grows towards config.ema so short runs are not dominated by the init
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        torch._foreach_lerp_(self._ema_params, self._net_params, 1 - decay)
        for ema_buffer, buffer in zip(self._ema_buffers, self._net_buffers):
            ema_buffer.copy_(buffer)

    def _accumulate(self, logs: dict[str, Tensor]) -> None:
        for name, value in logs.items():
            value = value.detach().float()
            self._log_sums[name] = self._log_sums[name] + value if name in self._log_sums else value.clone()
        self._log_steps += 1

    def _log_means(self) -> dict[str, float]:
        """Pull the running means to the host; stop with a clear message on a non-finite loss."""
        sums = dict(self._log_sums)
        if distributed.initialized() and sums:  # the mean over ranks
            stacked = distributed.all_reduce_(torch.stack(list(sums.values())), "mean")
            sums = dict(zip(sums, stacked))
        means = {k: float(v) / max(1, self._log_steps) for k, v in sums.items()}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"{self.algorithm.name}: {', '.join(bad)} became non-finite within steps "
                f"{self.step - self._log_steps + 1}..{self.step}; lower lr or check the inputs"
            )
        return means

    def _record_evaluation(self, means: dict[str, float] | None = None) -> None:
        """Evaluate and append a history row with ``means`` (default: the running log means)."""
        means = self._log_means() if means is None else means
        test = self.evaluate()
        if self.uses_unlabeled:
            distributed.all_reduce_(self.pl_stats.counts)  # the counts of all ranks
        pseudo = self.pl_stats.report(self.data.groups) if self.uses_unlabeled else {}
        row = {"step": self.step, "lr": self.optimizer.param_groups[0]["lr"], **means}
        row.update({k: v for k, v in test.items() if k not in ("per_class", "confusion")})
        row.update({k: v for k, v in pseudo.items() if not k.endswith("per_class")})
        estimate = self.algorithm.unlabeled_estimate()
        if estimate is not None:
            row["estimate"] = [round(v, 6) for v in estimate.float().cpu().tolist()]
        self.history.append(row)
        self.final = {**test, **pseudo, "step": self.step}
        self._log_sums, self._log_steps = {}, 0
        self.pl_stats.reset()


@torch.no_grad()
def activation_bytes(net: nn.Module, input_shape: Sequence[int], device: torch.device) -> int:
    """Bytes of every module output for one input (forward hooks, eval mode): what a training step
    stores per sample for the backward pass, at least."""
    sizes: list[int] = []

    def count(_module, _inputs, output) -> None:
        if isinstance(output, Tensor):
            sizes.append(output.numel() * output.element_size())

    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = net.training
    net.eval()
    try:
        net(torch.zeros(1, *input_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    return sum(sizes) + 4 * math.prod(input_shape)


def check_step_memory(net: nn.Module, data: SSLData, config: TrainConfig, unlabeled_views: int = 0,
                      labeled_views: int = 1) -> None:
    """Refuse batch sizes whose training step or evaluation cannot fit in the device's memory at all
    (a lower bound: activations and their gradients, without the network's own workspace)."""
    per_sample = activation_bytes(net, data.input_shape, data.device)
    images = config.batch_size * (labeled_views + config.uratio * unlabeled_views * (data.unlabeled_idx.numel() > 0))
    check_fits_in_memory(
        f"a training step on {images:,} images (batch_size {config.batch_size:,}, uratio {config.uratio}, "
        f"{unlabeled_views} unlabeled view(s))", 2 * per_sample * images, data.device,
        "lower batch_size (CLI: --batch-size) or uratio (--uratio)")
    evaluated = min(eval_batch_size(config, data.device), max(1, len(data.test_labels)))
    check_fits_in_memory(f"evaluation in batches of {evaluated:,} images", per_sample * evaluated, data.device,
                         "lower eval_batch_size (CLI: --eval-batch-size)")


def restore_generator(generator: torch.Generator, saved: Tensor, seed: int, step: int) -> None:
    """Continue ``generator`` from a checkpoint's state. A state written on another kind of device
    (CUDA's Philox against the CPU's Mersenne Twister) cannot be set: the stream then restarts from
    ``seed`` and ``step``, so the resumed run is valid but no longer bit-identical."""
    try:
        generator.set_state(saved.cpu())
    except RuntimeError:
        warnings.warn(f"the checkpoint's random-number stream was written on another device type than "
                      f"{generator.device.type}; sampling continues from a fresh stream (seed {seed}, step {step})",
                      stacklevel=3)
        generator.manual_seed((seed * 1_000_003 + step) % 2**63)


def eval_batch_size(config: TrainConfig, device: torch.device) -> int:
    """``config.eval_batch_size``, or the device's default: 1024 on CUDA, 128 on the CPU."""
    if config.eval_batch_size is not None:
        return config.eval_batch_size
    return 1024 if device.type == "cuda" else 128


def config_with(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    """``config`` (default ``TrainConfig()``) with ``overrides``, naming any unknown setting."""
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (or None for the defaults), got {type(config).__name__}")
    known = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise TypeError(f"{', '.join(unknown)} is not a training-loop setting; TrainConfig has {', '.join(known)}")
    return dataclasses.replace(config or TrainConfig(), **overrides)


def _undecorated(method):
    return getattr(method, "__wrapped__", method)


class SGD(torch.optim.SGD):
    """``torch.optim.SGD``, the same updates bit for bit, without importing ``torch._dynamo``.

    torch wraps the optimiser's bookkeeping (``add_param_group``, ``zero_grad``, ``state_dict``,
    ``step`` …) in decorators that import ``torch._dynamo`` (and sympy) on their first call, so that
    a compiled optimiser breaks its graph there: about a second of CPU and 160 MiB in every training
    process, although nothing here compiles an optimiser (``TrainConfig.compile`` compiles the
    training step only). These are the undecorated methods; where a torch release has no
    ``__wrapped__`` they stay torch's own.
    """

    add_param_group = _undecorated(torch.optim.SGD.add_param_group)
    zero_grad = _undecorated(torch.optim.SGD.zero_grad)
    state_dict = _undecorated(torch.optim.SGD.state_dict)
    load_state_dict = _undecorated(torch.optim.SGD.load_state_dict)

    @torch.no_grad()  # what the decorator around torch's step does, without its graph breaks
    def step(self, closure=None):
        return _undecorated(torch.optim.SGD.step)(self, closure)


def _grad_scaler(enabled: bool):
    """AMP's gradient scaler for CUDA: ``torch.amp.GradScaler`` (torch >= 2.3), else its older home."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch 2.1-2.2


def _sgd(parameters, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with nesterov momentum; no weight decay on biases and BN parameters (1-D tensors)."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("the algorithm left no trainable parameters")
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    return SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
    )


def results_table(results: Sequence[TrainResult] | Mapping[str, TrainResult], show_time: bool = True) -> str:
    """A plain-text table of the headline metrics in percent; a mapping supplies the row names. An
    interrupted run's row is marked ``[interrupted at step k]``."""
    rows = list(results.items()) if isinstance(results, Mapping) else [(r.method, r) for r in results]
    # an interrupted run never passes for a finished one: its name says so
    rows = [(f"{name} [interrupted at step {r.final.get('step', '?')}]" if r.interrupted and "[interrupted" not in name
             else name, r) for name, r in rows]
    width = max([22] + [len(name) + 2 for name, _ in rows])
    header = f"{'method':<{width}}{'overall':>8}{'balanced':>9}{'many':>7}{'medium':>7}{'few':>7}{'PL acc':>8}{'util':>7}"
    header += f"{'time':>7}" if show_time else ""
    lines = [header, "-" * len(header)]
    for name, result in rows:
        s = result.summary()
        cells = [s[k] for k in ("accuracy", "balanced_accuracy", "many", "medium", "few", "pl_accuracy", "utilization")]
        widths = (8, 9, 7, 7, 7, 8, 7)
        line = f"{name:<{width}}" + "".join(("-" if v != v else f"{100 * v:.1f}").rjust(w) for v, w in zip(cells, widths))
        lines.append(line + (f"{s['seconds']:>6.0f}s" if show_time else ""))
    return "\n".join(lines)
