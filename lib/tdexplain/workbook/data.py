"""Clips for the workbook: synthetic surveillance scenes with ground truth, and real video files.

A clip is ``(T, H, W, 3)`` RGB in 0..255; a batch is ``(N, T, H, W, 3)``. OpenCV's BGR
frames are converted to RGB here, at the file boundary, and nowhere else.
"""

from __future__ import annotations

import logging
import os
import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from . import synthetic
from .synthetic import CLASSES, TASKS

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 32, 224
MAX_FRAMES = 64
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
FIT_POLICIES = ("pad", "crop", "stretch")
SHORT_POLICIES = ("error", "loop", "pad")

__all__ = [
    "SyntheticClip", "SyntheticSet", "VideoInfo", "synthetic_clip", "synthetic_set",
    "synthetic_dataset",
    "read_video", "read_mask", "read_events", "video_info", "video_header", "write_video", "VideoWriter", "iter_frames", "load_folder",
]


# --------------------------------------------------------------------------- validation

def _positive_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def _choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


# --------------------------------------------------------------------------- synthetic data

@dataclass
class SyntheticClip:
    """One rendered clip with its ground truth.

    frames: (T, H, W, 3) uint8 RGB. mask: (T, H, W) bool, the pixels carrying the class
    evidence (where). events: (T,) bool, the frames that hold the event (when): every frame
    in the posture task; in the temporal task at most half of them, none in a normal clip,
    and the mask is empty outside them. event: the temporal task's (start, end) in clip time
    [0, 1], or None. boxes: per frame, a list of (object name, x0, y0, x1, y1), inclusive.
    objects: the names and kinds of the drawn objects, indexed by the ids in `id_maps`.
    poses: (T, len(synthetic.POSES)) float32, what each frame shows of the people
    (`synthetic.pose_targets`): per-frame targets to pretrain a frame network on.
    """

    label: str
    frames: np.ndarray
    mask: np.ndarray
    boxes: list
    id_maps: np.ndarray
    objects: list
    events: np.ndarray
    event: tuple | None
    poses: np.ndarray

    @property
    def label_index(self) -> int:
        return CLASSES.index(self.label)


def synthetic_clip(label: str | int, frames: int = 8, size: int = 64, seed: int = 0,
                   hidden: tuple = (), pace: float = 1.0, task: str = "temporal") -> SyntheticClip:
    """Render one synthetic surveillance clip of class `label` ("normal", "fight", "shooting").

    Deterministic for a seed. `hidden` leaves out kinds of objects ("evidence",
    "distractor", "scenery") while keeping every random choice, for checking the masks.
    `pace` scales how fast the people move (their limbs' rhythm, fighting included, and
    their walking speed): 0.25 plays the same scene four times slower, 0 freezes each person
    in one pose. Moments (a gun raised, a shot, a bystander's reaction) keep their times.

    `task` (see `tdexplain.workbook.synthetic`): "temporal" (the shipped models' task), where the class
    lives in time: a fight is two people whose slow sparring turns fast for a part of the
    clip, a shooting a burst of muzzle flashes in a part of the clip followed by a bystander
    ducking, and normal clips hold the same poses; or "posture", where the evidence is in
    every frame and any frame tells the class.
    """
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 0 <= label < len(CLASSES):
            raise ValueError(f"label index must be in 0..{len(CLASSES) - 1}, got {label}")
        label = CLASSES[label]
    _choice("label", label, CLASSES)
    frames = _positive_int("frames", frames, 1, MAX_FRAMES)
    size = _positive_int("size", size, MIN_SIZE, MAX_SIZE)
    if not (isinstance(pace, (int, float)) and 0 <= pace <= 10):
        raise ValueError(f"pace must be a number from 0 (frozen) to 10, got {pace!r}")
    _choice("task", task, TASKS)
    scene = synthetic.plan_scene(label, size, np.random.default_rng(seed), task)
    scene.people = [dataclasses.replace(person, tempo=person.tempo * pace, speed=person.speed * pace,
                                        fast_tempo=person.fast_tempo * pace)
                    for person in scene.people]
    pixels, id_maps, objects = synthetic.render(scene, frames, hidden=hidden)
    return SyntheticClip(label=label, frames=pixels,
                         mask=synthetic.evidence_mask(id_maps, objects),
                         boxes=synthetic.evidence_boxes(id_maps, objects),
                         id_maps=id_maps, objects=objects,
                         events=synthetic.event_frames(scene, frames), event=scene.event,
                         poses=synthetic.pose_targets(scene, frames))


@dataclass
class SyntheticSet:
    """Clips of chosen classes with their ground truth, stacked: clips (N, T, H, W, 3) float32
    (what an Explainer takes), labels (N,) class indices, masks (N, T, H, W) bool (where),
    events (N, T) bool (when), and the `SyntheticClip` of each (`scenes`)."""

    clips: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    events: np.ndarray
    scenes: list


def synthetic_set(classes, per_class: int, frames: int = 8, size: int = 64, seed: int = 0,
                  task: str = "temporal") -> SyntheticSet:
    """`per_class` clips of each of `classes` (names or indices), class by class, the i-th clip
    of every class rendered from seed ``seed + i``: a fixed, ordered set for figures and
    evaluations (clips ``k * per_class`` to ``(k + 1) * per_class - 1`` are of ``classes[k]``).
    Sets whose seed ranges do not overlap share no clip; `synthetic_dataset` draws a shuffled
    one for training."""
    if isinstance(classes, (str, int, np.integer)) or not len(classes):
        raise ValueError(f"classes must be a non-empty list of class names or indices, got {classes!r}")
    per_class = _positive_int("per_class", per_class)
    scenes = [synthetic_clip(label, frames, size, seed + i, task=task)
              for label in classes for i in range(per_class)]
    return SyntheticSet(clips=np.stack([scene.frames for scene in scenes]).astype(np.float32),
                        labels=np.array([scene.label_index for scene in scenes]),
                        masks=np.stack([scene.mask for scene in scenes]),
                        events=np.stack([scene.events for scene in scenes]), scenes=scenes)


def synthetic_dataset(n: int = 96, frames: int = 8, size: int = 64, seed: int = 0,
                      with_events: bool = False, task: str = "temporal", with_poses: bool = False):
    """A balanced, shuffled dataset: clips (N, T, H, W, 3) uint8, labels (N,) int, masks (N, T, H, W) bool,
    with `with_events`, events (N, T) bool: the frames that hold each clip's event, and with
    `with_poses`, poses (N, T, P) float32: what each frame shows of the people (`SyntheticClip.poses`).

    Class i of ``CLASSES`` has ``n // 3`` or ``n // 3 + 1`` clips. Deterministic for a seed;
    each clip has its own seed drawn from it, so datasets of different seeds share no clip.
    The masks are the ground truth for where, the events for when (every frame in the
    posture task; in the temporal task at most half of them, none in a normal clip, whose
    mask is empty too). `task`: as in `synthetic_clip`.
    """
    n = _positive_int("n", n)
    frames = _positive_int("frames", frames, 1, MAX_FRAMES)
    size = _positive_int("size", size, MIN_SIZE, MAX_SIZE)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    clip_seeds = np.random.SeedSequence(seed).generate_state(n)
    clips = np.empty((n, frames, size, size, 3), np.uint8)
    masks = np.empty((n, frames, size, size), bool)
    events = np.empty((n, frames), bool)
    poses = np.empty((n, frames, len(synthetic.POSES)), np.float32)
    for i, (label, clip_seed) in enumerate(zip(labels, clip_seeds)):
        clip = synthetic_clip(int(label), frames, size, int(clip_seed), task=task)
        clips[i], masks[i], events[i], poses[i] = clip.frames, clip.mask, clip.events, clip.poses
    return ((clips, labels.astype(np.int64), masks) + ((events,) if with_events else ())
            + ((poses,) if with_poses else ()))


# --------------------------------------------------------------------------- video files

@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Length in seconds (0 when the file reports no frame rate)."""
        return self.frames / self.fps if self.fps > 0 else 0.0


def _open(path) -> tuple[cv2.VideoCapture, Path]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file; expected a video file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"{path} is not a readable video (OpenCV could not open it)")
    return capture, path


def _to_rgb(frame: np.ndarray, path: Path) -> np.ndarray:
    """OpenCV's frame (BGR, BGRA or gray) as RGB uint8: the one place colours are converted."""
    if frame.dtype != np.uint8:  # 16-bit videos: keep the 0..255 contract
        frame = (frame / np.iinfo(frame.dtype).max * 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[-1] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[-1] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    if frame.shape[-1] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    raise ValueError(f"{path}: frames with {frame.shape[-1]} channels; expected 1, 3 or 4")


def _decode(path) -> tuple[list, Path]:
    """Every frame of the file, as RGB."""
    decoded = list(iter_frames(path))
    if not decoded:
        raise ValueError(f"{path} has no decodable frame (corrupt or not a video)")
    return decoded, Path(path)


def iter_frames(path):
    """Yield the frames of a video file one by one, as RGB uint8 (H, W, 3)."""
    capture, path = _open(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield _to_rgb(frame, path)
    finally:
        capture.release()


def content_box(height: int, width: int, size: tuple[int, int], fit: str = "pad") -> tuple:
    """Where a (height, width) frame lands in a `size` image after `fit_frame`: (top, left,
    content height, content width) for "pad"; for "crop", the negative offsets of the
    scaled frame; for "stretch", the whole image."""
    out_h, out_w = size
    if fit == "stretch":
        return 0, 0, out_h, out_w
    scale = (min if fit == "pad" else max)(out_h / height, out_w / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return (out_h - new_h) // 2, (out_w - new_w) // 2, new_h, new_w


def video_header(path) -> VideoInfo:
    """Frame rate and size of a video file from its container, without decoding a frame: what a
    stream needs before its first frame. `frames` is the container's claim (0 when it has none,
    and not always right): `video_info` counts by decoding."""
    capture, path = _open(path)
    try:
        fps, count = float(capture.get(cv2.CAP_PROP_FPS) or 0.0), int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if width <= 0 or height <= 0:
        raise ValueError(f"{path} has no frame size in its header (corrupt or not a video)")
    return VideoInfo(path=str(path), frames=max(count, 0), fps=fps, width=width, height=height)


def video_info(path) -> VideoInfo:
    """Frame count, frame rate and size of a video file (the count is from decoding, not the header)."""
    capture, path = _open(path)
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count, shape = 0, None
        while capture.grab():
            if shape is None:
                ok, frame = capture.retrieve()
                shape = frame.shape if ok else None
            count += 1
    finally:
        capture.release()
    if count == 0 or shape is None:
        raise ValueError(f"{path} has no decodable frame (corrupt or not a video)")
    return VideoInfo(path=str(path), frames=count, fps=fps, width=shape[1], height=shape[0])


def fit_frame(frame: np.ndarray, size: tuple[int, int], fit: str,
            interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Resize a frame (or mask) to `size` (height, width), keeping the aspect by padding with
    black ("pad") or center-cropping ("crop"), or not ("stretch")."""
    height, width = size
    top, left, new_h, new_w = content_box(*frame.shape[:2], size, fit)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    if fit == "stretch":
        return resized
    if fit == "crop":
        return resized[-top:-top + height, -left:-left + width]
    out = np.zeros((height, width) + frame.shape[2:], frame.dtype)
    out[top:top + new_h, left:left + new_w] = resized
    return out


def _frame_indices(available: int, frames: int, start: int, stride, short: str, path) -> np.ndarray:
    """Which decoded frames make the clip, applying the `short` policy when too few exist."""
    if start >= available:
        raise ValueError(f"{path}: start={start} but the video has only {available} frames")
    remaining = available - start
    if stride is None:
        needed = frames
        if remaining >= frames:
            return start + np.linspace(0, remaining - 1, frames).round().astype(int)
    else:
        needed = (frames - 1) * stride + 1
        if remaining >= needed:
            return start + np.arange(frames) * stride
    if short == "error":
        raise ValueError(
            f"{path}: {frames} frames requested (stride {stride or 1}, from frame {start}) but "
            f"only {remaining} are available; pass short='loop' or short='pad' to accept it")
    step = stride or 1
    wanted = np.arange(frames) * step
    if short == "loop":
        return start + wanted % remaining
    return start + np.minimum(wanted, remaining - 1)  # pad: repeat the last frame


def read_video(path, frames: int = 8, size: int | tuple = 64, start: int = 0,
               stride: int | None = None, fit: str = "pad", short: str = "error") -> np.ndarray:
    """Read a clip ``(frames, H, W, 3)`` uint8 RGB from a video file.

    By default the frames are sampled uniformly over the video from `start`; with `stride`
    they are every `stride`-th frame from `start`. `size` is an int (square) or (height,
    width); `fit` keeps the aspect by padding ("pad") or center-cropping ("crop"), or
    ignores it ("stretch"). `short` says what to do when the video has too few frames:
    "error", "loop" back to the start, or "pad" by repeating the last frame.
    """
    frames, start, stride = _checked_picking(frames, start, stride, short)
    out_size = _size_pair(size)
    _choice("fit", fit, FIT_POLICIES)
    decoded, path = _decode(path)
    indices = _frame_indices(len(decoded), frames, start, stride, short, path)
    return np.stack([fit_frame(decoded[i], out_size, fit) for i in indices])


def read_mask(path, frames: int = 8, size: int | tuple = 64, start: int = 0,
              stride: int | None = None, fit: str = "pad", short: str = "error") -> np.ndarray:
    """Read the evidence mask ``(frames, H, W)`` saved beside a sample clip (``*_mask.npz``).

    Frames are picked and resized exactly as `read_video` picks and resizes the clip's, so
    the mask lines up with the clip read with the same arguments.
    """
    frames, start, stride = _checked_picking(frames, start, stride, short)
    out_size = _size_pair(size)
    _choice("fit", fit, FIT_POLICIES)
    mask, path = _ground_truth(path, "mask")
    indices = _frame_indices(len(mask), frames, start, stride, short, path)
    return np.stack([fit_frame(mask[i].astype(np.uint8), out_size, fit, cv2.INTER_NEAREST)
                     for i in indices]).astype(bool)


def read_events(path, frames: int = 8, start: int = 0, stride: int | None = None,
                short: str = "error") -> np.ndarray:
    """Read which frames hold the event, ``(frames,)`` bool, from the ground truth saved beside a
    sample clip (``*_mask.npz``), for the frames `read_video` picks with the same arguments."""
    frames, start, stride = _checked_picking(frames, start, stride, short)
    events, path = _ground_truth(path, "events")
    return events[_frame_indices(len(events), frames, start, stride, short, path)].astype(bool)


def _checked_picking(frames, start, stride, short) -> tuple[int, int, int | None]:
    """The arguments that pick a clip's frames from a file, checked: (frames, start, stride)."""
    _choice("short", short, SHORT_POLICIES)
    return (_positive_int("frames", frames), _positive_int("start", start, 0),
            None if stride is None else _positive_int("stride", stride))


def _ground_truth(path, name: str) -> tuple[np.ndarray, Path]:
    """One array of a sample clip's ground-truth file, with a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    with np.load(path) as saved:
        if name not in saved:
            raise ValueError(f"{path} has no {name!r} array; expected a file written by make_samples.py")
        return saved[name], path


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
        return _positive_int("size[0]", size[0]), _positive_int("size[1]", size[1])
    side = _positive_int("size", size)
    return side, side


class VideoWriter:
    """Writes RGB frames one at a time to an MP4 (use as a context manager).

    codec "h264" plays in browsers and common players; it needs an even width and height,
    so odd sizes fall back to "mp4v" (MPEG-4 part 2, at high quality). Both are encoded by
    the ffmpeg that the imageio-ffmpeg package ships.
    """

    def __init__(self, path, width: int, height: int, fps: float = 8.0, codec: str = "h264"):
        import imageio_ffmpeg

        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        _choice("codec", codec, ("h264", "mp4v"))
        self.path, self.shape, self.count = Path(path), (height, width), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if codec == "h264" and height % 2 == 0 and width % 2 == 0:
            options = dict(codec="libx264", pix_fmt_out="yuv420p", output_params=["-crf", "18"])
        else:
            options = dict(codec="mpeg4", pix_fmt_out="yuv420p", output_params=["-q:v", "2"])
        try:
            self._writer = imageio_ffmpeg.write_frames(str(self.path), (width, height), fps=fps,
                                                       macro_block_size=1, **options)
            self._writer.send(None)
        except (OSError, RuntimeError) as error:
            raise OSError(f"cannot write a video to {self.path}: {error}") from error

    def write(self, frame) -> None:
        frame = np.clip(np.asarray(frame), 0, 255).astype(np.uint8)
        if frame.shape != self.shape + (3,):
            raise ValueError(f"frame must be {self.shape + (3,)} RGB, got {frame.shape}")
        self._writer.send(np.ascontiguousarray(frame).tobytes())
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def write_video(path, frames, fps: float = 8.0, codec: str = "h264") -> Path:
    """Write RGB frames ``(T, H, W, 3)`` (uint8, or float 0..255) as an MP4 that OpenCV reads
    back (see `VideoWriter` for the codecs)."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise ValueError(f"frames must have shape (T, H, W, 3) RGB, got {array.shape}")
    with VideoWriter(path, array.shape[2], array.shape[1], fps, codec) as writer:
        for frame in array:
            writer.write(frame)
    return writer.path


def load_folder(root, frames: int = 8, size: int = 64, fit: str = "pad", short: str = "loop",
                on_error: str = "skip", progress: bool = True):
    """Load a class-per-subfolder video dataset (UCF-Crime style).

    Returns clips (N, T, H, W, 3) uint8, labels (N,) int, and the class names (the sorted
    subfolder names). Unreadable files are skipped with a logged warning
    (``on_error="skip"``) or raise (``on_error="raise"``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    _choice("on_error", on_error, ("skip", "raise"))
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = [(path, label) for label, name in enumerate(class_names)
             for path in sorted((root / name).iterdir())
             if path.suffix.lower() in VIDEO_EXTENSIONS]
    if not files:
        raise ValueError(f"{root} has no video files in class subfolders "
                         f"(expected {root}/<class>/<video>{VIDEO_EXTENSIONS[0]})")
    clips, labels = [], []
    for path, label in tqdm(files, desc=f"reading {root.name}", disable=not progress):
        try:
            clips.append(read_video(path, frames, size, fit=fit, short=short))
        except (ValueError, OSError) as error:
            if on_error == "raise":
                raise
            log.warning("skipping %s: %s", path, error)
            continue
        labels.append(label)
    if not clips:
        raise ValueError(f"no readable video in {root}")
    return np.stack(clips), np.array(labels, np.int64), tuple(class_names)


def sample_path(name: str) -> str:
    """Path of a file shipped with the package in ``tdexplain/data_samples/`` (in a checkout,
    ``data_samples/`` links there), found through `importlib.resources`, so an installed
    package finds its clips and demo model as a checkout does."""
    return os.fspath(resources.files("tdexplain") / "data_samples" / name)
