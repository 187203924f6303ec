from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from tdexplain import Explainer, load_model  # noqa: E402
from tdexplain.interfaces import viz
from tdexplain.workbook import data, models

FRAMES, SIZE = 4, 32


@pytest.fixture(scope="module")
def explained():
    model = models.build_model(frames=FRAMES, size=SIZE, width=0.0625, gru_units=4, dense_blocks=1)
    clip = data.synthetic_clip("fight", FRAMES, SIZE, seed=0).frames
    result = Explainer(model).explain(clip, methods=("saliency", "gradcam"))
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
    # frames, saliency, gradcam, contours rows of FRAMES axes each, one bar chart, the heat's colour bar.
    assert len(fig.axes) == 4 * FRAMES + 2
    assert f"; Grad-CAM at layer {result.layer}" in fig._suptitle.get_text()  # the CAM named, not saliency
    labels = [ax.get_ylabel() for ax in fig.axes[::FRAMES]]
    assert labels[:3] == ["frames", "saliency", f"Grad-CAM\n@ {result.layer}"]  # a layer only for a CAM
    assert "top 1%" in fig.axes[-1].get_ylabel()
    path = viz.save_figure(fig, "explained", folder=tmp_path)
    assert path.exists() and path.stat().st_size > 1000


def test_explanation_figure_marks_the_event_s_frames(explained):
    clip, result = explained
    events = np.array([False, True, True, False])
    fig = viz.explanation_figure(clip, result, importance=np.array([0.1, -0.2, 0.3, 0.0]), events=events)
    titles = [ax.get_title() for ax in fig.axes[:FRAMES]]
    assert titles == ["frame 0", "frame 1 (event)", "frame 2 (event)", "frame 3"]
    bars = next(ax for ax in fig.axes if ax.get_ylabel() == "frame\nimportance")
    fig.canvas.draw()
    spans = [p for p in bars.patches if p.get_alpha() is not None and p.get_alpha() < 1]
    centres = [bars.transData.inverted().transform(p.get_window_extent()).mean(axis=0)[0] for p in spans]
    assert np.allclose(sorted(centres), [1, 2])
    assert all(span.get_zorder() < bar.get_zorder() for span in spans for bar in bars.patches if bar not in spans)
    figures = plt.get_fignums()
    with pytest.raises(ValueError, match=r"events must be one bool per frame, \(4,\), got \(3,\)"):
        viz.explanation_figure(clip, result, events=events[:3])
    assert plt.get_fignums() == figures  # refused before a figure is made


def test_exports_reject_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"frames must have shape \(T, H, W, 3\) RGB"):
        viz.save_gif(tmp_path / "x.gif", np.zeros((2, 8, 8)))


def test_probability_over_time_and_explained_clip_export(tmp_path):
    from tdexplain.workbook import temporal

    model = load_model(models.DEMO_MODEL)
    clip = data.synthetic_clip("shooting", 8, 64, seed=21).frames
    timeline = temporal.probability_over_time(model, clip)
    assert timeline.shape == (8,) and ((0 <= timeline) & (timeline <= 1)).all()
    # The last point is the prediction on the whole clip.
    whole = models.predict(model, clip)[0]
    assert timeline[-1] == pytest.approx(whole.max(), rel=1e-4)
    # At frame t the model saw frames 0..t, then frame t repeated: an independent prediction.
    t = 2
    truncated = np.concatenate([clip[:t + 1], np.repeat(clip[t:t + 1], 8 - t - 1, axis=0)])
    assert timeline[t] == pytest.approx(models.predict(model, truncated)[0, whole.argmax()], rel=1e-4)
    result = Explainer(model).explain(clip, methods="gradcam", layer="block4_conv4")
    frames = viz.explained_clip_frames(clip, result, timeline=timeline)
    decoded = _decoded(viz.save_mp4(tmp_path / "explained.mp4", frames))
    assert decoded.shape == frames.shape


def test_figures_go_to_the_repository_s_reports_wherever_the_code_runs(tmp_path, monkeypatch):
    """Notebooks run in notebooks/: their figures must land in <repository>/reports/figures,
    not in a reports/ folder under the working directory."""
    monkeypatch.chdir(tmp_path)
    fig, ax = plt.subplots()
    path = viz.save_figure(fig, "test_where_figures_go")
    plt.close(fig)
    try:
        assert path.parent == Path(__file__).resolve().parents[1] / "reports" / "figures"
        assert path.is_file() and not (tmp_path / "reports").exists()
    finally:
        path.unlink()


def test_clip_timeline_outlines_the_event_and_plots_the_evidence_share():
    clip = data.synthetic_clip("fight", frames=6, size=32, seed=2, task="temporal")
    fig = viz.clip_timeline(clip.frames, clip.events, clip.mask, title="fight")
    frame_axes, timeline = fig.axes[:6], fig.axes[6]
    outlined = [ax.spines["top"].get_visible() for ax in frame_axes]
    assert outlined == clip.events.tolist()
    heights = [bar.get_height() for bar in timeline.patches if bar.get_alpha() is None]  # not the shading
    np.testing.assert_allclose(heights, 100 * clip.mask.reshape(6, -1).mean(axis=1))
    first, last = np.flatnonzero(clip.events)[[0, -1]]
    assert any(text.get_text() == f"event: frames {first}-{last}" for text in timeline.texts)
    with pytest.raises(ValueError, match=r"events must be one bool per frame, \(6,\)"):
        viz.clip_timeline(clip.frames, clip.events[:3])
    with pytest.raises(ValueError, match=r"events must be one bool per frame .* got values \[0 2\]"):
        viz.clip_timeline(clip.frames, [0, 2, 0, 0, 0, 0])  # frame indices are not a mask


def test_frame_heatmap_draws_the_values_and_outlines_each_event_frame():
    values = np.array([[0.1, 0.5, 0.2, 0.2], [-1.0, 0.0, 3.0, np.nan]])
    events = np.array([[False, True, True, False], [False, False, True, False]])
    ax = viz.frame_heatmap(values, events, row_titles=["a", "b"], colorbar="share", signed=True)
    image = ax.images[0]
    np.testing.assert_array_equal(image.get_array().filled(np.nan), values)
    assert image.get_clim() == (-3.0, 3.0)  # centred on 0, the NaN ignored
    outlined = ax.collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(outlined).tolist())) == [(1.0, 0.0), (2.0, 0.0), (2.0, 1.0)]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a", "b"]
    assert len(ax.figure.axes) == 2  # the colour bar
    assert len(viz.frame_heatmap(values, events).figure.axes) == 1  # no label, no colour bar
    with pytest.raises(ValueError, match=r"one row per clip \(2\), got 1"):
        viz.frame_heatmap(values, events[:1])
    with pytest.raises(ValueError, match=r"values must be \(clips, frames\)"):
        viz.frame_heatmap(values[0], events)
    plt.close("all")


def test_the_evidence_is_outlined_on_frames_and_maps():
    """The mask's boundary pixels turn EVIDENCE_COLOR, its inside keeps the frame (heat) or
    lightens it (mask), and everything outside is left as it was."""
    frame = np.full((6, 6, 3), 50, np.uint8)
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True  # a 4x4 square: 12 edge pixels, a 2x2 inside
    edge = mask.copy()
    edge[2:4, 2:4] = False
    heat = viz.heat_overlay(frame, np.zeros((6, 6)), mask=mask)
    assert (heat[edge] == (255 * viz.EVIDENCE_COLOR).astype(np.uint8)).all() and (heat[~edge] == 50).all()
    marked = viz.overlay_mask(frame, mask, alpha=0.5)
    assert np.allclose(marked[edge], viz.EVIDENCE_COLOR) and np.allclose(marked[~mask], 50 / 255)
    assert np.allclose(marked[2:4, 2:4], 0.5 * 50 / 255 + 0.5 * viz.EVIDENCE_COLOR)


def test_ranking_figure_colours_each_column_from_its_best_to_its_worst():
    import pandas as pd

    table = pd.DataFrame({"pointing": [0.9, 0.5, 0.1], "spearman": [0.02, -0.6, np.nan]},
                         index=["a", "b", "c"])
    fig = viz.ranking_figure(table, {"pointing": "higher", "spearman": "near 0"})
    place = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(place[:, 0], [0, 0.5, 1])  # higher is better
    np.testing.assert_allclose(place[:2, 1], [0, 1])  # nearest 0 first; c was not run
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "not run" in texts and "-0.60" in texts
    with pytest.raises(ValueError, match="better must say one of"):
        viz.ranking_figure(table, {"pointing": "bigger"})
