"""Work as Ray Tune trials that a killed driver can restore: the sweep's Ray engine
(`sweep.run_sweep(engine="ray")`). Imported only when asked for, so the local engine never
imports Ray.

A trial runs `work(run, folder)` (a module-level function: Ray sends it by reference) for one
item of the grid, reports what it returns as its result and whatever it wrote into `folder` as
its checkpoint. On the driver, `record(result, checkpoint)` is called as each trial finishes.
The Tune experiment lives at `experiment` until all is done: a run killed midway and started
again restores it and Tune runs only the trials that had not finished; what is still missing
after that gets a new experiment.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ray import tune
from tqdm.auto import tqdm

from ..engine import backend
from ..extras import connect_ray, task_slots

__all__ = ["run_trials"]

log = logging.getLogger(__name__)


def _trial(space: dict, work, parameters: dict) -> None:
    """One Ray Tune trial: `work`'s result reported, with its folder as the checkpoint."""
    backend.quiet()
    with tempfile.TemporaryDirectory() as folder:
        result = work(space["run"], Path(folder), **parameters)
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


class _Record(tune.Callback):
    """On the driver: `record` each trial's result and checkpoint as the trial finishes. Plain
    data (a module-level function and a flag), so the experiment a run restores brings it back."""

    def __init__(self, record, progress: bool):
        self.record, self.progress, self.bar = record, progress, None

    def __getstate__(self):
        return {"record": self.record, "progress": self.progress, "bar": None}

    def setup(self, **info):
        self.bar = tqdm(desc="Ray Tune trials", unit="trial", disable=not self.progress)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.record(trial.config["run"], trial.last_result, trial.checkpoint, None)
        self.bar.update()

    def on_experiment_end(self, trials, **info):
        self.bar.close()


def run_trials(runs: list, work, parameters: dict, record, experiment: Path, remaining, address=None,
               cpus_per_trial: float = 1, gpus_per_trial: float = 0, progress: bool = True) -> None:
    """Each of `runs` (plain data) as a Tune trial of `work(run, folder, **parameters)`, with
    `cpus_per_trial` and `gpus_per_trial`; `record(run, result, checkpoint, error)` on the
    driver for each finished trial (with the error of one that failed beyond Tune's retries).
    First the unfinished trials of the experiment a killed run left at `experiment`, restored;
    then `remaining(runs)`, the runs still missing, in a new experiment."""
    ray = connect_ray("the sweep on Ray Tune (engine='ray')", address)
    task_slots(ray, cpus_per_trial, gpus_per_trial)  # fails now if no machine can hold a trial
    trainable = tune.with_resources(tune.with_parameters(_trial, work=work, parameters=parameters),
                                    {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    if tune.Tuner.can_restore(experiment):
        try:
            restored = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
        except Exception as error:  # noqa: BLE001 - left by another version or run: start afresh
            log.warning("cannot restore the Tune experiment in %s (%s); running what is missing anew",
                        experiment, error)
        else:
            _collect(restored.fit(), record)
        runs = remaining(runs)
    if runs:
        shutil.rmtree(experiment, ignore_errors=True)
        tuner = tune.Tuner(trainable, param_space={"run": tune.grid_search(runs)}, run_config=tune.RunConfig(
            name=experiment.name, storage_path=str(experiment.parent), verbose=0,
            callbacks=[_Record(record, progress)], failure_config=tune.FailureConfig(max_failures=2)))
        _collect(tuner.fit(), record)
    shutil.rmtree(experiment, ignore_errors=True)  # all is done: what `record` kept is the record


def _collect(results, record) -> None:
    """Every trial of an experiment to `record`, for those the callback could not (a trial that
    finished just before a kill, one that failed beyond Tune's retries)."""
    for result in results:
        record(result.config["run"], result.metrics, result.checkpoint, result.error)
