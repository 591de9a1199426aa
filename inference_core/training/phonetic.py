"""The phonetic gain's parts that training and ``finalize-model`` share (torch only to read a state).

The runtime's :class:`~inference_core.runtime.postfilter.PhoneticGain` multiplies the opening
channels by the jaw the rules give the phones a linear read-out of the audio features hears, over
its running mean. Here: which channels, the read-out taken from a training state, the tensors and
card entry a model file carries, and the rule that chooses beta and floor
(``scripts/fit_phonetic_gain.py``).
"""

from __future__ import annotations

from typing import Any

#: the channels the gain multiplies: the jaw, the lips' own opening, and mouthClose with the jaw
#: (on an ARKit rig jawOpen = mouthClose is a seal, and a multiplication keeps it one)
OPENING = ["jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
           "mouthUpperUpRight"]
FIGURES = ("bilabial_closure_rate", "open_vowel_gap_ratio", "gap_openness_corr_speech", "rounding_ratio",
           "open_vowel_closed_frac")


def read_out_tensors(path: str) -> tuple[Any, Any]:
    """(weight (classes, d), bias (classes,)) of a phone read-out: train's ``OUT.state`` (``probe``)
    or ``scripts/pretrain_audio_branch.py``'s state (``read_out``); loaded without unpickling code."""
    import torch

    state = torch.load(path, weights_only=True, map_location="cpu")
    if "read_out" in state:
        w = state["read_out"]
        return w["weight"].numpy(), w["bias"].numpy()
    if "probe" in state:
        w = state["probe"]
        return w["out.weight"].numpy(), w["out.bias"].numpy()
    raise ValueError(f"{path} holds no phone read-out (neither read_out nor probe)")


def phonetic_spec(beta: float, floor: float, ceiling: float, mean_seconds: float,
                  mode: str = "absolute") -> dict[str, Any]:
    """The card entry for one setting (the classes are the read-out's: the training inventory)."""
    from ..data.phonemes import INVENTORY

    return {"classes": list(INVENTORY), "channels": list(OPENING), "mode": mode, "beta": beta, "floor": floor,
            "ceiling": ceiling, "mean_seconds": mean_seconds}


def phonetic_tensors(weight: Any, bias: Any) -> dict[str, Any]:
    """The tensors a card's phonetic gain reads: the read-out and the rules' jaw per class."""
    import numpy as np

    from ..data.articulation import jaw_target
    from ..data.phonemes import INVENTORY
    from ..model.layout import PHONETIC_BIAS, PHONETIC_JAW, PHONETIC_WEIGHT

    return {PHONETIC_WEIGHT: np.asarray(weight, np.float32), PHONETIC_BIAS: np.asarray(bias, np.float32),
            PHONETIC_JAW: np.array([jaw_target(p) for p in INVENTORY], np.float32)}


def choose(base: dict[str, float], grid: list[dict[str, Any]], open_shut_slack: float,
           lve_slack: float | None = None) -> dict[str, Any] | None:
    """The rule's choice among ``grid`` rows ({beta, floor, figures}) against the model's own ``base``;
    with ``lve_slack``, also the TTS tuning voices' lip vertex error (``tts_lve_mm``) within that
    share of the model's own."""
    def qualifies(f: dict[str, float]) -> bool:
        return (all(f[k] >= base[k] for k in ("bilabial_closure_rate", "open_vowel_gap_ratio", "rounding_ratio"))
                and f["open_vowel_closed_frac"] <= base["open_vowel_closed_frac"] + open_shut_slack
                and (lve_slack is None or f["tts_lve_mm"] <= base["tts_lve_mm"] * (1 + lve_slack)))

    ok = [row for row in grid if qualifies(row["figures"])]
    if not ok:
        return None
    return max(ok, key=lambda row: (row["figures"]["gap_openness_corr_speech"], -row["beta"], row["floor"]))
