"""The step formulations ``export-onnx`` writes compute what the model's modules compute.

A random model's adaLN modulations are zero (their weights start at zero), which would hide a
mistake in how the head's modulations are sliced, so every weight is randomised here first.
"""

from __future__ import annotations

import pytest
import torch

from inference_core.model.config import ModelConfig
from inference_core.model.network import StreamingTalker
from inference_core.model.onnx_graphs import (AudioStreamStep, ConditionStep, HeadDenoise, HeadModulation,
                                              example_inputs, streamed_audio_error)


@pytest.fixture(scope="module", params=[{}, {"layers": 1, "heads": 2, "head_blocks": 2, "audio_kernels": (3, 5, 3),
                                              "audio_dilations": (2, 1, 4), "chunk_frames": 6},
                                        {"audio_branch_dim": 24}, {"phone_bottleneck": 11}],
                ids=["shipped", "other", "audio-branch", "phone-bottleneck"])
def model(request) -> StreamingTalker:
    torch.manual_seed(0)
    m = StreamingTalker(ModelConfig(num_styles=2, **request.param)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return m


def test_condition_step_equals_the_predictor(model):
    ins = example_inputs(model, seed=1)["condition"]
    with torch.no_grad():
        for keep in (1.0, 0.0):
            args = (*ins[:3], torch.full((1,), keep))
            torch.testing.assert_close(ConditionStep(model)(*args), model.predictor(*args), atol=2e-5, rtol=0)


def test_head_in_two_parts_equals_the_head(model):
    ins = example_inputs(model, seed=2)
    cond, x_t = ins["head_mod"][0], ins["head"][0]
    t = torch.tensor([0.995, 0.6633, 0.3317])
    assert len(cond) == len(x_t) == 2  # a guided step's pair: the rows must not mix
    with torch.no_grad():
        mods = HeadModulation(model)(cond, t)  # row b * len(t) + i
        assert mods.shape[0] == 2 * len(t) and mods.abs().min() > 0  # the modulations are really exercised
        for i in range(len(t)):
            torch.testing.assert_close(HeadDenoise(model)(x_t, mods[i::len(t)]),
                                       model.head(x_t, t[i:i + 1].expand(2), cond), atol=2e-5, rtol=0)


def test_streamed_audio_encoder_equals_the_whole_window_one(model):
    step = AudioStreamStep(model)
    with torch.no_grad():
        assert streamed_audio_error(model, step, steps=4, seed=3) < 2e-5
        # the state matters: compared from the first step, the zero initial state shows
        assert streamed_audio_error(model, step, steps=4, seed=3, warmup=0) > 1e-3
