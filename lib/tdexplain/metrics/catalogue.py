"""Every metric in one catalogue: its family, the function that computes it, what it measures,
which way is better, what it reads and what bounds its memory, and, for the metrics with a
column in `evaluate_methods`, how that column is computed (`per_clip`). Each family's module
registers its own rows next to its functions (`register`), so a new metric is one function,
one row and one test, in one file; the README's table of metrics is made from the catalogue
(`python -m tdexplain.metrics`), as the table of methods is from the method registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Metric", "Run", "METRICS", "FAMILIES", "register", "columns", "markdown_table"]

# The families, each one module of `tdexplain.metrics`, in the order of the README's table.
FAMILIES = ("localization", "faithfulness", "randomization", "robustness", "complexity", "axiomatic")


@dataclass
class Run:
    """One method in one `evaluate_methods` call, what its columns read: the explainer, the
    clips (N, T, H, W, 3), the class explained in each (N,), the evidence masks (N, T, H, W),
    the method's name and its maps (N, T, H, W); `method` as given (a name or a callable),
    the call's layer, options and settings (its keyword arguments: steps, fill, progress,
    robustness_samples, ...). `curves` holds the method's deletion and insertion curves (for
    the table's attrs); `cache`: results the columns of this method share, `shared`: those of
    every method of the call."""

    explainer: object
    clips: np.ndarray
    targets: np.ndarray
    masks: np.ndarray
    method: object
    name: str
    maps: np.ndarray
    layer: str | None
    options: dict
    settings: dict
    shared: dict
    curves: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)

    def once(self, key, compute: Callable, shared: bool = False):
        """compute(), computed once per method (or per call, `shared`) under `key`."""
        store = self.shared if shared else self.cache
        if key not in store:
            store[key] = compute()
        return store[key]


@dataclass(frozen=True)
class Metric:
    """name; function: what computes it; family (one of FAMILIES); measures: one sentence;
    better: "higher", "lower" or what to read; column: its column in `evaluate_methods` ("" when
    it has none) and per_clip(run: Run) -> (N,) its values per clip; asked_by: the argument of
    `evaluate_methods` that adds the column (absent while that argument is None or 0; "" for a
    column always present); score: what it reads of the model; memory: what bounds its peak
    memory."""

    name: str
    function: Callable
    family: str
    measures: str
    better: str
    column: str = ""
    per_clip: Callable | None = None
    asked_by: str = ""
    score: str = "the maps"  # what it reads of the model (see the README's "What score is explained")
    memory: str = "the maps"  # what bounds its peak memory


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the catalogue; a column needs its `per_clip`."""
    if not metric.name or metric.name in METRICS:
        raise ValueError(f"a metric needs a new name, got {metric.name!r}")
    if metric.family not in FAMILIES:
        raise ValueError(f"metric {metric.name!r}: family must be one of {FAMILIES}, got {metric.family!r}")
    if bool(metric.column) != (metric.per_clip is not None):
        raise ValueError(f"metric {metric.name!r}: a column needs per_clip, and per_clip a column")
    METRICS[metric.name] = metric
    return metric


def _in_order() -> list[Metric]:
    return [m for family in FAMILIES for m in METRICS.values() if m.family == family]


def columns(settings: dict) -> list[Metric]:
    """The metrics whose columns `evaluate_methods` computes with these settings: the columns
    always present, then those asked for, each group in the catalogue's order."""
    def asked(metric):
        value = settings[metric.asked_by]
        return value is not None and not (np.ndim(value) == 0 and value == 0)

    with_column = [m for m in _in_order() if m.column]
    return ([m for m in with_column if not m.asked_by] +
            [m for m in with_column if m.asked_by and asked(m)])


def markdown_table() -> str:
    """The README's table of metrics, by family (`python -m tdexplain.metrics`)."""
    rows = ["| family | metric | function | what it measures | better | reads | peak memory: at most | "
            "`evaluate_methods` column |", "|---|---|---|---|---|---|---|---|"]
    for metric in _in_order():
        column = f"`{metric.column}`" if metric.column else "none"
        column += f" (with `{metric.asked_by}` set)" if metric.asked_by else ""
        rows.append(f"| {metric.family} | {metric.name} | `metrics.{metric.family}.{metric.function.__name__}` | "
                    f"{metric.measures} | {metric.better} | {metric.score} | {metric.memory} | {column} |")
    return "\n".join(rows)
