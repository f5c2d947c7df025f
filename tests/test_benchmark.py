import json

import pytest

from cissl_kit import TrainConfig, Trainer
from cissl_kit import benchmark as bench
from cissl_kit.algorithms import SeMi
from cissl_kit.cli import main

TINY = TrainConfig(steps=10, eval_every=10, log_every=5, progress=False)


def test_grid_rows_summary_and_resume(tmp_path, monkeypatch):
    rows = bench.run_grid(["supervised", "fixmatch"], ["consistent"], [0, 1], config=TINY, out=tmp_path, progress=False)
    assert [(r["label"], r["seed"]) for r in rows] == [("supervised", 0), ("fixmatch", 0), ("supervised", 1), ("fixmatch", 1)]
    assert len(list((tmp_path / "cells").glob("*.json"))) == 4
    summary = bench.summarize(rows)
    assert [(s["method"], s["runs"]) for s in summary] == [("supervised", 2), ("fixmatch", 2)]
    assert summary[0]["accuracy"] == pytest.approx(50 * (rows[0]["accuracy"] + rows[2]["accuracy"]))

    def no_training(self):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "fit", no_training)
    again = bench.run_grid(["supervised", "fixmatch"], ["consistent"], [0, 1], config=TINY, out=tmp_path, progress=False)
    assert again == json.loads(json.dumps(rows))  # reused from disk
    # different settings are not reused
    with pytest.raises(AssertionError, match="trained again"):
        bench.run_grid(["supervised"], ["consistent"], [0], config=TrainConfig(steps=11, progress=False),
                       out=tmp_path, progress=False)


def test_grid_takes_labelled_variants(tmp_path):
    rows = bench.run_grid({"SeMi w/o EA": lambda: SeMi(use_alignment=False)}, ["reversed"], [0], config=TINY,
                          progress=False)
    assert rows[0]["label"] == "SeMi w/o EA" and rows[0]["profile"] == "reversed"
    assert "SeMi w/o EA" in bench.summary_table(rows)


def test_cli_benchmark(tmp_path, capsys):
    assert main(["benchmark", "--method", "fixmatch,semi", "--profiles", "consistent", "--seeds", "0",
                 "--steps", "10", "--eval-every", "10", "--threshold", "0.8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| consistent | semi | 1 |" in out
    assert (tmp_path / "summary.md").exists() and (tmp_path / "runs.csv").exists()
    cells = sorted(p.name for p in (tmp_path / "cells").glob("*.json"))
    assert cells == ["fixmatch--consistent--seed0.json", "semi--consistent--seed0.json"]
    saved = json.loads((tmp_path / "cells" / cells[1]).read_text())
    assert saved["settings"]["hparams"]["threshold"] == 0.8  # --threshold reached both methods
    for argv, message in ((["--profiles", "sideways"], "--profiles must name"), (["--seeds", "a"], "--seeds must be")):
        with pytest.raises(SystemExit, match=message):
            main(["benchmark", "--method", "fixmatch", "--out", str(tmp_path)] + argv)


def test_cli_and_python_grids_share_finished_runs(tmp_path, monkeypatch):
    assert main(["benchmark", "--method", "fixmatch", "--profiles", "consistent", "--seeds", "0", "--steps", "10",
                 "--eval-every", "10", "--no-progress", "--out", str(tmp_path)]) == 0

    def no_training(self):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "fit", no_training)
    rows = bench.run_grid(["fixmatch"], ["consistent"], [0], config=TrainConfig(steps=10, eval_every=10),
                          out=tmp_path, progress=False)
    assert rows[0]["method"] == "fixmatch"
