"""The reviewer's app: why was this video flagged? No code to write.

Choose a shipped sample or give a video file path, a model (the demo model by default), a
method, a layer and a target, and press "Explain". A model with several outputs or several
inputs of clips shows a choice of each; one with other inputs (metadata beside the clips)
shows a field per input for a .npy file of one sample, held for every window. The app runs
`video.explain_video` (the command line's `tdexplain explain`), shows how many windows are done
while it runs, then the verdict, the class probabilities of every window over time, the frames
with their heat and contours (each saying which method, layer and class the heat shows), and
links to download the overlay MP4 and the summary JSON. The files are written under
explained/ in the notebook's folder and served from there: by Voila (`make app` serves
app/reviewer.ipynb with the settings of app/voila.py, code hidden) or by JupyterLab. Needs the
`notebooks` extra (ipywidgets; `app` adds Voila): importing this module without it says so.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from ..engine import graphs, registry, shapes
from ..engine.explainer import Explainer
from ..extras import require
from ..methods import DEFAULT_METHOD, METHODS
from ..workbook import models
from . import video

require("tdexplain.interfaces.app", "ipywidgets", "IPython")  # the notebooks extra, before widgets says it

from .widgets import PATH_FIELD, error_html, sample_clips, video_path  # noqa: E402 - after the check

__all__ = ["ReviewerApp"]


def _png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return encoded.tobytes()


def _file_url(path: Path) -> str:
    """The address a page downloads a file of the notebook's folder (the kernel's working folder)
    from. Voila, which tells its kernels its base URL, serves its root folder at
    <base>/voila/files/ (app/voila.py says which files); JupyterLab turns a relative link in an
    output into its own /files/ address of the file."""
    relative = quote(Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix())
    base = os.environ.get("VOILA_BASE_URL")
    return relative if base is None else f"{base.rstrip('/')}/voila/files/{relative}"


def _download_link(path: Path) -> str:
    """A link to the file on the server: the page holds its address, never its bytes."""
    return (f'<a download="{html.escape(path.name)}" href="{html.escape(_file_url(path))}" target="_blank">'
            f"download {html.escape(path.name)}</a> ({_size(path.stat().st_size)})")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


class ReviewerApp:
    """The app's controls and results; `widget` is the box to display, `explain()` what the
    Explain button runs (also callable from code and tests). out_root: the folder each
    explanation gets a folder of its own in, inside the notebook's folder (the server serves
    only that); by default explained/ there."""

    def __init__(self, clip: str = "shooting_01", model_path: str = models.DEMO_MODEL, out_root=None):
        import ipywidgets as w

        self.out_root = Path(out_root or "explained").resolve()
        if not self.out_root.is_relative_to(Path.cwd().resolve()):
            raise ValueError(f"out_root must be inside the notebook's folder {Path.cwd()} (the server "
                             f"serves only files there), got {out_root}")
        self.summary, self.frame_count, self._folder, self._target = None, 0, None, None
        self.video = w.Combobox(value=clip, options=list(sample_clips()), description="video",
                                placeholder="sample name or video file path", layout=w.Layout(**PATH_FIELD))
        self.model = w.Text(value=str(model_path), description="model", layout=w.Layout(**PATH_FIELD),
                            continuous_update=False)
        self.output = w.Dropdown(description="output")
        self.clip_input = w.Dropdown(description="clips in")
        self.other_inputs = w.VBox()  # one Text per other input: a .npy file of one sample
        self.method = w.Dropdown(options=METHODS, value=DEFAULT_METHOD, description="method")
        self.layer = w.Dropdown(description="layer")
        self.target = w.Dropdown(description="target")
        self.run = w.Button(description="Explain", button_style="primary")
        self.status = w.HTML()
        self.progress = w.IntProgress(0, 0, 1, description="windows", layout=w.Layout(display="none"))
        self.verdict = w.HTML()
        self.timeline = w.Image(format="png", layout=w.Layout(width="640px"))
        self.frame = w.IntSlider(0, 0, 0, description="frame", continuous_update=False, disabled=True)
        self.frame_caption = w.HTML()
        self.picture = w.Image(format="png", layout=w.Layout(width="480px"))
        self.downloads = w.Output()  # an output, so JupyterLab resolves its relative links
        for widget, name in ((self.status, "status"), (self.progress, "progress"), (self.verdict, "verdict"),
                             (self.timeline, "timeline"), (self.frame_caption, "caption"),
                             (self.picture, "picture"), (self.downloads, "downloads")):
            widget.add_class(f"tdexplain-{name}")
        self._models, self._explainer_for, self._choosing = {}, {}, False
        self._clear_results()
        self._load_model_choices()
        self.model.observe(lambda _: self._load_model_choices(), names="value")
        for choice in (self.output, self.clip_input):
            choice.observe(lambda _: self._load_layer_choices(), names="value")
        self.method.observe(lambda _: self._layer_applies(), names="value")
        self.run.on_click(lambda _: self.explain())
        self.frame.observe(lambda _: self._show_frame(), names="value")
        self.widget = w.VBox([
            w.HTML("<h2>Why was this video flagged?</h2>"),
            self.video, self.model, w.HBox([self.output, self.clip_input]), self.other_inputs,
            w.HBox([self.method, self.layer, self.target]), self.run, self.status, self.progress,
            self.verdict, self.timeline, self.frame, self.frame_caption, self.picture, self.downloads])

    def _load_model_choices(self) -> None:
        """The outputs and clip inputs of the chosen model (shown where there is a choice),
        then its layers and classes; or an error that names the file."""
        path = self.model.value
        try:
            if path not in self._models:
                self._models[path] = models.load_model(path)
        except (OSError, ValueError) as error:
            self._refuse(f"cannot load the model {path}: {error}")
            self._choosing = True  # no output or clip input to choose: the model is not there
            try:
                for choice in (self.output, self.clip_input):
                    choice.options, choice.layout.display = (), "none"
            finally:
                self._choosing = False
            self.other_inputs.children = []
            return
        model = self._models[path]
        clip_inputs = [graphs.input_name(t) for t in model.inputs if len(t.shape) == 5]
        self.other_inputs.children = []  # another model's files do not carry over
        self._choosing = True  # one _load_layer_choices, after both choices are set
        try:
            for choice, options in ((self.output, shapes.output_names(model)),
                                    (self.clip_input, clip_inputs or [graphs.input_name(model.inputs[0])])):
                choice.options, choice.value = options, options[0]
                choice.layout.display = None if len(options) > 1 else "none"
        finally:
            self._choosing = False
        self._load_layer_choices()

    def _load_layer_choices(self) -> None:
        """The layers and classes explained for the chosen output and clip input, and a field
        for each other input; or the model's error, in the status line."""
        path, clip_input = self.model.value, self.clip_input.value
        model = self._models.get(path)
        if self._choosing or model is None:
            return
        held = {graphs.input_name(t): t for t in model.inputs if graphs.input_name(t) != clip_input}
        try:  # zeros stand in for the other inputs' files here: the menus do not depend on them
            explainer = self._explainer_of({name: np.zeros([d or 1 for d in t.shape[1:]], t.dtype)
                                            for name, t in held.items()})
        except ValueError as error:
            self._refuse(f"cannot explain the model {path}: {error}")
            return
        import ipywidgets as w

        typed = {field.description: field.value for field in self.other_inputs.children}
        self._held_shapes = {name: tuple(t.shape[1:]) for name, t in held.items()}
        self.other_inputs.children = [
            w.Text(value=typed.get(name, ""), description=name, layout=w.Layout(**PATH_FIELD),
                   placeholder=f"a .npy file of one sample, shape {shape}")
            for name, shape in self._held_shapes.items()]
        self.layer.options, self.layer.value = explainer.inner_layers, explainer.default_layer
        self.target.options, self.target.value = ["predicted"] + list(explainer.class_names), "predicted"
        self.run.disabled, self.status.value = False, ""
        self._layer_applies()

    def _refuse(self, message: str) -> None:
        """Say why in the status line; no layer or target of the last choice stays to be chosen
        (the files typed for the other inputs stay, for the next output chosen)."""
        self.status.value = error_html(message)
        self.run.disabled = True
        self.layer.options = self.target.options = ()

    def _explainer_of(self, held: dict) -> Explainer:
        """The explainer of the chosen model, output and clip input, holding these values of the
        other inputs: one per choice and values, kept, so its compiled passes serve every
        Explain (`explain_video` takes it instead of loading the model again)."""
        key = (self.model.value, self.output.value, self.clip_input.value,
               tuple((name, np.asarray(value).tobytes()) for name, value in held.items()))
        if key not in self._explainer_for:
            self._explainer_for[key] = Explainer(self._models[self.model.value], output=self.output.value,
                                                 clip_input=self.clip_input.value, other_inputs=held)
        return self._explainer_for[key]

    def _held_values(self) -> dict:
        """The other inputs' values, read from their .npy files (checked by the explainer)."""
        held = {}
        for field in self.other_inputs.children:
            path = field.value.strip()
            if not path:
                raise ValueError(f"the model's input {field.description!r} needs a value: a .npy file of "
                                 f"one sample, shape {self._held_shapes[field.description]}")
            held[field.description] = video.read_held_input(field.description, path)
        return held

    def _layer_applies(self) -> None:
        self.layer.disabled = not registry.get(self.method.value).uses_layer

    @property
    def out(self) -> Path | None:
        """The folder of the last explanation's files (removed when the next one starts)."""
        return Path(self._folder.name) if self._folder else None

    @property
    def downloads_html(self) -> str:
        """The HTML of the download links ("" when there are none)."""
        return self.downloads.outputs[0]["data"]["text/html"] if self.downloads.outputs else ""

    def explain(self) -> dict | None:
        """Explain the chosen video; count its windows as they are explained, then fill the
        verdict, timeline, frames and downloads. Returns the summary, or None after an error
        (shown in the status line, naming the video or the input at fault)."""
        self._clear_results()  # at once: the last result is not this video's
        self.run.disabled = True
        if self._folder:
            self._folder.cleanup()
        self.out_root.mkdir(parents=True, exist_ok=True)
        self._folder = tempfile.TemporaryDirectory(prefix="tdexplain_", dir=self.out_root)
        typed, about = self.video.value.strip(), ""
        try:
            explainer = self._explainer_of(self._held_values())  # its errors name the input and its file
            about = f"cannot explain the video {typed!r}: "
            path = video_path(typed)
            self.status.value = f"reading {html.escape(Path(path).name)}..."
            self._target = None if self.target.value == "predicted" else self.target.value
            self.summary = video.explain_video(
                path, self.out, model_path=self.model.value, method=self.method.value, target=self._target,
                progress=lambda done, total: self._count(done, total, Path(path).name),
                layer=self.layer.value if not self.layer.disabled else None, explainer=explainer)
        except Exception as error:  # noqa: BLE001 - the reviewer reads it in the status line
            message = str(error) if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {error}"
            self.summary = None
            self.status.value = error_html(message if typed in message else about + message)
            return None
        finally:
            self.run.disabled = False
            self.progress.layout.display = "none"
        self.status.value = ""
        self._show_results()
        return self.summary

    def _count(self, done: int, total: int, name: str) -> None:
        """Windows done / total, in the progress bar and the status line."""
        self.status.value = f"explaining {html.escape(name)}: {done} of {total} windows done..."
        self.progress.layout.display = None
        self.progress.max, self.progress.value = total, done

    def _clear_results(self) -> None:
        """No result on screen: before the first, while the next is computed, after an error."""
        self.frame_count = 0  # first: moving the slider then draws nothing
        self.verdict.value = self.frame_caption.value = ""
        self.downloads.outputs = ()
        for image in (self.timeline, self.picture):
            image.value, image.layout.display = b"", "none"  # no broken-image placeholder
        self.frame.value, self.frame.max, self.frame.disabled = 0, 0, True

    def _show_results(self) -> None:
        summary = self.summary
        verdict = summary["verdict"]
        said = (f"<b>{html.escape(verdict['class'])}</b> (p = {verdict['probability']:.2f}) in window "
                f"{verdict['window']}, from {verdict['start_seconds']} s" if verdict else "<b>nothing flagged</b>")
        explained = "each window's predicted class" if self._target is None else f"'{self._target}'"
        note = (f'<br><span class="tdexplain-note" style="color: #b45309">note: {html.escape(summary["model"]["note"])}'
                f"</span>" if summary["model"]["note"] else "")
        self.verdict.value = (f"{html.escape(Path(summary['video']['path']).name)}: {said}; "
                              f"{video.windows_explained(summary)}; heat: "
                              f"{html.escape(video.heat_source(summary['method'], summary['layer']))} for "
                              f"{html.escape(explained)}{note}")
        self.timeline.value = (self.out / "timeline.png").read_bytes()
        self.frame_count = summary["overlay_frames"]
        self.frame.max, self.frame.disabled = max(self.frame_count - 1, 0), not self.frame_count
        self.frame.value = (verdict["first_frame"] if verdict else 0) if self.frame_count else 0
        for image in (self.timeline, self.picture):
            image.layout.display = None
        self._show_frame()
        links = [self.out / "overlay.mp4", self.out / "summary.json"]
        self.downloads.outputs = ({"output_type": "display_data", "metadata": {},
                                   "data": {"text/html": " &middot; ".join(map(_download_link, links)),
                                            "text/plain": "\n".join(map(str, links))}},)

    def overlay_frame(self, index: int) -> np.ndarray:
        """One frame of the overlay video (RGB), read from the file: a long video is never held
        in memory whole."""
        capture = cv2.VideoCapture(str(self.out / "overlay.mp4"))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok:
            raise ValueError(f"the overlay video has no frame {index}")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _show_frame(self) -> None:
        if not self.frame_count:
            return
        index = self.frame.value
        window = next(w for w in self.summary["windows"] if w["first_frame"] <= index <= w["last_frame"])
        fps = self.summary["video"]["fps"] or 1.0
        self.picture.value = _png(self.overlay_frame(index))
        heat = video.heat_source(self.summary["method"], self.summary["layer"])
        self.frame_caption.value = html.escape(
            f"frame {index} ({index / fps:.2f} s), window {window['index']}: {window['predicted']} "
            f"(p = {window['probabilities'][window['predicted']]:.2f}); heat: {heat} for '{window['explained_class']}'")

    def show(self) -> None:
        from IPython.display import display

        display(self.widget)
