"""Engine speed: real-time factor, first-frame latency, cost vs. stream length, memory.

    python bench/bench_engine.py [--long-seconds 1800] [--model PATH]

Prints one JSON object (same as ``python -m inference_core bench --json``).
"""

import sys

from inference_core.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--json", *sys.argv[1:]]))
