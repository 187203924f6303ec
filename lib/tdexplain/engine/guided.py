"""Guided Backprop's ReLU (Springenberg et al., 2015), on any Keras backend.

Forward, a ReLU; backward, the gradient passes only where the ReLU's input was positive
(as for a ReLU) and the gradient arriving from above is positive. `guided_layer` gives, for
a layer that ends in a ReLU (a Conv1D, Conv2D, Conv3D or Dense with activation="relu", a ReLU or
Activation("relu") layer), a layer computing the same with its own weights and the guided
gradient; other layers are used as they are. `unroll` swaps them in for the guided pass,
in the backbone and the head alike, after `check_guidable` has refused a model with a ReLU
it cannot guide (a ReLU6, a depthwise or separable convolution's).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["guided_relu", "guided_layer", "check_guidable"]


@ops.custom_gradient
def guided_relu(x):
    def grad(*args, upstream=None):
        if upstream is None:  # JAX passes it by position, TensorFlow by name
            (upstream,) = args
        return upstream * ops.cast(x > 0, upstream.dtype) * ops.cast(upstream > 0, upstream.dtype)

    return ops.relu(x), grad


def _is_relu(activation) -> bool:
    return getattr(activation, "__name__", "") == "relu"


def _has_relu(layer) -> bool:
    """A ReLU layer or operation (keras.ops.relu in a functional model), or a layer whose
    activation is a ReLU of any kind (ReLU6, a ReLU layer)."""
    activation = getattr(layer, "activation", None)
    return (isinstance(layer, keras.layers.ReLU) or type(layer).__name__ in ("Relu", "Relu6")
            or isinstance(activation, keras.layers.ReLU) or getattr(activation, "__name__", "") in ("relu", "relu6"))


class _Guided(keras.layers.Layer):
    """`layer` with its ReLU replaced by `guided_relu` (the same weights, the same output)."""

    def __init__(self, layer, **kwargs):
        super().__init__(dtype=layer.dtype_policy, **kwargs)
        self.wrapped = layer

    def call(self, x):
        layer = self.wrapped
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
            x = layer.convolution_op(x, layer.kernel)
        elif isinstance(layer, keras.layers.Dense):
            x = ops.matmul(x, layer.kernel)
        if getattr(layer, "use_bias", False):
            x = x + layer.bias
        return guided_relu(x)

    def compute_output_shape(self, input_shape):
        return self.wrapped.compute_output_shape(input_shape)


def _guidable(layer) -> bool:
    plain_relu = (isinstance(layer, keras.layers.ReLU) and layer.max_value is None
                  and not layer.negative_slope and not layer.threshold)
    ends_in_relu = (type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                                    keras.layers.Dense, keras.layers.Activation)
                    and _is_relu(layer.activation)
                    and getattr(layer, "data_format", "channels_last") == "channels_last"
                    and getattr(layer, "padding", "valid") != "causal")  # convolution_op does not pad it
    return plain_relu or ends_in_relu


def guided_layer(layer, name: str):
    """The guided twin of a layer that ends in a plain ReLU, or None."""
    return _Guided(layer, name=name) if _guidable(layer) else None


def check_guidable(layers) -> None:
    """Refuse, naming it, a layer (or operation) with a ReLU that `guided_layer` cannot guide:
    Guided Backprop that skipped it would silently be another method."""
    for layer in layers:
        inside = getattr(layer, "_flatten_layers", lambda **_: [])(include_self=False, recursive=True)
        if (_has_relu(layer) and not _guidable(layer)) or any(_has_relu(inner) for inner in inside):
            raise ValueError(f"Guided Backprop guides every ReLU, and cannot guide the one of layer "
                             f"{layer.name!r} ({type(layer).__name__}: it guides a plain ReLU after a "
                             f"Conv1D/2D/3D (not causal) or Dense layer, channels last, or a ReLU layer without "
                             f"max_value, slope or threshold): explain this model with another method")
