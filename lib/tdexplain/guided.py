"""Guided Backprop's ReLU (Springenberg et al., 2015), on any Keras backend.

Forward, a ReLU; backward, the gradient passes only where the ReLU's input was positive
(as for a ReLU) and the gradient arriving from above is positive. `guided_layer` gives, for
a backbone layer that ends in a ReLU (a Conv2D, Conv3D or Dense with activation="relu", a ReLU or
Activation("relu") layer), a layer computing the same with its own weights and the guided
gradient; other layers are used as they are. `unroll` swaps them in for the guided pass.
"""

from __future__ import annotations

import keras
from keras import ops


@ops.custom_gradient
def guided_relu(x):
    def grad(*args, upstream=None):
        if upstream is None:  # JAX passes it by position, TensorFlow by name
            (upstream,) = args
        return upstream * ops.cast(x > 0, upstream.dtype) * ops.cast(upstream > 0, upstream.dtype)

    return ops.relu(x), grad


def _is_relu(activation) -> bool:
    return getattr(activation, "__name__", "") == "relu"


class _Guided(keras.layers.Layer):
    """`layer` with its ReLU replaced by `guided_relu` (the same weights, the same output)."""

    def __init__(self, layer, **kwargs):
        super().__init__(dtype=layer.dtype_policy, **kwargs)
        self.wrapped = layer

    def call(self, x):
        layer = self.wrapped
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
            x = layer.convolution_op(x, layer.kernel)
        elif isinstance(layer, keras.layers.Dense):
            x = ops.matmul(x, layer.kernel)
        if getattr(layer, "use_bias", False):
            x = x + layer.bias
        return guided_relu(x)

    def compute_output_shape(self, input_shape):
        return self.wrapped.compute_output_shape(input_shape)


def guided_layer(layer, name: str):
    """The guided twin of a layer that ends in a plain ReLU, or None."""
    plain_relu = (isinstance(layer, keras.layers.ReLU) and layer.max_value is None
                  and not layer.negative_slope and not layer.threshold)
    ends_in_relu = (type(layer) in (keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense,
                                    keras.layers.Activation)
                    and _is_relu(layer.activation)
                    and getattr(layer, "data_format", "channels_last") == "channels_last")
    return _Guided(layer, name=name) if plain_relu or ends_in_relu else None
