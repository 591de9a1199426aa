#!/bin/bash
# stop 34: is the slower rtf the machine or the change? old code + old bundle, new code + new bundle, interleaved
cd /work/main
for i in 1 2; do
  (cd /tmp/wt315 && /work/main/.venv/bin/python -m inference_core bench --json --backend onnx --long-seconds 60) > runs/bench34_old_$i.json 2> /dev/null
  .venv/bin/python -m inference_core bench --json --backend onnx --long-seconds 60 > runs/bench34_new_$i.json 2> /dev/null
done
echo done > runs/bench34b_done
