"""The process settings the kit makes at import (``cissl_kit._runtime``) and its default thread count."""

import json
import os
import platform
import subprocess
import sys

import pytest

from cissl_kit import utils

REPORT = ("import os, sys, json\nimport cissl_kit\ntorch_first = 'torch' in sys.modules\nimport torch\n"
          "from cissl_kit._runtime import configure_process\n"
          "print(json.dumps({'policy': os.environ.get('OMP_WAIT_POLICY'), 'spin': os.environ.get('GOMP_SPINCOUNT'),"
          " 'torch_first': torch_first, 'done': configure_process()}))")


def _imported_with(**settings) -> dict:
    """``import cissl_kit`` in a fresh process whose environment has only ``settings`` of the kit's variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "CISSL_KIT_PROCESS_TUNING")}
    env.update(settings)
    done = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_sets_a_passive_wait_policy_with_a_short_spin_and_keeps_freed_memory():
    seen = _imported_with()
    assert (seen["policy"], seen["spin"]) == ("PASSIVE", "3000")
    # OpenMP reads the policy once, when torch loads: importing the kit sets it without loading torch, and a
    # call after torch has loaded says it can no longer take
    assert seen["torch_first"] is False and seen["done"]["omp_passive"] is False
    assert seen["done"]["malloc"] is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize("settings", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"},
                                      {"OMP_WAIT_POLICY": "PASSIVE"}])
def test_a_wait_policy_the_user_set_wins_and_the_kit_adds_nothing_to_it(settings):
    seen = _imported_with(**settings)
    assert (seen["policy"], seen["spin"]) == (settings.get("OMP_WAIT_POLICY"), settings.get("GOMP_SPINCOUNT"))


def test_process_tuning_off_sets_nothing():
    seen = _imported_with(CISSL_KIT_PROCESS_TUNING="0")
    assert (seen["policy"], seen["spin"]) == (None, None)
    assert seen["done"] == {"omp_passive": False, "malloc": False}


@pytest.mark.parametrize("cores, model, expected", [(1, None, 1), (2, "small_cnn", 2), (16, "small_cnn", 2),
                                                    (16, "mlp", 2), (16, "resnet18", 16), (4, "wrn28_2", 4)])
def test_default_threads_is_the_usable_cores_at_most_two_for_the_small_models(monkeypatch, cores, model, expected):
    monkeypatch.setattr(utils, "usable_cores", lambda: cores)
    assert utils.default_threads(model) == expected


def test_set_threads_refuses_more_threads_than_usable_cores_naming_the_range():
    with pytest.raises(ValueError, match=r"threads.*1.*" + str(utils.max_threads())):
        utils.set_threads(utils.max_threads() + 1)
