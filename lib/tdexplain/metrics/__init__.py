"""Measuring explanations: a map that looks convincing can be wrong.

One module per family of metrics, each on maps (N, T, H, W) in [0, 1] as `Explainer.explain`
returns them: `localization` (against ground-truth masks and event frames), `faithfulness`
(deletion and insertion curves), `randomization` (the sanity checks), `robustness` (to small
noise), `complexity` (how concentrated) and `axiomatic` (completeness, input invariance).
Each family registers its metrics in the catalogue (`catalogue.METRICS`), from which
`evaluate.evaluate_methods` builds its columns and the README its table of metrics
(`python -m tdexplain.metrics`). Importing this package registers every metric.
"""

from . import axiomatic, complexity, faithfulness, localization, randomization, robustness  # noqa: F401 - registers every metric
