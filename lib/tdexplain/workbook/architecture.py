"""Describing a video model: layer tables, parameter counts, the shape of a clip at each stage,
and the architecture figure in the style of the paper's Figure 1."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..engine import graphs, shapes
from . import models

__all__ = ["ModelDescription", "describe", "plot_architecture"]


@dataclass
class ModelDescription:
    layers: pd.DataFrame     # the outer model, one row per layer
    backbone: pd.DataFrame   # the per-frame CNN (or a Conv3D/ConvLSTM2D model's spatio-temporal layers)
    stages: pd.DataFrame     # the shape of one clip at each stage
    parameters: dict         # total, trainable, backbone, head

    def __str__(self):
        return "\n\n".join([
            "Model layers\n" + self.layers.to_string(index=False),
            "Backbone (applied to every frame)\n" + self.backbone.to_string(index=False),
            "A clip through the model\n" + self.stages.to_string(index=False),
            "Parameters: " + ", ".join(f"{k} {v:,}" for k, v in self.parameters.items()),
        ])

    def _repr_html_(self):
        return "".join([
            "<h4>Model layers</h4>", self.layers.to_html(index=False),
            "<h4>Backbone (applied to every frame)</h4>", self.backbone.to_html(index=False),
            "<h4>A clip through the model</h4>", self.stages.to_html(index=False),
            "<p>Parameters: ", ", ".join(f"{k} {v:,}" for k, v in self.parameters.items()), "</p>",
        ])


def _shape(shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def _layer_rows(layers) -> pd.DataFrame:
    return pd.DataFrame([{
        "layer": layer.name, "type": type(layer).__name__,
        "output shape": _shape(layer.output.shape),
        "parameters": layer.count_params(),
        "trainable": layer.trainable,
    } for layer in layers])


def describe(model: keras.Model) -> ModelDescription:
    """Layer tables of the model and of its backbone (the per-frame CNN, nested models opened;
    for a Conv3D/ConvLSTM2D model its spatio-temporal layers), parameters, and a clip's shapes."""
    video = shapes.video_part(model)
    backbone = video.backbone_layers()
    clip = video.clip_tensor
    stages = [("input clip", _shape(clip.shape), "raw RGB frames, 0..255")]
    for layer in graphs.leaf_layers(video.graph):
        if layer is video.frame_wrapper:
            for inner in backbone:  # each block's pooling, and the per-frame features
                if inner is backbone[-1] or isinstance(inner, (keras.layers.MaxPooling2D,
                                                               keras.layers.GlobalAveragePooling2D)):
                    shape = (None, video.frames) + tuple(inner.output.shape[1:])
                    stages.append((f"{layer.name} / {inner.name}", _shape(shape),
                                   "every frame through the CNN"))
        elif layer not in video.wrappers:
            stages.append((layer.name, _shape(layer.output.shape), type(layer).__name__))
    backbone_parameters = sum(layer.count_params() for layer in backbone)
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    return ModelDescription(
        layers=_layer_rows(model.layers),
        backbone=_layer_rows(video.backbone.layers if video.wrappers else backbone),
        stages=pd.DataFrame(stages, columns=["stage", "shape", "what happens"]),
        parameters={"total": model.count_params(), "trainable": trainable,
                    "backbone": backbone_parameters, "head": model.count_params() - backbone_parameters},
    )


def plot_architecture(model: keras.Model, title: str | None = None):
    """The paper's Figure 1 as boxes: frames -> CNN per frame -> GRU -> dense blocks -> classes
    (TimeDistributed models; `describe` also covers Conv3D/ConvLSTM2D models)."""

    video = shapes.video_part(model)
    cnn = video.frame_network("; plot_architecture draws TimeDistributed(CNN) models: use describe(model)")
    wrapper = video.frame_wrapper
    frames, size = video.frames, video.size
    blocks = [layer for layer in graphs.leaf_layers(cnn) if layer.name.endswith("_pool")]
    filters = [layer.output.shape[-1] for layer in blocks]
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    names = shapes.class_names(model)

    fig, ax = plt.subplots(figsize=(11, 3.4))
    ax.set_xlim(0, 11), ax.set_ylim(0, 3.4), ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03", fc=color, ec="0.3"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(x0, x1, y=1.7):
        ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=12, color="0.3"))

    for i in range(min(frames, 4)):  # a stack of frames
        box(0.1 + 0.08 * i, 0.9 + 0.12 * i, 1.0, 1.0, "" if i < min(frames, 4) - 1 else
            f"{frames} frames\n{size}x{size}x3", "#dbe9f6")
    arrow(1.5, 1.8)
    ax.add_patch(FancyBboxPatch((1.85, 0.35), 3.5, 2.75, boxstyle="round,pad=0.03", fc="none",
                                ec="#4c72b0", ls="--"))
    ax.text(3.6, 3.22, f"{wrapper.name}: {cnn.name} on every frame", ha="center", fontsize=8,
            color="#4c72b0")
    for i, (layer, width) in enumerate(zip(blocks, filters)):
        box(1.95 + 0.6 * i, 0.55 + 0.12 * i, 0.52, 2.2 - 0.24 * i,
            f"block{i + 1}\n{width} ch", "#a6cee3")
    pooled_inside = isinstance(graphs.leaf_layers(cnn)[-1], keras.layers.GlobalAveragePooling2D)
    pooled_after = any(isinstance(layer, models.FramePooling) for layer in model.layers)
    if pooled_inside or pooled_after:  # where each frame's map becomes one vector (02 moves it)
        box(4.95 if pooled_inside else 5.41, 1.2, 0.32, 1.0, "avg\npool", "#cab2d6")
    if not pooled_after:
        arrow(5.4, 5.75)
    for layer in recurrent:
        box(5.8, 1.0, 1.2, 1.4, f"{type(layer).__name__}\n{layer.units} units\n"
            f"dropout {getattr(layer, 'dropout', 0):.0%}", "#fdbf6f")
    arrow(7.05, 7.35)
    for i, layer in enumerate(dense):
        rate = dropouts[i].rate if i < len(dropouts) else 0
        box(7.4 + 0.62 * i, 1.0, 0.52, 1.4, f"Dense\n{layer.units}\n+Drop\n{rate:.0%}", "#b2df8a")
    x = 7.4 + 0.62 * len(dense) + 0.05
    arrow(x - 0.1, x + 0.2)
    box(x + 0.25, 0.8, 1.05, 1.8, "softmax\n" + "\n".join(names), "#fb9a99")
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters", fontsize=9)
    return fig
