"""
The loop's measure of its turns tells a late reply that is the machine's from one that is the
loop's (lib/loop_watch.h): the daemon's loop thread is pinned to one CPU at nice 19 beside a busy
process of nice 0 pinned to the same CPU, so each time a client's connection wakes it the thread
waits on the run queue while its own work stays small. SMTP clients connecting meanwhile still get
their banners, and the daemon logs loop.late_turn with a run queue wait (runq_ms) of 20 ms or more
and its turns' CPU time (cpu_ms) under 20 ms.
"""
import json
import os
import socket
import subprocess
import sys
import time

from harness import SluiceTestCase, main

HOG = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\n" \
      "while time.monotonic() < end:\n    pass\n"


def late_turns(d):
    return [json.loads(line) for line in d.log_text().splitlines()
            if '"event":"loop.late_turn"' in line]


class LoopWatch(SluiceTestCase):
    def test_a_wait_for_the_cpu_is_logged_as_a_late_turn(self):
        d = self.start_sluice()
        pid = d.proc.pid
        cpu = min(os.sched_getaffinity(pid))
        os.sched_setaffinity(pid, {cpu})  # the loop thread; its pool threads may run anywhere
        os.setpriority(os.PRIO_PROCESS, pid, 19)  # the thread whose id is the process's
        before = len(late_turns(d))  # a loaded machine's, before the busy process
        hog = subprocess.Popen([sys.executable, "-c", HOG, "8"],
                               preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        self.addCleanup(hog.wait, 30)
        self.addCleanup(hog.kill)
        banners = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and (banners < 3 or len(late_turns(d)) == before):
            with socket.create_connection(d.addr(), timeout=30) as s:
                banners += s.recv(512).startswith(b"220")
                s.sendall(b"QUIT\r\n")
            time.sleep(0.01)
        hog.kill()
        late = late_turns(d)[before:]
        print("\n%d banners; %s" % (banners, late))
        self.assertGreaterEqual(banners, 3)
        self.assertTrue(late, "no loop.late_turn while the loop waited for its CPU")
        self.assertGreaterEqual(max(r["runq_ms"] for r in late), 20, late)
        self.assertTrue(all(r["cpu_ms"] < 20 and r["count"] >= 1 for r in late), late)


if __name__ == "__main__":
    main()
