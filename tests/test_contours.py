import numpy as np
import pytest

from tdexplain.interfaces import contours

SIZE = 96
ys, xs = np.mgrid[0:SIZE, 0:SIZE]


def gaussian(cx, cy, sigma, peak=1.0):
    return peak * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def test_concentric_gaussians_give_nested_contours_at_the_right_levels():
    heatmap = np.maximum(gaussian(48, 48, 22, 0.6), gaussian(48, 48, 9, 1.0))
    found = contours.extract(heatmap, levels=(0.25, 0.5, 0.75))
    assert [c.level for c in found] == [0.25, 0.5, 0.75]
    low, middle, high = found
    assert (low.parent, middle.parent, high.parent) == (None, 0, 1)
    assert low.children == [1] and middle.children == [2]
    # Areas: the disc where each Gaussian exceeds the level, r = sigma * sqrt(2 ln(peak / level)).
    for contour, sigma, peak in ((low, 22, 0.6), (middle, 22, 0.6), (high, 9, 1.0)):
        radius = sigma * np.sqrt(2 * np.log(peak / contour.level))
        assert contour.area == pytest.approx(np.pi * radius**2, rel=0.05)
        assert contour.centroid == pytest.approx((48, 48), abs=0.5)
    assert high.peak == pytest.approx(1.0) and low.peak == pytest.approx(1.0)
    assert 0.25 < low.mean < middle.mean < high.mean <= 1.0


def test_a_faint_separate_blob_is_found_at_the_low_level_only():
    heatmap = np.maximum(gaussian(30, 30, 8), gaussian(75, 70, 6, 0.35))
    found = contours.extract(heatmap, levels=(0.25, 0.5, 0.75))
    low = [c for c in found if c.level == 0.25]
    assert len(low) == 2
    faint = min(low, key=lambda c: c.peak)
    assert faint.peak == pytest.approx(0.35, abs=0.01)
    assert faint.centroid == pytest.approx((75, 70), abs=0.5)
    assert faint.children == []
    assert all(c.centroid == pytest.approx((30, 30), abs=0.5) for c in found if c.level > 0.25)


def test_small_regions_are_dropped():
    heatmap = np.zeros((SIZE, SIZE))
    heatmap[10, 10] = 1.0
    heatmap[50:60, 50:60] = 0.8
    found = contours.extract(heatmap, levels=(0.5,), min_area=4)
    assert len(found) == 1 and found[0].area == 100


@pytest.mark.parametrize("heatmap", [np.zeros((32, 32)), np.full((32, 32), 0.7), np.ones((32, 32))])
def test_empty_and_constant_maps_have_no_contours(heatmap):
    assert contours.extract(heatmap) == []
    assert contours.extract(heatmap, levels="otsu") == []
    assert contours.extract(heatmap, levels="quantiles") == []


def test_automatic_levels():
    heatmap = np.maximum(gaussian(48, 48, 20, 0.6), gaussian(48, 48, 6, 1.0))
    for method in ("otsu", "quantiles"):
        levels = contours.choose_levels(heatmap, method)
        assert len(levels) >= 2 and all(0 < v < 1 for v in levels) and list(levels) == sorted(levels)
        assert contours.extract(heatmap, levels=method)
    with pytest.raises(ValueError, match="levels method must be one of"):
        contours.choose_levels(heatmap, "kmeans")


def test_tracking_follows_a_moving_blob_and_separates_two():
    frames = np.stack([np.maximum(gaussian(20 + 6 * t, 30, 6), gaussian(70, 70 - 3 * t, 5))
                       for t in range(8)])
    per_frame, tracks = contours.track(frames, level=0.5)
    assert len(tracks) == 2
    for regions in per_frame:
        assert sorted(r.track_id for r in regions) == [0, 1]
    moving = next(points for points in tracks.values() if points[0][1][1] == pytest.approx(30, abs=1))
    assert [t for t, *_ in moving] == list(range(8))
    assert [round(c[0]) for _, c, _, _ in moving] == [20 + 6 * t for t in range(8)]


def test_a_blob_that_jumps_far_starts_a_new_track():
    frames = np.stack([gaussian(15, 15, 4), gaussian(80, 80, 4)])
    _, tracks = contours.track(frames, level=0.5)
    assert len(tracks) == 2


def test_draw_returns_a_new_image_and_leaves_the_frame_alone():
    frame = np.full((SIZE, SIZE, 3), 200, np.uint8)
    original = frame.copy()
    found = contours.extract(gaussian(48, 48, 15), levels=(0.25, 0.5, 0.75))
    drawn = contours.draw(frame, found, labels=True)
    np.testing.assert_array_equal(frame, original)
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8
    changed = (drawn != frame).any(axis=-1)
    assert changed.sum() > 100
    # Lines sit on the contours, not everywhere.
    assert changed.mean() < 0.5
    # Higher levels get thicker lines, in different colours.
    assert contours.level_color(0.25) != contours.level_color(0.75)
    assert min(sum(contours.level_color(level)) for level in (0.1, 0.25)) > 250  # no near-black line
    dark = contours.draw(np.zeros_like(frame), found)
    assert (dark > 0).any()  # colour lines visible on a black frame too


def test_bad_heatmaps():
    with pytest.raises(ValueError, match=r"heatmap must be a 2-D map \(H, W\), got shape \(2, 8, 8\)"):
        contours.extract(np.zeros((2, 8, 8)))
    bad = np.zeros((8, 8))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        contours.extract(bad)
    with pytest.raises(ValueError, match=r"levels must be in \(0, 1\]"):
        contours.extract(np.eye(8), levels=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"heatmaps must be \(T, H, W\)"):
        contours.track(np.zeros((8, 8)))


def test_summary_is_json_ready():
    import json

    found = contours.extract(gaussian(48, 48, 10))
    json.dumps([c.summary() for c in found])
