"""Plots and widgets for the notebooks and the CLI."""

from .plots import (
    plot_alternate_progress,
    plot_benchmark,
    plot_class_counts,
    plot_class_examples,
    plot_confusion,
    plot_embedding,
    plot_history,
    plot_memory_bank,
    plot_per_class,
    plot_profiles,
    plot_tilt_demo,
    show_images,
)

__all__ = ["plot_alternate_progress", "plot_benchmark", "plot_embedding", "plot_class_counts", "plot_class_examples", "plot_confusion", "plot_memory_bank", "plot_history", "plot_per_class", "plot_profiles", "plot_tilt_demo", "show_images"]
