"""Regenerate data_samples/clips: two synthetic clips per class, as MP4, with their ground truth.

Run with `make samples`. The clips are 24 frames of 128x128 at 8 fps (3 s) of the temporal
task: the story the demo model reads as 8 frames spread over the clip, and the window of
`tdexplain explain` (24 frames). Seeds are the first two of each class, except shooting 302,
which the demo model calls normal (one of its errors: its flashes fall in 2 of the 8 frames
it reads), replaced by 303 so that every sample shows the model's decision. Beside each clip,
`<stem>_mask.npz` holds when (`events`, the frames that hold the event) and where (`mask`,
the evidence pixels, empty outside the event frames; the evidence boxes). They are written into
the package (lib/tdexplain/data_samples/, where data_samples/ links), so an install ships them.
"""

from pathlib import Path

import numpy as np

from tdexplain.workbook import data

FRAMES, SIZE, FPS = 24, 128, 8
SEEDS = {"normal": (101, 102), "fight": (201, 202), "shooting": (301, 303)}
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
                OUT / f"{stem}_mask.npz", mask=clip.mask, events=clip.events, label=label, seed=seed,
                box_frames=np.array([r[0] for r in rows], np.int32),
                box_names=np.array([r[1] for r in rows], dtype=str),
                box_coords=np.array([r[2:] for r in rows], np.int32).reshape(-1, 4))
            event = np.flatnonzero(clip.events)
            when = f"event in frames {event[0]}-{event[-1]}" if event.size else "no event"
            print(f"{stem}: seed {seed}, {FRAMES} frames {SIZE}x{SIZE} at {FPS} fps, {when}")


if __name__ == "__main__":
    main()
