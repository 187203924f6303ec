"""The one place where tdexplain depends on Keras' backend (TensorFlow or JAX).

Everything an explanation needs from a backend is two compiled functions of an unrolled
model (`unroll.unrolled_model`, whose inputs are the clips and a zero "probe" added to the
chosen layer's activations):
- `gradient_pass`: the forward pass, the target score, and the score's gradient with respect
  to the clips and the probe (that is, the activations), in one backward pass, with no
  weight gradients;
- `forward_pass`: activations, logits and probabilities, without a gradient.
And one optional speed-up: `input_gradient_convolution`, TensorFlow's faster route for a
convolution's gradient to its input. Two helpers for readers' own code: `gradient`, plain
autodiff of a function of one array (the notebooks' and tests' independent computations),
and `quiet`, which silences the backend's Python-side notices. The rest of the library uses keras.ops,
NumPy or OpenCV.
The backend is chosen as Keras chooses it: ``KERAS_BACKEND=jax`` (or ``tensorflow``, the
default) before Keras is first imported, or ``~/.keras/keras.json``.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
from keras import ops

__all__ = ["SUPPORTED", "current", "settled", "copy_model", "quiet", "gradient", "score_of", "gradient_pass",
           "forward_pass", "input_gradient_convolution"]

SUPPORTED = ("tensorflow", "jax")


def current() -> str:
    """The Keras backend in use, checked to be one tdexplain supports."""
    backend = keras.backend.backend()
    if backend not in SUPPORTED:
        raise RuntimeError(f"tdexplain runs on Keras' {' and '.join(SUPPORTED)} backends; this "
                           f"process uses {backend!r} (set KERAS_BACKEND before importing keras)")
    return backend


def settled(model: keras.Model) -> keras.Model:
    """The model, once the backend has finished computing its weights. JAX computes
    asynchronously: a weight initializer (the GRU's orthogonal one, a QR factorization in
    OpenBLAS's threads) may still be running when the caller goes on, and a fork at that moment
    (starting ffmpeg to write a video) deadlocks OpenBLAS. TensorFlow computes them eagerly."""
    if current() == "jax":
        import jax

        jax.block_until_ready([variable.value for variable in model.variables])
    return model


def copy_model(model: keras.Model) -> keras.Model:
    """A new model of the same architecture holding copies of the weights (no optimizer)."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return settled(twin)


def quiet() -> None:
    """Silence the backend's Python-side notices, such as TensorFlow's retracing warnings (one
    compiled pass per layer and batch shape is expected). Its C++ start-up lines are dropped
    when tdexplain is imported (`tdexplain._load_backend_quietly`)."""
    logging.getLogger("absl").setLevel(logging.ERROR)
    if current() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


def gradient(function, x) -> np.ndarray:
    """d sum(function(x)) / dx for a NumPy array x, as NumPy: plain autodiff on the backend in
    use (tf.GradientTape or jax.grad), for computations written with keras.ops or Keras models."""
    x = np.asarray(x)
    if current() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: function(v).sum())(x))
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(function(x))
    return tape.gradient(total, x).numpy()


def score_of(logits, probabilities, target, score=None):
    """The score each clip is explained by, in keras.ops: `score(logits)` when a callable is
    given, else the target class's logit, where a target of -1 means the predicted class.
    Returns the scores (N,) and the class per clip (-1 for a callable score)."""
    if score is not None:
        return ops.reshape(score(logits), (-1,)), ops.full_like(target, -1)
    predicted = ops.cast(ops.argmax(probabilities, axis=-1), target.dtype)
    target = ops.where(target < 0, predicted, target)
    scores = ops.take_along_axis(logits, ops.expand_dims(target, -1), axis=-1)[:, 0]
    return scores, target


def gradient_pass(unrolled: keras.Model, score=None, jit_compile: bool = False):
    """f(clips, probe, target) -> NumPy (probabilities, target, scores, activations,
    activation_gradients, input_gradients): the summed target scores' gradients with respect
    to the clips and the probe (clips are independent, so one backward pass gives every
    clip's gradients). `score`: None for class logits, or a callable on the logits."""
    if current() == "jax":
        return _jax_gradient_pass(unrolled, score)
    return _tensorflow_gradient_pass(unrolled, score, jit_compile)


def forward_pass(unrolled: keras.Model, jit_compile: bool = False):
    """f(clips, probe) -> NumPy (activations, logits, probabilities), no gradient."""
    if current() == "jax":
        import jax

        @jax.jit
        def forward(trainable, non_trainable, clips, probe):
            outputs, _ = unrolled.stateless_call(trainable, non_trainable, [clips, probe], training=False)
            return outputs

        return lambda clips, probe: tuple(np.asarray(o) for o in forward(*_values(unrolled), clips, probe))
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def forward(clips, probe):
        return unrolled([clips, probe], training=False)

    return lambda clips, probe: tuple(o.numpy() for o in forward(clips, probe))


def _values(model: keras.Model):
    """The model's current weights, read at each call (a model may be trained between calls)."""
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


def _jax_gradient_pass(unrolled, score):
    import jax

    def total_score(clips, probe, trainable, non_trainable, target):
        (activations, logits, probabilities), _ = unrolled.stateless_call(
            trainable, non_trainable, [clips, probe], training=False)
        scores, target = score_of(logits, probabilities, target, score)
        return scores.sum(), (probabilities, target, scores, activations)

    # Gradients with respect to the clips and the probe only: the weights are constants here.
    gradients = jax.jit(jax.grad(total_score, argnums=(0, 1), has_aux=True))

    def run(clips, probe, target):
        (input_gradients, activation_gradients), aux = gradients(clips, probe, *_values(unrolled), target)
        return tuple(np.asarray(o) for o in (*aux, activation_gradients, input_gradients))

    return run


def _tensorflow_gradient_pass(unrolled, score, jit_compile):
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def run(clips, probe, target):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([clips, probe])
            activations, logits, probabilities = unrolled([clips, probe], training=False)
            scores, target = score_of(logits, probabilities, target, score)
            total = tf.reduce_sum(scores)
        input_gradients, activation_gradients = tape.gradient(total, [clips, probe])
        return probabilities, target, scores, activations, activation_gradients, input_gradients

    def call(clips, probe, target):
        return tuple(o.numpy() for o in run(tf.constant(clips), tf.constant(probe), tf.constant(target)))

    return call


def input_gradient_convolution(conv: keras.layers.Conv2D, name: str):
    """On TensorFlow, a layer computing `conv` (stride 1, "same", odd kernel) with its own
    weights whose gradient goes to its input only, as a forward convolution with the kernel
    flipped in space and transposed in channels (exactly the transpose of the convolution).
    On oneDNN CPUs that kernel is faster than Conv2DBackpropInput (benchmarks/RESULTS.md).
    None where it does not apply or is not needed (JAX differentiates only what is asked)."""
    applies = (type(conv) is keras.layers.Conv2D and conv.padding == "same"
               and tuple(conv.strides) == (1, 1) and tuple(conv.dilation_rate) == (1, 1)
               and conv.groups == 1 and conv.data_format == "channels_last"
               and all(k % 2 == 1 for k in conv.kernel_size))
    return _InputGradientConv(conv, name=name) if applies and current() == "tensorflow" else None


class _InputGradientConv(keras.layers.Layer):
    def __init__(self, conv, **kwargs):
        super().__init__(dtype=conv.dtype_policy, **kwargs)
        self.conv = conv

    def call(self, x):
        import tensorflow as tf

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
