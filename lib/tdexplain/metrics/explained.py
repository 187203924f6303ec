"""What the metrics that explain share: the clips and the class each follows, and the maps of
methods given by name (through `Explainer.explain`) or as callables."""

from __future__ import annotations

import numpy as np

from ..engine.explainer import Explainer

__all__ = ["clips_and_target", "method_maps", "check_methods"]


def clips_and_target(explainer: Explainer, clips, target) -> tuple[np.ndarray, np.ndarray]:
    """The clips and the class explained in each (the metrics follow a class)."""
    batch = explainer.check_clips(clips)
    resolved = explainer.check_target(target, len(batch))
    if resolved.score is not None:
        raise ValueError("the metrics follow a class probability: pass a class index or name as "
                         "target, not a callable score")
    if (resolved.classes < 0).any():
        resolved = resolved.with_predictions(explainer.logits(batch))
    return batch, resolved.classes


def method_maps(explainer: Explainer, clips, methods, target, layer, options) -> dict:
    """{name: maps (N, T, H, W)} for method names and for callables
    ``f(explainer, clips, target) -> maps`` (a baseline that ignores the model, say)."""
    names = [m for m in methods if isinstance(m, str)]
    maps = {}
    if names:
        maps.update(explainer.explain(clips, methods=names, layer=layer, target=target, **options).maps)
    for method in methods:
        if callable(method):
            made = np.asarray(method(explainer, clips, target), np.float32)
            if made.shape != clips.shape[:4]:
                raise ValueError(f"method {method.__name__!r} returned maps of shape {made.shape}; "
                                 f"expected (N, T, H, W) = {clips.shape[:4]}, one map per frame")
            maps[method.__name__] = made
    return maps


def check_methods(methods) -> tuple:
    """Method names (validated) and callables ``f(explainer, clips, target) -> maps``."""
    methods = (methods,) if isinstance(methods, str) or callable(methods) else tuple(methods)
    names = [m for m in methods if not callable(m)]
    if names or not methods:
        Explainer.check_methods(names)
    return methods
