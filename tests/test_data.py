import dataclasses
import time

import cv2
import numpy as np
import pytest

from tdexplain import read_video
from tdexplain.engine.clips import check_clips
from tdexplain.workbook import data, synthetic


# --------------------------------------------------------------------------- synthetic clips

@pytest.mark.parametrize("label", synthetic.CLASSES)
def test_clip_is_deterministic_for_a_seed(label):
    a = data.synthetic_clip(label, frames=6, size=48, seed=3)
    b = data.synthetic_clip(label, frames=6, size=48, seed=3)
    c = data.synthetic_clip(label, frames=6, size=48, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.boxes == b.boxes
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("frames,size", [(1, 32), (8, 64), (3, 224), (64, 32)])
def test_clip_shapes_at_any_size_and_length(frames, size):
    clip = data.synthetic_clip("shooting", frames=frames, size=size, seed=1, task="posture")
    assert clip.frames.shape == (frames, size, size, 3) and clip.frames.dtype == np.uint8
    assert clip.mask.shape == (frames, size, size) and clip.mask.dtype == bool
    assert len(clip.boxes) == frames
    # The evidence is visible in every frame, at any frame count.
    assert clip.mask.reshape(frames, -1).any(axis=1).all()


def test_every_shooting_clip_shows_a_flash_even_with_one_frame():
    for seed in range(10):
        for frames in (1, 2, 8):
            clip = data.synthetic_clip("shooting", frames=frames, size=64, seed=seed, task="posture")
            names = {box[0] for frame_boxes in clip.boxes for box in frame_boxes}
            assert {"gun", "flash", "shooter_arm"} <= names, (seed, frames, names)


def test_dataset_is_balanced_deterministic_and_seeds_differ():
    clips, labels, masks = data.synthetic_dataset(n=30, frames=4, size=32, seed=0)
    assert clips.shape == (30, 4, 32, 32, 3) and clips.dtype == np.uint8
    assert masks.shape == (30, 4, 32, 32)
    assert np.bincount(labels, minlength=3).tolist() == [10, 10, 10]
    again = data.synthetic_dataset(n=30, frames=4, size=32, seed=0)
    np.testing.assert_array_equal(clips, again[0])
    np.testing.assert_array_equal(labels, again[1])
    other = data.synthetic_dataset(n=30, frames=4, size=32, seed=1)[0]
    # No clip of seed 1 equals any clip of seed 0.
    flat0, flat1 = clips.reshape(30, -1), other.reshape(30, -1)
    assert not any((flat1 == row).all(axis=1).any() for row in flat0)


def test_dataset_of_an_odd_size_is_balanced_to_one():
    _, labels, _ = data.synthetic_dataset(n=7, frames=2, size=32, seed=5)
    counts = np.bincount(labels, minlength=3)
    assert counts.sum() == 7 and counts.max() - counts.min() <= 1


def test_a_set_of_chosen_classes_is_each_clip_rendered_from_its_seed_in_order():
    chosen = data.synthetic_set(("shooting", 1), per_class=2, frames=4, size=32, seed=40)
    assert chosen.clips.shape == (4, 4, 32, 32, 3) and chosen.clips.dtype == np.float32
    assert chosen.labels.tolist() == [2, 2, 1, 1]
    for index, (label, seed) in enumerate([("shooting", 40), ("shooting", 41), ("fight", 40), ("fight", 41)]):
        alone = data.synthetic_clip(label, 4, 32, seed)
        np.testing.assert_array_equal(chosen.clips[index], alone.frames)
        np.testing.assert_array_equal(chosen.masks[index], alone.mask)
        np.testing.assert_array_equal(chosen.events[index], alone.events)
        assert chosen.scenes[index].label == label
    for classes in ("fight", []):
        with pytest.raises(ValueError, match="classes must be a non-empty list"):
            data.synthetic_set(classes, per_class=2)
    with pytest.raises(ValueError, match="per_class"):
        data.synthetic_set(["fight"], per_class=0)


def test_dataset_is_fast():
    # Issue requirement: 96 clips of 8 frames at 64x64 in under 5 s on one core.
    start = time.perf_counter()
    data.synthetic_dataset(n=96, frames=8, size=64, seed=0)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("label", synthetic.CLASSES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_is_exactly_the_evidence_and_never_a_distractor(label, seed):
    """Checked against independent renders: without the evidence, and without the distractors."""
    clip = data.synthetic_clip(label, frames=8, size=64, seed=seed, task="posture")
    no_evidence = data.synthetic_clip(label, frames=8, size=64, seed=seed, hidden=("evidence",), task="posture")
    no_distractor = data.synthetic_clip(label, frames=8, size=64, seed=seed, hidden=("distractor",), task="posture")
    changed_by_evidence = (clip.frames != no_evidence.frames).any(axis=-1)
    changed_by_distractor = (clip.frames != no_distractor.frames).any(axis=-1)
    # Every pixel the evidence changes is in the mask ...
    assert not (changed_by_evidence & ~clip.mask).any()
    # ... and drawn alone on the empty room, the evidence covers the mask (colours may match
    # the background by chance on a few pixels) ...
    empty_room = data.synthetic_clip(label, 8, 64, seed, hidden=("evidence", "scenery", "distractor"), task="posture")
    evidence_alone = data.synthetic_clip(label, 8, 64, seed, hidden=("scenery", "distractor"), task="posture")
    drawn = (evidence_alone.frames != empty_room.frames).any(axis=-1)
    assert not (drawn & ~clip.mask).any()
    assert drawn[clip.mask].mean() > 0.97
    # ... and no visible distractor pixel is in the mask.
    assert not (changed_by_distractor & clip.mask).any()
    assert changed_by_distractor.any(), "every class has a distractor"


@pytest.mark.parametrize("task", synthetic.TASKS)
@pytest.mark.parametrize("label", synthetic.CLASSES)
def test_boxes_enclose_the_mask(label, task):
    clip = data.synthetic_clip(label, frames=5, size=64, seed=7, task=task)
    for mask, boxes in zip(clip.mask, clip.boxes):
        inside = np.zeros_like(mask)
        for _, x0, y0, x1, y1 in boxes:
            inside[y0:y1 + 1, x0:x1 + 1] = True
            assert mask[y0:y1 + 1, x0:x1 + 1].any()
        assert not (mask & ~inside).any()


def test_evidence_objects_per_class():
    names = {label: {b[0] for fb in data.synthetic_clip(label, 8, 64, seed=0, task="posture").boxes for b in fb}
             for label in synthetic.CLASSES}
    assert names["fight"] == {"fighter0", "fighter1", "fighter0_arm", "fighter1_arm"}
    assert {"gun", "shooter_arm", "flash"} <= names["shooting"]
    assert names["normal"] and all(n.startswith("walker") for n in names["normal"])


def test_fighters_move_faster_than_walkers():
    def limb_motion(label):
        """Share of each evidence object's pixels that change from one frame to the next."""
        changes = []
        for seed in range(6):
            clip = data.synthetic_clip(label, frames=8, size=64, seed=seed, task="posture")
            for oid, (_, kind) in enumerate(clip.objects):
                if kind == "evidence":
                    region = clip.id_maps == oid
                    changes.append((region[1:] ^ region[:-1]).sum() / (2 * region[1:].sum()))
        return np.mean(changes)
    assert limb_motion("fight") > 1.5 * limb_motion("normal")


@pytest.mark.parametrize("label", ["normal", "fight"])
def test_pace_scales_the_movements_and_nothing_else(label):
    """pace 1 is the default render; pace 0 freezes the people (their evidence pixels are the
    same in every frame while light and noise still change); faster paces move them more."""
    np.testing.assert_array_equal(data.synthetic_clip(label, 8, 64, seed=3, pace=1.0, task="posture").frames,
                                  data.synthetic_clip(label, 8, 64, seed=3, task="posture").frames)

    def alone(pace):  # the evidence alone in the room: no bystander, no cart in front
        return data.synthetic_clip(label, 8, 64, seed=3, hidden=("scenery", "distractor"), pace=pace, task="posture")

    travel = [(clip.mask[1:] != clip.mask[:-1]).sum() for clip in map(alone, (0, 0.25, 1, 2))]
    assert travel[0] == 0 < travel[1] < travel[2] < travel[3]
    assert not np.array_equal(alone(0).frames[0], alone(0).frames[1])
    for bad in (-1, 11, "fast"):
        with pytest.raises(ValueError, match="pace must be a number from 0"):
            data.synthetic_clip(label, 8, 64, seed=3, pace=bad, task="posture")


@pytest.mark.parametrize("kwargs,message", [
    (dict(label="riot"), "label must be one of"),
    (dict(label=5), "label index must be in"),
    (dict(frames=0), "frames must be between 1 and 64"),
    (dict(frames=65), "frames must be between 1 and 64"),
    (dict(size=-1), "size must be between 32 and 224"),
    (dict(size=16), "size must be between 32 and 224"),
    (dict(size=64.0), "size must be an integer"),
    (dict(task="riot"), r"task must be one of \('temporal', 'posture'\)"),
])
def test_synthetic_clip_rejects_bad_arguments(kwargs, message):
    args = dict(label="fight", frames=4, size=32, seed=0) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        data.synthetic_clip(**args)


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be at least 1"):
        data.synthetic_dataset(n=0)
    with pytest.raises(ValueError, match="frames must be between 1 and 64"):
        data.synthetic_dataset(n=3, frames=0)


# --------------------------------------------------------------------------- the temporal task

def test_the_posture_task_has_its_evidence_in_every_frame_and_the_temporal_task_in_half():
    """events (N, T): every frame in the posture task; in the temporal task, the default, none
    for normal clips and at most half of the frames for the others."""
    _, labels, masks, events = data.synthetic_dataset(n=12, frames=8, size=32, seed=2, with_events=True,
                                                      task="posture")
    assert events.all() and masks.any(axis=(2, 3)).all()
    _, labels, masks, events = data.synthetic_dataset(n=12, frames=8, size=32, seed=2, with_events=True)
    np.testing.assert_array_equal(events, masks.any(axis=(2, 3)))
    assert not events[labels == 0].any() and (events[labels > 0].sum(axis=1) <= 4).all()
    assert events[labels > 0].any(axis=1).all()



@pytest.mark.parametrize("frames,size", [(1, 32), (8, 64), (3, 224), (64, 32)])
@pytest.mark.parametrize("label", ["fight", "shooting"])
def test_temporal_clip_shapes_and_events_at_any_size_and_length(label, frames, size):
    clip = data.synthetic_clip(label, frames=frames, size=size, seed=1, task="temporal")
    assert clip.frames.shape == (frames, size, size, 3) and clip.frames.dtype == np.uint8
    assert clip.mask.shape == (frames, size, size) and clip.mask.dtype == bool
    assert clip.events.shape == (frames,) and clip.events.dtype == bool
    assert len(clip.boxes) == frames
    # The event holds at least one frame and at most half of them, at any frame count, and
    # the evidence is visible exactly in its frames.
    assert 1 <= clip.events.sum() <= max(1, frames // 2)
    np.testing.assert_array_equal(clip.mask.reshape(frames, -1).any(axis=1), clip.events)


@pytest.mark.parametrize("seed", range(12))
def test_events_are_one_stretch_of_at_most_half_the_clip(seed):
    for label in synthetic.CLASSES:
        clip = data.synthetic_clip(label, frames=8, size=32, seed=seed, task="temporal")
        frames = np.flatnonzero(clip.events)
        if label == "normal":
            assert clip.event is None and not clip.events.any() and not clip.mask.any()
            continue
        assert 1 <= len(frames) <= 4 and np.all(np.diff(frames) == 1), (label, frames)
        start, end = clip.event
        times = (frames + 0.5) / 8
        assert 0 < start < end <= 1 and end - start <= 0.5
        assert np.all((times >= start) & (times < end)), (clip.event, frames)


def test_every_temporal_shooting_event_frame_shows_a_flash():
    for seed in range(10):
        for frames in (1, 2, 8):
            clip = data.synthetic_clip("shooting", frames=frames, size=64, seed=seed, task="temporal")
            assert _shows_flash(clip)[clip.events].all(), (seed, frames)
            for t in np.flatnonzero(clip.events):
                assert {box[0] for box in clip.boxes[t]} == {"shooter_arm"}, (seed, frames, t)


@pytest.mark.parametrize("label", ["fight", "shooting"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temporal_mask_is_exactly_the_evidence_in_the_event_frames(label, seed):
    """Checked against independent renders: without the evidence, and without the distractors."""
    clip = data.synthetic_clip(label, frames=8, size=64, seed=seed, task="temporal")
    no_evidence = data.synthetic_clip(label, frames=8, size=64, seed=seed, hidden=("evidence",), task="temporal")
    no_distractor = data.synthetic_clip(label, frames=8, size=64, seed=seed, hidden=("distractor",), task="temporal")
    changed_by_evidence = (clip.frames != no_evidence.frames).any(axis=-1)
    changed_by_distractor = (clip.frames != no_distractor.frames).any(axis=-1)
    # Every pixel the evidence changes is in the mask, and only the event's frames change ...
    assert not (changed_by_evidence & ~clip.mask).any()
    np.testing.assert_array_equal(changed_by_evidence.any(axis=(1, 2)), clip.events)
    # ... and drawn alone on the empty room, the evidence covers the mask (colours may match
    # the background by chance on a few pixels) ...
    empty_room = data.synthetic_clip(label, 8, 64, seed, hidden=("evidence", "scenery", "distractor"), task="temporal")
    evidence_alone = data.synthetic_clip(label, 8, 64, seed, hidden=("scenery", "distractor"), task="temporal")
    drawn = (evidence_alone.frames != empty_room.frames).any(axis=-1)
    assert not (drawn & ~clip.mask).any()
    assert drawn[clip.mask].mean() > 0.97
    # ... and no visible distractor pixel is in the mask.
    assert not (changed_by_distractor & clip.mask).any()


def _without_event(scene):
    """The planned scene with its event taken out: the pair keeps its slow rhythm, the gun
    does not fire. Everything else, the bystander's reaction included, is unchanged."""
    people = [dataclasses.replace(person, fast_tempo=person.tempo, actor=False)
              for person in scene.people]
    return dataclasses.replace(scene, people=people)


@pytest.mark.parametrize("label", ["fight", "shooting"])
@pytest.mark.parametrize("seed", range(6))
def test_event_frames_are_where_the_event_changes_the_clip(label, seed):
    """An independent render of the same scene with the event taken out is identical up to
    the event's first frame and differs in every one of its frames."""
    scene = synthetic.plan_scene(label, 64, np.random.default_rng(seed), "temporal")
    frames, _, _ = synthetic.render(scene, 8)
    calm, _, _ = synthetic.render(_without_event(scene), 8)
    events = data.synthetic_clip(label, 8, 64, seed, task="temporal").events
    differs = (frames != calm).any(axis=(1, 2, 3))
    first = np.flatnonzero(events)[0]
    assert not differs[:first].any() and differs[events].all(), (differs, events)
    if label == "shooting":  # the shots are the only change
        np.testing.assert_array_equal(differs, events)
    normal = data.synthetic_clip("normal", 8, 64, seed, task="temporal")
    assert normal.event is None and not normal.events.any()


def test_temporal_evidence_objects_per_class():
    def names(label, seed):
        return {b[0] for fb in data.synthetic_clip(label, 8, 64, seed=seed, task="temporal").boxes for b in fb}
    for seed in range(4):
        assert names("fight", seed) == {"pair0", "pair1", "pair0_arm", "pair1_arm"}
        assert names("shooting", seed) == {"shooter_arm"}
        assert names("normal", seed) == set()


def _pair_motion(clip):
    """Per pair of successive frames, the share of the sparring pair's pixels that change."""
    pair_ids = [oid for oid, (name, _) in enumerate(clip.objects) if name.startswith("pair")]
    region = np.isin(clip.id_maps, pair_ids)
    return (region[1:] ^ region[:-1]).sum(axis=(1, 2)) / (2 * region[1:].sum(axis=(1, 2)))


def test_a_fight_is_the_pairs_slow_poses_played_fast():
    """Fighting pairs move several times more between two event frames than between two
    frames outside it, and than pairs in normal clips, which show the same poses."""
    during, outside, normal = [], [], []
    for seed in range(16):
        fight = data.synthetic_clip("fight", 8, 64, seed, task="temporal")
        motion = _pair_motion(fight)
        both = fight.events[1:] & fight.events[:-1]
        neither = ~fight.events[1:] & ~fight.events[:-1]
        during += list(motion[both])
        outside += list(motion[neither])
        calm = data.synthetic_clip("normal", 8, 64, seed, task="temporal")
        if any(name.startswith("pair") for name, _ in calm.objects):
            normal += list(_pair_motion(calm))
    assert np.mean(during) > 2 * np.mean(outside) and np.mean(during) > 2 * np.mean(normal)


def _shows_flash(clip):
    """(T,) whether a person's arm shows the flash's core colour (255, 255, 230) in the frame:
    no skin, shirt or gun has it (their channels stay at or below 235, 235 and 25; noise of sd
    <= 3 moves it); arms only, as a lamp or a lit window may come near it."""
    arms = [oid for oid, (name, _) in enumerate(clip.objects) if name.endswith("_arm")]
    core = np.abs(clip.frames.astype(int) - (255, 255, 230)).max(axis=-1) <= 12
    return (core & np.isin(clip.id_maps, arms)).any(axis=(1, 2))


@pytest.mark.parametrize("label", ["normal", "fight", "shooting"])
@pytest.mark.parametrize("seed", range(4))
def test_poses_are_what_the_render_shows(label, seed):
    """Each frame's pose targets against the rendered pixels: a flash where the flash's
    colour is, the sparring columns set exactly when a pair is drawn, a ducked bystander
    whose arms are up, strikes that hold still when the people are frozen."""
    clip = data.synthetic_clip(label, 8, 64, seed, task="temporal")
    poses = dict(zip(synthetic.POSES, clip.poses.T))
    assert clip.poses.shape == (8, len(synthetic.POSES)) and clip.poses.dtype == np.float32
    np.testing.assert_array_equal(poses["flash"] == 1, _shows_flash(clip))
    names = {name for name, _ in clip.objects}
    for side, person in (("left", "pair0"), ("right", "pair1")):
        assert (poses[f"{side}_sparring"] == 1).all() == (person in names)
        assert ((poses[f"{side}_jab"] == 0).all() and (poses[f"{side}_kick"] == 0).all()) == (person not in names)
    ducked = poses["ducked"] == 1
    if ducked.any() and not ducked.all():  # the arms thrown up: the top of the bystander rises
        alone = data.synthetic_clip(label, 8, 64, seed, hidden=("distractor",), task="temporal")
        bystander = [oid for oid, (name, _) in enumerate(alone.objects) if name == "bystander"]
        top = np.array([np.flatnonzero(np.isin(ids, bystander).any(axis=1)).min() for ids in alone.id_maps])
        assert top[ducked].max() < top[~ducked].min(), (top, ducked)
    # Frozen people strike no more; moments (an arm raised, a shot, a reaction) keep their times.
    frozen = data.synthetic_clip(label, 8, 64, seed, pace=0, task="temporal").poses
    np.testing.assert_array_equal(frozen[:, :8], np.broadcast_to(frozen[0, :8], (8, 8)))
    np.testing.assert_array_equal(frozen[:, 8:], clip.poses[:, 8:])


@pytest.mark.parametrize("label", ["normal", "fight"])
def test_temporal_pace_scales_the_movements_and_nothing_else(label):
    """pace 1 is the default render; pace 0 freezes the moving people, sparring pairs and
    walkers (the same pixels in every frame while light and noise still change); faster
    paces move them more. Moments (an arm raised, a reaction) keep their times."""
    np.testing.assert_array_equal(data.synthetic_clip(label, 8, 64, seed=3, pace=1.0, task="temporal").frames,
                                  data.synthetic_clip(label, 8, 64, seed=3, task="temporal").frames)

    def movers(pace):  # the pair and the walkers alone: no cart in front, no lamp
        clip = data.synthetic_clip(label, 8, 64, seed=3, hidden=("distractor",), pace=pace, task="temporal")
        ids = [oid for oid, (name, _) in enumerate(clip.objects) if name.startswith(("pair", "walker"))]
        return clip, np.isin(clip.id_maps, ids)

    travel = [(region[1:] != region[:-1]).sum() for _, region in map(movers, (0, 0.25, 0.5, 1))]
    assert travel[0] == 0 < travel[1] < travel[2] < travel[3]
    frozen, region = movers(0)
    assert region.any() and not np.array_equal(frozen.frames[0], frozen.frames[1])
    for bad in (-1, 11, "fast"):
        with pytest.raises(ValueError, match="pace must be a number from 0"):
            data.synthetic_clip(label, 8, 64, seed=3, pace=bad, task="temporal")


# --------------------------------------------------------------------------- video files

@pytest.fixture
def clip_file(tmp_path):
    clip = data.synthetic_clip("fight", frames=12, size=64, seed=0).frames
    path = data.write_video(tmp_path / "fight.mp4", clip, fps=10)
    return path, clip


def test_round_trip_within_codec_error(clip_file):
    path, clip = clip_file
    back = read_video(path, frames=12, size=64)
    assert back.shape == clip.shape and back.dtype == np.uint8
    error = np.abs(back.astype(float) - clip).mean()
    assert error < 8, error
    # Colours are RGB after the round trip (a BGR swap would give a large error on coloured pixels).
    swapped = np.abs(back[..., ::-1].astype(float) - clip).mean()
    assert swapped > 2 * error


def test_video_info(clip_file):
    path, _ = clip_file
    info = data.video_info(path)
    assert (info.frames, info.width, info.height) == (12, 64, 64)
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(1.2)


def test_uniform_sampling_and_stride(tmp_path):
    # Frame k is a flat gray of value 20 * k, so each read frame tells its index.
    frames = np.repeat(np.arange(10, dtype=np.uint8)[:, None, None, None] * 20, 32, 1)
    frames = np.repeat(np.repeat(frames, 32, 2), 3, 3)
    path = data.write_video(tmp_path / "ramp.mp4", frames, fps=5)

    def indices(clip):
        return (clip.reshape(len(clip), -1).mean(axis=1) / 20).round().astype(int).tolist()

    assert indices(read_video(path, frames=4, size=32)) == [0, 3, 6, 9]
    assert indices(read_video(path, frames=3, size=32, start=2, stride=3)) == [2, 5, 8]
    assert indices(read_video(path, frames=5, size=32, start=7, stride=1, short="loop")) == [7, 8, 9, 7, 8]
    assert indices(read_video(path, frames=5, size=32, start=7, stride=1, short="pad")) == [7, 8, 9, 9, 9]
    with pytest.raises(ValueError, match=r"only 3 are available; pass short='loop'"):
        read_video(path, frames=5, size=32, start=7, stride=1)
    with pytest.raises(ValueError, match="start=12 but the video has only 10 frames"):
        read_video(path, frames=2, size=32, start=12)


def test_resize_keeps_aspect_by_padding_or_cropping(tmp_path):
    wide = np.full((2, 40, 80, 3), 200, np.uint8)
    path = data.write_video(tmp_path / "wide.mp4", wide, fps=5)
    padded = read_video(path, frames=2, size=40, fit="pad")
    # 80x40 into 40x40: 40x20 content, black bands of 10 rows above and below.
    assert padded[:, :8].max() < 20 and padded[:, -8:].max() < 20
    assert padded[:, 12:28].min() > 170
    cropped = read_video(path, frames=2, size=40, fit="crop")
    assert cropped.min() > 170
    rect = read_video(path, frames=2, size=(20, 30), fit="stretch")
    assert rect.shape == (2, 20, 30, 3)


def test_grayscale_video_reads_as_rgb(tmp_path):
    path = tmp_path / "gray.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32), isColor=False)
    for k in range(4):
        writer.write(np.full((32, 32), 40 * k + 20, np.uint8))
    writer.release()
    clip = read_video(path, frames=4, size=32)
    assert clip.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(clip[..., 0], clip[..., 1])
    np.testing.assert_array_equal(clip[..., 1], clip[..., 2])


def test_four_channel_and_gray_frames_convert_at_the_boundary():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 7  # pure blue in BGR order, some alpha
    rgb = data._to_rgb(bgra, "x")
    assert rgb.shape == (4, 4, 3) and (rgb[..., 2] == 255).all() and (rgb[..., :2] == 0).all()
    assert data._to_rgb(np.full((4, 4), 9, np.uint8), "x").shape == (4, 4, 3)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="video not found: .*nothing.mp4"):
        read_video(tmp_path / "nothing.mp4")
    with pytest.raises(FileNotFoundError, match="video not found"):
        data.video_info(tmp_path / "nothing.mp4")


def test_not_a_video_corrupt_and_empty_files(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("these are not frames\n" * 50)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (text, corrupt):
        with pytest.raises(ValueError, match=f"{path.name}.*(not a readable video|no decodable frame)"):
            read_video(path)
    with pytest.raises(ValueError, match="empty.mp4 is empty"):
        read_video(empty)
    with pytest.raises(ValueError, match="is not a file"):
        read_video(tmp_path)


def test_truncated_video(tmp_path, clip_file):
    path, _ = clip_file
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.mp4"):
        read_video(truncated)


@pytest.mark.parametrize("kwargs,message", [
    (dict(frames=0), "frames must be at least 1"),
    (dict(size=-3), "size must be at least 1"),
    (dict(size=(10, 0)), r"size\[1\] must be at least 1"),
    (dict(stride=0), "stride must be at least 1"),
    (dict(fit="zoom"), "fit must be one of"),
    (dict(short="wrap"), "short must be one of"),
])
def test_read_video_rejects_bad_arguments(clip_file, kwargs, message):
    path, _ = clip_file
    with pytest.raises((ValueError, TypeError), match=message):
        read_video(path, **kwargs)


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"frames must have shape \(T, H, W, 3\) RGB, got \(2, 8, 8, 4\)"):
        data.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="fps must be positive"):
        data.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8), fps=0)


def test_load_folder(tmp_path):
    for label in ("fight", "normal"):
        for seed in range(2):
            clip = data.synthetic_clip(label, frames=6, size=32, seed=seed).frames
            data.write_video(tmp_path / label / f"{seed}.mp4", clip)
    (tmp_path / "normal" / "broken.mp4").write_text("no video here")
    (tmp_path / "normal" / "readme.txt").write_text("ignored")
    clips, labels, names = data.load_folder(tmp_path, frames=4, size=32, progress=False)
    assert names == ("fight", "normal")
    assert clips.shape == (4, 4, 32, 32, 3)
    assert labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="broken.mp4"):
        data.load_folder(tmp_path, frames=4, size=32, on_error="raise", progress=False)
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        data.load_folder(tmp_path / "missing")


def test_check_clips():
    good = np.zeros((2, 4, 8, 8, 3), np.uint8)
    assert check_clips(good).dtype == np.float32
    assert check_clips(good[0]).shape == (1, 4, 8, 8, 3)
    with pytest.raises(ValueError, match=r"clips must have 5 frames per clip, got 4"):
        check_clips(good, frames=5)
    with pytest.raises(ValueError, match=r"frames must be 16x16, got 8x8"):
        check_clips(good, size=16)
    with pytest.raises(ValueError, match=r"must have shape .*RGB.*got \(2, 4, 8, 8, 1\)"):
        check_clips(np.zeros((2, 4, 8, 8, 1)))
    bad = good.astype(np.float32)
    bad[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_clips(bad)
    with pytest.raises(TypeError, match="dtype"):
        check_clips(np.zeros((1, 1, 2, 2, 3), dtype=object))


@pytest.mark.parametrize("stem,label,seed", [("fight_01", "fight", 201), ("shooting_02", "shooting", 303)])
def test_shipped_samples_match_their_generator(stem, label, seed):
    """data_samples/ was made by scripts/make_samples.py: clips within codec error, masks exact."""
    clip = data.synthetic_clip(label, frames=24, size=128, seed=seed)
    video = read_video(data.sample_path(f"clips/{stem}.mp4"), frames=24, size=128)
    assert np.abs(video.astype(float) - clip.frames).mean() < 8
    np.testing.assert_array_equal(data.read_mask(data.sample_path(f"clips/{stem}_mask.npz"), 24, 128),
                                  clip.mask)
    truth = data.sample_path(f"clips/{stem}_mask.npz")
    np.testing.assert_array_equal(data.read_events(truth, 24), clip.events)
    # Read at the model's size, mask, events and clip stay aligned: the mask marks the evidence
    # pixels in the event's frames and nowhere else.
    small, events = data.read_mask(truth, frames=8, size=64), data.read_events(truth, frames=8)
    assert small.shape == (8, 64, 64) and events.shape == (8,) and 0 < events.sum() <= 4
    np.testing.assert_array_equal(small.any(axis=(1, 2)), events)
    np.testing.assert_array_equal(events, clip.events[np.linspace(0, 23, 8).round().astype(int)])


def test_read_events_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        data.read_events(tmp_path / "missing_mask.npz")
    np.savez(tmp_path / "old_mask.npz", mask=np.zeros((4, 8, 8), bool))
    with pytest.raises(ValueError, match="no 'events' array"):
        data.read_events(tmp_path / "old_mask.npz", frames=4)
    np.savez(tmp_path / "short_mask.npz", events=np.ones(4, bool))
    with pytest.raises(ValueError, match="8 frames requested"):
        data.read_events(tmp_path / "short_mask.npz", frames=8)
    with pytest.raises(ValueError, match="short must be one of"):
        data.read_events(tmp_path / "short_mask.npz", frames=8, short="wrap")
    np.testing.assert_array_equal(data.read_events(tmp_path / "short_mask.npz", frames=6, short="pad"),
                                  np.ones(6, bool))


@pytest.mark.parametrize("codec,size", [("mp4v", 32), ("h264", 32), ("h264", 33)])
def test_both_codecs_round_trip(tmp_path, codec, size):
    """H.264 for players; MPEG-4 part 2 on request, and for odd sizes H.264 cannot take."""
    clip = data.synthetic_clip("normal", frames=5, size=max(size, 32), seed=2).frames[:, :size, :size]
    path = data.write_video(tmp_path / f"{codec}.mp4", clip, fps=5, codec=codec)
    back = read_video(path, frames=5, size=size)
    assert back.shape == clip.shape
    assert np.abs(back.astype(float) - clip).mean() < 8
    fourcc = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FOURCC))
    name = fourcc.to_bytes(4, "little").decode().lower()
    assert name in (("avc1", "h264") if codec == "h264" and size % 2 == 0 else ("mp4v", "fmp4")), name


def test_write_video_into_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OSError):
        data.write_video(blocker / "clip.mp4", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="codec must be one of"):
        data.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8), codec="vp9")
