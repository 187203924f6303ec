"""What every map goes through: per-frame normalization, upsampling to the clip's size,
from a layer's time steps to the clip's frames, and the blur baseline."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["normalize_per_frame", "upsample", "to_frames", "blurred"]


def normalize_per_frame(maps: np.ndarray) -> np.ndarray:
    """Scale each frame of non-negative maps (..., H, W) to [0, 1] by its maximum; zero stays zero."""
    maps = np.asarray(maps, np.float32)
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of maps (..., h, w) to (..., size, size), pixel centres aligned as in
    tf.image.resize and keras.ops.image.resize (OpenCV's INTER_LINEAR)."""
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = np.asarray(maps, np.float32).reshape((-1, h, w))
    resized = [cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) for m in flat]
    return np.stack(resized).reshape(lead + (size, size)) if resized else np.zeros(lead + (size, size), np.float32)


def to_frames(maps: np.ndarray, frames: int) -> np.ndarray:
    """Maps (N, S, h, w) of a layer with S time steps at the clip's T frames (N, T, h, w), by
    linear interpolation in time with step and frame centres aligned (`upsample`'s rule, as for
    a Conv3D layer with temporal stride or pooling); the maps themselves when S == T."""
    steps = maps.shape[1]
    if steps == frames:
        return maps
    position = np.clip((np.arange(frames) + 0.5) * steps / frames - 0.5, 0, steps - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, steps - 1)
    weight = (position - low).astype(np.float32)[:, None, None]
    return (1 - weight) * maps[:, low] + weight * maps[:, high]


def blurred(clips: np.ndarray) -> np.ndarray:
    """Each frame under a Gaussian blur of sigma = frame height / 12 (5.3 px at 64 px): the
    baseline of ``integrated_gradients_blur`` (Sturmfels et al., 2020, "Visualizing the
    impact of feature attribution baselines"), the scene without its detail."""
    clips = np.asarray(clips, np.float32)
    sigma = clips.shape[-3] / 12
    frames = clips.reshape((-1,) + clips.shape[-3:])
    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames]).reshape(clips.shape)
