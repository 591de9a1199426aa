#!/usr/bin/env bash
# Runs the add-on tests marked `bpy_matrix` on an older Blender LTS (the bpy wheel VERSION).
#   usage: scripts/bpy_lts.sh VERSION CORE_PYTHON
# The venv (.venv-bpy-VERSION/, ignored by git) holds that bpy, numpy<2 and pytest only; the
# inference server, the model CLI and anything needing torch run with CORE_PYTHON (the main
# .venv). Wheels are cached outside the clone, in ${STK_WHEEL_CACHE:-~/.cache/streamingtalker/wheels},
# so a fresh clone installs without downloading; with an empty cache it downloads them once.
set -euo pipefail
ver=$1
core_py=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
cd "$(dirname "$0")/.."
req=requirements/bpy-lts.txt
venv=.venv-bpy-$ver
wheels=${STK_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamingtalker/wheels}
stamp=$venv/.stamp-$( (echo "$ver"; cat "$req") | sha1sum | cut -c1-12)
t0=$SECONDS
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
  mkdir -p "$wheels"
  if ! "${pip[@]}" install --no-index --find-links "$wheels" -r "$req" "bpy==$ver" 2>/dev/null; then
    echo "bpy $ver: caching its wheels in $wheels (once)"
    # download beside the cache, then move in: a concurrent run never sees a half-written wheel
    tmp=$(mktemp -d "$wheels/.download.XXXXXX")
    "${pip[@]}" download -d "$tmp" -r "$req" "bpy==$ver"
    mv -n "$tmp"/* "$wheels"/ 2>/dev/null || true
    rm -rf "$tmp"
    "${pip[@]}" install --no-index --find-links "$wheels" -r "$req" "bpy==$ver"
  fi
  touch "$stamp"
  echo "bpy $ver: venv ready in $((SECONDS - t0)) s"
fi
STK_BPY_MATRIX=$ver STK_CORE_PYTHON="$core_py" \
  "$venv/bin/python" -m pytest -m bpy_matrix -p no:cacheprovider -q --no-header tests
