"""The reviewer's app (`make app`), driven through its widgets without a browser."""

import base64
import html
import json
import re
import shutil

import numpy as np
import pytest

from tdexplain import explain_video, read_video
from tdexplain.interfaces import app
from tdexplain.workbook import data, models


@pytest.fixture(scope="module")
def explained():
    reviewer = app.ReviewerApp("shooting_01")
    reviewer.method.value = "gradcam"
    reviewer.layer.value = "block4_conv4"
    reviewer.run.click()
    return reviewer


def test_explain_shows_the_verdict_the_windows_the_frames_and_the_files(explained):
    summary = json.loads((explained.out / "summary.json").read_text())
    assert summary == explained.summary
    assert summary["method"] == "gradcam" and summary["layer"] == "block4_conv4"
    verdict = summary["verdict"]
    assert f"<b>shooting</b> (p = {verdict['probability']:.2f}) in window {verdict['window']}" in explained.verdict.value
    assert "note:" not in explained.verdict.value  # a shipped sample: the demo model knows it
    assert explained.timeline.value == (explained.out / "timeline.png").read_bytes()
    # the frames are the overlay video's, with their heat and contours; the slider starts at the verdict
    overlay = list(data.iter_frames(explained.out / "overlay.mp4"))
    assert explained.frame_count == len(overlay) == summary["overlay_frames"]
    assert explained.frame.value == verdict["first_frame"] and explained.frame.max == len(overlay) - 1
    explained.frame.value = 2
    assert explained.frame_caption.value.startswith("frame 2 (")
    shown = app.cv2.imdecode(np.frombuffer(explained.picture.value, np.uint8), app.cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown[..., ::-1], overlay[2])
    # the downloads are the files themselves
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', explained.downloads.value))
    assert base64.b64decode(links["overlay.mp4"]) == (explained.out / "overlay.mp4").read_bytes()
    assert json.loads(base64.b64decode(links["summary.json"])) == summary


def test_pixel_methods_disable_the_layer_and_errors_stay_in_the_status_line(tmp_path):
    reviewer = app.ReviewerApp("fight_01")
    reviewer.method.value = "saliency"
    assert reviewer.layer.disabled
    assert reviewer.explain() is not None and reviewer.verdict.value and reviewer.picture.value
    first_files = reviewer.out
    reviewer.video.value = str(tmp_path / "missing.mp4")
    assert reviewer.explain() is None and not first_files.exists()  # the last run's files are removed
    assert "no sample clip or video file" in reviewer.status.value and "missing.mp4" in reviewer.status.value
    assert reviewer.verdict.value == "" and reviewer.picture.value == b"" and reviewer.frame.disabled
    reviewer.model.value = str(tmp_path / "nope.keras")
    assert "cannot load the model" in reviewer.status.value and reviewer.run.disabled
    reviewer.model.value = models.DEMO_MODEL
    assert not reviewer.run.disabled and reviewer.status.value == ""


def test_the_demo_model_on_footage_it_never_saw_says_so(tmp_path):
    clip = read_video(data.sample_path("clips/normal_01.mp4"), frames=8, size=64)
    path = data.write_video(tmp_path / "my_camera.mp4", np.concatenate([clip, clip]))
    reviewer = app.ReviewerApp(str(path))
    reviewer.method.value = "saliency"
    assert reviewer.explain() is not None
    assert "note: " in reviewer.verdict.value and "synthetic" in reviewer.verdict.value


def test_a_model_with_two_outputs_and_another_input_is_chosen_and_held_in_the_app(two_io_model, tmp_path):
    """The app shows the outputs to choose from and a field for the other input; without its
    file it says which input needs a value, with it the result is the command line's."""
    model_path, meta_path = two_io_model
    fight = str(data.sample_path("clips/fight_01.mp4"))
    reviewer = app.ReviewerApp(fight, model_path=str(model_path))
    assert reviewer.output.options == ("action", "anomaly") and reviewer.output.layout.display is None
    assert reviewer.clip_input.layout.display == "none"  # one input of clips: no choice shown
    assert reviewer.target.options == ("predicted", "calm", "fight") and reviewer.layer.options == ("rescale", "conv")
    [meta] = reviewer.other_inputs.children
    assert meta.description == "meta" and "shape (5,)" in meta.placeholder
    reviewer.method.value = "saliency"
    assert reviewer.explain() is None
    assert ("the model's input 'meta' needs a value: a .npy file of one sample, shape (5,)"
            in html.unescape(reviewer.status.value))
    meta.value = str(meta_path)
    shown = reviewer.explain()
    kept = dict(reviewer._explainer_for)
    assert reviewer.explain() == shown | {"started": reviewer.summary["started"]}
    assert reviewer._explainer_for == kept  # the same explainer again: its compiled passes reused
    expected = explain_video(fight, tmp_path, model_path=str(model_path), method="saliency", progress=False,
                             output="action", other_inputs={"meta": np.load(meta_path)})
    assert shown["model"]["output"] == "action" and shown["model"]["other_inputs"] == expected["model"]["other_inputs"]
    with pytest.raises(ValueError, match="output, clip_input and other_inputs belong to the explainer"):
        explain_video(fight, tmp_path, explainer=next(iter(kept.values())), output="action")
    assert [w["probabilities"] for w in shown["windows"]] == [w["probabilities"] for w in expected["windows"]]
    np.save(tmp_path / "other.npy", np.full(5, 3.0, np.float32))  # the held value reaches the model
    meta.value = str(tmp_path / "other.npy")
    other = reviewer.explain()
    assert other["windows"][0]["probabilities"] != shown["windows"][0]["probabilities"]
    assert other["model"]["other_inputs"]["meta"]["sha256_16"] != shown["model"]["other_inputs"]["meta"]["sha256_16"]
    reviewer.output.value = "anomaly"  # the other output: its own classes; the file typed stays
    assert reviewer.target.options == ("predicted", "class_0")
    assert reviewer.other_inputs.children[0].value == str(tmp_path / "other.npy")
    np.save(tmp_path / "wrong.npy", np.zeros(3, np.float32))
    reviewer.other_inputs.children[0].value = str(tmp_path / "wrong.npy")
    assert reviewer.explain() is None
    assert "other_inputs['meta'] must be one sample of shape (5,), got shape (3,)" in html.unescape(reviewer.status.value)
    np.savez(tmp_path / "two.npz", a=np.zeros(5), b=np.ones(5))
    reviewer.other_inputs.children[0].value = str(tmp_path / "two.npz")
    assert reviewer.explain() is None and "is an .npz archive" in reviewer.status.value
    shutil.copy(model_path, tmp_path / "same_inputs.keras")  # another model: its own fields, empty
    reviewer.model.value = str(tmp_path / "same_inputs.keras")
    assert [(f.description, f.value) for f in reviewer.other_inputs.children] == [("meta", "")]
    reviewer.model.value = str(tmp_path / "missing.keras")  # nothing of the last model to choose
    assert "cannot load the model" in reviewer.status.value and reviewer.run.disabled
    assert reviewer.output.options == reviewer.clip_input.options == reviewer.layer.options == ()
    assert reviewer.output.layout.display == "none" and reviewer.other_inputs.children == ()
    reviewer.model.value = models.DEMO_MODEL  # one output, one input: no choice shown
    assert reviewer.output.layout.display == "none" and reviewer.other_inputs.children == ()
    assert reviewer.target.options == ("predicted", "normal", "fight", "shooting") and not reviewer.run.disabled


def test_a_model_with_two_clip_inputs_lets_the_reviewer_choose_which_one_the_video_feeds(tmp_path):
    """The clip input is chosen in the app; the other one becomes a field, held from its file."""
    import keras

    keras.utils.set_random_seed(3)
    rgb, flow = keras.Input((4, 32, 32, 3), name="rgb"), keras.Input((4, 32, 32, 3), name="flow")
    cnn = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                            keras.layers.Conv2D(2, 3, activation="relu", name="c"), keras.layers.Flatten()])
    # the streams weigh differently, so which one the video feeds changes the answer
    joined = keras.layers.TimeDistributed(cnn)(keras.layers.Add()([rgb, keras.layers.Rescaling(0.25)(flow)]))
    model = keras.Model([rgb, flow], keras.layers.Dense(2, activation="softmax")(keras.layers.GRU(2)(joined)))
    model.save(tmp_path / "streams.keras")
    np.save(tmp_path / "still.npy", np.full((4, 32, 32, 3), 90, np.float32))
    fight = str(data.sample_path("clips/fight_01.mp4"))
    reviewer = app.ReviewerApp(fight, model_path=str(tmp_path / "streams.keras"))
    assert reviewer.clip_input.options == ("rgb", "flow") and reviewer.clip_input.layout.display is None
    assert [f.description for f in reviewer.other_inputs.children] == ["flow"]
    reviewer.clip_input.value = "flow"
    [held] = reviewer.other_inputs.children
    assert held.description == "rgb" and "shape (4, 32, 32, 3)" in held.placeholder
    held.value = str(tmp_path / "still.npy")
    reviewer.method.value = "saliency"
    shown = reviewer.explain()
    expected = explain_video(fight, tmp_path / "cli", model_path=str(tmp_path / "streams.keras"),
                             method="saliency", progress=False, clip_input="flow",
                                   other_inputs={"rgb": np.load(tmp_path / "still.npy")})
    assert shown["model"]["clip_input"] == "flow"
    assert [w["probabilities"] for w in shown["windows"]] == [w["probabilities"] for w in expected["windows"]]
    reviewer.clip_input.value = "rgb"  # the video into the other stream, the file held in flow
    reviewer.other_inputs.children[0].value = str(tmp_path / "still.npy")
    assert reviewer.explain()["windows"][0]["probabilities"] != shown["windows"][0]["probabilities"]
