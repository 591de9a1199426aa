"""Session options: the one source of generation defaults and their validation (stdlib only).

Every consumer resolves options the same way, :meth:`SessionOptions.resolve`:
the dataclass defaults, then the model card's tuned ``defaults``, then what the
caller set (CLI flags, the bridge's ``start`` message, the panel). The server,
the CLI, the evaluator, the add-on's panel defaults and the model card a new
checkpoint starts with all read the defaults from here, so they cannot disagree.
Stdlib only, because Blender's Python imports it for the panel.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real
from typing import Any, Mapping


class SessionError(ValueError):
    """Bad session input (options or audio); the message is meant for the user."""


#: Allowed range of each numeric option (the panel's min/max come from here too).
LIMITS: dict[str, tuple[float, float]] = {
    "steps": (1, 50),
    "steps_upper": (1, 50),
    "guidance": (0.0, 10.0),
    "intensity": (0.0, 3.0),
    "articulation": (0.0, 2.0),
    "phonetic": (0.0, 2.0),
    "smoothing": (0.0, 0.95),
    "temperature": (0.0, 2.0),
    "temperature_upper": (0.0, 2.0),
}
#: Seeds are numpy SeedSequence entropy: any integer in this range.
SEED_RANGE = (0, 2**64 - 1)
#: Longest style name accepted (names come from the model card; this only bounds what is echoed).
MAX_STYLE_CHARS = 200
_FLOAT_OPTIONS = ("guidance", "intensity", "articulation", "phonetic", "smoothing", "temperature",
                  "temperature_upper")


def style_index(style: int | str, styles: list[str], num_styles: int) -> int:
    """The row of the style table a style option names: a name the card lists, or an index (as a
    number or its digits) within the table. One rule for sessions and for a card's defaults."""
    if isinstance(style, str) and not style.lstrip("-").isdigit():
        if style in styles:
            return styles.index(style)
        raise SessionError(f"the model has no style {style!r}; it knows {styles[:8]}...")
    idx = int(style)
    if not 0 <= idx < num_styles:
        raise SessionError(f"style index {idx} out of range 0..{num_styles - 1}")
    return idx


def _strict_int(name: str, value: Any) -> int:
    """``value`` if it is an integer (not a bool, not 1.7, not "2"); SessionError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise SessionError(f"{name} must be an integer (got {_shown(value)})")
    return int(value)


def _strict_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise SessionError(f"{name} must be a finite number (got {_shown(value)})")
    return float(value)


def _shown(value: Any) -> str:
    """A short rendering of a rejected value (error messages never echo a huge input)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class SessionOptions:
    seed: int = 0
    steps: int = 2                    # DDIM steps per autoregressive step
    guidance: float = 1.0             # classifier-free guidance on audio (1 = off)
    style: int | str = 0              # style index or name from the model card
    intensity: float = 1.0            # scales motion away from the neutral pose
    #: how much of the mouth's range of motion lost to averaging is given back, with the gains
    #: the model card holds (runtime/postfilter.py): 0 = the model's output as it is, 1 = the
    #: fitted gains, 2 = twice their distance from 1. No effect for a card without gains.
    articulation: float = 1.0
    #: how far the mouth opens as the phones heard in the audio ask, with the phonetic gain the model
    #: card holds (runtime/postfilter.py ``PhoneticGain``; it scales the gain's exponent): 0 = off
    #: (the default: on the TTS voices it costs lip vertex error), 1 = as fitted. No effect for a card
    #: without one.
    phonetic: float = 0.0
    smoothing: float = 0.0            # causal one-pole smoothing of the output, 0..0.95
    temperature: float = 0.1          # scale of the initial diffusion noise on the mouth (0 = most likely)
    #: the same for the upper face (eyes, brows, cheeks, nose); None = ``temperature``.
    #: Blinks and gaze are not in the audio: low noise averages them away (a stare),
    #: while the mouth wants low noise to stay precise.
    temperature_upper: float | None = None
    #: DDIM steps of the upper face's chain; None = ``steps``. Few steps leave blinks short of
    #: closing (a blurred average); more cost one head pass each, on that chain alone.
    steps_upper: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SessionOptions":
        """Options from ``d`` (unknown keys and None values ignored), validated."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known and v is not None}).validated()

    @classmethod
    def resolve(cls, card: Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> "SessionOptions":
        """Defaults ← the card's tuned ``defaults`` ← ``overrides`` (None values skipped)."""
        merged = dict((card or {}).get("defaults") or {})
        merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_dict(merged)

    @classmethod
    def given(cls, namespace: Any) -> dict[str, Any]:
        """The options a command line set: each field's attribute of ``namespace`` (an argparse
        result; None or absent: not given, the card decides). One list, the dataclass's fields, so a
        new option reaches every command that has its flag."""
        return {f.name: getattr(namespace, f.name, None) for f in fields(cls)}

    @classmethod
    def card_defaults(cls, objective: str = "diffusion") -> dict[str, Any]:
        """What a new checkpoint's card starts with (training and tuning may change it).

        A regressor predicts in one pass and has no unconditional branch, so its card says
        1 step and no guidance (the sampler ignores both for it; the card states it plainly)."""
        defaults = {k: v for k, v in asdict(cls()).items() if k != "seed" and v is not None}
        if objective == "regression":
            defaults.update(steps=1, guidance=1.0)
        return defaults

    def validated(self) -> "SessionOptions":
        """Type-checked, in range: a bool, a fraction or a string where a number belongs is refused,
        never coerced (``steps=1.7`` is an error, not 1 step)."""
        self.seed = _strict_int("seed", self.seed)
        self.steps = _strict_int("steps", self.steps)
        if self.steps_upper is not None:
            self.steps_upper = _strict_int("steps_upper", self.steps_upper)
        for name in _FLOAT_OPTIONS:
            value = getattr(self, name)
            if value is not None or name != "temperature_upper":
                setattr(self, name, _strict_float(name, value))
        if isinstance(self.style, str):
            if not self.style or len(self.style) > MAX_STYLE_CHARS:
                raise SessionError(f"style must be a style name or index (got {_shown(self.style)})")
        else:
            self.style = _strict_int("style", self.style)
        if not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise SessionError(f"seed must be between 0 and 2**64 - 1 (got {_shown(self.seed)})")
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is not None and not lo <= value <= hi:
                raise SessionError(f"{name} must be between {lo:g} and {hi:g} (got {value:g})")
        return self

    @property
    def upper_temperature(self) -> float:
        return self.temperature if self.temperature_upper is None else self.temperature_upper

    @property
    def upper_steps(self) -> int:
        return self.steps if self.steps_upper is None else self.steps_upper

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
