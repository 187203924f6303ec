"""Hyperparameter studies: the paper's GRU units, dropout and dense blocks, made quantitative.

The paper picked its head (GRU units 8..2048, the GRU's dropout 0..75%, 2..4 dense blocks) by
looking at activation maps next to accuracy, precision, recall and F1 tables. `run_sweep` trains
one model per configuration and seed and records those scores together with a number for
the maps: the share of Grad-CAM energy on the ground-truth evidence and the pointing game.

Fast on a CPU: the backbone is trained once (the base model's, weights fixed), per-frame
features of every clip are computed once, and each configuration trains only its head on
them; its maps still come from the full model (backbone + its head) through the Explainer.
Each finished configuration is appended to a CSV at once, so an interrupted sweep resumes
where it stopped; a configuration that fails is recorded with its error. A configuration
is plain data (a dict), so the grid can go to any job runner as it is.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from ..engine import backend, shapes
from ..engine.explainer import Explainer
from ..extras import check_engine, require
from ..metrics.localization import localization
from . import models, training
from .data import sample_path, synthetic_clip, synthetic_dataset
from .synthetic import CLASSES

# What a configuration may set, as `models.build_model` arguments: "dropout" is the GRU's rate
# and "block_dropout" the dense blocks' (left out: the same as "dropout").
HEAD_PARAMETERS = ("gru_units", "dropout", "dense_blocks", "dense_units", "block_dropout")
SCORES = ("accuracy", "precision", "recall", "f1", "energy_inside", "pointing_game")

__all__ = ["grid", "one_at_a_time", "SweepData", "synthetic_data", "run_sweep", "load_results", "load_maps", "load_predictions",
           "f1_interval", "summarize", "study_rows", "study_table", "paper_table"]


def grid(**axes) -> list[dict]:
    """Every combination of the axes' values: ``grid(gru_units=[8, 64], dropout=[0, .5])``."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def one_at_a_time(base: dict, **axes) -> list[dict]:
    """The paper's studies: each axis varied alone, the others at `base`; each configuration
    names its study. The base configuration belongs to every study (as in the paper's
    tables) but `run_sweep` trains it once: a row is identified by its hyperparameters and
    seed, not by its study; `study_table` puts it back in each table."""
    return [dict(base, **{name: value}, study=name) for name, values in axes.items() for value in values]


@dataclass(frozen=True)
class SweepData:
    """What every configuration shares: the base model (its trained backbone is reused),
    training and validation clips with labels, and an evaluation set with evidence masks."""

    base_model: keras.Model
    train: tuple
    validation: tuple
    evaluation: tuple  # clips, labels, masks
    # What `run_sweep` computes from these (backbone weights, frame features), kept for a
    # second sweep on the same data (more seeds of one configuration, say) as long as the base
    # model's backbone holds the same weights.
    _arrays: dict = field(default_factory=dict, init=False, repr=False, compare=False)


def synthetic_data(base_model: keras.Model, train_clips: int = 600, evaluation_per_class: int = 20,
                   seed: int = 4000) -> SweepData:
    """Notebook 06's study data: synthetic training and validation clips (a fifth as many,
    at least 15) and an evaluation set of `evaluation_per_class` clips of each class with their
    evidence masks, at the base model's input size; each set from its own seeds."""
    frames, size = shapes.input_spec(base_model)
    classes = tuple(shapes.class_names(base_model))
    if classes != tuple(CLASSES):
        raise ValueError(f"synthetic clips are of the classes {CLASSES}; the base model's are {classes}")
    evaluation = [synthetic_clip(label, frames=frames, size=size, seed=seed + i)
                  for label in classes for i in range(evaluation_per_class)]
    return SweepData(
        base_model,
        train=synthetic_dataset(train_clips, frames, size, seed=seed + 100)[:2],
        validation=synthetic_dataset(max(15, train_clips // 5), frames, size, seed=seed + 200)[:2],
        evaluation=(np.stack([clip.frames for clip in evaluation]),
                    np.repeat(np.arange(len(classes)), evaluation_per_class),
                    np.stack([clip.mask for clip in evaluation])))


def _config_id(config: dict, seed: int) -> str:
    """What identifies a run: its hyperparameters and seed (the study it serves does not)."""
    return json.dumps({k: v for k, v in config.items() if k != "study"} | {"seed": seed}, sort_keys=True)


def _width(backbone: keras.Model) -> float:
    return backbone.get_layer("block1_conv1").filters / 64


def _shared(data: SweepData, layer: str) -> dict:
    """The arrays every worker needs, computed once per `data` and backbone weights: the
    weights and the cached features."""
    base = data.base_model
    backbone = models.backbone_of(base)
    weights = backbone.get_weights()
    fingerprint = hashlib.sha1()
    for array in weights:
        fingerprint.update(np.ascontiguousarray(array))
    digest = fingerprint.hexdigest()
    if data._arrays.get("digest") != digest:
        frames, size = shapes.input_spec(base)
        data._arrays.clear()
        data._arrays.update(
            digest=digest,
            build=dict(frames=frames, size=size, width=_width(backbone), classes=shapes.class_names(base)),
            backbone_weights=weights,
            train=(training.frame_features(base, np.asarray(data.train[0], np.float32)), np.asarray(data.train[1])),
            validation=(training.frame_features(base, np.asarray(data.validation[0], np.float32)),
                        np.asarray(data.validation[1])),
            evaluation=tuple(np.asarray(a) for a in data.evaluation))
    return {k: v for k, v in data._arrays.items() if k != "digest"} | {"layer": layer}


def _train_one(config: dict, seed: int, shared: dict, head_epochs: int, learning_rate: float,
               patience: int, batch_size: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Build the configuration's model on the shared backbone, train its head on the cached
    features, score it, and measure its Grad-CAM maps on the evaluation set: (row, maps,
    the predicted class of each evaluation clip)."""
    keras.utils.set_random_seed(seed)
    head_config = {k: v for k, v in config.items() if k in HEAD_PARAMETERS}
    unknown = set(config) - set(HEAD_PARAMETERS) - {"study"}
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {sorted(unknown)}; a sweep varies {HEAD_PARAMETERS}")
    model = models.build_model(**shared["build"], **head_config)
    backbone = models.backbone_of(model)
    backbone.set_weights(shared["backbone_weights"])
    backbone.trainable = False
    head = training.head_model(model)
    start = time.perf_counter()
    history = training._fit(head, lambda epoch: shared["train"], shared["validation"], head_epochs,
                            batch_size, learning_rate, patience, False, "head", seed)
    seconds = time.perf_counter() - start
    clips, labels, masks = shared["evaluation"]
    result = Explainer(model).explain(clips, methods="gradcam", layer=shared["layer"], target=labels)
    found = localization(result.maps["gradcam"], masks)
    predicted = result.predicted
    table = training.scores(labels, predicted, shapes.class_names(model))
    row = {name: table[name] for name in ("accuracy", "precision", "recall", "f1")}
    for name, per_class in table["per_class"].items():
        row.update({f"{score}_{name}": per_class[score] for score in ("precision", "recall", "f1")})
    row.update(energy_inside=float(np.nanmean(found["energy_inside"])),
               pointing_game=float(np.nanmean(found["pointing_game"])),
               chance=float(np.nanmean(found["chance"])), train_seconds=round(seconds, 2),
               epochs_run=len(history["loss"]), parameters=int(model.count_params()))
    return row, result.maps["gradcam"], predicted


_WORKER_SHARED = {}  # a worker process's copy of the shared arrays, sent once at its start


def _worker_init(shared):
    backend.quiet()  # each configuration compiles its own passes: retracing notices are expected
    _WORKER_SHARED.update(shared)


def maps_path(out, config_id: str) -> Path:
    """Where the Grad-CAM maps of a configuration's evaluation set and its predictions are
    kept, beside the CSV."""
    out = Path(out)
    return out.parent / f"{out.stem}_maps" / f"{hashlib.sha1(config_id.encode()).hexdigest()[:16]}.npz"


def load_maps(out, row) -> np.ndarray:
    """The Grad-CAM maps (N, T, H, W) of the evaluation set of one row of the results."""
    return np.load(maps_path(out, row["config_id"]))["gradcam"].astype(np.float32)


def load_predictions(out, row) -> np.ndarray:
    """The predicted class (N,) of each evaluation clip, for one row of the results."""
    with np.load(maps_path(out, row["config_id"])) as saved:
        if "predicted" not in saved:
            raise ValueError(f"the maps of {row['config_id']} were saved before the sweep kept predictions: "
                             f"delete its row from {out} to run it again")
        return saved["predicted"]


def f1_interval(predictions, labels, class_names, level: float = 0.95, samples: int = 1000,
                seed: int = 0) -> tuple:
    """Percentile bootstrap interval of the macro F1 averaged over `predictions` (one array of
    predicted classes per seed of a configuration, `load_predictions`): each class's evaluation
    clips are drawn again with replacement, so a draw keeps the set's class balance and misses
    no class, and every seed is scored on the same draw. Where the mean F1 could fall on other
    clips like these; how much it moves from seed to seed is another question (`summarize`)."""
    labels = np.asarray(labels)
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1:
        raise ValueError("predictions must be a list of arrays, one per seed: wrap one seed's in a list")
    predictions = [np.asarray(p) for p in predictions]
    if not predictions or any(p.shape != labels.shape for p in predictions):
        raise ValueError(f"predictions must be a list of arrays, one per seed, each shaped like labels "
                         f"{labels.shape}; got {[p.shape for p in predictions]}")
    rng = np.random.default_rng(seed)
    of_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    f1 = []
    for _ in range(samples):
        drawn = np.concatenate([rng.choice(clips, clips.size) for clips in of_class])
        f1.append(np.mean([training.scores(labels[drawn], predicted[drawn], class_names)["f1"]
                           for predicted in predictions]))
    low, high = np.percentile(f1, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def _row_of(config: dict, seed: int) -> dict:
    """What a row of the CSV starts with: the run's id, its seed and its hyperparameters."""
    return {"config_id": _config_id(config, seed), "seed": seed, **{k: v for k, v in config.items() if k != "study"}}


def _task(config, seed, shared, options, out) -> dict:
    """One configuration, never raising: a failure becomes a row with its error."""
    start = time.perf_counter()
    row = _row_of(config, seed)
    try:
        scores, maps, predicted = _train_one(config, seed, shared or _WORKER_SHARED, **options)
        path = maps_path(out, row["config_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, gradcam=maps.astype(np.float16), predicted=predicted)
        row.update(scores, status="ok", error="")
    except Exception as error:  # noqa: BLE001 - recorded in the CSV, the sweep goes on
        row.update(status="failed", error=f"{type(error).__name__}: {error}"[:500],
                   traceback=traceback.format_exc(limit=3)[-1000:])
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


class _CsvLog:
    """Appends rows to a CSV and flushes each: a killed sweep loses only the running ones.
    A row with columns the header lacks (the first success after failures) rewrites the
    file once with the wider header, through a temporary file, so no row is lost."""

    def __init__(self, path: Path):
        self.path = path
        self.columns = []
        if path.exists() and path.stat().st_size:
            text = path.read_text()
            if not text.endswith("\n"):  # killed while writing a row: drop the half row
                path.write_text(text[:text.rfind("\n") + 1])
            self.columns = next(csv.reader(path.open(newline="")), [])

    def rows(self) -> list[dict]:
        if not self.columns:
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def done(self) -> set:
        return {row["config_id"] for row in self.rows()}

    def append(self, row: dict) -> None:
        new_columns = [c for c in row if c not in self.columns]
        if new_columns:
            rows = self.rows()
            self.columns += new_columns
            partial = self.path.with_suffix(".partial")
            with partial.open("w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(rows)
            partial.replace(self.path)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)




def run_sweep(configs, data: SweepData, out, seeds=(0,), workers: int = 1, head_epochs: int = 40,
              batch_size: int = 32, learning_rate: float = 1e-3, patience: int = 8,
              layer: str = "block4_conv4", progress: bool = True, engine: str = "local",
              address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0):
    """Train and score every configuration for every seed; return all rows of `out` (a CSV).

    configs: dicts of head hyperparameters (gru_units, dropout: the GRU's rate, dense_blocks,
    dense_units, block_dropout: the dense blocks' rate, default the GRU's; see
    `models.build_model`) and optionally a "study" name (see `grid`, `one_at_a_time`). Rows
    already in `out` are not run again (delete a failed row to retry it). Each configuration's
    Grad-CAM maps of the evaluation set are kept beside the CSV (`load_maps`), for figures that
    compare configurations without training them again.

    engine: "local": `workers` processes on this machine (1: in this one), Ray never
    imported; "ray": one Ray Tune trial per configuration and seed, each with `cpus_per_trial`
    CPUs and `gpus_per_trial` GPUs, on the cluster at `address` or $RAY_ADDRESS, else a local
    one (`workers` is then unused: Tune runs as many trials at once as the resources allow).
    The driver appends each finished trial to `out`; a sweep killed midway and started again
    restores its Tune experiment (kept beside `out` in <its stem>_tune/ until the sweep
    completes) and runs only the trials that had not finished. On a cluster of several machines, `out` must be on a
    filesystem they all see (the trials' maps travel to it as Tune checkpoints).
    """
    configs = [dict(c) for c in configs]
    if not configs:
        raise ValueError("configs is empty: nothing to sweep")
    check_engine(engine)
    out = Path(out).resolve()  # a restored Tune experiment appends to this very file
    out.parent.mkdir(parents=True, exist_ok=True)
    log = _CsvLog(out)
    done = log.done()
    todo = []
    for config, seed in itertools.product(configs, seeds):
        run_id = _config_id(config, seed)
        if run_id not in done:
            done.add(run_id)
            todo.append((config, seed))
    if todo:
        shared = _shared(data, layer)
        options = dict(head_epochs=head_epochs, batch_size=batch_size, learning_rate=learning_rate,
                       patience=patience)
        if engine == "ray":
            _run_on_tune(todo, shared, options, out, address, cpus_per_trial, gpus_per_trial, progress)
        else:
            _run_here(todo, shared, options, out, log, workers, progress)
    shutil.rmtree(_tune_folder(out), ignore_errors=True)  # a complete sweep's, killed before it removed it
    return load_results(out)


def _tune_folder(out: Path) -> Path:
    """Where the Ray engine keeps its Tune experiment until the sweep completes."""
    return out.parent / f"{out.stem}_tune"


def _run_here(todo: list, shared: dict, options: dict, out: Path, log: _CsvLog, workers: int,
              progress: bool) -> None:
    """The local engine: `todo` in this process, or in `workers` processes, each row appended
    to `log` as it finishes."""
    bar = tqdm(total=len(todo), desc="sweep", unit="config", disable=not progress)
    if workers <= 1:
        for config, seed in todo:
            log.append(_task(config, seed, shared, options, out))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init,
                                 initargs=(shared,)) as pool:
            futures = [pool.submit(_task, config, seed, None, options, out) for config, seed in todo]
            for future in as_completed(futures):
                log.append(future.result())
                bar.update()
    bar.close()


def _run_on_tune(todo: list, shared: dict, options: dict, out: Path, address, cpus_per_trial: float,
                 gpus_per_trial: float, progress: bool) -> None:
    """The Ray engine: each configuration and seed a Ray Tune trial (`ray_trials`); the driver
    appends each finished trial's row to `out` and copies its maps beside it."""
    require("the sweep on Ray Tune (engine='ray')", "ray", extra="cluster")
    from .ray_trials import run_trials

    def missing(runs):
        done = _CsvLog(out).done()
        return [run for run in runs if _config_id(run["config"], run["seed"]) not in done]

    run_trials([{"config": config, "seed": seed} for config, seed in todo], _tune_work,
               {"shared": shared, "options": options}, functools.partial(_record_trial, out),
               _tune_folder(out), missing, address, cpus_per_trial, gpus_per_trial, progress)


_TRIAL_CSV = "trial.csv"  # a Tune trial writes its maps where a sweep into this CSV would


def _tune_work(run: dict, folder: Path, shared: dict, options: dict) -> dict:
    """A Ray Tune trial: one configuration and seed, its maps written into `folder`."""
    return {"row": json.dumps(_task(run["config"], run["seed"], shared, options, folder / _TRIAL_CSV))}


def _record_trial(out: Path, run: dict, result: dict | None, checkpoint, error) -> None:
    """A finished Tune trial's row appended to `out`, unless it is there already, after its maps
    are copied from the trial's checkpoint to where `load_maps` looks; a trial that failed
    beyond Tune's retries becomes a failed row with Tune's error."""
    log = _CsvLog(out)
    config_id = _config_id(run["config"], run["seed"])
    if config_id in log.done():
        return
    if result and "row" in result:
        row = json.loads(result["row"])
    else:
        row = _row_of(run["config"], run["seed"]) | {"status": "failed",
                                                      "error": f"the Ray Tune trial failed: {error}"[:500]}
    if row["status"] == "ok":
        with checkpoint.as_directory() as folder:
            path = maps_path(out, config_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(maps_path(Path(folder) / _TRIAL_CSV, config_id), path)
    log.append(row)


def load_results(path):
    """The sweep's CSV as a DataFrame."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def summarize(results, scores=SCORES):
    """Mean and standard deviation over seeds of each score, one row per configuration
    (successful runs only), with the number of seeds: tells a difference from noise."""
    ok = results[results["status"] == "ok"]
    keys = [k for k in HEAD_PARAMETERS if k in ok.columns and ok[k].notna().any()]
    grouped = ok.groupby(keys, sort=False, dropna=False)
    table = grouped[[s for s in scores if s in ok.columns]].agg(["mean", "std"])
    table[("seeds", "n")] = grouped.size()
    return table


def study_rows(results, base: dict, parameter: str):
    """The successful runs of one study: `parameter` varies, every other hyperparameter of
    `base` keeps its value; sorted by `parameter`, all seeds."""
    ok = results[results["status"] == "ok"]
    for name, value in base.items():
        if name != parameter and name in ok.columns:
            column = ok[name].astype(float)
            ok = ok[column.isna() if value is None else np.isclose(column, float(value))]
    return ok.sort_values([parameter, "seed"])


def study_table(results, base: dict, parameter: str, scores=SCORES):
    """One study in the paper's layout: `study_rows` summarized over seeds, by `parameter`."""
    table = summarize(study_rows(results, base, parameter), scores)
    return table.droplevel([k for k in table.index.names if k != parameter])


def paper_table(study: str):
    """The paper's table for a study ("gru_units": Table 1, "dropout": Table 2, "dense_blocks":
    Table 3) as printed, in the layout of `study_table`'s means: one row per value, accuracy,
    precision, recall and F1 as fractions. From data_samples/paper_tables.csv, which cites it."""
    import pandas as pd

    tables = pd.read_csv(sample_path("paper_tables.csv"), comment="#")
    if study not in set(tables["study"]):
        raise ValueError(f"the paper has no table for {study!r}; its studies: "
                         f"{', '.join(tables['study'].unique())}")
    table = tables[tables["study"] == study].set_index("value").rename_axis(study)
    if study != "dropout":
        table.index = table.index.astype(int)
    return table[["accuracy", "precision", "recall", "f1"]] / 100
