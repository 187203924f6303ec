"""What a method is and what it may ask of the engine.

A method (`Method`) is a rule on the tensors of one gradient pass (`Pass`), registered by name
in `REGISTRY`, which the explainer, the command line, the explorer, the metrics and the README
read. A method that needs more than the one pass asks the explainer through `Engine`, a small
typed interface: more gradient passes, batched forward scores, and its memory bounds. The
methods themselves live in `tdexplain.methods`, which registers them when tdexplain is
imported.
"""


from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from .targets import Target

__all__ = ["Method", "Pass", "Engine", "REGISTRY", "register", "get", "names", "option_defaults",
           "check_options"]


@dataclass
class Pass:
    """The tensors of one forward + backward pass at `layer`, as NumPy arrays: target (N,) is
    the explained class per clip (-1 with a callable score), activations and
    activation_gradients (N, S, h, w, K) (S = T, or a Conv3D/ConvLSTM2D layer's time steps),
    input_gradients (N, T, H, W, 3)."""

    layer: str
    probabilities: np.ndarray
    target: np.ndarray
    scores: np.ndarray
    activations: np.ndarray
    activation_gradients: np.ndarray
    input_gradients: np.ndarray
    score: Callable | None = None
    label: str | None = None

    def targets(self) -> Target:
        """The resolved target of these clips, to pass on to further passes."""
        return Target(self.target, self.score, self.label)


class Engine(Protocol):
    """What a method may ask of the explainer (`tdexplain.engine.explainer.Explainer`) beyond
    its one pass: the clips' frame count and size, input gradients of any batch of inputs
    (Guided Backprop's with `guided`), batched forward logits, probabilities and scores (probe:
    an array added to the activations of `layer`), and how many inputs one call may take."""

    frames: int
    size: int
    default_layer: str

    def input_gradients(self, inputs: np.ndarray, target: Target, layer: str, guided: bool = False) -> np.ndarray:
        ...

    def logits(self, clips, layer: str | None = None, probe=None) -> np.ndarray:
        ...

    def probabilities(self, clips, layer: str | None = None, probe=None) -> np.ndarray:
        ...

    def scores(self, clips, target, layer: str | None = None, probe=None) -> np.ndarray:
        ...

    def clips_per_pass(self) -> int:
        ...

    def clips_per_call(self) -> int:
        ...

    def check_clips(self, clips) -> np.ndarray:
        ...

    def check_target(self, target, n: int) -> Target:
        ...


class Method:
    """One explanation method. `attribute` returns the raw map (N, T, h, w) (at the layer's
    resolution when `uses_layer`, else at the pixels') and the channel weights (N, T, K) of a
    CAM, or None."""

    name = ""
    title = ""
    uses_layer = False  # the map is read at the chosen inner layer
    pairs_steps_with_frames = False  # the rule uses the layer's step t on frame t (needs S == T)
    options: dict = {}  # option name -> default
    reference = ""
    score = "the logit"  # what it explains (README: "What score is explained")
    memory = "a batch's gradient pass (`batch_size` clips)"  # what bounds its peak memory

    def attribute(self, engine: Engine, one: Pass, clips: np.ndarray, options: dict):
        raise NotImplementedError


REGISTRY: dict[str, Method] = {}


def register(cls):
    """Class decorator: add one instance of a Method subclass to the registry."""
    method = cls()
    if not method.name or method.name in REGISTRY:
        raise ValueError(f"a method needs a new name, got {method.name!r}")
    REGISTRY[method.name] = method
    return cls


def names(uses_layer: bool | None = None) -> tuple:
    """Registered method names, all of them or only those that do (not) read an inner layer."""
    return tuple(n for n, m in REGISTRY.items() if uses_layer is None or m.uses_layer == uses_layer)


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def option_defaults() -> dict:
    """Every registered option with its default (a shared option has one default)."""
    defaults = {}
    for method in REGISTRY.values():
        defaults.update(method.options)
    return defaults


def check_options(options: dict) -> dict:
    """The options with every method's defaults filled in, or a TypeError naming the unknown
    ones and listing the valid ones with their defaults."""
    defaults = option_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the methods' options are: "
                        f"{', '.join(f'{k}={v!r}' for k, v in defaults.items())}")
    return {**defaults, **options}
