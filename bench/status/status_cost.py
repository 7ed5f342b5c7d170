"""
What a status request and a scrape cost on a big queue (by hand, not in CI), one daemon, one size:
2,000 messages written to the spool before the start, 1,000 of them with 200 recipients due at
once (200,000 recipients in memory) spread evenly over DESTINATIONS domains d00000.load.test...,
the other 1,000 with one recipient deferred beyond the active window (on disk). Every load.test
domain is suspended in <spool>/suspended before the start, and a DNS server of the bench's own
(wildcard_dns.py) answers each MX at once: the daemon routes every recipient and holds it at its
suspended destination, so DESTINATIONS destinations are known to the scheduler with queued mail.

Then, while a raw-socket client keeps opening SMTP connections and timing each 220 banner:
`status` on the control socket (what `sluice status` asks), GET /api/v1/status (the status API
and page) and GET /metrics, each back to back for PHASE_S seconds and at least ROUNDS times, one
at a time, each on a new connection (a dashboard that never stops asking). Printed, and
appended as one JSON line to $STATUS_RESULT when set: the median and 90th percentile of each, the
loop thread's CPU per request (its CPU while the requests ran, less its idle rate), the banner
waits during each phase and while idle, and the load average at the start of the timing.

    SLUICE_BIN=build-rel/mta/sluice STATUS_DESTINATIONS=20000 \
        /usr/bin/python3 bench/status/status_cost.py

compare.py runs it for two builds, alternating, and prints the table of docs/benchmarks.md.
"""
import json
import os
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import SluiceTestCase, main, sluice_bin  # noqa: E402
from spool_files import LEAVES, queue_file, state_record  # noqa: E402
from test_admin_load import BannerProbe, control, loop_clocks, qid  # noqa: E402
from test_http import TOKEN, get, http_section  # noqa: E402

ROUNDS = int(os.environ.get("STATUS_ROUNDS", "200"))  # requests of each kind, at least ...
PHASE_S = float(os.environ.get("STATUS_PHASE_S", "5"))  # ... and for this long, back to back
DESTINATIONS = int(os.environ.get("STATUS_DESTINATIONS", "20000"))
ZONE = "load.test"
NOBODY = "127.66.0.1"  # the MX host's address: nothing listens (no delivery is tried anyway)
MESSAGES, WIDE, WIDE_RCPTS = 2000, 1000, 200
IDLE_S = 3.0
SENDER = "bulk@sender.test"


def domain(n):
    return "d%05d.%s" % (n, ZONE)


def write_spool(spool, destinations):
    """The queue and state files, straight into the spool's leaves, and the suspensions."""
    for sub in ("queue", "state"):
        for leaf in range(LEAVES):
            os.makedirs(os.path.join(spool, sub, "%03x" % leaf), 0o700, exist_ok=True)
    now = int(time.time())
    body = b"Subject: held\r\n\r\nwaits\r\n"
    total = WIDE * WIDE_RCPTS
    for n in range(MESSAGES):
        if n < WIDE:  # recipient k of all 200,000 goes to domain k * destinations // total
            first = n * WIDE_RCPTS
            rcpts = ["r%d-%d@%s" % (n, i, domain((first + i) * destinations // total))
                     for i in range(WIDE_RCPTS)]
            state = b""  # never tried: due at once
        else:
            rcpts = ["r%d@%s" % (n, domain(n % destinations))]
            state = state_record(0, 1, 1, now + 7200, b"451 4.7.1 later")
        leaf = "%03x" % (zlib.crc32(qid(n).encode()) % LEAVES)
        for sub, data in (("queue", queue_file(SENDER, rcpts, body, now)), ("state", state)):
            if not data:
                continue  # no state file: never tried
            with open(os.path.join(spool, sub, leaf, qid(n)), "wb") as f:
                f.write(data)
    with open(os.path.join(spool, "suspended"), "w") as f:
        f.write("sluice-suspended/1\n")
        f.writelines("%s 0\n" % domain(n) for n in range(destinations))


def quantiles(values):
    """(median, 90th percentile) in ms of values in seconds."""
    values = sorted(values)
    if not values:
        return (None, None)
    return (values[len(values) // 2] * 1000, values[int(len(values) * 0.9)] * 1000)


class StatusCost(SluiceTestCase):
    def start_dns(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "wildcard_dns.py"), ZONE,
                                 NOBODY], stdout=subprocess.PIPE)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.kill)
        return "127.0.0.1:%d" % int(proc.stdout.readline())

    def queue(self, d):
        ok, payload = control(d.spool, "status")
        self.assertTrue(ok, payload)
        return json.loads(payload)["queue"]

    def wait_routed(self, d):
        """Waits for every destination; returns how many `retry all` that took. On a loaded
        machine a burst of answers can overflow the daemon's resolver socket: those lookups time
        out and their recipients are deferred, and an administrator's retry routes them again
        (they stay counted as deferred, held at their destination; so do the on-disk messages'
        recipients a retry brings in)."""
        retries, seen, since = 0, None, time.monotonic()
        deadline = since + 600
        while time.monotonic() < deadline:
            q = self.queue(d)
            if q["destinations"] >= DESTINATIONS:
                return retries
            if (q["destinations"], q["deferred"]) != seen:
                seen, since = (q["destinations"], q["deferred"]), time.monotonic()
            elif q["deferred"] > 0 and time.monotonic() - since > 20:
                ok, why = control(d.spool, "retry all")
                self.assertTrue(ok, why)
                retries, since = retries + 1, time.monotonic()
            time.sleep(1.0)
        self.fail("%d destinations not all known in 600 s: %s\n%s" % (
            DESTINATIONS, self.queue(d), d.log_tail()))

    def test_status_and_scrape_cost(self):
        cfg = {"server": {"hostname": "sluice.test"},
               "dns": {"servers": [self.start_dns()]},
               "delivery": {"active_window": "1h"},
               "shaping": {"default": {"retry": ["1h"]}}}
        d = self.d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d)
        write_spool(d.spool, DESTINATIONS)
        setup = time.monotonic()
        d.start(timeout=240)
        retries = self.wait_routed(d)
        setup = time.monotonic() - setup
        time.sleep(1.5)  # a summary walked after the last destination came
        q = self.queue(d)
        self.assertEqual((q["destinations"], q["bouncing"]), (DESTINATIONS, 0), q)
        self.assertGreaterEqual(q["pending"] + q["deferred"], WIDE * WIDE_RCPTS, q)

        requests = {"status": lambda: control(d.spool, "status"),
                    "/api/v1/status": lambda: get(d, "/api/v1/status", token=TOKEN),
                    "/metrics": lambda: get(d, "/metrics", token=TOKEN)}
        result = {"bin": os.path.realpath(sluice_bin()), "destinations": DESTINATIONS,
                  "setup_s": round(setup, 1), "retries": retries, "deferred": q["deferred"],
                  "load": open("/proc/loadavg").read().split()[0]}
        probe = BannerProbe(d.addr(), os.path.join(d.dir, "banners"))
        probe.start()
        time.sleep(IDLE_S / 2)  # the probe's start
        probe.phase = "idle"
        cpu0 = loop_clocks(d.proc.pid)[0]
        time.sleep(IDLE_S)
        idle_rate = (loop_clocks(d.proc.pid)[0] - cpu0) / IDLE_S  # loop CPU ms per second, idle
        for name, request in requests.items():
            probe.phase = name
            times = []
            started, cpu0 = time.monotonic(), loop_clocks(d.proc.pid)[0]
            while len(times) < ROUNDS or time.monotonic() - started < PHASE_S:
                t = time.perf_counter()
                answer = request()
                times.append(time.perf_counter() - t)
                self.assertIn(answer[0], (True, 200), answer[:2])
            cpu = loop_clocks(d.proc.pid)[0] - cpu0 - idle_rate * (time.monotonic() - started)
            result[name] = {"median_ms": quantiles(times)[0], "p90_ms": quantiles(times)[1],
                            "cpu_ms": cpu / len(times), "requests": len(times)}
        probe.phase = "end"
        probe.stop()
        self.assertEqual(probe.failures, [])
        waits = {}
        with open(probe.path) as f:
            for line in f:
                start, took, _ = line.split(" ", 2)
                phase = [name for at, name in probe.phases if at <= float(start)][-1]
                waits.setdefault(phase, []).append(float(took))
        for phase in ["idle"] + list(requests):
            median, p90 = quantiles(waits.get(phase, []))
            result.setdefault(phase, {}).update(
                banner_median_ms=median, banner_p90_ms=p90,
                banner_max_ms=max(waits.get(phase, [0])) * 1000, banners=len(waits.get(phase, [])))
        print("\n" + json.dumps(result, indent=1))
        if os.environ.get("STATUS_RESULT"):
            with open(os.environ["STATUS_RESULT"], "a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
