"""Train the shipped models into data_samples/: the demo model, its shuffled-label twin and the
per-frame baseline, each with its metrics JSON.

Saved into the package (lib/tdexplain/data_samples/, where data_samples/ links: models.DEMO_MODEL,
models.RANDOM_LABELS_MODEL, models.FRAME_AVERAGE_MODEL), so an install ships them.

The paper's head shape (GRU, 3 blocks of Dense + Dropout(0.5)) at course size: VGG19 of
1/8 width at 64x64, 8 frames, GRU of 64 units, trained from scratch on the synthetic temporal
task (`tdexplain.workbook.synthetic`: no single frame tells a fight from a normal clip), a new training
set of 900 clips for every epoch (dataset seeds 10000 + epoch), validated on seed 2 and tested
on seed 3, which training never saw. Its frames cannot be labelled with their clip's class, so
stage 1 pretrains the CNN to regress each frame's poses (`synthetic.POSES`: what ImageNet
features give the paper's VGG19, limbs that can be told apart), 12 epochs; then the head on
cached features, then 6 epochs end to end (TEMPORAL_TRAIN). A fixed training set lets the CNN
memorize its scenes (benchmarks/RESULTS.md). Run with `make demo-model` (about 22 minutes per
model on 2 CPU cores).

With --random-labels: the same model and recipe trained on the first training set with its
labels shuffled (one fixed set, no validation: early stopping watches the training loss, and
a model can only memorize labels it sees again), the model of the label-randomization sanity
check (Adebayo et al., 2018). Its CNN is pretrained on the clip labels (shuffled), not on
poses: poses are not labels, and a twin whose CNN learnt them would not be a model that learnt
nothing.

With --frame-average: the per-frame baseline, the same frame network and recipe with the
GRU replaced by an average of the frame features over time (`build_model(temporal="average")`):
what the model can do without order or memory.

With --task posture: the same variants on the posture task, where any single frame tells the
class, saved under models/ (not shipped).

With --paper: the same recipe at the paper's size (224x224, the whole VGG19 with ImageNet
weights from the Keras cache when present, a GRU of 1024 units), saved under models/ (not
shipped: about 90 MB). `make paper-model` trains it and its shuffled-label twin on a GPU;
`make report PARAMS=notebooks/params/paper.yaml` then explains it in every notebook.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from tdexplain import load_model
from tdexplain.workbook import data, models, synthetic, training

BUILD = dict(frames=8, size=64, width=0.125, gru_units=64, dropout=0.5, dense_blocks=3,
             dense_units=128)
TRAIN = dict(frame_epochs=40, head_epochs=80, epochs=12, batch_size=16, learning_rate=1e-4,
             patience=6, seed=0)
# The temporal task's frames do not tell their clip's class, so its CNN is pretrained to
# regress each frame's poses instead (synthetic.POSES), the stand-in for ImageNet features.
TEMPORAL_TRAIN = TRAIN | dict(frame_epochs=12, frame_learning_rate=1e-3, epochs=6)
PAPER = dict(size=224, width=1.0, gru_units=1024)
# Where each variant is saved by default, per task: (course size, shipped unless under models/;
# paper size, in models/).
DEFAULT_OUT = {
    "temporal": {"demo": (models.DEMO_MODEL, "models/paper_model.keras"),
                 "random_labels": (models.RANDOM_LABELS_MODEL, "models/paper_random_labels_model.keras"),
                 "frame_average": (models.FRAME_AVERAGE_MODEL, "models/paper_frame_average_model.keras")},
    "posture": {"demo": ("models/posture_model.keras", "models/paper_posture_model.keras"),
                "random_labels": ("models/posture_random_labels_model.keras",
                                  "models/paper_posture_random_labels_model.keras"),
                "frame_average": ("models/posture_frame_average_model.keras",
                                  "models/paper_posture_frame_average_model.keras")},
}
TRAIN_CLIPS, TRAIN_SEED = 900, 10_000  # epoch e draws synthetic_dataset(900, seed=10000 + e)
SPLITS = {"validation": (150, 2), "test": (300, 3)}  # clips, seed


def main(out=models.DEMO_MODEL, random_labels=False, frame_average=False, task="temporal"):
    logging.basicConfig(level=logging.INFO)

    poses = task == "temporal" and not random_labels

    def dataset(clips, seed, with_poses=poses):  # (clips, labels) and the frames' poses
        clips_, labels, _, *more = data.synthetic_dataset(clips, BUILD["frames"], BUILD["size"], seed,
                                                          task=task, with_poses=with_poses)
        return (clips_, labels, *more)

    def training_set(epoch: int):
        return dataset(TRAIN_CLIPS, TRAIN_SEED + epoch)

    splits = {name: dataset(n, seed, with_poses=poses and name == "validation")
              for name, (n, seed) in SPLITS.items()}
    info = {"data": {"task": task, "train": {"clips_per_epoch": TRAIN_CLIPS, "seed": f"{TRAIN_SEED} + epoch"}}
            | {k: {"clips": n, "seed": s} for k, (n, s) in SPLITS.items()}}
    train_data, validation = training_set, splits["validation"]
    if random_labels:
        clips, labels = training_set(0)[:2]
        shuffled = np.random.default_rng(0).permutation(labels)
        train_data, validation = (clips, shuffled), None
        info["data"]["train"] = {"clips": TRAIN_CLIPS, "seed": TRAIN_SEED}
        info["random_labels"] = {"permutation_seed": 0,
                                 "agreement_with_true_labels": float((shuffled == labels).mean())}
    build = BUILD | ({"temporal": "average"} if frame_average else {})
    recipe = TEMPORAL_TRAIN if task == "temporal" else TRAIN
    result = training.train(build, train_data, validation, out=out, extra_info=info, **recipe)
    more = {"test": training.evaluate(result.model, *splits["test"])}
    if random_labels:
        more["training_set_random_labels"] = training.evaluate(result.model, *train_data)
    test = more["test"]
    training.write_metrics(result, training.metrics_path(out), **more)
    # Saved straight after training the weights file was 3x larger (4.7 MB, same weights);
    # loading and saving again writes it compactly.
    models.save_model(load_model(out), out)
    validation = (f"validation accuracy {result.validation['accuracy']:.3f}" if result.validation else
                  "no validation set (shuffled labels)")
    print(f"{validation}, test accuracy {test['accuracy']:.3f}, macro F1 {test['f1']:.3f}, "
          f"{result.seconds / 60:.1f} min")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None)
    parser.add_argument("--random-labels", action="store_true")
    parser.add_argument("--frame-average", action="store_true",
                        help="the per-frame baseline: an average over time instead of the GRU")
    parser.add_argument("--task", choices=synthetic.TASKS, default="temporal",
                        help="the synthetic task (tdexplain.workbook.synthetic); the shipped models' is temporal")
    parser.add_argument("--paper", action="store_true", help="the paper's sizes, saved under models/")
    arguments = parser.parse_args()
    if arguments.random_labels and arguments.frame_average:
        parser.error("--random-labels and --frame-average train different models: choose one")
    variant = ("random_labels" if arguments.random_labels else
               "frame_average" if arguments.frame_average else "demo")
    default = DEFAULT_OUT[arguments.task][variant][arguments.paper]
    if arguments.paper:
        imagenet = models.imagenet_weights_path()
        BUILD.update(PAPER, weights="imagenet" if imagenet.is_file() else None)
        if not imagenet.is_file():
            print(f"warning: no ImageNet weights at {imagenet}: the VGG19 trains from scratch, unlike "
                  f"the paper's (put the file there for the paper's backbone)", file=sys.stderr)
    out = Path(arguments.out or default)
    out.parent.mkdir(parents=True, exist_ok=True)
    main(str(out), arguments.random_labels, arguments.frame_average, arguments.task)
