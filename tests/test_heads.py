"""Heads: the score each method explains, read from the model's output layer.

Every method explains the logit (the output layer's pre-activation: a softmax or sigmoid Dense
layer's, a Softmax or Activation layer's input, a linear layer's output), but RISE and the
deletion / insertion curves, which read the probability (the model's softmax or sigmoid output;
for a linear head, the softmax of its outputs). Each is checked against the models' own
outputs: plain autodiff of the linear layer and `model.predict` of the variants.
"""

import keras
import numpy as np
import pytest
from keras import layers

from tdexplain import Explainer
from tdexplain.engine.backend import gradient
from tdexplain.engine.maps import blurred
from tdexplain.methods import perturbations
from tdexplain.metrics import faithfulness
from tdexplain.workbook import data, temporal

FRAMES, SIZE = 4, 32
pytestmark = pytest.mark.both_backends


def _logit_model(units: int, seed: int = 4) -> keras.Model:
    """TimeDistributed(a ReLU convolution, pooled) -> GRU -> Dense(units), no activation."""
    keras.utils.set_random_seed(seed)
    frame = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(layers.Rescaling(1 / 255)(frame))
    cnn = keras.Model(frame, layers.GlobalAveragePooling2D()(x), name="cnn")
    clips = keras.Input((FRAMES, SIZE, SIZE, 3))
    features = layers.GRU(6, name="gru")(layers.TimeDistributed(cnn, name="td")(clips))
    dense = layers.Dense(units, name="logits")
    model = keras.Model(clips, dense(features))
    dense.bias.assign(np.linspace(1, -3, units).astype(np.float32))  # a clearly negative logit
    return model


def _ending_in(logit_model: keras.Model, activation: str, as_layer: bool) -> keras.Model:
    """The same layers and weights with `activation` after the logits: an Activation layer, or
    a copy of the last Dense layer with that activation."""
    if as_layer:
        return keras.Model(logit_model.inputs, layers.Activation(activation)(logit_model.outputs[0]))
    dense = logit_model.layers[-1]
    head = layers.Dense(dense.units, activation=activation, name=f"{activation}_dense")
    output = head(dense.input)
    head.set_weights(dense.get_weights())
    return keras.Model(logit_model.inputs, output)


@pytest.fixture(scope="module")
def clips():
    return data.synthetic_dataset(n=2, frames=FRAMES, size=SIZE, seed=7)[0].astype(np.float32)


def _predict(model, clips) -> np.ndarray:
    return np.asarray(model.predict(clips, verbose=0))


def test_a_linear_head_is_explained_like_the_same_model_with_a_softmax(clips):
    linear = _logit_model(3)
    logits = _predict(linear, clips)
    assert (logits < 0).any() and (logits > 0).any()  # a negative logit is explained too
    softmax = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    twins = [linear, _ending_in(linear, "softmax", as_layer=True), _ending_in(linear, "softmax", as_layer=False),
             keras.Model(linear.inputs, layers.Softmax()(linear.outputs[0]))]
    results = []
    for model in twins:
        explainer = Explainer(model)
        np.testing.assert_allclose(explainer.probabilities(clips), softmax, rtol=1e-5, atol=1e-6)
        for target in range(3):
            result = explainer.explain(clips, methods=("saliency", "gradcam", "rise"), layer="conv",
                                       target=target, rise_masks=4)
            expected = gradient(lambda v: linear(v)[:, target], clips)
            np.testing.assert_allclose(result.input_gradients, expected, rtol=1e-4,
                                       atol=1e-6 * np.abs(expected).max())
            np.testing.assert_allclose(result.scores, logits[:, target], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(result.probabilities, softmax, rtol=1e-5, atol=1e-6)
            assert all(result.maps[m].max() > 0 for m in result.maps)
            results.append(result)
    for first, other in zip(results[:3] * 3, results[3:]):  # each target: the four models alike
        for method in first.raw:
            np.testing.assert_allclose(other.raw[method], first.raw[method], rtol=1e-4, atol=1e-6)


def test_a_sigmoid_head_explains_its_logit_and_its_curves_read_the_sigmoid(clips):
    logit_model = _logit_model(1)
    logit = _predict(logit_model, clips)[:, 0]
    for as_layer in (False, True):
        model = _ending_in(logit_model, "sigmoid", as_layer=as_layer)
        probability = _predict(model, clips)[:, 0]
        explainer = Explainer(model)
        result = explainer.explain(clips, methods="saliency", target=0)
        np.testing.assert_allclose(result.scores, logit, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.probabilities[:, 0], probability, rtol=1e-5, atol=1e-6)
        expected = gradient(lambda v: logit_model(v)[:, 0], clips)
        np.testing.assert_allclose(result.input_gradients, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
        # The curves: nothing removed is the model's probability, everything removed is the
        # probability of the blurred clip (a softmax over one unit would be 1 everywhere).
        curve = faithfulness.deletion_curve(explainer, clips, result.maps["saliency"], target=np.zeros(len(clips), int),
                                            steps=2, progress=False)
        np.testing.assert_allclose(curve.probabilities[:, 0], probability, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(curve.probabilities[:, -1], _predict(model, blurred(clips))[:, 0], rtol=1e-4, atol=1e-6)


def test_rise_weighs_each_mask_by_the_model_s_own_output(clips):
    """RISE's published formula as a loop over masks, the weight of each mask being what the
    model outputs for the masked clip: softmax, a single sigmoid and a multi-label sigmoid."""
    count, cells, keep = 6, 4, 0.5
    logit_model = _logit_model(3)
    for model, target in ((_ending_in(logit_model, "softmax", as_layer=False), 2),
                          (_ending_in(_logit_model(1), "sigmoid", as_layer=False), 0),
                          (_ending_in(logit_model, "sigmoid", as_layer=True), 1)):
        result = Explainer(model).explain(clips, methods="rise", target=target, rise_masks=count,
                                          rise_cells=cells, rise_keep=keep, seed=2)
        masks = perturbations.rise_masks(range(count), FRAMES, SIZE, cells, keep=keep, seed=2)
        filled = blurred(clips)
        for n in range(len(clips)):
            variants = masks[..., None] * clips[n] + (1 - masks[..., None]) * filled[n]
            weights = _predict(model, variants)[:, target]
            expected = np.tensordot(weights, masks, axes=1) / (count * keep)
            np.testing.assert_allclose(result.raw["rise"][n], expected, rtol=1e-4, atol=1e-7)


def test_a_multi_label_sigmoid_head_gives_its_own_probabilities(clips):
    model = _ending_in(_logit_model(3), "sigmoid", as_layer=False)
    outputs = _predict(model, clips)
    assert not np.allclose(outputs.sum(axis=1), 1)
    explainer = Explainer(model)
    np.testing.assert_allclose(explainer.probabilities(clips), outputs, rtol=1e-5, atol=1e-6)
    curve = faithfulness.deletion_curve(explainer, clips, np.ones((len(clips), FRAMES, SIZE, SIZE)), target=[1, 2],
                                        steps=1, progress=False)
    np.testing.assert_allclose(curve.probabilities[:, 0], outputs[[0, 1], [1, 2]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_an_output_that_is_neither_probability_nor_logit_is_refused(activation):
    model = _ending_in(_logit_model(3), activation, as_layer=False)
    with pytest.raises(ValueError, match=f"output layer '{activation}_dense' ends in {activation}.*"
                       "softmax, sigmoid or no activation"):
        Explainer(model)


def test_an_output_layer_whose_scores_cannot_be_read_is_refused():
    logit_model = _logit_model(3)
    model = keras.Model(logit_model.inputs, layers.Lambda(keras.ops.softmax, name="squash")(logit_model.outputs[0]))
    with pytest.raises(ValueError, match="output layer 'squash' is a Lambda: .*Dense, Activation or Softmax"):
        Explainer(model)


def test_a_shared_output_layer_explains_the_chosen_output_s_own_node(clips):
    """One softmax Dense layer computes both outputs, from two branches: each chosen output is
    explained by the logits of its own call of the layer."""
    logit_model = _logit_model(3)
    features = logit_model.layers[-1].input
    other = layers.Dense(6, name="other")(features)
    shared = layers.Dense(3, activation="softmax", name="shared")
    model = keras.Model(logit_model.inputs, [shared(features), shared(other)])
    inputs_of_shared = keras.Model(logit_model.inputs, [features, other]).predict(clips, verbose=0)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (shared.kernel, shared.bias))
    for output, (inputs, probabilities) in enumerate(zip(inputs_of_shared, model.predict(clips, verbose=0))):
        result = Explainer(model, output=output).explain(clips, methods="saliency", target=2)
        np.testing.assert_allclose(result.scores, (inputs @ kernel + bias)[:, 2], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result.probabilities, probabilities, rtol=1e-5, atol=1e-6)


def test_the_temporal_tools_read_a_linear_head_s_probabilities(clips):
    linear = _logit_model(3)
    softmax = _ending_in(linear, "softmax", as_layer=True)
    for tool in (lambda m: temporal.memory(m, clips, target=1),
                 lambda m: temporal.probability_over_time(m, clips[0], target=1)):
        on_linear, on_softmax = tool(linear), tool(softmax)
        assert np.isfinite(on_linear).all()
        np.testing.assert_allclose(on_linear, on_softmax, rtol=1e-4, atol=1e-6)


def test_a_softmax_output_layer_named_logits_is_explained(clips):
    """The layer computing its logits must not take a name the model already has."""
    logit_model = _logit_model(3)
    model = keras.Model(logit_model.inputs, layers.Dense(3, activation="softmax", name="logits")(
        logit_model.layers[-1].input))
    assert Explainer(model).explain(clips, methods="saliency", target=0).maps["saliency"].max() == 1
