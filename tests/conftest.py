import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    """A randomly initialised checkpoint of the shipped size, written by the real CLI code."""
    from inference_core.model.checkpoint import save_checkpoint
    from inference_core.runtime.bundle import random_bundle

    path = tmp_path_factory.mktemp("models") / "random.safetensors"
    b = random_bundle(seed=0, num_styles=3)
    save_checkpoint(path, b.backend.model, b.card)
    return path


@pytest.fixture(scope="session")
def random_bundle_loaded(random_model):
    from inference_core.runtime.bundle import load_bundle

    return load_bundle(str(random_model))
