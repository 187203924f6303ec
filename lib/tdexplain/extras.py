"""What a lean install leaves out, and the error that says how to get it.

`pip install tdexplain` brings the library and the `tdexplain explain` and `train` commands;
the workbook's stack (JupyterLab, ipywidgets, papermill, nbconvert) is the `notebooks` extra.
A module or command that needs it calls `require` first, so that without it the user reads
which extra to install, not a ModuleNotFoundError from deep inside a dependency. The check
only looks the modules up (`importlib.util.find_spec`): it imports nothing.
"""

from __future__ import annotations

import importlib.util
import math

__all__ = ["MissingExtra", "require", "ENGINES", "check_engine", "connect_ray", "task_slots"]


class MissingExtra(ImportError):
    """Modules of an optional extra are not installed; the message names the extra."""


def require(feature: str, *modules: str, extra: str = "notebooks") -> None:
    """Raise `MissingExtra` naming `extra` when one of `modules` cannot be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(f"{feature} needs {', '.join(missing)}, which a plain install of tdexplain "
                           f"leaves out: pip install 'tdexplain[{extra}]'", name=missing[0])


ENGINES = ("local", "ray")  # where the batch, the sweep and the reports run: here, or on Ray


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def connect_ray(feature: str, address: str | None = None):
    """The `ray` module, connected: to the running session if there is one, else to the
    cluster at `address` or $RAY_ADDRESS, else to a new local cluster on this machine's CPUs.
    Raises `MissingExtra` naming the cluster extra when Ray is not installed."""
    require(feature, "ray", extra="cluster")
    import logging
    import os

    import ray

    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), log_to_driver=False,
                 include_dashboard=False, logging_level=logging.WARNING)
    return ray


def task_slots(ray, cpus: float, gpus: float = 0) -> int:
    """How many tasks (trials, workers) of `cpus` CPUs and `gpus` GPUs each the connected Ray
    cluster runs at once: each must fit on one machine. Raises ValueError, with the machines'
    resources, when none fits (Ray would wait for such a machine forever)."""
    if cpus <= 0 or gpus < 0:
        raise ValueError(f"each task needs more than 0 CPUs and at least 0 GPUs, got {cpus} and {gpus}")
    machines = [node["Resources"] for node in ray.nodes() if node["Alive"]]

    def fits(have: float, need: float) -> float:  # rounded first: 1 // 0.1 is 9 in floating point
        return math.floor(round(have / need, 6)) if need else math.inf

    slots = sum(int(min(fits(m.get("CPU", 0), cpus), fits(m.get("GPU", 0), gpus))) for m in machines)
    if not slots:
        have = ", ".join(f"{m.get('CPU', 0):g} CPU and {m.get('GPU', 0):g} GPU" for m in machines)
        raise ValueError(f"no machine of the Ray cluster can hold a task of {cpus:g} CPU and {gpus:g} GPU; "
                         f"its machines have: {have}")
    return slots
