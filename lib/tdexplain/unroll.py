"""Unrolling a TimeDistributed CNN, so any inner layer's activations are reachable per frame.

``model.get_layer("block5_conv4")`` fails on a video model: the inner layers of a wrapped
backbone are not in the outer graph. Here the model's graph is rebuilt, reusing its own
layer objects (the same weights, no copies), with the TimeDistributed layer replaced by:
reshape the clips to one batch of frames (N*T, H, W, C), run the CNN split at the chosen
layer, and reshape the features back to (N, T, F). The rebuilt model also returns the
chosen layer's activations and the class logits, and takes a second input, a "probe" added
to those activations (zeros: it changes nothing), whose gradient is the gradient with
respect to the activations on any backend.
"""

from __future__ import annotations

import keras
from keras import ops

from . import backend
from .guided import guided_layer


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


# The default layer keeps at least this many cells per side (see `default_layer`).
MIN_CAM_CELLS = 8


def _convolutions(cnn: keras.Model) -> list:
    convolutions = [layer for layer in cnn.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        raise ValueError(f"the backbone {cnn.name!r} has no Conv2D layer; pass layer= explicitly "
                         f"(one of {spatial_layers(cnn)})")
    return convolutions


def last_convolution(cnn: keras.Model) -> str:
    """The paper's choice of layer for Grad-CAM: the backbone's last convolution."""
    return _convolutions(cnn)[-1].name


def default_layer(cnn: keras.Model) -> str:
    """The layer explained by default: the deepest convolution whose output grid has at
    least MIN_CAM_CELLS cells per side (the first convolution if none has).

    At VGG19's own 224 px this is the paper's last convolution, block5_conv4 (14x14). On
    small frames the last convolution is a grid that its block's own 3x3 convolutions mix
    from edge to edge (4x4 at 64 px), where even an ideal map points at the evidence in only
    half of the frames (`metrics.grid_bound`); at 8x8 an ideal map always can. Whether a
    model's CAM does is measured in notebook 04 and benchmarks/RESULTS.md.
    """
    convolutions = _convolutions(cnn)
    fine = [layer.name for layer in convolutions if min(layer.output.shape[1:3]) >= MIN_CAM_CELLS]
    return fine[-1] if fine else convolutions[0].name


class _Logits(keras.layers.Layer):
    """The pre-softmax scores of a softmax Dense layer, computed with that layer's own weights."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense

    def call(self, x):
        logits = ops.matmul(x, self.dense.kernel)
        return logits + self.dense.bias if self.dense.use_bias else logits


def _split(cnn: keras.Model, layer_name: str, input_gradients_only: bool, guided: bool = False) -> keras.Model:
    """[frames, probe] -> [activations of `layer_name` + probe, the CNN's features], with the
    same weights. guided: every ReLU passes Guided Backprop's gradient (`tdexplain.guided`)."""
    inner = cnn.get_layer(layer_name).output
    probe = keras.Input(shape=inner.shape[1:], dtype=inner.dtype, name="probe")
    captured = {}

    def call(layer, *args, **kwargs):
        swapped = ((guided and guided_layer(layer, f"{layer.name}_guided"))
                   or (input_gradients_only and backend.input_gradient_convolution(layer, f"{layer.name}_to_input")))
        output = swapped(*args) if swapped else layer(*args, **kwargs)
        if layer.name == layer_name:
            output = captured["activations"] = ops.add(output, probe)
        return output

    frames, features = _replay(cnn, call)
    return keras.Model([frames, probe], [captured["activations"], features],
                       name=f"{cnn.name}_split_at_{layer_name}")


def _replay(model: keras.Model, call):
    """A new input like the model's, and the model's graph run on it with its own layers,
    each node computed by `call(layer, *args, **kwargs)`. This is what
    keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    does, without building a model whose outputs may depend on an input it does not have
    (the probe)."""
    inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name)
    return inputs, model._run_through_graph(inputs, operation_fn=lambda layer: layer, call_fn=call)


def _is_softmax_dense(layer) -> bool:
    return (isinstance(layer, keras.layers.Dense)
            and getattr(layer.activation, "__name__", "") == "softmax")


def unrolled_model(model: keras.Model, layer_name: str, input_gradients_only: bool = False,
                   guided: bool = False) -> keras.Model:
    """[clips (N, T, H, W, 3), probe (N*T, h, w, k)] -> [activations of `layer_name`
    (N*T, h, w, k), class logits (N, C), probabilities (N, C)].

    Logits are the output layer's pre-softmax scores when it is a softmax Dense layer, and
    the log-probabilities otherwise. input_gradients_only: the CNN's convolutions pass
    gradients to their inputs by a faster route and give their weights none (for
    explanations, never for training). guided: the backbone's ReLUs pass Guided Backprop's
    gradient.
    """
    wrapper = find_time_distributed(model)
    split = _split(wrapper.layer, layer_name, input_gradients_only, guided)
    probe = keras.Input(shape=split.inputs[1].shape[1:], dtype=split.inputs[1].dtype, name="probe")
    output_layer = model.layers[-1]
    captured = {}

    def call(layer, *args, **kwargs):
        if layer is wrapper:
            clips = args[0]
            frames = ops.reshape(clips, (-1,) + tuple(clips.shape[2:]))
            activations, features = split([frames, probe])
            captured["activations"] = activations
            return ops.reshape(features, (-1, clips.shape[1]) + tuple(features.shape[1:]))
        if layer is output_layer and _is_softmax_dense(layer):
            captured["logits"] = _Logits(layer, name="logits")(args[0])
        return layer(*args, **kwargs)

    clips, probabilities = _replay(model, call)
    logits = captured.get("logits")
    if logits is None:
        logits = ops.log(ops.maximum(probabilities, 1e-12))
    return keras.Model([clips, probe], [captured["activations"], logits, probabilities],
                       name=f"{model.name}_unrolled_at_{layer_name}")
