"""Retarget presets as pure logic (no Blender): detection by key names, name maps, linear maps, preset files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from inference_core.data.articulation import _T as ARTICULATION_TARGETS
from rig_names import EXPECTED, RIGS
from streamingtalker_addon.client.core import ARKIT_52
from streamingtalker_addon.logic import binding, presets, retarget

@pytest.mark.parametrize("rig", sorted(RIGS))
def test_detect_picks_the_preset_for_each_naming(rig):
    preset_id, min_bound, mouth_key = EXPECTED[rig]
    chosen, b = retarget.detect(presets.BUILTIN, ARKIT_52, RIGS[rig])
    assert chosen.id == preset_id, (rig, chosen.id, b.summary(52))
    assert len(b.channels_bound) >= min_bound
    assert mouth_key in b.keys
    assert set(b.keys) <= set(RIGS[rig])  # only keys the mesh has
    assert sorted(b.unmapped) == sorted(set(ARKIT_52) - set(b.channels_bound))


def test_demo_head_reports_what_it_lacks():
    b = presets.auto_bind(ARKIT_52, RIGS["ict_demo_head"])
    assert b.unmapped == ["tongueOut"]  # reported, not silently dropped
    cheek = sorted(k for _, ch, k in b.pairs if ch == "cheekPuff")
    assert cheek == ["cheekPuffLeft", "cheekPuffRight"]  # ICT splits it: both halves move
    assert any("cheekPuff → cheekPuffLeft + cheekPuffRight" in n for n in b.notes)
    assert "tongueOut" in b.summary(52)


def test_ready_player_me_drives_arkit_and_leaves_visemes_alone():
    full = presets.auto_bind(ARKIT_52, RIGS["ready_player_me"])
    assert not any(k.startswith("viseme_") or k in ("mouthOpen", "mouthSmile") for k in full.keys)
    assert full.is_name_map
    only = presets.auto_bind(ARKIT_52, RIGS["ready_player_me_visemes"])
    assert not only.is_name_map and {"viseme_aa", "viseme_PP", "viseme_U"} <= set(only.keys)


def _pose(phone: str) -> np.ndarray:
    """The ARKit frame of a phone's articulation target (what the model was trained to produce)."""
    jaw, funnel, pucker, spread, lower, upper, tongue = ARTICULATION_TARGETS[phone]
    f = np.zeros((1, 52), np.float32)
    ix = {ch: i for i, ch in enumerate(ARKIT_52)}
    f[0, ix["jawOpen"]], f[0, ix["mouthFunnel"]], f[0, ix["mouthPucker"]] = jaw, funnel, pucker
    for side in ("Left", "Right"):
        f[0, ix[f"mouthStretch{side}"]] = 0.55 * spread
        f[0, ix[f"mouthLowerDown{side}"]] = lower
        f[0, ix[f"mouthUpperUp{side}"]] = upper
    f[0, ix["tongueOut"]] = tongue
    return f


@pytest.mark.parametrize("rig, keys", [
    ("vroid", {"A": "Fcl_MTH_A", "I": "Fcl_MTH_I", "U": "Fcl_MTH_U", "E": "Fcl_MTH_E", "O": "Fcl_MTH_O"}),
    ("vrm1", {"A": "aa", "I": "ih", "U": "ou", "E": "ee", "O": "oh"}),
    ("ready_player_me_visemes", {"A": "viseme_aa", "I": "viseme_I", "U": "viseme_U", "E": "viseme_E",
                                 "O": "viseme_O"}),
])
def test_viseme_maps_open_the_vowels_viseme(rig, keys):
    b = presets.auto_bind(ARKIT_52, RIGS[rig])
    col = {k: j for j, k in enumerate(b.keys)}
    for phone, vowel in (("aa", "A"), ("iy", "I"), ("uw", "U"), ("eh", "E"), ("ao", "O")):
        v = b.values(_pose(phone))[0]
        vowels = {x: v[col[k]] for x, k in keys.items()}
        assert max(vowels, key=vowels.get) == vowel, (phone, vowels)
        assert vowels[vowel] > 0.5
    rest = b.values(_pose("sil"))[0]
    assert np.abs(rest).max() < 0.1  # silence leaves the mouth visemes at rest
    assert (b.values(np.random.default_rng(0).random((50, 52)) * 3 - 1) >= 0).all()  # clipped to [0, 1]


def test_name_maps_copy_values_exactly_and_linear_maps_mix_and_clip():
    frames = np.random.default_rng(1).random((7, 52)).astype(np.float32) * 1.5
    exact = presets.auto_bind(ARKIT_52, list(ARKIT_52))
    np.testing.assert_array_equal(exact.values(frames), frames)  # intensity above 1 is kept as is
    b = binding.Binding(pairs=[(0, "eyeBlinkLeft", "blink"), (7, "eyeBlinkRight", "blink"), (17, "jawOpen", "jaw")],
                        weights=[0.5, 0.5, -1.0])
    v = b.values(frames)
    np.testing.assert_allclose(v[:, 0], np.clip(0.5 * frames[:, 0] + 0.5 * frames[:, 7], 0, 1), atol=1e-6)
    assert (v[:, 1] == 0).all()


def test_fallback_rows_only_when_the_channel_has_no_primary_key():
    single = presets.auto_bind(ARKIT_52, ["eyeBlink", "mouthSmile", "jawOpen"])
    terms = {(ch, k): single.weight(i) for i, (_, ch, k) in enumerate(single.pairs)}
    assert terms[("eyeBlinkLeft", "eyeBlink")] == 0.5 and terms[("eyeBlinkRight", "eyeBlink")] == 0.5
    both = presets.auto_bind(ARKIT_52, ["eyeBlink", "eyeBlinkLeft", "eyeBlinkRight"])
    assert "eyeBlink" not in both.keys


def test_explicit_rows_with_weights_and_stale_rows():
    rows = [("jawOpen", "Open", True, 0.8), ("jawOpen", "Wide", True, 0.2), ("mouthClose", "Gone", True, 1.0),
            ("eyeBlinkLeft", "Blink", False, 1.0), ("jawOpen", "Open", True, 0.9)]
    b = binding.explicit_bind(["jawOpen", "mouthClose", "eyeBlinkLeft"], rows, ["Open", "Wide", "Blink"])
    assert b.pairs == [(0, "jawOpen", "Open"), (0, "jawOpen", "Wide")] and b.weights == [0.9, 0.2]
    assert b.unmapped == ["mouthClose", "eyeBlinkLeft"]


def test_preset_file_round_trip_and_clear_errors():
    p = retarget.preset_from_mapping("", "My Rig", [("jawOpen", "Mouth_Open", True, 1.0),
                                                    ("mouthSmileLeft", "Smile", True, 0.5),
                                                    ("mouthSmileRight", "Smile", True, 0.5),
                                                    ("eyeBlinkLeft", "", False, 1.0)])
    text = retarget.preset_to_json(p)
    data = json.loads(text)
    assert data["format"] == retarget.FORMAT and data["version"] == retarget.VERSION and len(data["rows"]) == 3
    back = retarget.preset_from_json(text, "user:my_rig")
    assert back.rows == p.rows and back.name == "My Rig" and back.id == "user:my_rig"
    b = retarget.bind_preset(back, ARKIT_52, ["Mouth_Open", "Smile"])
    assert b.keys == ["Mouth_Open", "Smile"] and len(b.channels_bound) == 3
    bad = [
        ("{", "not JSON"),
        ('{"rows": []}', "not a StreamingTalker retarget preset"),
        (json.dumps({"format": retarget.FORMAT, "version": 9, "rows": []}), "version 9"),
        (json.dumps({"format": retarget.FORMAT, "version": 1, "rows": []}), "no rows"),
        (json.dumps({"format": retarget.FORMAT, "version": 1, "rows": [{"channel": "jawOpen"}]}),
         "'key' must be a name"),
        (json.dumps({"format": retarget.FORMAT, "version": 1,
                     "rows": [{"channel": "jawOpen", "key": "J", "weight": "x"}]}), "finite number"),
        (json.dumps({"format": retarget.FORMAT, "version": 1, "rows": [{"channel": "a", "key": "b"}],
                     "signature": ["("]}), "bad signature"),
    ]
    for text, needle in bad:
        with pytest.raises(retarget.PresetError, match=re.escape(needle)):
            retarget.preset_from_json(text, "x", where="x.json")
    with pytest.raises(retarget.PresetError, match="nothing to save"):
        retarget.preset_from_mapping("", "empty", [("jawOpen", "", True, 1.0)])
    assert retarget.safe_file_stem("  My rig / v2 ") == "My_rig_v2"


def test_builtin_presets_survive_their_own_file_format():
    for p in presets.BUILTIN:
        back = retarget.preset_from_json(retarget.preset_to_json(p), p.id)
        assert back.rows == p.rows and (back.loose, back.by_name, back.signature) == (p.loose, p.by_name, p.signature)
