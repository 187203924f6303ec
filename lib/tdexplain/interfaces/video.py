"""Explaining a whole video file: sliding windows, per-window prediction and explanation,
and the files a reviewer reads (summary.json, overlay.mp4, timeline.png)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
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

__all__ = ["SHORT_POLICIES", "WINDOW_SECONDS", "OVERLAY_WIDTH", "Window", "WindowClip", "frame_rate",
           "window_and_stride", "stream_windows", "window_count", "overlay_frame", "inside_picture", "caption",
           "DEMO_NOTE", "DEMO_LINE", "demo_note", "read_held_input", "check_method_options", "layer_of", "heat_source", "explain_video",
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


OVERLAY_WIDTH = 640  # batch overlays are drawn at most this wide: a reviewer's clip, not the footage


@dataclass
class WindowClip:
    window: Window
    clip: np.ndarray  # (T, size, size, 3) uint8: the frames the model sees
    originals: dict | None  # {video frame: the frame as `keep` made it} for the window's every frame
    tail: bool = False  # the last window, aligned to the video's end (or the only one, padded)


def stream_windows(video, frames: int, size: int, window: int, stride: int, keep=None,
                   short: str = "pad"):
    """Decode `video` once and yield its windows as `WindowClip`s, each as soon as its last frame
    is read: `window` video frames every `stride`, sampled to the model's `frames`. Only the
    last `window` frames are held, resized to the model's `size`, and, with `keep` (a function
    of a frame), what `keep` makes of each. The frames after the last full window get a window
    of their own, aligned to the end (``tail``). A video shorter than one window gives one
    window padded with its last frame (``short="pad"``) or an error (``"error"``);
    ``window=0`` means one window over the whole video (every frame held)."""
    held: deque = deque(maxlen=window or None)  # (index, resized frame, kept frame)
    emitted, count = 0, 0

    def cut(first: int, last: int, span: int, tail: bool = False) -> WindowClip:
        nonlocal emitted
        by_index = {index: (small, kept) for index, small, kept in held if index >= first}
        picked = np.minimum(first + np.linspace(0, span - 1, frames).round().astype(int), count - 1)
        clip = np.stack([by_index[i][0] for i in picked])
        originals = {i: kept for i, (_, kept) in by_index.items()} if keep else None
        emitted += 1
        return WindowClip(Window(emitted - 1, first, last, picked), clip, originals, tail)

    for count, frame in enumerate(data.iter_frames(video), start=1):
        index = count - 1
        held.append((index, data.fit_frame(frame, (size, size), "pad"), keep(frame) if keep else None))
        first = index - window + 1
        if window and first >= 0 and first % stride == 0:
            yield cut(first, index, window)
    if count == 0:
        raise ValueError(f"{video} has no decodable frame (corrupt or not a video)")
    if not emitted:  # shorter than one window, or one window over the whole video
        if window > count and short == "error":
            raise ValueError(_too_short(video, count, window))
        yield cut(0, count - 1, window or count, tail=True)
    elif (count - window) % stride:  # frames after the last full window
        yield cut(count - window, count - 1, window, tail=True)


def _too_short(video, count: int, window: int) -> str:
    return (f"{video} has {count} frames, fewer than one window of {window}; pad it with its last frame "
            f"(short='pad', --short pad) or give a shorter window")


def window_count(frame_count: int, window: int, stride: int) -> int:
    """How many windows `stream_windows` cuts from `frame_count` frames, the tail included."""
    if not window or frame_count <= window:
        return 1
    return (frame_count - window) // stride + 1 + bool((frame_count - window) % stride)


def overlay_frame(frame: np.ndarray) -> np.ndarray:
    """A frame at most OVERLAY_WIDTH wide, for a batch run's overlays."""
    height, width = frame.shape[:2]
    if width <= OVERLAY_WIDTH:
        return frame
    return data.fit_frame(frame, (round(height * OVERLAY_WIDTH / width), OVERLAY_WIDTH), "stretch")


def inside_picture(heatmap: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """A model-resolution map cropped to where a (height, width) frame lies in the model's padded
    square (the black bars are not the video), and scaled to its peak there."""
    top, left, new_h, new_w = data.content_box(height, width, (size, size), "pad")
    content = heatmap[top:top + new_h, left:left + new_w]
    return content / max(float(content.max()), 1e-12)


def _map_to_frame(heatmap: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """A model-resolution map back onto the original frame, without the padding."""
    return cv2.resize(inside_picture(heatmap, height, width, size), (width, height), interpolation=cv2.INTER_LINEAR)


DEMO_NOTE = ("the demo model knows only synthetic scenes, so its answer on other footage means "
             "nothing; explain it with a model trained on your own data (--model on the command line)")


DEMO_LINE = "demo model: it knows only synthetic scenes"  # the note, where a picture has one line for it


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


def layer_of(method: str, layer):
    """The layer a method reads: None for the pixel methods, whatever layer was asked."""
    return layer if registry.get(method).uses_layer else None


def heat_source(method: str, layer) -> str:
    """What a heat map shows, in a caption: "Grad-CAM @ block4_conv4", or "saliency (pixels)" for
    a method that reads no layer."""
    where = f"@ {layer}" if registry.get(method).uses_layer else "(pixels)"
    return f"{registry.get(method).title} {where}"


def _plain(value):
    """An option's value as JSON can hold it: a number, text or None, else its type's name."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, (bool, int, float, str, type(None))) else f"<{type(value).__name__}>"


def explain_video(video, out, model_path=models.DEMO_MODEL, method: str = DEFAULT_METHOD,
                  layer: str | None = None, window: int | None = None, stride: int | None = None,
                  target=None, short: str = "pad", progress=True, options: dict | None = None,
                  output=None, clip_input=None, other_inputs=None,
                  explainer: Explainer | None = None) -> dict:
    """Explain a video file window by window; write summary.json, overlay.mp4 and timeline.png
    into `out` and return the summary. `window` and `stride` are in video frames; by default 3 s
    and 1 s of the video (`WINDOW_SECONDS`). Interrupted (Ctrl-C), it saves what was explained,
    marks the summary partial, and raises KeyboardInterrupt again. options: the method's
    options (`Explainer.explain`); their names are checked before anything is read or written,
    their values by the method, at the first window. output, clip_input, other_inputs: which
    output of the model is explained and what its other inputs hold, as in `Explainer`.
    progress: a bar on the console (True), none (False), or a function called after each window
    with the windows done and the windows expected (the app's progress bar).
    explainer: an `Explainer` already made for the model (its compiled passes are reused: the
    app keeps one per model), instead of loading `model_path`, which the summary then names."""
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
    options = options or {}
    check_method_options(method, options)
    header = data.video_header(video)  # read from the container: the frames are decoded once, below
    window, stride = window_and_stride(header.fps, window, stride)
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

    # The video's frames and duration count up to the last window explained: all of it once complete.
    summary = {
        "video": {"path": str(video), "frames": 0, "fps": header.fps,
                  "width": header.width, "height": header.height, "duration_seconds": None},
        "model": {"path": str(model_path), "classes": list(class_names), "frames": explainer.frames,
                  "size": explainer.size, "note": demo_note(model_path, video),
                  "output": shapes.output_names(model)[explainer.video.output],
                  "clip_input": graphs.input_name(explainer.video.clip_tensor),
                  "other_inputs": {name: _held_record(value) for name, value in explainer.video.held.items()}},
        "method": method, "options": {name: _plain(value) for name, value in options.items()},
        "layer": layer_of(method, layer), "window": window, "stride": stride,
        "padded": False, "windows": [], "verdict": None, "overlay_frames": 0,
        "complete": False, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    fps = frame_rate(header.fps)
    stream = stream_windows(video, explainer.frames, explainer.size, window, stride, keep=lambda frame: frame,
                            short=short)
    if short == "error" and 0 < header.frames < window:  # before a file is written (the stream checks again)
        raise ValueError(_too_short(video, header.frames, window))
    expected = window_count(header.frames, window, stride)  # by the container's count, which may be off
    if callable(progress):
        progress(0, expected)
    try:
        with data.VideoWriter(out / "overlay.mp4", header.width, header.height, fps) as overlay:
            for done, item in enumerate(tqdm(stream, total=expected, desc=f"explaining {Path(video).name}",
                                             unit="window", disable=progress is not True), start=1):
                result = explainer.explain(item.clip, methods=method, layer=layer, target=target, **options)
                importance = frame_importance(explainer, item.clip, target=result.target)[0]
                first_new = max(summary["video"]["frames"], item.window.first)  # a stride past the window skips
                entry, drawn = _window_entry(item, result, importance, explainer.size, class_names, method,
                                             header.fps, first_new, note=summary["model"]["note"])
                summary["windows"].append(entry)
                for index in range(first_new, item.window.last + 1):  # once, from the first window showing it
                    overlay.write(drawn[index])
                summary["overlay_frames"] += item.window.last + 1 - first_new
                summary["video"]["frames"] = item.window.last + 1
                summary["padded"] = item.tail and window > summary["video"]["frames"]
                if callable(progress):
                    progress(done, max(expected, done))
        summary["complete"] = True
    except KeyboardInterrupt:
        summary["interrupted"] = True
        raise
    finally:
        frames_read = summary["video"]["frames"]
        summary["video"]["duration_seconds"] = round(frames_read / header.fps, 3) if header.fps > 0 else None
        summary["verdict"] = _verdict(summary["windows"], class_names)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if summary["windows"]:
            timeline_figure(summary, class_names).savefig(out / "timeline.png")
            plt.close("all")
    return summary


def _window_entry(item: WindowClip, result, importance, size, class_names, method, fps: float,
                  first_new: int, note: str | None):
    """The window's JSON entry, and its frames from `first_new` on (those not yet in the overlay)
    drawn with map, contours, prediction, what the heat shows and the demo model's note."""
    w = item.window
    probabilities = result.probabilities[0]
    predicted = int(probabilities.argmax())
    target = int(result.target[0])
    lines = (f"{class_names[predicted]} {probabilities[predicted]:.2f}",
               f"heat: {heat_source(method, result.layer)} for {class_names[target]}") + ((DEMO_LINE,) if note else ())
    maps = result.maps[method][0]
    per_frame, drawn = [], {}
    for i, frame in item.originals.items():  # each takes the map of the nearest frame the model saw
        if i < first_new and i not in w.picked:
            continue
        height, width = frame.shape[:2]
        heatmap = _map_to_frame(maps[int(np.abs(w.picked - i).argmin())], height, width, size)
        found = contours.extract(heatmap, min_area=max(4, width * height // 2000))
        if i >= first_new:
            drawn[i] = caption(contours.draw(viz.heat_overlay(frame, heatmap), found), lines)
        if i in w.picked:
            per_frame.append({"frame": i, "contours": [c.summary() for c in found]})
    entry = {
        "index": w.index, "first_frame": w.first, "last_frame": w.last, "tail": item.tail,
        "start_seconds": round(w.first / fps, 3) if fps > 0 else None,
        "frames_seen": [int(i) for i in w.picked],
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


def caption(image: np.ndarray, lines) -> np.ndarray:
    """`lines` of white text with a halo in the top left corner of an overlay frame, sized to its
    width (explain's overlay.mp4 and batch's window clips)."""
    scale = max(0.4, image.shape[1] / 400)
    for number, text in enumerate(lines, start=1):
        image = contours.draw_text(image, text, (6, int(18 * scale * number)), 0.5 * scale,
                                   max(1, round(scale)), max(1, round(3 * scale)))
    return image


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
        title += f"\n({DEMO_LINE})"
    ax.set_title(title + ("" if summary["complete"] else " (partial)"))
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig
