"""The explanation methods, one class each, registered by name (`tdexplain.engine.registry`).

A method is a rule on the tensors of one gradient pass (`Pass`: the target score's gradients
with respect to the input pixels and to an inner layer's activations, for every frame at
once), plus, for the sampled and perturbation methods, more batched passes that it asks the
engine for (`Engine`). Each method declares its name, a short title for figures, whether it
reads the chosen inner layer (the CAM family) or the pixels, and its options with their
defaults. The command line, the explorer, the metrics and the README list methods from the
registry; a new method is one class (decorated with `register`) in one of these files and one
test. Importing this package registers every method, in the order of the README's table:
`pixel`, then `cams` (an inner layer), then `perturbations` (forward passes of changed clips).
`frames` holds the per-frame readings (which frames drove the decision).
"""

from ..engine.registry import REGISTRY, names
from . import pixel  # noqa: F401 - registers the pixel methods first
from . import cams, perturbations  # noqa: F401,E402 - then the CAM family, then the perturbations

__all__ = ["METHODS", "DEFAULT_METHOD", "markdown_table"]

METHODS = names()
# The method the command line, the explorer and the workbook's first figures use. Grad-CAM,
# the paper's method, does not land on the evidence at course size (64 px: measured in
# notebook 04 and benchmarks/RESULTS.md); this one does, and its maps do not survive a
# re-initialized model, as an explanation of the model must not.
DEFAULT_METHOD = "integrated_gradients_blur"


def markdown_table() -> str:
    """The README's table of methods, made from the registry (`python -m tdexplain.methods`)."""
    rows = ["| method | title in figures | reads | score | options (default) | peak memory: at most | "
            "what it computes |", "|---|---|---|---|---|---|---|"]
    for method in REGISTRY.values():
        options = ", ".join(f"`{k}={v!r}`" for k, v in method.options.items()) or "none"
        reads = "an inner layer" if method.uses_layer else "the pixels"
        rows.append(f"| `{method.name}` | {method.title} | {reads} | {method.score} | {options} | "
                    f"{method.memory} | {method.reference} |")
    return "\n".join(rows)
