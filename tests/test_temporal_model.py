"""The temporal task's shipped models: time carries the class, and the maps find when and where.

The thresholds are issue #23's, and benchmarks/bench_temporal_task.py measured them on 150
clips of seed 9090 (benchmarks/RESULTS.md). They are checked here on a dataset seed chosen
after them (`UNSEEN_SEED`), which no training, validation, benchmark, notebook or other test uses:
- the model (CNN + GRU) is right on >= 95% of the clips, but given any single frame of a fight
  repeated over the clip it finds the fight in <= 60% of them, and the per-frame baseline (the
  same frame network, an average over time instead of the GRU) is >= 0.20 less accurate;
- the best way to rank frames (occlusion by a black frame) puts an event frame first in >= 80%
  of the clips with an event, and >= 0.3 above chance (the event's share of the frames);
- the default method's peak is on the evidence in >= 80% of the frames that hold it, with >= 3x
  the evidence's share of the energy, and its maps do not survive a re-initialization of the
  model (median rank correlation <= 0.3).
"""

from pathlib import Path

import numpy as np
import pytest

from tdexplain import data, explain, metrics, models, temporal

UNSEEN_SEED = 8181


@pytest.fixture(scope="module")
def model():
    return models.load_model(models.TEMPORAL_MODEL)


@pytest.fixture(scope="module")
def unseen():
    clips, labels, masks, events = data.synthetic_dataset(90, 8, 64, UNSEEN_SEED, with_events=True,
                                                          task="temporal")
    return clips.astype(np.float32), labels, masks, events


@pytest.fixture(scope="module")
def time_dependence(model, unseen):
    clips, labels, _, _ = unseen
    return temporal.time_dependence(model, clips, labels)


def test_the_models_are_small_and_course_size(model):
    for path in (models.TEMPORAL_MODEL, models.TEMPORAL_FRAME_AVERAGE_MODEL):
        assert Path(path).stat().st_size < 5 * 2**20, path
    assert models.input_spec(model) == (8, 64) and models.class_names(model) == data.CLASSES


def test_time_carries_the_class(model, unseen, time_dependence):
    clips, labels, _, _ = unseen
    accuracy = time_dependence.loc["as they are", "all"]
    assert accuracy >= 0.95, time_dependence
    assert time_dependence.loc["best single frame", "fight"] <= 0.6, time_dependence
    baseline = models.load_model(models.TEMPORAL_FRAME_AVERAGE_MODEL)
    baseline_accuracy = (models.predict(baseline, clips).argmax(axis=1) == labels).mean()
    assert baseline_accuracy <= accuracy - 0.2, (baseline_accuracy, accuracy)


def test_frame_importance_finds_the_event(model, unseen):
    clips, _, _, events = unseen
    with_event = events.any(axis=1)
    # The best of the benchmark's frame rankings: a frame blacked out. Filled with its
    # neighbours' mean instead, a shot's frame keeps half of its neighbours' flashes.
    importance = explain.frame_importance(model, clips[with_event], fill="blank")
    found = metrics.temporal_localization(importance, events[with_event])
    pointing, chance = found["temporal_pointing_game"].mean(), found["temporal_chance"].mean()
    assert pointing >= 0.8 and pointing >= chance + 0.3, (pointing, chance)


def test_the_default_method_lands_on_the_evidence_in_the_event_frames(model, unseen):
    clips, labels, masks, _ = unseen
    some = np.concatenate([np.flatnonzero(labels == k)[:10] for k in (1, 2)])  # 10 fights, 10 shootings
    maps = explain.Explainer(model).explain(clips[some], methods=explain.DEFAULT_METHOD).maps
    found = metrics.localization(maps[explain.DEFAULT_METHOD], masks[some])
    pointing, energy, share = (np.nanmean(found[k]) for k in ("pointing_game", "energy_inside", "chance"))
    assert pointing >= 0.8 and energy >= 3 * share, (pointing, energy, share)
    check = metrics.reinitialization(model, clips[some[::2]], methods=explain.DEFAULT_METHOD,
                                     progress=False)
    assert np.median(check.clip_spearman(explain.DEFAULT_METHOD)) <= 0.3
