"""Unrolling a TimeDistributed CNN, so any inner layer's activations are reachable per frame.

``model.get_layer("block5_conv4")`` fails on a video model: the inner layers of a wrapped
backbone are not in the outer graph. Here the model's graph is rebuilt, reusing its own
layer objects (the same weights, no copies), with the TimeDistributed layer replaced by:
reshape the clips to one batch of frames (N*T, H, W, C), run the CNN split at the chosen
layer, and reshape the features back to (N, T, F). The rebuilt model also returns the
chosen layer's activations and the class logits.
"""

from __future__ import annotations

import keras
from keras import ops


def find_time_distributed(model: keras.Model) -> keras.layers.TimeDistributed:
    """The model's one TimeDistributed layer, whatever its name and place in the graph."""
    wrappers = [layer for layer in model.layers if isinstance(layer, keras.layers.TimeDistributed)]
    if not wrappers:
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in model.layers)
        raise ValueError(f"model {model.name!r} has no TimeDistributed layer, so it has no per-frame "
                         f"CNN to explain; its layers are: {names}")
    if len(wrappers) > 1:
        raise ValueError(f"model {model.name!r} has {len(wrappers)} TimeDistributed layers "
                         f"({', '.join(w.name for w in wrappers)}); expected one wrapping the CNN")
    if not isinstance(wrappers[0].layer, keras.Model):
        raise ValueError(f"{wrappers[0].name} wraps a single {type(wrappers[0].layer).__name__} "
                         f"layer, not a CNN model; there is no inner layer to explain")
    return wrappers[0]


def spatial_layers(cnn: keras.Model) -> list[str]:
    """Names of the CNN's layers whose output is a spatial map (H, W, channels), input excluded."""
    return [layer.name for layer in cnn.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4]


def last_convolution(cnn: keras.Model) -> str:
    convolutions = [layer.name for layer in cnn.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        raise ValueError(f"the backbone {cnn.name!r} has no Conv2D layer; pass layer= explicitly "
                         f"(one of {spatial_layers(cnn)})")
    return convolutions[-1]


class _Logits(keras.layers.Layer):
    """The pre-softmax scores of a softmax Dense layer, computed with that layer's own weights."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense

    def call(self, x):
        logits = ops.matmul(x, self.dense.kernel)
        return logits + self.dense.bias if self.dense.use_bias else logits


def _is_softmax_dense(layer) -> bool:
    return (isinstance(layer, keras.layers.Dense)
            and getattr(layer.activation, "__name__", "") == "softmax")


def unrolled_model(model: keras.Model, layer_name: str) -> keras.Model:
    """clips -> [activations of `layer_name` (N*T, h, w, k), class logits (N, C), probabilities (N, C)].

    Logits are the output layer's pre-softmax scores when it is a softmax Dense layer, and
    the log-probabilities otherwise.
    """
    wrapper = find_time_distributed(model)
    cnn = wrapper.layer
    split = keras.Model(cnn.inputs, [cnn.get_layer(layer_name).output, cnn.outputs[0]],
                        name=f"{cnn.name}_split_at_{layer_name}")
    output_layer = model.layers[-1]
    captured = {}

    def call(layer, *args, **kwargs):
        if layer is wrapper:
            clips = args[0]
            frames = ops.reshape(clips, (-1,) + tuple(clips.shape[2:]))
            activations, features = split(frames)
            captured["activations"] = activations
            return ops.reshape(features, (-1, clips.shape[1]) + tuple(features.shape[1:]))
        if layer is output_layer and _is_softmax_dense(layer):
            captured["logits"] = _Logits(layer, name="logits")(args[0])
        return layer(*args, **kwargs)

    rebuilt = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    probabilities = rebuilt.outputs[0]
    logits = captured.get("logits")
    if logits is None:
        logits = ops.log(ops.maximum(probabilities, 1e-12))
    return keras.Model(rebuilt.inputs[0], [captured["activations"], logits, probabilities],
                       name=f"{model.name}_unrolled_at_{layer_name}")
