"""
status_cost.py for two builds side by side: for each size, PAIRS pairs of runs, the order of the
two alternating from pair to pair (before then after, after then before, ...), so that a machine
whose load drifts weighs on both alike. Prints a Markdown table per size: each request's median /
90th percentile latency, the loop's CPU per request, the banner waits of a concurrent SMTP client
while the requests run (and while idle), the load average at the start of each run, and the
after / before ratios of each pair.

    /usr/bin/python3 bench/status/compare.py BEFORE_BIN AFTER_BIN [SIZES [PAIRS]]

SIZES: destinations, comma-separated (default 3,20000); PAIRS: default 3. Each run's JSON is
also appended to $STATUS_RESULTS (default status-compare.jsonl); a pair with a failed run is left
out of the tables.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUESTS = ("status", "/api/v1/status", "/metrics")


def run(binary, destinations, label, keep):
    """One run's result, also appended to the file keep; None when it failed (its output is
    printed to stderr)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        env = dict(os.environ, SLUICE_BIN=binary, STATUS_DESTINATIONS=str(destinations),
                   STATUS_RESULT=out.name)
        proc = subprocess.run([sys.executable, os.path.join(HERE, "status_cost.py")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
        lines = out.read().splitlines()
    if proc.returncode != 0 or not lines:
        print("status_cost.py failed for %s:\n%s" % (binary, proc.stdout.decode()[-6000:]),
              file=sys.stderr)
        return None
    result = dict(json.loads(lines[-1]), label=label)
    with open(keep, "a") as f:
        f.write(json.dumps(result) + "\n")
    return result


def ms(value):
    return "%.2f" % value if value < 10 else "%.0f" % value


def table(destinations, pairs):
    print("\n### %d destinations\n" % destinations)
    print("| pair (load before / after) | request | median / p90 (ms), before | after | "
          "after / before (median) | loop CPU per request (ms), before / after | "
          "banner p90 / max (ms) meanwhile, before | after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    ratios = {r: [] for r in REQUESTS}
    for n, (b, a) in enumerate(pairs, 1):
        for phase in ("idle",) + REQUESTS:
            cells = ["%d (%s / %s)" % (n, b["load"], a["load"]) if phase == "idle" else "",
                     "`%s`" % phase if phase != "idle" else "none (idle)"]
            if phase == "idle":
                cells += ["", "", "", ""]
            else:
                ratio = a[phase]["median_ms"] / b[phase]["median_ms"]
                ratios[phase].append(ratio)
                cells += ["%s / %s" % (ms(x[phase]["median_ms"]), ms(x[phase]["p90_ms"]))
                          for x in (b, a)]
                cells += ["%.3g" % ratio,
                          "%s / %s" % (ms(b[phase]["cpu_ms"]), ms(a[phase]["cpu_ms"]))]
            cells += ["%s / %s" % (ms(x[phase]["banner_p90_ms"]), ms(x[phase]["banner_max_ms"]))
                      for x in (b, a)]
            print("| " + " | ".join(cells) + " |")
    for r in REQUESTS:
        print("\n`%s`: after / before, median of the pairs: %.3g (pairs: %s)"
              % (r, statistics.median(ratios[r]), ", ".join("%.3g" % x for x in ratios[r])))
    print("\nsetup (daemon start to every destination known), s (`retry all` needed): "
          "before %s, after %s" % tuple(", ".join("%s (%d)" % (x["setup_s"], x["retries"])
                                                  for x in side) for side in zip(*pairs)))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before, after = sys.argv[1], sys.argv[2]
    sizes = [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "3,20000").split(",")]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    keep = os.environ.get("STATUS_RESULTS", "status-compare.jsonl")
    pairs = {size: [] for size in sizes}
    for n in range(count):
        for size in sizes:
            order = (("before", before), ("after", after))
            got = {}
            for label, binary in order if n % 2 == 0 else reversed(order):
                got[label] = run(binary, size, label, keep)
                print("pair %d, %d destinations, %s: %s" % (n + 1, size, label, "failed" if
                      got[label] is None else "load %s, /api/v1/status %.2f ms" % (
                          got[label]["load"], got[label]["/api/v1/status"]["median_ms"])),
                      file=sys.stderr, flush=True)
            if None not in got.values():
                pairs[size].append((got["before"], got["after"]))
    print("before: %s\nafter: %s\nevery run: %s" % (os.path.realpath(before),
                                                   os.path.realpath(after), keep))
    for size in sizes:
        if pairs[size]:
            table(size, pairs[size])


if __name__ == "__main__":
    main()
