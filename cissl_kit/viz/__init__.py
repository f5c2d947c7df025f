"""Plots and widgets for the notebooks and the CLI.

Layer: above ``stats`` (whose numbers it draws) and the data, model and analysis layers; never imports the
benchmark, the registry's callers or the CLI. One colour per method: :func:`method_colour`.
"""

from .plots import (
    METHOD_COLOURS,
    WIDTH,
    figure_colours,
    method_colour,
    plot_alternate_progress,
    plot_benchmark,
    plot_class_counts,
    plot_class_examples,
    plot_confusion,
    plot_differences,
    plot_distance_curves,
    plot_embedding,
    plot_estimates,
    plot_history,
    plot_memory_bank,
    plot_per_class,
    plot_per_class_differences,
    plot_profiles,
    plot_tilt_demo,
    show_images,
)

__all__ = ["METHOD_COLOURS", "WIDTH", "figure_colours", "method_colour", "plot_alternate_progress", "plot_benchmark", "plot_class_counts",
           "plot_class_examples", "plot_confusion", "plot_differences", "plot_distance_curves", "plot_embedding", "plot_estimates", "plot_history",
           "plot_memory_bank", "plot_per_class", "plot_per_class_differences", "plot_profiles", "plot_tilt_demo", "show_images"]
