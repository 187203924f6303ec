import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from tdexplain import data, explain, models, viz  # noqa: E402

FRAMES, SIZE = 4, 32


@pytest.fixture(scope="module")
def explained():
    model = models.build_model(frames=FRAMES, size=SIZE, width=0.0625, gru_units=4, dense_blocks=1)
    clip = data.synthetic_clip("fight", FRAMES, SIZE, seed=0).frames
    result = explain.Explainer(model).explain(clip, methods=("saliency", "gradcam"))
    return clip, result


def _decoded(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return np.array(frames)
        frames.append(frame)


def test_render_clip_and_exports_decode_with_opencv(tmp_path, explained):
    clip, result = explained
    before = clip.copy()
    rendered = viz.render_clip(clip, result.maps["gradcam"][0], caption="fight 0.41",
                               timeline=np.linspace(0, 1, FRAMES), timeline_label="p(fight)")
    np.testing.assert_array_equal(clip, before)
    assert rendered.shape[0] == FRAMES and rendered.shape[2:] == (SIZE, 3)
    assert rendered.shape[1] > SIZE  # the timeline strip under each frame
    for writer, name in ((viz.save_gif, "clip.gif"), (viz.save_mp4, "clip.mp4")):
        decoded = _decoded(writer(tmp_path / name, rendered, fps=4))
        assert decoded.shape == rendered.shape, name
        assert np.abs(decoded[..., ::-1].astype(float) - rendered).mean() < 12, name


def test_heat_overlay_leaves_cold_pixels_alone():
    frame = np.full((8, 8, 3), 120, np.uint8)
    heat = np.zeros((8, 8))
    heat[2:4, 2:4] = 1
    out = viz.heat_overlay(frame, heat)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert (out[heat == 0] == 120).all() and (out[heat == 1] != 120).any()


def test_explanation_figure_rows_and_titles(tmp_path, explained):
    clip, result = explained
    fig = viz.explanation_figure(clip, result, importance=np.array([0.1, -0.2, 0.3, 0.0]))
    # frames, saliency, gradcam, contours rows of FRAMES axes each, plus one bar chart.
    assert len(fig.axes) == 4 * FRAMES + 1
    assert "gradcam" in fig._suptitle.get_text() and result.layer in fig._suptitle.get_text()
    path = viz.save_figure(fig, "explained", folder=tmp_path)
    assert path.exists() and path.stat().st_size > 1000


def test_exports_reject_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"frames must have shape \(T, H, W, 3\) RGB"):
        viz.save_gif(tmp_path / "x.gif", np.zeros((2, 8, 8)))
