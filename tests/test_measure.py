"""What a benchmark records of its machine: other processes' runnable threads."""

from __future__ import annotations

import subprocess
import sys
import time

from lshlib.bench import measure


def test_others_running_counts_a_busy_process_beside_us():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert measure.others_running(samples=5, interval=0.01) >= 1.0
    finally:
        busy.kill()
        busy.wait()
    assert measure.machine_info()["others_running"] >= 0.0
