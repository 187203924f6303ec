"""The shipped demo model: time carries the class, and its default maps find when and where.

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
  model (median rank correlation <= 0.3). Grad-CAM, the paper's method, does not reach the first
  two at 64 px: that is measured here too, so the workbook's account of it stays true.
"""

from pathlib import Path

import numpy as np
import pytest

from tdexplain import DEFAULT_METHOD, Explainer, load_model
from tdexplain.engine import shapes
from tdexplain.methods.frames import frame_importance
from tdexplain.metrics import localization, randomization
from tdexplain.workbook import data, models, synthetic, temporal

UNSEEN_SEED = 8181


@pytest.fixture(scope="module")
def model():
    return load_model(models.DEMO_MODEL)


@pytest.fixture(scope="module")
def unseen():
    clips, labels, masks, events = data.synthetic_dataset(90, 8, 64, UNSEEN_SEED, with_events=True)
    return clips.astype(np.float32), labels, masks, events


@pytest.fixture(scope="module")
def with_evidence(unseen):
    """10 fights and 10 shootings of the unseen set (normal clips have no evidence)."""
    _, labels, _, _ = unseen
    return np.concatenate([np.flatnonzero(labels == k)[:10] for k in (1, 2)])


@pytest.fixture(scope="module")
def evidence_maps(model, unseen, with_evidence):
    """The default method's and Grad-CAM's maps of those clips (default layer, true class)."""
    clips, labels, _, _ = unseen
    return Explainer(model).explain(clips[with_evidence], methods=[DEFAULT_METHOD, "gradcam"],
                                    target=labels[with_evidence]).maps


def test_the_shipped_models_are_small_and_course_size(model):
    for path in (models.DEMO_MODEL, models.RANDOM_LABELS_MODEL, models.FRAME_AVERAGE_MODEL):
        assert Path(path).stat().st_size < 5 * 2**20, path
        assert shapes.input_spec(load_model(path)) == (8, 64)
    assert shapes.class_names(model) == synthetic.CLASSES
    assert [type(l).__name__ for l in model.layers].count("TimeDistributed") == 1
    assert model.get_layer("gru").dropout == 0.5


def test_time_carries_the_class(model, unseen):
    clips, labels, _, _ = unseen
    accuracy = temporal.time_dependence(model, clips, labels)
    assert accuracy.loc["as they are", "all"] >= 0.95, accuracy
    assert accuracy.loc["best single frame", "fight"] <= 0.6, accuracy
    baseline = load_model(models.FRAME_AVERAGE_MODEL)
    baseline_accuracy = (models.predict(baseline, clips).argmax(axis=1) == labels).mean()
    assert baseline_accuracy <= accuracy.loc["as they are", "all"] - 0.2, (baseline_accuracy, accuracy)


def test_the_twin_learnt_nothing_of_the_classes(unseen):
    clips, labels, _, _ = unseen
    twin = load_model(models.RANDOM_LABELS_MODEL)
    assert (models.predict(twin, clips).argmax(axis=1) == labels).mean() <= 0.5


def test_frame_importance_finds_the_event(model, unseen):
    clips, _, _, events = unseen
    with_event = events.any(axis=1)
    # The best of the benchmark's frame rankings: a frame blacked out. Filled with its
    # neighbours' mean instead, a shot's frame keeps half of its neighbours' flashes.
    importance = frame_importance(model, clips[with_event], fill="blank")
    found = localization.temporal_localization(importance, events[with_event])
    pointing, chance = found["temporal_pointing_game"].mean(), found["temporal_chance"].mean()
    assert pointing >= 0.8 and pointing >= chance + 0.3, (pointing, chance)


def _landing(maps, masks) -> tuple:
    found = localization.localization(maps, masks)  # NaN in the frames without evidence
    return tuple(np.nanmean(found[k]) for k in ("pointing_game", "energy_inside", "chance"))


def test_the_default_method_lands_on_the_evidence_in_the_event_frames(model, unseen, with_evidence,
                                                                      evidence_maps):
    clips, _, masks, _ = unseen
    pointing, energy, share = _landing(evidence_maps[DEFAULT_METHOD], masks[with_evidence])
    assert pointing >= 0.8 and energy >= 3 * share, (pointing, energy, share)


@pytest.mark.parametrize("method", [DEFAULT_METHOD, "gradcam"])
def test_maps_do_not_survive_reinitialization(model, unseen, with_evidence, method):
    clips, _, _, _ = unseen
    check = randomization.reinitialization(model, clips[with_evidence[::4]], methods=method, progress=False)
    assert np.median(check.clip_spearman(method)) <= 0.3


def test_gradcam_at_the_default_layer_misses_the_evidence_as_measured(model, unseen, with_evidence,
                                                                      evidence_maps):
    """Grad-CAM, the paper's method, at the default layer (8x8 cells): the grid could point at
    the evidence in every frame, but the maps stay far from the default method's (notebook
    04). If a retrained model changes this, the workbook's text and DEFAULT_METHOD
    must be revisited."""
    _, _, masks, _ = unseen
    assert Explainer(model).default_layer == "block4_conv4"  # the deepest with 8x8 cells at 64 px
    pointing, energy, share = _landing(evidence_maps["gradcam"], masks[with_evidence])
    assert pointing < 0.5 and energy < 2 * share, (pointing, energy, share)
    assert np.nanmean(localization.grid_bound(masks[with_evidence], 8)["pointing_game"]) >= 0.95


@pytest.mark.parametrize("method,layer", [(DEFAULT_METHOD, None), ("layercam", "block4_conv4")])
def test_changing_one_frame_changes_its_map_far_more(model, unseen, with_evidence, method, layer):
    """Frame 3 of 5 clips replaced by frame 3 of another clip: its map moves more than the other
    frames' maps, about twice as much or more for the median clip. The others move too, through
    the GRU: on a model that reads time, what a frame contributes depends on the frames around
    it (the default method's ratios measured 1.2 to 5.1, LayerCAM's more)."""
    clips, labels, _, _ = unseen
    chosen = with_evidence[::4]
    explainer = Explainer(model)
    base = explainer.explain(clips[chosen], methods=method, layer=layer, target=labels[chosen])
    changed = clips[chosen].copy()
    changed[:, 3] = clips[np.roll(chosen, 1), 3]
    after = explainer.explain(changed, methods=method, layer=layer, target=base.target)
    difference = np.abs(base.maps[method] - after.maps[method]).mean(axis=(2, 3))
    ratio = difference[:, 3] / np.delete(difference, 3, axis=1).mean(axis=1)
    assert np.median(ratio) > 2 and ratio.min() > 1.1, ratio
