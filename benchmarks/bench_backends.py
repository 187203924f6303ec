"""The engine on Keras' TensorFlow and JAX backends, each measured in its own process.

1. explain (saliency + Grad-CAM at the default layer, one pass) / forward (the plain model,
   compiled by the same backend: tf.function or jax.jit), on the paper-size backbone (VGG19
   width 1, GRU 1024) at 112x112, 8 frames, batch 1; paired rounds, the median ratio.
2. The same two calls on the demo model (64 px), 8 clips: explained frames per second.
3. TensorFlow against JAX on the demo model and 8 unseen clips: the largest probability
   difference and, per method, the smallest per-frame correlation of the maps.

Prints a table and writes benchmarks/results/backends.json. Run: python
benchmarks/bench_backends.py (about 6 min on 2 CPU cores); `--quick`: VGG19 width 1/4.
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

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
EQUALITY_OPTIONS = dict(smoothgrad_samples=8, ig_steps=16, scorecam_channels=16)


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def compiled_forward(model):
    """The plain model's forward pass, compiled by the backend in use, returning NumPy."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        forward = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
        return lambda x: np.asarray(forward([v.value for v in model.trainable_variables],
                                            [v.value for v in model.non_trainable_variables], x))
    import tensorflow as tf

    @tf.function
    def forward(x):
        return model(x, training=False)

    return lambda x: forward(tf.constant(x)).numpy()


def explain_versus_forward(model, clips, rounds=9):
    from tdexplain import Explainer

    forward = compiled_forward(model)
    explainer = Explainer(model)
    run = lambda: explainer.explain(clips, methods=("saliency", "gradcam"))  # noqa: E731
    forward(clips), run()  # tracing and compilation are not what we measure
    # Paired rounds: the load of a shared machine drifts over seconds, so each round's ratio
    # is taken under the same load; the median is reported.
    pairs = [(timed(lambda: forward(clips)), timed(run)) for _ in range(rounds)]
    ratios = [e / f for f, e in pairs]
    return dict(forward_s=statistics.median(f for f, _ in pairs),
                explain_s=statistics.median(e for _, e in pairs), ratio=statistics.median(ratios),
                ratio_range=[min(ratios), max(ratios)],
                explained_frames_per_s=float(np.prod(clips.shape[:2]) / statistics.median(e for _, e in pairs)))


def measure(width, out):
    """Run in a process whose backend is set: items 1 and 2, and the maps for item 3."""
    import keras

    from tdexplain import Explainer, load_model, METHODS
    from tdexplain.workbook import data, models

    keras.utils.set_random_seed(0)
    paper = models.build_model(frames=8, size=112, width=width, gru_units=1024)
    paper_clip = data.synthetic_dataset(1, 8, 112, seed=0)[0].astype(np.float32)
    demo = load_model(models.DEMO_MODEL)
    demo_clips = data.synthetic_dataset(8, 8, 64, seed=6000)[0].astype(np.float32)
    result = Explainer(demo).explain(demo_clips, methods=METHODS, **EQUALITY_OPTIONS)
    np.savez(out.with_suffix(".npz"), probabilities=result.probabilities,
             **{method: result.maps[method] for method in METHODS})
    versions = {"keras": keras.__version__}
    if keras.backend.backend() == "jax":
        import jax
        versions["jax"] = jax.__version__
    else:
        import tensorflow as tf
        versions["tensorflow"] = tf.__version__
    out.write_text(json.dumps(dict(
        backend=keras.backend.backend(), versions=versions,
        paper_backbone=dict(backbone=f"vgg19 width {width}", size=112, frames=8,
                            **explain_versus_forward(paper, paper_clip)),
        demo=dict(clips=8, **explain_versus_forward(demo, demo_clips)))))


def equality(tensorflow_npz, jax_npz):
    a, b = np.load(tensorflow_npz), np.load(jax_npz)
    rows = {"max_probability_difference": float(np.abs(a["probabilities"] - b["probabilities"]).max())}
    for method in (k for k in a.files if k != "probabilities"):
        x = a[method].reshape(-1, a[method][0, 0].size)
        y = b[method].reshape(x.shape)
        lit = (x.std(axis=1) > 0) & (y.std(axis=1) > 0)
        rows[method] = float(min(np.corrcoef(p, q)[0, 1] for p, q in zip(x[lit], y[lit])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="VGG19 of width 1/4")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one backend's process
    args = parser.parse_args()
    width = 0.25 if args.quick else 1.0
    if args.measure:
        return measure(width, Path(args.measure))
    RESULTS.mkdir(exist_ok=True)
    runs = {}
    for backend in ("tensorflow", "jax"):
        out = RESULTS / f".backend_{backend}.json"
        subprocess.run([sys.executable, __file__, "--measure", str(out)] + (["--quick"] if args.quick else []),
                       check=True, env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
        runs[backend] = json.loads(out.read_text())
    same = equality(RESULTS / ".backend_tensorflow.npz", RESULTS / ".backend_jax.npz")
    for backend in runs:
        for suffix in (".json", ".npz"):
            (RESULTS / f".backend_{backend}{suffix}").unlink()
    results = dict(machine=f"{platform.machine()}, {os.cpu_count()} CPU cores",
                   date=time.strftime("%Y-%m-%d"), runs=runs, tensorflow_versus_jax=same)
    (RESULTS / "backends.json").write_text(json.dumps(results, indent=2))

    print(f"machine: {results['machine']}, {results['date']}")
    print(f"\n{'measure':58s} {'TensorFlow':>11s} {'JAX':>11s}  target")
    rows = [("explain / forward, " + runs["jax"]["paper_backbone"]["backbone"] + " 112px T=8", "paper_backbone", "ratio", "<= 2.2"),
            ("  forward (s)", "paper_backbone", "forward_s", ""),
            ("  explain: saliency + gradcam (s)", "paper_backbone", "explain_s", ""),
            ("explain / forward, demo model, 8 clips", "demo", "ratio", ""),
            ("explained frames per second, demo model", "demo", "explained_frames_per_s", "")]
    for label, part, key, target in rows:
        print(f"{label:58s} {runs['tensorflow'][part][key]:11.2f} {runs['jax'][part][key]:11.2f}  {target}")
    print(f"\nTensorFlow versus JAX, demo model, 8 clips: largest probability difference "
          f"{same['max_probability_difference']:.1e} (target <= 1e-4)")
    for method, correlation in same.items():
        if method != "max_probability_difference":
            print(f"  {method:28s} smallest per-frame correlation {correlation:.5f} (target >= 0.999)")
    print(f"\nwrote {RESULTS / 'backends.json'}")


if __name__ == "__main__":
    main()
