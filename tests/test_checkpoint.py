"""Checkpoints: a run interrupted and resumed on the CPU ends bit for bit like an uninterrupted
one, for every method; writes are atomic; foreign, corrupt or mismatched checkpoints are refused."""

import dataclasses
import json
import pickle

import pytest
import torch

import cissl_kit.checkpoint as checkpoint_module
from cissl_kit import engine
from cissl_kit.algorithms import ACR, CDMAD, DARP, DASO, SeMi, SimPro
from cissl_kit.engine import TrainConfig, Trainer
from cissl_kit.recipes import AlternateSampling, CReSTPlus, Decoupling, PseudoLabelDecoupling, PseudoLabelLDAM
from cissl_kit.registry import build_algorithm, train

CONFIG = TrainConfig(steps=24, batch_size=16, uratio=2, eval_every=10, log_every=4, checkpoint_every=7,
                     progress=False)

# (method, interrupt before this call of Trainer.train_step); recipes are interrupted inside a stage
CASES = {
    "supervised": ("supervised", 12),
    "pseudolabel": ("pseudolabel", 17),
    "fixmatch": ("fixmatch", 20),
    "semi": ("semi", 9),
    # checkpoints at steps 7 and 14 fall between the bank's decays (every 5 steps), and the bank is
    # full by then: the running prototype sums must come back as they were, not recounted
    "semi-between-decays": (lambda: SeMi(decay_every=5, warmup=0.2, bank_slots=4), 17),
    "layermatch": ("layermatch", 16),
    "ldam_drw": ("ldam_drw", 22),
    "decoupling": (lambda: Decoupling(init_steps=12, crt_steps=8), 16),
    "alternate": (lambda: AlternateSampling(init_steps=10, crt_steps=6, loops=2, embedding_steps=9,
                                            classifier_steps=5), 37),
    "alternate-at-stage-end": (lambda: AlternateSampling(init_steps=10, crt_steps=6, loops=1, embedding_steps=9,
                                                         classifier_steps=5), 17),
    "pseudolabel_decoupling": (lambda: PseudoLabelDecoupling(init_steps=10, crt_steps=6, embedding_steps=10,
                                                              classifier_steps=6), 24),
    "acr": (lambda: ACR(estimate_after=0.2, estimate_period=0.1), 15),
    "abc": ("abc", 11),
    "darp": (lambda: DARP(darp_warmup=0.3, darp_refine_every=4), 19),
    "daso": (lambda: DASO(pretrain=0.2, dist_period=0.1), 13),
    "fixmatch_da": ("fixmatch_da", 10),
    "simpro": (lambda: SimPro(estimate_period=0.2), 19),  # an M-step every 5 steps, checkpoints every 7
    "cpe": ("cpe", 11),
    "cdmad": (lambda: CDMAD(debias_start=0.3), 12),
    "crest_plus": (lambda: CReSTPlus(generations=3), 13),  # inside the second generation
    "pseudolabel_ldam-stage1": (lambda: PseudoLabelLDAM(init_steps=14, finetune_steps=10), 9),
    "pseudolabel_ldam-stage2": (lambda: PseudoLabelLDAM(init_steps=14, finetune_steps=10), 20),
}


def _method(spec):
    return build_algorithm(spec) if isinstance(spec, str) else spec()


def _interrupt_at(monkeypatch, call: int) -> None:
    """Make the ``call``-th Trainer.train_step raise KeyboardInterrupt, as Ctrl-C would."""
    original, calls = engine.Trainer.train_step, [0]

    def train_step(self, batch=None):
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(engine.Trainer, "train_step", train_step)


def _exactly(value) -> str:
    """Every number written out exactly (NaN equal to NaN, unlike ==)."""
    return json.dumps(value, sort_keys=True)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("case", CASES)
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit(case, digits, tmp_path, monkeypatch):
    spec, interrupt = CASES[case]
    config = dataclasses.replace(CONFIG, checkpoint=str(tmp_path / "run.pt"))
    reference = train(_method(spec), digits, config=dataclasses.replace(config, checkpoint=None))

    with monkeypatch.context() as patch:
        _interrupt_at(patch, interrupt)
        stopped = train(_method(spec), digits, config=config, keep_partial=True)
    assert stopped.interrupted, "the KeyboardInterrupt should end the run early and keep its result"
    assert (tmp_path / "run.pt").is_file(), "the last checkpoint should survive the interrupt"

    resumed = train(_method(spec), digits, config=config, resume=True)
    assert not resumed.interrupted
    assert _exactly(resumed.final) == _exactly(reference.final)
    assert _exactly(resumed.history) == _exactly(reference.history)
    assert _same_weights(resumed.net, reference.net) and _same_weights(resumed.ema_net, reference.ema_net)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file may be left behind"


def test_resuming_a_finished_run_changes_nothing(digits, tmp_path):
    config = dataclasses.replace(CONFIG, steps=8, checkpoint=str(tmp_path / "run.pt"))
    first = train("fixmatch", digits, config=config)
    again = train("fixmatch", digits, config=config, resume=True)
    assert _exactly(again.final) == _exactly(first.final) and _same_weights(again.net, first.net)


def test_checkpoint_holds_what_the_issue_lists(digits, tmp_path):
    trainer = Trainer(build_algorithm("semi"), digits, config=dataclasses.replace(CONFIG, steps=6))
    trainer.fit()
    trainer.save_checkpoint(tmp_path / "semi.pt")
    state = torch.load(tmp_path / "semi.pt", weights_only=True)
    for key in ("net", "ema_net", "optimizer", "scheduler", "algorithm", "generator", "torch_rng",
                "labeled_sampler", "unlabeled_sampler", "step", "history"):
        assert key in state, key
    assert state["step"] == 6 and "bank" in state["algorithm"]


def test_a_kill_during_the_write_leaves_the_previous_checkpoint_intact(digits, tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    trainer = Trainer(build_algorithm("fixmatch"), digits, config=dataclasses.replace(CONFIG, steps=4))
    trainer.fit()
    trainer.save_checkpoint(path)
    before = path.read_bytes()

    def dies_half_way(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is killed while writing

    monkeypatch.setattr(checkpoint_module.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def _fresh(digits, method="fixmatch", **changes):
    return Trainer(build_algorithm(method), digits, config=dataclasses.replace(CONFIG, steps=4, **changes))


def test_corrupt_truncated_and_foreign_checkpoints_are_refused(digits, tmp_path):
    good = tmp_path / "good.pt"
    _fresh(digits).save_checkpoint(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": torch.nn.Linear(2, 2).state_dict()}, foreign)
    for path in (truncated, garbage):
        with pytest.raises(ValueError, match="cannot be read safely"):
            _fresh(digits).resume(path)
    with pytest.raises(ValueError, match="not written by cissl_kit"):
        _fresh(digits).resume(foreign)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _fresh(digits).resume(tmp_path / "missing.pt")


class _Payload:
    """An object whose unpickling would run code."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_cannot_execute_code(digits, tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": checkpoint_module.FORMAT, "version": 1, "kind": "trainer", "x": _Payload()}, handle, protocol=2)
    with pytest.raises(ValueError, match="cannot be read safely"):
        _fresh(digits).resume(path)
    assert "this must never run" not in capsys.readouterr().out


def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(digits, tmp_path):
    path = tmp_path / "fixmatch.pt"
    _fresh(digits).save_checkpoint(path)
    with pytest.raises(ValueError, match="method"):
        _fresh(digits, "semi").resume(path)
    with pytest.raises(ValueError, match="threshold: checkpoint 0.95, this run 0.8"):
        Trainer(build_algorithm("fixmatch", threshold=0.8), digits, config=dataclasses.replace(CONFIG, steps=4)).resume(path)
    with pytest.raises(ValueError, match="batch_size: checkpoint 16, this run 32"):
        _fresh(digits, batch_size=32).resume(path)
    from cissl_kit import make_ssl_data

    other = make_ssl_data("digits", unlabeled_profile="reversed", device="cpu")
    with pytest.raises(ValueError, match="unlabeled_profile"):
        Trainer(build_algorithm("fixmatch"), other, config=dataclasses.replace(CONFIG, steps=4)).resume(path)
    with pytest.raises(ValueError, match="holds a 'trainer' run; this run needs a 'alternate'"):
        train(AlternateSampling(), digits, config=dataclasses.replace(CONFIG, checkpoint=str(path)), resume=True)
    # settings that do not change the run may differ
    _fresh(digits, progress=True, checkpoint_every=3, log_every=2).resume(path)


def test_resume_needs_a_checkpoint_path(digits):
    with pytest.raises(ValueError, match="config.checkpoint"):
        train("fixmatch", digits, config=CONFIG, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 0"):
        TrainConfig(checkpoint_every=-1)
    with pytest.raises(TypeError, match="checkpoint must be a file path"):
        TrainConfig(checkpoint=3)


def test_an_interrupted_stage_runs_again_at_the_next_call(digits, monkeypatch):
    run = AlternateSampling(init_steps=6, crt_steps=4, loops=1, embedding_steps=5, classifier_steps=4).start(
        digits, dataclasses.replace(CONFIG, progress=False))
    assert run.next_stage() == "initialize embedding"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run.next_stage()
    assert len(run.records) == 1
    assert run.next_stage() == "initialize classifier"
    assert [r["stage"] for r in run.records] == ["initialize embedding", "initialize classifier"]
