"""cissl_kit: a teaching kit for class-imbalanced semi-supervised learning.

The package, bottom to top (a module imports only from the layers below it):

* ``_checks``, ``_runtime``, ``utils``, ``outputs``: argument checks, process settings, devices and
  threads, output files;
* ``data`` and ``models``: long-tailed splits, augmentation, samplers; backbones;
* ``losses``, ``thresholds``, ``memory_bank``, ``metrics``: the pieces methods are made of;
* ``algorithms``: one-step methods (a batch in, a loss out), each a small class;
* ``engine``: the one training loop;
* ``recipes``: multi-stage methods that drive the engine stage by stage;
* ``registry``: every method by name;
* ``stats``, ``benchmark``, ``analysis``, ``viz``, ``classroom``, ``cli``: grids and their
  statistics, measurements, plots and widgets, notebook tools, the command line.

Importing ``cissl_kit`` is light: the names below load their modules (and PyTorch) when first used.
"""

__version__ = "0.1.0"

import importlib

from ._runtime import configure_process

configure_process()  # before torch is imported: OpenMP reads its wait policy once (see _runtime)

_EXPORTS = {
    "ALGORITHMS": "registry", "build_algorithm": "registry",
    "Algorithm": "algorithms", "FixMatch": "algorithms", "PseudoLabel": "algorithms", "Supervised": "algorithms",
    "TrainConfig": "engine", "TrainResult": "engine", "Trainer": "engine", "results_table": "engine", "train": "registry",
    "build_model": "models", "long_tailed_counts": "data", "make_ssl_data": "data",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cissl_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
