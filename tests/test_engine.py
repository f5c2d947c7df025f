import pytest
import torch

from cissl_kit import FixMatch, Supervised, TrainConfig, Trainer, build_algorithm, train
from cissl_kit.algorithms import Algorithm, StepOutput
from cissl_kit.models import SmallCNN

FAST = dict(progress=False, eval_every=50, log_every=10)


def test_supervised_learns_digits_in_seconds(digits):
    result = train("supervised", digits, steps=150, **FAST)
    assert [row["step"] for row in result.history] == [50, 100, 150]
    assert result.final["accuracy"] > 0.6
    assert result.final["many"] > result.final["few"]  # the long tail shows already
    assert len(result.final["per_class"]) == 10 and len(result.final["confusion"]) == 10
    assert result.history[-1]["lr"] < result.history[0]["lr"]  # cosine decay


def test_fixmatch_end_to_end_records_pseudo_label_quality(digits):
    result = train(FixMatch(threshold=0.8), digits, steps=60, eval_every=30, progress=False, log_every=10)
    final = result.final
    assert 0 <= final["utilization"] <= 1 and 0 <= final["pl_accuracy"] <= 1
    assert len(final["utilization_per_class"]) == 10
    assert {"pl_accuracy_many", "utilization_few", "loss_u", "mask"} <= set(result.history[-1])
    assert result.history[-1]["mask"] == pytest.approx(result.history[-1]["utilization"], abs=1e-6)


def test_same_seed_same_run(digits):
    a = Trainer(build_algorithm("fixmatch"), digits, steps=20, **FAST)
    ra = a.fit()
    rb = train("fixmatch", digits, steps=20, **FAST)
    assert ra.final["accuracy"] == rb.final["accuracy"]
    for pa, pb in zip(ra.net.parameters(), rb.net.parameters()):
        assert torch.equal(pa, pb)
    rc = train("fixmatch", digits, steps=20, seed=1, **FAST)
    assert not torch.equal(next(ra.net.parameters()), next(rc.net.parameters()))


def test_balanced_sampler_reaches_the_engine(digits):
    trainer = Trainer(Supervised(sampler="balanced"), digits, steps=10, **FAST)
    labels = torch.cat([trainer.next_batch().y_lb for _ in range(20)])
    freq = torch.bincount(labels, minlength=10).float() / labels.numel()
    assert (freq - 0.1).abs().max() < 0.01  # the tail class holds 2 of 131 labels, yet 10% of draws


def test_ema_trails_the_network(digits):
    trainer = Trainer(build_algorithm("supervised"), digits, steps=30, **FAST)
    trainer.fit()
    net, ema = trainer.net.head.weight, trainer.ema_net.head.weight
    assert not torch.equal(net, ema) and not ema.requires_grad


class _Exploding(Algorithm):
    name = "exploding"

    def training_step(self, net, batch, ctx):
        loss = net(batch.x_lb).sum() * float("nan")
        return StepOutput(loss, {"loss_s": loss.detach()})


def test_non_finite_loss_stops_with_the_loss_name(digits):
    with pytest.raises(FloatingPointError, match="loss_s became non-finite within steps 1..10"):
        train(_Exploding(), digits, steps=50, **FAST)


class _Interrupting(Supervised):
    def training_step(self, net, batch, ctx):
        if ctx.step == 7:
            raise KeyboardInterrupt
        return super().training_step(net, batch, ctx)


def test_keyboard_interrupt_keeps_the_result_so_far(digits):
    result = train(_Interrupting(), digits, steps=50, keep_partial=True, **FAST)
    assert result.interrupted and result.history[-1]["step"] == 7 and "accuracy" in result.final


def test_an_interrupt_stops_the_caller_and_keeps_the_result(digits):
    """In a notebook cell that trains several runs, Ctrl-C must stop the cell, not only the run in training:
    the partial result is kept (on the exception and in last_interrupted()), and no later run starts."""
    from cissl_kit.engine import TrainingInterrupted, last_interrupted

    started = []
    with pytest.raises(TrainingInterrupted, match="supervised was interrupted at step 7 of 50") as raised:
        runs = {name: (started.append(name), train(algorithm, digits, steps=50, **FAST))[1]
                for name, algorithm in (("first", _Interrupting()), ("second", Supervised()))}
    assert started == ["first"] and "runs" not in locals()
    assert raised.value.result.interrupted and raised.value.result.history[-1]["step"] == 7
    assert last_interrupted() is raised.value.result
    assert isinstance(raised.value, KeyboardInterrupt)  # what a notebook, the CLI and nbval see


def test_model_checks(digits):
    with pytest.raises(TypeError, match="features"):
        Trainer(build_algorithm("supervised"), digits, model=torch.nn.Linear(64, 10))
    with pytest.raises(ValueError, match="5 outputs but the data has 10 classes"):
        Trainer(build_algorithm("supervised"), digits, model=SmallCNN(5))
    with pytest.raises(TypeError, match="SSLData"):
        Trainer(build_algorithm("supervised"), digits.images)


@pytest.mark.parametrize("kwargs, word", [
    (dict(steps=0), "steps"), (dict(lr=0.0), "lr"), (dict(ema=1.0), "ema"), (dict(schedule="step"), "schedule"),
    (dict(batch_size=2.5), "batch_size"),
])
def test_bad_config_names_the_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        TrainConfig(**kwargs)


def test_toy2d_trains_with_an_mlp():
    from cissl_kit.data import make_ssl_data

    data = make_ssl_data("toy2d", device="cpu")
    result = train("fixmatch", data, steps=100, **FAST)
    assert result.final["accuracy"] > 0.8


def test_compiled_training_step_matches_eager(digits, tmp_path, monkeypatch):
    """``compile=True`` runs the step through torch.compile (Inductor, which needs a C++ compiler on the CPU).

    Inductor's kernel cache gets a folder of its own: its shared one (``/tmp/torchinductor_$USER``)
    does not tell apart kernels built under other ``ATEN_CPU_CAPABILITY`` settings: after an AVX-512
    run had filled it, this AVX2-pinned step got NaN losses from it (a fresh folder: none)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager = train("supervised", digits, steps=5, **FAST)
    compiled = Trainer(build_algorithm("supervised"), digits, steps=5, compile=True, **FAST)
    assert compiled._training_step is not compiled.algorithm.training_step
    start = [p.detach().clone() for p in compiled.net.parameters()]  # seeded: the eager run's start too
    result = compiled.fit()
    # Inductor sums in another order than eager (per thread count): after 5 steps the weights differ by
    # float noise (2e-5 at most, on 1 thread), far below what the 5 steps moved them
    for pa, pb, p0 in zip(eager.net.parameters(), result.net.parameters(), start):
        moved = (pa - p0).abs().max().item()
        assert (pa - pb).abs().max().item() <= max(0.01 * moved, 1e-6), (moved, (pa - pb).abs().max().item())


def test_channels_last_for_images_with_the_same_predictions(digits):
    trainer = Trainer(build_algorithm("fixmatch"), digits, steps=5, **FAST)
    assert trainer.channels_last  # image models take the channels-last layout on the CPU too
    images = torch.zeros(2, 1, 8, 8)
    assert trainer._layout(images).is_contiguous(memory_format=torch.channels_last)
    plain = Trainer(build_algorithm("fixmatch"), digits, steps=5, channels_last=False, **FAST)
    assert not plain.channels_last and plain._layout(images).is_contiguous()
    torch.testing.assert_close(trainer.predict(digits.test_images), plain.predict(digits.test_images),
                               rtol=1e-4, atol=1e-4)  # the same weights (seeded) give the same logits
