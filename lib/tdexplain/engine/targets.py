"""What an explanation explains: the target, resolved once for a batch of clips.

A target is the predicted class (None), a class index or name, one of those per clip, or a
callable score on the logits written with keras.ops, such as "fight logit minus normal logit":
``lambda logits: logits[:, 1] - logits[:, 0]``. Every method, metric and the frame importance
receive the resolved `Target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np

from . import backend

__all__ = ["PREDICTED", "Target", "resolve"]

PREDICTED = -1


@dataclass(frozen=True)
class Target:
    """classes (N,): the class explained per clip, PREDICTED (-1) for the model's prediction;
    or `score`, a callable logits (N, C) -> (N,) in keras.ops (then classes are all -1) named
    `label` in figures."""

    classes: np.ndarray
    score: Callable | None = None
    label: str | None = None

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, rows) -> "Target":
        return Target(self.classes[rows], self.score, self.label)

    def repeat(self, times: int) -> "Target":
        """Each clip's target `times` times in a row (for copies of each clip)."""
        return Target(np.repeat(self.classes, times), self.score, self.label)

    def of(self, logits: np.ndarray) -> np.ndarray:
        """The explained score of each clip from its logits (N, C), as NumPy (the rule of the
        compiled pass, `backend.score_of`)."""
        return self._scored(logits)[0]

    def with_predictions(self, logits: np.ndarray) -> "Target":
        """The same target with PREDICTED replaced by the class the logits predict."""
        if self.score is not None:
            return self
        return Target(self._scored(logits)[1].astype(np.int32))

    def _scored(self, logits):
        logits = np.asarray(logits, np.float32)  # the argmax of logits is that of probabilities
        scores, classes = backend.score_of(logits, logits, self.classes.astype(np.int32), self.score)
        return (np.asarray(keras.ops.convert_to_numpy(scores), np.float32).reshape(-1),
                np.asarray(keras.ops.convert_to_numpy(classes)))


def resolve(target, n: int, class_names) -> Target:
    """A `Target` for n clips from None, a class index or name, one per clip, a callable score,
    or a `Target` (checked to have n rows)."""
    if isinstance(target, Target):
        if len(target) != n:
            raise ValueError(f"target has {len(target)} rows for {n} clips")
        return target
    if callable(target):
        label = getattr(target, "__name__", "score")
        return Target(np.full(n, PREDICTED, np.int32), target, "custom score" if label == "<lambda>" else label)
    if target is None:
        return Target(np.full(n, PREDICTED, np.int32))
    items = [target] * n if isinstance(target, (str, int, np.integer)) else list(target)
    if len(items) != n:
        raise ValueError(f"target must be one class or one per clip ({n}), got {len(items)}")
    return Target(np.array([_class_index(item, class_names) for item in items], np.int32))


def _class_index(item, class_names) -> int:
    if isinstance(item, str):
        if item not in class_names:
            raise ValueError(f"unknown class {item!r}; classes: {', '.join(class_names)}")
        return list(class_names).index(item)
    if isinstance(item, (int, np.integer)) and 0 <= item < len(class_names):
        return int(item)
    raise ValueError(f"target {item!r} is out of range; expected a class index in "
                     f"0..{len(class_names) - 1}, a name in {tuple(class_names)}, or a callable "
                     f"score on the logits")
