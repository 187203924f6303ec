"""Randomization, the sanity checks (Adebayo et al., 2018): the maps of a model whose weights
are randomized, layer by layer from the top or the backbone at once, of a copy whose weights are
drawn again, and of a model trained on shuffled labels, compared with the original maps by rank
correlation and SSIM. A method that explains the model must change when the model does; a
baseline that never looks at the model (`edge_baseline`) shows what failing looks like."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import keras
import numpy as np
from tqdm.auto import tqdm

from ..engine import backend, shapes
from ..engine.explainer import Explainer
from ..engine.maps import normalize_per_frame
from .catalogue import Metric, register
from .explained import check_methods, clips_and_target, method_maps
from .similarity import spearman, ssim

__all__ = ["SanityCheck", "randomization_steps", "model_randomization", "reinitialization",
           "label_randomization", "edge_baseline"]


@dataclass
class SanityCheck:
    """Maps of the same clips by the original model and by its randomized versions.

    steps: labels, "original" first; maps[method] (S + 1, N, T, H, W); spearman[method] and
    ssim[method] (S + 1,): mean similarity of each step's maps to the original ones (1 at
    the original). A method that depends on the model falls towards 0 as it is randomized.
    """

    steps: list
    maps: dict = field(default_factory=dict)
    spearman: dict = field(default_factory=dict)
    ssim: dict = field(default_factory=dict)

    def clip_spearman(self, method: str, step: int = -1) -> np.ndarray:
        """(N,): each clip's rank correlation (mean over its frames) between the original
        maps and those of `step` (default the last)."""
        return spearman(self.maps[method][0], self.maps[method][step]).mean(axis=1)

    def table(self):
        import pandas as pd

        rows = {(method, score): values[method] for score, values in
                (("spearman", self.spearman), ("ssim", self.ssim)) for method in self.maps}
        return pd.DataFrame(rows, index=pd.Index(self.steps, name="randomized")).round(3)


def randomization_steps(model: keras.Model, mode: str = "cascading", by: str = "layer") -> list[tuple[str, list]]:
    """The layers to randomize at each step: (label, layers randomized so far).

    "cascading": from the output layer down through the head (dense blocks, GRU) and then
    the backbone from its last layer to its first, one more layer per step (``by="block"``:
    one more backbone block per step, ``block5_*`` then ``block4_*``...); "backbone": one
    step, every layer of the backbone at once (the head kept). The backbone is the per-frame
    network (the wrapped CNN, nested models opened, or the consecutive TimeDistributed
    layers); for a Conv3D/ConvLSTM2D model, its layers whose output keeps time and space
    (N, T', h, w, K) (`shapes.VideoModel.backbone_layers`). Layers without weights are skipped.
    """
    if by not in ("layer", "block"):
        raise ValueError(f"by must be 'layer' or 'block', got {by!r}")
    video = shapes.video_part(model)
    backbone = [layer for layer in video.backbone_layers() if layer.weights]
    if mode == "backbone":
        return [("backbone", backbone)]
    if mode != "cascading":
        raise ValueError(f"mode must be 'cascading' or 'backbone', got {mode!r}")
    head = [layer for layer in video.head_layers() if layer.weights]
    groups = [(layer.name, [layer]) for layer in head[::-1]]
    for layer in backbone[::-1]:
        name = layer.name.split("_")[0] if by == "block" else layer.name
        if groups and by == "block" and groups[-1][0] == name:
            groups[-1][1].append(layer)
        else:
            groups.append((name, [layer]))
    steps, randomized = [], []
    for name, layers_ in groups:
        randomized = randomized + layers_
        steps.append((name, randomized))
    return steps


def _randomize(layers_, rng: np.random.Generator) -> None:
    """Redraw every weight of the layers from a normal with that weight tensor's own mean
    and standard deviation: the scale of each layer is kept, so activations neither vanish
    nor explode, and all that was learnt is gone."""
    for layer in layers_:
        for variable in layer.weights:
            values = variable.numpy()
            variable.assign(rng.normal(values.mean(), values.std(), values.shape).astype(values.dtype))


def _sanity_check(explainers, labels, clips, methods, target, layer, options, progress,
                  desc, before_each=None) -> SanityCheck:
    methods = check_methods(methods)
    reference = explainers[0]
    batch, targets = clips_and_target(reference, clips, target)
    check = SanityCheck(list(labels))
    results = []
    for step, explainer in enumerate(tqdm(explainers, desc=desc, unit="step", disable=not progress)):
        if before_each is not None:
            before_each(step)
        results.append(method_maps(explainer, batch, methods, targets, layer, options))
    for name in results[0]:
        check.maps[name] = np.stack([r[name] for r in results])
        check.spearman[name] = np.array([np.mean(spearman(results[0][name], r[name])) for r in results])
        check.ssim[name] = np.array([np.mean(ssim(results[0][name], r[name])) for r in results])
    return check


def model_randomization(model: keras.Model, clips, methods=("gradcam",), mode: str = "cascading",
                        by: str = "layer", layer: str | None = None, target=None, seed: int = 0,
                        progress: bool = True, output=None, clip_input=None, other_inputs=None,
                        **options) -> SanityCheck:
    """Model-parameter randomization test: maps of the same clips and target (the original
    model's prediction by default) as the weights are randomized (see `randomization_steps`).
    The model is not changed: a copy is randomized in place, step after step, and one
    compiled explainer serves every step. `output`, `clip_input` and `other_inputs` choose
    what is explained, as in `Explainer` (in every sanity check); `options` go to
    `Explainer.explain`."""
    twin = backend.copy_model(model)
    steps = randomization_steps(twin, mode, by)
    randomized = [[]] + [layers_ for _, layers_ in steps]  # so far, at each step (prefixes)
    rng = np.random.default_rng(seed)

    def randomize(step):  # the layers this step adds to those already randomized
        if step:
            _randomize(randomized[step][len(randomized[step - 1]):], rng)

    explainer = Explainer(twin, output=output, clip_input=clip_input, other_inputs=other_inputs)
    return _sanity_check([explainer] * (len(steps) + 1), ["original"] + [label for label, _ in steps],
                         clips, methods, target, layer, options, progress,
                         f"{mode} randomization", before_each=randomize)


def reinitialization(model: keras.Model, clips, methods=("gradcam",), layer: str | None = None,
                     target=None, seed: int = 0, progress: bool = True, output=None, clip_input=None,
                     other_inputs=None, **options) -> SanityCheck:
    """The maps of the model and of a copy whose weights are all drawn again by their own
    initializers (nothing learnt left), for the same clips and target. A map that explains
    the model shares little with the copy's: `clip_spearman` near 0."""
    keras.utils.set_random_seed(seed)
    fresh = backend.settled(keras.models.clone_model(model))
    shape = dict(output=output, clip_input=clip_input, other_inputs=other_inputs)
    return _sanity_check([Explainer(model, **shape), Explainer(fresh, **shape)], ["original", "re-initialized"],
                         clips, methods, target, layer, options, progress, "re-initialization")


def label_randomization(model: keras.Model, random_label_model: keras.Model, clips,
                        methods=("gradcam",), layer: str | None = None, target=None,
                        progress: bool = True, output=None, clip_input=None, other_inputs=None,
                        **options) -> SanityCheck:
    """Data randomization test: maps of the original model and of the same architecture
    trained the same way on shuffled labels (`workbook.models.RANDOM_LABELS_MODEL` for the demo), for
    the same clips and target class."""
    if shapes.input_spec(random_label_model) != shapes.input_spec(model):
        raise ValueError(f"random_label_model takes clips of (frames, size) "
                         f"{shapes.input_spec(random_label_model)}, the model "
                         f"{shapes.input_spec(model)}: train it at the model's size")
    shape = dict(output=output, clip_input=clip_input, other_inputs=other_inputs)
    explainers = [Explainer(model, **shape), Explainer(random_label_model, **shape)]
    return _sanity_check(explainers, ["original", "random labels"], clips, methods, target,
                         layer, options, progress, "label randomization")


def edge_baseline(explainer, clips, target) -> np.ndarray:
    """A "method" that never looks at the model: the Sobel edge strength of each frame,
    normalized per frame. It passes for a map to the eye, and fails every sanity check."""
    gray = np.asarray(clips, np.float32).mean(axis=-1)
    edges = [[np.hypot(cv2.Sobel(frame, cv2.CV_32F, 1, 0), cv2.Sobel(frame, cv2.CV_32F, 0, 1))
              for frame in clip] for clip in gray]
    return normalize_per_frame(np.array(edges))


register(Metric("model randomization", model_randomization, "randomization",
                "Spearman and SSIM of the maps with those of the model as its weights are randomized",
                "lower: the map depends on the model", memory="the maps of every step, and a copy of the model"))
register(Metric("re-initialization", reinitialization, "randomization",
                "Spearman and SSIM with the maps of a copy whose weights are drawn again",
                "lower: the map depends on the model", memory="the maps of every step, and a copy of the model"))
register(Metric("label randomization", label_randomization, "randomization",
                "Spearman and SSIM with the maps of the model trained on shuffled labels",
                "lower: the map depends on what was learnt", memory="the maps of every step, and a copy of the model"))
