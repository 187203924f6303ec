"""The paper's video classifier: TimeDistributed(VGG19) -> GRU -> dense blocks -> softmax.

The model takes raw RGB clips (N, T, H, W, 3) in 0..255; VGG19's preprocessing is a layer
inside it, so a saved ``.keras`` file is self-contained and gradients are in pixel space.
The class names travel with the model, in the configuration of its output layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from ..engine import backend, shapes
from ..engine.clips import check_clips
from ..engine.unroll import find_time_distributed
from .data import sample_path
from .synthetic import CLASSES

# The shipped models, trained on the synthetic temporal task (no single frame tells the class):
# the demo model, its twin trained on shuffled labels, and the per-frame baseline (the same
# frame network and recipe, the GRU replaced by an average over time).
DEMO_MODEL = sample_path("demo_model.keras")
RANDOM_LABELS_MODEL = sample_path("random_labels_model.keras")
FRAME_AVERAGE_MODEL = sample_path("frame_average_model.keras")
BACKBONES = ("vgg19",)
POOLINGS = ("inside", "after")  # where each frame's feature map is averaged
TEMPORALS = ("gru", "average")  # what reads the sequence of frame features
# VGG19's convolution blocks: (block, convolutions, filters at width 1).
VGG19_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
IMAGENET_NOTOP = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)

__all__ = [
    "DEMO_MODEL", "RANDOM_LABELS_MODEL", "FRAME_AVERAGE_MODEL", "build_model", "load_model", "save_model",
    "predict", "backbone_of", "imagenet_weights_path",
    "pool_after_wrapper",
]


@keras.saving.register_keras_serializable(package="tdexplain")
class VGGPreprocess(layers.Layer):
    """RGB 0..255 to VGG's input: BGR order minus the ImageNet mean (caffe style)."""

    def call(self, clips):
        bgr = keras.ops.flip(clips, axis=-1)
        return bgr - keras.ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype=clips.dtype)


@keras.saving.register_keras_serializable(package="tdexplain")
class FramePooling(layers.Layer):
    """Average each frame's feature map over its positions: (N, T, h, w, C) -> (N, T, C).

    The workbook's reconstruction of the paper's map pools after the TimeDistributed layer, so
    that layer's output keeps its spatial grid and Grad-CAM can be computed on it (the paper
    computed its maps at that output and does not say how it pooled)."""

    def call(self, features):
        return keras.ops.mean(features, axis=(2, 3))

    def compute_output_shape(self, input_shape):
        return input_shape[:2] + input_shape[4:]


@keras.saving.register_keras_serializable(package="tdexplain")
class ClassProbabilities(layers.Dense):
    """The softmax output layer; it carries the class names, so they are saved with the model."""

    def __init__(self, class_names, **kwargs):
        kwargs.setdefault("activation", "softmax")
        super().__init__(units=len(class_names), **kwargs)
        self.class_names = tuple(class_names)

    def get_config(self):
        config = super().get_config()
        config.pop("units")
        return config | {"class_names": list(self.class_names)}


def imagenet_weights_path() -> Path:
    """Where Keras caches VGG19's ImageNet weights (``$KERAS_HOME/models``, default ``~/.keras``)."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    return home / "models" / IMAGENET_NOTOP


def _resolve_weights(weights, width: float):
    """The weights file to load into the backbone, or None for a random initialization."""
    if weights is None:
        return None
    if weights == "imagenet":
        if width != 1.0:
            raise ValueError(f"ImageNet weights exist only for width=1.0 (the real VGG19), got "
                             f"width={width}; use weights=None or a weights file of that width")
        path = imagenet_weights_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19's ImageNet weights are not in the Keras cache and are never downloaded "
                f"here. Put {IMAGENET_NOTOP} at {path} (it is what keras.applications.VGG19("
                f"weights='imagenet', include_top=False) downloads on a machine with network), "
                f"or pass weights=<path to the file>")
        return path
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path} (expected a Keras .h5 or "
                                f".weights.h5 file of the backbone, or 'imagenet', or None)")
    return path


def _he_init(first: bool) -> keras.initializers.Initializer:
    """He initialization, the first layer scaled for VGG's input (pixels minus the mean, std ~64).

    A plain 16-layer ReLU stack does not train from scratch with Keras' default (Glorot)
    initialization, and unscaled features of magnitude ~100 saturate the GRU's gates.
    """
    scale = 2.0 / 64.0**2 if first else 2.0
    return keras.initializers.VarianceScaling(scale, mode="fan_in", distribution="truncated_normal")


def _vgg19(size: int, width: float, pool: bool = True) -> keras.Model:
    """VGG19's topology and layer names (block1_conv1 ... block5_pool), with width x its
    filters, ending with global average pooling (or, pool=False, at block5_pool's grid)."""
    if width == 1.0:
        return keras.applications.VGG19(include_top=False, weights=None,
                                        pooling="avg" if pool else None, input_shape=(size, size, 3))
    frame = keras.Input((size, size, 3), name="input_layer")
    x = frame
    for block, convolutions, filters in VGG19_BLOCKS:
        for i in range(1, convolutions + 1):
            x = layers.Conv2D(max(1, round(filters * width)), 3, padding="same", activation="relu",
                              kernel_initializer=_he_init(first=(block, i) == (1, 1)),
                              name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if pool:
        x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    return keras.Model(frame, x, name="vgg19")


def build_model(frames: int = 8, size: int = 224, classes=CLASSES, backbone: str = "vgg19",
                width: float = 1.0, weights=None, gru_units: int = 1024, dropout: float = 0.5,
                dense_blocks: int = 3, dense_units=None, block_dropout: float | None = None,
                trainable_backbone: bool | None = None,
                pooling: str = "inside", temporal: str = "gru",
                name: str = "tdexplain_video_classifier") -> keras.Model:
    """The paper's model: raw RGB clips -> TimeDistributed(VGG19) -> GRU -> dense blocks -> softmax.

    width: 1.0 is exactly ``keras.applications.VGG19`` (ImageNet weights load into it);
    below 1 the same topology and layer names with fewer filters. weights: None (random),
    "imagenet" (from the Keras cache, never downloaded) or a path to a weights file of the
    backbone. dropout: the GRU's input dropout rate, in [0, 1). block_dropout: the rate of
    the Dropout layer in each dense block, in [0, 1); None (the default) uses `dropout`, so
    one rate serves both. dense_units: an int or one int per block (default: half the GRU
    units, at least 16). trainable_backbone: default False with pretrained weights, True otherwise.
    pooling: "inside" the wrapped CNN (its output is one vector per frame), or "after" the
    TimeDistributed layer (the workbook's reconstruction of the paper's map: its output keeps
    block5_pool's grid). The
    two compute the same function; see also `pool_after_wrapper`. temporal: "gru" (the
    paper's) or "average", the per-frame baseline: the frame features averaged over time
    (no order, no memory; gru_units then only sets the default dense_units).
    """
    block_dropout = dropout if block_dropout is None else block_dropout
    _check_arguments(frames, size, classes, backbone, width, gru_units, dense_blocks)
    _check_rates(dropout=dropout, block_dropout=block_dropout)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if temporal not in TEMPORALS:
        raise ValueError(f"temporal must be one of {TEMPORALS}, got {temporal!r}")
    weights_file = _resolve_weights(weights, width)
    if dense_units is None:
        dense_units = max(16, gru_units // 2)
    units = [dense_units] * dense_blocks if np.isscalar(dense_units) else list(dense_units)
    if len(units) != dense_blocks or min(units, default=1) < 1:
        raise ValueError(f"dense_units must be a positive int or {dense_blocks} positive ints "
                         f"(one per dense block), got {dense_units!r}")

    cnn = _vgg19(size, width, pool=pooling == "inside")
    if weights_file is not None:
        cnn.load_weights(weights_file)
    cnn.trainable = weights_file is None if trainable_backbone is None else trainable_backbone

    clips = keras.Input((frames, size, size, 3), name="clip")
    x = VGGPreprocess(name="vgg_preprocess")(clips)
    x = layers.TimeDistributed(cnn, name="time_distributed_vgg19")(x)
    if pooling == "after":
        x = FramePooling(name="frame_pooling")(x)
    if temporal == "gru":
        x = layers.GRU(gru_units, dropout=dropout, name="gru")(x)
    else:
        x = layers.GlobalAveragePooling1D(name="frame_average")(x)
    for block, block_units in enumerate(units, start=1):
        x = layers.Dense(block_units, activation="relu", name=f"dense_{block}")(x)
        x = layers.Dropout(block_dropout, name=f"dropout_{block}")(x)
    probabilities = ClassProbabilities(classes, name="class_probabilities")(x)
    return backend.settled(keras.Model(clips, probabilities, name=name))


def pool_after_wrapper(model: keras.Model) -> keras.Model:
    """A model built with pooling inside the wrapped CNN, with its pooling moved after the
    TimeDistributed layer (the workbook's reconstruction of the paper's map): the same layers
    and weights (shared, not copied), the CNN cut before its global pooling. It predicts
    exactly what `model` does, and its TimeDistributed output is a per-frame grid that
    Grad-CAM can use."""
    wrapper = find_time_distributed(model)
    cnn = wrapper.layer
    if not isinstance(cnn.layers[-1], layers.GlobalAveragePooling2D):
        raise ValueError(f"the backbone {cnn.name!r} of {model.name!r} does not end with global "
                         f"average pooling (its last layer is {cnn.layers[-1].name!r}, "
                         f"{type(cnn.layers[-1]).__name__}); nothing to move after the wrapper")
    spatial_cnn = keras.Model(cnn.inputs, cnn.layers[-2].output, name=cnn.name)
    clips = keras.Input(model.input_shape[1:], name="clip")
    x = clips
    for layer in model.layers[1:]:
        if layer is wrapper:
            x = layers.TimeDistributed(spatial_cnn, name=wrapper.name)(x)
            x = FramePooling(name="frame_pooling")(x)
        else:
            x = layer(x)
    return keras.Model(clips, x, name=f"{model.name}_pooled_after")


def _check_rates(**rates):
    """Each dropout rate, by its argument's name, must be a number in [0, 1)."""
    for name, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0 <= rate < 1:
            raise ValueError(f"{name} must be in [0, 1), got {rate}")


def _check_arguments(frames, size, classes, backbone, width, gru_units, dense_blocks):
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
    for name, value, low in (("frames", frames, 1), ("size", size, 32), ("gru_units", gru_units, 1),
                             ("dense_blocks", dense_blocks, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1] (a fraction of VGG19's filters), got {width}")
    if isinstance(classes, str) or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be at least two distinct names, got {classes!r}")


def backbone_of(model: keras.Model) -> keras.Model:
    """The per-frame CNN: the model wrapped in the model's TimeDistributed layer (nested models
    flattened), or the network of its consecutive TimeDistributed layers (`shapes`)."""
    return shapes.video_part(model).frame_network()


def predict(model: keras.Model, clips, batch_size: int = 16) -> np.ndarray:
    """Class probabilities (N, C) for clips, checked against the model's input first."""
    frames, size = shapes.input_spec(model)
    batch = check_clips(clips, frames=frames, size=size)
    return model.predict(batch, batch_size=batch_size, verbose=0)


def save_model(model: keras.Model, path) -> Path:
    """Save the architecture, class names and weights as ``.keras``, without optimizer state
    (a third of the size: the file is for prediction and explanation)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files end in .keras, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if getattr(model, "optimizer", None) is not None:
        model = backend.copy_model(model)
    model.save(path)
    return path


def load_model(path=DEMO_MODEL) -> keras.Model:
    """Load a ``.keras`` model saved by tdexplain (or any Keras 3 model file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a bad file
        raise ValueError(f"{path} is not a Keras model file that can be loaded "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from error
    model.source_path = str(path.resolve())  # which file: the explorer's demo-model note reads it
    return backend.settled(model)
