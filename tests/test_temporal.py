"""When: the temporal ground truth's metrics, what a model does without time
(`temporal.time_dependence`), what its memory reads (`temporal.memory`) and the per-frame
baseline (`build_model(temporal="average")`), each against a case whose answer is known."""

import keras
import numpy as np
import pytest

from tdexplain.metrics import localization
from tdexplain.workbook import data, models, synthetic, temporal, training

pytestmark = pytest.mark.both_backends

FRAMES, SIZE = 4, 32


def tiny(temporal_head="gru", seed=0, dense_blocks=0):
    """Without dense blocks by default, so no dead ReLU unit zeroes a gradient."""
    keras.utils.set_random_seed(seed)
    return models.build_model(frames=FRAMES, size=SIZE, width=1 / 32, gru_units=6, dropout=0.0,
                              dense_blocks=dense_blocks, dense_units=5, temporal=temporal_head)


@pytest.fixture(scope="module")
def clips():
    return data.synthetic_dataset(n=6, frames=FRAMES, size=SIZE, seed=11)[:2]


# ---------------------------------------------------------------------------- metrics

def test_an_importance_that_is_the_event_scores_one_and_its_reverse_zero():
    events = np.zeros((3, 8), bool)
    events[0, 2:5] = events[1, 0] = events[2, 4:8] = True
    exact = events.astype(float)
    found = localization.temporal_localization(exact, events)
    np.testing.assert_allclose(found["temporal_pointing_game"], 1.0)
    np.testing.assert_allclose(found["temporal_energy_share"], 1.0)
    np.testing.assert_allclose(found["temporal_chance"], [3 / 8, 1 / 8, 4 / 8])
    # Importance only outside the event; negative importance on the event counts as none.
    np.testing.assert_allclose(localization.temporal_pointing_game(1 - exact, events), 0.0)
    np.testing.assert_allclose(localization.temporal_energy_share(1 - 2 * exact, events), 0.0)


def test_a_constant_importance_scores_chance_and_a_random_one_near_it():
    events = np.zeros((2000, 8), bool)
    events[:, 3:6] = True
    np.testing.assert_allclose(localization.temporal_pointing_game(np.ones((2000, 8)), events), 3 / 8)
    np.testing.assert_allclose(localization.temporal_energy_share(np.ones((2000, 8)), events), 3 / 8)
    random = np.random.default_rng(0).random((2000, 8))
    assert abs(localization.temporal_pointing_game(random, events).mean() - 3 / 8) < 0.035  # sd 0.011
    assert abs(localization.temporal_energy_share(random, events).mean() - 3 / 8) < 0.01
    # An all-zero importance has no positive mass: 0, never NaN.
    np.testing.assert_allclose(localization.temporal_energy_share(np.zeros((2000, 8)), events), 0.0)


def test_clips_without_event_are_nan_and_bad_input_is_refused():
    events = np.zeros((2, 4), bool)
    events[1, 1] = True
    found = localization.temporal_localization(np.arange(8.0).reshape(2, 4), events)
    for values in found.values():
        assert np.isnan(values[0]) and np.isfinite(values[1])
    with pytest.raises(ValueError, match=r"importance and events must both be \(N, T\)"):
        localization.temporal_pointing_game(np.ones((2, 5)), events)
    with pytest.raises(ValueError, match="importance must be finite"):
        localization.temporal_energy_share(np.full((2, 4), np.nan), events)
    with pytest.raises(ValueError, match=r"events must be \(N, T\)"):
        localization.temporal_chance(np.ones(4, bool))


# ---------------------------------------------------------------------------- the baseline

def test_the_average_baseline_is_its_dense_head_on_the_mean_frame_features(clips):
    model = tiny("average", dense_blocks=1)
    assert "gru" not in [layer.name for layer in model.layers]
    features = training.frame_features(model, clips[0].astype(np.float32))
    x = features.mean(axis=1)
    for layer in model.layers[model.layers.index(model.get_layer("frame_average")) + 1:]:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = (np.asarray(w) for w in layer.get_weights())
            x = x @ kernel + bias
            x = np.maximum(x, 0) if layer.activation is keras.activations.relu else x
    twin = np.exp(x - x.max(axis=1, keepdims=True))
    twin /= twin.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(models.predict(model, clips[0]), twin, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"temporal must be one of \('gru', 'average'\)"):
        models.build_model(frames=2, size=32, width=1 / 32, temporal="lstm")


# ---------------------------------------------------------------------------- without time

def test_time_dependence_of_an_order_blind_model(clips):
    """A per-frame average cannot tell the order of frames: shuffled and reversed clips
    score as the clips do; the best single frame is at least every single frame."""
    table = temporal.time_dependence(tiny("average"), *clips)
    assert list(table.columns) == [*synthetic.CLASSES, "all"]
    assert list(table.index) == ["as they are", "first frame repeated", "middle frame repeated",
                                 "last frame repeated", "best single frame", "shuffled", "reversed"]
    np.testing.assert_allclose(table.loc["shuffled"], table.loc["as they are"])
    np.testing.assert_allclose(table.loc["reversed"], table.loc["as they are"])
    for row in ("first frame repeated", "middle frame repeated", "last frame repeated"):
        assert (table.loc["best single frame"] >= table.loc[row]).all()


def test_time_dependence_against_a_loop_of_predictions(clips):
    model = tiny("gru")
    clip_batch, labels = clips
    table = temporal.time_dependence(model, clip_batch, labels, seed=4)
    singles = np.array([[models.predict(model, np.repeat(clip[t:t + 1], FRAMES, 0)).argmax()
                         for t in range(FRAMES)] for clip in clip_batch])
    rng = np.random.default_rng(4)
    shuffled = [models.predict(model, clip[rng.permutation(FRAMES)]).argmax() for clip in clip_batch]
    expected = {"middle frame repeated": singles[:, FRAMES // 2] == labels,
                "best single frame": (singles == labels[:, None]).any(axis=1),
                "shuffled": np.array(shuffled) == labels}
    for row, hits in expected.items():
        assert table.loc[row, "all"] == pytest.approx(hits.mean())
        for index, name in enumerate(synthetic.CLASSES):
            assert table.loc[row, name] == pytest.approx(hits[labels == index].mean())
    with pytest.raises(ValueError, match=r"labels must be one class index per clip, shape \(6,\)"):
        temporal.time_dependence(model, clip_batch, labels[:3])


# ---------------------------------------------------------------------------- memory

def test_an_average_reads_every_frame_alike(clips):
    np.testing.assert_allclose(temporal.memory(tiny("average"), clips[0]), 1 / FRAMES, rtol=1e-5)


def test_memory_is_the_gradient_norm_share_by_finite_differences(clips):
    model = tiny("gru", seed=3)
    clip_batch = clips[0][:2].astype(np.float32)
    found = temporal.memory(model, clip_batch, target=1)
    features = training.frame_features(model, clip_batch).astype(np.float64)
    head = training.head_model(model)
    step = 1e-2

    def log_probability(x):
        return np.log(np.asarray(head.predict(x.astype(np.float32), verbose=0))[:, 1].astype(np.float64))

    gradient = np.zeros_like(features)
    for index in np.ndindex(features.shape[1:]):
        plus, minus = features.copy(), features.copy()
        plus[(slice(None), *index)] += step
        minus[(slice(None), *index)] -= step
        gradient[(slice(None), *index)] = (log_probability(plus) - log_probability(minus)) / (2 * step)
    norms = np.linalg.norm(gradient, axis=-1)
    np.testing.assert_allclose(found, norms / norms.sum(axis=1, keepdims=True), atol=2e-3)
    np.testing.assert_allclose(found.sum(axis=1), 1.0, rtol=1e-6)
