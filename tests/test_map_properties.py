"""Properties of maps that need no ground truth (complexity, robustness, axioms), each against
an independent computation: a loop over pixel pairs, a closed form, the same seeded draws
replayed by hand, the model's own logits."""

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

from tdexplain import evaluate_methods, Explainer, load_model
from tdexplain.engine import unroll
from tdexplain.engine.maps import blurred, normalize_per_frame
from tdexplain.metrics import axiomatic, catalogue, complexity, evaluate, robustness
from tdexplain.workbook import data

FRAMES, SIZE = 4, 32
MODEL_SEED = 3  # the shared model's (conftest.py)
LAYER = "block3_conv2"


@pytest.fixture(scope="module")
def dataset():
    clips, _, masks = data.synthetic_dataset(n=2, frames=FRAMES, size=SIZE, seed=5)
    return clips.astype(np.float32), masks


@pytest.fixture(scope="module")
def clips(dataset):
    return dataset[0]


# ---------------------------------------------------------------- complexity


def _frames_with_known_answers(n_pixels_side=(6, 5)):
    """Random maps with zeros, plus a constant, a one-hot and an all-zero frame."""
    rng = np.random.default_rng(0)
    maps = rng.random((2, 5) + n_pixels_side)
    maps[maps < 0.3] = 0
    maps[1, 2] = 0.7  # constant
    maps[1, 3] = 0
    maps[1, 3, 2, 4] = 0.9  # one-hot
    maps[1, 4] = 0  # all zero
    return maps


def test_sparseness_is_the_gini_index_of_each_frame():
    maps = _frames_with_known_answers()
    n = maps.shape[2] * maps.shape[3]
    expected = np.zeros(maps.shape[:2])
    for i, t in np.ndindex(*maps.shape[:2]):
        a = maps[i, t].ravel()
        if a.sum() > 0:  # the mean absolute difference over all pairs, by a double loop
            expected[i, t] = sum(abs(x - y) for x in a for y in a) / (2 * n * a.sum())
    found = complexity.sparseness(maps)
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(found[1, 2:], [0, 1 - 1 / n, 0], atol=1e-12)
    assert found.shape == (2, 5) and 0 < found[0].min() and found[0].max() < 1


def test_entropy_of_each_frame_as_a_distribution():
    maps = _frames_with_known_answers()
    n = maps.shape[2] * maps.shape[3]
    expected = np.zeros(maps.shape[:2])
    for i, t in np.ndindex(*maps.shape[:2]):
        a = maps[i, t].ravel()
        total = a.sum()
        expected[i, t] = -sum(v / total * math.log(v / total) for v in a if v > 0) if total else math.log(n)
    found = complexity.entropy(maps)
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(found[1, 2:], [math.log(n), 0, math.log(n)], atol=1e-12)
    two = np.zeros((1, 1, 4, 4))
    two[0, 0, 0, :2] = 0.3  # two equal pixels: one bit
    np.testing.assert_allclose(complexity.entropy(two), [[math.log(2)]])
    assert np.isfinite(found).all()


def test_complexity_refuses_what_is_not_a_batch_of_heat_maps():
    with pytest.raises(ValueError, match=r"maps must be heat maps \(N, T, H, W\).*shape \(3, 4, 4\)"):
        complexity.sparseness(np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        complexity.entropy(-np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="finite"):
        complexity.sparseness(np.full((1, 1, 4, 4), np.nan))


# ---------------------------------------------------------------- robustness


def _draw(seed, sample, shape, radius, noise="uniform"):
    """The documented draw, written out here: a generator seeded by (seed, sample)."""
    rng = np.random.default_rng([seed, sample])
    scale = radius * 255
    values = rng.uniform(-scale, scale, shape) if noise == "uniform" else rng.normal(0, scale, shape)
    return values.astype(np.float32)


def test_robustness_of_two_methods_by_a_hand_loop(explainer, clips):
    """Max-sensitivity and the Lipschitz estimate replayed sample by sample, frame by frame:
    the same draws for both methods, the target of the original clips kept."""
    samples, radius, seed, methods = 3, 0.05, 4, ["saliency", "gradcam"]
    found = robustness.robustness(explainer, clips, methods, samples=samples, radius=radius, layer=LAYER,
                                  seed=seed, progress=False)
    predicted = explainer.logits(clips).argmax(axis=1)
    original = explainer.explain(clips, methods, layer=LAYER, target=predicted).maps
    sensitivity = {m: np.zeros((2, FRAMES)) for m in methods}
    lipschitz = {m: np.zeros((2, FRAMES)) for m in methods}
    clip_sensitivity = {m: np.zeros(2) for m in methods}
    clip_lipschitz = {m: np.zeros(2) for m in methods}
    for sample in range(samples):
        delta = _draw(seed, sample, clips.shape[1:], radius)
        assert np.abs(delta).max() <= radius * 255
        moved = explainer.explain(clips + delta, methods, layer=LAYER, target=predicted).maps
        for m in methods:
            for i in range(2):
                clip_change = np.linalg.norm(moved[m][i] - original[m][i])
                clip_sensitivity[m][i] = max(clip_sensitivity[m][i], clip_change / np.linalg.norm(original[m][i]))
                clip_lipschitz[m][i] = max(clip_lipschitz[m][i], clip_change / np.linalg.norm(delta))
                for t in range(FRAMES):
                    change = np.linalg.norm(moved[m][i, t] - original[m][i, t])
                    sensitivity[m][i, t] = max(sensitivity[m][i, t], change / np.linalg.norm(original[m][i, t]))
                    lipschitz[m][i, t] = max(lipschitz[m][i, t], change / np.linalg.norm(delta[t]))
    for m in methods:
        assert sensitivity[m].min() > 0  # the noise does move the maps: the test can fail
        np.testing.assert_allclose(found["max_sensitivity"].per_frame[m], sensitivity[m], rtol=1e-4)
        np.testing.assert_allclose(found["local_lipschitz"].per_frame[m], lipschitz[m], rtol=1e-4)
        np.testing.assert_allclose(found["max_sensitivity"].per_clip[m], clip_sensitivity[m], rtol=1e-4)
        np.testing.assert_allclose(found["local_lipschitz"].per_clip[m], clip_lipschitz[m], rtol=1e-4)
    alone = robustness.max_sensitivity(explainer, clips, methods, samples=samples, radius=radius,
                                       layer=LAYER, seed=seed, progress=False)
    assert alone.metric == "max_sensitivity" and (alone.samples, alone.radius, alone.noise) == (3, 0.05, "uniform")
    np.testing.assert_array_equal(alone.per_clip["gradcam"], found["max_sensitivity"].per_clip["gradcam"])


K = 0.5  # the linear method's gain


def red_channel(explainer, clips, target):
    """A linear 'method': K x the red channel in 0..1 (not normalized), so a perturbation d
    moves it by K d_red / 255 exactly."""
    return K * clips[..., 0] / 255


@pytest.mark.parametrize("noise", ["uniform", "gaussian"])
def test_a_linear_method_has_the_lipschitz_constant_of_its_closed_form(explainer, clips, noise):
    samples, radius, seed = 4, 0.03, 9
    found = robustness.robustness(explainer, clips, [red_channel], samples=samples, radius=radius,
                                  noise=noise, seed=seed, progress=False)
    # exactly, from the draws: |K d_red / 255| / |d| and |d_red| / |x_red|
    draws = [_draw(seed, s, clips.shape[1:], radius, noise).astype(np.float64) for s in range(samples)]
    red = [np.sqrt((d[..., 0] ** 2).sum(axis=(1, 2))) for d in draws]  # (T,) per sample
    whole = [np.sqrt((d ** 2).sum(axis=(1, 2, 3))) for d in draws]
    lipschitz = np.max([K / 255 * r / w for r, w in zip(red, whole)], axis=0)
    clip_norm = np.sqrt((clips[..., 0].astype(np.float64) ** 2).sum(axis=(2, 3)))  # (N, T)
    sensitivity = np.max([r / clip_norm for r in red], axis=0)
    np.testing.assert_allclose(found["local_lipschitz"].per_frame["red_channel"],
                               np.broadcast_to(lipschitz, (2, FRAMES)), rtol=1e-5)
    np.testing.assert_allclose(found["max_sensitivity"].per_frame["red_channel"], sensitivity, rtol=1e-5)
    # and in closed form: a third of the noise energy is in the red channel
    np.testing.assert_allclose(found["local_lipschitz"].per_frame["red_channel"], K / 255 / np.sqrt(3), rtol=0.06)
    expected_std = 1 / np.sqrt(3) if noise == "uniform" else 1.0  # of the draws, in units of radius x 255
    np.testing.assert_allclose([d.std() / (radius * 255) for d in draws], expected_std, rtol=0.02)


def constant(explainer, clips, target):
    return np.full(clips.shape[:4], 0.5, np.float32)


def off_the_grid(explainer, clips, target):
    """All zero on whole-number pixels (the originals), lit where noise moved them."""
    return (clips[..., 0] != np.round(clips[..., 0])).astype(np.float32)


def test_a_constant_map_does_not_move_and_a_map_from_zero_has_no_relative_change(explainer, clips):
    found = robustness.robustness(explainer, clips, [constant, off_the_grid], samples=2, progress=False)
    for result in found.values():
        np.testing.assert_array_equal(result.per_frame["constant"], 0)
        np.testing.assert_array_equal(result.per_clip["constant"], 0)
    assert np.isnan(found["max_sensitivity"].per_frame["off_the_grid"]).all()
    lipschitz = found["local_lipschitz"].per_frame["off_the_grid"]
    assert np.isfinite(lipschitz).all() and (lipschitz > 0).all()


def test_robustness_refuses_bad_arguments(explainer, clips):
    for kwargs, message in ((dict(samples=0), "samples must be an integer >= 1"),
                            (dict(samples=2.5), "samples must be an integer >= 1"),
                            (dict(radius=0), r"radius must be a number > 0 \(a fraction of the 0..255"),
                            (dict(radius=-0.1), "radius must be a number > 0"),
                            (dict(noise="salt"), r"noise must be one of \('uniform', 'gaussian'\)")):
        with pytest.raises(ValueError, match=message):
            robustness.max_sensitivity(explainer, clips, ["saliency"], progress=False, **kwargs)

    def wrong_shape(explainer, clips, target):
        return np.zeros(clips.shape[:3])

    with pytest.raises(ValueError, match=r"method 'wrong_shape' returned maps of shape \(2, 4, 32\); "
                       r"expected \(N, T, H, W\) = \(2, 4, 32, 32\)"):
        robustness.local_lipschitz(explainer, clips, [wrong_shape], samples=1, progress=False)
    with pytest.raises(ValueError, match="not a callable score"):
        robustness.robustness(explainer, clips, ["saliency"], target=lambda logits: logits[:, 0], progress=False)
    with pytest.raises(ValueError, match="valid methods"):
        robustness.robustness(explainer, clips, ["salience"], progress=False)


# ---------------------------------------------------------------- completeness


@pytest.fixture(scope="module")
def demo():
    """The trained demo model (the same weights on both backends) and two of its clips: its
    score differences are large, where an untrained model's are a few hundredths, too small
    for a relative gap to say much."""
    clips = data.synthetic_dataset(n=2, frames=8, size=64, seed=21)[0].astype(np.float32)
    return Explainer(load_model()), clips


def test_integrated_gradients_add_up_to_the_score_difference(demo):
    explainer, clips = demo
    found = axiomatic.completeness(explainer, clips, steps=256)
    logits = explainer.logits(clips)
    black = explainer.logits(np.zeros_like(clips))
    rows = np.arange(len(clips))
    np.testing.assert_array_equal(found.target, logits.argmax(axis=1))
    np.testing.assert_allclose(found.score_difference, logits[rows, found.target] - black[rows, found.target],
                               rtol=1e-5, atol=1e-5)
    assert (found.gap < 0.05).all(), found.gap  # 2.7% and 0.7% measured: the Riemann sum's error
    np.testing.assert_allclose(found.gap, np.abs(found.attribution_sum - found.score_difference)
                               / np.abs(found.score_difference))
    coarse = axiomatic.completeness(explainer, clips, steps=16)  # the Riemann sum's error at fewer steps
    assert (coarse.gap > 5 * found.gap).all(), (coarse.gap, found.gap)
    np.testing.assert_allclose(coarse.score_difference, found.score_difference)


def test_completeness_from_the_blur_for_a_callable_score(demo):
    explainer, clips = demo

    def fight_minus_normal(logits):
        return logits[:, 1] - logits[:, 0]

    found = axiomatic.completeness(explainer, clips, target=fight_minus_normal, steps=64, baseline="blur")
    logits, from_blur = explainer.logits(clips), explainer.logits(blurred(clips))
    np.testing.assert_allclose(found.score_difference,
                               (logits[:, 1] - logits[:, 0]) - (from_blur[:, 1] - from_blur[:, 0]), rtol=1e-4, atol=1e-4)
    assert (found.gap < 0.05).all(), found.gap  # 2.7% and 0.7% measured: the Riemann sum's error
    assert (found.target == -1).all()


def test_completeness_refuses_bad_arguments(explainer, clips):
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        axiomatic.completeness(explainer, clips, steps=0)
    with pytest.raises(ValueError, match=r"baseline must be None or 'black', 'blur'"):
        axiomatic.completeness(explainer, clips, baseline="white")
    with pytest.raises(ValueError, match=r"baseline of shape \(3, 32, 32, 3\) does not broadcast"):
        axiomatic.completeness(explainer, clips, baseline=np.zeros((3, SIZE, SIZE, 3)))


# ---------------------------------------------------------------- input invariance

SHIFT = -127.5


def test_the_shifted_twin_computes_what_the_model_computes(model, clips):
    twin = axiomatic.shifted_twin(model, SHIFT)
    np.testing.assert_allclose(twin.predict(clips + SHIFT, verbose=0), model.predict(clips, verbose=0),
                               atol=1e-6)
    np.testing.assert_allclose(Explainer(twin).logits(clips + SHIFT), Explainer(model).logits(clips),
                               rtol=1e-5, atol=1e-5)
    assert unroll.find_time_distributed(twin) is unroll.find_time_distributed(model)
    assert {id(w) for w in twin.weights} == {id(w) for w in model.weights}  # shared, not copied
    per_channel = np.array([10.0, -20.0, 30.0], np.float32)
    colour = axiomatic.shifted_twin(model, per_channel)
    np.testing.assert_allclose(colour.predict(clips + per_channel, verbose=0), model.predict(clips, verbose=0),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"shift must be a number or an array that broadcasts to a clip "
                       r"\(4, 32, 32, 3\), got shape \(5,\)"):
        axiomatic.shifted_twin(model, np.ones(5))
    with pytest.raises(ValueError, match="not all zero"):
        axiomatic.shifted_twin(model, 0.0)


def test_saliency_is_input_invariant_and_gradient_x_input_is_not(model, explainer, clips):
    found = axiomatic.input_invariance(explainer, clips, ["saliency", "gradcam", "gradient_x_input",
                                                          "integrated_gradients"],
                                     shift=SHIFT, layer=LAYER, ig_steps=4)
    assert found.logit_difference < 1e-4
    for invariant in ("saliency", "gradcam"):
        assert found.spearman[invariant].min() > 0.999, (invariant, found.spearman[invariant])
        assert found.max_difference[invariant].max() < 1e-3, (invariant, found.max_difference[invariant])
    for dependent in ("gradient_x_input", "integrated_gradients"):
        assert found.spearman[dependent].max() < 0.95, (dependent, found.spearman[dependent])
        assert found.max_difference[dependent].min() > 0.1
    # The twin's gradient x input, in closed form: the model's gradient at x times x + shift.
    gradients = explainer.explain(clips, "saliency", target=explainer.logits(clips).argmax(axis=1)).input_gradients
    expected = normalize_per_frame(np.abs((gradients * (clips + SHIFT)).sum(axis=-1)))
    np.testing.assert_allclose(found.shifted_maps["gradient_x_input"], expected, atol=2e-3)
    np.testing.assert_allclose(found.maps["saliency"], found.shifted_maps["saliency"], atol=1e-3)


# ---------------------------------------------------------------- in the table


def test_evaluate_methods_adds_complexity_always_and_the_costly_columns_when_asked(explainer, dataset):
    clips, masks = dataset
    methods = ["saliency", "gradcam"]
    plain = evaluate_methods(explainer, clips, masks, methods, layer=LAYER, steps=2, progress=False)
    assert list(plain.columns) == ["pointing_game", "energy_inside", "iou", "deletion_auc", "insertion_auc",
                                   "sparseness", "entropy", "seconds_per_clip"]
    table = evaluate_methods(explainer, clips, masks, methods, layer=LAYER, steps=2, progress=False,
                             robustness_samples=2, invariance_shift=SHIFT)
    assert list(table.columns) == list(plain.columns[:-1]) + ["max_sensitivity", "local_lipschitz",
                                                              "input_invariance", "seconds_per_clip"]
    np.testing.assert_allclose(table.drop(columns="seconds_per_clip").iloc[:, :7],
                               plain.drop(columns="seconds_per_clip"))  # the same columns as without
    assert ((table["sparseness"] > 0) & (table["sparseness"] < 1)).all()
    assert ((table["entropy"] > 0) & (table["entropy"] < np.log(SIZE * SIZE))).all()
    assert (table[["max_sensitivity", "local_lipschitz"]] > 0).all().all()
    assert table.loc["saliency", "input_invariance"] > 0.999
    moved = robustness.robustness(explainer, clips, methods, samples=2, layer=LAYER, progress=False)
    for name in methods:
        maps = table.attrs["maps"][name]
        np.testing.assert_allclose(table.loc[name, "sparseness"], complexity.sparseness(maps).mean())
        np.testing.assert_allclose(table.loc[name, "entropy"], complexity.entropy(maps).mean())
        for metric in ("max_sensitivity", "local_lipschitz"):
            np.testing.assert_allclose(table.attrs["per_clip"][name][metric], moved[metric].per_clip[name], rtol=1e-6)
        for score, values in table.attrs["per_clip"][name].items():
            assert len(values) == len(clips)
            np.testing.assert_allclose(np.nanmean(values), table.loc[name, score], rtol=1e-6)
        low, high = evaluate.bootstrap_interval(table.attrs["per_clip"][name]["entropy"])
        assert low <= table.loc[name, "entropy"] <= high
    catalogued = {m.column for m in catalogue.METRICS.values()}
    assert set(table.columns) - {"seconds_per_clip"} <= catalogued
    with pytest.raises(ValueError, match="robustness_samples must be an integer >= 0"):
        evaluate_methods(explainer, clips, masks, methods, robustness_samples=-1, progress=False)
    with pytest.raises(ValueError, match="robustness_radius must be a number > 0"):
        evaluate_methods(explainer, clips, masks, methods, robustness_samples=1,
                         robustness_radius=0, progress=False)


def test_each_metric_s_function_lives_in_its_family_s_module():
    for metric in catalogue.METRICS.values():
        assert metric.family in catalogue.FAMILIES
        module = importlib.import_module(f"tdexplain.metrics.{metric.family}")
        assert getattr(module, metric.function.__name__) is metric.function, metric.name
        assert metric.function.__name__ in module.__all__, metric.name
        assert bool(metric.column) == (metric.per_clip is not None), metric.name
    table = catalogue.markdown_table()
    assert table.count("\n") == len(catalogue.METRICS) + 1
    families = {m.family for m in catalogue.METRICS.values()}
    assert families == set(catalogue.FAMILIES)


def test_the_readme_lists_every_metric():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert catalogue.markdown_table() in readme, "run `python -m tdexplain.metrics` and paste its table"
