"""Synthetic surveillance scenes whose class evidence is known pixel by pixel, and frame by frame.

Two tasks share the room, the people and the renderer:
- "temporal" (the default, and the shipped models'): the class lives in the motion and the
  moment. Normal clips hold look-alikes of every event pose (a pair sparring slowly, a person
  raising a phone); a fight is the pair's rhythm turning several times faster for part of the
  clip, a shooting a burst of muzzle flashes in part of the clip followed by a bystander
  ducking. Each clip knows which frames hold its event (at most half of them) as well as
  which pixels.
- "posture": a fight is two people with fast limbs, a shooting a raised gun that flashes,
  normal clips show walkers; the evidence is in every frame, so any single frame tells the
  class (the task where a GRU has nothing to do, kept for comparison).

A scene is planned once from a random generator (every random draw happens in
``plan_scene``), then rendered frame by frame. Each drawn object writes its colour
into the frame and its id into an id map of the same geometry, so the evidence mask
is exact, occlusions included. Rendering can hide kinds of objects, which lets the
tests check the masks against an independent render.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CLASSES", "TASKS", "EVIDENCE", "DISTRACTOR", "SCENERY", "BYSTANDER_SHARE", "Person", "Scene",
           "SLOW_TEMPO", "FIGHT_TEMPO", "EVENT_LENGTH", "TEMPORAL_LIMB", "TEMPORAL_FLASH", "NORMAL_PAIR_SHARE",
           "plan_scene", "frame_times", "event_frames", "render", "POSES", "pose_targets", "evidence_mask",
           "evidence_boxes"]

CLASSES = ("normal", "fight", "shooting")
TASKS = ("temporal", "posture")

# Kinds of drawn objects. Evidence kinds make up the mask; the rest is scenery.
EVIDENCE = "evidence"
DISTRACTOR = "distractor"
SCENERY = "scenery"
BYSTANDER_SHARE = 0.6  # posture task: of the clips of every class show a bystander (scenery)


@dataclass
class Person:
    """An articulated figure: feet position, height, colours and a pose per frame.

    `tempo` is the rhythm of the limbs in cycles per clip; between `fast_start` and
    `fast_end` (times in [0, 1]) it is `fast_tempo` instead, and the phase runs on without a
    jump. `actor` people are the evidence during the scene's event and scenery otherwise; an
    actor who carries a gun fires it in every frame of the event. `limb`: the limbs' width
    as a share of the height.
    """

    x: float
    y: float
    height: float
    facing: int
    shirt: tuple
    pants: tuple
    skin: tuple
    kind: str
    name: str
    motion: str  # walk, fight, shoot, react (posture task); walk, spar, point, duck (temporal)
    speed: float = 0.0
    phase: float = 0.0
    tempo: float = 1.0
    fast_tempo: float = 0.0
    fast_start: float = 1.0
    fast_end: float = 1.0
    carries: str | None = None  # None, "box", "bag" or "gun" (a phone looks the same)
    raise_time: float = 0.3
    flash_times: tuple = ()
    actor: bool = False
    limb: float = 0.07

    def speedup(self, t: float) -> float:
        """The phase (radians) the limbs have gained by time t by moving at `fast_tempo`
        instead of `tempo` during the fast part; 0 before it."""
        fast = np.clip(t, self.fast_start, self.fast_end) - self.fast_start
        return 2 * np.pi * (self.fast_tempo - self.tempo) * fast


@dataclass
class Scene:
    label: str
    size: int
    background: np.ndarray  # (H, W, 3) float32
    people: list
    cart: dict | None
    lamp: dict | None
    light_phase: float
    light_amplitude: float
    noise: float
    seed_for_noise: int
    task: str  # one of TASKS
    event: tuple | None = None  # temporal task: (start, end) in clip time [0, 1]; None if normal


def _scale(size: int, value: float) -> int:
    return max(1, int(round(value * size)))


def _color(rng, low, high):
    return tuple(float(c) for c in rng.uniform(low, high, 3))


def _background(rng, size: int) -> np.ndarray:
    """A textured room: wall, tiled floor, a window, a door and a table."""
    horizon = int(size * rng.uniform(0.38, 0.48))
    wall = np.array(_color(rng, 90, 190), np.float32)
    floor = np.array(_color(rng, 60, 150), np.float32)
    image = np.empty((size, size, 3), np.float32)
    image[:horizon] = wall
    image[horizon:] = floor
    # Low-frequency texture, so the background is not flat.
    texture = cv2.resize(rng.normal(0, 12, (8, 8)).astype(np.float32), (size, size),
                         interpolation=cv2.INTER_CUBIC)
    image += texture[..., None]
    # Floor tiles.
    step = max(4, size // int(rng.integers(5, 9)))
    tile = tuple(float(c) for c in floor * 0.8)
    for x in range(int(rng.integers(0, step)), size, step):
        cv2.line(image, (x, horizon), (x, size - 1), tile, 1)
    for y in range(horizon + step // 2, size, step):
        cv2.line(image, (0, y), (size - 1, y), tile, 1)
    # A window and a door on the wall, a table against it.
    wx = int(rng.uniform(0.05, 0.55) * size)
    cv2.rectangle(image, (wx, int(0.08 * size)), (wx + _scale(size, 0.2), int(0.25 * size)),
                  _color(rng, 170, 235), -1)
    dx = int(rng.uniform(0.65, 0.85) * size)
    cv2.rectangle(image, (dx, int(0.1 * size)), (dx + _scale(size, 0.1), horizon),
                  _color(rng, 40, 110), -1)
    tx = int(rng.uniform(0.0, 0.7) * size)
    table = _color(rng, 50, 120)
    top = horizon + _scale(size, 0.02)
    cv2.rectangle(image, (tx, top), (tx + _scale(size, 0.22), top + _scale(size, 0.03)), table, -1)
    for leg in (tx + 1, tx + _scale(size, 0.2)):
        cv2.line(image, (leg, top), (leg, top + _scale(size, 0.08)), table, _scale(size, 0.015))
    return image


def _person(rng, size, name, motion, kind, x, y=None, facing=None, **extra) -> Person:
    return Person(
        x=x,
        y=rng.uniform(0.8, 0.93) if y is None else y,
        height=rng.uniform(0.4, 0.5),
        facing=int(rng.choice([-1, 1])) if facing is None else facing,
        shirt=_color(rng, 20, 235),
        pants=_color(rng, 20, 120),
        skin=_color(rng, 120, 230),
        kind=kind,
        name=name,
        motion=motion,
        phase=rng.uniform(0, 2 * np.pi),
        **extra,
    )


def _distractors(rng) -> tuple:
    """A cart crossing the room and a flickering lamp (at least one of the two)."""
    use_cart = rng.random() < 0.75
    use_lamp = (not use_cart) or rng.random() < 0.6
    cart = None
    if use_cart:
        direction = int(rng.choice([-1, 1]))
        cart = dict(y=rng.uniform(0.55, 0.68), start=rng.uniform(-0.2, 0.4) if direction == 1
                    else rng.uniform(0.6, 1.2), speed=direction * rng.uniform(0.5, 1.0),
                    width=rng.uniform(0.16, 0.26), color=_color(rng, 30, 230))
    lamp = None
    if use_lamp:
        lamp = dict(x=rng.uniform(0.1, 0.9), y=rng.uniform(0.05, 0.2),
                    states=rng.random(64) < 0.5, color=_color(rng, 200, 255))
    return cart, lamp


def _posture_scene(label: str, size: int, rng: np.random.Generator) -> Scene:
    """The posture task: the evidence (fighters, a shooter's arm, gun and flash, walkers) is
    visible in every frame."""
    background = _background(rng, size)
    people = []
    if label == "normal":
        for i in range(int(rng.integers(1, 3))):
            people.append(_person(
                rng, size, f"walker{i}", "walk", EVIDENCE, x=rng.uniform(0.15, 0.85),
                speed=rng.uniform(0.04, 0.1), tempo=rng.uniform(0.5, 0.9),
                carries=rng.choice([None, "box", "bag"])))
    elif label == "fight":
        center = rng.uniform(0.35, 0.65)
        gap = rng.uniform(0.1, 0.14)
        y = rng.uniform(0.82, 0.92)
        for i, side in enumerate((-1, 1)):
            people.append(_person(
                rng, size, f"fighter{i}", "fight", EVIDENCE, x=center + side * gap / 2,
                y=y + rng.uniform(-0.02, 0.02), facing=-side, tempo=rng.uniform(2.5, 3.5)))
    elif label == "shooting":
        facing = int(rng.choice([-1, 1]))
        x = rng.uniform(0.2, 0.4) if facing == 1 else rng.uniform(0.6, 0.8)
        raise_time = rng.uniform(0.15, 0.45)
        flashes = tuple(sorted(rng.uniform(raise_time + 0.05, 1.0, int(rng.integers(1, 4)))))
        if rng.random() < BYSTANDER_SHARE:  # a second person who reacts (not evidence: drawn behind)
            people.append(_person(
                rng, size, "bystander", "react", SCENERY, x=x + facing * rng.uniform(0.3, 0.45),
                y=rng.uniform(0.75, 0.85), facing=-facing, raise_time=flashes[0]))
        people.append(_person(
            rng, size, "shooter", "shoot", SCENERY, x=x, facing=facing,
            raise_time=raise_time, flash_times=flashes))
    else:
        raise ValueError(f"label must be one of {CLASSES}, got {label!r}")

    cart, lamp = _distractors(rng)
    scene = Scene(label=label, size=size, background=background, people=people, cart=cart,
                  lamp=lamp, light_phase=rng.uniform(0, 2 * np.pi),
                  light_amplitude=rng.uniform(0.03, 0.1), noise=rng.uniform(1.0, 3.0),
                  seed_for_noise=int(rng.integers(2**31)), task="posture")
    # A standing bystander who raises both arms at some moment, as the shooting's bystander
    # does, in the other classes too: a still person with raised arms is then no cue of a
    # shooting, and the only way to the class is through the evidence. Drawn last from the
    # generator, so every earlier choice of a seed's scene is unchanged.
    if label != "shooting" and rng.random() < BYSTANDER_SHARE:
        scene.people.insert(0, _person(rng, size, "bystander", "react", SCENERY,
                                       x=rng.uniform(0.1, 0.9), y=rng.uniform(0.75, 0.85),
                                       raise_time=rng.uniform(0.2, 1.0)))
    return scene


# Rhythms in limb cycles per clip. People who stand close and talk, greet or dance move
# their arms slowly through every pose of a fight; a fight is the same poses at several
# times the rhythm. At 8 frames a slow arm turns by an eighth of a cycle or less between
# frames, a fighting arm by about half a cycle: from one pose to its opposite.
SLOW_TEMPO = (0.4, 1.0)
FIGHT_TEMPO = (3.5, 4.5)
EVENT_LENGTH = (0.25, 0.5)  # share of the clip; an event covers at most half of it
TEMPORAL_LIMB = 0.09  # limbs a little thicker than the posture task's, so poses read at 64 px
TEMPORAL_FLASH = 0.14  # a muzzle flash's radius, share of the height (posture task: 0.06)
# The share of normal clips that show a sparring pair: a model that cannot read the pair's
# rhythm can only guess between fight and normal on them (at 0.6 a per-frame average still
# scored 0.83).
NORMAL_PAIR_SHARE = 0.9


def _pair(rng, size, fight=None) -> list:
    """Two people face to face, sparring slowly (talk, greet, dance); with `fight` =
    (start, end), they fight at several times the rhythm in that part of the clip."""
    center = rng.uniform(0.35, 0.65)
    gap = rng.uniform(0.16, 0.22)
    y = rng.uniform(0.82, 0.92)
    pair = []
    for i, side in enumerate((-1, 1)):
        fast = dict(fast_tempo=rng.uniform(*FIGHT_TEMPO), fast_start=fight[0], fast_end=fight[1],
                    actor=True) if fight else {}
        pair.append(_person(rng, size, f"pair{i}", "spar", SCENERY, x=center + side * gap / 2,
                            y=y + rng.uniform(-0.02, 0.02), facing=-side,
                            tempo=rng.uniform(*SLOW_TEMPO), limb=TEMPORAL_LIMB, **fast))
    return pair


def _pointer(rng, size, name="pointer", fires=False, raise_time=None):
    """A person who raises an arm holding a small dark object and holds it up (points or
    films with a phone); the shooter is the same person, who fires during the event."""
    facing = int(rng.choice([-1, 1]))
    x = rng.uniform(0.2, 0.4) if facing == 1 else rng.uniform(0.6, 0.8)
    raise_time = rng.uniform(0.05, 0.45) if raise_time is None else raise_time
    return _person(rng, size, name, "point", SCENERY, x=x, facing=facing, carries="gun",
                   raise_time=raise_time, actor=fires, limb=TEMPORAL_LIMB)


def _walker(rng, size, i):
    return _person(rng, size, f"walker{i}", "walk", SCENERY, x=rng.uniform(0.15, 0.85),
                   speed=rng.uniform(0.04, 0.1), tempo=rng.uniform(0.5, 0.9),
                   carries=rng.choice([None, "box", "bag"]), limb=TEMPORAL_LIMB)


def _event(rng) -> tuple:
    length = rng.uniform(*EVENT_LENGTH)
    start = rng.uniform(0.1, 1.0 - length)
    return float(start), float(start + length)


def _temporal_scene(label: str, size: int, rng: np.random.Generator) -> Scene:
    """The temporal task: no single frame tells the class. Normal clips hold look-alikes of every event pose:
    people who spar slowly (the fight's poses at a talking pace) and a person who raises a
    phone as the shooter raises a gun. A fight is the pair's rhythm turning several times
    faster for a part of the clip; a shooting is a burst of muzzle flashes in a part of the
    clip, after which a bystander ducks. Before the event, the scene is normal.
    """
    background = _background(rng, size)
    people, event = [], None
    if label == "normal":
        pair, pointer = rng.random() < NORMAL_PAIR_SHARE, rng.random() < 0.5
        if pair:
            people += _pair(rng, size)
        if pointer or not pair:
            people.append(_pointer(rng, size))
        if rng.random() < 0.4:
            people.insert(0, _walker(rng, size, 0))
    elif label == "fight":
        event = _event(rng)
        people += _pair(rng, size, fight=event)
        if rng.random() < 0.4:
            people.insert(0, _pointer(rng, size))
    elif label == "shooting":
        event = _event(rng)
        people.append(_pointer(rng, size, "shooter", fires=True,
                               raise_time=rng.uniform(0.05, max(0.06, event[0] - 0.1))))
        if rng.random() < 0.4:
            people.insert(0, _walker(rng, size, 0))
    else:
        raise ValueError(f"label must be one of {CLASSES}, got {label!r}")

    cart, lamp = _distractors(rng)
    # A bystander who throws up the arms and ducks: after the first shot in a shooting, at
    # any moment in the other classes (so a frightened person alone is no sign of a shot).
    if label == "shooting" or rng.random() < 0.6:
        react = event[0] + rng.uniform(0.08, 0.15) if label == "shooting" else rng.uniform(0.1, 1.0)
        people.insert(0, _person(rng, size, "bystander", "duck", SCENERY,
                                 x=rng.uniform(0.1, 0.9), y=rng.uniform(0.75, 0.85),
                                 raise_time=react, limb=TEMPORAL_LIMB))
    return Scene(label=label, size=size, background=background, people=people, cart=cart,
                 lamp=lamp, light_phase=rng.uniform(0, 2 * np.pi),
                 light_amplitude=rng.uniform(0.03, 0.1), noise=rng.uniform(1.0, 3.0),
                 seed_for_noise=int(rng.integers(2**31)), task="temporal", event=event)


def plan_scene(label: str, size: int, rng: np.random.Generator, task: str = "temporal") -> Scene:
    """Draw every random choice of one clip of `task` (see TASKS): the room, the people,
    the event, the distractors."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return (_posture_scene if task == "posture" else _temporal_scene)(label, size, rng)


class _Canvas:
    """Draws the same geometry into the frame and into the id map."""

    def __init__(self, frame, ids, names, hidden):
        self.frame, self.ids, self.names, self.hidden = frame, ids, names, hidden

    def object_id(self, name, kind):
        """The id of a named object, the same in every frame of the clip."""
        if (name, kind) not in self.names:
            self.names.append((name, kind))
        return self.names.index((name, kind))

    def line(self, oid, p0, p1, color, thickness):
        if self.names[oid][1] in self.hidden:
            return
        p0, p1 = _point(p0), _point(p1)
        cv2.line(self.frame, p0, p1, color, thickness)
        cv2.line(self.ids, p0, p1, oid, thickness)

    def disc(self, oid, center, radius, color):
        if self.names[oid][1] in self.hidden:
            return
        center = _point(center)
        cv2.circle(self.frame, center, radius, color, -1)
        cv2.circle(self.ids, center, radius, oid, -1)

    def polygon(self, oid, points, color):
        if self.names[oid][1] in self.hidden:
            return
        points = np.round(np.asarray(points)).astype(np.int32)
        cv2.fillPoly(self.frame, [points], color)
        cv2.fillPoly(self.ids, [points], oid)


def _point(p):
    return int(round(p[0])), int(round(p[1]))


def _end(p, length, angle):
    """The end of a segment of `length` leaving `p` at `angle` radians from straight down."""
    return p[0] + length * np.sin(angle), p[1] + length * np.cos(angle)


def _strikes(person: Person, t: float) -> tuple:
    """A sparring person's jab, cross and kick at time t, each in [-1, 1] (1: fully out)."""
    speedup = person.speedup(t)
    jab = np.sin(2 * np.pi * person.tempo * t + person.phase + speedup)
    cross = np.sin(2 * np.pi * person.tempo * t + person.phase + 2.2 + speedup)
    kick = np.sin(2 * np.pi * person.tempo * 0.7 * t + person.phase + 1.0 + 0.7 * speedup)
    return jab, cross, kick


def _sparring(person: Person, t: float, lean: float, lean_gain: float, shift_gain: float) -> dict:
    """Jab, cross and kick at time t; the body leans by `lean` and follows the jab by
    `lean_gain` (radians) and `shift_gain` (share of the frame)."""
    jab, cross, kick = _strikes(person, t)
    return dict(hip_front=0.3 + 0.45 * max(kick, 0), hip_back=-0.3, knee=0.3 - 0.2 * kick,
                arm_front=1.1 + 0.8 * jab, elbow_front=1.2 * (1 - jab) / 2 + 0.1,
                arm_back=1.0 + 0.8 * cross, elbow_back=1.3 * (1 - cross) / 2 + 0.1,
                lean=lean + lean_gain * jab, shift=shift_gain * jab)


def _pose(person: Person, t: float) -> dict:
    """Joint angles (radians from straight down, positive towards `facing`) at time t in [0, 1]."""
    if person.motion == "walk":
        swing = np.sin(2 * np.pi * person.tempo * t + person.phase)
        return dict(hip_front=0.3 * swing, hip_back=-0.3 * swing, knee=0.15,
                    arm_front=-0.25 * swing, arm_back=0.25 * swing, elbow_front=0.3,
                    elbow_back=0.3, lean=0.0, shift=0.0)
    if person.motion == "fight":  # posture task
        return _sparring(person, t, 0.15, 0.12, 0.025)
    if person.motion == "spar":  # temporal task: the body follows the jab further
        return _sparring(person, t, 0.1, 0.35, 0.045)
    if person.motion in ("shoot", "point"):
        raised = np.clip(t / person.raise_time, 0.0, 1.0)
        return dict(hip_front=0.15, hip_back=-0.15, knee=0.05, arm_front=0.1 + 1.47 * raised,
                    elbow_front=0.4 * (1 - raised), arm_back=0.15, elbow_back=0.3, lean=0.0,
                    shift=0.0)
    if person.motion in ("react", "duck"):  # arms thrown up; a ducking person bends the knees
        scared = float(t >= person.raise_time)
        bend = 0.6 if person.motion == "duck" else 0.0
        return dict(hip_front=0.1, hip_back=-0.1, knee=0.05 + bend * scared,
                    arm_front=0.2 + 2.6 * scared, elbow_front=0.3 + 0.3 * scared,
                    arm_back=0.15 + 2.5 * scared, elbow_back=0.3, lean=-0.15 * scared,
                    shift=-0.04 * scared)
    raise ValueError(f"unknown motion {person.motion!r}")


def _draw_person(canvas: _Canvas, person: Person, t: float, size: int, in_event: bool,
                 flash: bool):
    pose = _pose(person, t)
    f = person.facing
    h = person.height * size
    x = (person.x + person.speed * f * (t - 0.5) + pose["shift"] * f) * size
    feet_y = person.y * size
    # Posture task: the shooter's arm, gun and flash are always the evidence, not the whole
    # body. Temporal task: during the event a fighter's whole body is the evidence, a
    # shooter's arm, gun and flash are; the same person is scenery before and after.
    evident = person.actor and in_event
    body = canvas.object_id(person.name, EVIDENCE if evident and person.motion == "spar"
                            else person.kind)
    arm_kind = EVIDENCE if person.motion == "shoot" or evident else person.kind
    arm = canvas.object_id(person.name + "_arm", arm_kind)
    limb, torso_width = max(1, round(person.limb * h)), max(2, round(0.13 * h))
    hip = (x, feet_y - 0.47 * h)
    shoulder = _end(hip, 0.32 * h, np.pi + pose["lean"] * f)
    head = _end(shoulder, 0.11 * h, np.pi + pose["lean"] * f)

    def leg(angle):
        knee = _end(hip, 0.24 * h, angle * f)
        foot = _end(knee, 0.24 * h, (angle - pose["knee"]) * f)
        canvas.line(body, hip, knee, person.pants, limb)
        canvas.line(body, knee, foot, person.pants, limb)

    def arm_segments(oid, angle, elbow_bend, color):
        elbow = _end(shoulder, 0.17 * h, angle * f)
        hand = _end(elbow, 0.16 * h, (angle + elbow_bend) * f)
        canvas.line(oid, shoulder, elbow, color, limb)
        canvas.line(oid, elbow, hand, person.skin, limb)
        return hand, (angle + elbow_bend)

    arm_segments(body, pose["arm_back"], pose["elbow_back"], person.shirt)
    leg(pose["hip_back"])
    canvas.line(body, hip, shoulder, person.shirt, torso_width)
    leg(pose["hip_front"])
    canvas.disc(body, head, max(1, round(0.08 * h)), person.skin)
    hand, angle = arm_segments(arm, pose["arm_front"], pose["elbow_front"], person.shirt)

    if person.carries == "box":
        side = 0.1 * h
        canvas.polygon(body, [(hand[0] - side / 2, hand[1]), (hand[0] + side / 2, hand[1]),
                              (hand[0] + side / 2, hand[1] + side), (hand[0] - side / 2, hand[1] + side)],
                       (150, 110, 60))
    elif person.carries == "bag":
        canvas.line(body, hand, (hand[0], hand[1] + 0.12 * h), (40, 40, 160), max(2, round(0.09 * h)))
    if person.motion == "shoot" or person.carries == "gun":  # a gun, or a phone: the same small dark object
        posture = person.motion == "shoot"  # its gun and flash are objects of their own
        gun = canvas.object_id("gun", EVIDENCE) if posture else arm if evident else body
        muzzle = _end(hand, 0.09 * h, angle * f)
        canvas.line(gun, hand, muzzle, (25, 25, 25), max(1, round(0.05 * h)))
        grip = _end(hand, 0.05 * h, (angle - 1.4) * f)
        canvas.line(gun, hand, grip, (25, 25, 25), max(1, round(0.04 * h)))
        if flash:  # the temporal task's shots are its only sign of a shooting: a larger burst
            flash_id = canvas.object_id("flash", EVIDENCE) if posture else arm
            burst = 0.06 if posture else TEMPORAL_FLASH
            tip = _end(muzzle, 0.05 * h, angle * f)
            canvas.disc(flash_id, tip, max(1, round(burst * h)), (255, 235, 120))
            canvas.disc(flash_id, tip, max(1, round(burst / 2 * h)), (255, 255, 230))


def frame_times(frames: int) -> np.ndarray:
    """Frame i shows time (i + 0.5) / frames of the clip, so one frame shows its middle."""
    return (np.arange(frames) + 0.5) / frames


def event_frames(scene: Scene, frames: int) -> np.ndarray:
    """(T,) bool: the frames that hold the class's event. Posture task: every frame (the
    evidence never leaves). Temporal task: the frames whose time lies in the event's
    [start, end), at most half of them and at least one (an event shorter than a frame gets
    the frame nearest its middle); none in a normal clip."""
    if scene.task == "posture":
        return np.ones(frames, bool)
    inside = np.zeros(frames, bool)
    if scene.event is None:
        return inside
    start, end = scene.event
    times = frame_times(frames)
    inside[(times >= start) & (times < end)] = True
    if not inside.any():
        inside[np.abs(times - (start + end) / 2).argmin()] = True
    inside[np.flatnonzero(inside)[max(1, frames // 2):]] = False
    return inside


def render(scene: Scene, frames: int, hidden=()):
    """Render the planned scene: (T, H, W, 3) uint8 frames, (T, H, W) id maps, object names.

    `hidden` lists kinds (``"evidence"``, ``"distractor"``, ``"scenery"``) to leave out.
    """
    size = scene.size
    times = frame_times(frames)
    in_event = event_frames(scene, frames)
    noise_rng = np.random.default_rng(scene.seed_for_noise)
    out = np.empty((frames, size, size, 3), np.uint8)
    id_maps = np.zeros((frames, size, size), np.uint8)
    names: list = [("background", SCENERY)]
    for i, t in enumerate(times):
        light = 1.0 + scene.light_amplitude * np.sin(2 * np.pi * t + scene.light_phase)
        frame = scene.background * np.float32(light)
        canvas = _Canvas(frame, id_maps[i], names, set(hidden))
        _draw_lamp(canvas, scene, i, size)
        _draw_cart(canvas, scene, t, size)
        for person in scene.people:
            _draw_person(canvas, person, t, size, in_event[i],
                         flash=_fires(person, i, times, in_event[i]))
        frame += noise_rng.normal(0, scene.noise, frame.shape).astype(np.float32)
        out[i] = np.clip(frame, 0, 255)
    return out, id_maps, names


def _fires(person: Person, index: int, times: np.ndarray, in_event: bool) -> bool:
    """Whether the person's gun flashes in frame `index`: in every event frame for an actor
    who carries a gun (temporal task), at the planned flash times (posture task)."""
    return (person.actor and person.carries == "gun" and in_event) or index in _flash_frames(person, times)


POSES = ("left_sparring", "left_jab", "left_cross", "left_kick",
         "right_sparring", "right_jab", "right_cross", "right_kick",
         "arm_raised", "flash", "ducked")


def pose_targets(scene: Scene, frames: int) -> np.ndarray:
    """(T, len(POSES)) float32: what each frame shows of the people, named by ``POSES``.

    The sparring (or fighting) pair, left and right: whether each is there and their jab,
    cross and kick in [-1, 1]; how far the pointer's or shooter's arm is raised (0 to 1),
    whether a gun flashes, whether a bystander has ducked. Frame-level targets to pretrain a
    frame network on, a stand-in for the ImageNet features that let the paper's VGG19 see
    limbs: no single frame of the temporal task tells its class, so frames labelled with their
    clip's class teach a frame network nothing about poses."""
    times, in_event = frame_times(frames), event_frames(scene, frames)
    targets = np.zeros((frames, len(POSES)), np.float32)
    column = {name: POSES.index(name) for name in POSES}
    sparring = sorted((p for p in scene.people if p.motion in ("spar", "fight")), key=lambda p: p.x)
    for side, person in zip(("left", "right"), sparring[:2]):
        targets[:, column[f"{side}_sparring"]] = 1.0
        strikes = np.array([_strikes(person, t) for t in times])
        for i, strike in enumerate(("jab", "cross", "kick")):
            targets[:, column[f"{side}_{strike}"]] = strikes[:, i]
    for person in scene.people:
        if person.motion in ("point", "shoot"):
            raised = np.clip(times / person.raise_time, 0, 1)
            fires = [_fires(person, i, times, in_event[i]) for i in range(frames)]
            targets[:, column["arm_raised"]] = np.maximum(targets[:, column["arm_raised"]], raised)
            targets[:, column["flash"]] = np.maximum(targets[:, column["flash"]], fires)
        elif person.motion == "duck":
            ducked = times >= person.raise_time
            targets[:, column["ducked"]] = np.maximum(targets[:, column["ducked"]], ducked)
    return targets


def _flash_frames(person: Person, times: np.ndarray) -> set:
    """Posture task: the frames nearest to each planned muzzle flash, so every frame count
    shows one."""
    return {int(np.abs(times - flash).argmin()) for flash in person.flash_times}


def _draw_lamp(canvas, scene, index, size):
    if scene.lamp is None:
        return
    lamp = canvas.object_id("lamp", DISTRACTOR)
    on = scene.lamp["states"][index % len(scene.lamp["states"])]
    center = (scene.lamp["x"] * size, scene.lamp["y"] * size)
    color = scene.lamp["color"] if on else (70, 70, 60)
    if on:
        canvas.disc(lamp, center, _scale(size, 0.07), tuple(0.6 * c + 40 for c in color))
    canvas.disc(lamp, center, _scale(size, 0.035), color)


def _draw_cart(canvas, scene, t, size):
    if scene.cart is None:
        return
    cart = canvas.object_id("cart", DISTRACTOR)
    c = scene.cart
    x0 = (c["start"] + c["speed"] * t) * size
    y1 = c["y"] * size
    w = c["width"] * size
    body = [(x0, y1 - 0.45 * w), (x0 + w, y1 - 0.45 * w), (x0 + w, y1), (x0, y1)]
    canvas.polygon(cart, body, c["color"])
    canvas.polygon(cart, [(x0 + 0.15 * w, y1 - 0.45 * w), (x0 + 0.8 * w, y1 - 0.45 * w),
                          (x0 + 0.7 * w, y1 - 0.7 * w), (x0 + 0.25 * w, y1 - 0.7 * w)],
                   tuple(0.6 * v for v in c["color"]))
    for wheel in (x0 + 0.2 * w, x0 + 0.8 * w):
        canvas.disc(cart, (wheel, y1), max(1, round(0.1 * w)), (20, 20, 20))


def evidence_mask(id_maps: np.ndarray, names: list) -> np.ndarray:
    evidence_ids = [i for i, (_, kind) in enumerate(names) if kind == EVIDENCE]
    return np.isin(id_maps, evidence_ids)


def evidence_boxes(id_maps: np.ndarray, names: list) -> list:
    """Per frame, a list of (name, x0, y0, x1, y1) boxes, inclusive, one per visible evidence object."""
    boxes = []
    for ids in id_maps:
        frame_boxes = []
        for oid, (name, kind) in enumerate(names):
            if kind != EVIDENCE:
                continue
            ys, xs = np.nonzero(ids == oid)
            if len(xs):
                frame_boxes.append((name, int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())))
        boxes.append(frame_boxes)
    return boxes
