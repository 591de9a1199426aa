"""The step formulations ``export-onnx`` writes compute what the model's modules compute.

A random model's adaLN modulations are zero (their weights start at zero), which would hide a
mistake in how the head's modulations are sliced, so every weight is randomised here first.
"""

from __future__ import annotations

import pytest
import torch

from inference_core.model.config import ModelConfig
from inference_core.model.network import StreamingTalker
from inference_core.model.onnx_graphs import ConditionStep, HeadDenoise, HeadModulation, example_inputs


@pytest.fixture(scope="module", params=[{}, {"layers": 1, "heads": 2, "head_blocks": 2}], ids=["shipped", "small"])
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
    with torch.no_grad():
        mods = HeadModulation(model)(cond, t)
        assert mods.abs().min() > 0  # the modulations are really exercised
        for i in range(len(t)):
            torch.testing.assert_close(HeadDenoise(model)(x_t, mods[i:i + 1]), model.head(x_t, t[i:i + 1], cond),
                                       atol=2e-5, rtol=0)
