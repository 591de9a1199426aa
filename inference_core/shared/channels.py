"""Motion channel names (stdlib only, shared by the core and the add-on)."""

from __future__ import annotations

#: The 52 ARKit blendshape names, in Apple's documented order. The bundled
#: model outputs one weight in [0, 1] per name and frame.
ARKIT_52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft",
    "eyeLookUpLeft", "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight",
    "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
assert len(ARKIT_52) == 52 and len(set(ARKIT_52)) == 52

#: Channels that shape the mouth; used by mouth-weighted losses and metrics.
MOUTH_CHANNELS: tuple[str, ...] = tuple(
    n for n in ARKIT_52 if n.startswith(("jaw", "mouth", "cheekPuff", "tongue"))
)


def normalise_name(name: str) -> str:
    """Key used to match channel names to shape keys: case- and separator-insensitive.

    ``mouthSmile_L``, ``MouthSmileLeft`` and ``mouth_smile_left`` all map to
    ``mouthsmileleft`` so characters rigged by other tools bind without edits.
    """
    key = name.strip().lower()
    for sep in ("_", "-", ".", " "):
        key = key.replace(sep, "")
    if key.endswith("l") and not key.endswith("left") and name.strip()[-2:] in ("_L", ".L", "_l", ".l"):
        key = key[:-1] + "left"
    elif key.endswith("r") and not key.endswith("right") and name.strip()[-2:] in ("_R", ".R", "_r", ".r"):
        key = key[:-1] + "right"
    return key
