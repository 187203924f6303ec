"""Explaining an archive: every video of a folder, a glob or a list file, in bounded memory,
in a run that resumes where it stopped.

Each video is decoded once, as a stream. Its frames are resized to the model's input as they
arrive, and only the last window's worth of them is kept (`stream_windows`). The windows
(`window` video frames every `stride`; by default 3 s every 1 s) are predicted in batches of
`batch_windows`, padded at the end so that one compiled shape serves them all. The windows
that are flagged (a class other than normal at or above its threshold), or every window with
``explain="all"``, are explained one by one: their frame importance and the contours of their
maps go into the video's summary, and with ``overlays`` a short clip of the frames the model
saw, with the heat and contours drawn.

What a run writes into `out`:

- ``manifest.jsonl``: one line per video once it is finished, done or failed (with the
  reason); a run started again skips the videos listed there, so a killed run loses at most
  the video it was on, and nothing is written twice;
- ``videos/<id>/summary.json`` (and ``timeline.png``, the overlays) per video;
- ``windows.csv``: every window of every video, one row each (the probabilities, flagged,
  explained), rebuilt from the summaries at the end of a run;
- ``index.html``: a row per video, with its verdict, its timeline and a link to its summary.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import html
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from ..engine.explainer import Explainer
from ..extras import check_engine, connect_ray, task_slots
from ..methods import DEFAULT_METHOD
from ..methods.frames import frame_importance
from ..workbook import data, models
from . import contours, viz
from .video import (DEMO_LINE, WindowClip, caption, check_method_options, demo_note, frame_rate, heat_source, inside_picture,
                    layer_of, normal_class, overlay_frame, stream_windows, timeline_figure, window_and_stride)

__all__ = ["EXPLAIN_MODES", "ARCHIVE_OPTIONS", "find_videos", "BatchSettings", "run_batch"]

EXPLAIN_MODES = ("flagged", "all", "none")
# The default method's options at archive scale: the fewest Integrated Gradients steps whose
# pointing game and energy on the evidence are each within 0.02 of the best (4 against 64: 0.932
# and 0.444 against 0.932 and 0.462, in 9% of the time; benchmarks/bench_default_cost.py).
ARCHIVE_OPTIONS = {"integrated_gradients_blur": {"ig_steps": 4}}


def find_videos(archive) -> list[Path]:
    """The videos of an archive: a folder (every video file under it), a glob pattern, or a
    text file listing one video per line (relative paths from the file's folder; blank lines
    and lines starting with # are skipped). Sorted, each once."""
    archive = str(archive)
    path = Path(archive)
    if path.is_file() and path.suffix.lower() not in data.VIDEO_EXTENSIONS:
        lines = [line.strip() for line in path.read_text().splitlines()]
        found = [path.parent / line for line in lines if line and not line.startswith("#")]
    elif path.exists():
        found = [path]
    elif glob.has_magic(archive):
        found = [Path(p) for p in glob.glob(archive, recursive=True)]
    else:
        raise FileNotFoundError(f"archive not found: {archive} (expected a folder, a glob pattern "
                                f"or a text file listing videos)")
    # A folder stands for every video under it; a listed file that is missing stays, to fail alone.
    found = [video for p in found for video in
             (p.rglob("*") if p.is_dir() else [p]) if not video.is_dir()]
    videos = sorted({p.resolve() for p in found if p.suffix.lower() in data.VIDEO_EXTENSIONS or not p.exists()})
    if not videos:
        raise ValueError(f"no video in {archive} (looked for {', '.join(data.VIDEO_EXTENSIONS)})")
    return videos


@dataclass(frozen=True)
class BatchSettings:
    """What every video of a run is explained with (picklable: a worker rebuilds the rest)."""
    model_path: str = models.DEMO_MODEL
    method: str = DEFAULT_METHOD
    layer: str | None = None
    window: int | None = None  # video frames; None: WINDOW_SECONDS of each video
    stride: int | None = None  # video frames; None: one second of each video
    explain: str = "flagged"
    thresholds: dict = field(default_factory=dict)  # {class: p}; 0.5 for the others but normal
    batch_windows: int = 16
    overlays: bool = False
    options: dict | None = None  # the method's options; None: ARCHIVE_OPTIONS's for the method

    def method_options(self) -> dict:
        return ARCHIVE_OPTIONS.get(self.method, {}) if self.options is None else self.options


def _video_id(video: Path) -> str:
    """A folder name for a video: its name and a digest of its full path (two cameras' files
    of the same name stay apart)."""
    return f"{video.stem}-{hashlib.sha1(str(video).encode()).hexdigest()[:8]}"


class _Archive:
    """The run's folder: the manifest that makes it resumable, and what is rebuilt from it."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.manifest = self.out / "manifest.jsonl"
        try:
            (self.out / "videos").mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(f"cannot write into the output folder {self.out}: {error.strerror or error}") from error

    def rows(self) -> list[dict]:
        lines = self.manifest.read_text().splitlines() if self.manifest.exists() else []
        return [row for line in lines if (row := _parsed(line)) is not None]

    def finished(self) -> set[str]:
        return {row["video"] for row in self.rows()}

    def append(self, row: dict) -> None:
        cut = False
        if self.manifest.exists() and self.manifest.stat().st_size:
            with open(self.manifest, "rb") as manifest:
                manifest.seek(-1, os.SEEK_END)
                cut = manifest.read(1) != b"\n"
        with open(self.manifest, "a") as manifest:
            manifest.write(("\n" if cut else "") + json.dumps(row) + "\n")  # after a line cut by a kill
            manifest.flush()
            os.fsync(manifest.fileno())


def _parsed(line: str) -> dict | None:
    """A manifest line, or None for one cut by a kill (its video is run again)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


class _VideoExplainer:
    """One model, loaded once, and its compiled passes: explains video after video (a Ray
    worker holds one)."""

    def __init__(self, settings: BatchSettings):
        self.options = settings.method_options()
        check_method_options(settings.method, self.options)
        if settings.explain not in EXPLAIN_MODES:
            raise ValueError(f"explain must be one of {EXPLAIN_MODES}, got {settings.explain!r}")
        if settings.batch_windows < 1:
            raise ValueError(f"batch_windows must be >= 1, got {settings.batch_windows}")
        self.settings = settings
        self.explainer = Explainer(models.load_model(settings.model_path))
        self.layer = self.explainer.check_layer(settings.layer, (settings.method,))
        names = self.explainer.class_names
        self.normal = normal_class(names)
        unknown = set(settings.thresholds) - set(names)
        if unknown:
            raise ValueError(f"thresholds name unknown classes {sorted(unknown)}; the model's classes: "
                             f"{', '.join(names)}")
        self.thresholds = {name: float(settings.thresholds.get(name, 0.5)) for name in names if name != self.normal}
        outside = {name: p for name, p in self.thresholds.items() if not 0 < p <= 1}
        if outside:
            raise ValueError(f"a threshold is a probability in (0, 1]; got {outside}")

    def window_sizes(self, fps: float) -> tuple[int, int]:
        window, stride = window_and_stride(fps, self.settings.window or None, self.settings.stride or None)
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
        return window, stride

    def run(self, video: Path, folder: Path) -> dict:
        """Explain one video into `folder`; its summary."""
        header = data.video_header(video)
        window, stride = self.window_sizes(header.fps)
        names = self.explainer.class_names
        summary = {
            "video": {"path": str(video), "fps": header.fps, "width": header.width, "height": header.height},
            "model": {"path": str(self.settings.model_path), "classes": list(names),
                      "note": demo_note(self.settings.model_path, video)},
            "method": self.settings.method, "layer": layer_of(self.settings.method, self.layer),
            "options": self.options,
            "window": window, "stride": stride, "thresholds": self.thresholds,
            "explain": self.settings.explain, "windows": [],
        }
        stream = stream_windows(video, self.explainer.frames, self.explainer.size, window, stride,
                                keep=overlay_frame if self.settings.overlays else None)
        batch = []
        for item in stream:
            batch.append(item)
            if len(batch) == self.settings.batch_windows:
                self._predict(batch, summary, header, folder)
                batch = []
        if batch:
            self._predict(batch, summary, header, folder)
        last = summary["windows"][-1]["last_frame"] if summary["windows"] else -1
        summary["video"]["frames"] = last + 1
        summary["verdict"] = _verdict(summary["windows"])
        summary["complete"] = True
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))
        timeline_figure(summary, names).savefig(folder / "timeline.png", dpi=60)
        plt.close("all")
        return summary

    def _predict(self, batch: list[WindowClip], summary: dict, header, folder: Path) -> None:
        """Predict a batch of windows in one call of the fixed batch size, then explain the
        windows that ask for it."""
        clips = np.stack([item.clip for item in batch]).astype("float32")
        padded = np.zeros((self.settings.batch_windows,) + clips.shape[1:], "float32")
        padded[:len(clips)] = clips
        probabilities = self.explainer.probabilities(padded)[:len(clips)]
        names = self.explainer.class_names
        for item, p in zip(batch, probabilities):
            w = item.window
            predicted = names[int(p.argmax())]
            flagged = [name for name, threshold in self.thresholds.items() if p[names.index(name)] >= threshold]
            entry = {"index": w.index, "first_frame": w.first, "last_frame": w.last,
                     "start_seconds": round(w.first / header.fps, 3) if header.fps > 0 else None,
                     "frames_seen": w.picked.tolist(), "tail": item.tail, "predicted": predicted,
                     "probabilities": {name: round(float(value), 6) for name, value in zip(names, p)},
                     "flagged": flagged, "explained": None}
            if self.settings.explain == "all" or (self.settings.explain == "flagged" and flagged):
                target = max(flagged, key=lambda name: p[names.index(name)]) if flagged else predicted
                entry["explained"] = self._explain(item, target, header, folder, summary["model"]["note"])
            summary["windows"].append(entry)

    def _explain(self, item: WindowClip, target: str, header, folder: Path, note: str | None) -> dict:
        method = self.settings.method
        clip = item.clip.astype("float32")
        result = self.explainer.explain(clip, methods=method, layer=self.layer, target=target,
                                        **self.options)
        importance = frame_importance(self.explainer, clip[None], target=result.target)[0]
        contents = [inside_picture(heat, header.height, header.width, self.explainer.size)
                    for heat in result.maps[method][0]]
        height, width = contents[0].shape
        scale = header.width / width  # model pixels to video pixels
        frames = [{"frame": frame_index,
                   "contours": [_in_video_pixels(region.summary(), scale) for region in contours.extract(content)]}
                  for frame_index, content in zip(item.window.picked.tolist(), contents)]
        explained = {"class": target, "frame_importance": [round(float(v), 6) for v in importance],
                     "frames": frames, "contours_traced_at": [height, width]}
        if item.originals is not None:
            notes = (DEMO_LINE,) if note else ()
            explained["overlay"] = _write_overlay(item, contents, target, heat_source(method, self.layer), notes,
                                                  folder / f"window_{item.window.index:05d}.mp4", header.fps)
        return explained


def _verdict(windows: list) -> dict | None:
    """The flagged window and class of the highest probability, if any window is flagged."""
    flagged = [(w["probabilities"][name], name, w) for w in windows for name in w["flagged"]]
    if not flagged:
        return None
    probability, name, w = max(flagged, key=lambda item: item[0])
    return {"window": w["index"], "class": name, "probability": probability, "first_frame": w["first_frame"],
            "last_frame": w["last_frame"], "start_seconds": w["start_seconds"]}


def _in_video_pixels(region: dict, scale: float) -> dict:
    region = dict(region)
    region["centroid"] = [round(c * scale, 1) for c in region["centroid"]]
    region["area"] = int(round(region["area"] * scale * scale))
    return region


def _write_overlay(item: WindowClip, contents, target: str, heat: str, notes: tuple, path: Path,
                   fps: float) -> str:
    """The frames the model saw, under their maps (`contents`: inside the padding, each scaled to its
    peak) with their contours, captioned with what they show."""
    drawn = []
    for frame, content in zip([item.originals[i] for i in item.window.picked], contents):
        heatmap = data.fit_frame(content, frame.shape[:2], "stretch")
        image = contours.draw(viz.heat_overlay(frame, heatmap), contours.extract(heatmap))
        drawn.append(caption(image, (f"heat: {heat} for {target}",) + notes))
    seconds = (item.window.last - item.window.first + 1) / frame_rate(fps)
    data.write_video(path, np.stack(drawn), fps=len(drawn) / seconds)  # plays as long as the window lasts
    return path.name


def run_batch(archive, out, settings: BatchSettings | None = None, progress: bool = True,
              engine: str = "local", address: str | None = None, workers: int | None = None,
              gpus_per_worker: float = 0) -> list[dict]:
    """Explain every video of `archive` (see `find_videos`) into `out`; the manifest's rows.

    Videos already in out/manifest.jsonl are skipped: a run started again, after a crash or
    a kill, does only what is missing. A video that cannot be read or explained becomes a
    failed row with its reason, and the others go on.

    engine: "local" (one process, Ray never imported) or "ray": Ray Data, one row per video,
    `workers` actors (default: one per CPU of the cluster) that each load the model once and
    keep its compiled passes, `gpus_per_worker` GPUs each; the cluster at `address` or
    $RAY_ADDRESS, else a local one. On a cluster of several machines `out` and the videos must
    be on a filesystem they all see. The driver alone writes the manifest, as rows come back."""
    check_engine(engine)
    settings = settings or BatchSettings()
    videos = find_videos(archive)
    runner = _VideoExplainer(settings)  # on the driver too: bad settings fail before any work
    folder = _Archive(out)
    finished = folder.finished()
    todo = [video for video in videos if str(video) not in finished]
    if engine == "local":
        rows = (_process(runner, video, folder.out / "videos") for video in todo)
    else:
        rows = _on_ray(settings, todo, folder.out / "videos", address, workers, gpus_per_worker)
    for row in tqdm(rows, total=len(todo), desc="videos", unit="video", disable=not progress):
        folder.append(row)
    rows = folder.rows()
    _write_windows_table(folder.out, rows)
    _write_index(folder.out, rows)
    return rows


class _RayWorker:
    """A Ray Data actor: the model loaded once, then video after video of its batches."""

    def __init__(self, settings: BatchSettings, videos: str):
        from ..engine import backend

        backend.quiet()
        self.runner, self.videos = _VideoExplainer(settings), Path(videos)

    def __call__(self, batch: dict) -> dict:
        rows = [_process(self.runner, Path(video), self.videos) for video in batch["video"]]
        return {"row": [json.dumps(row) for row in rows]}  # one column: rows differ in their keys


def _on_ray(settings: BatchSettings, videos: list, folder: Path, address, workers, gpus_per_worker):
    """The manifest rows of `videos`, explained by Ray Data actors, as they finish."""
    if not videos:
        return
    ray = connect_ray("tdexplain batch --engine ray", address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.verbose_progress = False  # the driver's own bar counts videos
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    slots = task_slots(ray, 1, gpus_per_worker)
    workers = min(workers or slots, slots)
    dataset = ray.data.from_items([{"video": str(video)} for video in videos],
                                  override_num_blocks=len(videos))
    explained = dataset.map_batches(
        _RayWorker, fn_constructor_args=(settings, str(folder)), batch_size=1,
        concurrency=min(workers, len(videos)), num_cpus=1, num_gpus=gpus_per_worker or None)
    # Ray Data restarts an actor that dies and retries its video (its default for actors).
    for row in explained.iter_rows():
        yield json.loads(row["row"])


def _process(runner: _VideoExplainer, video: Path, videos: Path) -> dict:
    """One video into videos/<id>/, through a partial folder renamed when done: its manifest row."""
    video_id = _video_id(video)
    final, partial = videos / video_id, videos / f"{video_id}.partial"
    for leftover in (final, partial):  # from a run killed before its manifest line
        shutil.rmtree(leftover, ignore_errors=True)
    partial.mkdir(parents=True)
    start = time.perf_counter()
    row = {"video": str(video), "id": video_id, "segment": "all"}
    try:
        summary = runner.run(video, partial)
    except (OSError, ValueError, RuntimeError) as error:
        shutil.rmtree(partial, ignore_errors=True)
        return row | {"status": "failed", "reason": f"{type(error).__name__}: {error}",
                      "seconds": round(time.perf_counter() - start, 2)}
    partial.rename(final)
    windows = summary["windows"]
    verdict = summary["verdict"]
    return row | {"status": "done", "frames": summary["video"]["frames"], "windows": len(windows),
                  "flagged": sum(bool(w["flagged"]) for w in windows),
                  "explained": sum(w["explained"] is not None for w in windows),
                  "verdict": verdict["class"] if verdict else None,
                  "seconds": round(time.perf_counter() - start, 2)}


def _write_windows_table(out: Path, rows: list[dict]) -> None:
    """windows.csv: one row per window of every finished video, read back from the summaries."""
    table = []
    for row in rows:
        if row["status"] != "done":
            continue
        summary = json.loads((out / "videos" / row["id"] / "summary.json").read_text())
        for w in summary["windows"]:
            table.append({"video": row["video"], "window": w["index"], "first_frame": w["first_frame"],
                          "last_frame": w["last_frame"], "start_seconds": w["start_seconds"],
                          "tail": w["tail"], "predicted": w["predicted"], "flagged": " ".join(w["flagged"]),
                          "explained": w["explained"] is not None}
                         | {f"p_{name}": value for name, value in w["probabilities"].items()})
    with open(out / "windows.csv", "w", newline="") as handle:
        if table:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)


def _write_index(out: Path, rows: list[dict]) -> None:
    """index.html: one row per video, failed ones with their reason."""
    cells = []
    for row in rows:
        name = html.escape(Path(row["video"]).name)
        if row["status"] == "done":
            link = f"videos/{row['id']}"
            verdict = html.escape(row["verdict"] or "nothing flagged")
            cells.append(f"<tr><td><a href='{link}/summary.json'>{name}</a></td><td>{verdict}</td>"
                         f"<td>{row['flagged']} of {row['windows']} windows flagged, {row['explained']} explained</td>"
                         f"<td><img src='{link}/timeline.png' height='90'></td></tr>")
        else:
            cells.append(f"<tr><td>{name}</td><td><b>failed</b></td><td colspan='2'>"
                         f"{html.escape(row['reason'])}</td></tr>")
    done = sum(row["status"] == "done" for row in rows)
    page = ("<!doctype html><meta charset='utf-8'><title>tdexplain: archive</title>"
            f"<h1>{done} of {len(rows)} videos explained</h1>"
            "<table border='1' cellpadding='4'><tr><th>video</th><th>verdict</th><th>windows</th>"
            "<th>timeline</th></tr>" + "".join(cells) + "</table>")
    (out / "index.html").write_text(page)
