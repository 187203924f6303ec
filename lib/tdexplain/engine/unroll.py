"""Unrolling a video model, so any inner layer's activations are reachable per frame.

``model.get_layer("block5_conv4")`` fails on a video model: the inner layers of a wrapped
backbone are not in the outer graph. Here the model's graph (flattened: nested models opened,
see `tdexplain.engine.shapes`) is rebuilt, reusing its own layer objects (the same weights, no
copies), with the TimeDistributed layers on frames replaced by: reshape the clips to one batch
of frames (N*T, H, W, C), run the frame network split at the chosen layer, and reshape the
features back to (N, T, F). The rebuilt model also returns the chosen layer's activations and
the class logits, and takes a second input, a "probe" added to those activations (zeros: it
changes nothing), whose gradient is the gradient with respect to the activations on any
backend. A Conv3D or ConvLSTM2D model has no frames to unroll: the probe is added to the
chosen layer's output (N, T', h, w, K) where it is in the graph.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import backend, graphs, shapes
from .guided import check_guidable, guided_layer

__all__ = ["find_time_distributed", "unrolled_model", "to_probabilities"]


def find_time_distributed(model: keras.Model) -> keras.layers.TimeDistributed:
    """The model's one TimeDistributed layer wrapping a CNN model, whatever its name and place
    in the graph (for the tools that need that exact shape: training, pooling after the wrapper).
    The explainer accepts more shapes (`tdexplain.engine.shapes`)."""
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


class _Logits(keras.layers.Layer):
    """The pre-activation scores of a Dense layer, computed with that layer's own weights."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense

    def call(self, x):
        logits = ops.matmul(x, self.dense.kernel)
        return logits + self.dense.bias if self.dense.use_bias else logits


class _Held(keras.layers.Layer):
    """Another input of a multi-input model, held at one sample's value for every clip."""

    def __init__(self, value: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, clips):
        value = ops.convert_to_tensor(self.value)
        return ops.broadcast_to(value[None], (ops.shape(clips)[0],) + self.value.shape)

    def compute_output_spec(self, clips):
        return keras.KerasTensor((clips.shape[0],) + self.value.shape, dtype=str(self.value.dtype))


def _split(cnn: keras.Model, layer_name: str, input_gradients_only: bool, guided: bool = False) -> keras.Model:
    """[frames, probe] -> [activations of `layer_name` + probe, the CNN's features], with the
    same weights. guided: every ReLU passes Guided Backprop's gradient (`tdexplain.engine.guided`)."""
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


def _replay(model: keras.Model, call, inputs=None):
    """New inputs like the model's (or `inputs`), and the model's graph run on them with its own
    layers, each node computed by `call(layer, *args, **kwargs)`. This is what
    keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    does, without building a model whose outputs may depend on an input it does not have
    (the probe)."""
    if inputs is None:
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype,
                             name=model.inputs[0].name)
    return inputs, model._run_through_graph(inputs, operation_fn=lambda layer: layer, call_fn=call)


def to_probabilities(kind: str, outputs):
    """A head's probabilities from its outputs (keras.ops): the outputs of a softmax or sigmoid
    head, the softmax of a linear head's (their sigmoid for a single output)."""
    if kind != "linear":
        return outputs
    return ops.softmax(outputs) if outputs.shape[-1] > 1 else ops.sigmoid(outputs)


def _logits(layer, kind: str, inputs, output):
    """The scores before the output layer's activation (its output itself when it has none)."""
    if kind == "linear":
        return output
    if isinstance(layer, keras.layers.Dense):
        return _Logits(layer, name=f"{layer.name}_logits")(inputs)
    return inputs  # a Softmax or Activation layer's input


def unrolled_model(model, layer_name: str, input_gradients_only: bool = False,
                   guided: bool = False) -> keras.Model:
    """[clips (N, T, H, W, 3), probe (N, S, h, w, k)] -> [activations of `layer_name`
    (N, S, h, w, k), class logits (N, C), probabilities (N, C)], where S is the layer's time
    steps: T for a layer of the frame network, T' for a Conv3D/ConvLSTM2D model's layer.

    `model`: a Keras model (its only output and clip input) or a `shapes.VideoModel` (from
    `shapes.inspect`: the chosen output, the clip input, the other inputs' held values).
    The head (`shapes.head`) sets the rest: logits are the scores before the output layer's softmax
    or sigmoid, probabilities its output; a linear head's outputs are the logits, and its
    probabilities their softmax (their sigmoid for a single output). input_gradients_only:
    the frame network's convolutions pass gradients to their inputs by a faster route and give
    their weights none (for explanations, never for training). guided: every ReLU, the backbone's and the head's,
    passes Guided Backprop's gradient (a model with one it cannot guide is refused).
    """
    video = model if isinstance(model, shapes.VideoModel) else shapes.inspect(model)
    if guided:  # the layers, and the operations that are no layer (keras.ops.relu)
        operations = [op for graph in (video.graph, video.backbone) for op in graph.operations
                      if not isinstance(op, keras.layers.Layer)]
        check_guidable(video.backbone_layers() + video.head_layers() + operations)
    first, chain = video.frame_wrapper, video.wrappers[1:]
    if first is not None:
        split = _split(video.backbone, layer_name, input_gradients_only, guided)
        frame_probe = tuple(split.inputs[1].shape[1:])
        probe = keras.Input(shape=(video.frames,) + frame_probe, dtype=split.inputs[1].dtype, name="probe")
    else:
        inner = video.get_layer(layer_name).output
        probe = keras.Input(shape=inner.shape[1:], dtype=inner.dtype, name="probe")
    output_layer = video.output_layer
    kind = video.head
    captured = {}

    def call(layer, *args, **kwargs):
        if layer is first:
            clips = args[0]
            frames = ops.reshape(clips, (-1,) + tuple(clips.shape[2:]))
            activations, features = split([frames, ops.reshape(probe, (-1,) + frame_probe)])
            captured["activations"] = ops.reshape(activations, (-1,) + tuple(probe.shape[1:]))
            return ops.reshape(features, (-1, clips.shape[1]) + tuple(features.shape[1:]))
        if any(layer is wrapper for wrapper in chain):
            return args[0]  # the frame network ran the whole chain at its first layer
        swapped = guided and guided_layer(layer, f"{layer.name}_guided")
        output = swapped(*args) if swapped else layer(*args, **kwargs)
        if layer is output_layer:  # each node of it: a shared layer may compute other outputs too
            captured.setdefault("heads", []).append((output, _logits(layer, kind, args[0], output)))
        if first is None and layer.name == layer_name:
            output = captured["activations"] = ops.add(output, probe)
        return output

    clip = video.clip_tensor
    clips = keras.Input(batch_shape=clip.shape, dtype=clip.dtype, name=graphs.input_name(clip))
    names = [graphs.input_name(t) for t in video.graph.inputs]
    inputs = [clips if i == video.clip_input else _Held(video.held[name], name=f"held_{name}")(clips)
              for i, name in enumerate(names)]
    _, outputs = _replay(video.graph, call, inputs)
    output = keras.tree.flatten(outputs)[video.output or 0]
    logits = next(logits for computed, logits in captured["heads"] if computed is output)
    probabilities = to_probabilities(kind, output)
    return keras.Model([clips, probe], [captured["activations"], logits, probabilities],
                       name=f"{video.model.name}_unrolled_at_{layer_name}")
