"""The notebooks' multi-seed grids: read shipped and digest-checked, refused when changed, named in errors."""

import json

import pytest

from cissl_kit import benchmark, course
from cissl_kit.course import GRIDS, course_results


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
