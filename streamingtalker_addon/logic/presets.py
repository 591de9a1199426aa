"""The built-in retarget presets (no bpy): ARKit exact, ARKit spelled otherwise, Character Creator 4 /
iClone, Ready Player Me, VRoid / VRM.

Each is a :class:`~.retarget.Preset`; :func:`~.retarget.detect` picks one per mesh from its key
names. The viseme maps (VRoid/VRM mouths, Oculus visemes) are small linear maps from the ARKit
mouth channels, written by hand from the articulation targets the bundled model was trained on
(``inference_core/data/articulation.py``): for each vowel's ARKit pose the matching viseme is the
largest (held by ``tests/test_retarget.py``). Negative weights say "open, but not rounded" and
the sum is clipped to [0, 1].
"""

from __future__ import annotations

from typing import Sequence

from ..client.core import ARKIT_52
from .binding import Binding
from .retarget import Preset, Row, detect

#: ARKit channels some rigs split into halves (ICT FaceKit, Character Creator)
SPLIT_SINGLES = ("browInnerUp", "cheekPuff")
SIDED = tuple(ch[:-4] for ch in ARKIT_52 if ch.endswith("Left"))  # "eyeBlink", "mouthSmile", …


def _avg(base: str, weight: float) -> dict[str, float]:
    """Both sides of a sided channel, each at half the weight (the weight of their mean)."""
    return {f"{base}Left": weight / 2, f"{base}Right": weight / 2}


#: viseme → ARKit channel weights (vowels A I U E O as VRoid and VRM name them)
VOWELS: dict[str, dict[str, float]] = {
    "A": {"jawOpen": 1.6, "mouthFunnel": -1.0, "mouthPucker": -0.6, **_avg("mouthStretch", -1.2)},
    "I": {**_avg("mouthStretch", 2.8), "jawOpen": -0.8},
    "U": {"mouthPucker": 1.3, "mouthFunnel": 0.3},
    "E": {"jawOpen": 0.8, **_avg("mouthStretch", 1.6), "mouthFunnel": -0.8, "mouthPucker": -0.8},
    "O": {"mouthFunnel": 1.4, "jawOpen": 0.6, "mouthPucker": -0.4},
}
#: Oculus / Ready Player Me consonant visemes the ARKit channels can express
CONSONANTS: dict[str, dict[str, float]] = {
    "PP": {**_avg("mouthPress", 1.5), "mouthRollLower": 0.5, "mouthRollUpper": 0.5},
    "FF": {"mouthRollLower": 1.5, **_avg("mouthUpperUp", 0.5)},
    "TH": {"tongueOut": 2.0},
}
OCULUS = {"aa": "A", "I": "I", "U": "U", "E": "E", "O": "O"}


def _rows(key: str, weights: dict[str, float], fallback: bool = False) -> list[Row]:
    return [Row(ch, key, w, fallback) for ch, w in weights.items()]


def _halves_and_means() -> list[Row]:
    """Fallbacks: a split single goes to both halves; a sided pair to a rig's single key as their mean."""
    rows = [Row(ch, f"{ch}{side}", 1.0, True) for ch in SPLIT_SINGLES for side in ("Left", "Right")]
    rows += [Row(f"{base}{side}", base, 0.5, True) for base in SIDED for side in ("Left", "Right")]
    return rows


ARKIT_EXACT = Preset(
    "arkit", "ARKit (exact names)", (), by_name=True, builtin=True, rank=0,
    description="Shape keys named exactly as the model's channels (Apple's 52 ARKit blendshapes)")

ARKIT_LOOSE = Preset(
    "arkit_any", "ARKit (any casing, _L/_R/.L/.R)", tuple(_halves_and_means()), loose=True, by_name=True,
    builtin=True, rank=10,
    description="ARKit names in any casing or separators (JawOpen, jaw_open, mouthSmile_L, mouthSmile.L); "
                "browInnerUp and cheekPuff reach split halves, sided channels a single key")

#: Character Creator 4 "Extended" facial profile (its own names; iClone uses the same)
_CC4_NAMES: dict[str, tuple[str, ...]] = {
    "browDownLeft": ("Brow_Drop_L",), "browDownRight": ("Brow_Drop_R",),
    "browInnerUp": ("Brow_Raise_Inner_L", "Brow_Raise_Inner_R"),
    "browOuterUpLeft": ("Brow_Raise_Outer_L",), "browOuterUpRight": ("Brow_Raise_Outer_R",),
    "cheekPuff": ("Cheek_Puff_L", "Cheek_Puff_R"),
    "cheekSquintLeft": ("Cheek_Raise_L",), "cheekSquintRight": ("Cheek_Raise_R",),
    "eyeBlinkLeft": ("Eye_Blink_L",), "eyeBlinkRight": ("Eye_Blink_R",),
    "eyeLookDownLeft": ("Eye_L_Look_Down",), "eyeLookDownRight": ("Eye_R_Look_Down",),
    "eyeLookUpLeft": ("Eye_L_Look_Up",), "eyeLookUpRight": ("Eye_R_Look_Up",),
    # the left eye looks out to its own left; the right eye looks in to its left
    "eyeLookOutLeft": ("Eye_L_Look_L",), "eyeLookInLeft": ("Eye_L_Look_R",),
    "eyeLookOutRight": ("Eye_R_Look_R",), "eyeLookInRight": ("Eye_R_Look_L",),
    "eyeSquintLeft": ("Eye_Squint_L",), "eyeSquintRight": ("Eye_Squint_R",),
    "eyeWideLeft": ("Eye_Wide_L",), "eyeWideRight": ("Eye_Wide_R",),
    "jawForward": ("Jaw_Forward",), "jawLeft": ("Jaw_L",), "jawRight": ("Jaw_R",), "jawOpen": ("Jaw_Open",),
    "mouthClose": ("Mouth_Close",),
    "mouthFunnel": ("Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R", "Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R"),
    "mouthPucker": ("Mouth_Pucker_Up_L", "Mouth_Pucker_Up_R", "Mouth_Pucker_Down_L", "Mouth_Pucker_Down_R"),
    "mouthLeft": ("Mouth_L",), "mouthRight": ("Mouth_R",),
    "mouthSmileLeft": ("Mouth_Smile_L",), "mouthSmileRight": ("Mouth_Smile_R",),
    "mouthFrownLeft": ("Mouth_Frown_L",), "mouthFrownRight": ("Mouth_Frown_R",),
    "mouthDimpleLeft": ("Mouth_Dimple_L",), "mouthDimpleRight": ("Mouth_Dimple_R",),
    "mouthStretchLeft": ("Mouth_Stretch_L",), "mouthStretchRight": ("Mouth_Stretch_R",),
    "mouthRollLower": ("Mouth_Roll_In_Lower_L", "Mouth_Roll_In_Lower_R"),
    "mouthRollUpper": ("Mouth_Roll_In_Upper_L", "Mouth_Roll_In_Upper_R"),
    "mouthShrugLower": ("Mouth_Shrug_Lower",), "mouthShrugUpper": ("Mouth_Shrug_Upper",),
    "mouthPressLeft": ("Mouth_Press_L",), "mouthPressRight": ("Mouth_Press_R",),
    "mouthLowerDownLeft": ("Mouth_Down_Lower_L",), "mouthLowerDownRight": ("Mouth_Down_Lower_R",),
    "mouthUpperUpLeft": ("Mouth_Up_Upper_L",), "mouthUpperUpRight": ("Mouth_Up_Upper_R",),
    "noseSneerLeft": ("Nose_Sneer_L",), "noseSneerRight": ("Nose_Sneer_R",),
}

CC4 = Preset(
    "cc4", "Character Creator 4 / iClone",
    tuple(Row(ch, key) for ch, keys in _CC4_NAMES.items() for key in keys), loose=True, by_name=True,
    signature=(r"^[A-Z]\d\d_", r"^Brow_(Drop|Raise_Inner|Raise_Outer)_[LR]$", r"^Eye_[LR]_Look_",
               r"^Mouth_(Funnel|Pucker)_(Up|Down)_[LR]$", r"^Cheek_Raise_[LR]$"),
    builtin=True, rank=20,
    description="CC4 Extended profile names (Brow_Raise_Inner_L, Eye_L_Look_Up, Mouth_Funnel_Up_L, …) "
                "and CC's ARKit-compatible set (A01_Brow_Inner_Up … A51_Mouth_Stretch_Right)")

_RPM_EXTRAS = (_rows("mouthOpen", {"jawOpen": 1.0}, True) + _rows("mouthSmile", _avg("mouthSmile", 1.0), True)
               + _rows("eyesClosed", _avg("eyeBlink", 1.0), True) + _rows("eyesLookUp", _avg("eyeLookUp", 1.0), True)
               + _rows("eyesLookDown", _avg("eyeLookDown", 1.0), True))
_OCULUS_ROWS = ([r for name, vowel in OCULUS.items() for r in _rows(f"viseme_{name}", VOWELS[vowel], True)]
                + [r for name, w in CONSONANTS.items() for r in _rows(f"viseme_{name}", w, True)])

READY_PLAYER_ME = Preset(
    "rpm", "Ready Player Me", tuple(_RPM_EXTRAS + _OCULUS_ROWS), by_name=True, signature=(r"^viseme_",),
    builtin=True, rank=30,
    description="ARKit names plus Oculus visemes (viseme_aa, viseme_PP, …): the ARKit keys are driven and the "
                "visemes left alone; an avatar exported with visemes only gets them from a linear map")

_VRM_ROWS = ([r for v, w in VOWELS.items() for r in _rows(f"Fcl_MTH_{v}", w)]
             + [r for name, v in (("aa", "A"), ("ih", "I"), ("ou", "U"), ("ee", "E"), ("oh", "O"))
                for r in _rows(name, VOWELS[v])]
             + _rows("Fcl_EYE_Close_L", {"eyeBlinkLeft": 1.0}) + _rows("Fcl_EYE_Close_R", {"eyeBlinkRight": 1.0})
             + _rows("blinkLeft", {"eyeBlinkLeft": 1.0}) + _rows("blinkRight", {"eyeBlinkRight": 1.0})
             + _rows("Fcl_EYE_Close", _avg("eyeBlink", 1.0), True) + _rows("blink", _avg("eyeBlink", 1.0), True))

VRM = Preset(
    "vrm", "VRoid / VRM visemes", tuple(_VRM_ROWS), loose=True,
    signature=(r"^Fcl_", r"^(aa|ih|ou|ee|oh|blink|blinkLeft|blinkRight)$"), builtin=True, rank=40,
    description="VRoid's Fcl_MTH_A/I/U/E/O and Fcl_EYE_Close(_L/_R), VRM 1.0's aa ih ou ee oh and "
                "blink(Left/Right): the mouth from a linear map of the ARKit mouth channels")

BUILTIN: tuple[Preset, ...] = (ARKIT_EXACT, ARKIT_LOOSE, CC4, READY_PLAYER_ME, VRM)
BY_ID = {p.id: p for p in BUILTIN}


def auto_bind(channels: Sequence[str], key_names: Sequence[str], extra: Sequence[Preset] = ()) -> Binding:
    """The binding of the preset (built-in, or one of ``extra``) that suits these key names best."""
    return detect(tuple(BUILTIN) + tuple(extra), channels, key_names)[1]
