"""The shipped demo model: accurate on clips it never saw, and its default maps on the evidence.

The thresholds are those of the workbook's promise: the default method's peak falls on the
evidence (within `metrics.pointing_tolerance` px) in at least 80% of the frames, at least 3x
the evidence's share of the map's energy falls on it, and the maps do not survive a
re-initialization of the model (median rank correlation <= 0.3). Grad-CAM, the paper's
method, does not reach the first two at 64 px: that is measured here too, so the workbook's
account of it stays true. benchmarks/bench_localization.py gives the figures on 30 clips.

The thresholds were set on the clips of seeds 5000..5003 and the test set of seed 4; they are
checked here on clips drawn from seeds chosen afterwards and not looked at before (`UNSEEN`,
`FRESH_SEED`), more of them, so that they are shown to hold beyond the clips they were set on.
"""

from pathlib import Path

import numpy as np
import pytest

from tdexplain import data, explain, metrics, models, training

# Training draws dataset seeds 10000 + epoch, validation 2, the training script's test 3; the
# thresholds were set on dataset seed 4 and clip seeds 5000..5003, which notebooks 02 and 03 show.
FRESH_SEED = 6  # a dataset seed no training, validation, benchmark, notebook or other test uses
UNSEEN = range(7000, 7008)  # clip seeds no training, validation, benchmark, notebook or test uses


@pytest.fixture(scope="module")
def demo():
    return models.load_model(models.DEMO_MODEL)


@pytest.fixture(scope="module")
def fresh():
    return data.synthetic_dataset(n=150, frames=8, size=64, seed=FRESH_SEED)


@pytest.fixture(scope="module")
def unseen():
    """24 scenes, 8 of each class, the classes in turn (the first 12 clips hold 4 of each)."""
    scenes = [data.synthetic_clip(label, frames=8, size=64, seed=seed)
              for seed in UNSEEN for label in data.CLASSES]
    return scenes, np.stack([s.frames for s in scenes]).astype(np.float32), np.stack([s.mask for s in scenes])


@pytest.fixture(scope="module")
def unseen_maps(demo, unseen):
    """The default method's and Grad-CAM's maps of the unseen clips (default layer, predicted
    class), computed once for the tests that measure them."""
    _, clips, _ = unseen
    return explain.Explainer(demo).explain(clips, methods=[explain.DEFAULT_METHOD, "gradcam"]).maps


def test_demo_model_is_small_and_course_size(demo):
    assert Path(models.DEMO_MODEL).stat().st_size < 5 * 2**20
    assert models.input_spec(demo) == (8, 64)
    assert models.class_names(demo) == data.CLASSES
    assert [type(l).__name__ for l in demo.layers].count("TimeDistributed") == 1
    assert demo.get_layer("gru").dropout == 0.5


def test_demo_model_accuracy_on_a_fresh_test_set(demo, fresh):
    clips, labels, _ = fresh
    scores = training.evaluate(demo, clips, labels)
    assert scores["accuracy"] >= 0.95, scores


def _landing(maps, masks) -> tuple:
    found = metrics.localization(maps, masks)
    return tuple(np.nanmean(found[k]) for k in ("pointing_game", "energy_inside", "chance"))


def test_the_default_method_lands_on_the_evidence(unseen, unseen_maps):
    scenes, _, masks = unseen
    maps = unseen_maps[explain.DEFAULT_METHOD]
    pointing, energy, share = _landing(maps, masks)
    assert pointing >= 0.8, pointing
    assert energy >= 3 * share, (energy, share)
    # and more heat on the evidence than on the distractors (the cart, the lamp)
    on_distractors = [heat[np.isin(scene.id_maps, [i for i, (_, kind) in enumerate(scene.objects)
                                                   if kind == "distractor"])].mean()
                      for heat, scene in zip(maps, scenes)]
    assert maps[masks].mean() > 2 * np.mean(on_distractors)


@pytest.mark.parametrize("method", [explain.DEFAULT_METHOD, "gradcam"])
def test_maps_do_not_survive_reinitialization(demo, unseen, method):
    _, clips, _ = unseen
    check = metrics.reinitialization(demo, clips, methods=method, progress=False)
    assert np.median(check.clip_spearman(method)) <= 0.3


def test_gradcam_at_the_default_layer_misses_the_evidence_as_measured(demo, unseen, unseen_maps):
    """Grad-CAM, the paper's method, at the default layer (8x8 cells): the grid could point at
    the evidence in every frame, but the layer's response to the evidence is spread and the
    maps stay near chance (notebook 04). If a retrained model changes this, the workbook's
    text and explain.DEFAULT_METHOD must be revisited."""
    _, _, masks = unseen
    assert explain.Explainer(demo).default_layer == "block4_conv4"  # the deepest with 8x8 cells at 64 px
    pointing, energy, share = _landing(unseen_maps["gradcam"], masks)
    assert pointing < 0.5 and energy < 2 * share, (pointing, energy, share)
    assert np.nanmean(metrics.grid_bound(masks, 8)["pointing_game"]) >= 0.95


@pytest.mark.parametrize("method,layer", [(explain.DEFAULT_METHOD, None), ("layercam", "block4_conv4")])
def test_changing_one_frame_changes_its_map_far_more(demo, unseen, method, layer):
    """Frame 3 of 12 clips replaced by frame 3 of a clip of another class: its map moves
    several times more than the other frames' maps, which move only through the GRU's
    gradients."""
    scenes, unseen_clips, _ = unseen
    clips = unseen_clips[:12]
    donors = np.roll(np.arange(12, 24), 1)  # clip 12 + i - 1: the class before clip i's
    assert all(scenes[i].label != scenes[d].label for i, d in enumerate(donors))
    explainer = explain.Explainer(demo)
    base = explainer.explain(clips, methods=method, layer=layer)
    changed = clips.copy()
    changed[:, 3] = unseen_clips[donors, 3]
    after = explainer.explain(changed, methods=method, layer=layer, target=base.target)
    difference = np.abs(base.maps[method] - after.maps[method]).mean(axis=(2, 3))
    ratio = difference[:, 3] / np.delete(difference, 3, axis=1).mean(axis=1)
    assert np.median(ratio) > 3 and ratio.min() > 1.5, ratio
