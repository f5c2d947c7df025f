"""What a multi-stage method (a recipe) is: a sequence of engine runs (stages or generations), each a
one-step algorithm trained by :class:`~cissl_kit.engine.Trainer`; and the driver that runs them under
one progress bar."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn
from tqdm.auto import tqdm

from ..algorithms.base import check_hparams
from ..engine import stop_or_return


@dataclass
class Recipe:
    """A method made of several engine runs (stages), such as decoupled training or Alternate
    Sampling. Subclasses are dataclasses whose fields are their hyper-parameters and implement
    :meth:`fit`, which returns a :class:`~cissl_kit.engine.TrainResult` with one history row per stage;
    with ``resume=True`` it continues from ``config.checkpoint``.
    """

    name: ClassVar[str] = "recipe"

    def __post_init__(self) -> None:
        check_hparams(self)

    @property
    def uses_unlabeled_data(self) -> bool:
        """False for a recipe that trains on the labeled set alone."""
        return True

    def check_config(self, config: Any) -> None:
        """Raise ``ValueError`` if the recipe cannot run with these loop settings (checked before any work)."""

    def fit(self, data: Any, config: Any = None, model: nn.Module | None = None, resume: bool = False,
            keep_partial: bool = False) -> Any:
        """Run every stage; on Ctrl-C raise :class:`~cissl_kit.engine.TrainingInterrupted` with the result of
        the stages so far, or with ``keep_partial=True`` return that result."""
        raise NotImplementedError

    def hparams(self) -> dict:
        return dataclasses.asdict(self)


def run_to_the_end(name: str, run: Any, advance: Callable[[], str | None], total: int,
                   keep_partial: bool = False) -> Any:
    """Call ``advance()`` (which runs a recipe's next stage and names it, or returns None when all
    are done) under a progress bar; returns ``run.result()``. On Ctrl-C the result of the stages so
    far, ``run.result(interrupted=True)`` (the last checkpoint stays on disk), is raised with
    :class:`~cissl_kit.engine.TrainingInterrupted`, or returned with ``keep_partial``."""
    with tqdm(total=total, initial=len(run.records), desc=name, disable=not run.config.progress) as bar:
        try:
            while (stage := advance()) is not None:
                bar.set_postfix_str(f"{stage} · acc {run.records[-1]['accuracy']:.3f}", refresh=False)
                bar.update(1)
        except KeyboardInterrupt:
            return stop_or_return(run.result(interrupted=True), keep_partial)
    return run.result()
