"""Draw docs/overview.png, the README's picture, from the library's real output."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

from tdexplain.interfaces import viz  # noqa: E402
from tdexplain.workbook import data, synthetic  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "overview.png"


def main():
    viz.setup_style()
    rows, titles = [], []
    for label in synthetic.CLASSES:
        clip = data.synthetic_clip(label, frames=8, size=96, seed=11)
        rows.append(clip.frames)
        titles.append(label)
        event = np.flatnonzero(clip.events)
        if event.size:  # the evidence exists only in the event's frames (a normal clip has none)
            rows.append([viz.overlay_mask(f, m) for f, m in zip(clip.frames, clip.mask)])
            titles.append(f"evidence, t={event[0]}-{event[-1]}")
    fig = viz.clip_grid(rows, row_titles=titles, frame_titles=[f"t={t}" for t in range(8)], scale=1.1)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
