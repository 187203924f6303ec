"""Training and scoring the video classifier: the figures of the paper's Tables 1-3.

``train`` fits a model (built from a configuration, inside a ``tf.distribute`` strategy
when one is given) with validation data, early stopping and a progress bar, and writes
the model with a JSON of its configuration, seed, history and scores beside it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from ..engine import shapes
from ..engine.clips import check_clips
from ..engine.unroll import find_time_distributed
from . import models

__all__ = ["evaluate", "scores", "train", "TrainingResult", "metrics_path", "frame_features",
           "head_model", "frame_classifier"]


def evaluate(model: keras.Model, clips, labels, batch_size: int = 16) -> dict:
    """Accuracy, precision, recall and F1 (macro and per class) and the confusion matrix."""
    probabilities = models.predict(model, clips, batch_size=batch_size)
    return scores(labels, probabilities.argmax(axis=1), shapes.class_names(model))


def scores(true_labels, predicted_labels, class_names) -> dict:
    """The paper's table figures from true and predicted class indices (no sklearn needed)."""
    true_labels = np.asarray(true_labels, int)
    predicted_labels = np.asarray(predicted_labels, int)
    if true_labels.shape != predicted_labels.shape or true_labels.ndim != 1:
        raise ValueError(f"labels must be two 1-D arrays of the same length, got "
                         f"{true_labels.shape} and {predicted_labels.shape}")
    n_classes = len(class_names)
    if true_labels.size and (true_labels.min() < 0 or true_labels.max() >= n_classes):
        raise ValueError(f"labels must be class indices in 0..{n_classes - 1}")
    confusion = np.zeros((n_classes, n_classes), int)  # rows: true class, columns: predicted
    np.add.at(confusion, (true_labels, predicted_labels), 1)
    hits = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(n_classes), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n_classes),
                   where=precision + recall > 0)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(class_names, precision, recall, f1, actual)}
    return {
        "accuracy": float(hits.sum() / max(confusion.sum(), 1)),
        "precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean()),
        "per_class": per_class, "confusion_matrix": confusion.tolist(), "classes": list(class_names),
    }


class _ProgressBar(keras.callbacks.Callback):
    """One tqdm bar over the epochs, with the latest losses and accuracies."""

    def __init__(self, epochs: int, enabled: bool, desc: str = "training"):
        super().__init__()
        self.bar = tqdm(total=epochs, desc=desc, unit="epoch", disable=not enabled)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in (logs or {}).items()
                              if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


@dataclass
class TrainingResult:
    model: keras.Model
    history: dict
    validation: dict | None
    seconds: float
    config: dict = field(default_factory=dict)
    path: Path | None = None


def metrics_path(model_path) -> Path:
    """The JSON written beside a model: ``name.keras`` -> ``name.metrics.json``."""
    return Path(model_path).with_suffix(".metrics.json")


def frame_classifier(model: keras.Model, n_targets: int | None = None) -> keras.Model:
    """The model's own CNN (shared weights) with the preprocessing and a new softmax on single
    frames: pretraining it on frames labelled with their clip's class gives the backbone the
    head start that ImageNet weights give the paper's model. With `n_targets`, a linear layer
    of that many outputs instead, to regress per-frame targets (a frame's poses)."""
    wrapper = find_time_distributed(model)
    frames_in = keras.Input(model.input_shape[2:], name="frame")
    x = frames_in
    for layer in model.layers[1:model.layers.index(wrapper)]:  # per-pixel preprocessing
        x = layer(x)
    x = wrapper.layer(x)
    if len(x.shape) == 4:  # pooling after the wrapper: the CNN ends at a grid
        x = keras.layers.GlobalAveragePooling2D(name="frame_pooling")(x)
    outputs = (keras.layers.Dense(len(shapes.class_names(model)), activation="softmax",
                                  name="frame_probabilities")(x) if n_targets is None else
               keras.layers.Dense(n_targets, name="frame_targets")(x))
    return keras.Model(frames_in, outputs, name="frame_classifier")


def head_model(model: keras.Model) -> keras.Model:
    """The layers after the TimeDistributed CNN (GRU, dense blocks, softmax), shared, as a
    model of per-frame features (N, T, F): it trains in seconds on cached features."""
    wrapper = find_time_distributed(model)
    features = keras.Input(tuple(wrapper.output.shape[1:]), name="frame_features")
    x = features
    for layer in model.layers[model.layers.index(wrapper) + 1:]:
        x = layer(x)
    return keras.Model(features, x, name="head")


def frame_features(model: keras.Model, clips, batch_size: int = 64) -> np.ndarray:
    """Per-frame features (N, T, F) from the model's CNN, in batches of frames."""
    wrapper = find_time_distributed(model)
    extractor = keras.Model(model.inputs[0], wrapper.output)
    return extractor.predict(clips, batch_size=max(1, batch_size // clips.shape[1]), verbose=0)


class _DrawnEachEpoch(keras.utils.PyDataset):
    """Shuffled batches of a training set drawn anew for every epoch by `draw(epoch) -> (x, y)`.

    Every batch is full, so the training step is compiled once, not again for a short last
    batch: the last batch is completed with the first clips of the epoch's order, which a few
    clips then see twice (a set smaller than a batch is one batch).

    The set is loaded by the `Loader` callback, which knows the training epoch. (The dataset's
    own on_epoch_begin does not: on JAX, Keras also calls it when it reads a first batch to
    build the model before training.)"""

    def __init__(self, draw, batch_size: int, seed: int):
        super().__init__()
        self.draw, self.batch_size = draw, batch_size
        self.rng = np.random.default_rng(seed)
        self.load(0)  # before fit asks for the length

    def load(self, epoch: int):
        x, y = self.draw(epoch)
        order = self.rng.permutation(len(x))
        short = -len(x) % self.batch_size if len(x) > self.batch_size else 0
        order = np.concatenate([order, order[:short]])  # the last batch completed
        self.x, self.y, self.epoch = x[order], y[order], epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[batch].astype(np.float32), self.y[batch]

    def loader(self) -> keras.callbacks.Callback:
        """The callback that loads the set of each training epoch as it begins."""
        dataset = self

        class Loader(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch != dataset.epoch:
                    dataset.load(epoch)

        return Loader()


def _fit(model, draw, validation, epochs, batch_size, learning_rate, patience, progress, desc, seed,
         regression=False):
    """Fit on `draw(epoch) -> (x, y)`: the same arrays every epoch, or a new set each time;
    y are class indices, or with `regression` real targets (mean squared error)."""
    training_set = _DrawnEachEpoch(draw, batch_size, seed)
    compiled = dict(loss="mse" if regression else "sparse_categorical_crossentropy",
                    metrics=[] if regression else ["accuracy"])
    # A whole epoch per execution: the same updates without the per-batch overhead that
    # dominates a small head's training on a CPU (on TensorFlow one compiled loop; on JAX a
    # loop of compiled steps without the per-batch bookkeeping).
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  steps_per_execution=len(training_set), **compiled)
    monitor = "val_loss" if validation is not None else "loss"
    callbacks = [training_set.loader(),
                 keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                               restore_best_weights=True),
                 _ProgressBar(epochs, progress, desc)]
    history = model.fit(training_set, validation_data=validation, epochs=epochs,
                        callbacks=callbacks, verbose=0)
    model.compile(optimizer=model.optimizer, **compiled)  # one batch a step again for what comes next
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def train(model, train_data, validation_data=None, *, epochs: int = 30, batch_size: int = 16,
          learning_rate: float = 1e-4, patience: int = 6, frame_epochs: int = 0,
          frame_learning_rate: float = 3e-4, head_epochs: int = 0,
          head_learning_rate: float = 1e-3, seed: int = 0, strategy=None,
          out=None, progress: bool = True, extra_info: dict | None = None) -> TrainingResult:
    """Train a video classifier, in up to three stages.

    1. ``frame_epochs``: pretrain the CNN as a classifier of single frames, or a regressor
       of their frame targets when the data has them (no dropout in the way: a deep plain
       VGG trained from scratch behind the paper's 50% dropout head does not leave chance
       level).
    2. ``head_epochs``: train the GRU and dense blocks on cached per-frame features, the
       CNN fixed (fast: the CNN runs once).
    3. ``epochs``: train the whole model end to end (the CNN only if trainable).

    model: a built Keras model, or a dict of ``models.build_model`` arguments (required
    with a ``tf.distribute`` strategy: the model is then built inside its scope).
    train_data: (clips, labels), or a function ``epoch -> (clips, labels)`` that draws a new
    training set for every epoch of stages 1 and 3 (stage 2 uses the first set). A third
    element, frame targets (N, T, P) floats, makes stage 1 regress them (mean squared error)
    instead of classifying each frame as its clip: ``(clips, labels, poses)`` for the synthetic
    temporal task, whose single frames do not tell the class (``synthetic_dataset(...,
    with_poses=True)`` returns the masks before the poses; leave them out). Synthetic
    clips cost milliseconds, and a CNN that never sees a scene twice cannot memorize scenes:
    trained so as a frame classifier, its Grad-CAM finds the evidence about twice as often
    (benchmarks/RESULTS.md).
    validation_data: (clips, labels), with frame targets as a third element if the training
    data has them. Each stage stops early on the
    validation loss (training loss without validation data) and keeps its best weights.
    With `out` (a ``.keras`` path) the model is saved there and its configuration, seed,
    history and validation scores go to ``metrics_path(out)``.
    """
    if strategy is not None and not isinstance(model, dict):
        raise ValueError("with a distribution strategy, pass the model as a dict of build_model "
                         "arguments, so it is built inside the strategy's scope")
    keras.utils.set_random_seed(seed)
    build_config = dict(model) if isinstance(model, dict) else None
    start = time.perf_counter()
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if build_config is not None:
            model = models.build_model(**build_config)
        frames, size = shapes.input_spec(model)
        n_classes = len(shapes.class_names(model))

        def checked(data_, name, like=None):
            """(clips, labels, frame targets or None), with as many frame targets as `like`'s."""
            if len(data_) not in (2, 3):
                raise ValueError(f"{name} data must be (clips, labels) or (clips, labels, frame "
                                 f"targets), got {len(data_)} elements")
            clips_ = check_clips(data_[0], frames, size, name=f"{name} clips")
            labels_ = _labels(data_[1], len(clips_), n_classes, f"{name} labels")
            targets_ = _frame_targets(data_[2], clips_.shape[:2], name) if len(data_) > 2 else None
            if like is not None:
                _same_frame_targets(targets_, like[2], name)
            return clips_, labels_, targets_

        first = checked(train_data(0) if callable(train_data) else train_data, "training")
        clips, labels, targets = first

        def draw(epoch):  # the training set of an epoch
            fresh = callable(train_data) and epoch > 0
            return checked(train_data(epoch), f"training (epoch {epoch})", first) if fresh else first

        validation = validation_targets = None
        if validation_data is not None:
            validation_clips, validation_labels, validation_targets = checked(
                validation_data, "validation", first)
            validation = (validation_clips, validation_labels)
        history = {}
        if frame_epochs:
            frame_validation = None if validation is None else _as_frame_set(*validation,
                                                                              validation_targets)
            history["frames"] = _fit(frame_classifier(model, None if targets is None else targets.shape[-1]),
                                     lambda epoch: _as_frame_set(*draw(epoch)), frame_validation,
                                     frame_epochs, batch_size * frames, frame_learning_rate,
                                     patience, progress, "frame pretraining", seed,
                                     regression=targets is not None)
        if head_epochs:
            features = frame_features(model, clips)
            feature_validation = (None if validation is None else
                                  (frame_features(model, validation[0]), validation[1]))
            history["head"] = _fit(head_model(model), lambda epoch: (features, labels),
                                   feature_validation, head_epochs, batch_size, head_learning_rate,
                                   patience * 2, progress, "head on cached features", seed)
        if epochs:
            history["end_to_end"] = _fit(model, lambda epoch: draw(epoch)[:2], validation, epochs,
                                         batch_size, learning_rate,
                                         patience, progress, "end to end", seed)
    seconds = time.perf_counter() - start
    scores_ = evaluate(model, *validation, batch_size=batch_size) if validation else None
    config = {
        "build": build_config or {"name": model.name},
        "train": dict(frame_epochs=frame_epochs, head_epochs=head_epochs, epochs=epochs,
                      epochs_run={stage: len(h["loss"]) for stage, h in history.items()},
                      batch_size=batch_size, learning_rate=learning_rate,
                      frame_learning_rate=frame_learning_rate, head_learning_rate=head_learning_rate, patience=patience, seed=seed,
                      train_clips=len(clips), fresh_data_each_epoch=callable(train_data),
                      frame_targets=None if targets is None else int(targets.shape[-1]),
                      validation_clips=len(validation[0]) if validation else 0,
                      strategy=type(strategy).__name__ if strategy is not None else None),
        "classes": list(shapes.class_names(model)),
        "parameters": int(model.count_params()),
    } | (extra_info or {})
    result = TrainingResult(model, history, scores_, seconds, config)
    if out is not None:
        result.path = models.save_model(model, out)
        write_metrics(result, metrics_path(out))
    return result


def write_metrics(result: TrainingResult, path, **more) -> Path:
    payload = {"config": result.config, "training_seconds": round(result.seconds, 1),
               "history": result.history, "validation": result.validation} | more
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2))
    return path


def _as_frame_set(clips, labels, targets=None):
    """Clips (N, T, ...) as frames (N*T, ...), each labelled with its clip's class, or with its
    own row of the frame targets (N, T, P) when given."""
    frames = clips.reshape((-1,) + clips.shape[2:])
    if targets is None:
        return frames, np.repeat(labels, clips.shape[1])
    return frames, targets.reshape(len(frames), -1)


def _same_frame_targets(targets, first_targets, name: str):
    count = lambda t: "no frame targets" if t is None else f"{t.shape[-1]} frame targets"  # noqa: E731
    if count(targets) != count(first_targets):
        raise ValueError(f"{name} data has {count(targets)}, the first training set "
                         f"{count(first_targets)}: give every set the same")


def _frame_targets(targets, clips_and_frames: tuple, name: str) -> np.ndarray:
    targets = np.asarray(targets, np.float32)
    if targets.ndim != 3 or targets.shape[:2] != tuple(clips_and_frames) or not np.isfinite(targets).all():
        raise ValueError(f"{name} frame targets must be finite numbers of shape (clips, frames, "
                         f"targets) = {tuple(clips_and_frames)} + (P,), got {targets.shape}")
    return targets


def _labels(labels, count: int, n_classes: int, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (count,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be {count} integer class indices, got shape "
                         f"{labels.shape} dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{name} must be in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}")
    return labels
