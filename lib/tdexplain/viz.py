"""Figures of clips, masks and explanations, in one style for the whole project."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

FIGURES_DIR = Path("reports") / "figures"
EVIDENCE_COLOR = np.array([0.0, 0.9, 0.3])  # green, distinct from the heat colormap


def setup_style() -> None:
    """The project's matplotlib style: small, clean, readable by color-blind people."""
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
        "font.size": 9, "axes.titlesize": 9, "axes.spines.top": False,
        "axes.spines.right": False, "image.cmap": "viridis",
    })


def save_figure(fig, name: str, folder=None) -> Path:
    """Save `fig` as PNG into ``reports/figures/`` (or `folder`) and return the path."""
    folder = Path(folder) if folder is not None else FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path)
    return path


def overlay_mask(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame (H, W, 3, 0..255) with the mask's pixels tinted; returns float RGB in [0, 1]."""
    image = np.asarray(frame, np.float32) / 255.0
    tint = np.where(mask[..., None], (1 - alpha) * image + alpha * EVIDENCE_COLOR, image)
    return np.clip(tint, 0, 1)


def as_image(frame: np.ndarray) -> np.ndarray:
    """A frame as float RGB in [0, 1], whether it holds 0..255 pixels or is already in [0, 1]."""
    frame = np.asarray(frame, np.float32)
    return np.clip(frame / 255.0 if frame.max() > 1.0 else frame, 0, 1)


def clip_grid(rows, row_titles=None, frame_titles=None, title=None, scale: float = 1.3):
    """A grid with one clip (T, H, W, 3, 0..255 or float [0, 1]) per row; returns the figure."""
    rows = [np.asarray(r) for r in rows]
    frames = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), frames, figsize=(scale * frames, scale * len(rows)),
                             squeeze=False)
    for i, clip in enumerate(rows):
        for t in range(frames):
            ax = axes[i, t]
            ax.set_xticks([]), ax.set_yticks([])
            if t >= len(clip):
                ax.axis("off")
                continue
            ax.imshow(as_image(clip[t]))
            if i == 0 and frame_titles is not None:
                ax.set_title(frame_titles[t])
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
