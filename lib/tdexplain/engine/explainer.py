"""Per-frame explanations of TimeDistributed(CNN) + RNN video classifiers.

One compiled pass gives, for a batch of clips, the class probabilities, the target class,
the activations of an inner layer of the wrapped CNN for every frame, and the gradients of
the target score with respect to both the input pixels and those activations: one forward
and one backward pass, whatever the number of frames. Every gradient method is then a cheap
rule on these tensors (as in pytorch-grad-cam's base_cam), one class per method in
`tdexplain.methods`: saliency and gradient x input use the pixel gradients; Grad-CAM,
Grad-CAM++ and LayerCAM weight the activations, frame by frame, with channel weights pooled
over each frame's positions only (never over time). SmoothGrad and Integrated Gradients run
the same pass over batches of their samples, in memory-bounded chunks; Score-CAM runs batched
forward passes of masked frames. The pass itself is compiled by `tdexplain.engine.backend` on
TensorFlow or JAX.

What is explained follows the model's head (`shapes.head`): every method explains the target's
logit, the score before the output layer's softmax or sigmoid (a linear head's output itself),
but RISE, which reads its probability, the model's output, as the deletion and insertion
curves do (for a linear head, the softmax of its outputs, or their sigmoid for a single
output). Any other output activation is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from . import backend, graphs, shapes, targets, unroll
from .clips import check_clips
from .maps import normalize_per_frame, to_frames, upsample
from .registry import REGISTRY, Pass, check_options, get

__all__ = ["Explainer", "Explanation"]


@dataclass
class Explanation:
    """What `Explainer.explain` returns.

    probabilities (N, C), the model's output (see the module's docstring for a linear head);
    scores (N,) the explained logits (or callable score); target (N,) class indices (-1 for a
    callable score, named `target_label`); maps[method] (N, T, H, W) in [0, 1], the raw map's positive part
    normalized per frame, at the clip's resolution. For teaching, the raw material too:
    raw[method] the maps before normalization (CAMs at the layer's resolution, (N, S, h, w)),
    channel_weights[method] (N, S, K) for the CAM methods, activations and
    activation_gradients (N, S, h, w, K) of `layer`, input_gradients (N, T, H, W, 3). S, the
    layer's time steps, is T except at a Conv3D/ConvLSTM2D layer that strides or pools in
    time; its maps are brought to the T frames by linear interpolation in time (`to_frames`).
    """

    probabilities: np.ndarray
    target: np.ndarray
    class_names: tuple
    layer: str
    scores: np.ndarray
    maps: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    channel_weights: dict = field(default_factory=dict)
    activations: np.ndarray | None = None
    activation_gradients: np.ndarray | None = None
    input_gradients: np.ndarray | None = None
    target_label: str | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def target_names(self) -> list:
        return [self.target_label if i < 0 else self.class_names[i] for i in self.target]


class Explainer:
    """Explains a video model: a TimeDistributed CNN (nested models allowed), consecutive
    TimeDistributed layers, or a Conv3D/ConvLSTM2D model (`shapes.SUPPORTED`).

    Finds the shape itself (`shapes.inspect`). `inner_layers` lists the layers with a spatial
    output (per frame) or a spatio-temporal one (N, T', h, w, K) (any of them can be explained);
    the default is the deepest convolution with at least 8x8 cells (`shapes.default_layer`:
    VGG19's last convolution at 224 px). output: the explained output of a multi-output model
    (a name or an index). clip_input: the input that takes the clips (default: the only 5-D
    one). other_inputs: {input name: value for one sample} for the other inputs, held fixed
    and broadcast to every clip this explainer sees (one explainer per set of values).
    """

    def __init__(self, model: keras.Model, frames_per_pass: int = 64, jit_compile: bool = False,
                 output=None, clip_input=None, other_inputs=None):
        self.model = model
        self.video = shapes.inspect(model, output, clip_input, other_inputs)
        self.backbone = self.video.backbone
        self.frames, self.size = self.video.frames, self.video.size
        self.head = self.video.head  # softmax, sigmoid or linear; refuses others
        self.class_names = shapes.class_names(model, self.video.output)
        self.inner_layers = self.video.inner_layers
        self.default_layer = self.video.default_layer
        # Memory bound of the sampled methods: clips per chunk = frames_per_pass // T.
        self.frames_per_pass = frames_per_pass
        self.jit_compile = jit_compile  # TensorFlow's XLA (JAX always compiles)
        self._unrolled, self._passes = {}, {}

    # ------------------------------------------------------------------ the compiled passes

    def _unrolled_at(self, layer: str, guided: bool = False) -> keras.Model:
        if (layer, guided) not in self._unrolled:
            self._unrolled[layer, guided] = unroll.unrolled_model(self.video, layer, input_gradients_only=True,
                                                                  guided=guided)
        return self._unrolled[layer, guided]

    def _pass(self, kind: str, layer: str, score=None):
        """The compiled pass at `layer`, built once per kind, layer and score: "gradient",
        "guided" (the same with Guided Backprop's ReLUs) or "forward" (no gradient)."""
        key = (kind, layer, score)
        if key not in self._passes:
            unrolled = self._unrolled_at(layer, guided=kind == "guided")
            self._passes[key] = (backend.forward_pass(unrolled, self.jit_compile) if kind == "forward"
                                 else backend.gradient_pass(unrolled, score, self.jit_compile))
        return self._passes[key]

    def _probe(self, clips: int, layer: str) -> np.ndarray:
        """Zeros shaped like the layer's activations for that many clips (see `unroll`)."""
        probe = self._unrolled_at(layer).inputs[1]
        return np.zeros((clips,) + tuple(probe.shape[1:]), probe.dtype)

    def _run(self, clips: np.ndarray, target: targets.Target, layer: str, kind: str = "gradient") -> Pass:
        clips = np.asarray(clips, self.video.clip_tensor.dtype)
        run = self._pass(kind, layer, target.score)
        probabilities, classes, scores, activations, activation_gradients, input_gradients = run(
            clips, self._probe(len(clips), layer), target.classes.astype(np.int32))
        return Pass(layer, probabilities, classes, scores, activations, activation_gradients,
                    input_gradients, target.score, target.label)

    def _forward(self, clips, layer: str | None, keep_activations: bool, probe=None):
        """Batched forward passes (no gradient): the activations (N, S, h, w, K) of `layer` if
        asked (else None), logits (N, C) and probabilities (N, C). probe: None, or
        (N, S, h, w, K) added to the activations."""
        layer = layer or self.default_layer
        forward = self._pass("forward", layer)
        clips = np.asarray(clips, self.video.clip_tensor.dtype)
        chunk_size = self.clips_per_pass()
        zeros = self._probe(chunk_size, layer)  # every chunk is padded to chunk_size clips
        parts = []
        for start in range(0, len(clips), chunk_size):
            chunk = _pad(clips[start:start + chunk_size], chunk_size)
            added = zeros if probe is None else _pad(probe[start:start + chunk_size], chunk_size).reshape(zeros.shape)
            inner, logits, probabilities = forward(chunk, added)
            count = min(chunk_size, len(clips) - start)
            parts.append((inner[:count] if keep_activations else None, logits[:count], probabilities[:count]))
        activations, logits, probabilities = zip(*parts)
        return (np.concatenate(activations) if keep_activations else None,
                np.concatenate(logits), np.concatenate(probabilities))

    def logits(self, clips, layer: str | None = None, probe=None) -> np.ndarray:
        """Class logits (N, C) of clips, what the gradient methods explain (the scores before
        the output's softmax or sigmoid; a linear head's outputs), from batched forward passes
        (no gradient); probe: None, or an array (N, T, h, w, K) added to the activations of
        `layer` (Ablation-CAM zeroes a channel of a frame with it)."""
        return self._forward(clips, layer, keep_activations=False, probe=probe)[1]

    def probabilities(self, clips, layer: str | None = None, probe=None) -> np.ndarray:
        """Class probabilities (N, C) of clips, what RISE and the deletion and insertion curves
        read: the model's softmax or sigmoid output (a linear head's: the softmax of its
        logits, their sigmoid for a single output); `layer` and `probe` as in `logits`."""
        return self._forward(clips, layer, keep_activations=False, probe=probe)[2]

    def activations(self, clips, layer: str | None = None) -> np.ndarray:
        """Activations (N, S, h, w, K) of an inner layer for clips (N, T, H, W, 3), from
        batched forward passes (no gradient); S = T but at a Conv3D/ConvLSTM2D layer."""
        layer = self.check_layer(layer, ())
        batch = self.check_clips(clips)
        return self._forward(batch, layer, keep_activations=True)[0]

    def scores(self, clips, target, layer: str | None = None, probe=None) -> np.ndarray:
        """The explained score of each clip (a class logit, or a callable score), from batched
        forward passes; `target` as in `explain`, `probe` as in `logits`."""
        return self.check_target(target, len(clips)).of(self.logits(clips, layer, probe))

    def input_gradients(self, inputs, target: targets.Target, layer: str, guided: bool = False) -> np.ndarray:
        """Input gradients (N, T, H, W, 3) of the target score for a batch of inputs (clips, noisy
        copies, points on a path), every frame in one pass; `guided`: with Guided Backprop's
        rule at every ReLU, the backbone's and the head's (`tdexplain.engine.guided`)."""
        return self._run(inputs, target, layer, kind="guided" if guided else "gradient").input_gradients

    def clips_per_pass(self) -> int:
        """How many clips one pass takes in the sampled methods: `frames_per_pass` frames, at
        least one clip."""
        return max(1, self.frames_per_pass // self.frames)

    def clips_per_call(self) -> int:
        """How many changed clips a perturbation method hands to `scores` at once (its memory
        bound; the forward passes themselves run `frames_per_pass` frames at a time)."""
        return 8 * self.clips_per_pass()

    # ------------------------------------------------------------------ public entry point

    def explain(self, clips, methods=("saliency", "gradcam"), layer: str | None = None,
                target=None, batch_size: int = 8, **options) -> Explanation:
        """Explain clips (N, T, H, W, 3) or one clip (T, H, W, 3), RGB in 0..255.

        methods: names from ``tdexplain.methods.METHODS`` (the registry). layer: an inner layer
        of the backbone (see `inner_layers`), default `default_layer`. target: None for the
        predicted class, a class index or name, one per clip, or a callable score on the
        logits in keras.ops (``lambda logits: logits[:, 1] - logits[:, 0]``).
        options, each used by the methods that declare it: every method's options and their
        defaults are in the README's table of methods and `check_options({})`,
        for instance SmoothGrad's `smoothgrad_samples` noisy copies, Integrated Gradients'
        `ig_steps` from `ig_baseline` (black, one clip, or one per clip), Score-CAM's and
        Ablation-CAM's most active channels, occlusion's patch and RISE's masks. An unknown
        name is refused with the list; each method checks its values.
        """
        chosen = self.check_methods(methods)
        layer = self.check_layer(layer, chosen)
        options = check_options(options)
        batch = self.check_clips(clips)
        target = self.check_target(target, len(batch))
        _check_baseline(options["ig_baseline"], batch.shape)
        parts = [self._explain_batch(batch[i:i + batch_size], target[i:i + batch_size], chosen,
                                     layer, _rows_of(options, slice(i, i + batch_size)))
                 for i in range(0, len(batch), batch_size)]
        return _concatenate(parts)

    def _explain_batch(self, clips, target, chosen, layer, options) -> Explanation:
        one = self._run(clips, target, layer)
        result = Explanation(one.probabilities, one.target, self.class_names, layer, one.scores,
                             activations=one.activations, activation_gradients=one.activation_gradients,
                             input_gradients=one.input_gradients, target_label=one.label)
        for name in chosen:
            method = get(name)
            raw, weights = method.attribute(self, one, clips, options)
            result.raw[name] = raw
            if weights is not None:
                result.channel_weights[name] = weights
            at_frames = to_frames(raw, self.frames)  # a layer's S time steps over the T frames
            at_pixels = raw.shape[-1] == self.size  # CAMs come at the layer's resolution
            at_size = at_frames if at_pixels else upsample(at_frames, self.size)
            result.maps[name] = normalize_per_frame(np.maximum(at_size, 0))  # in [0, 1] whatever the rule
        return result

    # ------------------------------------------------------------------ input checks

    def check_clips(self, clips) -> np.ndarray:
        """A float32 batch (N, T, H, W, 3) of the explainer's frame count and size from clips
        or one clip, or a ValueError that says what was expected (`engine.clips.check_clips`)."""
        return check_clips(clips, frames=self.frames, size=self.size)

    @staticmethod
    def check_methods(methods) -> tuple:
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        unknown = [m for m in methods if m not in REGISTRY]
        if unknown or not methods:
            raise ValueError(f"unknown method(s) {unknown or methods}; valid methods: {', '.join(REGISTRY)}")
        return methods

    def check_layer(self, layer, methods) -> str:
        layer = self.default_layer if layer is None else layer
        if layer not in self.video.layer_names():
            model_names = [l.name for l in graphs.leaf_layers(self.video.graph)]
            where = (f" ({layer!r} is a layer of the outer model, not of the wrapped backbone)"
                     if layer in model_names else "")
            raise ValueError(f"unknown layer {layer!r}{where}; {self.video.inner_phrase}: "
                             f"{', '.join(self.inner_layers)}")
        if layer not in self.inner_layers and any(get(m).uses_layer for m in methods):
            raise ValueError(f"layer {layer!r} has no {self.video.inner_kind} output (shape "
                             f"{self.video.get_layer(layer).output.shape}), so CAM methods cannot "
                             f"use it; choose one of {', '.join(self.inner_layers)}")
        paired = [m for m in methods if get(m).pairs_steps_with_frames]
        steps = self.video.steps(layer) if paired else self.frames
        if steps != self.frames:
            keeping = [name for name in self.inner_layers if self.video.steps(name) == self.frames]
            raise ValueError(f"{', '.join(paired)} masks frame t with step t of the layer's activations, "
                             f"but {layer!r} has {steps} time steps for the clip's {self.frames} frames; "
                             f"choose a layer that keeps every frame ({', '.join(keeping) or 'none'}) "
                             f"or another method")
        return layer

    def check_target(self, target, n: int) -> targets.Target:
        """The target of n clips, resolved once (see `tdexplain.engine.targets`)."""
        return targets.resolve(target, n, self.class_names)


def _check_baseline(baseline, shape: tuple) -> None:
    """`ig_baseline`: None, or an array that one clip or the clips (N, T, H, W, 3) broadcast to."""
    if baseline is None:
        return
    try:
        np.broadcast_to(np.asarray(baseline, np.float32), shape)
    except ValueError:
        raise ValueError(f"ig_baseline must be one clip {shape[1:]} or one per clip {shape}, "
                         f"got an array of shape {np.shape(baseline)}") from None


def _rows_of(options: dict, rows: slice) -> dict:
    """The options for the clips `rows`: a per-clip `ig_baseline` is cut with them."""
    baseline = options["ig_baseline"]
    if baseline is None or np.ndim(baseline) < 5 or np.shape(baseline)[0] == 1:
        return options
    return {**options, "ig_baseline": np.asarray(baseline)[rows]}


def _pad(batch: np.ndarray, size: int) -> np.ndarray:
    """Pad a short last chunk of forward passes by repeating its last item, so every chunk has
    one shape and the forward pass is traced once (callers use the first len(batch) results).
    The sampled gradient methods do not pad: there a padded chunk costs more than a trace."""
    if len(batch) == size:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])


def _concatenate(parts: list[Explanation]) -> Explanation:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def cat(values):
        return None if values[0] is None else np.concatenate(values)

    return Explanation(
        probabilities=cat([p.probabilities for p in parts]), target=cat([p.target for p in parts]),
        class_names=first.class_names, layer=first.layer, scores=cat([p.scores for p in parts]),
        maps={m: cat([p.maps[m] for p in parts]) for m in first.maps},
        raw={m: cat([p.raw[m] for p in parts]) for m in first.raw},
        channel_weights={m: cat([p.channel_weights[m] for p in parts]) for m in first.channel_weights},
        activations=cat([p.activations for p in parts]),
        activation_gradients=cat([p.activation_gradients for p in parts]),
        input_gradients=cat([p.input_gradients for p in parts]), target_label=first.target_label,
    )

