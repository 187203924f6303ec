"""Draw docs/overview.png, the README's picture, from the library's real output."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from tdexplain import data, viz  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "overview.png"


def main():
    viz.setup_style()
    rows, titles = [], []
    for label in data.CLASSES:
        clip = data.synthetic_clip(label, frames=6, size=96, seed=11)
        rows += [clip.frames, [viz.overlay_mask(f, m) for f, m in zip(clip.frames, clip.mask)]]
        titles += [label, f"{label}: evidence"]
    fig = viz.clip_grid(rows, row_titles=titles, scale=1.1)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
