"""
What a status request and a scrape cost with a big held queue in memory (by hand, not in CI):
2,000 messages written to the spool before the start, 1,000 of them with 200 recipients due
within the active window (200,000 recipients in memory), the destinations suspended. Then
GET /api/v1/status and GET /metrics are timed, 200 of each, one at a time; the median and the
99th percentile are printed. Run with SLUICE_BIN=... to compare two builds:

    /usr/bin/python3 bench/status/status_cost.py
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration"))
from harness import main  # noqa: E402
from mailnet import MailNetCase  # noqa: E402
from test_admin_load import control, write_queue  # noqa: E402
from test_http import TOKEN, get, http_section  # noqa: E402

ROUNDS = 200


def timed(d, path):
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        status, _, _ = get(d, path, token=TOKEN)
        times.append(time.perf_counter() - started)
        assert status == 200, status
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000


class StatusCost(MailNetCase):
    def test_status_and_scrape_cost(self):
        net = self.make_net()
        peer = net.peer("mx.load.test")
        for domain in ("held.test", "kept.test", "sender.test"):
            net.mx(domain, peer, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"])
        cfg["delivery"]["active_window"] = "1h"  # the wide messages, due in half an hour, in memory
        d = self.d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d)
        write_queue(d.spool, 2000, 1000, 200, ("held.test", "kept.test"))
        d.start(timeout=240)
        for domain in ("held.test", "kept.test", "sender.test"):
            control(d.spool, "suspend " + domain)
        self.wait(lambda: json.loads(control(d.spool, "list 1")[1])["active"]["in_memory"] >= 1000,
                  120, "the wide messages read into memory")
        print("\nload average: %s" % open("/proc/loadavg").read().split()[0])
        for path in ("/api/v1/status", "/metrics"):
            median, p99 = timed(d, path)
            print("\n%-16s median %.2f ms, p99 %.2f ms" % (path, median, p99))


if __name__ == "__main__":
    main()
