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
import tensorflow as tf
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


class _InputGradientConv(keras.layers.Layer):
    """A stride-1, "same", odd-kernel Conv2D computed with the layer's own weights, whose
    gradient flows to its input only: as a forward convolution with the kernel flipped in
    space and transposed in channels (exactly the transpose of the convolution). On oneDNN
    CPUs that kernel is faster than Conv2DBackpropInput, and no weight gradient is built:
    the explanations never need one (measured in benchmarks/RESULTS.md)."""

    def __init__(self, conv: keras.layers.Conv2D, **kwargs):
        super().__init__(dtype=conv.dtype_policy, **kwargs)
        self.conv = conv

    def call(self, x):
        @tf.custom_gradient
        def convolve(inputs, kernel):
            def to_input(upstream):
                flipped = tf.reverse(tf.transpose(kernel, [0, 1, 3, 2]), axis=[0, 1])
                return tf.nn.conv2d(upstream, flipped, 1, "SAME"), None
            return tf.nn.conv2d(inputs, kernel, 1, "SAME"), to_input

        y = convolve(x, tf.cast(self.conv.kernel, x.dtype))
        if self.conv.use_bias:
            y = y + self.conv.bias
        return self.conv.activation(y)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    @staticmethod
    def applies_to(layer) -> bool:
        return (type(layer) is keras.layers.Conv2D and layer.padding == "same"
                and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
                and layer.groups == 1 and layer.data_format == "channels_last"
                and all(k % 2 == 1 for k in layer.kernel_size))


def _split(cnn: keras.Model, layer_name: str, input_gradients_only: bool) -> keras.Model:
    """frames -> [activations of `layer_name`, the CNN's features], with the same weights."""
    captured = {}

    def call(layer, *args, **kwargs):
        if input_gradients_only and _InputGradientConv.applies_to(layer):
            output = _InputGradientConv(layer, name=f"{layer.name}_to_input")(*args)
        else:
            output = layer(*args, **kwargs)
        if layer.name == layer_name:
            captured["activations"] = output
        return output

    rebuilt = keras.models.clone_model(cnn, clone_function=lambda layer: layer, call_function=call)
    return keras.Model(rebuilt.inputs, [captured["activations"], rebuilt.outputs[0]],
                       name=f"{cnn.name}_split_at_{layer_name}")


def _is_softmax_dense(layer) -> bool:
    return (isinstance(layer, keras.layers.Dense)
            and getattr(layer.activation, "__name__", "") == "softmax")


def unrolled_model(model: keras.Model, layer_name: str, input_gradients_only: bool = False) -> keras.Model:
    """clips -> [activations of `layer_name` (N*T, h, w, k), class logits (N, C), probabilities (N, C)].

    Logits are the output layer's pre-softmax scores when it is a softmax Dense layer, and
    the log-probabilities otherwise. input_gradients_only: the CNN's convolutions pass
    gradients to their inputs by a faster route and give their weights none (for
    explanations, never for training).
    """
    wrapper = find_time_distributed(model)
    split = _split(wrapper.layer, layer_name, input_gradients_only)
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
