"""Every metric of `tdexplain.metrics` in one list: its family, what it measures, which way
is better, and its column in `evaluate_methods`. The README's table of metrics is made from
it (`python -m tdexplain.metric_catalogue`), as the table of methods is from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Metric", "METRICS", "FAMILIES", "markdown_table"]

FAMILIES = ("localization", "faithfulness", "randomization", "robustness", "complexity", "axiomatic")


@dataclass(frozen=True)
class Metric:
    """name; function: what computes it in `tdexplain.metrics`; family (one of FAMILIES);
    measures: one sentence; better: "higher", "lower" or what to read; column: its column in
    `evaluate_methods` ("" when it has none), present when the argument `asked_by` says so;
    score: what it reads of the model; memory: what bounds its peak memory."""

    name: str
    function: str
    family: str
    measures: str
    better: str
    column: str = ""
    asked_by: str = ""
    score: str = "the maps"  # what it reads of the model (see the README's "What score is explained")
    memory: str = "the maps"  # what bounds its peak memory


CURVES = dict(score="the probability",
              memory="256 MiB of changed clips at a time (`metrics.VARIANT_BYTES`; at least one clip's), "
                     "and the filled copy and the ranks of every clip")
SANITY = dict(memory="the maps of every step, and a copy of the model")
EXPLAIN_MEMORY = "the method's explain call"

_CATALOGUE = (
    Metric("pointing game", "pointing_game", "localization",
           "is each frame's map peak on the evidence mask (within `pointing_tolerance` pixels)?",
           "higher (chance: the grown mask's share of the frame)", "pointing_game"),
    Metric("energy inside", "energy_inside", "localization",
           "the share of each frame's map mass on the evidence", "higher (chance: the mask's share)",
           "energy_inside"),
    Metric("IoU", "iou", "localization", "overlap of the map above 0.5 with the evidence", "higher", "iou"),
    Metric("temporal pointing game", "temporal_pointing_game", "localization",
           "does the frame that a frame importance ranks first hold the event?",
           "higher (chance: the event's share of the frames)"),
    Metric("temporal energy share", "temporal_energy_share", "localization",
           "the share of a frame importance's positive mass on the event's frames",
           "higher (chance: the event's share of the frames)"),
    Metric("grid bound", "grid_bound", "localization",
           "the best localization any map at a layer's grid can reach", "a ceiling, not a score"),
    Metric("evidence response", "evidence_response", "localization",
           "where an inner layer's activations change when the evidence is removed, scored as a map",
           "higher: that layer can localize", score="the layer's activations",
           memory="the layer's activations for the clips, twice"),
    Metric("deletion AUC", "deletion_curve", "faithfulness",
           "the class probability as each frame's most important pixels are removed",
           "lower", "deletion_auc", **CURVES),
    Metric("insertion AUC", "deletion_curve", "faithfulness",
           "the class probability as those pixels are revealed on a blurred clip (mode='insertion')",
           "higher", "insertion_auc", **CURVES),
    Metric("frame deletion AUC", "frame_deletion_curve", "faithfulness",
           "the class probability as whole frames are removed, the most important first", "lower",
           **CURVES),
    Metric("model randomization", "model_randomization", "randomization",
           "Spearman and SSIM of the maps with those of the model as its weights are randomized",
           "lower: the map depends on the model", **SANITY),
    Metric("re-initialization", "reinitialization", "randomization",
           "Spearman and SSIM with the maps of a copy whose weights are drawn again",
           "lower: the map depends on the model", **SANITY),
    Metric("label randomization", "label_randomization", "randomization",
           "Spearman and SSIM with the maps of the model trained on shuffled labels",
           "lower: the map depends on what was learnt", **SANITY),
    Metric("max-sensitivity", "max_sensitivity", "robustness",
           "largest relative change of the maps under small input noise (Yeh et al., 2019)",
           "lower", "max_sensitivity", "robustness_samples > 0", memory=EXPLAIN_MEMORY),
    Metric("local Lipschitz", "local_lipschitz", "robustness",
           "largest change of the maps per unit of input noise (Alvarez-Melis and Jaakkola, 2018)",
           "lower", "local_lipschitz", "robustness_samples > 0", memory=EXPLAIN_MEMORY),
    Metric("sparseness", "sparseness", "complexity",
           "Gini index of each frame's map (Chalasani et al., 2020)",
           "higher: more concentrated (not more correct)", "sparseness"),
    Metric("entropy", "entropy", "complexity", "Shannon entropy of each frame's map, as a distribution",
           "lower: more concentrated (not more correct)", "entropy"),
    Metric("completeness", "completeness", "axiomatic",
           "gap between the sum of Integrated Gradients' attributions and score(x) - score(baseline)",
           "lower (0: complete)", score="the logit",
           memory="gradient passes of `frames_per_pass` frames (Integrated Gradients')"),
    Metric("input invariance", "input_invariance", "axiomatic",
           "Spearman of the maps of the model on x and of a twin that takes x + c (Kindermans et al., 2017)",
           "higher (1: invariant)", "input_invariance", "invariance_shift",
           memory="the method's, twice (the model and its shifted twin)"),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _CATALOGUE}


def markdown_table() -> str:
    """The README's table of metrics, by family (`python -m tdexplain.metric_catalogue`)."""
    rows = ["| family | metric | function | what it measures | better | reads | peak memory: at most | "
            "`evaluate_methods` column |", "|---|---|---|---|---|---|---|---|"]
    for family in FAMILIES:
        for metric in (m for m in METRICS.values() if m.family == family):
            column = f"`{metric.column}`" if metric.column else "none"
            column += f" (with `{metric.asked_by}`)" if metric.asked_by else ""
            rows.append(f"| {family} | {metric.name} | `metrics.{metric.function}` | {metric.measures} | "
                        f"{metric.better} | {metric.score} | {metric.memory} | {column} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
