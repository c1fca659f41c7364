"""Run gemini_sim in echo mode as its own process for the benchmark; print its address, serve until stdin closes.

Echo mode answers each realtimeInput audio chunk at once with the same bytes as model audio and, for tagged
frames (bench.frames), writes the simulator's receive and send times into them.
"""

from __future__ import annotations

import json
import sys

from gemini_sim import start_background


def main() -> None:
    """Start the simulator, report, and stop when the parent closes our stdin."""
    state_dir = sys.argv[1]
    sim = start_background(state_dir, host="127.0.0.1", port=0, echo=True, record=False, realtime_factor=0)
    print(json.dumps({"base_url": sim.base_url, "ca_path": str(sim.ca_path)}), flush=True)
    sys.stdin.read()  # returns at EOF: the parent is done (or gone)
    sim.stop()


if __name__ == "__main__":
    main()
