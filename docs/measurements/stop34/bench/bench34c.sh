#!/bin/bash
# stop 34: old bundle (old code), new bundle at defaults, new bundle with --phonetic 1; interleaved, 3 rounds
cd /work/main
for i in 1 2 3; do
  (cd /tmp/wt315 && /work/main/.venv/bin/python -m inference_core bench --json --backend onnx --long-seconds 60) > runs/bench34c_old_$i.json 2> /dev/null
  .venv/bin/python -m inference_core bench --json --backend onnx --long-seconds 60 > runs/bench34c_default_$i.json 2> /dev/null
  .venv/bin/python -m inference_core bench --json --backend onnx --long-seconds 60 --phonetic 1 > runs/bench34c_phonetic_$i.json 2> /dev/null
done
echo done > runs/bench34c_done
