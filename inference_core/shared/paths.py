"""Where bundled files live (stdlib only)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
MODELS_DIR = PACKAGE_DIR / "models"
ASSETS_DIR = PACKAGE_DIR / "assets"
#: The bundled ARKit-channel model (trained by ``python -m inference_core train``).
DEFAULT_MODEL = MODELS_DIR / "streamingtalker_arkit.safetensors"
#: The bundled speech clip used by ``make demo`` and the tests.
DEMO_SPEECH = ASSETS_DIR / "demo_speech.flac"
