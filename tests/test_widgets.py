"""The explorers' callbacks, without a browser."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tdexplain import contours, data, explain, models, viz, widgets


@pytest.fixture(scope="module")
def model():
    return models.load_model()


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
    clip = data.read_video(data.sample_path("clips/shooting_01.mp4"), frames=8, size=64)
    heatmap = explain.Explainer(model).explain(clip, methods="layercam", layer="block4_conv4").maps["layercam"][0, 3]
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


def test_controls_call_the_view(explorer):
    box = explorer.controls()
    sliders = {child.description: child for row in box.children[:2] for child in row.children}
    message = box.children[3]
    sliders["frame"].value = 5
    sliders["method"].value = "gradient_x_input"
    assert ("gradient_x_input", explorer.explainer.default_layer, None) in explorer._cache
    sliders["target"].value = "fight"
    assert ("gradient_x_input", explorer.explainer.default_layer, "fight") in explorer._cache
    assert message.value == ""
    clip = box.children[2]
    clip.value = "no_such_clip"
    assert "no sample clip" in message.value and "fight_01" in message.value
    plt.close("all")


def test_clips_from_a_path_an_array_and_bad_input(explorer, tmp_path):
    path = data.sample_path("clips/normal_02.mp4")
    np.testing.assert_array_equal(explorer.set_clip(path), data.read_video(path, frames=8, size=64))
    array = np.zeros((8, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(explorer.set_clip(array), array)
    with pytest.raises(ValueError, match="frame must be in 0..7"):
        explorer.view(frame=8)
    with pytest.raises(FileNotFoundError, match="shooting_02"):
        explorer.set_clip(tmp_path / "missing.mp4")


def test_compare_view_shows_each_model(model):
    other = models.build_model(frames=8, size=64, width=0.125, gru_units=8, dense_blocks=1)
    fig = widgets.compare_view({"demo": widgets.Explorer(model, "fight_01"),
                                "untrained": widgets.Explorer(other, "fight_01")}, frame=2, method="gradcam")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("demo\npredicts fight") and titles[1].startswith("untrained")
    plt.close(fig)
