"""Which shape of video model a model is, found once for the engine (`unroll`) and the rest.

tdexplain explains three shapes of video classifier (`SUPPORTED`):

1. TimeDistributed(CNN model) -> head, the paper's shape. The CNN may be built from nested
   functional or Sequential models (a preprocessing model, a VGG model, a pooling layer).
2. Consecutive TimeDistributed single layers, TD(Conv2D) -> TD(MaxPooling2D) -> ... ->
   TD(Flatten) -> head: the chain is the per-frame CNN.
3. A Conv3D or ConvLSTM2D model with no TimeDistributed layer: its layers whose output keeps
   time and space, (N, T', h, w, K), are explained step by step.

Nested models are flattened into one functional graph of the same layer objects (the same
weights, no copies), so every inner layer has a name that can be explained (`graphs.flatten`).
For shapes 1 and 2 the per-frame part becomes one flat "frame network" (frames (N*T, H, W, C)
-> features) that the engine unrolls as one. `inspect` also resolves which input holds the
clips and which output is explained, for multi-input and multi-output models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from .graphs import flatten, graph_of, input_name, leaf_layers, nodes, producer, run_graph

__all__ = ["SUPPORTED", "SPATIOTEMPORAL", "MIN_CAM_CELLS", "HEADS", "spatial_layers", "spatiotemporal_layers",
           "last_convolution", "default_layer", "VideoModel", "head", "video_part", "inspect",
           "clip_input_index", "output_names", "output_index", "output_producer", "class_names", "input_spec",
           "held_inputs"]

SUPPORTED = ("(1) TimeDistributed(CNN model, nested models allowed) -> head, "
             "(2) consecutive TimeDistributed single layers, TD(Conv2D) -> TD(MaxPooling2D) -> ... "
             "-> TD(Flatten or GlobalAveragePooling2D) -> head, "
             "(3) Conv3D or ConvLSTM2D video models without TimeDistributed")
SPATIOTEMPORAL = (keras.layers.Conv3D, keras.layers.ConvLSTM2D)
# The default layer keeps at least this many cells per side (see `default_layer`).
MIN_CAM_CELLS = 8
HEADS = ("softmax", "sigmoid", "linear")  # the output activations tdexplain reads (`head`)


# ---------------------------------------------------------------------- layers to explain

def spatial_layers(cnn: keras.Model) -> list[str]:
    """Names of the CNN's layers whose output is a spatial map (H, W, channels), nested models
    opened, input excluded."""
    return [layer.name for layer in leaf_layers(cnn) if len(layer.output.shape) == 4]


def spatiotemporal_layers(model: keras.Model) -> list[str]:
    """Names of the model's layers whose output keeps time and space, (N, T', h, w, K)."""
    return [layer.name for layer in leaf_layers(model) if len(layer.output.shape) == 5]


def _convolutions(cnn: keras.Model) -> list:
    convolutions = [layer for layer in leaf_layers(cnn) if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        raise ValueError(f"the backbone {cnn.name!r} has no Conv2D layer; pass layer= explicitly "
                         f"(one of {spatial_layers(cnn)})")
    return convolutions


def last_convolution(cnn: keras.Model) -> str:
    """The paper's choice of layer for Grad-CAM: the backbone's last convolution."""
    return _convolutions(cnn)[-1].name


def _deepest_fine(convolutions: list) -> str:
    fine = [layer.name for layer in convolutions if min(layer.output.shape[-3:-1]) >= MIN_CAM_CELLS]
    return fine[-1] if fine else convolutions[0].name


def default_layer(cnn: keras.Model) -> str:
    """The layer explained by default: the deepest convolution whose output grid has at
    least MIN_CAM_CELLS cells per side (the first convolution if none has).

    At VGG19's own 224 px this is its last convolution, block5_conv4 (14x14). On
    small frames the last convolution is a grid that its block's own 3x3 convolutions mix
    from edge to edge (4x4 at 64 px), where even an ideal map points at the evidence in only
    half of the frames (`metrics.localization.grid_bound`); at 8x8 an ideal map always can.
    Whether a model's CAM does is measured in notebook 04 and benchmarks/RESULTS.md. Convolutions
    inside nested models count; for a Conv3D/ConvLSTM2D model see `VideoModel.default_layer`.
    """
    return _deepest_fine(_convolutions(cnn))


# ---------------------------------------------------------------------- what a model is

@dataclass(eq=False)
class VideoModel:
    """A video model as tdexplain sees it (made by `inspect` or `video_part`).

    graph: the model as one flat functional model (the same layer objects); wrappers: the
    consecutive TimeDistributed layers on frames, in order (empty for a Conv3D/ConvLSTM2D
    model); backbone: what is explained inside, the flat frame network (frames -> features)
    for TimeDistributed models, the graph itself otherwise. clip_input, output: positions in
    the model's inputs and outputs (output None when not chosen); held: the other inputs'
    values for one sample, by input name, broadcast to every clip.
    """

    model: keras.Model
    graph: keras.Model
    wrappers: tuple
    backbone: keras.Model
    clip_input: int
    output: int | None = None
    held: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "time_distributed" if self.wrappers else "spatiotemporal"

    @property
    def frame_wrapper(self):
        """The TimeDistributed layer that takes the clips, where the frame network runs (the
        next wrappers of the chain run inside it); None for a Conv3D/ConvLSTM2D model."""
        return self.wrappers[0] if self.wrappers else None

    def frame_network(self, hint: str = "") -> keras.Model:
        """The per-frame CNN, or a ValueError saying the model has none (then `hint`)."""
        if not self.wrappers:
            raise ValueError(f"model {self.model.name!r} is a Conv3D/ConvLSTM2D model: it has no "
                             f"per-frame CNN{hint}")
        return self.backbone

    @property
    def inner_kind(self) -> str:
        """What output an inner layer needs for a CAM: "spatial" (per frame) or "spatio-temporal"."""
        return "spatial" if self.wrappers else "spatio-temporal"

    @property
    def clip_tensor(self):
        return self.graph.inputs[self.clip_input]

    @property
    def frames(self) -> int:
        return self.clip_tensor.shape[1]

    @property
    def size(self) -> int:
        return self.clip_tensor.shape[2]

    @property
    def inner_layers(self) -> list[str]:
        """The layers a CAM can read: spatial (per frame) or spatio-temporal outputs."""
        return spatial_layers(self.backbone) if self.wrappers else spatiotemporal_layers(self.graph)

    @property
    def inner_phrase(self) -> str:
        """How error messages name `inner_layers`."""
        if self.wrappers:
            return f"inner layers of {self.backbone.name!r} with a spatial output"
        return f"layers of {self.model.name!r} with a spatio-temporal output (N, T', h, w, K)"

    @property
    def default_layer(self) -> str:
        """`default_layer` of the frame network; for a Conv3D/ConvLSTM2D model the same rule on
        its spatio-temporal convolutions (the deepest with at least 8x8 cells)."""
        if self.wrappers:
            return default_layer(self.backbone)
        convolutions = [layer for layer in leaf_layers(self.graph)
                        if isinstance(layer, SPATIOTEMPORAL) and len(layer.output.shape) == 5]
        return _deepest_fine(convolutions) if convolutions else self.inner_layers[-1]

    def layer_names(self) -> list[str]:
        """Every layer of the backbone (of the whole model for Conv3D/ConvLSTM2D models)."""
        return [layer.name for layer in leaf_layers(self.backbone)]

    def get_layer(self, name: str):
        return self.backbone.get_layer(name)

    def steps(self, layer: str) -> int:
        """Time steps of a layer's activations per clip: the clip's frames for a per-frame
        layer, T' for a spatio-temporal one (fewer after temporal strides or pooling)."""
        return self.frames if self.wrappers else self.get_layer(layer).output.shape[1]

    def backbone_layers(self) -> list:
        """The layers applied to the pixels before the head: the frame network's, or the
        Conv3D/ConvLSTM2D model's layers whose output keeps time and space."""
        if self.wrappers:
            return leaf_layers(self.backbone)
        return [layer for layer in leaf_layers(self.graph) if len(layer.output.shape) == 5]

    def head_layers(self) -> list:
        """The model's other layers (recurrent, dense...), in graph order."""
        inside = {id(layer) for layer in (*self.wrappers, *self.backbone_layers())}
        return [layer for layer in leaf_layers(self.graph) if id(layer) not in inside]

    @property
    def output_layer(self):
        """The leaf layer that computes the explained output."""
        return producer(self.graph.outputs[self.output or 0])

    @property
    def head(self) -> str:
        """What the explained output is: "softmax", "sigmoid" or "linear" (`head`)."""
        return head(self.output_layer)


def head(layer) -> str:
    """What the output layer makes of its scores: "softmax", "sigmoid" or "linear" (no
    activation), read from a Dense layer's activation or a Softmax or Activation layer. Other
    activations (their outputs are neither probabilities nor logits: a ReLU's zeros have no
    gradient) and other output layers (what they output cannot be read) are refused."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if not isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
        raise ValueError(f"the output layer {layer.name!r} is a {type(layer).__name__}: tdexplain reads the "
                         f"scores from a Dense, Activation or Softmax output layer; end the model in one")
    name = getattr(layer.activation, "__name__", type(layer.activation).__name__)
    name = {"softmax_v2": "softmax"}.get(name, name)  # tf.nn.softmax
    if name not in HEADS:
        raise ValueError(f"the output layer {layer.name!r} ends in {name}: tdexplain explains an output "
                         f"layer with softmax, sigmoid or no activation (logits)")
    return name


def video_part(model: keras.Model, clip_input=None) -> VideoModel:
    """The model's shape (see the module's docstring), without choosing an output; raises one
    ValueError naming what was found and the supported shapes when the model has none of them."""
    if not isinstance(model, keras.Model) or graph_of(model) is None:
        raise ValueError(f"expected a functional or built Sequential Keras model, got {type(model).__name__}")
    graph = flatten(model)
    chain = _frame_chain(model, graph)
    if chain:
        backbone = _frame_network(chain)
        if not spatial_layers(backbone):
            raise _unsupported(model, graph, "has TimeDistributed layers (" + ", ".join(
                f"{w.name} wrapping {type(w.layer).__name__}" for w in chain) + ") but none with a "
                "spatial output, so no per-frame CNN")
    elif any(isinstance(layer, SPATIOTEMPORAL) for layer in leaf_layers(graph)):
        backbone = graph
        if not spatiotemporal_layers(graph):
            raise _unsupported(model, graph, "has Conv3D/ConvLSTM2D layers but none whose output keeps "
                               "time and space (N, T', h, w, K) (return_sequences=False?)")
    else:
        raise _unsupported(model, graph, "has no TimeDistributed CNN, Conv3D or ConvLSTM2D layer")
    return VideoModel(model, graph, tuple(chain), backbone, clip_input_index(model, clip_input))


def inspect(model: keras.Model, output=None, clip_input=None, other_inputs=None) -> VideoModel:
    """`video_part`, with the explained output chosen (`output_index`) and the other inputs'
    values checked (`held_inputs`): everything an explainer needs."""
    video = video_part(model, clip_input)
    video.output = output_index(model, output)
    video.held = held_inputs(video, other_inputs)
    return video


def _frame_chain(model: keras.Model, graph: keras.Model) -> list:
    """The consecutive TimeDistributed layers that start on frames (a 5-D input), each read only
    by the next; empty when the model has none."""
    computed = nodes(graph)
    on_frames = [node for node in computed if isinstance(node.operation, keras.layers.TimeDistributed)
                 and len(node.input_tensors[0].shape) == 5]
    if not on_frames:
        return []
    chain = [on_frames[0]]
    while True:
        outputs = {id(t) for t in chain[-1].output_tensors}
        readers = [node for node in computed if any(id(t) in outputs for t in node.input_tensors)]
        if not (len(readers) == 1 and isinstance(readers[0].operation, keras.layers.TimeDistributed)
                and len(readers[0].input_tensors) == 1):
            break
        chain.append(readers[0])
    apart = [node.operation.name for node in on_frames if node not in chain]
    if apart:
        raise _unsupported(model, graph, "applies TimeDistributed layers to frames in more than one "
                           f"chain ({', '.join(n.operation.name for n in chain)} and {', '.join(apart)})")
    return [node.operation for node in chain]


def _frame_network(chain: list) -> keras.Model:
    """The layers the chain wraps as one flat functional model of frames (the same objects)."""
    if len(chain) == 1 and graph_of(chain[0].layer) is not None:
        return flatten(chain[0].layer)
    shape = chain[0].input.shape
    frames = keras.Input(batch_shape=(None,) + tuple(shape[2:]), dtype=chain[0].input.dtype, name="frame")
    x = frames
    for wrapper in chain:
        wrapped = wrapper.layer
        x = (run_graph(wrapped, x, lambda layer, *a, **k: layer(*a, **k)) if graph_of(wrapped) is not None
             else wrapped(x))
    return keras.Model(frames, x, name=f"{chain[0].name}_to_{chain[-1].name}")


def _unsupported(model, graph, problem: str) -> ValueError:
    inputs = ", ".join(f"{input_name(t)} {tuple(t.shape)}" for t in graph.inputs)
    layers = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in leaf_layers(graph))
    return ValueError(f"model {model.name!r} {problem}; tdexplain explains: {SUPPORTED}; its inputs "
                      f"are: {inputs}; its layers are: {layers}")


# ---------------------------------------------------------------------- inputs and outputs

def _describe_tensors(tensors, names) -> str:
    return ", ".join(f"{i}: {name!r} {tuple(t.shape)}" for i, (name, t) in enumerate(zip(names, tensors)))


def clip_input_index(model: keras.Model, clip_input=None) -> int:
    """Which input takes the clips: `clip_input` (a name or an index), else the only 5-D input
    (N, T, H, W, C)."""
    inputs = model.inputs
    names = [input_name(t) for t in inputs]
    listed = _describe_tensors(inputs, names)
    if clip_input is not None:
        if isinstance(clip_input, (int, np.integer)) and 0 <= clip_input < len(inputs):
            index = int(clip_input)
        elif clip_input in names:
            index = names.index(clip_input)
        else:
            raise ValueError(f"clip_input={clip_input!r} is not an input of {model.name!r}; its inputs: {listed}")
        if len(inputs[index].shape) != 5:
            raise ValueError(f"clip input {names[index]!r} has shape {tuple(inputs[index].shape)}, "
                             f"not clips (N, T, H, W, C); the inputs: {listed}")
        return index
    clips = [i for i, t in enumerate(inputs) if len(t.shape) == 5]
    if not clips:
        shape = tuple(inputs[0].shape) if len(inputs) == 1 else listed
        raise ValueError(f"expected a video model with input (N, T, H, W, 3), got input {shape}")
    if len(clips) > 1:
        raise ValueError(f"model {model.name!r} has {len(clips)} inputs of clips (N, T, H, W, C); "
                         f"choose one with clip_input= (a name or an index); its inputs: {listed}")
    return clips[0]


def output_names(model: keras.Model) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(model.outputs) else [producer(t).name for t in model.outputs]


def output_index(model: keras.Model, output=None) -> int:
    """Which output is explained: `output` (a name, the name of the layer computing it, or an
    index), else the only one."""
    outputs, names = model.outputs, output_names(model)
    listed = _describe_tensors(outputs, names)
    if output is None:
        if len(outputs) > 1:
            raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; choose the one to "
                             f"explain with output= (a name or an index): {listed}")
        return 0
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool) and 0 <= output < len(outputs):
        return int(output)
    for i, tensor in enumerate(outputs):
        if output in (names[i], producer(tensor).name):
            return i
    raise ValueError(f"output={output!r} is not an output of {model.name!r}; its outputs: {listed}")


def output_producer(model: keras.Model, output=None):
    """The leaf layer that computes the chosen output (see `output_index`)."""
    return producer(model.outputs[output_index(model, output)])


def class_names(model: keras.Model, output=None) -> tuple:
    """The class names saved with the model, in the layer that computes the explained output
    (`output`: a name or an index, needed when the model has several): a layer with a
    `class_names` attribute, such as the demo models' `ClassProbabilities`; ``class_0``, ...
    for an output that does not carry them."""
    index = output_index(model, output)
    carried = getattr(output_producer(model, index), "class_names", None)
    if carried is None and len(model.outputs) == 1:
        carried = next((layer.class_names for layer in reversed(model.layers)
                        if hasattr(layer, "class_names")), None)
    return tuple(carried) if carried is not None else tuple(f"class_{i}" for i in range(model.outputs[index].shape[-1]))


def input_spec(model: keras.Model, clip_input=None) -> tuple[int, int]:
    """(frames, size) of the clips the model takes (in its only 5-D input, or `clip_input`)."""
    shape = model.inputs[clip_input_index(model, clip_input)].shape
    return shape[1], shape[2]


def held_inputs(video: VideoModel, other_inputs) -> dict:
    """The values of the inputs other than the clips, one sample each, checked: they are held
    fixed and broadcast to every clip an explainer sees."""
    others = [t for i, t in enumerate(video.graph.inputs) if i != video.clip_input]
    given = dict(other_inputs or {})
    names = [input_name(t) for t in others]
    needed = ", ".join(f"{input_name(t)!r} {tuple(t.shape)}" for t in others) or "none"
    unknown = sorted(set(given) - set(names))
    missing = [name for name in names if name not in given]
    if unknown or missing:
        problem = (f"other_inputs names {unknown}, not inputs of the model" if unknown else
                   f"model {video.model.name!r} takes other inputs besides the clips "
                   f"{input_name(video.clip_tensor)!r}")
        raise ValueError(f"{problem}; the other inputs: {needed}; pass other_inputs={{name: the value "
                         f"for one sample}} (held fixed for every clip)")
    held = {}
    for name, tensor in zip(names, others):
        value = np.asarray(given[name], dtype=tensor.dtype)
        expected = tuple(tensor.shape[1:])
        if value.ndim != len(expected) or any(e is not None and e != v for e, v in zip(expected, value.shape)):
            raise ValueError(f"other_inputs[{name!r}] must be one sample of shape {expected}, "
                             f"got shape {value.shape}")
        held[name] = value
    return held
