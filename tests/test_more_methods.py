"""The methods beyond Grad-CAM's first family (Eigen-CAM, HiResCAM, XGrad-CAM, Ablation-CAM,
Guided Backprop, Guided Grad-CAM, occlusion, space-time RISE), each against an independent
computation: closed forms on a model whose head is linear in the explained layer's
activations, a loop of plain forward passes, or an eigendecomposition."""

import re

import keras
import numpy as np
import pytest

from tdexplain import Explainer
from tdexplain.engine import backend
from tdexplain.engine.backend import gradient
from tdexplain.engine.maps import blurred, normalize_per_frame, upsample
from tdexplain.methods import perturbations
from tdexplain.methods.pixel import guided_gradients, integrated_gradients, smoothgrad_gradients
from tdexplain.workbook import data, models

FRAMES, SIZE, CLASSES = 4, 32, ("normal", "fight", "shooting")


def _gap_model(convolutions: int, seed: int = 3, frames: int = FRAMES) -> keras.Model:
    """TimeDistributed(rescale -> `convolutions` ReLU convolutions -> global average) ->
    average over time -> softmax Dense. The logits are linear in the last convolution's
    activations A: logit_c = b_c + sum_{t,y,x,k} A W_kc / (T h w)."""
    keras.utils.set_random_seed(seed)
    frame = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(frame)
    for i in range(convolutions):
        x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    cnn = keras.Model(frame, keras.layers.GlobalAveragePooling2D()(x), name="cnn")
    clips = keras.Input((frames, SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling1D()(keras.layers.TimeDistributed(cnn)(clips))
    return keras.Model(clips, models.ClassProbabilities(CLASSES, name="probabilities")(features))


@pytest.fixture(scope="module")
def gap_model():
    return _gap_model(2)


@pytest.fixture(scope="module")
def clips():
    return data.synthetic_dataset(n=2, frames=FRAMES, size=SIZE, seed=5)[0].astype(np.float32)


def _logits(model, clips) -> np.ndarray:
    """Logits of a `_gap_model`, from its plain forward pass: features @ W + b."""
    features = keras.Model(model.inputs[0], model.layers[-2].output).predict(clips, verbose=0)
    head = model.layers[-1]
    return features @ keras.ops.convert_to_numpy(head.kernel) + keras.ops.convert_to_numpy(head.bias)


@pytest.fixture(scope="module")
def linear_head(gap_model, clips):
    """The explanation at conv2 with every method that has a closed form there, and W / (T h w)."""
    result = Explainer(gap_model).explain(
        clips, methods=("gradcam", "xgradcam", "hirescam", "ablationcam"), layer="conv2", target=1)
    scale = FRAMES * SIZE * SIZE
    return result, keras.ops.convert_to_numpy(gap_model.layers[-1].kernel)[:, 1] / scale


def test_hirescam_is_each_positions_share_of_the_logit(gap_model, clips, linear_head):
    """With a head linear in A, gradient x activation is each position's exact term of the
    logit: HiResCAM = relu(sum_k A W_k / (T h w)), and the terms sum to logit - bias."""
    result, weight = linear_head
    terms = np.einsum("nthwk,k->nthw", result.activations, weight)
    np.testing.assert_allclose(result.raw["hirescam"], np.maximum(terms, 0), rtol=1e-4, atol=1e-7)
    bias = keras.ops.convert_to_numpy(gap_model.layers[-1].bias)[1]
    np.testing.assert_allclose(terms.sum(axis=(1, 2, 3)) + bias, _logits(gap_model, clips)[:, 1], rtol=1e-4)


def test_xgradcam_weights_are_the_head_weights_where_a_channel_is_active(linear_head):
    """The gradient is W_k / (T h w) at every position, so its activation-weighted mean is too."""
    result, weight = linear_head
    active = result.activations.sum(axis=(2, 3)) > 0
    expected = np.where(active, weight, 0)
    np.testing.assert_allclose(result.channel_weights["xgradcam"], expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(result.channel_weights["gradcam"], np.broadcast_to(weight, expected.shape),
                               rtol=1e-4)


def test_ablationcam_weights_are_the_channel_terms_over_the_score(gap_model, clips, linear_head):
    """Zeroing channel k of frame t removes exactly its term sum_yx A W_k / (T h w)."""
    result, weight = linear_head
    logit = _logits(gap_model, clips)[:, 1]
    expected = result.activations.sum(axis=(2, 3)) * weight / np.abs(logit)[:, None, None]
    np.testing.assert_allclose(result.channel_weights["ablationcam"], expected, rtol=2e-3, atol=1e-6)


def test_ablationcam_on_the_strongest_channels_only(gap_model, clips, linear_head):
    result, _ = linear_head
    few = Explainer(gap_model).explain(clips, methods="ablationcam", layer="conv2", target=1,
                                       ablation_channels=2)
    strongest = np.argsort(-result.activations.mean(axis=(2, 3)), axis=-1)[..., :2]
    weights = few.channel_weights["ablationcam"]
    kept = np.take_along_axis(weights, strongest, axis=-1)
    np.testing.assert_allclose(kept, np.take_along_axis(result.channel_weights["ablationcam"], strongest, -1),
                               rtol=1e-4, atol=1e-7)
    assert (weights != 0).sum(axis=-1).max() <= 2


def test_eigencam_is_the_first_principal_component_of_each_frame(gap_model, clips):
    """Against a loop over frames with the covariance's top eigenvector (numpy.linalg.eigh)."""
    result = Explainer(gap_model).explain(clips, methods="eigencam", layer="conv1")
    activations = result.activations
    for n in range(len(clips)):
        for t in range(FRAMES):
            positions = activations[n, t].reshape(-1, activations.shape[-1])
            centered = positions - positions.mean(axis=0)
            component = np.linalg.eigh(centered.T @ centered)[1][:, -1]
            projection = centered @ component
            strength = positions.sum(axis=1)
            if (projection * (strength - strength.mean())).sum() < 0:
                projection = -projection
            expected = np.maximum(projection, 0).reshape(activations.shape[2:4])
            np.testing.assert_allclose(result.raw["eigencam"][n, t], expected, rtol=1e-3, atol=1e-4)
    # Blind to the target: another class gives the same maps.
    other = Explainer(gap_model).explain(clips, methods="eigencam", layer="conv1", target=2)
    np.testing.assert_array_equal(other.maps["eigencam"], result.maps["eigencam"])


def test_guided_backprop_equals_the_gradient_of_the_head_with_negative_weights_cut(clips):
    """One ReLU layer under a linear head: the gradient reaching the ReLU is W_k / (T h w) at
    every position, so Guided Backprop keeps it where W_k > 0. That is the plain gradient of a
    twin whose head weights are max(W, 0): the same input gradients, computed without any
    guided ReLU."""
    model = _gap_model(1, seed=4)
    twin = backend.copy_model(model)
    head = twin.layers[-1]
    head.kernel.assign(np.maximum(keras.ops.convert_to_numpy(head.kernel), 0))
    guided = guided_gradients(Explainer(model), clips, target=1, layer="conv1")
    plain = Explainer(twin).explain(clips, methods="saliency", layer="conv1", target=1).input_gradients
    np.testing.assert_allclose(guided, plain, rtol=1e-4, atol=1e-4 * np.abs(plain).max())
    unguided = Explainer(model).explain(clips, methods="saliency", layer="conv1", target=1)
    assert not np.allclose(guided, unguided.input_gradients, atol=1e-3 * np.abs(plain).max())


@keras.ops.custom_gradient
def _guided_relu_by_hand(x):
    """Springenberg et al.'s rule, written here: backward, only where the input and the gradient
    from above are both positive."""
    def backward(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        return keras.ops.where(keras.ops.logical_and(x > 0, upstream > 0), upstream, 0.0)

    return keras.ops.relu(x), backward


def test_guided_backprop_guides_every_relu_of_the_backbone_and_the_head(clips):
    """Two ReLU convolutions per frame, a GRU, a Dense ReLU block and the softmax Dense: the
    guided gradients equal plain autodiff of a twin written out with the same weights and the
    guided rule by hand at all three ReLUs, not at the convolutions' only."""
    keras.utils.set_random_seed(8)
    frame = keras.Input((SIZE, SIZE, 3))
    conv1 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")
    conv2 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")
    cnn = keras.Model(frame, keras.layers.GlobalAveragePooling2D()(conv2(conv1(keras.layers.Rescaling(1 / 255)(frame)))))
    gru = keras.layers.GRU(8, name="gru")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")
    output = keras.layers.Dense(3, activation="softmax", name="probabilities")
    clip = keras.Input((FRAMES, SIZE, SIZE, 3))
    model = keras.Model(clip, output(hidden(gru(keras.layers.TimeDistributed(cnn)(clip)))))

    def twin(v, guide_head=True):
        x = keras.ops.reshape(v, (-1, SIZE, SIZE, 3)) / 255
        for conv in (conv1, conv2):
            x = _guided_relu_by_hand(conv.convolution_op(x, conv.kernel) + conv.bias)
        features = keras.ops.reshape(keras.ops.mean(x, axis=(1, 2)), (-1, FRAMES, 6))
        h = keras.ops.matmul(gru(features), hidden.kernel) + hidden.bias
        h = _guided_relu_by_hand(h) if guide_head else keras.ops.relu(h)
        return keras.ops.matmul(h, output.kernel) + output.bias

    guided = guided_gradients(Explainer(model), clips, target=1, layer="conv2")
    expected = gradient(lambda v: twin(v)[:, 1], clips)
    np.testing.assert_allclose(guided, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    backbone_only = gradient(lambda v: twin(v, guide_head=False)[:, 1], clips)
    assert not np.allclose(guided, backbone_only, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("unguidable", [
    lambda: keras.layers.ReLU(max_value=6.0, name="relu6"),
    lambda: keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")])
def test_guided_backprop_refuses_a_relu_it_cannot_guide(clips, unguidable):
    keras.utils.set_random_seed(3)
    frame = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(frame)
    layer = unguidable()
    cnn = keras.Model(frame, keras.layers.GlobalAveragePooling2D()(layer(x)))
    clip = keras.Input((FRAMES, SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling1D()(keras.layers.TimeDistributed(cnn)(clip))
    explainer = Explainer(keras.Model(clip, keras.layers.Dense(3, activation="softmax")(features)))
    for method in ("guided_backprop", "guided_gradcam"):
        with pytest.raises(ValueError, match=f"cannot guide the one of layer '{layer.name}' \\({type(layer).__name__}"):
            explainer.explain(clips, methods=method, layer="conv1")
    assert explainer.explain(clips, methods="saliency", layer="conv1").maps["saliency"].max() == 1


def test_guided_backprop_does_not_change_the_forward_pass_or_the_plain_gradients(clips):
    model = models.build_model(frames=FRAMES, size=SIZE, width=0.0625, gru_units=8, dense_blocks=1)
    explainer = Explainer(model)
    before = explainer.explain(clips, methods=("saliency", "guided_backprop", "guided_gradcam"),
                               layer="block3_conv2")
    again = explainer.explain(clips, methods="saliency", layer="block3_conv2")
    np.testing.assert_array_equal(before.maps["saliency"], again.maps["saliency"])
    np.testing.assert_allclose(before.probabilities, models.predict(model, clips), rtol=1e-5, atol=1e-6)
    guided = np.abs(guided_gradients(explainer, clips, before.target, "block3_conv2")).max(axis=-1)
    np.testing.assert_allclose(before.raw["guided_backprop"], guided, rtol=1e-5)
    # Guided Grad-CAM: Guided Backprop times the frame's upsampled, normalized Grad-CAM.
    gradcam = explainer.explain(clips, methods="gradcam", layer="block3_conv2").raw["gradcam"]
    expected = guided * normalize_per_frame(upsample(gradcam, SIZE))
    np.testing.assert_allclose(before.raw["guided_gradcam"], expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_occlusion_equals_a_loop_of_forward_passes(gap_model, clips):
    patch, stride = 12, 8
    result = Explainer(gap_model).explain(clips, methods="occlusion", target=1,
                                          occlusion_patch=patch, occlusion_stride=stride)
    starts = perturbations.patch_starts(SIZE, patch, stride)
    assert starts == [0, 8, 16, 20]  # the last patch is flush with the edge
    filled = blurred(clips)
    for n in range(len(clips)):
        original = _logits(gap_model, clips[n:n + 1])[0, 1]
        places = [(t, y, x) for t in range(FRAMES) for y in starts for x in starts]
        occluded = np.repeat(clips[n:n + 1], len(places), axis=0)  # one clip per patch
        for clip, (t, y, x) in zip(occluded, places):
            clip[t, y:y + patch, x:x + patch] = filled[n, t, y:y + patch, x:x + patch]
        drops = original - _logits(gap_model, occluded)[:, 1]
        total, count = np.zeros((FRAMES, SIZE, SIZE)), np.zeros((SIZE, SIZE))
        for drop, (t, y, x) in zip(drops, places):
            total[t, y:y + patch, x:x + patch] += drop
            count[y:y + patch, x:x + patch] += t == 0
        np.testing.assert_allclose(result.raw["occlusion"][n], np.maximum(total / count, 0),
                                   rtol=1e-3, atol=1e-4 * np.abs(total).max())


def test_rise_equals_its_published_formula_as_a_loop(gap_model, clips):
    count, cells, keep = 10, 4, 0.5
    result = Explainer(gap_model, frames_per_pass=8).explain(
        clips, methods="rise", target=2, rise_masks=count, rise_cells=cells, rise_keep=keep, seed=1)
    masks = perturbations.rise_masks(range(count), FRAMES, SIZE, cells, keep=keep, seed=1)
    filled = blurred(clips)
    for n in range(len(clips)):
        expected = np.zeros((FRAMES, SIZE, SIZE))
        for mask in masks:
            variant = mask[..., None] * clips[n] + (1 - mask[..., None]) * filled[n]
            probability = gap_model.predict(variant[None], verbose=0)[0, 2]  # the model's own softmax
            expected += probability * mask
        np.testing.assert_allclose(result.raw["rise"][n], expected / (count * keep), rtol=1e-4)


def test_rise_centres_a_callable_score_on_its_mean(gap_model, clips):
    """A callable score may be negative on every clip: RISE weighs each mask by the score less
    its mean over the masks (where the masks raise it), and the map stays in [0, 1]."""
    count, cells, keep = 10, 4, 0.5
    result = Explainer(gap_model, frames_per_pass=4).explain(  # masks in calls of 8 and 2
        clips, methods="rise", target=lambda logits: logits[:, 1] - 5.0, rise_masks=count, rise_cells=cells,
        rise_keep=keep, seed=1)
    masks = perturbations.rise_masks(range(count), FRAMES, SIZE, cells, keep=keep, seed=1)
    filled = blurred(clips)
    for n in range(len(clips)):
        variants = masks[..., None] * clips[n] + (1 - masks[..., None]) * filled[n]
        scores = _logits(gap_model, variants)[:, 1].astype(np.float64) - 5.0
        assert (scores < 0).all()
        expected = np.tensordot(scores - scores.mean(), masks, axes=1) / (count * keep)
        np.testing.assert_allclose(result.raw["rise"][n], expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    assert result.maps["rise"].min() >= 0 and result.maps["rise"].max() == 1


def test_rise_masks_are_smooth_reproducible_and_keep_the_asked_share():
    masks = perturbations.rise_masks(range(300), 8, 32, cells=4, keep=0.3, seed=0)
    assert masks.shape == (300, 8, 32, 32) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.3) < 0.03
    assert 0 < ((masks > 0) & (masks < 1)).mean()  # smooth, not binary
    np.testing.assert_array_equal(perturbations.rise_masks([7], 8, 32, cells=4, keep=0.3), masks[7:8])
    # Over time too: frames of one mask differ, and neighbouring frames differ least.
    step = np.abs(np.diff(masks, axis=1)).mean(axis=(0, 2, 3))
    assert step.min() > 0
    far = np.abs(masks[:, 0] - masks[:, -1]).mean()
    assert far > step.mean()


def test_perturbation_options_are_checked(gap_model, clips):
    explainer = Explainer(gap_model)
    with pytest.raises(ValueError, match=r"occlusion_patch must be an integer in 1\.\.32, got 40"):
        explainer.explain(clips, methods="occlusion", occlusion_patch=40)
    with pytest.raises(ValueError, match=r"rise_keep must be a probability in \(0, 1\), got 1.5"):
        explainer.explain(clips, methods="rise", rise_keep=1.5, rise_masks=2)
    with pytest.raises(ValueError, match="rise_masks must be an integer"):
        explainer.explain(clips, methods="rise", rise_masks=0)
    # 0 is a value, refused, never the default in disguise
    for method, option in (("occlusion", "occlusion_patch"), ("occlusion", "occlusion_stride"),
                           ("rise", "rise_frame_cells")):
        with pytest.raises(ValueError, match=f"{option} must be an integer in 1\\.\\.[0-9]+, got 0"):
            explainer.explain(clips, methods=method, rise_masks=2, **{option: 0})
    for method, option in (("scorecam", "scorecam_channels"), ("ablationcam", "ablation_channels")):
        for value in (0, -1, 2.5):
            with pytest.raises(ValueError, match=f"{option} must be None \\(every channel\\) or an integer >= 1, got {value}"):
                explainer.explain(clips, methods=method, layer="conv2", **{option: value})


def test_a_baseline_per_clip_follows_its_clip_across_batches(gap_model):
    """Three clips in batches of two, each from its own baseline: the same attributions as each
    clip explained alone from its baseline."""
    clips = data.synthetic_dataset(n=3, frames=FRAMES, size=SIZE, seed=6)[0].astype(np.float32)
    baselines = np.stack([np.full(clips.shape[1:], value, np.float32) for value in (0, 60, 120)])
    explainer = Explainer(gap_model)
    together = explainer.explain(clips, methods="integrated_gradients", target=1, batch_size=2, ig_steps=4,
                                 ig_baseline=baselines)
    for i in range(3):
        alone = explainer.explain(clips[i:i + 1], methods="integrated_gradients", target=1, ig_steps=4,
                                  ig_baseline=baselines[i])
        np.testing.assert_allclose(together.raw["integrated_gradients"][i], alone.raw["integrated_gradients"][0],
                                   rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"ig_baseline must be one clip \(4, 32, 32, 3\) or one per clip "
                       r"\(3, 4, 32, 32, 3\), got an array of shape \(2, 4, 32, 32, 3\)"):
        explainer.explain(clips, methods="integrated_gradients", ig_baseline=baselines[:2])


def test_the_gradient_helpers_check_their_clips(gap_model):
    explainer = Explainer(gap_model)
    wrong = np.zeros((1, FRAMES + 1, SIZE, SIZE, 3), np.float32)
    for helper in (guided_gradients, smoothgrad_gradients, integrated_gradients):
        with pytest.raises(ValueError, match=f"clips must have {FRAMES} frames per clip, got {FRAMES + 1}"):
            helper(explainer, wrong, 0)


def test_xgradcam_weights_stay_in_the_gradient_s_range_on_signed_activations():
    """A channel whose signed activations (after a BatchNorm, a tanh) nearly cancel: each position's
    share is taken of the absolute sum, so the weight stays within the gradients' range (divided
    by the plain sum, it would be 1000 here); on non-negative activations, Fu et al.'s shares."""
    from tdexplain.engine.registry import Pass
    from tdexplain.methods.cams import XGradCAM

    def weights(activations, gradients):
        activations, gradients = (np.reshape(v, (1, 1, 1, 2, 1)).astype(np.float32) for v in (activations, gradients))
        one = Pass("layer", None, None, None, activations, gradients, None)
        return XGradCAM().weights(None, one, None, {})[0, 0, 0]

    assert abs(weights([1.0, -0.999], [1.0, 0.0])) <= 1.0
    np.testing.assert_allclose(weights([1.0, 3.0], [2.0, 1.0]), (1 * 2 + 3 * 1) / 4, rtol=1e-6)


def test_scorecam_scores_its_masked_clips_clips_per_call_at_a_time(gap_model, clips):
    """4 frames x 6 channels = 24 masked clips per clip, handed to the model 16 at a time (the
    explainer's bound, not T x K at once), with the weights of one call of all 24."""
    small = Explainer(gap_model, frames_per_pass=8)
    assert small.clips_per_call() == 16
    seen = []
    scores = small.scores
    small.scores = lambda batch, *args, **kwargs: seen.append(len(batch)) or scores(batch, *args, **kwargs)
    chunked = small.explain(clips, methods="scorecam", layer="conv2", target=1)
    assert seen and max(seen) <= 16 and sum(seen) == len(clips) * FRAMES * 6
    whole = Explainer(gap_model, frames_per_pass=1024).explain(clips, methods="scorecam", layer="conv2", target=1)
    np.testing.assert_allclose(chunked.channel_weights["scorecam"], whole.channel_weights["scorecam"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("head, named", [
    (lambda f: keras.layers.Bidirectional(keras.layers.GRU(4, activation="relu", return_sequences=True),
                                          name="bi")(f), "'bi' (Bidirectional"),
    (lambda f: keras.layers.Dense(4, activation=keras.layers.ReLU(), name="relu_object")(f), "'relu_object' (Dense"),
    (lambda f: keras.layers.Conv1D(4, 2, padding="causal", activation="relu", name="causal")(f), "'causal' (Conv1D"),
    (lambda f: keras.ops.relu(keras.layers.Dense(4, name="pre")(f)), "(Relu")])
def test_guided_backprop_refuses_a_relu_hidden_in_the_head(clips, head, named):
    """A ReLU inside a wrapper (a bidirectional GRU's), given as a layer object, after a causal
    convolution or written as keras.ops.relu is still a ReLU it would skip. (A TimeDistributed
    Dense ReLU after the frame network is part of it: guided.)"""
    keras.utils.set_random_seed(3)
    frame = keras.Input((SIZE, SIZE, 3))
    cnn = keras.Model(frame, keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(frame)))
    clip = keras.Input((FRAMES, SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling1D()(head(keras.layers.TimeDistributed(cnn)(clip)))  # (N, T, 6) in
    explainer = Explainer(keras.Model(clip, keras.layers.Dense(3, activation="softmax")(features)))
    with pytest.raises(ValueError, match=f"cannot guide the one of layer .*{re.escape(named)}"):
        explainer.explain(clips, methods="guided_backprop", layer="conv1")
    assert explainer.explain(clips, methods="saliency", layer="conv1").maps["saliency"].max() == 1


def _numpy_peak(run) -> int:
    """NumPy's peak (tracemalloc) while `run()` runs, after a first run built its compiled passes."""
    import tracemalloc

    run()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def seven_frames():
    """A model of 7 frames and one of its clips: 7 jobs and the unchanged row fill a call of 8
    clips of Ablation-CAM and occlusion."""
    return _gap_model(2, frames=7), data.synthetic_dataset(n=1, frames=7, size=SIZE, seed=5)[0][0].astype(np.float32)


@pytest.mark.parametrize("name, once, more", [
    ("scorecam", dict(scorecam_channels=1), dict(scorecam_channels=4)),           # 7 and 28 masked clips
    ("ablationcam", dict(ablation_channels=1), dict(ablation_channels=4)),        # 7 and 28 probes
    ("occlusion", dict(occlusion_patch=SIZE, occlusion_stride=SIZE),              # 7 and 28 occluded clips
     dict(occlusion_patch=SIZE // 2, occlusion_stride=SIZE // 2)),
    ("rise", dict(rise_masks=8), dict(rise_masks=32)),
    ("smoothgrad", dict(smoothgrad_samples=8), dict(smoothgrad_samples=32)),     # gradient passes of 8 clips
    ("integrated_gradients", dict(ig_steps=8), dict(ig_steps=32))])
def test_a_method_holds_one_call_of_clips_whatever_its_count(seven_frames, name, once, more):
    """NumPy's peak for a count that fills one call of 8 clips (`clips_per_call`, or a gradient
    pass of `frames_per_pass` frames) and for one that needs four: the same, as one call's clips
    are released before the next call's are made. (Before, two calls' clips were at the peak:
    this failed for Ablation-CAM, RISE, SmoothGrad and Integrated Gradients.)"""
    model, clip = seven_frames
    sampled = name in ("smoothgrad", "integrated_gradients")
    explainer = Explainer(model, frames_per_pass=7 * 8 if sampled else 7)
    assert (explainer.clips_per_pass() if sampled else explainer.clips_per_call()) == 8
    one_call_of_clips = 8 * clip.nbytes
    small, large = (_numpy_peak(lambda: explainer.explain(clip, methods=name, layer="conv2", **options))
                    for options in (once, more))
    assert small > one_call_of_clips  # the call's clips are in the peak
    assert large < small + 0.25 * one_call_of_clips, (small, large)


def test_a_deletion_curve_holds_one_group_of_changed_clips_whatever_the_clips(seven_frames, monkeypatch):
    """With VARIANT_BYTES set to one clip's 17 variants (16 steps), the curve of 2 clips (two
    groups) peaks as the curve of one, but for what it keeps of each clip (its fill, its ranks,
    its map): one group of changed clips at a time."""
    from tdexplain.metrics import faithfulness

    model, clip = seven_frames
    explainer = Explainer(model, frames_per_pass=7)
    monkeypatch.setattr(faithfulness, "VARIANT_BYTES", 17 * clip.nbytes)
    maps = np.random.default_rng(0).random((2,) + clip.shape[:3]).astype(np.float32)
    clips = np.repeat(clip[None], 2, axis=0)
    small = _numpy_peak(lambda: faithfulness.deletion_curve(explainer, clips[:1], maps[:1], target=0, progress=False))
    large = _numpy_peak(lambda: faithfulness.deletion_curve(explainer, clips, maps, target=0, progress=False))
    group, kept_per_clip = 17 * clip.nbytes, clip.nbytes + 2 * maps[0].nbytes + maps[0].nbytes  # fill, ranks, map
    assert small > group and large < small + kept_per_clip + 0.25 * group, (small, large)
