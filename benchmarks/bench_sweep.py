"""The course-size hyperparameter sweep of notebook 06: run time, per configuration, and what
the feature cache and worker processes buy, as ratios measured in the same process.

Baselines: the frame features of all clips computed once (what each configuration would pay
again without the cache), and the same sweep with one worker against two.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tdexplain import load_model
from tdexplain.workbook import models, sweep, training

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.json"


SEEDS, BASE_SEEDS, HEAD_EPOCHS = (0,), (0, 1, 2), 60
BASE = {"gru_units": 128, "dropout": 0.5, "dense_blocks": 3}


def course_sweep():
    """The defaults of notebooks/06_hyperparameters.ipynb."""
    sweep_data = sweep.synthetic_data(load_model(models.DEMO_MODEL), train_clips=600, evaluation_per_class=20,
                                      seed=4000)
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 32, 128], dropout=[0.0, 0.5, 0.75], dense_blocks=[2, 3, 4])
    return sweep_data, configs


def timed_sweep(sweep_data, configs, workers):
    # fresh data: each timed sweep computes its frame features, as the notebook's does
    sweep_data = sweep.SweepData(sweep_data.base_model, sweep_data.train, sweep_data.validation,
                                 sweep_data.evaluation)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        options = dict(workers=workers, head_epochs=HEAD_EPOCHS, progress=False)
        sweep.run_sweep(configs, sweep_data, Path(folder) / "sweep.csv", seeds=SEEDS, **options)
        results = sweep.run_sweep([BASE], sweep_data, Path(folder) / "sweep.csv", seeds=BASE_SEEDS, **options)
        return time.perf_counter() - start, results


def main(workers_compared: bool):
    sweep_data, configs = course_sweep()
    start = time.perf_counter()
    for clips in (sweep_data.train[0], sweep_data.validation[0]):
        training.frame_features(sweep_data.base_model, clips.astype(np.float32))
    features_seconds = time.perf_counter() - start
    serial_seconds, results = timed_sweep(sweep_data, configs, workers=1)
    runs = len(results)
    per_run = results["seconds"].astype(float)
    record = {
        "configurations_listed": len(configs), "runs": runs,
        "sweep_seconds": round(serial_seconds, 1),
        "seconds_per_run_median": round(float(per_run.median()), 2),
        "train_seconds_per_run_median": round(float(results["train_seconds"].median()), 2),
        "features_once_seconds": round(features_seconds, 2),
        "uncached_over_cached_per_run": round((per_run.median() + features_seconds) / per_run.median(), 2),
    }
    if workers_compared:
        parallel_seconds, _ = timed_sweep(sweep_data, configs, workers=2)
        record["two_workers_seconds"] = round(parallel_seconds, 1)
        record["one_over_two_workers"] = round(serial_seconds / parallel_seconds, 2)
    print(f"{'measure':55s} value")
    for key, value in record.items():
        print(f"{key:55s} {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-workers", action="store_true", help="skip the two-worker run")
    main(not parser.parse_args().no_workers)
