"""Localization: how much of a map lands on the ground-truth evidence, and why it may not.

Our synthetic clips know, pixel by pixel, where the class evidence is. Maps (N, T, H, W) in
[0, 1], as `Explainer.explain` returns them, are scored per frame against those masks:
the pointing game (is the peak on the evidence, within a tolerance?), the share of the
map's energy inside it, and the IoU of the thresholded map; each with its chance level.
They also know when: which frames hold the event. Frame importances (N, T), as
`methods.frames` computes them, are scored against those frames the same way
(`temporal_localization`: the temporal pointing game and the event's share of the
importance, with the event's share of the frames as their chance level).

Two measures explain a CAM that misses, without guessing: `evidence_response` (does the
layer's activation change where the evidence is, when the evidence is removed, or all over
the frame?) and `grid_bound` (the best any map at a layer's grid can score).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..engine.explainer import Explainer
from ..engine.maps import normalize_per_frame, to_frames, upsample
from .catalogue import Metric, register

__all__ = ["pointing_tolerance", "pointing_game", "energy_inside", "iou", "chance",
           "localization", "evidence_response", "grid_bound", "temporal_pointing_game",
           "temporal_energy_share", "temporal_chance", "temporal_localization"]


def _maps_and_masks(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    maps = np.asarray(maps, np.float32)
    masks = np.asarray(masks)
    if maps.ndim != 4 or maps.shape != masks.shape:
        raise ValueError(f"maps and masks must both be (N, T, H, W) of the same shape, got maps "
                         f"{maps.shape} and masks {masks.shape}")
    if not np.isfinite(maps).all() or maps.min() < 0:
        raise ValueError("maps must be finite and non-negative (heat maps, as explain returns them)")
    return maps, masks.astype(bool)


def _where_evidence(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """NaN for frames whose mask is empty: there is nothing to localize there."""
    return np.where(masks.any(axis=(2, 3)), values, np.nan)


def pointing_tolerance(size: int) -> int:
    """Pixels by which the pointing game's peak may miss the evidence, for frames of `size`:
    max(2, size // 32). The usual pointing game (Zhang et al., 2016) forgives a peak a few
    pixels off a thin object (an arm, a gun) that a coarse map cannot hit exactly."""
    return max(2, int(size) // 32)


def _grow(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Masks (N, T, H, W) grown by a disc of radius `pixels`."""
    if pixels <= 0:
        return masks
    offsets = np.arange(-pixels, pixels + 1)
    disc = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= pixels**2).astype(np.uint8)
    grown = [cv2.dilate(frame.astype(np.uint8), disc) for frame in masks.reshape((-1,) + masks.shape[2:])]
    return np.stack(grown).reshape(masks.shape).astype(bool)


def pointing_game(maps, masks, tolerance: int = 0) -> np.ndarray:
    """(N, T): is the map's peak inside the mask, or within `tolerance` pixels of it? With
    tied peaks, the share of them inside (so a constant map scores chance); an all-zero map
    points nowhere (0)."""
    maps, masks = _maps_and_masks(maps, masks)
    target = _grow(masks, int(tolerance))
    peak = maps.max(axis=(2, 3), keepdims=True)
    at_peak = (maps == peak) & (peak > 0)
    hits = (at_peak & target).sum(axis=(2, 3)) / np.maximum(at_peak.sum(axis=(2, 3)), 1)
    return _where_evidence(hits, masks)


def energy_inside(maps, masks) -> np.ndarray:
    """(N, T): the share of each frame's map mass inside the mask (0 for an all-zero map)."""
    maps, masks = _maps_and_masks(maps, masks)
    total = maps.sum(axis=(2, 3))
    inside = (maps * masks).sum(axis=(2, 3))
    return _where_evidence(np.divide(inside, total, out=np.zeros_like(total), where=total > 0), masks)


def iou(maps, masks, threshold: float = 0.5) -> np.ndarray:
    """(N, T): intersection over union of the map's region above `threshold` and the mask."""
    maps, masks = _maps_and_masks(maps, masks)
    region = (maps >= threshold) & (maps > 0)
    union = (region | masks).sum(axis=(2, 3))
    return _where_evidence((region & masks).sum(axis=(2, 3)) / np.maximum(union, 1), masks)


def chance(masks, tolerance: int = 0) -> np.ndarray:
    """(N, T): the mask's share of the frame, what a uniformly random map scores on energy
    inside the mask; grown by `tolerance` pixels, its chance on the pointing game."""
    masks = np.asarray(masks, bool)
    return _where_evidence(_grow(masks, int(tolerance)).mean(axis=(2, 3)), masks)


def localization(maps, masks, threshold: float = 0.5, tolerance: int | None = None) -> dict:
    """Per clip (N,): the mean over the frames that have evidence of each localization score,
    and their chance levels ("chance" for energy inside, "pointing_chance" for the pointing
    game). tolerance: the pointing game's, in pixels (default `pointing_tolerance(H)`)."""
    maps, masks = _maps_and_masks(maps, masks)
    tolerance = pointing_tolerance(maps.shape[2]) if tolerance is None else int(tolerance)
    per_frame = {"pointing_game": pointing_game(maps, masks, tolerance),
                 "energy_inside": energy_inside(maps, masks), "iou": iou(maps, masks, threshold),
                 "chance": chance(masks), "pointing_chance": chance(masks, tolerance)}
    return {name: _mean_over_frames(values) for name, values in per_frame.items()}


def _mean_over_frames(values: np.ndarray) -> np.ndarray:
    counts = np.isfinite(values).sum(axis=1)
    total = np.nansum(values, axis=1)
    return np.divide(total, counts, out=np.full(len(values), np.nan), where=counts > 0)


def evidence_response(explainer: Explainer, clips, clips_without_evidence, masks,
                      layer: str | None = None) -> dict:
    """Where an inner layer responds to the evidence, scored like a map (`localization`).

    The response is |a(clip) - a(clip without its evidence)| summed over the layer's
    channels, per frame (per time step of a Conv3D layer, brought to the frames), upsampled
    to the frame: the same scenes rendered with the evidence
    hidden (``data.synthetic_clip(..., hidden=("evidence",))``). A layer whose response
    sits on the evidence can be weighted into a map that lands there; a layer whose cells
    all change carries the evidence everywhere, and no weighting of its channels can say
    where it is. Returns `localization`'s scores and the response maps ("maps").
    """
    with_evidence = explainer.activations(clips, layer)
    without = explainer.activations(clips_without_evidence, layer)
    response = np.abs(with_evidence - without).sum(axis=-1)
    maps = normalize_per_frame(upsample(to_frames(response, explainer.frames), explainer.size))
    return localization(maps, masks) | {"maps": maps}


def grid_bound(masks, cells: int) -> dict:
    """The best a map at a grid of `cells` x `cells` can score: the mask itself averaged
    over the grid's cells and upsampled as CAMs are (`localization`'s scores)."""
    masks = np.asarray(masks, bool)
    n, t, height, width = masks.shape
    if height % cells or width % cells:
        raise ValueError(f"a grid of {cells} cells must divide the frames ({height}x{width})")
    coarse = masks.reshape(n, t, cells, height // cells, cells, width // cells).mean(axis=(3, 5))
    return localization(normalize_per_frame(np.maximum(upsample(coarse, height), 0)), masks)


# ---------------------------------------------------------------------------- when

def _importance_and_events(importance, events) -> tuple[np.ndarray, np.ndarray]:
    importance = np.asarray(importance, np.float64)
    events = np.asarray(events)
    if importance.ndim != 2 or importance.shape != events.shape:
        raise ValueError(f"importance and events must both be (N, T) of the same shape, got "
                         f"importance {importance.shape} and events {events.shape}")
    if not np.isfinite(importance).all():
        raise ValueError("importance must be finite (frame importances, as "
                         "methods.frames.frame_importance returns them)")
    return importance, events.astype(bool)


def _where_event(values: np.ndarray, events: np.ndarray) -> np.ndarray:
    """NaN for clips without an event (normal clips): there is no moment to find."""
    return np.where(events.any(axis=1), values, np.nan)


def temporal_pointing_game(importance, events) -> np.ndarray:
    """(N,): does the frame ranked first hold the event? With tied first frames, the share
    of them that do (so a constant importance scores chance). NaN for a clip without event."""
    importance, events = _importance_and_events(importance, events)
    first = importance == importance.max(axis=1, keepdims=True)
    return _where_event((first & events).sum(axis=1) / first.sum(axis=1), events)


def temporal_energy_share(importance, events) -> np.ndarray:
    """(N,): the share of the positive importance on the event's frames. A frame whose
    removal raises the class score (negative importance) counts as none; a clip with no
    positive importance scores 0. NaN for a clip without event."""
    importance, events = _importance_and_events(importance, events)
    positive = np.maximum(importance, 0)
    total = positive.sum(axis=1)
    share = np.divide((positive * events).sum(axis=1), total, out=np.zeros_like(total),
                      where=total > 0)
    return _where_event(share, events)


def temporal_chance(events) -> np.ndarray:
    """(N,): the event's share of the clip's frames: what a random frame order scores on the
    temporal pointing game, and a constant importance on the energy share."""
    events = np.asarray(events, bool)
    if events.ndim != 2:
        raise ValueError(f"events must be (N, T), got {events.shape}")
    return _where_event(events.mean(axis=1), events)


def temporal_localization(importance, events) -> dict:
    """Per clip (N,): "temporal_pointing_game", "temporal_energy_share" and their chance
    level "temporal_chance"; NaN for clips without event (average with np.nanmean)."""
    return {"temporal_pointing_game": temporal_pointing_game(importance, events),
            "temporal_energy_share": temporal_energy_share(importance, events),
            "temporal_chance": temporal_chance(events)}


def _located(run, score: str) -> np.ndarray:
    """A localization column: one of `localization`'s per-clip scores of the method's maps."""
    return run.once("localization", lambda: localization(run.maps, run.masks))[score]


register(Metric("pointing game", pointing_game, "localization",
                "is each frame's map peak on the evidence mask (within `pointing_tolerance` pixels)?",
                "higher (chance: the grown mask's share of the frame)", "pointing_game",
                lambda run: _located(run, "pointing_game")))
register(Metric("energy inside", energy_inside, "localization", "the share of each frame's map mass on the evidence",
                "higher (chance: the mask's share)", "energy_inside", lambda run: _located(run, "energy_inside")))
register(Metric("IoU", iou, "localization", "overlap of the map above 0.5 with the evidence", "higher", "iou",
                lambda run: _located(run, "iou")))
register(Metric("temporal pointing game", temporal_pointing_game, "localization",
                "does the frame that a frame importance ranks first hold the event?",
                "higher (chance: the event's share of the frames)"))
register(Metric("temporal energy share", temporal_energy_share, "localization",
                "the share of a frame importance's positive mass on the event's frames",
                "higher (chance: the event's share of the frames)"))
register(Metric("grid bound", grid_bound, "localization",
                "the best localization any map at a layer's grid can reach", "a ceiling, not a score"))
register(Metric("evidence response", evidence_response, "localization",
                "where an inner layer's activations change when the evidence is removed, scored as a map",
                "higher: that layer can localize", score="the layer's activations",
                memory="the layer's activations for the clips, twice"))
