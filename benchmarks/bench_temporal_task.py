"""Does time carry the class? The temporal task's model and its per-frame twin on unseen clips.

The temporal task is built so that no single frame tells a fight from a normal clip (see
`tdexplain.workbook.synthetic`). Measured here, on clips of a seed that neither training nor the tests
use:
- accuracy per class of the model (CNN + GRU) and of the per-frame baseline (the same frame
  network and recipe, the GRU replaced by an average over time), on the clips as they are and
  with time taken out (`temporal.time_dependence`: single frames repeated, the best single
  frame, frames shuffled, reversed);
- when: which frame each frame-importance method ranks first and its share of the importance
  on the event's frames (`localization.temporal_localization`), against chance (the event's share of
  the frames), with bootstrap intervals; the frame-deletion AUC of the best of them (chosen
  and measured on the same clips) against a random frame order;
- where: the default method's pointing game and energy on the evidence (masks exist in the
  event's frames only), and its rank correlation with the maps of a re-initialized model.

Usage: python benchmarks/bench_temporal_task.py [--model PATH] [--baseline PATH] [--clips 150]
       [--seed 9090] [--out JSON]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tdexplain import DEFAULT_METHOD, Explainer, load_model
from tdexplain.engine import shapes
from tdexplain.methods.frames import frame_importance, frame_shares
from tdexplain.metrics import evaluate, faithfulness, localization, randomization
from tdexplain.workbook import data, models, temporal

RESULTS = Path(__file__).resolve().parent / "results" / "temporal_task.json"
SEED = 9090  # neither training (10000 + epoch, 2, 3) nor the tests use it


def frame_importances(model, clips, explainer) -> dict:
    """Every way the library ranks frames, (N, T) each, for the predicted class."""
    return {
        "occlusion (neighbours)": frame_importance(explainer, clips),
        "occlusion (blank)": frame_importance(explainer, clips, fill="blank"),
        "gradient x input mass": frame_shares(explainer.explain(clips, "gradient_x_input").raw["gradient_x_input"]),
        "memory (gradient at the GRU input)": temporal.memory(model, clips),
        "random order": np.random.default_rng(0).random(clips.shape[:2]),
    }


def interval(values) -> list:
    return [round(float(v), 3) for v in evaluate.bootstrap_interval(values)]


def when(importances, events, labels) -> list:
    rows = []
    for name, importance in importances.items():
        found = localization.temporal_localization(importance, events)
        pointing = found["temporal_pointing_game"]
        rows.append({"method": name}
                    | {key: round(float(np.nanmean(values)), 3) for key, values in found.items()}
                    | {"pointing_interval": interval(pointing[~np.isnan(pointing)]),
                       "fight_pointing": round(float(np.nanmean(pointing[labels == 1])), 3),
                       "shooting_pointing": round(float(np.nanmean(pointing[labels == 2])), 3)})
    return rows


def frame_deletion(explainer, clips, best, random_order) -> dict:
    found = {}
    for name, scores in (("best", best), ("random order", random_order)):
        auc = faithfulness.frame_deletion_curve(explainer, clips, scores, progress=False).auc
        found[name] = {"auc": round(float(auc.mean()), 3), "interval": interval(auc)}
    return found


def where(model, explainer, clips, masks) -> dict:
    method = DEFAULT_METHOD
    maps = explainer.explain(clips, methods=method).maps[method]
    found = localization.localization(maps, masks)
    sanity = randomization.reinitialization(model, clips[:12], (method,), progress=False)
    return {"method": method,
            "pointing_game": round(float(np.nanmean(found["pointing_game"])), 3),
            "pointing_chance": round(float(np.nanmean(found["pointing_chance"])), 3),
            "energy_inside": round(float(np.nanmean(found["energy_inside"])), 3),
            "energy_over_chance": round(float(np.nanmean(found["energy_inside"])
                                              / np.nanmean(found["chance"])), 2),
            "reinitialized_rank_correlation": round(float(np.median(sanity.clip_spearman(method))), 3),
            "frames_with_evidence": int(masks.any(axis=(2, 3)).sum())}


def main(model_path, baseline_path, n, seed, out=RESULTS):
    model, baseline = load_model(model_path), load_model(baseline_path)
    frames, size = shapes.input_spec(model)
    clips, labels, masks, events = data.synthetic_dataset(n, frames, size, seed, with_events=True,
                                                          task="temporal")
    clips = clips.astype(np.float32)
    start = time.perf_counter()
    tables = {name: temporal.time_dependence(m, clips, labels).round(3)
              for name, m in (("cnn_gru", model), ("frame_average", baseline))}
    explainer = Explainer(model)
    importances = frame_importances(model, clips, explainer)
    when_rows = when(importances, events, labels)
    best = max((row for row in when_rows if row["method"] != "random order"),
               key=lambda row: row["temporal_pointing_game"])
    with_event = events.any(axis=1)
    deletion = frame_deletion(explainer, clips[with_event], importances[best["method"]][with_event],
                              importances["random order"][with_event])
    where_row = where(model, explainer, clips, masks)
    result = {"model": str(model_path), "baseline": str(baseline_path), "clips": n, "seed": seed,
              "frames": frames, "size": size,
              "time_dependence": {name: table.to_dict() for name, table in tables.items()},
              "when": when_rows, "best_frame_method": best["method"],
              "frame_deletion": deletion, "where": where_row,
              "seconds": round(time.perf_counter() - start, 1)}
    for name, table in tables.items():
        print(f"\naccuracy, {name}\n{table.to_string()}")
    print("\nwhen (clips with an event)")
    for row in when_rows:
        print(f"  {row['method']:36s} pointing {row['temporal_pointing_game']:.3f} "
              f"{row['pointing_interval']}  energy share {row['temporal_energy_share']:.3f}  "
              f"chance {row['temporal_chance']:.3f}")
    print(f"\nframe deletion AUC on clips with an event, {best['method']}: {deletion['best']}, "
          f"random order: {deletion['random order']}")
    print(f"\nwhere: {where_row}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=models.DEMO_MODEL)
    parser.add_argument("--baseline", default=models.FRAME_AVERAGE_MODEL)
    parser.add_argument("--clips", type=int, default=150)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=str(RESULTS))
    arguments = parser.parse_args()
    main(arguments.model, arguments.baseline, arguments.clips, arguments.seed, arguments.out)
