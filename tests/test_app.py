"""The reviewer's app (`make app`), driven through its widgets without a browser, and the Voila
server `make app` starts, on a notebook that starts no model."""

import functools
import html
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tdexplain import explain_video, read_video
from tdexplain.interfaces import app, video
from tdexplain.workbook import data, models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def notebook_folder(tmp_path_factory):
    """The app writes its files under the notebook's folder, the kernel's working folder: here a
    temporary one, not the repository."""
    folder, before = tmp_path_factory.mktemp("notebook_folder"), os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(before)


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
    # which heat the frames show: method, layer and class
    assert html.unescape(explained.verdict.value).endswith(
        "; 1 window; heat: Grad-CAM @ block4_conv4 for each window's predicted class")
    assert "note:" not in explained.verdict.value  # a shipped sample: the demo model knows it
    assert explained.timeline.value == (explained.out / "timeline.png").read_bytes()
    # the frames are the overlay video's, with their heat and contours; the slider starts at the verdict
    overlay = list(data.iter_frames(explained.out / "overlay.mp4"))
    assert explained.frame_count == len(overlay) == summary["overlay_frames"]
    assert explained.frame.value == verdict["first_frame"] and explained.frame.max == len(overlay) - 1
    explained.frame.value = 2
    window = summary["windows"][0]
    assert html.unescape(explained.frame_caption.value) == (
        f"frame 2 (0.25 s), window 0: shooting (p = {window['probabilities']['shooting']:.2f}); "
        f"heat: Grad-CAM @ block4_conv4 for '{window['explained_class']}'")
    shown = app.cv2.imdecode(np.frombuffer(explained.picture.value, np.uint8), app.cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown[..., ::-1], overlay[2])
    # the downloads link the files, under the notebook's folder that JupyterLab and Voila serve
    links = dict(re.findall(r'download="([^"]+)" href="([^"]+)"', explained.downloads_html))
    assert {name: (Path.cwd() / href).resolve() for name, href in links.items()} == \
        {name: (explained.out / name).resolve() for name in ("overlay.mp4", "summary.json")}
    assert explained.out.parent == Path.cwd().resolve() / "explained"


def _no_result_offered(reviewer) -> bool:
    """No picture (not even a broken one), no frame to choose, no verdict, no file."""
    return ([image.layout.display for image in (reviewer.timeline, reviewer.picture)] == ["none", "none"]
            and reviewer.frame.disabled and reviewer.frame.max == 0 and reviewer.verdict.value == ""
            and reviewer.frame_caption.value == "" and reviewer.downloads_html == "")


def _is_error(status: str) -> bool:
    return status.startswith('<span class="tdexplain-error" style="color: #c62828"><b>error:</b> ')


def test_pixel_methods_disable_the_layer_and_errors_stay_in_the_status_line(tmp_path):
    reviewer = app.ReviewerApp("fight_01")
    assert _no_result_offered(reviewer)  # before the first result
    reviewer.method.value = "saliency"
    assert reviewer.layer.disabled
    assert reviewer.explain() is not None and reviewer.verdict.value and reviewer.picture.value
    assert not _no_result_offered(reviewer) and reviewer.picture.layout.display is None and reviewer.frame.max == 23
    assert "heat: saliency (pixels) for" in reviewer.verdict.value
    first_files = reviewer.out
    reviewer.video.value = str(tmp_path / "missing.mp4")
    assert reviewer.explain() is None and not first_files.exists()  # the last run's files are removed
    assert _is_error(reviewer.status.value)  # in red, naming the video
    assert html.unescape(reviewer.status.value).endswith(  # the message names the path once
        f"error:</b> no sample clip or video file '{tmp_path / 'missing.mp4'}'; samples: "
        f"{', '.join(app.sample_clips())}</span>")
    assert _no_result_offered(reviewer) and reviewer.picture.value == b""
    reviewer.model.value = str(tmp_path / "nope.keras")
    assert "cannot load the model" in reviewer.status.value and reviewer.run.disabled
    assert _is_error(reviewer.status.value) and "nope.keras" in reviewer.status.value
    reviewer.model.value = models.DEMO_MODEL
    assert not reviewer.run.disabled and reviewer.status.value == ""


def test_the_demo_model_on_footage_it_never_saw_says_so(tmp_path):
    clip = read_video(data.sample_path("clips/normal_01.mp4"), frames=8, size=64)
    path = data.write_video(tmp_path / "my_camera.mp4", np.concatenate([clip, clip]))
    reviewer = app.ReviewerApp(str(path))
    reviewer.method.value = "saliency"
    assert reviewer.explain() is not None
    # right under the verdict, in the verdict's own box
    said, note = reviewer.verdict.value.split("<br>")
    assert said.startswith("my_camera.mp4: ") and "heat: saliency (pixels)" in said
    assert html.unescape(note) == f'<span class="tdexplain-note" style="color: #b45309">note: {video.DEMO_NOTE}</span>'


def test_explain_counts_the_windows_as_they_are_done_and_clears_the_last_result_at_once(tmp_path):
    """While a video is explained: windows done / total in the bar and the status line, after
    each window; the last video's result is gone from the moment Explain is pressed."""
    frames = data.synthetic_clip("fight", frames=44, size=64, seed=1).frames
    path = data.write_video(tmp_path / "long.mp4", frames)  # 8 fps: 24 frames every 8, and a tail: 4 windows
    reviewer = app.ReviewerApp("fight_01")
    reviewer.method.value = "saliency"
    assert reviewer.explain() is not None and not _no_result_offered(reviewer)
    seen = []
    reviewer.progress.observe(lambda change: seen.append(
        (change["new"], reviewer.progress.max, reviewer.progress.layout.display, reviewer.status.value,
         _no_result_offered(reviewer), reviewer.run.disabled)), names="value")
    reviewer.video.value = str(path)
    summary = reviewer.explain()
    assert len(summary["windows"]) == 4
    assert seen == [(done, 4, None, f"explaining long.mp4: {done} of 4 windows done...", True, True)
                    for done in range(5)]
    assert reviewer.progress.layout.display == "none" and reviewer.status.value == ""
    assert not _no_result_offered(reviewer) and not reviewer.run.disabled


def _links(reviewer) -> dict:
    return dict(re.findall(r'download="([^"]+)" href="([^"]+)"', reviewer.downloads_html))


def test_the_page_holds_links_to_the_files_not_their_bytes(tmp_path, monkeypatch):
    """The downloads' HTML does not grow with the files; under Voila the links are Voila's file
    addresses, which app/voila.py allows."""
    monkeypatch.setenv("VOILA_BASE_URL", "/base/")  # what Voila tells its kernels
    reviewer = app.ReviewerApp("fight_01")
    reviewer.method.value = "saliency"
    reviewer.explain()
    small, small_page = (reviewer.out / "overlay.mp4").stat().st_size, reviewer.downloads_html
    noise = np.random.default_rng(0).integers(0, 256, (24, 288, 352, 3), np.uint8)  # compresses badly
    reviewer.video.value = str(data.write_video(tmp_path / "noise.mp4", noise))
    reviewer.explain()
    large, large_page = (reviewer.out / "overlay.mp4").stat().st_size, reviewer.downloads_html
    assert large > 1_000_000 and large > 20 * small
    assert abs(len(large_page) - len(small_page)) <= 12 and len(large_page) < 600  # the links and sizes only
    served = _served_config()["VoilaConfiguration"]["file_allowlist"]
    for name, href in _links(reviewer).items():
        relative = href.removeprefix("/base/voila/files/")
        assert (Path.cwd() / relative).resolve() == (reviewer.out / name).resolve()
        assert any(re.fullmatch(pattern, relative) for pattern in served), (relative, served)


def test_the_app_refuses_a_folder_the_server_cannot_serve(tmp_path):
    with pytest.raises(ValueError, match="out_root must be inside the notebook's folder"):
        app.ReviewerApp("fight_01", out_root=tmp_path.parent / "elsewhere")


def _app_command(port: int, notebook=None) -> list:
    """`make app`'s command, from the Makefile, with this Python, on `port` (and another notebook)."""
    recipe = re.search(r"^app:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    words = shlex.split(recipe.replace("$(BIN)/voila", f"{sys.executable} -m voila").replace("$(APP_PORT)", str(port)))
    return [str(notebook) if word == "app/reviewer.ipynb" and notebook else word for word in words]


@functools.cache
def _served_config() -> dict:
    """The configuration `make app` serves the app with (Voila prints it and stops)."""
    done = subprocess.run(_app_command(8866) + ["--Voila.show_config_json=True"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_make_app_culls_kernels_no_page_is_connected_to():
    kernels = _served_config()["MappingKernelManager"]
    assert 0 < kernels["cull_idle_timeout"] <= 1800 and 0 < kernels["cull_interval"] <= kernels["cull_idle_timeout"]
    assert kernels["cull_connected"] is False and kernels["cull_busy"] is False
    assert _served_config()["VoilaConfiguration"]["preheat_kernel"] is False  # no kernel waits for a visit


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_server_culls_left_pages_serves_the_explanations_and_asks_no_cdn(tmp_path):
    """`make app`'s command on a notebook without a model, its culling shortened to seconds: two
    visits start two kernels, gone once idle with no page connected; the files of an explanation
    are served, nothing else of the folder; the page asks nothing of another host."""
    notebook = tmp_path / "reviewer.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ready')")]), notebook)
    folder = tmp_path / "explained" / "tdexplain_ab12cd_x"
    folder.mkdir(parents=True)
    overlay = np.random.default_rng(0).bytes(50_000)
    (folder / "overlay.mp4").write_bytes(overlay)
    (folder / "notes.txt").write_text("not a download")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = _app_command(port, notebook) + ["--Voila.ip=127.0.0.1", "--MappingKernelManager.cull_idle_timeout=2",
                                              "--MappingKernelManager.cull_interval=1"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                assert _get(f"{url}/voila/files/explained/tdexplain_ab12cd_x/overlay.mp4") == overlay
                break
            except urllib.error.URLError:
                time.sleep(0.25)
        else:
            pytest.fail(f"make app's command did not start: {shlex.join(command)}")
        for forbidden in ("explained/tdexplain_ab12cd_x/notes.txt", "reviewer.ipynb"):
            assert _status(f"{url}/voila/files/{forbidden}") == 403
        pages = [_get(f"{url}/").decode() for _ in range(2)]
        for page in pages:
            assert "ready" in page
            assert not re.findall(r'<(?:link|script)[^>]+(?:href|src)="(?:https?:)?//', page)  # nothing from a CDN
        kernels = [re.search(r'"kernelId": "([0-9a-f-]+)"', page).group(1) for page in pages]
        assert [_status(f"{url}/api/kernels/{kernel}") for kernel in kernels] == [200, 200]
        deadline = time.monotonic() + 30
        while any(_status(f"{url}/api/kernels/{k}") == 200 for k in kernels) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [_status(f"{url}/api/kernels/{kernel}") for kernel in kernels] == [404, 404]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


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
    assert "video" not in reviewer.status.value  # the input is at fault, not the video
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
