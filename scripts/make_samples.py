"""Regenerate data_samples/clips: two synthetic clips per class, as MP4, with their masks.

Run with `make samples`. The clips are 24 frames of 128x128 at 8 fps (3 s), longer than
a model window, so the command line has several windows to slide over. They are written into
the package (lib/tdexplain/data_samples/, where data_samples/ links), so an install ships them.
"""

from pathlib import Path

import numpy as np

from tdexplain import data

FRAMES, SIZE, FPS = 24, 128, 8
SEEDS = {"normal": (101, 102), "fight": (201, 202), "shooting": (301, 302)}
OUT = Path(data.sample_path("clips"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for label, seeds in SEEDS.items():
        for number, seed in enumerate(seeds, start=1):
            clip = data.synthetic_clip(label, frames=FRAMES, size=SIZE, seed=seed)
            stem = f"{label}_{number:02d}"
            data.write_video(OUT / f"{stem}.mp4", clip.frames, fps=FPS)
            rows = [(t, *box) for t, frame_boxes in enumerate(clip.boxes) for box in frame_boxes]
            np.savez_compressed(
                OUT / f"{stem}_mask.npz", mask=clip.mask, label=label, seed=seed,
                box_frames=np.array([r[0] for r in rows], np.int32),
                box_names=np.array([r[1] for r in rows], dtype=str),
                box_coords=np.array([r[2:] for r in rows], np.int32).reshape(-1, 4))
            print(f"{stem}: seed {seed}, {FRAMES} frames {SIZE}x{SIZE} at {FPS} fps")


if __name__ == "__main__":
    main()
