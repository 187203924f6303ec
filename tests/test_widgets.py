"""The explorers' callbacks, without a browser."""

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tdexplain import Explainer, explain_video, load_model, read_video
from tdexplain.interfaces import contours, viz, widgets
from tdexplain.workbook import data, models


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def explorer(model):
    return widgets.Explorer(model, "shooting_01")


def test_samples_are_listed():
    assert list(widgets.sample_clips()) == ["fight_01", "fight_02", "normal_01", "normal_02",
                                            "shooting_01", "shooting_02"]


def test_view_draws_the_library_s_map_and_contours(explorer, model):
    fig = explorer.view(frame=3, method="layercam", layer="block4_conv4", levels=(0.5,), opacity=0.6,
                        display_size=64)
    image = fig.axes[0].images[0].get_array()
    clip = read_video(data.sample_path("clips/shooting_01.mp4"), frames=8, size=64)
    heatmap = Explainer(model).explain(clip, methods="layercam", layer="block4_conv4").maps["layercam"][0, 3]
    expected = contours.draw(viz.heat_overlay(clip[3], heatmap, alpha=0.6), contours.extract(heatmap, levels=(0.5,)))
    np.testing.assert_array_equal(np.asarray(image), expected)
    bars = [patch.get_width() for patch in fig.axes[1].patches]
    np.testing.assert_allclose(sum(bars), 1, atol=1e-5)
    assert "block4_conv4" in fig.axes[0].get_title()
    plt.close(fig)
    # enlarged for display: the frame's pixels repeated 4 times, the same map smoothly
    large = explorer.view(frame=3, method="layercam", layer="block4_conv4", levels=(), opacity=0)
    np.testing.assert_array_equal(large.axes[0].images[0].get_array()[::4, ::4], clip[3])
    plt.close(large)


def test_the_frame_slider_reuses_the_explanation(explorer):
    explorer.view(frame=0, method="saliency")
    cached = dict(explorer._cache)
    for frame in range(8):
        plt.close(explorer.view(frame=frame, method="saliency"))
    assert explorer._cache.keys() == cached.keys()
    plt.close(explorer.view(frame=0, method="saliency", target="normal"))
    assert ("saliency", None, "normal") in explorer._cache


def _png_size(png: bytes) -> tuple:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return image.shape[1], image.shape[0]


def test_controls_start_where_asked_and_redraw_on_every_control(model):
    explorer = widgets.Explorer(model, "shooting_01")
    panel = explorer.controls(frame=4, method="layercam", layer="block3_conv4", target=1)
    assert (panel.frame.value, panel.method.value, panel.layer.value, panel.target.value) == \
        (4, "layercam", "block3_conv4", "fight")
    assert panel.picture.value == explorer.picture(**panel.view(), title=False)
    assert explorer.title(4, "layercam", "block3_conv4", "fight") == "shooting_01, frame 4: LayerCAM @ block3_conv4\nfor 'fight'"
    pictures = {panel.picture.value}
    for control, value in ((panel.frame, 5), (panel.method, "gradcam"), (panel.layer, "block4_conv4"),
                           (panel.target, "normal"), (panel.levels, (0.4, 0.6)), (panel.opacity, 0.9)):
        control.value = value
        assert panel.picture.value not in pictures, control.description  # a new picture each time
        assert panel.picture.value == explorer.picture(**panel.view(), title=False)
        assert panel.caption.value == explorer.title(**{k: v for k, v in panel.view().items() if k in
                                                        ("frame", "method", "layer", "target")}).replace("\n", " ").replace("'", "&#x27;")
        pictures.add(panel.picture.value)
    assert panel.status.value == ""
    # every picture has the same size, whatever its title
    assert {_png_size(png) for png in pictures} == {(700, 320)}


def test_the_layer_control_does_not_apply_to_pixel_methods(model):
    explorer = widgets.Explorer(model, "fight_01")
    panel = explorer.controls(method="saliency")
    assert panel.layer.disabled and "(pixels)" in explorer.title(0, "saliency", panel.layer.value, None)
    before = dict(explorer._cache)
    panel.layer.value = "block3_conv4"  # no recomputation, the same picture
    assert explorer._cache.keys() == before.keys() and panel.picture.value == explorer.picture(**panel.view(), title=False)
    panel.method.value = "gradcam"
    assert not panel.layer.disabled


def test_the_status_says_what_is_computed_and_keeps_an_error_until_fixed(model, monkeypatch):
    explorer = widgets.Explorer(model, "fight_01")
    panel = explorer.controls(method="saliency")
    seen = []
    drawing = explorer.picture
    monkeypatch.setattr(explorer, "picture", lambda **view: seen.append(panel.status.value) or drawing(**view))
    panel.method.value = "smoothgrad"
    assert seen == ["computing SmoothGrad..."] and panel.status.value == ""
    panel.frame.value = 3  # cached: nothing to announce
    assert seen[-1] == ""
    panel.video.value = "no_such_clip"
    assert panel.status.value.startswith('<span class="tdexplain-error" style="color: #c62828"><b>error:</b> ')
    assert "video &#x27;no_such_clip&#x27;: no sample clip" in panel.status.value  # the input named, in red
    assert "still showing fight_01" in panel.status.value
    shown = panel.picture.value
    panel.frame.value = 6  # another control moves: the error stays, the picture follows the frame
    assert "no sample clip" in panel.status.value and panel.picture.value != shown
    panel.video.value = "normal_02"
    assert panel.status.value == "" and explorer.clip_name == "normal_02"
    assert panel.picture.value == drawing(**panel.view(), title=False)


def test_a_change_during_a_redraw_is_drawn_next_and_last(model, monkeypatch):
    """Overlapping changes end on the last one: a change that arrives while a picture is drawn
    (here fired from inside the drawing) does not draw at once but right after, once."""
    explorer = widgets.Explorer(model, "fight_01")
    panel = explorer.controls(method="saliency")
    drawing, drawn = explorer.picture, []

    def slow_picture(**view):
        drawn.append(view["frame"])
        if view["frame"] == 1:
            panel.frame.value = 7  # arrives mid-draw
        return drawing(**view)

    monkeypatch.setattr(explorer, "picture", slow_picture)
    panel.frame.value = 1
    assert drawn == [1, 7] and panel.frame.value == 7
    assert panel.picture.value == drawing(**panel.view(), title=False)


def test_show_displays_the_widget_once_with_its_first_picture(model, monkeypatch):
    import base64

    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **options: shown.append((objects, options)))
    explorer = widgets.Explorer(model, "shooting_01")
    assert explorer.show(frame=4, method="gradcam", layer="block4_conv4") is None
    [((bundle,), options)] = shown
    assert options == {"raw": True}
    assert set(bundle) == {"text/plain", "application/vnd.jupyter.widget-view+json", "image/png"}
    expected = explorer.picture(frame=4, method="gradcam", layer="block4_conv4")
    assert base64.b64decode(bundle["image/png"]) == expected
    shown.clear()
    widgets.compare_models({"a": model, "b": model}, clip="fight_01", method="saliency", frame=2)
    [((bundle,), _)] = shown
    assert {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(bundle)


def test_bad_starting_views_are_refused(explorer):
    with pytest.raises(ValueError, match="unknown layer 'block9'"):
        explorer.controls(layer="block9")
    with pytest.raises(ValueError, match="frame must be in 0..7"):
        explorer.controls(frame=8)
    with pytest.raises(ValueError, match="unknown method"):
        explorer.controls(method="magic")
    with pytest.raises(ValueError, match="riot"):
        explorer.controls(target="riot")
    with pytest.raises(ValueError, match="7"):
        explorer.controls(target=7)
    with pytest.raises(ValueError, match="frame must be in 0..7, got 9"):
        widgets.compare_models({"a": explorer.explainer.model}, frame=9)


def test_clips_from_a_path_an_array_and_bad_input(explorer, tmp_path):
    path = data.sample_path("clips/normal_02.mp4")
    np.testing.assert_array_equal(explorer.set_clip(path), read_video(path, frames=8, size=64))
    array = np.zeros((8, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(explorer.set_clip(array), array)
    with pytest.raises(ValueError, match="frame must be in 0..7"):
        explorer.view(frame=8)
    with pytest.raises(FileNotFoundError, match="shooting_02"):
        explorer.set_clip(tmp_path / "missing.mp4")


def test_a_long_video_is_explored_window_by_window_as_the_app_explains_it(model, tmp_path):
    """A video longer than one window: the window control picks which 3 s are explained, the
    frames `explain_video` explains for that window (an independent reading of the file here)."""
    frames = data.synthetic_clip("fight", frames=44, size=96, seed=2).frames
    path = data.write_video(tmp_path / "long.mp4", frames)  # 8 fps: 24 frames every 8, and a tail
    decoded = list(data.iter_frames(path))
    explorer = widgets.Explorer(model, str(path))
    assert [(w.window.first, w.window.last) for w in explorer.windows] == [(0, 23), (8, 31), (16, 39), (20, 43)]
    for index, first in ((0, 0), (2, 16), (3, 20)):
        expected = [data.fit_frame(decoded[first + k], (64, 64), "pad")
                    for k in np.linspace(0, 23, 8).round().astype(int)]
        np.testing.assert_array_equal(explorer.set_window(index), np.stack(expected))
    summary = explain_video(str(path), tmp_path / "app", method="saliency", progress=False)
    assert [w["frames_seen"] for w in summary["windows"]] == [w.window.picked.tolist() for w in explorer.windows]
    panel = explorer.controls(method="saliency", window=1)
    assert (panel.window.value, panel.window.max, panel.window.disabled) == (1, 3, False)
    assert panel.caption.value.startswith("long, window 1 (1.0-4.0 s), frame 0: saliency (pixels)")
    shown = panel.picture.value
    panel.window.value = 3
    assert panel.caption.value.startswith("long, window 3 (2.5-5.5 s), frame 0:") and panel.picture.value != shown
    np.testing.assert_array_equal(explorer.clip, explorer.windows[3].clip)
    assert panel.picture.value == explorer.picture(**panel.view(), title=False)
    panel.video.value = "fight_01"  # a sample is one window: the control follows, greyed out
    assert (panel.window.value, panel.window.max, panel.window.disabled) == (0, 0, True)
    assert panel.caption.value.startswith("fight_01, frame 0:")
    with pytest.raises(ValueError, match="window must be in 0..0 for fight_01, got 1"):
        explorer.set_window(1)
    with pytest.MonkeyPatch.context() as patch:  # a video of more windows than the explorer holds
        patch.setattr(widgets, "MAX_WINDOWS", 3)
        with pytest.raises(ValueError, match=r"long.mp4 has 4 windows of 3 s; the explorer holds every window in "
                                             r"memory, at most 3 \(one a second\): explain a long video"):
            explorer.set_clip(str(path))


def test_a_wide_video_is_shown_without_the_bars_that_pad_it(model, tmp_path):
    """128x96 footage sits in the model's 64x64 square between bars of 8 rows: the explorer shows
    the 64x48 picture, and the map inside it scaled to its peak there (as overlay.mp4 does)."""
    wide = np.zeros((8, 96, 128, 3), np.uint8)
    wide[:, :, 16:112] = data.synthetic_clip("fight", frames=8, size=96, seed=4).frames
    explorer = widgets.Explorer(model, str(data.write_video(tmp_path / "wide.mp4", wide)))
    image = explorer.image(2, method="gradcam", layer="block4_conv4", levels=(), opacity=0, display_size=64)
    np.testing.assert_array_equal(image, explorer.clip[2, 8:56].astype(np.uint8))
    heat = explorer.explanation("gradcam", "block4_conv4").maps["gradcam"][0, 2]
    inside = heat[8:56] / heat[8:56].max()
    lit = explorer.image(2, method="gradcam", layer="block4_conv4", levels=(), opacity=1, display_size=64)
    np.testing.assert_array_equal(lit, viz.heat_overlay(explorer.clip[2, 8:56], inside, alpha=1))


def test_the_video_box_is_called_video_and_shows_a_long_path(explorer):
    panel = explorer.controls()
    assert panel.video.description == "video" and not hasattr(panel, "clip")
    assert (panel.video.layout.width, panel.video.layout.max_width) == ("100%", "800px")


def test_compare_view_shows_each_model(model):
    other = models.build_model(frames=8, size=64, width=0.125, gru_units=8, dense_blocks=1)
    fig = widgets.compare_view({"demo": widgets.Explorer(model, "fight_01"),
                                "untrained": widgets.Explorer(other, "fight_01")}, frame=2, method="gradcam")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("demo\npredicts fight") and titles[1].startswith("untrained")
    plt.close(fig)


def test_the_demo_model_on_other_footage_says_so_next_to_its_answer(model, tmp_path):
    clip = read_video(data.sample_path("clips/fight_01.mp4"), frames=8, size=64)
    footage = data.write_video(tmp_path / "my_camera.mp4", clip)
    explorer = widgets.Explorer(model, "fight_01")
    panel = explorer.controls(method="saliency")
    assert explorer.note is None and "note:" not in panel.status.value
    panel.video.value = str(footage)
    assert "note: the demo model knows only synthetic scenes" in panel.status.value
    fig = explorer.view(method="saliency")
    assert fig.axes[1].get_title() == "demo model: it knows only synthetic scenes"
    plt.close(fig)
    trained_here = widgets.Explorer(models.build_model(frames=8, size=64, width=0.125, gru_units=8, dense_blocks=1),
                                    str(footage))
    assert trained_here.note is None  # not the demo model: nothing to say
