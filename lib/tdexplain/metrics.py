"""Measuring explanations: localization, faithfulness curves and sanity checks.

A map that looks convincing can be wrong. Three families of numbers, each on batches of
maps (N, T, H, W) in [0, 1] as `Explainer.explain` returns them:

- localization against ground-truth masks (our synthetic clips know where the evidence is):
  pointing game, share of the map's energy inside the mask, IoU of the thresholded map;
- faithfulness without ground truth: deletion and insertion curves (remove or reveal pixels
  in order of importance, per frame or across the whole clip) and the same for whole frames;
- sanity checks (Adebayo et al., 2018): the maps of a model whose weights are randomized,
  layer by layer from the top or the backbone at once, and of a model trained on shuffled
  labels, compared with the original maps by rank correlation and SSIM. A method that
  explains the model must change when the model does.

What needs no ground truth (complexity, robustness to noise, completeness and input
invariance) is in `tdexplain.map_properties`, and exported here too; `METRICS` lists every
metric, its family and which way is better.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import keras
import numpy as np
from tqdm.auto import tqdm

from . import backend, models, shapes
from .explain import Explainer, normalize_per_frame
from .localization import (chance, energy_inside, evidence_response, grid_bound, iou,  # noqa: F401
                           localization, pointing_game, pointing_tolerance, temporal_chance,
                           temporal_energy_share, temporal_localization, temporal_pointing_game)
from .map_properties import (NOISES, Completeness, InputInvariance, Robustness,  # noqa: F401
                             _check_methods, _check_robustness, _clips_and_target, _method_maps,
                             _invariance, _robustness, _twin_explainer, completeness, entropy,
                             input_invariance, local_lipschitz, max_sensitivity, robustness,
                             shifted_twin, sparseness)
from .metric_catalogue import METRICS, Metric, markdown_table  # noqa: F401
from .similarity import spearman, ssim  # noqa: F401 - part of this module's API

FILLS = ("blur", "black", "mean")
VARIANT_BYTES = 256 * 2**20  # the removed and revealed clips built at a time by the curves

__all__ = ["pointing_tolerance", "pointing_game", "energy_inside", "iou", "chance", "localization",
           "evidence_response", "grid_bound", "temporal_pointing_game", "temporal_energy_share",
           "temporal_chance", "temporal_localization", "Curve",
           "deletion_curve", "frame_deletion_curve", "spearman", "ssim", "randomization_steps",
           "model_randomization", "reinitialization", "label_randomization", "SanityCheck", "edge_baseline",
           "evaluate_methods", "bootstrap_interval",
           "sparseness", "entropy", "Robustness", "robustness", "max_sensitivity", "local_lipschitz",
           "NOISES", "Completeness", "completeness", "shifted_twin", "InputInvariance",
           "input_invariance", "METRICS", "Metric", "markdown_table"]


# ---------------------------------------------------------------------------- faithfulness

@dataclass
class Curve:
    """A deletion or insertion curve: the target class probability (N, S + 1) after removing
    (or revealing) each fraction of the pixels or frames, most important first."""

    mode: str
    fractions: np.ndarray
    probabilities: np.ndarray
    target: np.ndarray

    @property
    def auc(self) -> np.ndarray:
        """Area under each clip's curve, over fractions 0..1 (N,). Deletion: lower is more
        faithful (the probability falls fast). Insertion: higher is more faithful."""
        p, x = self.probabilities, self.fractions
        return ((p[:, 1:] + p[:, :-1]) / 2 * np.diff(x)).sum(axis=1)


def _fill(clips: np.ndarray, fill: str) -> np.ndarray:
    """What removed pixels become: a strong blur of the frame (keeps colours, removes
    detail, the usual choice since RISE), black, or the clip's mean frame (removes motion)."""
    if fill == "black":
        return np.zeros_like(clips)
    if fill == "mean":
        return np.broadcast_to(clips.mean(axis=1, keepdims=True), clips.shape).copy()
    size = clips.shape[2]
    kernel = 2 * (size // 8) + 1
    return np.stack([[cv2.GaussianBlur(frame, (kernel, kernel), 0) for frame in clip] for clip in clips])


def _rank_fraction(importance: np.ndarray, axes: tuple, rng: np.random.Generator) -> np.ndarray:
    """Each element's place in the order of decreasing importance within `axes`, as a
    fraction in [0, 1): 0 is the most important. Ties are broken at random, not by position
    (an all-zero region would otherwise be removed top-left first)."""
    moved = np.moveaxis(importance, axes, tuple(range(-len(axes), 0)))
    flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
    ties = rng.random(flat.shape)
    order = np.lexsort((ties, -flat), axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[-1]), axis=-1)
    fraction = (ranks / flat.shape[-1]).reshape(moved.shape)
    return np.moveaxis(fraction, tuple(range(-len(axes), 0)), axes)


def _curve(explainer: Explainer, clips, rank, target, steps: int, mode: str, fill: str,
           progress: bool, desc: str) -> Curve:
    """Probabilities of the target as the elements with rank fraction below k / steps are
    removed (deletion) or revealed (insertion), k = 0..steps. The variants of several clips go
    through the model together (up to VARIANT_BYTES of them at a time): one call per clip
    would run a short last chunk per clip."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    fractions = np.linspace(0, 1, steps + 1)
    filled = _fill(clips, fill)
    probabilities = np.zeros((len(clips), steps + 1), np.float32)
    group = max(1, VARIANT_BYTES // ((steps + 1) * clips[0].nbytes))  # clips per call
    with tqdm(total=len(clips), desc=desc, unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), group):
            part = slice(start, start + group)
            changed = rank[part, None] < fractions[None, :, None, None, None]  # (n, S + 1, T, H, W)
            if mode == "insertion":
                changed = ~changed
            variants = np.where(changed[..., None], filled[part, None], clips[part, None])
            of_target = explainer.probabilities(variants.reshape((-1,) + clips.shape[1:]))
            of_target = of_target.reshape(variants.shape[:2] + (-1,))
            probabilities[part] = np.take_along_axis(of_target, target[part, None, None], axis=2)[..., 0]
            bar.update(len(variants))
            del changed, variants  # before the next group's are made: one group in memory at a time
    return Curve(mode, fractions, probabilities, target)


def deletion_curve(explainer: Explainer, clips, maps, target=None, mode: str = "deletion",
                   scope: str = "frame", steps: int = 16, fill: str = "blur", seed: int = 0,
                   progress: bool = True) -> Curve:
    """Deletion (or insertion) curve of maps (N, T, H, W) for clips (N, T, H, W, 3).

    scope "frame": each step removes the same share of every frame, each frame's own most
    important pixels first; "clip": pixels are ranked across the whole clip, so a frame the
    map ignores keeps its pixels longest. Removed pixels take the value of `fill` (see
    FILLS); insertion starts from the filled clip and reveals. target: None for the
    predicted class, or a class index or name, or one per clip.
    """
    batch, targets = _clips_and_target(explainer, clips, target)
    maps = np.asarray(maps, np.float32)
    if maps.shape != batch.shape[:4]:
        raise ValueError(f"maps must be (N, T, H, W) = {batch.shape[:4]} to match the clips, got {maps.shape}")
    if scope not in ("frame", "clip"):
        raise ValueError(f"scope must be 'frame' or 'clip', got {scope!r}")
    axes = (2, 3) if scope == "frame" else (1, 2, 3)
    rank = _rank_fraction(maps, axes, np.random.default_rng(seed))
    return _curve(explainer, batch, rank, targets, steps, mode, fill, progress, f"{mode} ({scope})")


def frame_deletion_curve(explainer: Explainer, clips, frame_scores, target=None,
                         mode: str = "deletion", fill: str = "mean", seed: int = 0,
                         progress: bool = True) -> Curve:
    """Deletion (or insertion) of whole frames, the most important first, for frame scores
    (N, T) such as `explain.frame_importance`: T + 1 points per clip. Removed frames become
    the clip's mean frame by default (the background stays, the motion goes)."""
    batch, targets = _clips_and_target(explainer, clips, target)
    frame_scores = np.asarray(frame_scores, np.float32)
    if frame_scores.shape != batch.shape[:2]:
        raise ValueError(f"frame_scores must be (N, T) = {batch.shape[:2]}, got {frame_scores.shape}")
    rank = _rank_fraction(frame_scores, (1,), np.random.default_rng(seed))
    rank = np.broadcast_to(rank[:, :, None, None], batch.shape[:4])
    return _curve(explainer, batch, rank, targets, batch.shape[1], mode, fill, progress,
                  f"frame {mode}")


# ---------------------------------------------------------------------------- sanity checks

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
    methods = _check_methods(methods)
    reference = explainers[0]
    batch, targets = _clips_and_target(reference, clips, target)
    check = SanityCheck(list(labels))
    results = []
    for step, explainer in enumerate(tqdm(explainers, desc=desc, unit="step", disable=not progress)):
        if before_each is not None:
            before_each(step)
        results.append(_method_maps(explainer, batch, methods, targets, layer, options))
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
    twin = models.copy_model(model)
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
    trained the same way on shuffled labels (`models.RANDOM_LABELS_MODEL` for the demo), for
    the same clips and target class."""
    if models.input_spec(random_label_model) != models.input_spec(model):
        raise ValueError(f"random_label_model takes clips of (frames, size) "
                         f"{models.input_spec(random_label_model)}, the model "
                         f"{models.input_spec(model)}: train it at the model's size")
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


# ---------------------------------------------------------------------------- all together

def evaluate_methods(explainer: Explainer, clips, masks, methods, layer: str | None = None,
                     target=None, steps: int = 16, fill: str = "blur", progress: bool = True,
                     robustness_samples: int = 0, robustness_radius: float = 0.02,
                     invariance_shift=None, **options):
    """One row per method: localization (pointing game, energy inside, IoU, with chance),
    deletion and insertion AUC (per-frame scope), sparseness and entropy (means over the
    frames), and explanation time per clip. A pandas DataFrame; the maps, the curves and the
    per-clip scores (for `bootstrap_interval`) are in its ``attrs``.

    Columns that cost more explanations are asked for: robustness_samples > 0 adds
    max_sensitivity and local_lipschitz (per clip, `robustness` with that many uniform
    perturbations of radius `robustness_radius`, seed 0; each sample is one more explain call
    per method, so the default 0 leaves them out); invariance_shift, a number or array,
    adds input_invariance (mean Spearman of the maps of the model on x and of its
    `shifted_twin` on x + shift: one more explain call per method; default None, left out).
    Columns that are not asked for are absent, not NaN.
    """
    import pandas as pd

    methods = _check_methods(methods)
    batch, targets = _clips_and_target(explainer, clips, target)
    _check_robustness(robustness_samples, robustness_radius, "uniform", "robustness_", least=0)
    twin = None if invariance_shift is None else _twin_explainer(explainer, invariance_shift)
    rows, maps, curves, per_clip = {}, {}, {}, {}
    for method in methods:
        # One explain call per method (not one pass for all): each method's time is its own.
        start = time.perf_counter()
        maps.update(_method_maps(explainer, batch, [method], targets, layer, options))
        seconds = (time.perf_counter() - start) / len(batch)
        name = method if isinstance(method, str) else method.__name__
        found = localization(maps[name], masks)
        curves[name] = {mode: deletion_curve(explainer, batch, maps[name], targets, mode=mode,
                                             steps=steps, fill=fill, progress=progress)
                        for mode in ("deletion", "insertion")}
        per_clip[name] = {"pointing_game": found["pointing_game"], "energy_inside": found["energy_inside"],
                          "deletion_auc": curves[name]["deletion"].auc,
                          "insertion_auc": curves[name]["insertion"].auc,
                          "sparseness": sparseness(maps[name]).mean(axis=1),
                          "entropy": entropy(maps[name]).mean(axis=1)}
        if robustness_samples:
            moved = _robustness(explainer, batch, [method], targets, robustness_samples,
                                robustness_radius, "uniform", 0, layer, options, progress,
                                original={name: maps[name]})
            per_clip[name].update({metric: result.per_clip[name] for metric, result in moved.items()})
        if twin is not None:
            invariance = _invariance(explainer, twin, batch, [method], targets, layer, options,
                                     original={name: maps[name]})
            per_clip[name]["input_invariance"] = invariance.spearman[name]
        rows[name] = {"pointing_game": np.nanmean(found["pointing_game"]),
                      "energy_inside": np.nanmean(found["energy_inside"]),
                      "iou": np.nanmean(found["iou"]),
                      "deletion_auc": curves[name]["deletion"].auc.mean(),
                      "insertion_auc": curves[name]["insertion"].auc.mean(),
                      **{score: np.nanmean(values) for score, values in per_clip[name].items()
                         if score not in ("pointing_game", "energy_inside", "deletion_auc", "insertion_auc")},
                      "seconds_per_clip": seconds}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs.update(maps=maps, curves=curves, per_clip=per_clip, chance=float(np.nanmean(chance(masks))))
    return table


def bootstrap_interval(values, level: float = 0.95, samples: int = 2000, seed: int = 0) -> tuple:
    """Percentile bootstrap interval of the mean of per-clip values (NaN dropped): where the
    mean could fall with other clips like these. Two methods whose intervals overlap are not
    ranked by these clips."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("bootstrap_interval needs at least one value that is not NaN")
    draws = np.random.default_rng(seed).integers(0, values.size, (samples, values.size))
    low, high = np.percentile(values[draws].mean(axis=1), [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)
