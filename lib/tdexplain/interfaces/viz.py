"""Figures of clips, masks and explanations, in one style for the whole project."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..engine.registry import REGISTRY
from . import contours as contour_lib
from .contours import HEAT_CMAP

__all__ = ["FIGURES_DIR", "EVIDENCE_COLOR", "EVENT_COLOR", "setup_style", "save_figure", "overlay_mask",
           "as_image", "clip_grid", "shade_events", "clip_timeline", "frame_heatmap",
           "heat_overlay", "explanation_figure", "outline_evidence", "heat_colorbar", "highlighted_lines",
           "HIGHLIGHT_COLORS", "RANKINGS", "ranking_figure", "render_clip", "explained_clip_frames", "save_gif", "save_mp4"]

# The repository's reports/figures/, wherever the notebook or script runs from (notebooks run
# in notebooks/, and must not leave a notebooks/reports/ behind). An installed package has no
# repository around it: reports/figures/ under the working directory.
_CHECKOUT = Path(__file__).resolve().parents[3]
FIGURES_DIR = (_CHECKOUT / "reports" / "figures" if (_CHECKOUT / "pyproject.toml").is_file()
               else Path("reports") / "figures")
EVIDENCE_COLOR = np.array([0.2, 0.6, 1.0])  # the evidence's outline: azure, in no scene and not in the heat colormap
EVENT_COLOR = "#d62728"  # the frames that hold the event: outlined, and shaded in timelines


def setup_style() -> None:
    """The project's matplotlib style: small, clean, readable by color-blind people."""
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
        "font.size": 9, "axes.titlesize": 9, "axes.spines.top": False,
        "axes.spines.right": False, "image.cmap": HEAT_CMAP,
    })


def save_figure(fig, name: str, folder=None) -> Path:
    """Save `fig` as PNG into ``reports/figures/`` (or `folder`) and return the path."""
    folder = Path(folder) if folder is not None else FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path)
    return path


def _edge(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch a pixel outside it (4-neighbours, the frame's border too)."""
    mask = np.asarray(mask, bool)
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inside


def overlay_mask(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """The frame (H, W, 3, 0..255 or [0, 1]) with the mask outlined in EVIDENCE_COLOR and its
    inside lightly tinted; returns float RGB in [0, 1]."""
    image = as_image(frame)
    mask = np.asarray(mask, bool)
    marked = np.where(mask[..., None], (1 - alpha) * image + alpha * EVIDENCE_COLOR, image)
    marked[_edge(mask)] = EVIDENCE_COLOR
    return np.clip(marked, 0, 1)


def as_image(frame: np.ndarray) -> np.ndarray:
    """A frame as float RGB in [0, 1], whether it holds 0..255 pixels or is already in [0, 1]."""
    frame = np.asarray(frame, np.float32)
    return np.clip(frame / 255.0 if frame.max() > 1.0 else frame, 0, 1)


def clip_grid(rows, row_titles=None, frame_titles=None, title=None, scale: float = 1.3):
    """A grid with one clip (T, H, W, 3, 0..255 or float [0, 1]) per row; returns the figure."""
    rows = [np.asarray(r) for r in rows]
    frames = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), frames, figsize=(scale * frames, scale * len(rows)),
                             squeeze=False)
    for i, clip in enumerate(rows):
        for t in range(frames):
            ax = axes[i, t]
            ax.set_xticks([]), ax.set_yticks([])
            if t >= len(clip):
                ax.axis("off")
                continue
            ax.imshow(as_image(clip[t]))
            if i == 0 and frame_titles is not None:
                ax.set_title(frame_titles[t])
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def shade_events(ax, events) -> None:
    """Shade the event's frames (events: one bool per frame) on an axis whose x is the frame,
    behind what the axis draws."""
    for t in np.flatnonzero(events):
        ax.axvspan(t - 0.5, t + 0.5, color=EVENT_COLOR, alpha=0.15, lw=0, zorder=0)


def _check_masks(name: str, masks, shape: tuple) -> None:
    """None, or one evidence mask per frame of a clip of `shape` (T, H, W)."""
    if masks is not None and np.shape(masks) != shape:
        raise ValueError(f"{name} must be one evidence mask per frame, {shape}, got {np.shape(masks)}")


def _checked_events(events, frames: int) -> np.ndarray:
    values = np.asarray(events)
    if values.shape != (frames,):
        raise ValueError(f"events must be one bool per frame, ({frames},), got {values.shape}")
    if values.dtype != bool and not np.isin(values, (0, 1)).all():
        raise ValueError(f"events must be one bool per frame (True in the event), got values "
                         f"{np.unique(values)}")
    return values.astype(bool)


def clip_timeline(frames, events, mask=None, title=None, scale: float = 1.3):
    """A clip's frames (T, H, W, 3) in a row, the event's frames outlined, over its timeline:
    the event's span shaded and, with a mask (T, H, W), the evidence outlined in blue on the
    frames and its share of each frame as grey bars. The ground truth for when beside the ground truth for where; returns the figure."""
    frames = np.asarray(frames)
    count = len(frames)
    events = _checked_events(events, count)
    _check_masks("mask", mask, frames.shape[:3])
    fig, axes = plt.subplots(2, count, figsize=(scale * count, scale * 1.9), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 0.9]})
    for t, ax in enumerate(axes[0]):
        ax.imshow(as_image(frames[t]) if mask is None else overlay_mask(frames[t], mask[t], alpha=0))
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"t={t}", color=EVENT_COLOR if events[t] else "black")
        for spine in ax.spines.values():
            spine.set_visible(bool(events[t]))
            spine.set_color(EVENT_COLOR)
            spine.set_linewidth(3)
    grid = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    timeline = fig.add_subplot(grid[1, :])
    shade_events(timeline, events)
    if mask is not None:
        share = np.asarray(mask, bool).reshape(count, -1).mean(axis=1)
        timeline.bar(np.arange(count), 100 * share, color="0.35", width=0.6)
        timeline.set_ylabel("evidence\n% of frame")
    onset = np.flatnonzero(events)
    label = f"event: frames {onset[0]}-{onset[-1]}" if onset.size else "no event"
    timeline.text(0.01, 0.92, label, transform=timeline.transAxes, va="top", color=EVENT_COLOR)
    timeline.set_xlim(-0.5, count - 0.5)
    timeline.set_xticks(np.arange(count))
    timeline.set_xlabel("frame")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def frame_heatmap(values, events, ax=None, row_titles=None, title=None, colorbar: str | None = None,
                  cmap: str = HEAT_CMAP, signed: bool = False):
    """Per-frame values of several clips, (N, T), as a grid (one row per clip, one column per
    frame) with each clip's event frames, events (N, T) bool, outlined: a frame ranking read
    against the ground truth for when. `signed` centres a diverging colour map on 0 (drops
    that can be negative); `colorbar`, a label, adds a colour bar. Returns the axis."""
    values = np.asarray(values, float)
    if values.ndim != 2:
        raise ValueError(f"values must be (clips, frames), got shape {values.shape}")
    events = np.asarray(events)
    if len(events) != len(values):
        raise ValueError(f"events must have one row per clip ({len(values)}), got {len(events)}")
    events = np.stack([_checked_events(row, values.shape[1]) for row in events])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 0.45 * values.shape[1], 0.8 + 0.25 * len(values)))
    limits = {}
    if signed:  # a diverging map, centred on 0 (NaN ignored)
        finite = np.abs(values[np.isfinite(values)])
        largest = finite.max() if finite.size and finite.max() > 0 else 1.0
        limits = dict(cmap="RdBu_r", vmin=-largest, vmax=largest)
    image = ax.imshow(values, aspect="auto", **({"cmap": cmap} | limits))
    rows, columns = np.nonzero(events)
    for color, width in (("black", 3.0), ("white", 1.4)):  # a white square with a dark halo: reads on any cell
        ax.scatter(columns, rows, marker="s", s=150, facecolors="none", edgecolors=color, linewidths=width)
    ax.set_xticks(np.arange(values.shape[1]))
    ax.set_xlabel("frame")
    if row_titles is not None:
        ax.set_yticks(np.arange(len(values)), row_titles)
    if title:
        ax.set_title(title)
    if colorbar is not None:
        ax.figure.colorbar(image, ax=ax, label=colorbar, shrink=0.9)
    return ax


# --------------------------------------------------------------------------- explanations

def heat_overlay(frame, heatmap, alpha: float = 0.45, cmap: str = HEAT_CMAP, mask=None) -> np.ndarray:
    """The frame (H, W, 3, 0..255) under a coloured heat map (H, W) in [0, 1]; uint8 RGB; with
    `mask` (H, W), the evidence outlined in EVIDENCE_COLOR, to judge the map against.

    The map's colour is weighted by the map itself, so zero stays the plain frame. The colour
    scale saturates at the map's 99th percentile (Captum's `outlier_perc` rule): a pixel
    attribution puts its largest values on a handful of pixels and would otherwise show as a
    few faint dots, while a smooth CAM changes only in its top 1%."""
    from matplotlib import colormaps

    image = as_image(frame)
    heat = np.clip(np.asarray(heatmap, np.float32), 0, None)
    top = np.quantile(heat, 0.99)
    heat = np.clip(heat / top, 0, 1) if top > 0 else np.clip(heat / max(heat.max(), 1e-12), 0, 1)
    colors = colormaps[cmap](heat)[..., :3]
    weight = alpha * heat[..., None] ** 0.5
    blended = np.clip((1 - weight) * image + weight * colors, 0, 1)
    if mask is not None:
        blended[_edge(mask)] = EVIDENCE_COLOR
    return (255 * blended).astype(np.uint8)


def _method_title(name: str, layer: str | None) -> str:
    method = REGISTRY.get(name)
    if method is None:  # a map that is not a registered method's
        return name.replace("_", " ")
    return method.title + (f"\n@ {layer}" if layer and method.uses_layer else "")


def explanation_figure(clip, explanation, index: int = 0, methods=None, contour_method=None,
                       levels=contour_lib.DEFAULT_LEVELS, importance=None, events=None, masks=None,
                       cmap: str = HEAT_CMAP, scale: float = 1.25):
    """Per-frame grid of one explained clip: the frames, one heat-map row per method, a row of
    contours (of `contour_method`, default the first method), and the frame importance (T,)
    as bars under the frames, with the event's frames (`events`, one bool per frame) named
    in the frames' titles and shaded behind the bars. `masks` (T, H, W): the evidence, outlined
    on every frame and map. The title says the class and its probability, and each row's label
    its method (with its layer for a CAM); a colour bar gives the heat's scale."""
    clip = np.asarray(clip)
    methods = list(methods or explanation.maps)
    contour_method = contour_method or methods[0]
    frames = clip.shape[0]
    in_event = np.zeros(frames, bool) if events is None else _checked_events(events, frames)
    rows = 2 + len(methods) + (importance is not None)
    heights = [1] * (rows - (importance is not None)) + ([0.8] if importance is not None else [])
    fig, axes = plt.subplots(rows, frames, figsize=(scale * frames, scale * sum(heights) + 0.4),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    target = int(explanation.target[index])
    name = explanation.class_names[target]
    probability = float(explanation.probabilities[index, target])
    layered = [m for m in methods if REGISTRY.get(m) is not None and REGISTRY[m].uses_layer]
    fig.suptitle(f"explained: class {name} (p = {probability:.2f})"
                 + (f"; {', '.join(REGISTRY[m].title for m in layered)} at layer {explanation.layer}" if layered else "")
                 + ("; blue outline: the evidence" if masks is not None else ""))
    _check_masks("masks", masks, clip.shape[:3])
    masks = [None] * frames if masks is None else np.asarray(masks, bool)
    for t in range(frames):
        axes[0, t].imshow(as_image(clip[t]) if masks[t] is None else overlay_mask(clip[t], masks[t], alpha=0))
        axes[0, t].set_title(f"frame {t}" + (" (event)" if in_event[t] else ""),
                             color=EVENT_COLOR if in_event[t] else "black")
        for row, method in enumerate(methods, start=1):
            axes[row, t].imshow(heat_overlay(clip[t], explanation.maps[method][index, t], cmap=cmap, mask=masks[t]))
        found = contour_lib.extract(explanation.maps[contour_method][index, t], levels=levels)
        axes[len(methods) + 1, t].imshow(contour_lib.draw(clip[t].astype(np.uint8), found, cmap=cmap))
    labels = ["frames"] + [_method_title(m, explanation.layer) for m in methods] + [
        "contours\n" + _method_title(contour_method, None)]
    for row, label in enumerate(labels):
        axes[row, 0].set_ylabel(label)
        for ax in axes[row]:
            ax.set_xticks([]), ax.set_yticks([])
    if importance is not None:
        shade_events(_importance_bars(fig, axes[-1], np.asarray(importance)), in_event)
    fig.tight_layout()
    heat_colorbar(fig, axes[1:len(methods) + 1].ravel().tolist(), cmap)
    return fig


def outline_evidence(ax, mask) -> None:
    """Draw the evidence mask (H, W) as a blue outline on an axis that shows a frame or a map."""
    mask = np.asarray(mask, float)
    if mask.any():
        ax.contour(mask, levels=[0.5], colors=[tuple(EVIDENCE_COLOR)], linewidths=0.8)


def heat_colorbar(fig, axes, cmap: str = HEAT_CMAP, label: str = "map value, per frame\n(0 to its top 1%)") -> None:
    """A colour bar beside `axes` (placed after tight_layout, taking no room from them). The
    default label is heat_overlay's: each frame's map is scaled to its own top 1%, so the bar
    says where a value lies within its frame, not how frames compare."""
    from matplotlib.cm import ScalarMappable

    boxes = [ax.get_position() for ax in axes]  # placed beside them, taking no room from them
    right, bottom, top = max(b.x1 for b in boxes), min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    bar = fig.colorbar(ScalarMappable(cmap=cmap), cax=fig.add_axes((right + 0.01, bottom, 0.012, top - bottom)))
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)


def _importance_bars(fig, axes_row, importance):
    """Replace a row of axes by one bar chart of per-frame importance; returns its axis."""
    grid = axes_row[0].get_gridspec()
    for ax in axes_row:
        ax.remove()
    ax = fig.add_subplot(grid[-1, :])
    colors = ["#d95f02" if v >= 0 else "#7570b3" for v in importance]
    ax.bar(np.arange(len(importance)), importance, color=colors)
    ax.set_xlim(-0.5, len(importance) - 0.5)
    ax.set_xticks(np.arange(len(importance)))
    ax.set_ylabel("frame\nimportance")
    ax.axhline(0, color="0.3", lw=0.8)
    return ax


HIGHLIGHT_COLORS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def highlighted_lines(ax, series: dict, highlight, dashed=(), legend: bool = True) -> None:
    """Many curves on one axis without more series than colours: every curve of `series`
    ({name: (x, y)}) in light grey, the few named in `highlight` (at most six) in distinct
    colours, labelled; `dashed` names are drawn dashed. The legend, of the highlighted only,
    sits outside the axis."""
    highlight = list(dict.fromkeys([highlight] if isinstance(highlight, str) else highlight))
    highlight = [name for name in highlight if name in series]
    if len(highlight) > len(HIGHLIGHT_COLORS):
        raise ValueError(f"at most {len(HIGHLIGHT_COLORS)} highlighted curves, got {len(highlight)}")
    for name, (x, y) in series.items():
        if name not in highlight:
            ax.plot(x, y, color="0.8", lw=0.8, ls="--" if name in dashed else "-", zorder=1)
    for color, name in zip(HIGHLIGHT_COLORS, highlight):
        x, y = series[name]
        ax.plot(x, y, color=color, lw=1.8, ls="--" if name in dashed else "-", label=name, zorder=2)
    if len(series) > len(highlight):
        ax.plot([], [], color="0.8", lw=0.8, label=f"the {len(series) - len(highlight)} others")
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


RANKINGS = ("higher", "lower", "near 0")


def ranking_figure(table, better: dict, title: str | None = None):
    """Methods (rows) against measures (columns) of a table: each cell coloured by the method's
    rank in its column (`better[column]`: "higher", "lower", or "near 0" for a correlation with
    a randomized model), the value written in it. One picture of a ranking, with its numbers;
    returns the figure."""
    import pandas as pd

    wrong = {c: b for c, b in better.items() if b not in RANKINGS}
    if wrong:
        raise ValueError(f"better must say one of {RANKINGS} for each column, got {wrong}")
    columns = list(better)
    values = table[columns].astype(float)
    ranks = pd.DataFrame({c: (values[c].abs() if better[c] == "near 0" else values[c]).rank(
        ascending=better[c] != "higher") for c in columns})
    # Each column's ranks from best (0) to worst (1) of the methods it ranks: a column with
    # methods "not run" still spans the whole scale.
    place = ((ranks - 1) / (ranks.count() - 1).clip(lower=1)).to_numpy()
    fig, ax = plt.subplots(figsize=(1.2 * len(columns) + 2.5, 0.32 * len(values) + 1.2))
    image = ax.imshow(place, cmap="Greens_r", aspect="auto", vmin=0, vmax=1.15)
    dark = place <= 1 / 3  # white text on the darkest cells
    for (row, column), value in np.ndenumerate(values.to_numpy()):
        ax.text(column, row, "not run" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                fontsize=7, color="white" if dark[row, column] else "black")
    ax.set_xticks(range(len(columns)), [f"{c}\n({better[c]} better)" for c in columns], fontsize=7)
    ax.set_yticks(range(len(values)), values.index, fontsize=7)
    ax.tick_params(length=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, ticks=[0, 1])
    bar.ax.set_yticklabels(["best", "worst"])
    bar.set_label("place in the column, among the methods it ranks")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def render_clip(clip, heatmaps, caption: str = "", timeline=None, timeline_label: str = "",
                levels=contour_lib.DEFAULT_LEVELS, cmap: str = HEAT_CMAP) -> np.ndarray:
    """Frames ready to export (T, H + strip, W, 3) uint8: heat map, contours, a caption, and
    under each frame a timeline strip of `timeline` (T,) values in [0, 1] (for example the
    class probability) with the current frame marked."""
    import cv2

    clip = np.asarray(clip)
    frames, height, width = clip.shape[:3]
    strip = max(16, height // 6)
    scale = max(1.0, width / 256)
    out = np.zeros((frames, height + strip, width, 3), np.uint8)
    for t in range(frames):
        image = heat_overlay(clip[t], heatmaps[t], cmap=cmap)
        image = contour_lib.draw(image, contour_lib.extract(heatmaps[t], levels=levels), cmap=cmap)
        if caption:
            contour_lib.draw_text(image, caption, (4, int(12 * scale)), 0.35 * scale,
                                  max(1, round(scale)), max(1, round(3 * scale)))
        out[t, :height] = image
        out[t, height:] = 40
        if timeline is not None:
            values = np.clip(np.asarray(timeline, np.float32), 0, 1)
            xs = np.linspace(2, width - 3, len(values)).astype(int)
            ys = (height + strip - 3 - values * (strip - 6)).astype(int)
            points = np.stack([xs, ys], axis=1).reshape(-1, 1, 2)
            cv2.polylines(out[t], [points], False, (240, 200, 60), 1, cv2.LINE_AA)
            cv2.line(out[t], (int(xs[min(t, len(xs) - 1)]), height),
                     (int(xs[min(t, len(xs) - 1)]), height + strip - 1), (255, 255, 255), 1)
            if timeline_label:
                cv2.putText(out[t], timeline_label, (3, height + 10), cv2.FONT_HERSHEY_SIMPLEX,
                            0.3 * scale, (220, 220, 220), 1, cv2.LINE_AA)
    return out


def explained_clip_frames(clip, explanation, index: int = 0, method: str | None = None,
                          timeline=None, levels=contour_lib.DEFAULT_LEVELS) -> np.ndarray:
    """Frames of one explained clip ready for `save_gif` / `save_mp4`: the map of `method`
    (default the first), its contours, the class and probability, and a timeline (for example
    `temporal.probability_over_time`) under each frame."""
    method = method or next(iter(explanation.maps))
    target = int(explanation.target[index])
    name = explanation.class_names[target]
    caption = f"{name} {explanation.probabilities[index, target]:.2f} {method}"
    return render_clip(clip, explanation.maps[method][index], caption=caption, timeline=timeline,
                       timeline_label=f"p({name})" if timeline is not None else "", levels=levels)


def save_gif(path, frames, fps: float = 4.0) -> Path:
    """Write RGB frames (T, H, W, 3) as a looping GIF (Pillow); OpenCV and browsers read it."""
    from PIL import Image

    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3) RGB, got {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def save_mp4(path, frames, fps: float = 4.0) -> Path:
    """Write RGB frames (T, H, W, 3) as an H.264 MP4 (see `data.write_video`)."""
    from ..workbook.data import write_video

    return write_video(path, frames, fps=fps)
