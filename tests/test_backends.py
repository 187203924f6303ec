"""The engine on both Keras backends: every registered method under one contract, targets as
callable scores, and TensorFlow against JAX on the demo model, in a process where TensorFlow
cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from tdexplain import Explainer, load_model, METHODS, methods, read_video
from tdexplain.engine import registry, shapes
from tdexplain.methods.frames import frame_importance
from tdexplain.metrics import faithfulness
from tdexplain.workbook import data, models

pytestmark = pytest.mark.both_backends

FRAMES, SIZE = 4, 32
MODEL_SEED, CLIPS_SEED = 2, 7  # the shared fixtures' (conftest.py)
OPTIONS = dict(smoothgrad_samples=3, ig_steps=4, scorecam_channels=4, ablation_channels=4, rise_masks=8,
               occlusion_patch=16, occlusion_stride=16)
SAMPLES = ("normal_01", "fight_01", "shooting_01")


@pytest.fixture(scope="module")
def together(model, clips):
    return Explainer(model).explain(clips, methods=METHODS, layer="block3_conv2", **OPTIONS)


@pytest.fixture(scope="module")
def clip_by_clip(model):
    """One clip per pass, shared by the methods (each compiled pass is built once)."""
    return Explainer(model, frames_per_pass=FRAMES)


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_every_registered_method_keeps_the_contract(model, clips, together, clip_by_clip, name):
    """Shape, dtype, range, per-frame normalization; the same maps clip by clip as in one
    batch (chunking and batching change nothing); the same maps for the predicted class
    named explicitly as for the default."""
    maps = together.maps[name]
    assert maps.shape == (3, FRAMES, SIZE, SIZE) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    peaks = maps.max(axis=(2, 3))
    assert np.all((peaks == 1) | (peaks == 0)) and (peaks == 1).any()
    assert together.raw[name].shape[:2] == (3, FRAMES)
    if name in together.channel_weights:
        assert registry.get(name).uses_layer
        assert together.channel_weights[name].shape == (3, FRAMES, together.activations.shape[-1])
    alone = clip_by_clip.explain(
        clips[1:2], methods=name, layer="block3_conv2", target=int(together.target[1]), **OPTIONS)
    # Ablation-CAM's weights and occlusion's maps are drops between nearly equal scores: a
    # rounding that depends on the batch's size (~1e-7 of a score, seen on JAX) is ~1e-3 of a
    # small drop.
    atol = 1e-4 if name in ("ablationcam", "occlusion") else 1e-5
    np.testing.assert_allclose(alone.maps[name][0], maps[1], rtol=1e-4, atol=atol)
    raw = together.raw[name][1]  # before normalization: a scale that depends on the chunk shows here
    np.testing.assert_allclose(alone.raw[name][0], raw, rtol=1e-4, atol=atol * np.abs(raw).max())


def test_the_result_holds_each_clip_s_probabilities_and_the_predicted_class(model, together):
    assert together.probabilities.shape == (3, len(shapes.class_names(model)))
    np.testing.assert_allclose(together.probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(together.target, together.probabilities.argmax(axis=1))
    assert together.activations.shape[:2] == (3, FRAMES)
    assert {"gradcam", "scorecam"} <= set(together.channel_weights)


# Score-CAM weighs channels by the softmax of masked scores, uniform when masking a frame
# changes nothing, so it lights ignored frames; Eigen-CAM never reads the score; RISE's masks
# cover every frame at once, so an ignored frame gets each mask's score too. Properties of
# these methods, not bugs.
LIGHT_IGNORED_FRAMES = ("scorecam", "eigencam", "rise")


@pytest.fixture(scope="module")
def last_frame_only(model):
    """An explainer of a model that reads only the last frame."""
    cnn = models.backbone_of(model)
    keras.utils.set_random_seed(0)  # the same head whichever tests ran before
    clip = keras.Input((FRAMES, SIZE, SIZE, 3))
    x = keras.layers.TimeDistributed(cnn)(models.VGGPreprocess()(clip))
    x = keras.layers.Lambda(lambda f: f[:, -1])(x)
    return Explainer(keras.Model(clip, keras.layers.Dense(3, activation="softmax")(x)))


@pytest.mark.parametrize("name", [n for n in registry.REGISTRY if n not in LIGHT_IGNORED_FRAMES])
def test_frames_the_score_ignores_get_empty_maps(last_frame_only, name):
    """A model that reads only the last frame: every map of a method that follows the score
    is zero elsewhere."""
    clips = data.synthetic_dataset(n=2, frames=FRAMES, size=SIZE, seed=3)[0]
    maps = last_frame_only.explain(clips, methods=name, layer="block3_conv2", **OPTIONS).maps[name]
    assert (maps[:, :-1] == 0).all()
    lit = maps[:, -1].max(axis=(1, 2)) == 1
    # Occlusion keeps only drops of the score: a frame where every patch raises it stays dark.
    assert lit.all() or (name == "occlusion" and lit.any())


def test_a_callable_score_is_explained_as_the_difference_it_names(model, clips):
    """Gradients are linear in the score: explaining "logit 2 - logit 0" gives the difference
    of the two classes' input and activation gradients, and a target label for figures."""
    explainer = Explainer(model)

    def fight_minus_normal(logits):
        return logits[:, 2] - logits[:, 0]

    difference = explainer.explain(clips, methods=("saliency", "gradcam"), target=fight_minus_normal)
    two = explainer.explain(clips, methods="saliency", target=2)
    zero = explainer.explain(clips, methods="saliency", target=0)
    for tensor in ("input_gradients", "activation_gradients"):
        expected = getattr(two, tensor) - getattr(zero, tensor)
        np.testing.assert_allclose(getattr(difference, tensor), expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(difference.scores, two.scores - zero.scores, rtol=1e-5, atol=1e-6)
    assert difference.target_names() == ["fight_minus_normal"] * 3
    lam = explainer.explain(clips[:1], methods="saliency", target=lambda logits: logits[:, 1])
    assert lam.target_names() == ["custom score"]
    np.testing.assert_allclose(explainer.scores(clips, fight_minus_normal), difference.scores, rtol=1e-5, atol=1e-6)


def test_unknown_options_and_targets_name_what_is_valid(model, clips):
    explainer = Explainer(model)
    with pytest.raises(TypeError, match="unknown option.*smoothgrad_samples=25"):
        explainer.explain(clips, methods="saliency", smoothgrad_sample=3)
    with pytest.raises(ValueError, match="unknown class 'riot'; classes: normal, fight, shooting"):
        explainer.explain(clips, target="riot")
    with pytest.raises(ValueError, match="or a callable score"):
        explainer.explain(clips, target=7)


# ---------------------------------------------------------------------- JAX, without TensorFlow

JAX_RUN = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import conftest  # noqa: F401 - with this process's KERAS_BACKEND=jax, it blocks TensorFlow
    import numpy as np
    from tdexplain import Explainer, load_model, METHODS, read_video
    from tdexplain.methods.frames import frame_importance
    from tdexplain.metrics import faithfulness
    from tdexplain.workbook import data
    clips = np.stack([read_video(data.sample_path(f"clips/{{n}}.mp4")) for n in {samples}])
    explainer = Explainer(load_model())
    options = {options}
    result = explainer.explain(clips, methods=METHODS, **options)
    importance = frame_importance(explainer, clips)
    curve = faithfulness.deletion_curve(explainer, clips, result.maps["gradcam"], steps=4, progress=False)
    np.savez(sys.argv[1] + "/jax.npz", probabilities=result.probabilities, importance=importance,
             curve=curve.probabilities, **{{"map_" + m: result.maps[m] for m in METHODS}})
    print(json.dumps({{"backend": __import__("keras").backend.backend(),
                       "tensorflow_loaded": any(m.split(".")[0] == "tensorflow" for m in sys.modules)}}))
""")


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """The demo model's maps by every method on JAX, in a process where TensorFlow cannot be
    imported. (Training, the command line and the engine's exactness on JAX are tested by the
    JAX pass of `make test`, where TensorFlow is blocked too: see conftest.py.)"""
    out = tmp_path_factory.mktemp("jax")
    script = JAX_RUN.format(tests=str(Path(__file__).parent), options=repr(OPTIONS), samples=repr(SAMPLES))
    # XLA at its default level, as users run it (the JAX pass compiles without optimizations: conftest.py)
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_backend_optimization_level=0", "").strip()
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def test_the_jax_pass_runs_without_tensorflow():
    """What the JAX pass of `make test` runs (training, every method, the command line) runs
    where `import tensorflow` fails; on TensorFlow there is nothing to check."""
    if keras.backend.backend() != "jax":
        pytest.skip("this is the TensorFlow pass")
    with pytest.raises(ImportError, match="blocked"):
        import tensorflow  # noqa: F401
    assert not [name for name in sys.modules if name.split(".")[0] == "tensorflow"]


@pytest.mark.tensorflow_only
def test_the_jax_maps_are_made_without_tensorflow(jax_run):
    report, _ = jax_run
    assert report == {"backend": "jax", "tensorflow_loaded": False}


@pytest.mark.tensorflow_only
def test_tensorflow_and_jax_give_the_same_probabilities_and_maps(jax_run):
    """On the demo model and three sample clips: probabilities within 1e-4, every method's maps
    with per-frame correlation >= 0.999, the same frame importance and deletion curve."""
    _, out = jax_run
    on_jax = np.load(out / "jax.npz")
    clips = np.stack([read_video(data.sample_path(f"clips/{name}.mp4")) for name in SAMPLES])
    explainer = Explainer(load_model())
    result = explainer.explain(clips, methods=METHODS, **OPTIONS)
    np.testing.assert_allclose(on_jax["probabilities"], result.probabilities, atol=1e-4)
    for method in METHODS:
        a = on_jax["map_" + method].reshape(-1, result.maps[method][0, 0].size)  # one row a frame
        b = result.maps[method].reshape(a.shape)
        lit = b.std(axis=1) > 0
        assert (lit == (a.std(axis=1) > 0)).all(), method
        correlation = [np.corrcoef(x, y)[0, 1] for x, y in zip(a[lit], b[lit])]
        assert min(correlation) >= 0.999, (method, min(correlation))
    importance = frame_importance(explainer, clips)
    np.testing.assert_allclose(on_jax["importance"], importance, rtol=1e-3, atol=1e-3)
    # JAX's own map deletes the same pixels here (the backends' maps, equal to float32 rounding,
    # can order near-ties differently, and the curve would then compare two deletions)
    curve = faithfulness.deletion_curve(explainer, clips, on_jax["map_gradcam"], steps=4, progress=False)
    np.testing.assert_allclose(on_jax["curve"], curve.probabilities, atol=1e-4)


def test_the_readme_lists_the_registered_methods():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert methods.markdown_table() in readme, "run `python -m tdexplain.methods` and paste its table"

