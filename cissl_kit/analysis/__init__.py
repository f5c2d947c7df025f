"""Analyses that look inside training: hardness, the memory bank, layer gradients, a 2-D toy, t-SNE of embeddings."""

from .embedding import embed_test_images, tsne_2d
from .hardness import hardness_categories, replay_memory_banks
from .layer_gradients import LayerGradientTracker, format_report, layer_gradient_report
from .toy import pseudo_label_tilt

__all__ = ["LayerGradientTracker", "format_report", "hardness_categories", "layer_gradient_report",
           "pseudo_label_tilt", "replay_memory_banks", "embed_test_images", "tsne_2d"]
