"""How long the explorer makes a user wait, control by control, against one forward pass of the
same clip in the same process: a redraw from the cache (frame, opacity, contours) and a change
that computes a new explanation (method, layer, target).

Prints a table and writes benchmarks/results/explorer.json. Run: make bench.
"""

import json
import os
import platform
import time
from pathlib import Path

from tdexplain import load_model
from tdexplain.interfaces import widgets
from tdexplain.workbook import models

RESULTS = Path(__file__).resolve().parent / "results"
CHANGES = [("frame", 5), ("opacity", 0.8), ("levels", (0.3, 0.7)), ("method", "gradcam"),
           ("layer", "block3_conv4"), ("target", "fight"), ("method", "layercam"), ("frame", 2),
           ("method", "integrated_gradients"), ("method", "scorecam"), ("method", "saliency"),
           ("layer", "block4_conv4")]


def main():
    model = load_model(models.DEMO_MODEL)
    explorer = widgets.Explorer(model, "shooting_01")
    panel = explorer.controls()
    explorer.explainer.logits(explorer.clip[None])  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        explorer.explainer.logits(explorer.clip[None])
    forward_s = (time.perf_counter() - start) / 5
    rows = []
    for name, value in CHANGES:
        view = panel.view() | {name: value}
        computes = not explorer.is_cached(view["method"], view["layer"], view["target"])
        start = time.perf_counter()
        getattr(panel, name).value = value
        seconds = time.perf_counter() - start
        rows.append(dict(control=name, value=str(value), computed=computes, seconds=seconds,
                         ratio_to_forward=seconds / forward_s))
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
               "clip": "shooting_01, 8 frames of 64x64, demo model", "forward_s": forward_s, "changes": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explorer.json").write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}, {results['date']}; forward pass {forward_s * 1000:.0f} ms")
    print(f"{'control':8s} {'value':22s} {'computes':>8s} {'seconds':>8s} {'x forward':>10s}")
    for row in rows:
        print(f"{row['control']:8s} {row['value']:22s} {'yes' if row['computed'] else 'no':>8s} "
              f"{row['seconds']:8.2f} {row['ratio_to_forward']:10.1f}")


if __name__ == "__main__":
    main()
