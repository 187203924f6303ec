"""Gradients for the tests' independent computations, on the backend the tests run on (plain
autodiff of a function of one array: nothing of tdexplain's compiled pass is used)."""

import keras
import numpy as np


def gradient(function, x) -> np.ndarray:
    """d sum(function(x)) / dx for a NumPy array x, as NumPy."""
    x = np.asarray(x)
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: function(v).sum())(x))
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(function(x))
    return tape.gradient(total, x).numpy()
