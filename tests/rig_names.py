"""Shape-key names of the rig families the retarget presets are for, generated (no files needed).

Used by the pure preset tests (``test_retarget.py``) and by the Blender tests that generate
animation on a mesh with these keys (``test_presets_blender.py``).
"""

from __future__ import annotations

import re

from streamingtalker_addon.client.core import ARKIT_52
from streamingtalker_addon.demo_head.asset import load_head
from streamingtalker_addon.logic import presets

OCULUS = [f"viseme_{v}" for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()]


def cc_numbered(ch: str, i: int) -> str:
    """ARKit name in Character Creator's numbered ARKit-compatible spelling: A38_Mouth_Smile_Left."""
    return f"A{i + 1:02d}_" + "_".join(w.capitalize() for w in re.findall(r"[a-z]+|[A-Z][a-z]*", ch))


#: generated key-name lists, one per rig naming the presets are for (plus unrelated keys)
RIGS = {
    "arkit_exact": list(ARKIT_52) + ["Smile_custom"],
    "arkit_variants": [("jaw_open" if ch == "jawOpen" else
                        ch[:-4] + "_L" if ch.endswith("Left") else ch[:-5] + ".R" if ch.endswith("Right")
                        else ch[0].upper() + ch[1:]) for ch in ARKIT_52],
    "ict_demo_head": list(load_head().shapes),
    "cc4_extended": [k for keys in presets._CC4_NAMES.values() for k in keys] + ["Tongue_Out", "V_Open"],
    "cc_arkit_numbered": [cc_numbered(ch, i) for i, ch in enumerate(ARKIT_52)],
    "ready_player_me": list(ARKIT_52) + OCULUS + ["mouthOpen", "mouthSmile", "eyesClosed"],
    "ready_player_me_visemes": OCULUS,
    "vroid": [f"Fcl_MTH_{v}" for v in "A I U E O Close Joy".split()]
             + ["Fcl_EYE_Close", "Fcl_EYE_Close_L", "Fcl_EYE_Close_R", "Fcl_BRW_Angry", "Fcl_ALL_Joy"],
    "vrm1": "aa ih ou ee oh blink blinkLeft blinkRight happy angry".split(),
}
EXPECTED = {  # rig → (preset id, channels at least bound, a mouth key that must be driven)
    "arkit_exact": ("arkit", 52, "jawOpen"),
    "arkit_variants": ("arkit_any", 52, "jaw_open"),
    "ict_demo_head": ("arkit_any", 51, "jawOpen"),
    "cc4_extended": ("cc4", 51, "Jaw_Open"),
    "cc_arkit_numbered": ("cc4", 52, "A18_Jaw_Open"),
    "ready_player_me": ("rpm", 52, "jawOpen"),
    "ready_player_me_visemes": ("rpm", 10, "viseme_aa"),
    "vroid": ("vrm", 7, "Fcl_MTH_A"),
    "vrm1": ("vrm", 7, "aa"),
}
