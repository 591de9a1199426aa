"""Session options: the one source of generation defaults and their validation (stdlib only).

Every consumer resolves options the same way, :meth:`SessionOptions.resolve`:
the dataclass defaults, then the model card's tuned ``defaults``, then what the
caller set (CLI flags, the bridge's ``start`` message, the panel). The server,
the CLI, the evaluator, the add-on's panel defaults and the model card a new
checkpoint starts with all read the defaults from here, so they cannot disagree.
Stdlib only, because Blender's Python imports it for the panel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping


class SessionError(ValueError):
    """Bad session input (options or audio); the message is meant for the user."""


#: Allowed range of each numeric option (the panel's min/max come from here too).
LIMITS: dict[str, tuple[float, float]] = {
    "steps": (1, 50),
    "guidance": (0.0, 10.0),
    "intensity": (0.0, 3.0),
    "smoothing": (0.0, 0.95),
    "temperature": (0.0, 2.0),
    "temperature_upper": (0.0, 2.0),
}


@dataclass
class SessionOptions:
    seed: int = 0
    steps: int = 2                    # DDIM steps per autoregressive step
    guidance: float = 1.0             # classifier-free guidance on audio (1 = off)
    style: int | str = 0              # style index or name from the model card
    intensity: float = 1.0            # scales motion away from the neutral pose
    smoothing: float = 0.0            # causal one-pole smoothing of the output, 0..0.95
    temperature: float = 0.1          # scale of the initial diffusion noise on the mouth (0 = most likely)
    #: the same for the upper face (eyes, brows, cheeks, nose); None = ``temperature``.
    #: Blinks and gaze are not in the audio: low noise averages them away (a stare),
    #: while the mouth wants low noise to stay precise.
    temperature_upper: float | None = None

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
    def card_defaults(cls) -> dict[str, Any]:
        """What a new checkpoint's card starts with (training and tuning may change it)."""
        return {k: v for k, v in asdict(cls()).items() if k != "seed" and v is not None}

    def validated(self) -> "SessionOptions":
        try:
            self.seed = int(self.seed)
            self.steps = int(self.steps)
            self.guidance = float(self.guidance)
            self.intensity = float(self.intensity)
            self.smoothing = float(self.smoothing)
            self.temperature = float(self.temperature)
            if self.temperature_upper is not None:
                self.temperature_upper = float(self.temperature_upper)
        except (TypeError, ValueError) as exc:
            raise SessionError(f"invalid session option: {exc}") from None
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is not None and not lo <= value <= hi:
                raise SessionError(f"{name} must be between {lo:g} and {hi:g} (got {value:g})")
        return self

    @property
    def upper_temperature(self) -> float:
        return self.temperature if self.temperature_upper is None else self.temperature_upper

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
