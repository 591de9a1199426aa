#!/usr/bin/env bash
# Installs the Debian packages the project needs, when missing and when we can (root + apt).
#   espeak-ng / libespeak-ng1: TTS with phoneme timings (training corpus, test speech)
#   flite: more TTS voices for the corpus
#   festival + festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts: optional corpus voices
#     (`corpus --festival`; free voices from Debian main, no MBROLA)
#   libportaudio2: microphone capture (sounddevice) for Live mode
#   pulseaudio, pulseaudio-utils, libasound2-plugins: the live tests' capture device (a private sound
#     server's null sink, opened by PortAudio through ALSA's pulse plugin; paplay feeds it speech)
#   ffmpeg: muxing audio into the demo preview video; decoding G.722 / GSM voice prompts (realspeech)
#   (dpkg-deb, which unpacks the voice prompt packages and builds the tests' small ones, is in dpkg)
set -euo pipefail
need=()
for pkg in libespeak-ng1 espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
           libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins ffmpeg; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: missing system packages (${need[*]}); install them with your package manager." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
