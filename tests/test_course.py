"""The notebooks' multi-seed grids: read shipped and digest-checked, refused when changed, named in errors."""

import json

import pytest

from cissl_kit import benchmark, course
from cissl_kit.course import GRIDS, course_results, runs_at


def test_an_unknown_grid_is_named_with_the_choices():
    with pytest.raises(ValueError, match="name must be one of '01_mnist', '02_semi'.*did you mean '02_semi'"):
        course_results("02_sem")


def test_the_mnist_grid_reads_its_methods_from_the_shipped_reference_file():
    rows = course_results("01_mnist")
    assert {r["label"] for r in rows} == {"supervised", "fixmatch"}
    assert {r["seed"] for r in rows} == set(course.SEEDS_MNIST)
    assert {r["profile"] for r in rows} == {"consistent", "uniform", "reversed"}


def test_a_grid_that_is_not_shipped_says_how_to_train_it(tmp_path, monkeypatch):
    manifest = tmp_path / "MANIFEST.json"
    manifest.write_text("{}")
    monkeypatch.setattr(benchmark, "MANIFEST", manifest)
    with pytest.raises(FileNotFoundError, match=r"'04_alternate_gamma10' is not shipped .* retrain=True"):
        course_results("04_alternate_gamma10")


def test_a_changed_shipped_file_is_refused(tmp_path, monkeypatch):
    results = tmp_path / "reference_results"
    (results / "course").mkdir(parents=True)
    path = results / "course" / "03_layermatch.json"
    path.write_text(json.dumps([{"label": "FixMatch", "profile": "consistent", "seed": 0, "accuracy": 0.9}]))
    monkeypatch.setattr(benchmark, "RESULTS", results)
    monkeypatch.setattr(benchmark, "MANIFEST", results / "MANIFEST.json")
    benchmark.write_manifest()
    path.write_text(path.read_text().replace("0.9", "0.99"))  # one figure edited after the digest was taken
    with pytest.raises(ValueError, match="does not match the digest"):
        course_results("03_layermatch")


def test_every_grid_names_a_notebook_and_trains_on_seeds():
    for name, grid in GRIDS.items():
        assert name.startswith(grid.notebook) and grid.seeds and grid.methods and grid.profiles


def test_every_shipped_course_grid_holds_every_method_profile_and_seed_once():
    for name, grid in GRIDS.items():
        rows = course_results(name, progress=False)
        cells = [(r["label"], r["profile"], r["seed"]) for r in rows]
        assert sorted(cells) == sorted((m, p, s) for m in grid.methods for p in grid.profiles for s in grid.seeds), name
        assert not any(r.get("interrupted") for r in rows) and all(r["curve"] for r in rows), name


def test_runs_at_gives_one_seeds_runs_as_training_results_that_the_tables_take():
    from cissl_kit import results_table

    grid = course_results("03_layermatch")
    runs = runs_at(grid, seed=1)
    row = next(r for r in grid if r["label"] == "LayerMatch (kit)" and r["seed"] == 1)
    result = runs["LayerMatch (kit)"]
    assert set(runs) == set(GRIDS["03_layermatch"].methods)
    assert result.final["accuracy"] == row["accuracy"] and result.final["per_class"] == row["per_class"]
    assert [h["threshold"] for h in result.history] == [p["threshold"] for p in row["curve"]]
    assert f"{100 * row['accuracy']:.1f}" in results_table(runs).splitlines()[2 + list(runs).index("LayerMatch (kit)")]
    result.history.clear()  # a copy: the rows stay as read
    assert row["curve"]


def test_runs_at_names_the_seeds_and_profiles_it_can_give():
    grid = course_results("03_layermatch")
    with pytest.raises(ValueError, match=r"seed must be one of \[0, 1, 2, 3, 4\], got 7"):
        runs_at(grid, seed=7)
    both = grid + course_results("03_layermatch_reversed")
    with pytest.raises(ValueError, match=r"profile must be one of \['consistent', 'reversed'\]"):
        runs_at(both, seed=0)
    assert set(runs_at(both, seed=0, profile="reversed")) == set(GRIDS["03_layermatch_reversed"].methods)


@pytest.mark.parametrize("name, cores, jobs, threads", [("04_alternate_gamma10", 2, 2, 1), ("03_layermatch", 2, 1, 2),
                                                        ("03_layermatch", 1, 1, 1)])
def test_retrain_trains_each_run_on_the_thread_count_of_the_shipped_runs(monkeypatch, name, cores, jobs, threads):
    """A run's floats depend on its thread count, so RETRAIN trains as the shipped file was trained (one thread a
    run, the cores shared out; two for 03_layermatch); run_grid applies the count, in this process too
    (tests/test_benchmark.py), and leaves the notebook's own thread count as it was."""
    import torch

    seen = {}

    def fake_run_grid(*args, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(course, "run_grid", fake_run_grid)
    monkeypatch.setattr(course, "usable_cores", lambda: cores)
    monkeypatch.setattr(course, "max_threads", lambda: cores)
    before = torch.get_num_threads()
    assert course_results(name, retrain=True, progress=False) == []
    assert (seen["jobs"], seen["threads"]) == (jobs, threads)
    assert torch.get_num_threads() == before
    assert {r["threads"] for r in course_results(name)} == {GRIDS[name].threads}  # what the shipped rows record
