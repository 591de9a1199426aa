import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """In an older-Blender venv (scripts/bpy_lts.sh) collect only the files that hold bpy_matrix tests:
    the others import torch and friends, which that venv (like Blender's own Python) does not have."""
    if os.environ.get("STK_BPY_MATRIX") and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return "bpy_matrix" not in collection_path.read_text(encoding="utf-8")
    return None


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
