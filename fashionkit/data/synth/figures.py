"""People-like figures: body proportions, a sampled pose, and the unannotated body (skin, hair,
face).

Figure space is measured in head units (an adult is 8 heads tall), x to the image's right,
y down, with the top of the head at y = 0 and the soles at y = 8. Sides are ``-1`` (image left)
and ``+1`` (image right). :class:`Figure` maps figure space to image pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fashionkit.data.synth import geometry as g
from fashionkit.data.synth.canvas import Op, SceneObject
from fashionkit.data.synth.textures import Paint

__all__ = ["Z", "Pose", "Figure", "sample_pose", "body_ops", "SKIN_TONES", "HAIR_COLORS"]


class Z:
    """Drawing order within one figure, back to front."""

    HAIR_BACK = 0.0
    HOOD = 0.5
    BODY = 1.0
    HAIR = 1.5
    TIGHTS = 2.0
    SOCKS = 2.5
    SHOES = 3.0
    TOP_TUCKED = 3.5
    BOTTOM = 4.0
    TOP = 5.0
    BELT = 5.5
    TIE = 6.0
    OUTER = 7.0
    SCARF = 8.0
    HANDS = 9.0
    WATCH = 9.5
    BAG = 10.0
    GLASSES = 11.0
    HAT = 12.0


SKIN_TONES = [
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 128),
    (198, 134, 92),
    (161, 102, 62),
    (120, 74, 46),
    (88, 56, 36),
]
HAIR_COLORS = [(20, 16, 14), (60, 40, 26), (110, 72, 40), (200, 160, 90), (150, 60, 30), (170, 170, 170)]


@dataclass
class Pose:
    """Joint positions in figure space (``(2,)`` arrays, index 0 = image-left side)."""

    shoulder_half: float  # half the shoulder width
    hip_half: float
    waist_half: float
    shoulders: list[np.ndarray]  # shoulder corner of the torso
    arm_roots: list[np.ndarray]
    elbows: list[np.ndarray]
    wrists: list[np.ndarray]
    hands: list[np.ndarray]
    hips: list[np.ndarray]  # leg roots
    knees: list[np.ndarray]
    ankles: list[np.ndarray]
    toes: list[np.ndarray]
    head: np.ndarray
    head_r: tuple[float, float]
    raised: list[bool]

    NECK_Y = 1.25
    SHOULDER_Y = 1.45
    ARMPIT_Y = 2.15
    WAIST_Y = 3.0
    HIP_Y = 3.85
    CROTCH_Y = 4.25
    ARM_R = (0.21, 0.16, 0.13)  # at shoulder, elbow, wrist
    LEG_R = (0.36, 0.24, 0.15)  # at hip, knee, ankle

    def torso_half(self, y: float) -> float:
        """Half width of the bare torso at height ``y`` (figure units)."""
        ys = [self.SHOULDER_Y, self.ARMPIT_Y, self.WAIST_Y, self.HIP_Y, self.CROTCH_Y, 8.0]
        ws = [
            self.shoulder_half,
            self.shoulder_half * 0.86,
            self.waist_half,
            self.hip_half,
            self.hip_half * 1.0,
            self.hip_half,
        ]
        return float(np.interp(y, ys, ws))

    def arm_line(self, side: int) -> np.ndarray:
        """Arm root → elbow → wrist, ``(3, 2)``."""
        i = 0 if side < 0 else 1
        return np.stack([self.arm_roots[i], self.elbows[i], self.wrists[i]])

    def leg_line(self, side: int) -> np.ndarray:
        """Hip → knee → ankle, ``(3, 2)``."""
        i = 0 if side < 0 else 1
        return np.stack([self.hips[i], self.knees[i], self.ankles[i]])


def _unit(angle: float) -> np.ndarray:
    """Direction ``angle`` radians away from straight down, towards the figure's outside for
    side +1 (callers mirror x for side -1)."""
    return np.array([math.sin(angle), math.cos(angle)])


def sample_pose(rng: np.random.Generator) -> Pose:
    """A standing pose: arm spread and elbow bend per arm (one arm sometimes raised), leg
    stance, and body build, all varied."""
    sh = float(rng.uniform(0.92, 1.12))
    hip = float(rng.uniform(0.78, 0.95))
    waist = float(min(sh, hip) * rng.uniform(0.74, 0.86))
    stance = float(rng.uniform(0.0, 0.45))
    walk = float(rng.uniform(-0.25, 0.25)) if rng.random() < 0.4 else 0.0
    shoulders, roots, elbows, wrists, hands, raised = [], [], [], [], [], []
    for side in (-1, 1):
        sx = np.array([side, 1.0])
        shoulders.append(np.array([side * sh, Pose.SHOULDER_Y]))
        root = np.array([side * (sh - 0.17), Pose.SHOULDER_Y + 0.2])
        up = rng.random() < 0.1
        if up:
            a_up = math.radians(rng.uniform(110, 165))
            a_fore = a_up + math.radians(rng.uniform(-40, 10))
        else:
            a_up = math.radians(rng.uniform(7, 38))
            a_fore = max(math.radians(6), a_up + math.radians(rng.uniform(-15, 30)))
        elbow = root + _unit(a_up) * sx * 1.45
        wrist = elbow + _unit(a_fore) * sx * 1.25
        hand = wrist + _unit(a_fore) * sx * 0.32
        roots.append(root)
        elbows.append(elbow)
        wrists.append(wrist)
        hands.append(hand)
        raised.append(up)
    hips, knees, ankles, toes = [], [], [], []
    for i, side in enumerate((-1, 1)):
        hip_j = np.array([side * 0.42, Pose.HIP_Y + 0.1])
        ankle = np.array([side * (0.42 + stance) + (walk if i == 0 else -walk), 7.65])
        knee = (hip_j + ankle) / 2 + np.array([side * 0.04 + (walk * 0.6 if i == 0 else 0.0), 0.0])
        toe = ankle + np.array([side * 0.22, 0.3])
        hips.append(hip_j)
        knees.append(knee)
        ankles.append(ankle)
        toes.append(toe)
    head = np.array([float(rng.uniform(-0.06, 0.06)), 0.56])
    return Pose(
        shoulder_half=sh,
        hip_half=hip,
        waist_half=waist,
        shoulders=shoulders,
        arm_roots=roots,
        elbows=elbows,
        wrists=wrists,
        hands=hands,
        hips=hips,
        knees=knees,
        ankles=ankles,
        toes=toes,
        head=head,
        head_r=(0.42, 0.54),
        raised=raised,
    )


@dataclass
class Figure:
    """A posed figure placed in the image: ``scale`` pixels per head unit, rotated by ``angle``
    radians about its feet at ``feet`` (image pixels). It collects drawing steps in figure space
    and hands them over in image space."""

    pose: Pose
    scale: float
    angle: float
    feet: tuple[float, float]
    index: int = 0

    def __post_init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, item: SceneObject, z: float, polygons, paint: Paint | None = None, decor=False):
        if isinstance(polygons, np.ndarray):
            polygons = [polygons]
        self.ops.append(Op(item, z, list(polygons), paint, decor))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return g.transform(np.asarray(points) - np.array([0.0, 8.0]), self.scale, self.angle, self.feet)

    def image_ops(self) -> list[Op]:
        """The steps back to front (stable within one z), polygons in image pixels."""
        ordered = sorted(self.ops, key=lambda op: op.z)
        return [
            Op(op.item, op.z, [self.to_image(p) for p in op.polygons], op.paint, op.decor)
            for op in ordered
        ]


def body_ops(fig: Figure, rng: np.random.Generator, *, hair_visible: bool = True) -> SceneObject:
    """Skin, face and hair of ``fig`` (not annotated). Returns the skin item."""
    p = fig.pose
    skin_rgb = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    skin = SceneObject(None, Paint("plain", (skin_rgb,), shade=0.22, outline=0.8))
    hair_rgb = HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))]
    hair = SceneObject(None, Paint("plain", (hair_rgb,), shade=0.3, outline=0.7))
    style = rng.choice(["short", "long", "bun", "bob"]) if hair_visible else "none"
    hx, hy = p.head
    rx, ry = p.head_r
    if style == "long":
        fig.add(hair, Z.HAIR_BACK, g.quad(
            (hx - rx * 1.15, hy - 0.1), (hx + rx * 1.15, hy - 0.1),
            (hx + rx * 1.35, 2.3), (hx - rx * 1.35, 2.3)))
    elif style == "bob":
        fig.add(hair, Z.HAIR_BACK, g.ellipse(hx, hy + 0.15, rx * 1.3, ry * 1.1))
    # Neck, torso and limbs in one step, so that only the body's outline is drawn, not the
    # joints between its pieces.
    t = [p.SHOULDER_Y, p.ARMPIT_Y, p.WAIST_Y, p.HIP_Y, p.CROTCH_Y]
    right = [(p.torso_half(y), y) for y in t]
    left = [(-x, y) for x, y in reversed(right)]
    body = [g.rect(hx - 0.17, hy + 0.3, hx + 0.17, p.NECK_Y + 0.3),
            np.array([(-0.25, p.NECK_Y), (0.25, p.NECK_Y), *right, *left])]
    for side in (-1, 1):
        arm = p.arm_line(side)
        body += g.capsule(arm[0], arm[1], p.ARM_R[0], p.ARM_R[1])
        body += g.capsule(arm[1], arm[2], p.ARM_R[1], p.ARM_R[2])
        leg = p.leg_line(side)
        body += g.capsule(leg[0], leg[1], p.LEG_R[0], p.LEG_R[1])
        body += g.capsule(leg[1], leg[2], p.LEG_R[1], p.LEG_R[2])
        i = 0 if side < 0 else 1
        body += g.capsule(p.ankles[i], p.toes[i], 0.13, 0.11)
    fig.add(skin, Z.BODY, body)
    for i in range(2):
        # Hands are drawn late so that they stay in front of the clothes they rest on.
        d = p.hands[i] - p.wrists[i]
        fig.add(skin, Z.HANDS, g.ellipse(p.hands[i][0], p.hands[i][1], 0.17, 0.24, n=12, rot=math.atan2(d[1], d[0]) - math.pi / 2))
    fig.add(skin, Z.BODY, g.ellipse(hx, hy, rx, ry, n=24))
    # Face: eyes, brows and mouth, so that heads read as heads.
    dark = Paint("plain", ((30, 24, 24),), shade=0.0, outline=1.0)
    lip = Paint("plain", ((150, 60, 60),), shade=0.0, outline=1.0)
    for s in (-1, 1):
        fig.add(skin, Z.BODY, g.ellipse(hx + s * 0.16, hy + 0.02, 0.055, 0.07, n=8), dark, decor=True)
    fig.add(skin, Z.BODY, g.ellipse(hx, hy + 0.3, 0.12, 0.035, n=10), lip, decor=True)
    if style != "none":
        # A cap over the skull down to the brow line, with a side-swept fringe.
        fig.add(hair, Z.HAIR, g.ellipse(hx, hy - 0.1, rx * 1.07, ry * 0.97, n=20, a0=math.pi, a1=2 * math.pi))
        s = 1 if rng.random() < 0.5 else -1
        fig.add(hair, Z.HAIR, g.quad((hx - s * rx * 1.05, hy - 0.12), (hx + s * rx * 0.3, hy - 0.12),
                                     (hx - s * rx * 0.9, hy + 0.12)))
    if style == "bun":
        fig.add(hair, Z.HAIR, g.ellipse(hx, hy - ry - 0.08, 0.22, 0.18))
    return skin
