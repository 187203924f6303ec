"""The shipped demo model: accurate on clips it never saw, and looking at the evidence."""

import numpy as np
import pytest

from tdexplain import data, explain, models, training

TEST_SEED = 4  # training used seed 1, validation 2, the script's test 3


@pytest.fixture(scope="module")
def demo():
    return models.load_model(models.DEMO_MODEL)


@pytest.fixture(scope="module")
def fresh():
    return data.synthetic_dataset(n=90, frames=8, size=64, seed=TEST_SEED)


def test_demo_model_is_small_and_course_size(demo):
    from pathlib import Path

    assert Path(models.DEMO_MODEL).stat().st_size < 5 * 2**20
    assert models.input_spec(demo) == (8, 64)
    assert models.class_names(demo) == data.CLASSES
    assert [type(l).__name__ for l in demo.layers].count("TimeDistributed") == 1
    assert demo.get_layer("gru").dropout == 0.5


def test_demo_model_accuracy_on_a_fresh_test_set(demo, fresh):
    clips, labels, _ = fresh
    scores = training.evaluate(demo, clips, labels)
    assert scores["accuracy"] >= 0.9, scores


@pytest.fixture(scope="module")
def scenes():
    return [data.synthetic_clip(label, frames=8, size=64, seed=1000 + seed)
            for label in data.CLASSES for seed in range(6)]


def _focus(maps, scenes):
    """Mean map value inside the evidence and on the distractors; share of the map's energy
    inside the evidence; the evidence's share of the pixels."""
    inside, distractors, energy, area = [], [], [], []
    for heat, clip in zip(maps, scenes):
        distractor_ids = [i for i, (_, kind) in enumerate(clip.objects) if kind == "distractor"]
        distractor = np.isin(clip.id_maps, distractor_ids)
        inside.append(heat[clip.mask].mean())
        if distractor.any():
            distractors.append(heat[distractor].mean())
        energy.append(heat[clip.mask].sum() / heat.sum())
        area.append(clip.mask.mean())
    return np.mean(inside), np.mean(distractors), np.mean(energy), np.mean(area)


@pytest.mark.parametrize("method,margin", [("gradcam", 1.2), ("layercam", 1.5)])
def test_demo_cams_look_at_the_evidence_not_the_distractors(demo, scenes, method, margin):
    """At block4_conv4 (8x8 cells at 64x64) the maps sit on the evidence: higher inside it
    than on the cart and the lamp, and with more than 1.5x its share of the pixels.
    (At block5_conv4, 4x4 cells of 16x16 pixels, they do not localize: see the notebook.)"""
    clips = np.stack([clip.frames for clip in scenes])
    maps = explain.Explainer(demo).explain(clips, methods=method, layer="block4_conv4").maps[method]
    inside, on_distractors, energy, area = _focus(maps, scenes)
    assert inside > margin * on_distractors, (inside, on_distractors)
    assert energy > 1.5 * area, (energy, area)


@pytest.mark.parametrize("method", ["saliency", "layercam"])
def test_changing_one_frame_changes_its_map_far_more(demo, fresh, method):
    """Frame 3 of 8 clips replaced by another clip's frame 3: its map moves several times more
    than the other frames' maps, which move only through the GRU's gradients."""
    clips = fresh[0][:8].astype(np.float32)
    explainer = explain.Explainer(demo)
    base = explainer.explain(clips, methods=method, layer="block4_conv4")
    changed = clips.copy()
    changed[:, 3] = fresh[0][8:16, 3]
    after = explainer.explain(changed, methods=method, layer="block4_conv4", target=base.target)
    difference = np.abs(base.maps[method] - after.maps[method]).mean(axis=(2, 3))
    ratio = difference[:, 3] / np.delete(difference, 3, axis=1).mean(axis=1)
    assert np.median(ratio) > 3 and ratio.min() > 1.5, ratio
