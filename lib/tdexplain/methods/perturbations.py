"""Perturbation methods: maps from forward passes of changed clips, no gradient.

Occlusion slides a patch over each frame in turn; RISE masks the whole clip at random, over
regions and frames at once, so its raw map is one importance volume per clip that says which
frames and where (compare frames with `Explanation.raw["rise"]`; `maps` are normalized per
frame as every map). Removed pixels take the value of the blurred frame (`engine.maps.blurred`),
as for ``integrated_gradients_blur``: the scene stays, its detail goes. Every changed clip
runs in the engine's batched forward passes (`Engine.scores`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..engine.maps import blurred
from ..engine.registry import Method, register
from .sampling import score_drops

__all__ = ["patch_starts", "rise_masks"]


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges of the patches along one side: every `stride` pixels, plus a last
    patch flush with the edge so that every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)


def _or_default(value, default):
    """The option's value, its default only when it is None (0 is a value, and refused)."""
    return default if value is None else value


@register
class Occlusion(Method):
    name, title = "occlusion", "occlusion"
    options = {"occlusion_patch": None, "occlusion_stride": None}
    reference = ("Zeiler & Fergus, 2014: the score's drop when a sliding patch of one frame is "
                 "blurred, averaged over the patches on each pixel, positive part")
    score = "the logit's drop"
    memory = "a batch's gradient pass, or `clips_per_call` occluded clips"

    def attribute(self, engine, one, clips, options):
        """Patches of `occlusion_patch` pixels (a quarter of the frame) every `occlusion_stride`
        (half a patch), one frame at a time: T x patches forward passes per clip."""
        n, t, height, width = clips.shape[:4]
        patch = _check_int("occlusion_patch", _or_default(options["occlusion_patch"], max(1, height // 4)),
                           1, min(height, width))
        stride = _check_int("occlusion_stride", _or_default(options["occlusion_stride"], max(1, patch // 2)), 1, patch)
        corners = [(y, x) for y in patch_starts(height, patch, stride) for x in patch_starts(width, patch, stride)]
        coverage = np.zeros((height, width), np.float32)
        for y, x in corners:
            coverage[y:y + patch, x:x + patch] += 1
        filled = blurred(clips)
        drops = np.zeros(clips.shape[:4], np.float32)
        jobs = [(frame, y, x) for frame in range(t) for y, x in corners]
        for i in range(n):
            def occlude(chunk):
                occluded = np.repeat(clips[i][None], len(chunk) + 1, axis=0)
                for j, (frame, y, x) in enumerate(chunk, start=1):
                    occluded[j, frame, y:y + patch, x:x + patch] = filled[i, frame, y:y + patch, x:x + patch]
                return occluded, None

            for chunk, chunk_drops in score_drops(engine, one, i, jobs, occlude):
                for (frame, y, x), drop in zip(chunk, chunk_drops):
                    drops[i, frame, y:y + patch, x:x + patch] += drop
        return np.maximum(drops / coverage, 0), None


def rise_masks(indices, frames: int, size: int, cells: int = 6, frame_cells: int | None = None,
               keep: float = 0.5, seed: int = 0) -> np.ndarray:
    """RISE's smooth random masks extended over time, (len(indices), frames, size, size) in
    [0, 1]: a grid of `frame_cells` x `cells` x `cells` cells, each kept with probability
    `keep`, upsampled linearly to one cell more than the clip in each direction and cropped at
    a random shift (Petsiuk et al., 2018). Mask i is drawn from a generator seeded by
    (seed, i), so any subset is reproducible alone. frame_cells: default half the frames."""
    frame_cells = frame_cells or max(1, math.ceil(frames / 2))
    cell, frame_cell = math.ceil(size / cells), math.ceil(frames / frame_cells)
    span, duration = (cells + 1) * cell, (frame_cells + 1) * frame_cell
    # Linear interpolation in time as a matrix (duration, frame_cells), aligned as OpenCV's.
    in_time = cv2.resize(np.eye(frame_cells, dtype=np.float32), (frame_cells, duration),
                         interpolation=cv2.INTER_LINEAR)
    masks = np.empty((len(indices), frames, size, size), np.float32)
    for row, index in enumerate(indices):
        rng = np.random.default_rng([seed, int(index)])
        grid = (rng.random((frame_cells, cells, cells)) < keep).astype(np.float32)
        dt, dy, dx = rng.integers(0, frame_cell), rng.integers(0, cell), rng.integers(0, cell)
        in_space = np.stack([cv2.resize(g, (span, span), interpolation=cv2.INTER_LINEAR) for g in grid])
        smooth = np.tensordot(in_time, in_space, axes=1)  # (duration, span, span)
        masks[row] = smooth[dt:dt + frames, dy:dy + size, dx:dx + size]
    return masks


@register
class RISE(Method):
    name, title = "rise", "RISE (space-time)"
    options = {"rise_masks": 400, "rise_cells": 6, "rise_frame_cells": None, "rise_keep": 0.5, "seed": 0}
    reference = ("Petsiuk et al., 2018, over frames and regions: the sum of random masks, each "
                 "weighted by the target's probability on the clip it masks, / (masks x keep)")
    score = "the probability (a callable score: its value)"
    memory = "a batch's gradient pass, or `clips_per_call` masks and masked clips"

    def attribute(self, engine, one, clips, options):
        """S = sum_i p(M_i x + (1 - M_i) blur) M_i / (count x keep), with `rise_masks` masks of
        `rise_cells`^2 regions x `rise_frame_cells` time cells (see `rise_masks`), the same
        masks for every clip. p: the target class's probability; a callable score, which
        may be negative, less its mean over the masks (where masks raise it above average)."""
        n, t, size = clips.shape[0], clips.shape[1], clips.shape[2]
        count = _check_int("rise_masks", options["rise_masks"], 1, 10**6)
        cells = _check_int("rise_cells", options["rise_cells"], 1, size)
        frame_cells = options["rise_frame_cells"]  # None: one cell a frame (see `rise_masks`)
        if frame_cells is not None:
            frame_cells = _check_int("rise_frame_cells", frame_cells, 1, t)
        keep = float(options["rise_keep"])
        if not 0 < keep < 1:
            raise ValueError(f"rise_keep must be a probability in (0, 1), got {keep!r}")
        filled = blurred(clips)
        totals, score_sums, shifts = np.zeros(clips.shape[:4], np.float32), np.zeros(n), np.zeros(n, np.float32)
        mask_total = np.zeros(clips.shape[1:4], np.float32)
        per_call = engine.clips_per_call()
        for start in range(0, count, per_call):
            masks = rise_masks(range(start, min(count, start + per_call)), t, size, cells,
                               frame_cells, keep, options["seed"])[..., None]
            mask_total += masks[..., 0].sum(axis=0)
            for i in range(n):
                variants = masks * (clips[i] - filled[i])  # M x + (1 - M) blur, with one array
                variants += filled[i]
                values = _values(engine, variants, one.targets()[i:i + 1].repeat(len(masks)), one.layer)
                if one.score is not None:  # scores less the first masks' mean: no float32 cancellation
                    if start == 0:
                        shifts[i] = values.mean()
                    values = values - shifts[i]
                    score_sums[i] += values.sum()
                totals[i] += np.tensordot(values, masks[..., 0], axes=1)
                del variants
            del masks  # before the next chunk's are made: one chunk in memory at a time
        if one.score is not None:  # sum_i (s_i - mean s) M_i = sum_i s_i M_i - mean s x sum_i M_i
            totals -= (score_sums / count)[:, None, None, None] * mask_total
        return totals / (count * keep), None


def _values(engine, clips, target, layer) -> np.ndarray:
    """The target class's probability for each clip (a callable score's value, if given)."""
    if target.score is not None:
        return target.of(engine.logits(clips, layer))
    return engine.probabilities(clips, layer)[np.arange(len(clips)), target.classes]
