"""Do the maps land on the evidence? The demo model on clips from seeds it never saw.

For each inner layer and method: the pointing game (peak within `pointing_tolerance` px of
the evidence) and the share of the map's energy on the evidence, each against its chance
level; the median per-clip rank correlation with the maps of a re-initialized copy of the
model (the randomization check: a map that explains the model must change with it). For
each layer, the two measures that say why a CAM misses: where the layer's activations
respond to the evidence (`localization.evidence_response`) and the best any map at its grid
can score (`localization.grid_bound`). The accuracy on the same clips is the baseline: the maps
of a model that is wrong say little.

Usage: python benchmarks/bench_localization.py [--model PATH] [--clips-per-class 10] [--out JSON]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tdexplain import Explainer, load_model
from tdexplain.metrics import localization, randomization
from tdexplain.workbook import data, models, synthetic

RESULTS = Path(__file__).resolve().parent / "results" / "localization.json"
SEEDS = (9090, 31337)  # two seed ranges that neither training nor the tests use
LAYERS = ("block3_conv4", "block4_conv4", "block5_conv4", "block5_pool")  # block5_pool: the TD output
CAMS = ("gradcam", "gradcam_pp", "layercam")
PIXEL_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "integrated_gradients_blur")


def unseen_scenes(per_class: int, frames: int, size: int):
    """Clips of every class from the seed ranges, with the same scenes without their evidence."""
    seeds = [base + i for base in SEEDS for i in range(per_class // len(SEEDS))]
    plan = [(label, seed) for label in synthetic.CLASSES for seed in seeds]
    scenes = [data.synthetic_clip(label, frames, size, seed) for label, seed in plan]
    hidden = [data.synthetic_clip(label, frames, size, seed, hidden=("evidence",)) for label, seed in plan]
    stack = lambda clips, key: np.stack([getattr(c, key) for c in clips])  # noqa: E731
    labels = np.array([scene.label_index for scene in scenes])
    return (stack(scenes, "frames").astype(np.float32), labels, stack(scenes, "mask"),
            stack(hidden, "frames").astype(np.float32))


def score(maps, masks, sanity, method):
    found = localization.localization(maps, masks)
    return {"pointing_game": float(np.nanmean(found["pointing_game"])),
            "pointing_chance": float(np.nanmean(found["pointing_chance"])),
            "energy_inside": float(np.nanmean(found["energy_inside"])),
            "energy_over_chance": float(np.nanmean(found["energy_inside"]) / np.nanmean(found["chance"])),
            "reinitialized_rank_correlation": float(np.median(sanity.clip_spearman(method)))}


def main(model_path, per_class, out=RESULTS):
    model = load_model(model_path)
    explainer = Explainer(model)
    clips, labels, masks, without_evidence = unseen_scenes(per_class, explainer.frames, explainer.size)
    start = time.perf_counter()
    accuracy = float((explainer.logits(clips).argmax(axis=1) == labels).mean())
    rows = []
    for layer in LAYERS:
        sanity = randomization.reinitialization(model, clips, CAMS, layer=layer, progress=False)
        response = localization.evidence_response(explainer, clips, without_evidence, masks, layer)
        cells = explainer.backbone.get_layer(layer).output.shape[1]
        bound = localization.grid_bound(masks, cells)
        for method in CAMS:
            rows.append({"layer": layer, "cells": cells, "method": method,
                         **score(sanity.maps[method][0], masks, sanity, method),
                         "response_pointing": float(np.nanmean(response["pointing_game"])),
                         "response_energy": float(np.nanmean(response["energy_inside"])),
                         "grid_bound_pointing": float(np.nanmean(bound["pointing_game"])),
                         "grid_bound_energy": float(np.nanmean(bound["energy_inside"]))})
    sanity = randomization.reinitialization(model, clips, PIXEL_METHODS, progress=False)
    for method in PIXEL_METHODS:
        rows.append({"layer": "input", "cells": explainer.size, "method": method,
                     **score(sanity.maps[method][0], masks, sanity, method)})
    seconds = time.perf_counter() - start

    print(f"{Path(model_path).name}: {len(clips)} unseen clips (seeds {SEEDS}), accuracy "
          f"{accuracy:.3f}, default layer {explainer.default_layer}, pointing tolerance "
          f"{localization.pointing_tolerance(explainer.size)} px, evidence share "
          f"{masks.mean():.3f}; {seconds:.0f} s")
    print(f"{'layer':13} {'cells':>5} {'method':26} {'pointing':>8} {'(chance)':>8} {'energy':>7} "
          f"{'x chance':>8} {'re-init rho':>11} {'response pt/en':>15} {'grid bound pt/en':>16}")
    for row in rows:
        response = (f"{row['response_pointing']:.2f}/{row['response_energy']:.3f}"
                    if "response_pointing" in row else "")
        bound = (f"{row['grid_bound_pointing']:.2f}/{row['grid_bound_energy']:.3f}"
                 if "grid_bound_pointing" in row else "")
        print(f"{row['layer']:13} {row['cells']:>5} {row['method']:26} {row['pointing_game']:>8.2f} "
              f"{row['pointing_chance']:>8.2f} {row['energy_inside']:>7.3f} "
              f"{row['energy_over_chance']:>8.1f} {row['reinitialized_rank_correlation']:>11.2f} "
              f"{response:>15} {bound:>16}")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "model": Path(model_path).name, "clips": len(clips), "seeds": SEEDS, "accuracy": accuracy,
        "default_layer": explainer.default_layer, "evidence_share": float(masks.mean()),
        "tolerance_px": localization.pointing_tolerance(explainer.size), "seconds": round(seconds, 1),
        "rows": rows}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(models.DEMO_MODEL))
    parser.add_argument("--clips-per-class", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write")
    arguments = parser.parse_args()
    main(arguments.model, arguments.clips_per_class, arguments.out)
