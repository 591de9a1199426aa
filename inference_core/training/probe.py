"""The phone loss: what makes the audio encoder hear phones in any voice (training only)."""

from __future__ import annotations

import torch


class PhoneProbe(torch.nn.Module):
    """A linear read-out of the phone class from the audio features (training only).

    Its loss makes the encoder's features say which phone is being spoken, in any
    voice, beyond what the motion targets alone ask for (a /p/ and a /b/ look alike,
    but both must be heard as lips closing). It is not part of the checkpoint; a model with a
    phonetic bottleneck (``phone_bottleneck``) carries its own read-out instead."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.out = torch.nn.Linear(dim, classes)

    def loss(self, audio: torch.Tensor, phones: torch.Tensor) -> torch.Tensor:
        return phone_loss(self.out(audio), phones)


def phone_loss(logits: torch.Tensor, phones: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of per-frame phone logits (B, F, P) against phone indices (B, F) (-100: none)."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), phones.flatten(), ignore_index=-100)
