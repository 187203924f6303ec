"""Speed and memory of the explanations, as ratios against baselines run in the same process.

1. explain / forward: saliency + Grad-CAM together versus a plain compiled forward pass,
   on the paper-size backbone (VGG19 width 1) at 112x112, 8 frames, batch 1.
2. one pass versus a frame-by-frame loop (T backward passes, one frame watched
   each), for per-frame saliency, at T = 8 and T = 16 (same backbone and size).
3. SmoothGrad with 25 samples versus 25 x one saliency pass; peak memory (RSS, measured in
   a fresh process per sample count) as the number of samples grows.
4. Explained frames per second (saliency + Grad-CAM) for the demo model.

Prints a table and writes benchmarks/results/explain.json. Run: make bench (about 15 min on
2 CPU cores); `--quick` uses a VGG19 of width 1/4 for items 1-2.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tdexplain import Explainer, load_model  # noqa: E402
from tdexplain.engine import shapes, unroll  # noqa: E402
from tdexplain.workbook import data, models  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def timed(function, repeats=3):
    function()  # warm-up: tracing and compilation are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frame_by_frame_saliency(model):
    """A frame-by-frame loop: for each frame, one forward and backward pass watching that frame
    (one reading of the paper's "compute gradients for each image"; it does not say how)."""
    unrolled = unroll.unrolled_model(model, shapes.last_convolution(models.backbone_of(model)),
                                     input_gradients_only=True)  # the same graph as the one pass

    @tf.function(reduce_retracing=True)
    def one_frame(clips, t, target):
        frame = clips[:, t]
        with tf.GradientTape() as tape:
            tape.watch(frame)
            rebuilt = tf.concat([clips[:, :t], frame[:, None], clips[:, t + 1:]], axis=1)
            logits = unrolled(rebuilt, training=False)[1]
            score = tf.reduce_sum(tf.gather(logits, target, batch_dims=1))
        return tape.gradient(score, frame)

    def run(clips, target):
        clips = tf.constant(clips)
        target = tf.constant(target, tf.int32)
        return np.stack([one_frame(clips, tf.constant(t), target).numpy()
                         for t in range(clips.shape[1])], axis=1)

    return run


def explain_versus_forward(width, size, frames, jit_compile):
    model = models.build_model(frames=frames, size=size, width=width, gru_units=1024)
    clip = data.synthetic_dataset(1, frames, size, seed=0)[0].astype(np.float32)
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    explainer = Explainer(model, jit_compile=jit_compile)
    # Paired rounds (a forward, then an explain, 9 times): the load of a shared machine drifts
    # over seconds, so each round's ratio is taken under the same load; the median is reported.
    rounds = [(timed(lambda: forward(tf.constant(clip)).numpy(), repeats=1),
               timed(lambda: explainer.explain(clip, methods=("saliency", "gradcam")), repeats=1))
              for _ in range(9)]
    ratios = [e / f for f, e in rounds]
    return dict(jit_compile=jit_compile, forward_s=statistics.median(f for f, _ in rounds),
                explain_s=statistics.median(e for _, e in rounds), ratio=statistics.median(ratios),
                ratio_range=[min(ratios), max(ratios)])


def one_pass_versus_loop(width, size, frames):
    model = models.build_model(frames=frames, size=size, width=width, gru_units=1024)
    clip = data.synthetic_dataset(1, frames, size, seed=0)[0].astype(np.float32)
    explainer = Explainer(model)
    loop = frame_by_frame_saliency(model)
    target = explainer.explain(clip, methods="saliency").target
    one = explainer.explain(clip, methods="saliency").input_gradients
    looped = loop(clip, target)
    error = float(np.abs(one - looped).max() / max(np.abs(looped).max(), 1e-30))
    t_one = timed(lambda: explainer.explain(clip, methods="saliency"), repeats=2)
    t_loop = timed(lambda: loop(clip, target), repeats=1)
    return dict(frames=frames, one_pass_s=t_one, loop_s=t_loop, speedup=t_loop / t_one,
                speedup_over_T=t_loop / t_one / frames, max_relative_difference=error)


def smoothgrad_time(model, clip):
    explainer = Explainer(model)
    t_saliency = timed(lambda: explainer.explain(clip, methods="saliency"))
    t_smooth = timed(lambda: explainer.explain(clip, methods="smoothgrad", smoothgrad_samples=25),
                     repeats=2)
    return dict(saliency_s=t_saliency, smoothgrad25_s=t_smooth,
                ratio_to_25_saliency=t_smooth / (25 * t_saliency))


# The peak of NumPy's allocations (tracemalloc sees them) during one call, next to the
# process's high-water mark: ru_maxrss alone cannot show growth that stays under an earlier peak.
MEMORY_PROBE = """
import resource, sys, tracemalloc, numpy as np
from tdexplain import Explainer, load_model
from tdexplain.workbook import data, models
model = load_model(models.DEMO_MODEL)
clip = data.synthetic_dataset(1, 8, 64, seed=0)[0]
explainer = Explainer(model, frames_per_pass=64)
explainer.explain(clip, methods="smoothgrad", smoothgrad_samples=2)  # traced and compiled once
def traced_peak(**options):
    tracemalloc.start()
    explainer.explain(clip, **options)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20
saliency = traced_peak(methods="saliency")
smooth = traced_peak(methods="smoothgrad", smoothgrad_samples=int(sys.argv[1]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, saliency, smooth)
"""


def smoothgrad_memory(samples):
    rows = []
    for count in samples:
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(count)], capture_output=True,
                             text=True, check=True).stdout.split()
        rss, saliency, smooth = map(float, out[-3:])
        rows.append(dict(samples=count, peak_rss_mb=rss, numpy_peak_saliency_mb=saliency,
                         numpy_peak_smoothgrad_mb=smooth))
    return rows


def frames_per_second(model, clips):
    explainer = Explainer(model)
    seconds = timed(lambda: explainer.explain(clips, methods=("saliency", "gradcam")), repeats=2)
    return dict(clips=len(clips), frames=int(np.prod(clips.shape[:2])), seconds=seconds,
                frames_per_second=float(np.prod(clips.shape[:2]) / seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="VGG19 of width 1/4 for items 1-2")
    args = parser.parse_args()
    width = 0.25 if args.quick else 1.0
    demo = load_model(models.DEMO_MODEL)
    demo_clips = data.synthetic_dataset(8, 8, 64, seed=5)[0].astype(np.float32)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                   f"{'GPU' if tf.config.list_physical_devices('GPU') else 'no GPU'}",
        "date": time.strftime("%Y-%m-%d"), "tensorflow": tf.__version__,
        "explain_versus_forward": [dict(backbone=f"vgg19 width {width}", size=112, frames=8,
                                        **explain_versus_forward(width, 112, 8, jit))
                                   for jit in (False, True)],
        "one_pass_versus_loop": [dict(backbone=f"vgg19 width {width}", size=112,
                                      **one_pass_versus_loop(width, 112, t)) for t in (8, 16)],
        "smoothgrad": dict(model="demo", **smoothgrad_time(demo, demo_clips[:1]),
                           memory=smoothgrad_memory((5, 25, 100))),
        "demo_frames_per_second": frames_per_second(demo, demo_clips),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(results, indent=2))

    print(f"machine: {results['machine']}, TensorFlow {results['tensorflow']}, {results['date']}")
    print(f"\n{'measure':64s} {'value':>10s}  target")
    for e in results["explain_versus_forward"]:
        label = (f"explain (saliency+gradcam) / forward, {e['backbone']} 112px T=8"
                 f"{', XLA' if e['jit_compile'] else ''}")
        print(f"{label:64s} {e['ratio']:10.2f}  <= 2.5")
    for row in results["one_pass_versus_loop"]:
        print(f"{'frame-by-frame loop / one pass, T=' + str(row['frames']):64s} "
              f"{row['speedup']:10.2f}  >= {0.6 * row['frames']:.1f} (0.6 x T)")
    s = results["smoothgrad"]
    print(f"{'SmoothGrad 25 samples / (25 x saliency), demo model':64s} "
          f"{s['ratio_to_25_saliency']:10.2f}  <= 1.2")
    for row in s["memory"]:
        print(f"{'SmoothGrad peak of NumPy allocations (MB), ' + str(row['samples']) + ' samples':64s} "
              f"{row['numpy_peak_smoothgrad_mb']:10.1f}  flat (saliency pass "
              f"{row['numpy_peak_saliency_mb']:.1f} MB; process peak {row['peak_rss_mb']:.0f} MB)")
    f = results["demo_frames_per_second"]
    print(f"{'explained frames per second, demo model (saliency+gradcam)':64s} "
          f"{f['frames_per_second']:10.1f}")
    print(f"\nwrote {RESULTS / 'explain.json'}")


if __name__ == "__main__":
    main()
