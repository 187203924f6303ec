"""The loops the sampled and perturbation methods share: the mean input gradient over samples
of each clip (SmoothGrad's noisy copies, Integrated Gradients' path), and the score drops of
perturbed copies, each in chunks that bound memory, asked of the engine (`registry.Engine`)."""

from __future__ import annotations

import numpy as np

from ..engine.registry import Engine, Pass
from ..engine.targets import Target

__all__ = ["sampled_gradients", "score_drops"]


def sampled_gradients(engine: Engine, samples_of, clips, target: Target, count: int, layer: str) -> np.ndarray:
    """Mean input gradient over `count` samples per clip, in chunks of `clips_per_pass` inputs;
    `samples_of(clip_index, sample_index)` makes the inputs."""
    total = np.zeros_like(clips, dtype=np.float32)
    per_chunk = engine.clips_per_pass()
    jobs = [(i, s) for i in range(len(clips)) for s in range(count)]
    for start in range(0, len(jobs), per_chunk):
        chunk = jobs[start:start + per_chunk]
        inputs = np.stack([samples_of(i, s) for i, s in chunk])
        gradients = engine.input_gradients(inputs, target[np.array([i for i, _ in chunk])], layer)
        for (i, _), gradient in zip(chunk, gradients):
            total[i] += gradient
        del inputs, gradients, gradient  # before the next chunk's are made: one chunk at a time
    return total / count


def score_drops(engine: Engine, one: Pass, i: int, jobs: list, perturb):
    """The drop of clip i's score under each perturbation in `jobs`, in chunks of one
    forward call: yields (chunk, drops). `perturb(chunk)` returns the clips (and probe, or
    None) of len(chunk) + 1 copies whose row 0 is left unperturbed: each drop compares two
    scores of one call, so a perturbation the score ignores drops by exactly 0, not by the
    rounding difference between the gradient pass and a forward pass of another batch size."""
    per_call = max(2, engine.clips_per_call())
    for start in range(0, len(jobs), per_call - 1):
        chunk = jobs[start:start + per_call - 1]
        copies, probe = perturb(chunk)
        scores = engine.scores(copies, one.targets()[i:i + 1].repeat(len(chunk) + 1), one.layer, probe)
        del copies, probe  # before the next chunk's are made: one chunk in memory at a time
        yield chunk, scores[0] - scores[1:]
