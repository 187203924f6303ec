"""The cost of every registered method, against one saliency pass of the same clips in the
same process (one forward and one backward pass for all frames), on the demo model (64x64, 8
frames) at its default layer, with each method's default options.

Prints a table and writes benchmarks/results/methods.json. Run: make bench, or
`python benchmarks/bench_methods.py [--clips N]`.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from tdexplain import Explainer, load_model, read_video
from tdexplain.engine import backend, registry, shapes
from tdexplain.interfaces import widgets
from tdexplain.workbook import models

RESULTS = Path(__file__).resolve().parent / "results"


def seconds(explainer, clips, method, repeats):
    explainer.explain(clips, methods=method)  # warm-up: tracing and compilation are not measured
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        explainer.explain(clips, methods=method)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2)
    args = parser.parse_args()
    model = load_model(models.DEMO_MODEL)
    frames, size = shapes.input_spec(model)
    paths = list(widgets.sample_clips().values())[:args.clips]
    clips = np.stack([read_video(path, frames=frames, size=size) for path in paths])
    explainer = Explainer(model)
    baseline = seconds(explainer, clips, "saliency", repeats=5)
    rows = []
    for name, method in registry.REGISTRY.items():
        taken = baseline if name == "saliency" else seconds(explainer, clips, name, repeats=2)
        rows.append(dict(method=name, reads="layer" if method.uses_layer else "pixels",
                         seconds_per_clip=taken / len(clips), ratio_to_saliency=taken / baseline))
    print(f"{len(clips)} clips of {frames} frames at {size} px, layer {explainer.default_layer}; "
          f"one saliency pass: {baseline / len(clips) * 1000:.0f} ms a clip")
    print(f"{'method':28s} {'reads':7s} {'s / clip':>9s} {'x saliency':>11s}")
    for row in rows:
        print(f"{row['method']:28s} {row['reads']:7s} {row['seconds_per_clip']:9.3f} {row['ratio_to_saliency']:11.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "methods.json").write_text(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "backend": backend.current(), "clips": len(clips), "frames": frames, "size": size,
        "layer": explainer.default_layer, "saliency_seconds_per_clip": baseline / len(clips),
        "methods": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
