"""What the real-speech tests share: the tool markers and the core voices' copyright file."""

from __future__ import annotations

import ctypes.util
import shutil

import pytest


def _have_pocketsphinx() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


needs_tools = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("dpkg-deb") and ctypes.util.find_library("espeak-ng")),
    reason="needs ffmpeg, dpkg-deb and libespeak-ng (scripts/setup_system.sh installs them)")
needs_sphinx = pytest.mark.skipif(not _have_pocketsphinx(),
                                  reason="needs pocketsphinx (pip install -r requirements/dev.txt)")

CORE_COPYRIGHT = """Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: asterisk-core-sounds

Files: *
Copyright: 2003-2010, Allison Smith
Comment: Recorded by Allison Smith (http://www.theivrvoice.com)
License: CC-BY-SA-3.0

Files: fr-*
Copyright: 2006-2008, June Wallack
Comment: Recorded by June Wallack (http://www.junewallack.com); translated by Clod Patry
License: CC-BY-SA-3.0
"""
