"""cissl_kit: a teaching kit for class-imbalanced semi-supervised learning."""

__version__ = "0.1.0"

from .algorithms import ALGORITHMS, Algorithm, FixMatch, PseudoLabel, Supervised, build_algorithm
from .data import long_tailed_counts, make_ssl_data
from .engine import TrainConfig, Trainer, TrainResult, results_table, train
from .models import build_model

__all__ = ["ALGORITHMS", "Algorithm", "FixMatch", "PseudoLabel", "Supervised", "TrainConfig", "TrainResult",
           "Trainer", "build_algorithm", "results_table", "build_model", "long_tailed_counts", "make_ssl_data", "train"]
