"""What the default method costs at archive scale, and what cheaper settings lose.

The default method (`integrated_gradients_blur`) averages `ig_steps` gradient passes per window.
On clips of every class from seeds the model never saw (bench_localization's), for each
`ig_steps` and for the clips explained one per call or all in one call: the pointing game and
the share of the map's energy on the evidence, and the seconds per clip. The baseline is one
forward pass (predicting the same clips), timed in the same process. The cheapest setting, one
clip per call as `tdexplain batch` explains them, whose pointing and energy are each within 0.02
of the best is the one `tdexplain batch` uses (`batch.ARCHIVE_OPTIONS`): pointing alone picks
2 steps, whose maps lose more of their energy on the evidence. Run: python benchmarks/bench_default_cost.py [--clips-per-class 8].
Prints a table and writes benchmarks/results/default_cost.json.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench_localization import unseen_scenes
from tdexplain import Explainer, load_model
from tdexplain.interfaces import batch
from tdexplain.metrics import localization
from tdexplain.methods import DEFAULT_METHOD

RESULTS = Path(__file__).resolve().parent / "results" / "default_cost.json"
STEPS = (2, 4, 8, 16, 32, 64)
MARGIN = 0.02  # what the cheaper setting may lose against the best, in pointing and in energy


def timed(call, repeats: int = 2) -> float:
    call()  # compiles the shapes the call uses
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def main(per_class: int):
    explainer = Explainer(load_model())
    clips, labels, masks, _ = unseen_scenes(per_class, explainer.frames, explainer.size)
    forward = timed(lambda: explainer.probabilities(clips)) / len(clips)
    rows = []
    for steps in STEPS:
        for together in (1, len(clips)):
            def explain():
                return np.concatenate([
                    explainer.explain(clips[i:i + together], methods=DEFAULT_METHOD, target=labels[i:i + together],
                                      ig_steps=steps).maps[DEFAULT_METHOD] for i in range(0, len(clips), together)])
            seconds = timed(explain, repeats=3) / len(clips)
            found = localization.localization(explain(), masks)
            rows.append({"ig_steps": steps, "clips_per_call": together, "seconds_per_clip": seconds,
                         "over_forward": seconds / forward,
                         "pointing_game": float(np.nanmean(found["pointing_game"])),
                         "energy_inside": float(np.nanmean(found["energy_inside"]))})
    best = {name: max(row[name] for row in rows) for name in ("pointing_game", "energy_inside")}
    chosen = min((row for row in rows if row["clips_per_call"] == 1
                  and all(row[name] >= best[name] - MARGIN for name in best)),
                 key=lambda row: row["seconds_per_clip"])
    results = {"machine": f"{os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
               "clips": len(clips), "forward_seconds_per_clip": forward, "best": best,
               "chosen": chosen, "archive_options": batch.ARCHIVE_OPTIONS, "runs": rows}
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"{len(clips)} unseen clips, {results['machine']}, {results['date']}; one forward pass "
          f"{forward * 1000:.1f} ms per clip")
    print(f"{'ig_steps':>8s} {'per call':>8s} {'s/clip':>7s} {'x forward':>9s} {'pointing':>8s} {'energy':>7s}")
    for row in rows:
        print(f"{row['ig_steps']:8d} {row['clips_per_call']:8d} {row['seconds_per_clip']:7.3f} "
              f"{row['over_forward']:9.1f} {row['pointing_game']:8.3f} {row['energy_inside']:7.3f}")
    print(f"best pointing {best['pointing_game']:.3f}, energy {best['energy_inside']:.3f}; the cheapest "
          f"within {MARGIN} of both, one clip per call: ig_steps={chosen['ig_steps']} "
          f"({chosen['pointing_game']:.3f}, {chosen['energy_inside']:.3f}); tdexplain batch uses {batch.ARCHIVE_OPTIONS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips-per-class", type=int, default=8)
    main(parser.parse_args().clips_per_class)
