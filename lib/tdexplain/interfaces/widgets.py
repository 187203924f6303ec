"""Interactive explorers for notebooks: a clip explorer and a side-by-side model comparison.

The drawing and the state are plain Python (`Explorer.view`, `Explorer.set_clip`,
`compare_view`), so they are tested without a browser; the ipywidgets controls only call
them. A picture is a PNG of fixed size swapped into an `ipywidgets.Image` in one message, so a
redraw never shows a blank or half-drawn picture, and redraws are serialized: a change that
arrives while one is drawn is drawn next, and the picture always ends on the last change.
`show()` displays the controls once, with their first picture as a static fallback that
reports and HTML exports show where a live session shows the widget. Needs the `notebooks`
extra (ipywidgets): importing this module without it says so.
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

__all__ = ["Explorer", "ExplorerControls", "sample_clips", "video_path", "compare_view", "compare_models"]

PICTURE_DPI = 100  # pictures are figsize x 100 pixels, whatever their titles say


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


def _load_clip(source, frames: int, size: int) -> np.ndarray:
    """A clip from a sample name, a video path, or an array (T, H, W, 3)."""
    if isinstance(source, np.ndarray):
        return check_clips(source, frames=frames, size=size)[0]
    return data.read_video(video_path(source), frames=frames, size=size).astype(np.float32)


def _png(fig) -> bytes:
    """The figure as PNG bytes at its own size (no tight bounding box: the size never depends
    on the titles), and closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PICTURE_DPI)
    plt.close(fig)
    return buffer.getvalue()


def _layer_of(method: str, layer):
    """The layer a method reads: None for the pixel methods, whatever the layer control says."""
    return layer if registry.get(method).uses_layer else None


def _method_and_layer(method: str, explanation) -> str:
    """"Grad-CAM @ block4_conv4", or "saliency (pixels)" for a method that reads no layer."""
    where = f"@ {explanation.layer}" if registry.get(method).uses_layer else "(pixels)"
    return f"{registry.get(method).title} {where}"


def _display_with_fallback(widget, png: bytes) -> None:
    """Display a widget once, with a PNG for where no widget can be drawn (a report, an HTML
    export): a live front end draws the widget only, `report` keeps the PNG."""
    import base64

    from IPython.display import display

    bundle = dict(widget._repr_mimebundle_())
    bundle["image/png"] = base64.b64encode(png).decode("ascii")
    display(bundle, raw=True)


class Explorer:
    """One model, one clip, any method, layer, target and frame; explanations are cached
    per (method, layer, target), so moving the frame slider costs only a redraw."""

    def __init__(self, model, clip="fight_01", explainer: Explainer | None = None):
        self.explainer = explainer or Explainer(model)
        self.frames, self.size = self.explainer.frames, self.explainer.size  # of its clip input
        self._cache = {}
        self.set_clip(clip)

    def set_clip(self, source) -> np.ndarray:
        """Load a sample name, a video path or an array; forget the cached explanations."""
        self.clip = _load_clip(source, self.frames, self.size)
        self.clip_name = "array" if isinstance(source, np.ndarray) else Path(str(source)).stem
        # The demo model on footage that is not a shipped sample: its answer means nothing.
        path = None if isinstance(source, np.ndarray) else video_path(source)
        self.note = path and video.demo_note(getattr(self.explainer.model, "source_path", None), path)
        self._cache.clear()
        return self.clip

    def is_cached(self, method: str = DEFAULT_METHOD, layer: str | None = None, target=None) -> bool:
        return (method, _layer_of(method, layer), target) in self._cache

    def explanation(self, method: str = DEFAULT_METHOD, layer: str | None = None, target=None):
        """The clip's explanation, computed once per (method, layer, target); a pixel method
        reads no layer, so the layer does not enter its key."""
        key = (method, _layer_of(method, layer), target)
        if key not in self._cache:
            self._cache[key] = self.explainer.explain(self.clip, methods=method, layer=key[1], target=target)
        return self._cache[key]

    def image(self, frame: int = 0, method: str = DEFAULT_METHOD, layer: str | None = None, target=None,
              levels=contours.DEFAULT_LEVELS, opacity: float = 0.5, display_size: int = 256) -> np.ndarray:
        """One frame (uint8 RGB) under its map, with the map's contours at `levels`. Small
        clips are enlarged to about `display_size` pixels first (the frame by pixel
        repetition, the map smoothly), so the contour lines stay thin against the content."""
        if not 0 <= frame < self.frames:
            raise ValueError(f"frame must be in 0..{self.frames - 1}, got {frame}")
        result = self.explanation(method, layer, target)
        factor = max(1, display_size // self.size)
        image = np.repeat(np.repeat(self.clip[frame], factor, axis=0), factor, axis=1)
        heatmap = cv2.resize(result.maps[method][0, frame], image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        image = viz.heat_overlay(image, heatmap, alpha=opacity)
        return contours.draw(image, contours.extract(heatmap, levels=levels)) if levels else image

    def title(self, frame: int, method: str, layer, target) -> str:
        """What the picture shows: clip, frame, method, the layer it reads (or pixels), target."""
        result = self.explanation(method, layer, target)
        return (f"{self.clip_name}, frame {frame}: {_method_and_layer(method, result)}\n"
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
    """The explorer's controls and picture. Every control redraws (the frame slider when it is
    released); the layer control is disabled for methods that read no layer; a status line
    says what is being computed, and keeps an error until its cause is fixed."""

    def __init__(self, explorer: Explorer, frame: int = 0, method: str = DEFAULT_METHOD,
                 layer: str | None = None, target=None, levels=contours.DEFAULT_LEVELS, opacity: float = 0.5):
        import ipywidgets as w

        self.explorer = explorer
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
        self.clip = w.Combobox(value=explorer.clip_name if explorer.clip_name in sample_clips() else "",
                               options=list(sample_clips()), placeholder="sample name or video path",
                               description="clip", continuous_update=False)
        self.status = w.HTML()
        self.caption = w.HTML()  # the picture's title as text, for screen readers and tests
        self.picture = w.Image(format="png", layout=w.Layout(width="700px", height="320px"))
        for widget, name in ((self.status, "status"), (self.caption, "caption"), (self.picture, "picture")):
            widget.add_class(f"tdexplain-{name}")
        self.clip_error = self.view_error = ""
        self._serialized = _Serialized()
        for control in (self.frame, self.method, self.layer, self.target, self.levels, self.opacity):
            control.observe(self.redraw, names="value")
        self.clip.observe(self.load, names="value")
        self.widget = w.VBox([w.HBox([self.frame, self.method, self.layer]),
                              w.HBox([self.target, self.levels, self.opacity]), self.clip, self.status,
                              self.caption, self.picture])
        self.redraw()

    def view(self) -> dict:
        """The view the controls describe, as `Explorer.view` takes it."""
        low, high = self.levels.value
        return dict(frame=self.frame.value, method=self.method.value, layer=self.layer.value,
                    target=None if self.target.value == "predicted" else self.target.value,
                    levels=(low, (low + high) / 2, high), opacity=self.opacity.value)

    def redraw(self, *_) -> None:
        self._serialized.request(self._draw)

    def _draw(self) -> None:
        view = self.view()
        uses_layer = registry.get(view["method"]).uses_layer
        self.layer.disabled = not uses_layer
        self.layer.tooltip = None if uses_layer else "pixel methods read no layer"
        if not self.explorer.is_cached(view["method"], view["layer"], view["target"]):
            where = f" at {view['layer']}" if uses_layer else ""
            self._say(f"computing {registry.get(view['method']).title}{where}...", busy=True)
        try:
            self.picture.value = self.explorer.picture(**view, title=False)
            title = self.explorer.title(view["frame"], view["method"], view["layer"], view["target"])
            self.caption.value = html.escape(title.replace("\n", " "))
            self.view_error = ""
        except Exception as error:  # noqa: BLE001 - shown under the controls, never a stuck "computing"
            self.view_error = f"{type(error).__name__}: {error}"
        self._say()

    def load(self, change) -> None:
        """A clip typed or chosen in the clip box: loaded and drawn, or an error that stays
        (with the name of the clip still shown) until a clip loads."""
        try:
            self.explorer.set_clip(change["new"])
            self.clip_error = ""
        except (FileNotFoundError, ValueError) as error:
            self.clip_error = f"{error} (still showing {self.explorer.clip_name})"
        self.redraw()

    def _say(self, busy_text: str = "", busy: bool = False) -> None:
        lines = [busy_text] if busy else []
        lines += [f"<i>note: {html.escape(self.explorer.note)}</i>"] if self.explorer.note else []
        lines += [f"<b>{html.escape(error)}</b>" for error in (self.clip_error, self.view_error) if error]
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
    return f"{_method_and_layer(method, explorer.explanation(method, layer, target))}, frame {frame}, for {explained}"


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
