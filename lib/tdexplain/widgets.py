"""Interactive explorers for notebooks: a clip explorer and a side-by-side model comparison.

The drawing and the state are plain Python (`Explorer.view`, `Explorer.set_clip`,
`compare_view`), so they are tested without a browser; the ipywidgets controls only call
them. `show()` displays the controls and also draws the default view as a static figure,
so a papermill report or an HTML export shows a real picture where the widget was.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np

from . import contours, data, viz
from .explain import DEFAULT_METHOD, METHODS, Explainer
from .models import input_spec

__all__ = ["Explorer", "sample_clips", "compare_view", "compare_models"]


def sample_clips() -> dict:
    """{name: path} of the clips shipped in data_samples/clips."""
    folder = Path(data.sample_path("clips"))
    return {path.stem: str(path) for path in sorted(folder.glob("*.mp4"))}


def _load_clip(source, frames: int, size: int) -> np.ndarray:
    """A clip from a sample name, a video path, or an array (T, H, W, 3)."""
    if isinstance(source, np.ndarray):
        return data.check_clips(source, frames=frames, size=size)[0]
    samples = sample_clips()
    path = samples.get(str(source), str(source))
    if not Path(path).is_file():
        raise FileNotFoundError(f"no sample clip or video file {source!r}; samples: {', '.join(samples)}")
    return data.read_video(path, frames=frames, size=size).astype(np.float32)


class Explorer:
    """One model, one clip, any method, layer, target and frame; explanations are cached
    per (method, layer, target), so moving the frame slider costs only a redraw."""

    def __init__(self, model, clip="fight_01", explainer: Explainer | None = None):
        self.explainer = explainer or Explainer(model)
        self.frames, self.size = input_spec(self.explainer.model)
        self._cache = {}
        self.set_clip(clip)

    def set_clip(self, source) -> np.ndarray:
        """Load a sample name, a video path or an array; forget the cached explanations."""
        self.clip = _load_clip(source, self.frames, self.size)
        self._cache.clear()
        return self.clip

    def explanation(self, method: str = DEFAULT_METHOD, layer: str | None = None, target=None):
        key = (method, layer, target)
        if key not in self._cache:
            self._cache[key] = self.explainer.explain(self.clip, methods=method, layer=layer, target=target)
        return self._cache[key]

    def image(self, frame: int = 0, method: str = DEFAULT_METHOD, layer: str | None = None, target=None,
              levels=(0.25, 0.5, 0.75), opacity: float = 0.5, display_size: int = 256) -> np.ndarray:
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

    def view(self, frame: int = 0, method: str = DEFAULT_METHOD, layer: str | None = None, target=None,
             levels=(0.25, 0.5, 0.75), opacity: float = 0.5, display_size: int = 256):
        """Draw `image` for one frame, and the class probabilities with the target marked."""
        image = self.image(frame, method, layer, target, levels, opacity, display_size)
        result = self.explanation(method, layer, target)
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(7, 3.2), gridspec_kw={"width_ratios": [1, 1.1]})
        ax.imshow(image)
        ax.set_xticks([]), ax.set_yticks([])
        target_name = result.class_names[result.target[0]]
        ax.set_title(f"frame {frame}: {method} @ {result.layer}\nfor '{target_name}'", fontsize=8)
        colors = ["C3" if i == result.target[0] else "0.6" for i in range(len(result.class_names))]
        bars.barh(result.class_names, result.probabilities[0], color=colors)
        bars.set_xlim(0, 1)
        bars.set_xlabel("probability")
        fig.tight_layout()
        return fig

    def controls(self):
        """The ipywidgets: frame slider, method, layer, target, contour levels, opacity, clip."""
        import ipywidgets as w

        names = ["predicted"] + list(self.explainer.class_names)
        frame = w.IntSlider(0, 0, self.frames - 1, description="frame")
        method = w.Dropdown(options=METHODS, value=DEFAULT_METHOD, description="method")
        layer = w.Dropdown(options=self.explainer.inner_layers, value=self.explainer.default_layer,
                           description="layer")
        target = w.Dropdown(options=names, value="predicted", description="target")
        levels = w.FloatRangeSlider(value=(0.25, 0.75), min=0.05, max=0.95, step=0.05,
                                    description="contours")
        opacity = w.FloatSlider(0.5, min=0, max=1, step=0.05, description="opacity")
        clip = w.Combobox(options=list(sample_clips()), placeholder="sample name or video path",
                          description="clip")
        out = w.Output()
        message = w.HTML()

        def redraw(*_):
            chosen = None if target.value == "predicted" else target.value
            low, high = levels.value
            with out:
                out.clear_output(wait=True)
                try:
                    self.view(frame.value, method.value, layer.value, chosen, (low, (low + high) / 2, high),
                              opacity.value)
                    plt.show()
                    message.value = ""
                except ValueError as error:
                    message.value = f"<b>{error}</b>"

        def load(change):
            try:
                self.set_clip(change["new"])
                redraw()
            except (FileNotFoundError, ValueError) as error:
                message.value = f"<b>{error}</b>"

        for control in (frame, method, layer, target, levels, opacity):
            control.observe(redraw, names="value")
        clip.observe(load, names="value")
        redraw()
        return w.VBox([w.HBox([frame, method, layer]), w.HBox([target, levels, opacity]), clip, message, out])

    def show(self, **default_view):
        """Display the controls, and the default view as a static figure (for reports)."""
        from IPython.display import display

        display(self.controls())
        return self.view(**default_view)


def compare_view(explorers: dict, frame: int = 0, method: str = DEFAULT_METHOD, layer=None,
                 target=None, opacity: float = 0.5):
    """Two (or more) models side by side on the same frame: {name: Explorer} (each explorer
    caches its explanations, so moving the frame only redraws)."""
    fig, axes = plt.subplots(1, len(explorers), figsize=(3.2 * len(explorers), 3.4), squeeze=False)
    for ax, (name, explorer) in zip(axes[0], explorers.items()):
        result = explorer.explanation(method, layer, target)
        ax.imshow(explorer.image(frame, method, layer, target, levels=(), opacity=opacity))
        ax.set_xticks([]), ax.set_yticks([])
        predicted = result.class_names[result.predicted[0]]
        ax.set_title(f"{name}\npredicts {predicted} ({result.probabilities[0].max():.2f})", fontsize=8)
    fig.suptitle(f"{method} @ {result.layer}, frame {frame}", fontsize=9)
    fig.tight_layout()
    return fig


def compare_models(models_: dict, clip="fight_01", method: str = DEFAULT_METHOD, layer=None):
    """The comparison as a widget (frame slider and method), plus its default static view."""
    import ipywidgets as w
    from IPython.display import display

    explorers = {name: Explorer(model, clip) for name, model in models_.items()}
    frames = next(iter(explorers.values())).frames
    frame = w.IntSlider(0, 0, frames - 1, description="frame")
    chosen = w.Dropdown(options=METHODS, value=method, description="method")
    out = w.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            compare_view(explorers, frame.value, chosen.value, layer)
            plt.show()

    frame.observe(redraw, names="value")
    chosen.observe(redraw, names="value")
    redraw()
    display(w.VBox([w.HBox([frame, chosen]), out]))
    return compare_view(explorers, 0, method, layer)
