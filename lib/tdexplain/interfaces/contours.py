"""Contours of activation maps at several intensity levels, nested as data, tracked over frames.

The paper drew OpenCV contours of Grad-CAM maps because they reveal low-activation areas a
heat map hides (its Figure 7), and named two flaws: nested contours are confusing, and a
contour does not say how strong its area is. Here every contour carries its level, its peak
and mean activation, and its parent at the next lower level; `draw` encodes the level in
colour and thickness and can label each region with its peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from matplotlib import colormaps

__all__ = ["HEAT_CMAP", "DEFAULT_LEVELS", "AUTO_LEVELS", "Contour", "choose_levels", "extract", "track", "fill_polygon",
           "level_color", "draw", "draw_text"]

DEFAULT_LEVELS = (0.25, 0.5, 0.75)
# The workbook's one heat colormap, of contours and of every heat map (`viz`): inferno's reds and
# yellows stand out on the synthetic scenes' teal walls and floors and green clothes (viridis
# melted into them), it is perceptually uniform, and it reads with colour-vision deficiencies.
HEAT_CMAP = "inferno"
AUTO_LEVELS = ("otsu", "quantiles")


@dataclass
class Contour:
    """One connected region of ``heatmap >= level``.

    polygon: (K, 2) int x, y points of its outer boundary. area: pixels inside. centroid:
    (x, y). peak, mean: the activation inside. parent: index (in the list `extract` returns)
    of the region at the next lower level that contains it, or None at the lowest level.
    """

    level: float
    polygon: np.ndarray
    area: int
    centroid: tuple
    peak: float
    mean: float
    parent: int | None = None
    children: list = field(default_factory=list)
    track_id: int | None = None

    def summary(self) -> dict:
        """The JSON-friendly numbers of the region."""
        return {"level": round(float(self.level), 4), "area": int(self.area),
                "centroid": [round(float(c), 2) for c in self.centroid],
                "peak": round(float(self.peak), 4), "mean": round(float(self.mean), 4),
                "parent": self.parent, "track_id": self.track_id}


def _check_heatmap(heatmap) -> np.ndarray:
    array = np.asarray(heatmap, np.float32)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"heatmap must be a 2-D map (H, W), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("heatmap contains NaN or infinite values")
    return array


def choose_levels(heatmap, method: str = "otsu", count: int = 3) -> tuple:
    """Levels from the map itself: around Otsu's threshold, or quantiles of the non-zero values."""
    array = _check_heatmap(heatmap)
    peak = array.max()
    if peak <= array.min():
        return ()
    scaled = (array - array.min()) / (peak - array.min())
    if method == "otsu":
        threshold, _ = cv2.threshold((scaled * 255).astype(np.uint8), 0, 255,
                                     cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        middle = max(threshold / 255.0, 1e-3)
        levels = np.linspace(middle / 2, (1 + middle) / 2, count)
    elif method == "quantiles":
        positive = scaled[scaled > 0]
        levels = np.quantile(positive, np.linspace(0.5, 0.95, count))
    else:
        raise ValueError(f"levels method must be one of {AUTO_LEVELS}, got {method!r}")
    return tuple(float(v) for v in np.unique(np.round(levels, 4)) if 0 < v < 1)


def extract(heatmap, levels=DEFAULT_LEVELS, min_area: int = 4) -> list[Contour]:
    """Contours of a normalized map (H, W) at each level, lowest level first.

    levels: values in (0, 1), or "otsu" / "quantiles" to choose them from the map. Regions
    smaller than `min_area` pixels are dropped. A map that is all zero or constant has no
    contour (there is no structure to outline).
    """
    array = _check_heatmap(heatmap)
    if isinstance(levels, str):
        levels = choose_levels(array, levels)
    levels = sorted(float(v) for v in levels)
    if any(not 0 < v <= 1 for v in levels):
        raise ValueError(f"levels must be in (0, 1], got {levels}")
    if array.max() <= array.min():
        return []
    contours: list[Contour] = []
    previous_labels, previous_index = None, {}
    for level in levels:
        inside = (array >= level).astype(np.uint8)
        count, labels = cv2.connectedComponents(inside, connectivity=8)
        index = {}
        for region in range(1, count):
            region_mask = labels == region
            area = int(region_mask.sum())
            if area < min_area:
                continue
            outline, _ = cv2.findContours(region_mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                          cv2.CHAIN_APPROX_SIMPLE)
            ys, xs = np.nonzero(region_mask)
            values = array[region_mask]
            parent = None
            if previous_labels is not None:
                parent = previous_index.get(int(previous_labels[ys[0], xs[0]]))
            contour = Contour(level=level, polygon=max(outline, key=cv2.contourArea)[:, 0, :],
                              area=area, centroid=(float(xs.mean()), float(ys.mean())),
                              peak=float(values.max()), mean=float(values.mean()), parent=parent)
            index[region] = len(contours)
            if parent is not None:
                contours[parent].children.append(len(contours))
            contours.append(contour)
        previous_labels, previous_index = labels, index
    return contours


def track(heatmaps, level: float = 0.5, min_area: int = 4, max_distance: float | None = None):
    """Link the regions at `level` of successive frames (T, H, W) into tracks.

    A region continues the track of the previous frame's region it overlaps most, or, with no
    overlap, of the nearest one within `max_distance` pixels (default: a tenth of the frame's
    diagonal). Returns, per frame, the list of contours with their `track_id` set, and the
    tracks as {id: [(frame, centroid, area, peak), ...]}.
    """
    maps = np.asarray(heatmaps, np.float32)
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must be (T, H, W), got shape {maps.shape}")
    if max_distance is None:
        max_distance = 0.1 * float(np.hypot(*maps.shape[1:]))
    per_frame, tracks = [], {}
    previous: list[tuple[Contour, np.ndarray]] = []
    for t, heatmap in enumerate(maps):
        regions = extract(heatmap, levels=(level,), min_area=min_area)
        current = []
        taken = set()
        for region in regions:
            mask = fill_polygon(region.polygon, heatmap.shape) & (heatmap >= level)
            best, best_overlap, best_distance = None, 0, max_distance
            for earlier, earlier_mask in previous:
                if earlier.track_id in taken:
                    continue
                overlap = int((mask & earlier_mask).sum())
                distance = float(np.hypot(*np.subtract(region.centroid, earlier.centroid)))
                if overlap > best_overlap or (best_overlap == 0 and overlap == 0
                                              and distance <= best_distance):
                    best, best_overlap, best_distance = earlier, overlap, distance
            region.track_id = best.track_id if best is not None else len(tracks)
            taken.add(region.track_id)
            tracks.setdefault(region.track_id, []).append(
                (t, region.centroid, region.area, region.peak))
            current.append((region, mask))
        per_frame.append(regions)
        previous = current
    return per_frame, tracks


def fill_polygon(polygon: np.ndarray, shape) -> np.ndarray:
    """A boolean mask of `shape` (H, W), True inside the polygon (a contour's outline)."""
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [polygon.astype(np.int32)], 1)
    return canvas.astype(bool)


def level_color(level: float, cmap: str = HEAT_CMAP) -> tuple:
    """RGB 0..255 of a level, from a perceptually uniform, colour-blind-safe colormap: from its
    brighter part (the lowest level of inferno is a red, not a dark purple), so every line
    reads on dark floors and stands apart from the heat beneath it."""
    r, g, b, _ = colormaps[cmap](0.4 + 0.6 * float(level))
    return int(r * 255), int(g * 255), int(b * 255)


def draw(frame, contours: list[Contour], labels: bool = False, cmap: str = HEAT_CMAP,
         scale: float | None = None) -> np.ndarray:
    """A copy of the RGB frame (H, W, 3) with the contours drawn: colour and thickness grow with
    the level, each line has a dark halo so it reads on bright and dark frames, and with
    `labels` each region of the highest level shows its peak value. The input is not changed.
    """
    image = np.array(frame, dtype=np.uint8, copy=True)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"frame must be (H, W, 3) RGB, got shape {image.shape}")
    scale = scale if scale is not None else max(1.0, image.shape[0] / 128)
    for contour in sorted(contours, key=lambda c: c.level):
        thickness = max(1, round(scale * (0.5 + 1.5 * contour.level)))
        points = [contour.polygon.reshape(-1, 1, 2).astype(np.int32)]
        cv2.polylines(image, points, True, (0, 0, 0), thickness + max(1, round(scale)), cv2.LINE_AA)
        cv2.polylines(image, points, True, level_color(contour.level, cmap), thickness, cv2.LINE_AA)
    if labels and contours:
        top = max(c.level for c in contours)
        for contour in (c for c in contours if c.level == top):
            origin = (int(contour.centroid[0]), int(contour.centroid[1]))
            draw_text(image, f"{contour.peak:.2f}", origin, 0.3 * scale,
                      max(1, round(scale)), max(2, round(2 * scale)))
    return image


def draw_text(image: np.ndarray, text: str, origin, font_scale: float, thickness: int,
              halo: int) -> np.ndarray:
    """White text with a black halo, legible on dark and bright frames; draws in place."""
    for color, width in (((0, 0, 0), halo), ((255, 255, 255), thickness)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, width,
                    cv2.LINE_AA)
    return image
