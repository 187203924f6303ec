"""The `tdexplain` command: explain a video or an archive of them, train a model, run the
hyperparameter studies, render the reports.

Every option and its default is listed by ``tdexplain SUBCOMMAND --help``. Errors end the
command with one line on stderr and a non-zero exit code (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from ..engine import backend
from ..extras import ENGINES, MissingExtra
from ..workbook import report

__all__ = ["parser", "main"]


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it is None (then the help text says what happens)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _train(args) -> int:
    import keras

    from ..workbook import data, models, synthetic, training

    if args.data:
        clips, labels, classes = data.load_folder(args.data, frames=args.frames, size=args.size)
        order = np.random.default_rng(args.seed).permutation(len(clips))
        cut = max(1, int(len(clips) * args.validation_share))
        validation = (clips[order[:cut]], labels[order[:cut]])
        train_data = (clips[order[cut:]], labels[order[cut:]])
    else:
        classes = synthetic.CLASSES

        def synthetic(count, seed):  # with each frame's poses, which the CNN learns first: single
            clips, labels, _, poses = data.synthetic_dataset(  # frames do not tell the class
                count, args.frames, args.size, seed=seed, with_poses=True)
            return clips, labels, poses

        def train_data(epoch):  # a fresh synthetic set every epoch: no scene is seen twice
            return synthetic(args.clips, args.seed + 10_000 + epoch)
        validation = synthetic(max(3, args.clips // 6), args.seed + 2)
    build = dict(frames=args.frames, size=args.size, classes=tuple(classes), width=args.width,
                 weights=args.weights, gru_units=args.gru_units, dropout=args.dropout,
                 dense_blocks=args.dense_blocks, block_dropout=args.block_dropout)
    strategy = None
    if args.distribute and keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    elif args.distribute:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
    result = training.train(build, train_data, validation, epochs=args.epochs,
                            frame_epochs=args.frame_epochs, head_epochs=args.head_epochs,
                            batch_size=args.batch_size, learning_rate=args.learning_rate,
                            patience=args.patience, seed=args.seed, strategy=strategy, out=args.out)
    scores = result.validation
    print(f"saved {args.out} and {training.metrics_path(args.out)}: validation accuracy "
          f"{scores['accuracy']:.3f}, macro F1 {scores['f1']:.3f} "
          f"({result.seconds / 60:.1f} min)")
    models.load_model(args.out)  # the saved file loads
    return 0


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a video classifier",
                              formatter_class=_Help)
    p.add_argument("--out", required=True, help="where to save the model (.keras)")
    p.add_argument("--data", default=None,
                   help="a class-per-subfolder video folder; synthetic clips if not given "
                        "(their CNN first learns each frame's poses)")
    p.add_argument("--clips", type=int, default=600,
                   help="synthetic training clips, drawn anew for every epoch")
    p.add_argument("--validation-share", type=float, default=0.2,
                   help="share of a --data folder kept for validation")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--width", type=float, default=0.125, help="fraction of VGG19's filters")
    p.add_argument("--weights", default=None, help="'imagenet' or a weights file for the backbone")
    p.add_argument("--gru-units", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.5, help="the GRU's dropout rate")
    p.add_argument("--dense-blocks", type=int, default=3)
    p.add_argument("--block-dropout", type=float, default=None,
                   help="each dense block's dropout rate (default: --dropout)")
    p.add_argument("--frame-epochs", type=int, default=10,
                   help="pretraining of the CNN on single frames (their poses on synthetic clips, "
                        "their clip's class on a folder)")
    p.add_argument("--head-epochs", type=int, default=60, help="head on cached features")
    p.add_argument("--epochs", type=int, default=8, help="end-to-end epochs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distribute", action="store_true",
                   help="train on all visible GPUs (TensorFlow: MirroredStrategy; JAX: "
                        "keras.distribution.DataParallel)")
    p.set_defaults(run=_train)


def _explain(args) -> int:
    from pathlib import Path

    from . import video

    out = Path(args.out) if args.out else Path(Path(args.video).stem + "_explained")
    target = int(args.target) if args.target is not None and args.target.isdigit() else args.target
    output = int(args.output) if args.output is not None and args.output.isdigit() else args.output
    try:
        summary = video.explain_video(args.video, out, model_path=args.model, method=args.method,
                                      layer=args.layer, window=args.window, stride=args.stride,
                                      target=target, short=args.short, progress=not args.quiet,
                                      options=dict(args.option), output=output,
                                      other_inputs=dict(args.other_input) or None)
    except KeyboardInterrupt:
        print(f"tdexplain explain: interrupted; the windows explained so far are in {out} "
              f"(summary.json says complete: false)", file=sys.stderr)
        return 130
    verdict = summary["verdict"]
    said = (f"{verdict['class']} (p = {verdict['probability']:.2f}) in window {verdict['window']}, "
            f"from {verdict['start_seconds']} s" if verdict else "no anomalous window")
    print(f"{video.windows_explained(summary)} explained; verdict: {said}; files in {out}")
    if summary["model"]["note"]:
        print(f"note: {summary['model']['note']}")
    return 0


def _add_explain(subparsers):
    from ..methods import DEFAULT_METHOD, METHODS
    from ..workbook.models import DEMO_MODEL

    p = subparsers.add_parser(
        "explain", help="explain a video file window by window",
        formatter_class=_Help,
        description="Slide a window over VIDEO, predict and explain each window, and write "
                    "summary.json, overlay.mp4 and timeline.png into --out.")
    p.add_argument("video", help="a video file OpenCV can read")
    p.add_argument("--model", default=DEMO_MODEL, help="a .keras video model")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS, metavar="METHOD",
                   help=f"explanation method, one of: {', '.join(METHODS)}")
    p.add_argument("--layer", default=None,
                   help="inner layer of the backbone, for the CAM methods (default: the deepest "
                        "convolution with at least 8x8 cells); "
                        "a wrong name lists the valid ones")
    p.add_argument("--window", type=int, default=None,
                   help="video frames per window, sampled to the model's frame count; 0 = one clip "
                        "sampled over the whole video (default: 3 s of video, what the demo model "
                        "reads as 8 frames: 24 frames at 8 fps, 90 at 30 fps)")
    p.add_argument("--stride", type=int, default=None,
                   help="video frames between window starts (default: 1 s of video)")
    p.add_argument("--target", default=None,
                   help="class to explain (name or index); default: each window's prediction")
    p.add_argument("--short", default="pad", choices=("pad", "error"),
                   help="a video shorter than one window: pad with its last frame, or stop")
    p.add_argument("--option", action="append", default=[], type=_method_option, metavar="NAME=VALUE",
                   help="a method's option, repeatable, e.g. --option scorecam_channels=32 (the methods' "
                        "options and defaults are in the README's table of methods)")
    p.add_argument("--output", default=None,
                   help="the output to explain, by name or index, for a model with several")
    p.add_argument("--other-input", action="append", default=[], type=_other_input, metavar="NAME=FILE.npy",
                   help="one sample's value of another input of the model (a .npy file), held for "
                        "every window; repeatable")
    p.add_argument("--out", default=None, help="output folder (default: VIDEO_NAME_explained)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_explain)


def _batch(args) -> int:
    from pathlib import Path

    from . import batch

    settings = batch.BatchSettings(model_path=args.model, method=args.method, layer=args.layer,
                                   window=args.window, stride=args.stride, explain=args.explain,
                                   thresholds=dict(args.threshold), batch_windows=args.batch_windows,
                                   overlays=args.overlays, options=dict(args.option) or None)
    rows = batch.run_batch(args.archive, args.out, settings, progress=not args.quiet, engine=args.engine,
                           address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker)
    failed = [row for row in rows if row["status"] != "done"]
    flagged = sum(1 for row in rows if row.get("verdict"))
    print(f"{len(rows) - len(failed)} of {len(rows)} videos explained, {flagged} with a flagged window; "
          f"index: {Path(args.out) / 'index.html'}")
    for row in failed:
        print(f"failed: {row['video']}: {row['reason']}", file=sys.stderr)
    return 1 if failed else 0


def _add_batch(subparsers):
    from ..methods import DEFAULT_METHOD, METHODS
    from ..workbook.models import DEMO_MODEL

    p = subparsers.add_parser(
        "batch", help="explain an archive of videos, resumably", formatter_class=_Help,
        description="Predict every window of every video of ARCHIVE, explain the flagged ones, and "
                    "write a manifest, one summary per video, windows.csv and index.html into --out. "
                    "Started again on the same --out, it does only the videos not yet finished.")
    p.add_argument("archive", help="a folder of videos, a glob pattern, or a text file listing videos")
    p.add_argument("--out", required=True, help="output folder (the run's manifest is kept there)")
    p.add_argument("--model", default=DEMO_MODEL, help="a .keras video model")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS, metavar="METHOD",
                   help=f"explanation method, one of: {', '.join(METHODS)}")
    p.add_argument("--layer", default=None, help="inner layer of the backbone, for the CAM methods")
    p.add_argument("--explain", default="flagged", choices=("flagged", "all", "none"),
                   help="which windows to explain; every window is predicted")
    p.add_argument("--threshold", action="append", default=[], type=_class_threshold, metavar="CLASS=P",
                   help="flag a window when CLASS's probability reaches P (repeatable; default 0.5 for "
                        "every class but normal)")
    p.add_argument("--window", type=int, default=None,
                   help="video frames per window (default: 3 s of each video)")
    p.add_argument("--stride", type=int, default=None, help="video frames between windows (default: 1 s)")
    p.add_argument("--batch-windows", type=int, default=16, help="windows predicted per call")
    p.add_argument("--overlays", action="store_true",
                   help="also write a short overlay clip of each explained window")
    p.add_argument("--option", action="append", default=[], type=_method_option, metavar="NAME=VALUE",
                   help="a method's option, repeatable")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="local: one process; ray: Ray Data workers (pip install 'tdexplain[cluster]')")
    p.add_argument("--address", default=None,
                   help="the Ray cluster to use (default: $RAY_ADDRESS, else a local one)")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray workers, each holding the model once (default: one per CPU)")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs each Ray worker asks for")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_batch)


def _sweep(args) -> int:
    from ..workbook import models, sweep

    data = sweep.synthetic_data(models.load_model(args.model), args.train_clips, args.evaluation_clips)
    base = dict(STUDY_BASE, **dict(args.base))
    configs = sweep.one_at_a_time(base, **dict(args.vary)) if args.vary else [base]
    results = sweep.run_sweep(configs, data, args.out, seeds=args.seeds, workers=args.workers,
                              head_epochs=args.head_epochs, layer=args.layer, progress=not args.quiet,
                              engine=args.engine, address=args.address, cpus_per_trial=args.cpus_per_trial,
                              gpus_per_trial=args.gpus_per_trial)
    failed = results[results["status"] != "ok"]
    print(sweep.summarize(results).round(3).to_string())
    print(f"{len(results)} runs in {args.out}; failed: {len(failed)}")
    for _, row in failed.iterrows():
        print(f"failed: {row['config_id']}: {row['error']}", file=sys.stderr)
    return 1 if len(failed) else 0


# Notebook 06's base configuration: each --vary study changes one of these.
STUDY_BASE = {"gru_units": 128, "dropout": 0.5, "dense_blocks": 3, "block_dropout": 0.5}


def _add_sweep(subparsers):
    from ..workbook.models import DEMO_MODEL
    from ..workbook.sweep import HEAD_PARAMETERS

    p = subparsers.add_parser(
        "sweep", help="train and score head configurations, resumably", formatter_class=_Help,
        description="The paper's hyperparameter studies on synthetic clips: each --vary study "
                    "trains the --base configuration with one hyperparameter changed, for each "
                    "seed, on the base model's backbone, and appends accuracy, F1, and the "
                    "Grad-CAM energy on the evidence to --out. Started again on the same --out, it "
                    "runs only what is missing.")
    p.add_argument("--out", required=True, help="the results' CSV (maps are kept beside it)")
    p.add_argument("--model", default=DEMO_MODEL, help="the base model, whose backbone every configuration keeps")
    p.add_argument("--base", action="append", default=[], type=_hyperparameter, metavar="NAME=VALUE",
                   help=f"a hyperparameter of the base configuration, repeatable; names: "
                        f"{', '.join(HEAD_PARAMETERS)} (default: "
                        f"{' '.join(f'{k}={v}' for k, v in STUDY_BASE.items())})")
    p.add_argument("--vary", action="append", default=[], type=_study, metavar="NAME=V1,V2,...",
                   help="a study: the values one hyperparameter takes, repeatable (none: the base alone)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="each configuration trained with each")
    p.add_argument("--train-clips", type=int, default=600, help="synthetic training clips")
    p.add_argument("--evaluation-clips", type=int, default=20, help="evaluation clips per class")
    p.add_argument("--head-epochs", type=int, default=60)
    p.add_argument("--layer", default="block4_conv4", help="where the Grad-CAM maps are taken")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="local: processes on this machine; ray: Ray Tune trials (pip install 'tdexplain[cluster]')")
    p.add_argument("--workers", type=int, default=1, help="local engine: processes side by side")
    p.add_argument("--address", default=None,
                   help="ray engine: the cluster to use (default: $RAY_ADDRESS, else a local one)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="ray engine: CPUs each trial asks for")
    p.add_argument("--gpus-per-trial", type=float, default=0, help="ray engine: GPUs each trial asks for")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_sweep)


def _hyperparameter(text: str) -> tuple:
    """NAME=VALUE of a head hyperparameter, the value read as a Python literal."""
    from ..workbook.sweep import HEAD_PARAMETERS

    name, value = _method_option(text)
    if name not in HEAD_PARAMETERS:
        raise argparse.ArgumentTypeError(f"unknown hyperparameter {name!r}; a sweep varies "
                                         f"{', '.join(HEAD_PARAMETERS)}")
    return name, value


def _study(text: str) -> tuple:
    """NAME=V1,V2,...: a head hyperparameter and its values, each read as a Python literal."""
    name, values = _name_value(text)
    return name, [_hyperparameter(f"{name}={value}")[1] for value in values.split(",")]


def _class_threshold(text: str) -> tuple:
    name, value = _name_value(text)
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CLASS=P with P a probability, got {text!r}") from None


def _name_value(text: str) -> tuple:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _method_option(text: str) -> tuple:
    """NAME=VALUE, the value read as a Python literal (32, 0.5, None), else kept as text."""
    import ast

    name, value = _name_value(text)
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def _other_input(text: str) -> tuple:
    """NAME=FILE.npy: the input's name and the array in the file (one sample's value)."""
    from .video import read_held_input

    name, path = _name_value(text)
    try:
        return name, read_held_input(name, path)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_report(subparsers):
    p = subparsers.add_parser("report", help="render the notebooks into HTML reports (needs the "
                                             "notebooks extra: pip install 'tdexplain[notebooks]')",
                              formatter_class=_Help)
    report.add_arguments(p)
    p.set_defaults(run=report.run)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tdexplain", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = top.add_subparsers(dest="command", required=True)
    _add_explain(subparsers)
    _add_batch(subparsers)
    _add_train(subparsers)
    _add_sweep(subparsers)
    _add_report(subparsers)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(message)s")
    if not args.debug:
        backend.quiet()  # retracing notices: one compiled pass per batch shape is expected
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("tdexplain: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MissingExtra) as error:
        if args.debug:
            raise
        print(f"tdexplain {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
