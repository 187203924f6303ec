"""Explaining a whole video file: sliding windows, per-window prediction and explanation,
and the files a reviewer reads (summary.json, overlay.mp4, timeline.png)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from ..engine import graphs, registry, shapes
from ..engine.explainer import Explainer
from ..methods import DEFAULT_METHOD
from ..methods.frames import frame_importance
from ..workbook import data, models
from . import contours, viz

__all__ = ["SHORT_POLICIES", "WINDOW_SECONDS", "Window", "frame_rate", "window_and_stride", "plan_windows",
           "DEMO_NOTE", "demo_note", "read_held_input", "check_method_options", "explain_video",
           "windows_explained", "normal_class", "timeline_figure"]

log = logging.getLogger(__name__)
SHORT_POLICIES = ("pad", "error")
# The default window: the span of video the demo model reads as one clip (its training clips
# tell 3 s of a scene in 8 frames; a window of 8 frames of 8 fps video plays a fight at a third
# of its speed, and the model calls it normal).
WINDOW_SECONDS = 3.0


@dataclass
class Window:
    index: int
    first: int  # first and last video frame of the window
    last: int
    picked: np.ndarray  # the video frames the model sees (T,)


def frame_rate(fps: float) -> float:
    """A file's frame rate, or the samples' 8 fps for a file that gives none."""
    return fps if fps > 0 else 8.0


def window_and_stride(fps: float, window: int | None = None, stride: int | None = None) -> tuple:
    """`window` and `stride` in video frames, each by default WINDOW_SECONDS and one second of
    the video at `fps`."""
    per_second = frame_rate(fps)
    window = max(1, round(WINDOW_SECONDS * per_second)) if window is None else window
    stride = max(1, round(per_second)) if stride is None else stride
    return window, stride


def plan_windows(frame_count: int, frames: int, window: int, stride: int, short: str) -> list[Window]:
    """Windows of `window` video frames every `stride` frames, each sampled to the model's
    `frames`; ``window=0`` means one window over the whole video. A video shorter than one
    window gets one window padded with its last frame (``short="pad"``) or an error."""
    if window == 0 or window >= frame_count:
        if window > frame_count and short == "error":
            raise ValueError(f"the video has {frame_count} frames, fewer than one window of "
                             f"{window}; use --short pad to pad it with its last frame")
        length = frame_count if window == 0 else window
        picked = np.minimum(np.linspace(0, length - 1, frames).round().astype(int), frame_count - 1)
        return [Window(0, 0, min(length, frame_count) - 1, picked)]
    starts = list(range(0, frame_count - window + 1, stride))
    return [Window(i, s, s + window - 1, s + np.linspace(0, window - 1, frames).round().astype(int))
            for i, s in enumerate(starts)]


def _map_to_frame(heatmap: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """A model-resolution map back onto the original frame (undoing the padded resize)."""
    top, left, new_h, new_w = data.content_box(height, width, (size, size), "pad")
    content = heatmap[top:top + new_h, left:left + new_w]
    return cv2.resize(content, (width, height), interpolation=cv2.INTER_LINEAR)


DEMO_NOTE = ("the demo model knows only synthetic scenes, so its answer on other footage means "
             "nothing; explain it with a model trained on your own data (--model on the command line)")


def demo_note(model_path, video) -> str | None:
    """The warning to show next to a verdict when the shipped demo model explains a video that is
    not one of the synthetic sample clips (it answers with full confidence on anything)."""
    if model_path is None or Path(model_path).resolve() != Path(models.DEMO_MODEL).resolve():
        return None
    samples = Path(data.sample_path("clips")).resolve()
    return None if Path(video).resolve().parent == samples else DEMO_NOTE


def read_held_input(name: str, path) -> np.ndarray:
    """The value of the model's input `name` for one sample, from a .npy file (the command
    line's --other-input and the app's fields), or a ValueError naming the input and the file."""
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path} for the input {name!r}: {error}") from error
    if not isinstance(value, np.ndarray):
        value.close()
        raise ValueError(f"{path} for the input {name!r} is an .npz archive; give a .npy file of one array")
    return value


def _held_record(value: np.ndarray) -> dict:
    """What summary.json says of a held input: its shape and the first 16 hex digits of the
    SHA-256 of its values (two runs with different values are told apart)."""
    digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
    return {"shape": list(np.shape(value)), "sha256_16": digest}


def normal_class(class_names) -> str:
    """The class a window is not flagged for: "normal", or the first class of a model without it."""
    return "normal" if "normal" in class_names else class_names[0]


def check_method_options(method: str, options: dict) -> None:
    """The method exists and takes each of `options` (their values are the method's to check):
    before a video is read or a file written."""
    Explainer.check_methods(method)
    registry.check_options(options)
    declared = registry.get(method).options
    if set(options) - set(declared):
        raise TypeError(f"{method} takes no option {', '.join(sorted(set(options) - set(declared)))}; its "
                        f"options: {', '.join(f'{k}={v!r}' for k, v in declared.items()) or 'none'}")


def _plain(value):
    """An option's value as JSON can hold it: a number, text or None, else its type's name."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, (bool, int, float, str, type(None))) else f"<{type(value).__name__}>"


def explain_video(video, out, model_path=models.DEMO_MODEL, method: str = DEFAULT_METHOD,
                  layer: str | None = None, window: int | None = None, stride: int | None = None,
                  target=None, short: str = "pad", progress: bool = True, options: dict | None = None,
                  output=None, clip_input=None, other_inputs=None,
                  explainer: Explainer | None = None) -> dict:
    """Explain a video file window by window; write summary.json, overlay.mp4 and timeline.png
    into `out` and return the summary. `window` and `stride` are in video frames; by default 3 s
    and 1 s of the video (`WINDOW_SECONDS`). Interrupted (Ctrl-C), it saves what was explained,
    marks the summary partial, and raises KeyboardInterrupt again. options: the method's
    options (`Explainer.explain`); their names are checked before anything is read or written,
    their values by the method, at the first window. output, clip_input, other_inputs: which
    output of the model is explained and what its other inputs hold, as in `Explainer`.
    explainer: an `Explainer` already made for the model (its compiled passes are reused: the
    app keeps one per model), instead of loading `model_path`, which the summary then names."""
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
    options = options or {}
    check_method_options(method, options)
    info = data.video_info(video)
    window, stride = window_and_stride(info.fps, window, stride)
    if window < 0 or stride < 1:
        raise ValueError(f"window must be >= 0 and stride >= 1, got window={window}, stride={stride}")
    if explainer is None:
        explainer = Explainer(models.load_model(model_path), output=output, clip_input=clip_input,
                                      other_inputs=other_inputs)
    elif (output, clip_input, other_inputs) != (None, None, None):
        raise ValueError("output, clip_input and other_inputs belong to the explainer: pass them to "
                         "Explainer(model, ...), not to explain_video with explainer=")
    model = explainer.model
    layer = explainer.check_layer(layer, (method,))
    frames, size = explainer.frames, explainer.size
    class_names = explainer.class_names
    if target is not None:
        explainer.check_target(target, 1)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write_test").write_text("")
        (out / ".write_test").unlink()
    except OSError as error:
        raise OSError(f"cannot write into the output folder {out}: {error.strerror or error}") from error

    windows = plan_windows(info.frames, frames, window, stride, short)
    summary = {
        "video": {"path": str(video), "frames": info.frames, "fps": info.fps,
                  "width": info.width, "height": info.height, "duration_seconds": info.duration},
        "model": {"path": str(model_path), "classes": list(class_names), "frames": frames,
                  "size": size, "note": demo_note(model_path, video),
                  "output": shapes.output_names(model)[explainer.video.output],
                  "clip_input": graphs.input_name(explainer.video.clip_tensor),
                  "other_inputs": {name: _held_record(value) for name, value in explainer.video.held.items()}},
        "method": method, "options": {name: _plain(value) for name, value in options.items()},
        "layer": layer, "window": window, "stride": stride,
        "padded": window > info.frames, "windows": [], "verdict": None,
        "complete": False, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    fps = frame_rate(info.fps)
    written = 0
    frame_source = enumerate(data.iter_frames(video))
    buffer: dict[int, np.ndarray] = {}
    try:
        with data.VideoWriter(out / "overlay.mp4", info.width, info.height, fps) as overlay:
            for w in tqdm(windows, desc=f"explaining {Path(video).name}", unit="window",
                          disable=not progress):
                needed = set(range(w.first, w.last + 1)) | set(w.picked.tolist())
                while max(needed) not in buffer:
                    try:
                        index, frame = next(frame_source)
                    except StopIteration:
                        break
                    buffer[index] = frame
                available = max(buffer)
                picked = np.minimum(w.picked, available)
                clip = np.stack([data.fit_frame(buffer[i], (size, size), "pad") for i in picked])
                result = explainer.explain(clip, methods=method, layer=layer, target=target, **options)
                importance = frame_importance(explainer, clip, target=result.target)[0]
                entry, drawn = _window_entry(w, result, importance, buffer, picked, info, size,
                                             class_names, method)
                summary["windows"].append(entry)
                # Each analysed frame goes to the overlay once, from the first window showing it.
                for index in range(max(written, w.first), min(w.last, available) + 1):
                    overlay.write(drawn[index])
                written = max(written, min(w.last, available) + 1)
                for index in [i for i in buffer if i < (w.first + stride)]:
                    buffer.pop(index)
        summary["complete"] = True
    except KeyboardInterrupt:
        summary["interrupted"] = True
        raise
    finally:
        summary["verdict"] = _verdict(summary["windows"], class_names)
        summary["overlay_frames"] = written
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if summary["windows"]:
            timeline_figure(summary, class_names).savefig(out / "timeline.png")
            plt.close("all")
    return summary


def _window_entry(w: Window, result, importance, buffer, picked, info, size, class_names, method):
    """The window's JSON entry, and its frames drawn with map, contours and prediction."""
    probabilities = result.probabilities[0]
    predicted = int(probabilities.argmax())
    target = int(result.target[0])
    caption = f"{class_names[predicted]} {probabilities[predicted]:.2f}"
    maps = result.maps[method][0]
    # Every frame of the window takes the map of the nearest frame the model saw.
    nearest = {i: int(np.abs(picked - i).argmin()) for i in range(w.first, w.last + 1) if i in buffer}
    per_frame, drawn = [], {}
    for i, k in nearest.items():
        heatmap = _map_to_frame(maps[k], info.height, info.width, size)
        found = contours.extract(heatmap, min_area=max(4, info.width * info.height // 2000))
        image = viz.heat_overlay(buffer[i], heatmap)
        image = contours.draw(image, found)
        drawn[i] = _caption(image, caption)
        if i in picked:
            per_frame.append({"frame": i, "contours": [c.summary() for c in found]})
    entry = {
        "index": w.index, "first_frame": w.first, "last_frame": w.last,
        "start_seconds": round(w.first / info.fps, 3) if info.fps > 0 else None,
        "frames_seen": [int(i) for i in picked],
        "predicted": class_names[predicted],
        "probabilities": {name: round(float(p), 5) for name, p in zip(class_names, probabilities)},
        "explained_class": class_names[target],
        "frame_importance": [round(float(v), 5) for v in importance],
        "frames": per_frame,
    }
    return entry, drawn


def windows_explained(summary: dict) -> str:
    """"1 window" or "N windows": how many windows a summary holds, for a sentence."""
    count = len(summary["windows"])
    return f"{count} window{'' if count == 1 else 's'}"


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    scale = max(0.4, image.shape[1] / 400)
    return contours.draw_text(image, text, (6, int(18 * scale)), 0.5 * scale,
                              max(1, round(scale)), max(1, round(3 * scale)))


def _verdict(windows: list, class_names) -> dict | None:
    """The most confident window whose predicted class is not the normal one, if any."""
    normal = normal_class(class_names)
    flagged = [w for w in windows if w["predicted"] != normal]
    if not flagged:
        return None
    best = max(flagged, key=lambda w: w["probabilities"][w["predicted"]])
    return {"window": best["index"], "class": best["predicted"],
            "probability": best["probabilities"][best["predicted"]],
            "first_frame": best["first_frame"], "last_frame": best["last_frame"],
            "start_seconds": best["start_seconds"]}


def timeline_figure(summary: dict, class_names):
    """Each class's probability over the video's windows, those predicted other than normal shaded."""
    windows = summary["windows"]
    fps = summary["video"]["fps"] or 1.0
    unit = "s" if summary["video"]["fps"] else "frame"
    middles = np.array([(w["first_frame"] + w["last_frame"] + 1) / 2 / fps for w in windows])
    fig, ax = plt.subplots(figsize=(8, 3))
    normal = normal_class(class_names)
    for w in windows:
        if w["predicted"] != normal:
            ax.axvspan(w["first_frame"] / fps, (w["last_frame"] + 1) / fps, color="#fdae61",
                       alpha=0.3, lw=0)
    for name in class_names:
        ax.plot(middles, [w["probabilities"][name] for w in windows], marker="o", label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(summary["video"]["frames"] / fps, middles.max()))
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("class probability")
    verdict = summary["verdict"]
    title = Path(summary["video"]["path"]).name + (
        f": {verdict['class']} flagged at {verdict['start_seconds']} s (p = {verdict['probability']:.2f})"
        if verdict else ": nothing flagged")
    if summary["model"].get("note"):
        title += "\n(demo model: it knows only synthetic scenes)"
    ax.set_title(title + ("" if summary["complete"] else " (partial)"))
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig
