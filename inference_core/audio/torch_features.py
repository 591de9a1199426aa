"""Batched causal log-mel in torch, for training (the numpy twin in :mod:`.features` streams).

Same frame rule, window, filterbank and normalisation as :class:`.features.LogMel`
(tested to agree within 1e-4), batched over whole utterances on any device.
"""

from __future__ import annotations

import torch

from .features import (HOP, LOG_FLOOR, N_FFT, N_MELS, SAMPLE_RATE, WIN, _LOG_SCALE, _LOG_SHIFT, hann_window,
                       mel_filterbank)


class TorchLogMel(torch.nn.Module):
    """Batched causal log-mel; holds the window and filterbank as buffers."""

    window: torch.Tensor  # registered buffers (typed: Module.__getattr__ says Tensor | Module)
    fb: torch.Tensor

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = HOP, win: int = WIN,
                 n_fft: int = N_FFT, n_mels: int = N_MELS):
        super().__init__()
        self.sample_rate, self.hop, self.win, self.n_fft, self.n_mels = sample_rate, hop, win, n_fft, n_mels
        self.register_buffer("window", torch.from_numpy(hann_window(win)), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)),
                             persistent=False)

    def frames_from_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., n, win) sample windows -> (..., n, n_mels) normalised log-mel."""
        spec = torch.fft.rfft(windows * self.window, n=self.n_fft)
        power = spec.real.square() + spec.imag.square()
        mel = power @ self.fb.T
        return (torch.log(mel.clamp_min(LOG_FLOOR)) + _LOG_SHIFT) / _LOG_SCALE

    def forward(self, samples: torch.Tensor, n_frames: int) -> torch.Tensor:
        """The first ``n_frames`` log-mel frames of a whole utterance (samples before its
        start read as zeros, as in a stream): (n_frames, n_mels)."""
        lead = self.win - self.hop
        seg = torch.cat([samples.new_zeros(lead), samples[: n_frames * self.hop]])
        seg = torch.cat([seg, seg.new_zeros(lead + n_frames * self.hop - seg.numel())])
        return self.frames_from_windows(seg.unfold(0, self.win, self.hop)[:n_frames])
