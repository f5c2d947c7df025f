"""ipywidgets panels for the notebooks (inline backend + ``interactive_output``: JupyterLab and Colab)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..data.imbalance import class_groups, long_tailed_counts, unlabeled_counts
from .plots import plot_class_counts


def split_explorer(n_max: int = 1500, imbalance_ratio: float = 100.0, m_max: int = 3000,
                   unlabeled_ratio: float = 100.0, num_classes: int = 10, profile: str = "consistent"):
    """Sliders for N1, γ_l, M1, γ_u, K and the unlabeled profile, redrawing the class counts.

    Returns ``(panel, draw)``: the widget to display and the drawing function it calls.
    """
    import ipywidgets as w
    from IPython.display import display

    style = {"description_width": "150px"}
    layout = w.Layout(width="420px")
    controls = dict(
        n_max=w.IntSlider(n_max, 10, 5000, 10, description="N1 (labeled, head)", style=style, layout=layout),
        imbalance_ratio=w.FloatLogSlider(imbalance_ratio, base=10, min=0, max=3, step=0.05,
                                         description="γ_l (labeled ratio)", style=style, layout=layout),
        m_max=w.IntSlider(m_max, 10, 10000, 10, description="M1 (unlabeled, max)", style=style, layout=layout),
        unlabeled_ratio=w.FloatLogSlider(unlabeled_ratio, base=10, min=0, max=3, step=0.05,
                                         description="γ_u (unlabeled ratio)", style=style, layout=layout),
        num_classes=w.IntSlider(num_classes, 3, 100, 1, description="classes K", style=style, layout=layout),
        profile=w.ToggleButtons(options=["consistent", "uniform", "reversed"], value=profile,
                                description="unlabeled profile", style=style),
    )

    def draw(n_max, imbalance_ratio, m_max, unlabeled_ratio, num_classes, profile):
        try:
            labeled = long_tailed_counts(n_max, imbalance_ratio, num_classes)
            unlabeled = unlabeled_counts(m_max, unlabeled_ratio, num_classes, profile)
        except ValueError as error:  # e.g. the tail would get zero images: say so instead of crashing
            print(f"Not a valid split: {error}")
            return
        groups = class_groups(labeled)
        fig, ax = plt.subplots(figsize=(8, 3.4))
        plot_class_counts(labeled, unlabeled, groups, ax=ax, log=True,
                          title=f"labeled γ_l = {imbalance_ratio:.0f}, unlabeled {profile} (γ_u = {unlabeled_ratio:.0f})")
        if num_classes > 20:
            ax.set_xticks(range(0, num_classes, max(1, num_classes // 10)))
        plt.show()
        sizes = {g: len(c) for g, c in groups.items()}
        print(f"labeled {sum(labeled)} (head {labeled[0]}, tail {labeled[-1]}), unlabeled {sum(unlabeled)} "
              f"(head {unlabeled[0]}, tail {unlabeled[-1]}); groups many/medium/few = "
              f"{sizes['many']}/{sizes['medium']}/{sizes['few']} classes")

    out = w.interactive_output(draw, controls)
    caption = w.HTML("<b>Move a slider</b>: the bars show images per class, labeled (blue) and unlabeled (grey), "
                     "on a log scale; shaded bands mark the many / medium / few groups.")
    panel = w.VBox([caption, w.HBox([w.VBox(list(controls.values())[:3]), w.VBox(list(controls.values())[3:])]), out])
    return panel, draw
