"""More shapes of video model (`tdexplain.engine.shapes`), each against an independent computation.

Every model here is a tiny linear chain, so each one has a twin written out by hand from the
same layer objects: frames through the per-frame layers (or clips through the Conv3D /
ConvLSTM2D layers) up to the explained layer, and the rest of the chain to the logits (the
softmax layer's own kernel and bias, no softmax). Grad-CAM is the keras-io recipe on the twin
(`backend.gradient` of the score with respect to the layer's output); saliency is plain
autodiff of the twin's score with respect to the clip.
"""

from dataclasses import dataclass
from typing import Callable

import cv2
import keras
import numpy as np
import pytest
from keras import layers, ops

from tdexplain import evaluate_methods, Explainer
from tdexplain.engine import graphs, registry, shapes
from tdexplain.engine.backend import gradient
from tdexplain.engine.maps import blurred, normalize_per_frame, to_frames, upsample
from tdexplain.metrics import axiomatic, catalogue, complexity, faithfulness, localization, randomization
from tdexplain.workbook import architecture, data, models

FRAMES, SIZE = 4, 32
OPTIONS = dict(smoothgrad_samples=2, ig_steps=2, scorecam_channels=2, ablation_channels=2, rise_masks=4,
               occlusion_patch=16, occlusion_stride=16)
META = np.linspace(-1, 1, 5).astype(np.float32)  # the multi-input model's other input


@dataclass
class Case:
    """A model and its hand-written twin: `frame_layers` (applied to frames, the batch being
    T frames) or `clip_layers` (applied to clips), then `head(features) -> logits`."""

    model: keras.Model
    layer: str                      # an inner layer to explain
    head: Callable
    frame_layers: list | None = None
    clip_layers: list | None = None
    kwargs: dict | None = None      # for the Explainer

    def explainer(self):
        """One explainer per case, so its compiled passes serve every test (JAX compiles slowly)."""
        if not hasattr(self, "_explainer"):
            self._explainer = Explainer(self.model, **(self.kwargs or {}))
        return self._explainer


def _logits_of(dense):
    """The pre-softmax scores of a softmax Dense layer, by its own weights."""
    return lambda x: ops.matmul(x, dense.kernel) + dense.bias


def _softmax_dense(units=3, name="probabilities"):
    return layers.Dense(units, activation="softmax", name=name)


def _vgg():
    return models._vgg19(SIZE, 0.0625, pool=False)  # a functional VGG19, block1_conv1..block5_pool


def _clip_input(name="clip"):
    return keras.Input((FRAMES, SIZE, SIZE, 3), name=name)


def sequential_backbone() -> Case:
    """TimeDistributed(Sequential([preprocess, functional VGG19, global pooling])) -> GRU."""
    vgg, preprocess, pool = _vgg(), models.VGGPreprocess(name="preprocess"), layers.GlobalAveragePooling2D(name="pool")
    backbone = keras.Sequential([keras.Input((SIZE, SIZE, 3)), preprocess, vgg, pool], name="backbone")
    gru, dense = layers.GRU(8, name="gru"), _softmax_dense()
    clip = _clip_input()
    model = keras.Model(clip, dense(gru(layers.TimeDistributed(backbone, name="td")(clip))), name="sequential_backbone")
    return Case(model, "block4_conv4", lambda f: _logits_of(dense)(gru(f)),
                frame_layers=[preprocess, *vgg.layers[1:], pool])


def functional_backbone() -> Case:
    """A functional backbone holding a Sequential preprocessing model and a functional VGG19,
    and a head that is itself a Sequential model (GRU -> Dense -> softmax)."""
    vgg, preprocess = _vgg(), models.VGGPreprocess(name="preprocess")
    frame = keras.Input((SIZE, SIZE, 3), name="frame")
    prep = keras.Sequential([keras.Input((SIZE, SIZE, 3)), preprocess], name="prep")
    pool = layers.GlobalAveragePooling2D(name="pool")
    backbone = keras.Model(frame, pool(vgg(prep(frame))), name="backbone")
    gru, hidden, dense = layers.GRU(8, name="gru"), layers.Dense(6, activation="relu", name="hidden"), _softmax_dense()
    head = keras.Sequential([keras.Input((FRAMES, backbone.output.shape[-1])), gru, hidden, dense], name="head")
    clip = _clip_input()
    model = keras.Model(clip, head(layers.TimeDistributed(backbone)(clip)), name="functional_backbone")
    return Case(model, "block3_conv2", lambda f: _logits_of(dense)(hidden(gru(f))),
                frame_layers=[preprocess, *vgg.layers[1:], pool])


def layer_by_layer() -> Case:
    """TD(Rescaling) -> TD(Conv2D) -> TD(MaxPooling2D) -> TD(Conv2D) -> TD(Flatten) -> LSTM,
    as a Sequential model."""
    frame_layers = [layers.Rescaling(1 / 255, name="rescale"),
                    layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
                    layers.MaxPooling2D(name="pool_a"),
                    layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_b"),
                    layers.Flatten(name="flat")]
    lstm, dense = layers.LSTM(8, name="lstm"), _softmax_dense()
    model = keras.Sequential([_clip_input(), *[layers.TimeDistributed(layer) for layer in frame_layers],
                              lstm, dense], name="layer_by_layer")
    return Case(model, "conv_a", lambda f: _logits_of(dense)(lstm(f)), frame_layers=frame_layers)


def _clip_layers_case(name: str, clip_layers: list, layer: str) -> Case:
    """clip -> clip_layers in turn -> softmax Dense, explained at `layer`."""
    dense = _softmax_dense()
    clip = _clip_input()
    x = clip
    for each in clip_layers:
        x = each(x)
    return Case(keras.Model(clip, dense(x), name=name), layer, _logits_of(dense), clip_layers=clip_layers)


def conv_lstm() -> Case:
    """Rescaling -> ConvLSTM2D(return_sequences=True) -> Conv3D -> global pooling -> softmax."""
    clip_layers = [layers.Rescaling(1 / 255, name="rescale"),
                   layers.ConvLSTM2D(4, 3, padding="same", return_sequences=True, name="convlstm"),
                   layers.Conv3D(5, 3, padding="same", activation="relu", name="conv3d"),
                   layers.GlobalAveragePooling3D(name="pool")]
    return _clip_layers_case("conv_lstm", clip_layers, "convlstm")


def conv3d() -> Case:
    """Conv3D -> AveragePooling3D (halves time) -> Conv3D: T' = 2 for 4 frames at conv_b.
    (Average, not max pooling: a near tie of a max flips between the compiled pass and the
    twin's eager one, and moves a 3x3x3 patch of the gradient.)"""
    clip_layers = [layers.Rescaling(1 / 255, name="rescale"),
                   layers.Conv3D(4, 3, padding="same", activation="relu", name="conv_a"),
                   layers.AveragePooling3D(2, name="pool_a"),
                   layers.Conv3D(6, 3, padding="same", activation="relu", name="conv_b"),
                   layers.GlobalAveragePooling3D(name="pool")]
    return _clip_layers_case("conv3d", clip_layers, "conv_b")


def multi_input_output() -> Case:
    """Inputs [meta (5,), clip]; outputs [action (named classes), anomaly (sigmoid)]."""
    frame_layers = [layers.Rescaling(1 / 255, name="rescale"),
                    layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
                    layers.GlobalAveragePooling2D(name="gap")]
    cnn = keras.Sequential([keras.Input((SIZE, SIZE, 3)), *frame_layers], name="cnn")
    meta, clip = keras.Input((5,), name="meta"), _clip_input()
    gru, meta_dense, joined = layers.GRU(6, name="gru"), layers.Dense(3, name="meta_dense"), layers.Concatenate(name="joined")
    action = models.ClassProbabilities(("calm", "fight"), name="action")
    anomaly = layers.Dense(1, activation="sigmoid", name="anomaly")
    x = joined([gru(layers.TimeDistributed(cnn)(clip)), meta_dense(meta)])
    model = keras.Model([meta, clip], [action(x), anomaly(x)], name="multi_io")

    def head(features):  # the meta value held for each of the clips
        meta = ops.convert_to_tensor(np.repeat(META[None], features.shape[0], axis=0))
        return _logits_of(action)(joined([gru(features), meta_dense(meta)]))

    return Case(model, "conv_a", head, frame_layers=frame_layers,
                kwargs=dict(output="action", other_inputs={"meta": META}))


def _small_cnn_case(name: str, frame_layers: list, layer: str, units: int = 3, activation="softmax") -> Case:
    """TD(Sequential(frame_layers)) -> GRU -> Dense(units, activation)."""
    cnn = keras.Sequential([keras.Input((SIZE, SIZE, 3)), *frame_layers], name="cnn")
    gru, dense = layers.GRU(8, name="gru"), layers.Dense(units, activation=activation, name="scores")
    clip = _clip_input()
    model = keras.Model(clip, dense(gru(layers.TimeDistributed(cnn, name="td")(clip))), name=name)
    return Case(model, layer, lambda f: _logits_of(dense)(gru(f)), frame_layers=frame_layers)


def _plain_cnn() -> list:
    return [layers.Rescaling(1 / 255, name="rescale"),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_b"),
            layers.GlobalAveragePooling2D(name="gap")]


def linear_head() -> Case:
    """Dense(3) without activation (trained with from_logits=True): the outputs are the logits."""
    return _small_cnn_case("linear_head", _plain_cnn(), "conv_b", activation=None)


def sigmoid_head() -> Case:
    """One sigmoid unit (a binary detector): one class, explained by its logit."""
    return _small_cnn_case("sigmoid_head", _plain_cnn(), "conv_a", units=1, activation="sigmoid")


def multi_label_head() -> Case:
    """Three independent sigmoid units (multi-label)."""
    return _small_cnn_case("multi_label_head", _plain_cnn(), "conv_b", activation="sigmoid")


def mobilenet_style() -> Case:
    """Conv -> BatchNorm -> ReLU6 -> depthwise Conv -> BatchNorm -> ReLU6 -> pointwise Conv,
    explained at the second BatchNorm, whose activations are signed. The BatchNorm statistics
    are drawn at random (fresh ones are an identity)."""
    frame_layers = [layers.Rescaling(1 / 127.5, offset=-1, name="rescale"),
                    layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False, name="conv"),
                    layers.BatchNormalization(name="bn_a"), layers.ReLU(6.0, name="relu6_a"),
                    layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise"),
                    layers.BatchNormalization(name="bn_b"), layers.ReLU(6.0, name="relu6_b"),
                    layers.Conv2D(8, 1, activation="relu", name="pointwise"),
                    layers.GlobalAveragePooling2D(name="gap")]
    case = _small_cnn_case("mobilenet_style", frame_layers, "bn_b")
    rng = np.random.default_rng(0)
    for bn in (l for l in frame_layers if isinstance(l, layers.BatchNormalization)):
        k = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, k), rng.normal(0, 0.3, k), rng.normal(0, 0.3, k),
                        rng.uniform(0.5, 2.0, k)])
    return case


BUILDERS = [sequential_backbone, functional_backbone, layer_by_layer, conv_lstm, conv3d, multi_input_output,
            linear_head, sigmoid_head, multi_label_head, mobilenet_style]
# Maps of an absolute value: not empty where the gradient is not zero.
ABSOLUTE = ("saliency", "gradient_x_input", "smoothgrad", "integrated_gradients", "guided_backprop")
# What each shape refuses, and the message that says why.
REFUSED = {"mobilenet_style": {name: "cannot guide the one of layer 'relu6_a' \\(ReLU"
                               for name in ("guided_backprop", "guided_gradcam")}}


@pytest.fixture(scope="module", params=BUILDERS, ids=lambda b: b.__name__)
def case(request):
    keras.utils.set_random_seed(BUILDERS.index(request.param))
    return request.param()


@pytest.fixture(scope="module")
def clips():
    return data.synthetic_dataset(n=2, frames=FRAMES, size=SIZE, seed=5)[0].astype(np.float32)


def _two_targets(case: Case) -> list:
    """A target for each of the two clips: classes 1 and 0 (0 twice for a single unit)."""
    return [1 % len(case.explainer().class_names), 0]


def _apply(layers_, x):
    for layer in layers_:
        x = layer(x)
    return x


def _twin(case: Case, clip, target):
    """The twin cut at the case's layer for one clip: its activations (S, h, w, K) and the
    target score as a function of them."""
    chain = case.frame_layers if case.frame_layers is not None else case.clip_layers
    cut = [layer.name for layer in chain].index(case.layer) + 1
    if case.frame_layers is not None:  # the T frames are the batch; features go back to (1, T, F)
        activations = _apply(chain[:cut], ops.convert_to_tensor(clip))
        def score(a):
            return case.head(ops.expand_dims(_apply(chain[cut:], a), 0))[0, target]
    else:
        activations = _apply(chain[:cut], ops.convert_to_tensor(clip[None]))[0]
        def score(a):
            return case.head(_apply(chain[cut:], ops.expand_dims(a, 0)))[0, target]
    return ops.convert_to_numpy(activations), score


def _twin_score(case: Case, clip, target) -> float:
    activations, score = _twin(case, clip, target)
    return float(ops.convert_to_numpy(score(activations)))


def _twin_tensors(case: Case, clip, target):
    """Activations and gradients (S, h, w, K) of the case's layer for one clip, on the twin."""
    activations, score = _twin(case, clip, target)
    return activations, gradient(score, activations)


def _twin_input_gradients(case: Case, inputs, target):
    """Input gradients (k, T, H, W, 3) of the twin's target score for k clips, in one call."""
    if case.frame_layers is not None:  # the k x T frames are the batch; features go back to (k, T, F)
        def total(v):
            features = _apply(case.frame_layers, ops.reshape(v, (-1,) + tuple(v.shape[2:])))
            return ops.sum(case.head(ops.reshape(features, (len(inputs), FRAMES, -1)))[:, target])
    else:
        def total(v):
            return ops.sum(case.head(_apply(case.clip_layers, v))[:, target])
    return gradient(total, np.asarray(inputs, np.float32))


# ---------------------------------------------------------------------- the shapes found

def test_each_shape_is_found_with_its_inner_layers(case):
    explainer = case.explainer()
    video = explainer.video
    assert case.layer in explainer.inner_layers
    assert (video.kind == "time_distributed") == (case.frame_layers is not None)
    assert (explainer.frames, explainer.size) == (FRAMES, SIZE)
    assert shapes.input_spec(case.model) == (FRAMES, SIZE)
    if case.frame_layers is not None:  # nested layers by name, and the default rule sees them
        names = [layer.name for layer in case.frame_layers]
        assert [layer.name for layer in graphs.leaf_layers(explainer.backbone)] == names
        assert shapes.default_layer(explainer.backbone) == explainer.default_layer
        assert all(a is b for a, b in zip(graphs.leaf_layers(models.backbone_of(case.model)), case.frame_layers))
    else:
        # The deepest Conv3D/ConvLSTM2D layer with at least 8x8 cells.
        assert explainer.default_layer == {"conv_lstm": "conv3d", "conv3d": "conv_b"}[case.model.name]
        assert all(name in [l.name for l in case.clip_layers] for name in explainer.inner_layers)


def test_nested_inner_layers_are_named_and_the_default_is_the_papers_rule():
    keras.utils.set_random_seed(0)
    model = sequential_backbone().model
    explainer = Explainer(model)
    assert explainer.inner_layers[:4] == ["preprocess", "block1_conv1", "block1_conv2", "block1_pool"]
    assert "block4_conv4" in explainer.inner_layers and "pool" not in explainer.inner_layers
    assert explainer.default_layer == "block3_conv4"  # 8x8 cells at 32 px, as for the flat model
    nested = model.get_layer("td").layer
    assert shapes.default_layer(nested) == "block3_conv4" and shapes.last_convolution(nested) == "block5_conv4"


# ---------------------------------------------------------------------- independent computations

def test_gradcam_equals_the_keras_recipe_on_a_twin(case, clips):
    """Per step (per frame, or per time step of a spatio-temporal layer): channel weights are
    the gradients averaged over space only."""
    explainer = case.explainer()
    targets = _two_targets(case)
    result = explainer.explain(clips, methods="gradcam", layer=case.layer, target=targets)
    for i, target in enumerate(targets):
        conv_output, grads = _twin_tensors(case, clips[i], target)
        heatmap = np.maximum(np.einsum("shwk,sk->shw", conv_output, grads.mean(axis=(1, 2))), 0)
        np.testing.assert_allclose(result.raw["gradcam"][i], heatmap, rtol=1e-4,
                                   atol=1e-5 * max(heatmap.max(), 1e-12))
        np.testing.assert_allclose(result.activations[i], conv_output, rtol=1e-4,
                                   atol=1e-5 * np.abs(conv_output).max())


def test_saliency_equals_autodiff_of_the_twin(case, clips):
    explainer = case.explainer()
    targets = _two_targets(case)[::-1]
    result = explainer.explain(clips, methods="saliency", layer=case.layer, target=targets)
    for i, target in enumerate(targets):
        expected = _twin_input_gradients(case, clips[i:i + 1], target)[0]
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(result.input_gradients[i], expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max())
        np.testing.assert_allclose(result.raw["saliency"][i], np.abs(expected).max(axis=-1), rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max())


@pytest.mark.both_backends
def test_every_registered_method_keeps_the_contract_or_refuses_clearly(case, clips):
    """Maps in [0, 1] at the clips' shape, each frame's peak 1 or 0, and not all empty (every
    model here has a non-zero gradient); a method that cannot explain the shape is refused with
    the reason (a layer with fewer time steps than frames, a ReLU6 Guided Backprop cannot
    guide)."""
    explainer = case.explainer()
    steps = explainer.video.steps(case.layer)
    refused = REFUSED.get(case.model.name, {})
    usable = [m for m in registry.REGISTRY
              if (steps == FRAMES or not registry.get(m).pairs_steps_with_frames) and m not in refused]
    result = explainer.explain(clips, methods=usable, layer=case.layer, **OPTIONS)
    for name in usable:
        maps = result.maps[name]
        assert maps.shape == (2, FRAMES, SIZE, SIZE) and maps.dtype == np.float32, name
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, name
        peaks = maps.max(axis=(2, 3))
        assert np.all((peaks == 1) | (peaks == 0)), name
        # Empty only where the method found nothing positive (a perturbation that only raises
        # the score, weights all negative); the absolute gradients are never all zero here.
        for i, raw in enumerate(result.raw[name]):
            assert (peaks[i] == 1).any() or (raw.max() <= 0 and name not in ABSOLUTE), (name, i)
        if registry.get(name).uses_layer:  # at the layer's steps (Guided Grad-CAM: at the frames)
            assert result.raw[name].shape[:2] in ((2, steps), (2, FRAMES)), name
            assert name not in result.channel_weights or result.channel_weights[name].shape[1] == steps, name
    for name in set(registry.REGISTRY) - set(usable) - set(refused):
        with pytest.raises(ValueError, match=f"{name} masks frame t with step t.*'{case.layer}' has "
                           f"{steps} time steps for the clip's {FRAMES} frames"):
            explainer.explain(clips, methods=name, layer=case.layer, **OPTIONS)
    for name, reason in refused.items():
        with pytest.raises(ValueError, match=reason):
            explainer.explain(clips, methods=name, layer=case.layer, **OPTIONS)


def _probabilities_by_hand(case: Case, clips) -> np.ndarray:
    """The chosen output's probabilities from the model's own prediction: a softmax or sigmoid
    output as it is, a linear head's outputs through a softmax."""
    outputs = case.model.predict([META[None].repeat(len(clips), 0), clips] if case.kwargs else clips, verbose=0)
    output = np.asarray(outputs[0] if case.kwargs else outputs)
    if case.explainer().head != "linear":
        return output
    exp = np.exp(output - output.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.both_backends
def test_every_metric_runs_on_every_shape(case, clips):
    """Every metric of the catalogue on every shape, each checked against what it must give:
    the curves start at the model's own probability of the target (softmax, sigmoid, or the
    softmax of a linear head) and end at the fully removed (black) clip's; label randomization
    against the same model finds the same maps; completeness's score difference and attribution
    sum are the twin's logits and its Integrated Gradients; the table has every column of the
    catalogue."""
    explainer, target = case.explainer(), [0, 0]
    shape = {k: v for k, v in (case.kwargs or {}).items() if k in ("output", "clip_input", "other_inputs")}
    masks = np.zeros((2, FRAMES, SIZE, SIZE), bool)
    masks[:, :, 8:24, 8:24] = True
    events = np.zeros((2, FRAMES), bool)
    events[:, 1:3] = True
    chosen = ("saliency", "gradcam")
    table = evaluate_methods(explainer, clips, masks, chosen, layer=case.layer, target=target, steps=4,
                             progress=False, robustness_samples=1, invariance_shift=-127.5)
    columns = {m.column for m in catalogue.METRICS.values() if m.column}
    assert columns <= set(table.columns) and np.isfinite(table[sorted(columns)].to_numpy(float)).all()
    assert (table[["max_sensitivity", "local_lipschitz"]].to_numpy() >= 0).all()
    expected = _probabilities_by_hand(case, clips)[:, 0]
    for name in chosen:
        np.testing.assert_allclose(table.attrs["curves"][name]["deletion"].probabilities[:, 0], expected,
                                   rtol=1e-4, atol=1e-6)
    maps = table.attrs["maps"]["gradcam"]
    black = faithfulness.deletion_curve(explainer, clips, maps, target=target, steps=2, fill="black", progress=False)
    removed = _probabilities_by_hand(case, np.zeros_like(clips))[:, 0]  # every pixel removed: black clips
    np.testing.assert_allclose(black.probabilities[:, [0, -1]], np.stack([expected, removed], 1), rtol=1e-4,
                               atol=1e-6)
    importance = maps.sum(axis=(2, 3))
    frames = faithfulness.frame_deletion_curve(explainer, clips, importance, target=target, progress=False)
    np.testing.assert_allclose(frames.probabilities[:, 0], expected, rtol=1e-4, atol=1e-6)
    for score in (localization.temporal_pointing_game(importance, events), localization.temporal_energy_share(importance, events),
                  complexity.sparseness(maps), complexity.entropy(maps)):
        assert np.isfinite(score).all()
    assert np.all(localization.grid_bound(masks, cells=4)["pointing_game"] == 1)  # the mask's cells hold its peak
    response = localization.evidence_response(explainer, clips, blurred(clips), masks, layer=case.layer)
    assert response["maps"].shape == (2, FRAMES, SIZE, SIZE) and np.isfinite(response["energy_inside"]).all()
    found = axiomatic.completeness(explainer, clips, target=target, steps=4)
    black = np.zeros_like(clips[0])
    for i, clip in enumerate(clips):  # on the twin: its logits, and IG's midpoint sum of its gradients
        difference = _twin_score(case, clip, 0) - _twin_score(case, black, 0)
        path = np.array([0.125, 0.375, 0.625, 0.875], np.float32)[:, None, None, None, None] * clip
        mean_gradient = _twin_input_gradients(case, path, 0).mean(axis=0)
        np.testing.assert_allclose(found.score_difference[i], difference, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(found.attribution_sum[i], (clip * mean_gradient).sum(), rtol=1e-3, atol=1e-4)
    same = randomization.label_randomization(case.model, case.model, clips, methods=("saliency",), layer=case.layer,
                                             target=target, progress=False, **shape)
    assert np.all(same.spearman["saliency"] > 0.999)


def test_ablation_cam_zeroes_a_channel_of_one_time_step(clips):
    """Ablation-CAM at a Conv3D layer with 2 steps for 4 frames: each weight is the score's
    relative drop when channel k of step s is zeroed, on the twin."""
    keras.utils.set_random_seed(4)
    case = conv3d()
    result = case.explainer().explain(clips[:1], methods="ablationcam", layer="conv_b", target=1)
    activations, score = _twin(case, clips[0], 1)
    y = float(ops.convert_to_numpy(score(activations)))
    expected = np.zeros(activations.shape[::3], np.float32)  # (S, K)
    for step in range(activations.shape[0]):
        for channel in range(activations.shape[-1]):
            ablated = activations.copy()
            ablated[step, ..., channel] = 0
            expected[step, channel] = (y - float(ops.convert_to_numpy(score(ablated)))) / abs(y)
    np.testing.assert_allclose(result.channel_weights["ablationcam"][0], expected, rtol=1e-3,
                               atol=1e-4 * np.abs(expected).max())


def test_guided_backprop_guides_the_conv3d_relus(clips):
    """Guided Backprop on a Conv3D model: the twin with each Conv3D's ReLU replaced by the
    guided ReLU (`guided.guided_relu`), the head left as it is."""
    from tdexplain.engine.guided import guided_relu
    from tdexplain.methods.pixel import guided_gradients

    keras.utils.set_random_seed(4)
    case = conv3d()

    def guided_score(v):
        x = v[None]
        for layer in case.clip_layers:
            if isinstance(layer, layers.Conv3D):
                x = guided_relu(layer.convolution_op(x, layer.kernel) + layer.bias)
            else:
                x = layer(x)
        return case.head(x)[0, 0]

    guided = guided_gradients(case.explainer(), clips[:1], 0)
    expected = gradient(guided_score, clips[0])
    plain = gradient(lambda v: case.head(_apply(case.clip_layers, v[None]))[0, 0], clips[0])
    assert not np.allclose(expected, plain)  # guiding changes the gradient
    np.testing.assert_allclose(guided[0], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_a_layer_with_fewer_time_steps_is_stretched_linearly_over_the_frames(clips):
    """Conv3D after AveragePooling3D: 2 steps for 4 frames. The maps are each step's CAM brought
    to the frames by linear interpolation in time (OpenCV's resize along time) and space."""
    keras.utils.set_random_seed(4)
    case = conv3d()
    result = case.explainer().explain(clips, methods=("gradcam", "layercam"), layer="conv_b")
    for name in ("gradcam", "layercam"):
        raw = result.raw[name]
        assert raw.shape[:2] == (2, 2)
        for i in range(2):
            flat = raw[i].reshape(2, -1)
            in_time = cv2.resize(flat, (flat.shape[1], FRAMES), interpolation=cv2.INTER_LINEAR)
            expected = normalize_per_frame(upsample(in_time.reshape((FRAMES,) + raw.shape[2:]), SIZE))
            np.testing.assert_allclose(result.maps[name][i], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_frames(raw, 4)[:, [0, 3]], raw[:, [0, 1]])  # the ends
    np.testing.assert_allclose(to_frames(raw, 4)[:, 1], 0.75 * raw[:, 0] + 0.25 * raw[:, 1], rtol=1e-6)


def test_the_chosen_output_and_held_inputs_match_the_model(clips):
    """Probabilities of the chosen output equal the model's with the other input broadcast;
    the sigmoid output is explained by its logit, the sigmoid's input (log p / (1 - p))."""
    keras.utils.set_random_seed(5)
    case = multi_input_output()
    meta = np.repeat(META[None], len(clips), axis=0)
    action, anomaly = (ops.convert_to_numpy(o) for o in case.model([meta, clips]))
    explainer = case.explainer()
    assert explainer.class_names == ("calm", "fight")
    np.testing.assert_allclose(explainer.explain(clips, methods="saliency", layer=case.layer).probabilities,
                               action, rtol=1e-5)
    by_anomaly = Explainer(case.model, output=1, other_inputs={"meta": META})
    assert by_anomaly.class_names == ("class_0",) and shapes.class_names(case.model, "anomaly") == ("class_0",)
    result = by_anomaly.explain(clips, methods="saliency", target=0)
    np.testing.assert_allclose(result.probabilities, anomaly, rtol=1e-5)

    def anomaly_logit(v):
        probability = case.model([ops.convert_to_tensor(META[None]), v[None]])[1][0, 0]
        return ops.log(probability) - ops.log(1 - probability)

    expected = gradient(anomaly_logit, clips[0])
    np.testing.assert_allclose(result.input_gradients[0], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_randomization_steps_and_description_follow_the_shape(case):
    steps = randomization.randomization_steps(case.model)
    backbone = dict(randomization.randomization_steps(case.model, mode="backbone"))["backbone"]
    chain = case.frame_layers if case.frame_layers is not None else case.clip_layers
    spatio = [l for l in chain if l.weights and (case.frame_layers is not None or len(l.output.shape) == 5)]
    assert [l.name for l in backbone] == [l.name for l in spatio]
    # The head first (from the output down), then the backbone from its last layer to its first.
    assert [label for label, _ in steps][-len(backbone):] == [l.name for l in backbone[::-1]]
    assert steps[-1][1][-len(backbone):] == backbone[::-1]
    assert not any(layer in backbone for layer in steps[0][1])
    description = architecture.describe(case.model)
    assert set(l.name for l in spatio) <= set(description.backbone["layer"])
    assert description.parameters["backbone"] == sum(l.count_params() for l in backbone)
    if case.frame_layers is not None:  # the stages show the per-frame features
        assert any(stage.endswith(" / " + chain[-1].name) for stage in description.stages["stage"])


def test_input_invariance_and_the_sanity_checks_run_on_every_shape(case, clips):
    """The shifted twin computes the model's chosen output on x from x + c, whatever the shape
    (Sequential, nested, multi-input, multi-output, Conv3D, ConvLSTM2D), and saliency on it
    is the same map; the sanity checks take the same output and held inputs."""
    shape = {k: v for k, v in (case.kwargs or {}).items() if k in ("output", "clip_input", "other_inputs")}
    found = axiomatic.input_invariance(case.explainer(), clips, methods=("saliency", "gradient_x_input"),
                                       layer=case.layer)
    assert found.logit_difference < 1e-3 * max(1.0, np.abs(case.explainer().logits(clips)).max())
    assert found.spearman["saliency"].min() > 0.99 and found.spearman["gradient_x_input"].max() < 0.99
    randomized = randomization.model_randomization(case.model, clips, methods=("saliency",), mode="backbone",
                                                   layer=case.layer, progress=False, **shape)
    assert randomized.spearman["saliency"][0] == 1.0 and len(randomized.spearman["saliency"]) > 1
    again = randomization.reinitialization(case.model, clips, methods=("saliency",), layer=case.layer,
                                           progress=False, **shape)
    np.testing.assert_array_equal(again.maps["saliency"][0], randomized.maps["saliency"][0])


# ---------------------------------------------------------------------- errors that say why

def test_unsupported_models_get_one_error_listing_the_supported_shapes():
    clip = _clip_input()
    flat = keras.Model(clip, layers.Dense(2)(layers.GlobalAveragePooling3D()(clip)), name="pooled")
    with pytest.raises(ValueError, match=r"model 'pooled' has no TimeDistributed CNN, Conv3D or ConvLSTM2D "
                       r"layer; tdexplain explains: \(1\).*\(2\).*\(3\).*its inputs are: "
                                         r"clip \(None, 4, 32, 32, 3\); its layers are: global_average_pooling3d"):
        Explainer(flat)
    dense_only = keras.Model(clip, layers.LSTM(2)(layers.TimeDistributed(layers.Flatten(), name="td_flat")(clip)),
                             name="flattened")
    with pytest.raises(ValueError, match=r"'flattened' has TimeDistributed layers \(td_flat wrapping Flatten\) "
                       r"but none with a spatial output.*tdexplain explains"):
        Explainer(dense_only)
    left = layers.TimeDistributed(layers.Conv2D(2, 3), name="left")(clip)
    right = layers.TimeDistributed(layers.Conv2D(2, 3), name="right")(clip)
    two = keras.Model(clip, layers.Add()([left, right]), name="two_chains")
    with pytest.raises(ValueError, match=r"'two_chains' applies TimeDistributed layers to frames in more "
                       r"than one chain \(left and right\); tdexplain explains"):
        Explainer(two)
    short = keras.Model(clip, layers.ConvLSTM2D(2, 3)(clip), name="last_state")
    with pytest.raises(ValueError, match="none whose output keeps time and space.*return_sequences=False"):
        Explainer(short)


def test_outputs_and_inputs_must_be_chosen_when_ambiguous():
    keras.utils.set_random_seed(5)
    model = multi_input_output().model
    with pytest.raises(ValueError, match=r"'multi_io' has 2 outputs; choose the one to explain with "
                       r"output= \(a name or an index\): 0: 'action' \(None, 2\), 1: 'anomaly'"):
        Explainer(model, other_inputs={"meta": META})
    with pytest.raises(ValueError, match=r"output='fight' is not an output.*0: 'action'"):
        Explainer(model, output="fight", other_inputs={"meta": META})
    with pytest.raises(ValueError, match=r"takes other inputs besides the clips 'clip'; the other inputs: "
                       r"'meta' \(None, 5\); pass other_inputs="):
        Explainer(model, output="action")
    with pytest.raises(ValueError, match=r"other_inputs\['meta'\] must be one sample of shape \(5,\), got shape \(2, 5\)"):
        Explainer(model, output="action", other_inputs={"meta": np.zeros((2, 5))})
    with pytest.raises(ValueError, match=r"other_inputs names \['metadata'\], not inputs"):
        Explainer(model, output="action", other_inputs={"meta": META, "metadata": META})
    a, b = _clip_input("rgb"), _clip_input("flow")
    cnn = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layers.Conv2D(2, 3, name="c"), layers.Flatten()])
    td = layers.TimeDistributed(cnn)
    two = keras.Model([a, b], layers.Dense(2, activation="softmax")(layers.GRU(2)(td(layers.Add()([a, b])))),
                      name="two_streams")
    with pytest.raises(ValueError, match=r"'two_streams' has 2 inputs of clips.*clip_input=.*0: 'rgb'.*1: 'flow'"):
        Explainer(two)
    explainer = Explainer(two, clip_input="flow", other_inputs={"rgb": np.zeros((FRAMES, SIZE, SIZE, 3))})
    assert explainer.inner_layers == ["c"] and shapes.input_spec(two, clip_input=1) == (FRAMES, SIZE)
    from tdexplain.interfaces import widgets  # the explorer takes the clips' shape from the explainer's clip input

    explorer = widgets.Explorer(two, clip=np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8), explainer=explainer)
    assert (explorer.frames, explorer.size) == (FRAMES, SIZE)


def test_unknown_layers_list_the_inner_layers(clips):
    keras.utils.set_random_seed(0)
    explainer = sequential_backbone().explainer()
    with pytest.raises(ValueError, match=r"unknown layer 'block9_conv1'; inner layers of 'backbone' with a "
                       r"spatial output: preprocess, block1_conv1, block1_conv2"):
        explainer.explain(clips, layer="block9_conv1")
    with pytest.raises(ValueError, match="'gru' is a layer of the outer model"):
        explainer.explain(clips, layer="gru")
    lstm = conv_lstm().explainer()
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'; layers of 'conv_lstm' with a spatio-temporal "
                       r"output \(N, T', h, w, K\): rescale, convlstm, conv3d"):
        lstm.explain(clips, layer="conv9")
    with pytest.raises(ValueError, match="layer 'pool' has no spatio-temporal output"):
        lstm.explain(clips, methods="gradcam", layer="pool")
