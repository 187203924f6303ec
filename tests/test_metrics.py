"""Metrics of explanations, each on a case whose answer is known in advance."""

import cv2
import keras
import numpy as np
import pytest

from tdexplain import evaluate_methods, Explainer, load_model
from tdexplain.engine.maps import normalize_per_frame
from tdexplain.metrics import evaluate, faithfulness, localization, randomization, similarity
from tdexplain.workbook import data, models

FRAMES, SIZE = 3, 32
PIXEL = (20, 9)  # (row, column) the one-pixel model looks at
GAIN = 0.005  # its logit gap per gray level: probabilities stay away from 0 and 1


@pytest.fixture(scope="module")
def masks():
    """Masks of the temporal task: frames without evidence too (outside the events)."""
    return data.synthetic_dataset(n=6, frames=FRAMES, size=SIZE, seed=3, task="temporal")[2]


def test_a_map_equal_to_the_mask_scores_the_maximum(masks):
    maps = masks.astype(np.float32)
    has_evidence = masks.any(axis=(2, 3))
    assert has_evidence.any() and not has_evidence.all()
    for score in (localization.pointing_game, localization.energy_inside, localization.iou):
        found = score(maps, masks)
        # Frames without evidence (normal clips, frames outside the event) are not scored.
        np.testing.assert_array_equal(np.isnan(found), ~has_evidence)
        np.testing.assert_allclose(found[has_evidence], 1.0)
        # and its complement the minimum
        np.testing.assert_allclose(score(1.0 - maps, masks)[has_evidence], 0.0)


def test_a_random_map_scores_near_chance():
    masks = np.zeros((400, 1, 16, 16), bool)
    masks[:, :, 4:8, 2:10] = True  # an eighth of the frame
    maps = np.random.default_rng(0).random(masks.shape).astype(np.float32)
    found = localization.localization(maps, masks, tolerance=0)
    np.testing.assert_allclose(found["chance"], 0.125)
    assert abs(found["pointing_game"].mean() - 0.125) < 0.04  # binomial sd 0.017
    assert abs(found["energy_inside"].mean() - 0.125) < 0.01


def test_the_pointing_tolerance_forgives_a_peak_that_many_pixels_off():
    masks = np.zeros((1, 1, 32, 32), bool)
    masks[0, 0, 10:12, 10:12] = True
    maps = np.zeros((1, 1, 32, 32), np.float32)
    maps[0, 0, 13, 13] = 1.0  # sqrt(8) = 2.83 px from the mask's corner (11, 11)
    hits = [localization.pointing_game(maps, masks, tolerance)[0, 0] for tolerance in (0, 1, 2, 3)]
    assert hits == [0, 0, 0, 1]
    assert [localization.pointing_tolerance(size) for size in (32, 64, 128, 224)] == [2, 2, 4, 7]
    # The chance of the grown mask, counted pixel by pixel: within 3 px of the 2x2 square.
    ys, xs = np.mgrid[:32, :32]
    near = np.zeros((32, 32), bool)
    for y, x in zip(*np.nonzero(masks[0, 0])):
        near |= (ys - y) ** 2 + (xs - x) ** 2 <= 9
    found = localization.localization(maps, masks, tolerance=3)
    np.testing.assert_allclose(found["pointing_chance"], [near.mean()])
    np.testing.assert_allclose(found["pointing_game"], [1.0])
    assert localization.localization(maps, masks)["pointing_game"][0] == 0  # default at 32 px: 2


def test_ties_and_empty_cases():
    masks = np.zeros((1, 3, 8, 8), bool)
    masks[0, :2, :2, :] = True  # a quarter of frames 0 and 1; frame 2 has no evidence
    maps = np.ones((1, 3, 8, 8), np.float32)
    maps[0, 1] = 0
    np.testing.assert_allclose(localization.pointing_game(maps, masks), [[0.25, 0.0, np.nan]])
    np.testing.assert_allclose(localization.energy_inside(maps, masks), [[0.25, 0.0, np.nan]])
    np.testing.assert_allclose(localization.localization(maps, masks)["energy_inside"], [0.125])


def test_the_grid_bound_at_full_resolution_is_the_mask_itself(masks):
    full = localization.grid_bound(masks, masks.shape[-1])
    np.testing.assert_allclose(np.nanmean(full["pointing_game"]), 1.0)
    np.testing.assert_allclose(np.nanmean(full["energy_inside"]), 1.0)
    coarse = localization.grid_bound(masks, 4)  # 8x8-pixel cells: the mask blurs out of itself
    assert np.nanmean(coarse["energy_inside"]) < 0.9
    with pytest.raises(ValueError, match="must divide the frames"):
        localization.grid_bound(masks, 5)


def test_evidence_response_of_one_3x3_convolution_stays_within_a_pixel_of_the_change():
    """block1_conv1 sees 3x3 pixels: changing a patch changes its activations only on the
    patch grown by one pixel, so all the response lands there (independent of any weights)."""
    keras.utils.set_random_seed(0)
    model = models.build_model(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    explainer = Explainer(model)
    clips = data.synthetic_dataset(n=2, frames=2, size=32, seed=0)[0].astype(np.float32)
    changed = clips.copy()
    changed[:, :, 10:16, 5:9] = 0
    near = np.zeros(clips.shape[:4], bool)
    near[:, :, 9:17, 4:10] = True  # the patch and its one-pixel border
    found = localization.evidence_response(explainer, clips, changed, near, layer="block1_conv1")
    np.testing.assert_allclose(found["energy_inside"], 1.0, atol=1e-6)
    np.testing.assert_allclose(found["pointing_game"], 1.0)
    assert found["maps"].shape == clips.shape[:4]


def test_reinitialization_compares_with_a_fresh_copy_and_leaves_the_model_alone(demo_model, demo_clips):
    before = [w.copy() for w in demo_model.get_weights()]
    check = randomization.reinitialization(demo_model, demo_clips, methods=["gradcam", edge_detector],
                                           progress=False)
    assert check.steps == ["original", "re-initialized"]
    np.testing.assert_allclose(check.clip_spearman("edge_detector"), 1.0)
    np.testing.assert_allclose(check.clip_spearman("gradcam", 0), 1.0)
    assert np.median(check.clip_spearman("gradcam")) < 0.3
    for old, new in zip(before, demo_model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_iou_of_a_known_overlap():
    masks = np.zeros((1, 1, 10, 10), bool)
    masks[0, 0, :, :4] = True
    maps = np.zeros((1, 1, 10, 10), np.float32)
    maps[0, 0, :, 2:6] = 0.8  # overlaps 2 of the mask's 4 columns; union 6 columns
    maps[0, 0, :, 6:] = 0.3  # below the threshold
    np.testing.assert_allclose(localization.iou(maps, masks), [[2 / 6]])


def test_bad_maps_are_refused(masks):
    with pytest.raises(ValueError, match="same shape"):
        localization.energy_inside(np.zeros((1, 2, 3)), masks)
    with pytest.raises(ValueError, match="non-negative"):
        localization.pointing_game(-np.ones(masks.shape), masks)


# ---------------------------------------------------------------- faithfulness


@pytest.fixture(scope="module")
def one_pixel_model():
    """Predicts class 0 when pixel PIXEL is bright in the frames, from that pixel only."""
    frame = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(1, 1, name="gray")(frame)
    x = keras.layers.Cropping2D(((PIXEL[0], SIZE - PIXEL[0] - 1), (PIXEL[1], SIZE - PIXEL[1] - 1)))(x)
    cnn = keras.Model(frame, keras.layers.Flatten()(x), name="cnn")
    clips = keras.Input((FRAMES, SIZE, SIZE, 3))
    features = keras.layers.Flatten()(keras.layers.TimeDistributed(cnn)(clips))
    output = keras.layers.Dense(2, activation="softmax", name="out")
    model = keras.Model(clips, output(features))
    cnn.get_layer("gray").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.zeros(1)])
    # logit 0 - logit 1 = GAIN x (sum over frames of the pixel's gray value - 128 x FRAMES)
    output.set_weights([np.tile([[GAIN / 2, -GAIN / 2]], (FRAMES, 1)).astype(np.float32),
                        np.array([-64 * GAIN, 64 * GAIN], np.float32) * FRAMES])
    return model


@pytest.fixture(scope="module")
def bright_pixel_clip():
    clip = np.random.default_rng(0).integers(0, 100, (1, FRAMES, SIZE, SIZE, 3)).astype(np.float32)
    clip[:, :, PIXEL[0], PIXEL[1]] = 255
    return clip


def test_deletion_drops_at_the_first_step_on_a_one_pixel_model(one_pixel_model, bright_pixel_clip):
    explainer = Explainer(one_pixel_model)
    pointing = np.zeros((1, FRAMES, SIZE, SIZE), np.float32)
    pointing[:, :, PIXEL[0], PIXEL[1]] = 1
    curve = faithfulness.deletion_curve(explainer, bright_pixel_clip, pointing, steps=8, fill="black",
                                        progress=False)
    # the pixel is 255 in every frame: gap 0.005 x 127 x 3 (p 0.87); black: -0.005 x 128 x 3
    assert curve.probabilities[0, 0] > 0.85 and (curve.probabilities[0, 1:] < 0.15).all()
    assert curve.auc[0] < 0.2
    # The opposite order removes the pixel only at the last step; insertion reveals it first.
    late = faithfulness.deletion_curve(explainer, bright_pixel_clip, 1 - pointing, steps=8, fill="black",
                                       progress=False)
    assert (late.probabilities[0, :-1] > 0.85).all() and late.probabilities[0, -1] < 0.15
    insertion = faithfulness.deletion_curve(explainer, bright_pixel_clip, pointing, mode="insertion",
                                            steps=8, fill="black", progress=False)
    assert insertion.probabilities[0, 0] < 0.15 and (insertion.probabilities[0, 1:] > 0.85).all()


def test_clip_scope_removes_the_map_s_frames_first(one_pixel_model, bright_pixel_clip):
    """Ranked over the clip, a map on frame 0 removes frame 0's pixels before any other."""
    explainer = Explainer(one_pixel_model)
    maps = np.zeros((1, FRAMES, SIZE, SIZE), np.float32)
    maps[:, 0] = 1
    curve = faithfulness.deletion_curve(explainer, bright_pixel_clip, maps, scope="clip", steps=FRAMES,
                                        fill="black", progress=False)
    # after step 1 frame 0 is black: its pixel lost 255 gray levels
    logit_gap = np.log(curve.probabilities[0] / (1 - curve.probabilities[0]))
    np.testing.assert_allclose(logit_gap[:2], [GAIN * 127 * FRAMES, GAIN * (127 * FRAMES - 255)], rtol=1e-4)


def test_frame_deletion_removes_the_most_important_frames_first(one_pixel_model, bright_pixel_clip):
    explainer = Explainer(one_pixel_model)
    scores = np.array([[0.1, 0.9, 0.5]])  # order: frame 1, frame 2, frame 0
    curve = faithfulness.frame_deletion_curve(explainer, bright_pixel_clip, scores, fill="black", progress=False)
    gap = np.log(curve.probabilities[0] / (1 - curve.probabilities[0]))
    np.testing.assert_allclose(np.diff(gap), [-GAIN * 255] * FRAMES, rtol=1e-4)
    assert curve.probabilities.shape == (1, FRAMES + 1)


@pytest.mark.parametrize("clips_per_call", [1, 2, 3])
def test_curves_of_several_clips_equal_each_clip_s_own(one_pixel_model, monkeypatch, clips_per_call):
    """Clips with their own maps and targets, their variants run through the model in groups of
    1, 2 or 3 clips: every clip's curve is the one it has alone."""
    explainer = Explainer(one_pixel_model)
    rng = np.random.default_rng(1)
    clips = rng.integers(0, 256, (3, FRAMES, SIZE, SIZE, 3)).astype(np.float32)
    clips[0, :, PIXEL[0], PIXEL[1]] = 255
    maps = rng.random((3, FRAMES, SIZE, SIZE)).astype(np.float32)
    target = np.array([0, 1, 0])
    alone = [faithfulness.deletion_curve(explainer, clips[i:i + 1], maps[i:i + 1], target[i:i + 1], mode=mode,
                                         steps=4, progress=False).probabilities[0]
             for mode in ("deletion", "insertion") for i in range(3)]
    monkeypatch.setattr(faithfulness, "VARIANT_BYTES", clips_per_call * 5 * clips[0].nbytes)
    together = [faithfulness.deletion_curve(explainer, clips, maps, target, mode=mode, steps=4,
                                            progress=False).probabilities for mode in ("deletion", "insertion")]
    np.testing.assert_allclose(np.concatenate(together), np.stack(alone), rtol=1e-6, atol=1e-7)


def test_ties_are_removed_in_random_order_not_top_left_first():
    rank = faithfulness._rank_fraction(np.zeros((1, 1, 16, 16)), (2, 3), np.random.default_rng(0))
    first_half = rank[0, 0] < 0.5
    assert abs(first_half[:8].mean() - 0.5) < 0.1  # top rows no more likely than bottom rows
    np.testing.assert_array_equal(np.sort(rank.ravel()), np.arange(256) / 256)


def test_area_under_a_known_curve():
    curve = faithfulness.Curve("deletion", np.linspace(0, 1, 5), np.array([[1, 1, 0, 0, 0.0]]), np.zeros(1))
    np.testing.assert_allclose(curve.auc, [0.375])


def test_bad_curve_arguments(one_pixel_model, bright_pixel_clip):
    explainer = Explainer(one_pixel_model)
    maps = np.zeros((1, FRAMES, SIZE, SIZE))
    with pytest.raises(ValueError, match="maps must be"):
        faithfulness.deletion_curve(explainer, bright_pixel_clip, maps[:, :2])
    with pytest.raises(ValueError, match="scope"):
        faithfulness.deletion_curve(explainer, bright_pixel_clip, maps, scope="video")
    with pytest.raises(ValueError, match="fill"):
        faithfulness.deletion_curve(explainer, bright_pixel_clip, maps, fill="noise")
    with pytest.raises(ValueError, match="frame_scores"):
        faithfulness.frame_deletion_curve(explainer, bright_pixel_clip, np.zeros((1, 2)))


# ---------------------------------------------------------------- similarity and sanity checks


def test_spearman_against_an_independent_computation():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 2, 3, 6, 6))
    expected = [[np.corrcoef(x.ravel().argsort().argsort(), y.ravel().argsort().argsort())[0, 1]
                 for x, y in zip(ca, cb)] for ca, cb in zip(a, b)]
    np.testing.assert_allclose(similarity.spearman(a, b), expected, atol=1e-12)
    np.testing.assert_allclose(similarity.spearman(a, a ** 3), 1.0)  # any monotone transform
    np.testing.assert_allclose(similarity.spearman(a, 1 - a), -1.0)
    # average ranks for ties: [0, 0, 1, 1] vs [1, 2, 3, 4] is the Pearson of [1.5, 1.5, 3.5, 3.5]
    tied = np.array([0, 0, 1, 1.0]).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(similarity.spearman(tied, np.arange(4.0).reshape(1, 1, 2, 2)),
                               [[np.corrcoef([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4])[0, 1]]])


def test_ssim_properties():
    rng = np.random.default_rng(2)
    a = cv2.GaussianBlur(rng.random((32, 32)), (0, 0), 3)[None, None]
    a = (a - a.min()) / (a.max() - a.min())
    np.testing.assert_allclose(similarity.ssim(a, a), 1.0)
    noise = rng.random(a.shape)
    assert similarity.ssim(a, noise)[0, 0] < 0.2
    np.testing.assert_allclose(similarity.ssim(a, noise), similarity.ssim(noise, a))
    assert similarity.ssim(a, 0.9 * a)[0, 0] > similarity.ssim(a, 0.5 * a)[0, 0] > similarity.ssim(a, noise)[0, 0]


def edge_detector(explainer, clips, target):
    """A 'method' that never looks at the model (computed here, independently of the
    library's edge_baseline): the Laplacian magnitude of each frame."""
    gray = clips.mean(axis=-1).astype(np.float32)
    return normalize_per_frame(np.abs([[cv2.Laplacian(f, cv2.CV_32F) for f in c] for c in gray]))


def test_edge_baseline_ignores_the_model(demo_model, demo_clips):
    maps = randomization.edge_baseline(None, demo_clips, None)
    assert maps.shape == demo_clips.shape[:4] and maps.max() == 1 and maps.min() == 0


@pytest.fixture(scope="module")
def demo_model():
    return load_model()


@pytest.fixture(scope="module")
def demo_clips():
    return data.synthetic_dataset(n=3, frames=8, size=64, seed=21)[0]


def test_randomization_separates_gradcam_from_an_edge_detector(demo_model, demo_clips):
    before = [w.copy() for w in demo_model.get_weights()]
    check = randomization.model_randomization(demo_model, demo_clips, methods=["gradcam", edge_detector],
                                              mode="backbone", layer="block4_conv4", progress=False)
    assert check.steps == ["original", "backbone"]
    np.testing.assert_allclose(check.spearman["edge_detector"], [1, 1])
    np.testing.assert_allclose(check.ssim["edge_detector"], [1, 1])
    np.testing.assert_allclose(check.spearman["gradcam"][0], 1)
    assert check.spearman["gradcam"][1] < 0.3 and check.ssim["gradcam"][1] < 0.5
    assert check.maps["gradcam"].shape == (2, 3, 8, 64, 64)
    for old, new in zip(before, demo_model.get_weights()):  # the user's model is untouched
        np.testing.assert_array_equal(old, new)
    assert list(check.table().columns.get_level_values(0)) == ["gradcam", "edge_detector"] * 2


def test_cascade_goes_from_the_output_down_one_layer_at_a_time(demo_model):
    steps = randomization.randomization_steps(demo_model)
    names = [label for label, _ in steps]
    assert names[:5] == ["class_probabilities", "dense_3", "dense_2", "dense_1", "gru"]
    assert names[5] == "block5_conv4" and names[-1] == "block1_conv1"
    assert [len(layers) for _, layers in steps] == list(range(1, len(steps) + 1))
    blocks = randomization.randomization_steps(demo_model, by="block")
    assert [label for label, _ in blocks][4:] == ["gru", "block5", "block4", "block3", "block2", "block1"]
    assert [len(layers) for _, layers in blocks][-6:] == [5, 9, 13, 17, 19, 21]
    assert blocks[-1][1] == steps[-1][1]
    with pytest.raises(ValueError, match="cascading"):
        randomization.randomization_steps(demo_model, mode="top")


def test_cascading_randomization_changes_one_more_layer_each_step(one_pixel_model, bright_pixel_clip):
    """On the one-pixel model: randomizing the output layer alone already changes saliency
    (its sign and size), and the maps of each step are those of a model whose randomized
    layers are exactly the cascade's so far."""
    check = randomization.model_randomization(one_pixel_model, bright_pixel_clip, methods=["saliency"],
                                              seed=5, progress=False)
    assert check.steps == ["original", "out", "gray"]
    assert check.maps["saliency"].shape == (3, 1, FRAMES, SIZE, SIZE)
    # Only the watched pixel has a gradient, whatever the weights.
    nonzero = check.maps["saliency"].reshape(3, -1).astype(bool).sum(axis=1)
    np.testing.assert_array_equal(nonzero, [FRAMES] * 3)


def test_label_randomization_compares_two_models(demo_model, demo_clips):
    check = randomization.label_randomization(demo_model, demo_model, demo_clips, methods=["gradcam"],
                                              layer="block4_conv4", progress=False)
    np.testing.assert_allclose(check.spearman["gradcam"], [1, 1])
    assert check.steps == ["original", "random labels"]
    other_size = models.build_model(frames=8, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    with pytest.raises(ValueError, match=r"random_label_model takes clips of \(frames, size\) \(8, 32\), "
                       r"the model \(8, 64\)"):
        randomization.label_randomization(demo_model, other_size, demo_clips, progress=False)


def test_evaluate_methods_table(demo_model, demo_clips):
    masks = data.synthetic_dataset(n=3, frames=8, size=64, seed=21)[2]
    table = evaluate_methods(Explainer(demo_model), demo_clips, masks,
                             ["gradcam", edge_detector], layer="block4_conv4", steps=4,
                                     progress=False)
    assert list(table.index) == ["gradcam", "edge_detector"]
    assert list(table.columns) == ["pointing_game", "energy_inside", "iou", "deletion_auc",
                                   "insertion_auc", "sparseness", "entropy", "seconds_per_clip"]
    shares = table.drop(columns=["seconds_per_clip", "entropy"])
    assert ((shares >= 0) & (shares <= 1)).all().all()
    assert ((table["entropy"] > 0) & (table["entropy"] <= np.log(64 * 64))).all()  # in nats
    maps = table.attrs["maps"]["gradcam"]
    # The mean over clips of each clip's mean over its frames with evidence.
    per_clip = np.nanmean(localization.energy_inside(maps, masks), axis=1)
    np.testing.assert_allclose(table.loc["gradcam", "energy_inside"], np.nanmean(per_clip), rtol=1e-6)
    for name in table.index:  # the per-clip scores behind each mean
        for score, values in table.attrs["per_clip"][name].items():
            assert len(values) == len(demo_clips)
            np.testing.assert_allclose(np.nanmean(values), table.loc[name, score], rtol=1e-6)
    with pytest.raises(ValueError, match="valid methods"):
        evaluate_methods(Explainer(demo_model), demo_clips, masks, ["gradcan"])


def test_each_step_randomizes_exactly_the_cascade_so_far(demo_model, demo_clips):
    """A 'method' that records which layers of the explained copy differ from the model."""
    original = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in _weighted(demo_model)}
    changed = []

    def changed_layers(explainer, clips, target):
        changed.append({layer.name for layer in _weighted(explainer.model)
                        if any(not np.array_equal(w.numpy(), o) for w, o in zip(layer.weights, original[layer.name]))})
        return np.zeros(clips.shape[:4], np.float32)

    check = randomization.model_randomization(demo_model, demo_clips[:1], methods=[changed_layers], by="block",
                                              progress=False)
    expected = [set()] + [{layer.name for layer in layers}
                          for _, layers in randomization.randomization_steps(demo_model, by="block")]
    assert changed == expected and len(check.steps) == len(expected)


def _weighted(model):
    inner = [layer for layer in model.layers if isinstance(layer, keras.layers.TimeDistributed)][0].layer
    return [layer for layer in model.layers + inner.layers if layer.weights and not isinstance(
        layer, keras.layers.TimeDistributed)]


def test_bootstrap_interval_of_the_mean():
    """The percentile interval of resampled means: a point for constant values, around the
    mean and about 1/sqrt(n) as wide for more values, the same for the same seed, NaN dropped."""
    assert evaluate.bootstrap_interval([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.5, 0.1, 25), rng.normal(0.5, 0.1, 400)
    low, high = evaluate.bootstrap_interval(few)
    assert low < few.mean() < high and 2 * 1.96 * 0.1 / 5 * 0.7 < high - low < 2 * 1.96 * 0.1 / 5 * 1.3
    narrow = evaluate.bootstrap_interval(many)
    assert (narrow[1] - narrow[0]) < (high - low) / 3
    assert evaluate.bootstrap_interval(np.append(few, np.nan)) == (low, high)
    with pytest.raises(ValueError, match="at least one value"):
        evaluate.bootstrap_interval([np.nan])
