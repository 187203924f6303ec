"""Peak memory of every registered method at the paper's size: VGG19 (width 1, K = 512 at
block5), 8 frames, one clip, at 112 and 224 px, against one saliency pass of the same clip in
the same process.

Two peaks per method, each reset before the method runs (its compiled passes are built
beforehand, so tracing is not counted):
- host: tracemalloc's peak, the arrays the method makes in NumPy (masked clips, masks, probes);
- backend: TensorFlow's allocator, `get_memory_info("CPU:0")` (or "GPU:0"); n/a under JAX,
  whose peak cannot be reset between methods.
The sampled and masking methods run with small counts that fill at least one call of
`clips_per_call` clips (or a gradient pass of `frames_per_pass` frames); at the first size each is run again with twice the count, to show
that the peak depends on the call, not on how many channels, masks or samples there are
(T x K = 4096 Score-CAM clips at the paper's size would take hours on a CPU, not more memory).
Weights are random (ImageNet's cannot be downloaded here); memory does not depend on them.

Prints a table and writes benchmarks/results/memory.json. Run: make bench, or
`python benchmarks/bench_memory.py [--sizes 112 224] [--frames 8] [--width 1.0]`.
"""

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import keras
import numpy as np

from tdexplain import Explainer
from tdexplain.engine import backend, registry
from tdexplain.workbook import data, models

RESULTS = Path(__file__).resolve().parent / "results"
MB = 2**20


def counted_options(size: int, scale: int) -> dict:
    """Counts that fill about `scale` calls of 64 clips (8 frames, frames_per_pass=64)."""
    return dict(smoothgrad_samples=8 * scale, ig_steps=8 * scale, scorecam_channels=8 * scale,
                ablation_channels=8 * scale, rise_masks=64 * scale,
                occlusion_patch=size // 2, occlusion_stride=size // (4 * scale))


class BackendPeak:
    """The backend allocator's peak since `reset()`, in bytes: TensorFlow keeps one per device,
    resettable (on a CPU too); JAX's cannot be reset, so under JAX it is None (n/a)."""

    def __init__(self):
        self.name = backend.current()
        self.device = "n/a"
        if self.name == "tensorflow":
            import tensorflow as tf

            self.tf = tf
            self.device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"

    def reset(self):
        if self.name == "tensorflow":
            self.tf.config.experimental.reset_memory_stats(self.device)

    def peak(self):
        if self.name == "tensorflow":
            return self.tf.config.experimental.get_memory_info(self.device)["peak"]
        return None


def measure(explainer, clip, name, options, peak: BackendPeak) -> dict:
    peak.reset()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    explainer.explain(clip, methods=name, **options)
    seconds = time.perf_counter() - start
    host = tracemalloc.get_traced_memory()[1] - before
    device = peak.peak()
    return dict(seconds=seconds, host_mb=host / MB, backend_mb=None if device is None else device / MB)


def run_size(size: int, frames: int, width: float, peak: BackendPeak, doubled: bool) -> list[dict]:
    keras.utils.set_random_seed(0)
    model = models.build_model(frames=frames, size=size, width=width, gru_units=64, dense_blocks=1)
    clip = data.synthetic_dataset(n=1, frames=frames, size=size, seed=3)[0].astype(np.float32)
    explainer = Explainer(model)
    layer = explainer.default_layer
    k = explainer.activations(clip, layer).shape[-1]
    # Build every compiled pass first: the gradient pass for one clip and for a chunk of
    # samples, the forward pass (padded to its chunk) and Guided Backprop's.
    explainer.explain(clip, methods=("saliency", "guided_backprop", "smoothgrad"), smoothgrad_samples=8)
    explainer.logits(clip)
    rows = []
    for name, method in registry.REGISTRY.items():
        scaled = (1, 2) if doubled and set(method.options) & set(counted_options(size, 1)) else (1,)
        for scale in scaled:
            row = measure(explainer, clip, name, counted_options(size, scale), peak)
            rows.append(dict(size=size, frames=frames, layer=layer, channels=k, method=name, scale=scale,
                             frames_per_pass=explainer.frames_per_pass,
                             clips_per_call=explainer.clips_per_call(), **row))
            print(f"{size:4d} px {name:28s} x{scale} {row['host_mb']:9.1f} "
                  f"{row['backend_mb'] if row['backend_mb'] is not None else float('nan'):11.1f} "
                  f"{row['seconds']:8.1f} s", flush=True)
    saliency = next(r for r in rows if r["method"] == "saliency")
    for row in rows:
        for part in ("host_mb", "backend_mb"):
            if row[part] is not None and saliency[part]:
                row[part.replace("_mb", "_ratio")] = row[part] / saliency[part]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    peak = BackendPeak()
    tracemalloc.start()
    print(f"backend {peak.name} on {peak.device}; one clip, VGG19 width {args.width}, {args.frames} frames")
    print(f"{'size':>7s} {'method':28s} {'':2s} {'host MB':>9s} {'backend MB':>11s} {'time':>10s}")
    rows = [row for size in args.sizes
            for row in run_size(size, args.frames, args.width, peak, doubled=size == args.sizes[0])]
    RESULTS.mkdir(exist_ok=True)
    name = "memory.json" if peak.name == "tensorflow" else f"memory_{peak.name}.json"
    (RESULTS / name).write_text(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "backend": peak.name, "device": peak.device, "width": args.width, "frames": args.frames,
        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
