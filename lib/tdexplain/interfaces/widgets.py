"""Interactive explorers for notebooks: a clip explorer and a side-by-side model comparison.

The drawing and the state are plain Python (`Explorer.view`, `Explorer.set_clip`,
`compare_view`), so they are tested without a browser; the ipywidgets controls only call
them. A picture is a PNG of fixed size swapped into an `ipywidgets.Image` in one message, so a
redraw never shows a blank or half-drawn picture, and redraws are serialized: a change that
arrives while one is drawn is drawn next, and the picture always ends on the last change.
`show()` displays the controls once, with their first picture as a static fallback that
reports and HTML exports show where a live session shows the widget. A video file is explained
one window at a time, the windows `video.explain_video` explains (3 s of it, one starting
every second, each sampled to the model's frames), so the explorer shows what the app and the
command line explain. Needs the `notebooks` extra (ipywidgets): importing this module without
it says so.
"""

from __future__ import annotations

import html
import io
import threading
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np

from ..engine import registry
from ..engine.clips import check_clips
from ..engine.explainer import Explainer
from ..extras import require
from ..methods import DEFAULT_METHOD, METHODS
from ..workbook import data
from . import contours, video, viz

require("tdexplain.interfaces.widgets", "ipywidgets", "IPython")  # the notebooks extra

__all__ = ["Explorer", "ExplorerControls", "sample_clips", "video_path", "compare_view", "compare_models",
           "error_html", "PATH_FIELD"]

PICTURE_DPI = 100  # pictures are figsize x 100 pixels, whatever their titles say
PATH_FIELD = {"width": "100%", "max_width": "800px"}  # the layout of a path field: a long path shows whole


def sample_clips() -> dict:
    """{name: path} of the clips shipped in data_samples/clips."""
    folder = Path(data.sample_path("clips"))
    return {path.stem: str(path) for path in sorted(folder.glob("*.mp4"))}


def video_path(source) -> str:
    """The file of a sample name (see `sample_clips`) or of a video path, checked to exist."""
    samples = sample_clips()
    path = samples.get(str(source), str(source))
    if not Path(path).is_file():
        raise FileNotFoundError(f"no sample clip or video file {source!r}; samples: {', '.join(samples)}")
    return path


def _check_window(window: int, count: int, name: str) -> None:
    if not 0 <= window < count:
        raise ValueError(f"window must be in 0..{count - 1} for {name}, got {window}")


def error_html(text: str) -> str:
    """An error as the app and the explorer show it: in red, after "error:"."""
    return f'<span class="tdexplain-error" style="color: #c62828"><b>error:</b> {html.escape(text)}</span>'


def _png(fig) -> bytes:
    """The figure as PNG bytes at its own size (no tight bounding box: the size never depends
    on the titles), and closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PICTURE_DPI)
    plt.close(fig)
    return buffer.getvalue()


def _display_with_fallback(widget, png: bytes) -> None:
    """Display a widget once, with a PNG for where no widget can be drawn (a report, an HTML
    export): a live front end draws the widget only, `report` keeps the PNG."""
    import base64

    from IPython.display import display

    bundle = dict(widget._repr_mimebundle_())
    bundle["image/png"] = base64.b64encode(png).decode("ascii")
    display(bundle, raw=True)


MAX_WINDOWS = 600  # the explorer keeps a video's windows at the model's size: 10 minutes, 60 MB at 64 px


class Explorer:
    """One model, one window of a video (or one clip), any method, layer, target and frame;
    explanations are cached per (method, layer, target), so moving the frame slider costs only
    a redraw."""

    def __init__(self, model, clip="fight_01", explainer: Explainer | None = None, window: int = 0):
        self.explainer = explainer or Explainer(model)
        self.frames, self.size = self.explainer.frames, self.explainer.size  # of its clip input
        self._cache = {}
        self.set_clip(clip, window)

    def set_clip(self, source, window: int = 0) -> np.ndarray:
        """Load a sample name, a video path or an array (one clip) at `window` of its windows;
        forget the cached explanations. A video's windows (`windows`) are the clips
        `video.explain_video` explains, read in one pass and kept (8 frames at the model's
        size each: a minute of video at 64 px holds 60 windows, 6 MB)."""
        if isinstance(source, np.ndarray):
            clip = check_clips(source, frames=self.frames, size=self.size)[0]
            path, fps, picture = None, 0.0, (self.size, self.size)
            windows = [video.WindowClip(video.Window(0, 0, self.frames - 1, np.arange(self.frames)), clip, None)]
        else:
            path = video_path(source)
            header = data.video_header(path)
            fps, picture = header.fps, (header.height, header.width)
            window_and_stride = video.window_and_stride(fps)
            count = video.window_count(header.frames, *window_and_stride)
            if count > MAX_WINDOWS:
                raise ValueError(f"{source} has {count} windows of 3 s; the explorer holds every window in "
                                 f"memory, at most {MAX_WINDOWS} (one a second): explain a long video with "
                                 f"`tdexplain batch` or `tdexplain explain`, or cut the part to explore")
            windows = list(video.stream_windows(path, self.frames, self.size, *window_and_stride))
        name = "array" if path is None else Path(str(source)).stem
        _check_window(window, len(windows), name)
        self.path, self.fps, self.windows, self.clip_name = path, fps, windows, name
        self.frame_shape = picture  # (height, width) of the video's frames: the clip pads them to a square
        # The demo model on footage that is not a shipped sample: its answer means nothing.
        self.note = path and video.demo_note(getattr(self.explainer.model, "source_path", None), path)
        return self.set_window(window)

    def set_window(self, window: int) -> np.ndarray:
        """Explain another window of the video; forget the cached explanations."""
        _check_window(window, len(self.windows), self.clip_name)
        self.window, self.clip = window, self.windows[window].clip.astype(np.float32)
        self._cache.clear()
        return self.clip

    def window_span(self) -> str:
        """The window shown, in the video's time: "window 2 (2.0-5.0 s)"."""
        shown = self.windows[self.window].window
        rate = video.frame_rate(self.fps)
        return f"window {self.window} ({shown.first / rate:.1f}-{(shown.last + 1) / rate:.1f} s)"

    def is_cached(self, method: str = DEFAULT_METHOD, layer: str | None = None, target=None) -> bool:
        return (method, video.layer_of(method, layer), target) in self._cache

    def explanation(self, method: str = DEFAULT_METHOD, layer: str | None = None, target=None):
        """The clip's explanation, computed once per (method, layer, target); a pixel method
        reads no layer, so the layer does not enter its key."""
        key = (method, video.layer_of(method, layer), target)
        if key not in self._cache:
            self._cache[key] = self.explainer.explain(self.clip, methods=method, layer=key[1], target=target)
        return self._cache[key]

    def image(self, frame: int = 0, method: str = DEFAULT_METHOD, layer: str | None = None, target=None,
              levels=contours.DEFAULT_LEVELS, opacity: float = 0.5, display_size: int = 256) -> np.ndarray:
        """One frame (uint8 RGB) under its map, with the map's contours at `levels`, cropped to the
        video's picture (the map scaled to its peak there, as `video.inside_picture`). Small
        clips are enlarged to about `display_size` pixels first (the frame by pixel
        repetition, the map smoothly), so the contour lines stay thin against the content."""
        if not 0 <= frame < self.frames:
            raise ValueError(f"frame must be in 0..{self.frames - 1}, got {frame}")
        result = self.explanation(method, layer, target)
        factor = max(1, display_size // self.size)
        top, left, height, width = data.content_box(*self.frame_shape, (self.size, self.size), "pad")
        picture = self.clip[frame, top:top + height, left:left + width]  # not the black bars of the padding
        image = np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)
        heatmap = cv2.resize(video.inside_picture(result.maps[method][0, frame], *self.frame_shape, self.size),
                             image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        image = viz.heat_overlay(image, heatmap, alpha=opacity)
        return contours.draw(image, contours.extract(heatmap, levels=levels)) if levels else image

    def title(self, frame: int, method: str, layer, target) -> str:
        """What the picture shows: video (and its window when it has several), frame, method,
        the layer it reads (or pixels), target."""
        result = self.explanation(method, layer, target)
        where = f"{self.clip_name}, {self.window_span()}" if len(self.windows) > 1 else self.clip_name
        return (f"{where}, frame {frame}: {video.heat_source(method, result.layer)}\n"
                f"for '{result.class_names[result.target[0]]}'")

    def view(self, frame: int = 0, method: str = DEFAULT_METHOD, layer: str | None = None, target=None,
             levels=contours.DEFAULT_LEVELS, opacity: float = 0.5, display_size: int = 256, title: bool = True):
        """Draw `image` for one frame, and the class probabilities with the target marked; the
        controls leave the title out of the picture (their caption says it, as text)."""
        image = self.image(frame, method, layer, target, levels, opacity, display_size)
        result = self.explanation(method, layer, target)
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(7, 3.2), gridspec_kw={"width_ratios": [1, 1.1]})
        ax.imshow(image)
        ax.set_xticks([]), ax.set_yticks([])
        if title:
            ax.set_title(self.title(frame, method, layer, target), fontsize=8)
        if self.note:
            bars.set_title("demo model: it knows only synthetic scenes", fontsize=8, color="C3")
        colors = ["C3" if i == result.target[0] else "0.6" for i in range(len(result.class_names))]
        bars.barh(result.class_names, result.probabilities[0], color=colors)
        bars.set_xlim(0, 1)
        bars.set_xlabel("probability")
        fig.tight_layout()
        return fig

    def picture(self, **view) -> bytes:
        """`view` as PNG bytes of a fixed size (700 x 320 pixels)."""
        return _png(self.view(**view))

    def controls(self, **start) -> "ExplorerControls":
        """The ipywidgets, starting at the view `start` describes (frame, method, layer,
        target, levels, opacity); `.widget` is the box to display."""
        return ExplorerControls(self, **start)

    def show(self, **start) -> None:
        """Display the controls, starting at `start`, once: the live widget in a notebook,
        its first picture in a report."""
        panel = self.controls(**start)
        _display_with_fallback(panel.widget, self.picture(**panel.view()))


class _Serialized:
    """Redraw on every change, one drawing at a time. The kernel handles widget messages one
    by one, so a change can only arrive during a drawing from a callback the drawing fires (or
    from a thread of the user's): it marks the picture stale, and it is drawn again with the
    latest values when done. The picture ends on the last change."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stale = False

    def request(self, draw) -> None:
        self._stale = True
        while self._stale:
            if not self._lock.acquire(blocking=False):
                return  # the drawing in progress will see _stale and draw again
            try:
                self._stale = False
                draw()
            finally:
                self._lock.release()


class ExplorerControls:
    """The explorer's controls and picture. Every control redraws (the frame and window sliders
    when they are released); the layer control is disabled for methods that read no layer, the
    window slider for a video of one window; a status line says what is being computed, and
    keeps an error until its cause is fixed."""

    def __init__(self, explorer: Explorer, frame: int = 0, method: str = DEFAULT_METHOD,
                 layer: str | None = None, target=None, levels=contours.DEFAULT_LEVELS, opacity: float = 0.5,
                 window: int | None = None):
        import ipywidgets as w

        self.explorer = explorer
        if window is not None and window != explorer.window:
            explorer.set_window(window)
        explainer = explorer.explainer
        explainer.check_methods([method])
        layer = explainer.check_layer(layer, ["gradcam"])  # one the layer control offers
        if not 0 <= frame < explorer.frames:
            raise ValueError(f"frame must be in 0..{explorer.frames - 1}, got {frame}")
        if target is not None:  # a class name or index, checked as explain() checks it
            resolved = explainer.check_target(target, 1)
            if resolved.score is not None:
                raise ValueError("the explorer's target is a class name or index, not a callable score")
            target = explainer.class_names[resolved.classes[0]]
        self.frame = w.IntSlider(frame, 0, explorer.frames - 1, description="frame", continuous_update=False)
        self.method = w.Dropdown(options=METHODS, value=method, description="method")
        self.layer = w.Dropdown(options=explainer.inner_layers, value=layer, description="layer")
        self.target = w.Dropdown(options=["predicted"] + list(explainer.class_names),
                                 value="predicted" if target is None else target, description="target")
        self.levels = w.FloatRangeSlider(value=(min(levels), max(levels)) if levels else (0.25, 0.75), min=0.05,
                                         max=0.95, step=0.05, description="contours", continuous_update=False)
        self.opacity = w.FloatSlider(opacity, min=0, max=1, step=0.05, description="opacity",
                                     continuous_update=False)
        shown = explorer.clip_name if explorer.clip_name in sample_clips() else explorer.path or ""
        self.video = w.Combobox(value=shown, options=list(sample_clips()), placeholder="sample name or video file path",
                                description="video", continuous_update=False, layout=w.Layout(**PATH_FIELD))
        self.window = w.IntSlider(explorer.window, 0, len(explorer.windows) - 1, description="window",
                                  continuous_update=False, disabled=len(explorer.windows) == 1)
        self.status = w.HTML()
        self.caption = w.HTML()  # the picture's title as text, for screen readers and tests
        self.picture = w.Image(format="png", layout=w.Layout(width="700px", height="320px"))
        for widget, name in ((self.status, "status"), (self.caption, "caption"), (self.picture, "picture")):
            widget.add_class(f"tdexplain-{name}")
        self.video_error = self.view_error = ""
        self._serialized, self._loading = _Serialized(), False
        for control in (self.frame, self.method, self.layer, self.target, self.levels, self.opacity, self.window):
            control.observe(self.redraw, names="value")
        self.video.observe(self.load, names="value")
        self.widget = w.VBox([w.HBox([self.frame, self.method, self.layer]),
                              w.HBox([self.target, self.levels, self.opacity]), self.video, self.window,
                              self.status, self.caption, self.picture])
        self.redraw()

    def view(self) -> dict:
        """The view the controls describe, as `Explorer.view` takes it."""
        low, high = self.levels.value
        return dict(frame=self.frame.value, method=self.method.value, layer=self.layer.value,
                    target=None if self.target.value == "predicted" else self.target.value,
                    levels=(low, (low + high) / 2, high), opacity=self.opacity.value)

    def redraw(self, *_) -> None:
        if not self._loading:
            self._serialized.request(self._draw)

    def _draw(self) -> None:
        view = self.view()
        uses_layer = registry.get(view["method"]).uses_layer
        self.layer.disabled = not uses_layer
        self.layer.tooltip = None if uses_layer else "pixel methods read no layer"
        moved = self.window.value != self.explorer.window
        if moved or not self.explorer.is_cached(view["method"], view["layer"], view["target"]):
            where = f" at {view['layer']}" if uses_layer else ""
            of = f" for window {self.window.value}" if moved else ""
            self._say(f"computing {registry.get(view['method']).title}{where}{of}...", busy=True)
        try:
            if moved:
                self.explorer.set_window(self.window.value)
            self.picture.value = self.explorer.picture(**view, title=False)
            title = self.explorer.title(view["frame"], view["method"], view["layer"], view["target"])
            self.caption.value = html.escape(title.replace("\n", " "))
            self.view_error = ""
        except Exception as error:  # noqa: BLE001 - shown under the controls, never a stuck "computing"
            self.view_error = f"{type(error).__name__}: {error}"
        self._say()

    def load(self, change) -> None:
        """A video typed or chosen in the video box: loaded at its first window and drawn, or an
        error that stays (with the name of the video still shown) until a video loads."""
        try:
            self.explorer.set_clip(change["new"])
            self.video_error = ""
        except (FileNotFoundError, ValueError) as error:
            self.video_error = f"video {change['new']!r}: {error} (still showing {self.explorer.clip_name})"
        self._loading = True  # the window slider follows the video: one drawing, below
        try:
            self.window.max = len(self.explorer.windows) - 1
            self.window.value, self.window.disabled = self.explorer.window, len(self.explorer.windows) == 1
        finally:
            self._loading = False
        self.redraw()

    def _say(self, busy_text: str = "", busy: bool = False) -> None:
        lines = [busy_text] if busy else []
        lines += [f"<i>note: {html.escape(self.explorer.note)}</i>"] if self.explorer.note else []
        lines += [error_html(error) for error in (self.video_error, self.view_error) if error]
        self.status.value = "<br>".join(lines)


def compare_view(explorers: dict, frame: int = 0, method: str = DEFAULT_METHOD, layer=None,
                 target=None, opacity: float = 0.5, title: bool = True):
    """Two (or more) models side by side on the same frame: {name: Explorer} (each explorer
    caches its explanations, so moving the frame only redraws)."""
    fig, axes = plt.subplots(1, len(explorers), figsize=(3.2 * len(explorers), 3.4), squeeze=False)
    for ax, (name, explorer) in zip(axes[0], explorers.items()):
        result = explorer.explanation(method, layer, target)
        ax.imshow(explorer.image(frame, method, layer, target, levels=(), opacity=opacity))
        ax.set_xticks([]), ax.set_yticks([])
        predicted = result.class_names[result.predicted[0]]
        ax.set_title(f"{name}\npredicts {predicted} ({result.probabilities[0].max():.2f})", fontsize=8)
    if title:
        fig.suptitle(_compare_title(explorer, frame, method, layer, target), fontsize=9)
    fig.tight_layout()
    return fig


def _compare_title(explorer: Explorer, frame: int, method: str, layer, target) -> str:
    explained = "each model's predicted class" if target is None else f"'{target}'"
    return f"{video.heat_source(method, explorer.explanation(method, layer, target).layer)}, frame {frame}, for {explained}"


def compare_models(models_: dict, clip="fight_01", method: str = DEFAULT_METHOD, layer=None,
                   frame: int = 0) -> None:
    """The comparison as a widget (frame slider and method), displayed once: live in a
    notebook, its first picture in a report."""
    import ipywidgets as w

    explorers = {name: Explorer(model, clip) for name, model in models_.items()}
    count = next(iter(explorers.values())).frames
    if not 0 <= frame < count:
        raise ValueError(f"frame must be in 0..{count - 1}, got {frame}")
    frames = w.IntSlider(frame, 0, count - 1, description="frame", continuous_update=False)
    chosen = w.Dropdown(options=METHODS, value=method, description="method")
    status, caption = w.HTML(), w.HTML()
    picture = w.Image(format="png", layout=w.Layout(width=f"{320 * len(explorers)}px", height="340px"))
    for widget, name in ((status, "status"), (caption, "caption"), (picture, "picture")):
        widget.add_class(f"tdexplain-{name}")
    serialized = _Serialized()

    def draw():
        if not all(e.is_cached(chosen.value, layer) for e in explorers.values()):
            status.value = f"computing {registry.get(chosen.value).title}..."
        try:
            picture.value = _png(compare_view(explorers, frames.value, chosen.value, layer, title=False))
            caption.value = html.escape(_compare_title(next(iter(explorers.values())), frames.value,
                                                       chosen.value, layer, None))
            status.value = ""
        except Exception as error:  # noqa: BLE001 - shown under the controls
            status.value = f"<b>{html.escape(f'{type(error).__name__}: {error}')}</b>"

    for control in (frames, chosen):
        control.observe(lambda _: serialized.request(draw), names="value")
    serialized.request(draw)
    _display_with_fallback(w.VBox([w.HBox([frames, chosen]), status, caption, picture]),
                           _png(compare_view(explorers, frames.value, chosen.value, layer)))
