"""The check every clip goes through before the model sees it."""

from __future__ import annotations

import numpy as np

__all__ = ["check_clips"]


def check_clips(clips, frames: int | None = None, size: int | None = None,
                name: str = "clips") -> np.ndarray:
    """Validate a clip ``(T, H, W, 3)`` or batch ``(N, T, H, W, 3)``; return a float32 batch.

    Raises a ValueError that names `name` and the expected shape on any mismatch, and on
    NaN or infinite values.
    """
    array = np.asarray(clips)
    if array.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold numbers (uint8 or float 0..255), got dtype {array.dtype}")
    if array.ndim == 4:
        array = array[None]
    expected_t = "T" if frames is None else str(frames)
    expected_hw = "H, W" if size is None else f"{size}, {size}"
    expected = f"(N, {expected_t}, {expected_hw}, 3) or ({expected_t}, {expected_hw}, 3)"
    if array.ndim != 5 or array.shape[-1] != 3:
        raise ValueError(f"{name} must have shape {expected} (RGB), got {np.shape(clips)}")
    if frames is not None and array.shape[1] != frames:
        raise ValueError(f"{name} must have {frames} frames per clip, got {array.shape[1]} "
                         f"(shape {np.shape(clips)}, expected {expected})")
    if size is not None and array.shape[2:4] != (size, size):
        raise ValueError(f"{name} frames must be {size}x{size}, got "
                         f"{array.shape[2]}x{array.shape[3]} (shape {np.shape(clips)})")
    if 0 in array.shape:
        raise ValueError(f"{name} is empty: shape {np.shape(clips)}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; expected pixels in 0..255")
    return array
