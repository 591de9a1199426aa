"""A real capture device for the live tests, with no sound card and no kernel module.

A private PulseAudio server (a user process on a unix socket in a temp folder) has a null sink;
its monitor source is the capture device. ALSA's ``pulse`` plugin (libasound2-plugins) makes it
the default ALSA input in a config that ``ALSA_CONFIG_PATH`` adds for the processes started
afterwards, so PortAudio (sounddevice) in the bridge server opens it like any microphone.
``paplay`` plays speech into the sink at the sink's clock, so the capture delivers it at the
speed of a real microphone. Nothing of the user's own sound set-up is read or changed.
The Debian packages come from scripts/setup_system.sh.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"


def _die_with_parent() -> None:
    """In the child before exec: end with the test process, even if it is killed (Linux prctl)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def missing() -> str:
    """Why a virtual microphone cannot be made here ('' when it can)."""
    need = [exe for exe in ("pulseaudio", "paplay", "pactl") if shutil.which(exe) is None]
    if not any(glob.glob(f"{d}/alsa-lib/libasound_module_pcm_pulse.so") for d in ("/usr/lib/*", "/usr/lib", "/usr/lib64")):
        need.append("ALSA's pulse plugin (libasound2-plugins)")
    if not os.path.exists(SYSTEM_ALSA_CONF):
        need.append(SYSTEM_ALSA_CONF)
    return f"needs {', '.join(need)} (scripts/setup_system.sh installs them)" if need else ""


class VirtualMic:
    """``with VirtualMic() as mic:`` a running sound server whose capture device is the default input."""

    SINK = "stk_feed"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stk_mic_"))  # short: a socket path has a 108-byte limit
        self.socket = self.root / "native"
        self.server = f"unix:{self.socket}"
        self.conf = self.root / "asound.conf"
        self.proc: subprocess.Popen | None = None
        self.players: list[subprocess.Popen] = []

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> "VirtualMic":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        run = self.root / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        env = dict(os.environ, HOME=str(self.root), XDG_RUNTIME_DIR=str(run), PULSE_RUNTIME_PATH=str(run))
        self._log = open(self.root / "pulseaudio.log", "wb")
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes", "--use-pid-file=no",
             "--system=no", "--log-target=stderr",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "-L", f"module-null-sink sink_name={self.SINK} rate=48000 channels=2"],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while self._pactl("info").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pulseaudio did not start: {self.log()[-800:]}")
            time.sleep(0.1)
        self.conf.write_text(
            f'pcm.!default {{ type pulse; server "{self.server}"; device "{self.SINK}.monitor" }}\n'
            f'ctl.!default {{ type pulse; server "{self.server}" }}\n')

    def stop(self) -> None:
        for p in self.players:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._log.close()

    # -- use ------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to capture from this device (the server's)."""
        return {"ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{self.conf}"}

    def play(self, wav: str | os.PathLike) -> subprocess.Popen:
        """Start playing ``wav`` into the device in real time (returns the player process)."""
        p = subprocess.Popen(["paplay", f"--server={self.server}", "-d", self.SINK, str(wav)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.players.append(p)
        return p

    def capture_streams(self) -> int:
        """How many capture streams (PortAudio's, here) the sound server has open right now."""
        out = self._pactl("list", "short", "source-outputs")
        assert out.returncode == 0, out.stderr
        return len([line for line in out.stdout.splitlines() if line.strip()])

    def log(self) -> str:
        p = self.root / "pulseaudio.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", f"--server={self.server}", *args], capture_output=True, text=True,
                              timeout=20)
