"""
The manual pages in docs/man/ are what `sluice help --roff PAGE` prints from the command and key
tables (regenerate them with it when a command or key changes), man renders each without a
warning and within 80 columns, and `sluice help PAGE` prints the same page as plain text.

usage: man_pages.py SLUICE_BIN SOURCE_DIR
"""
import os
import re
import shutil
import subprocess
import sys

PAGES = {"sluice": "sluice.8", "sluice.yaml": "sluice.yaml.5"}


def main():
    sluice, source = sys.argv[1], sys.argv[2]
    failures = []
    for page, filename in PAGES.items():
        path = os.path.join(source, "docs", "man", filename)
        roff = subprocess.run([sluice, "help", "--roff", page], capture_output=True, timeout=30)
        if roff.returncode != 0:
            failures.append("sluice help --roff %s: exit %d" % (page, roff.returncode))
            continue
        with open(path, "rb") as f:
            if f.read() != roff.stdout:
                failures.append("%s differs from `sluice help --roff %s`: regenerate it with\n"
                                "  sluice help --roff %s > docs/man/%s" % (path, page, page, filename))
        text = subprocess.run([sluice, "help", page], capture_output=True, timeout=30)
        if text.returncode != 0 or not text.stdout.startswith(("%s(" % page).encode()):
            failures.append("sluice help %s: exit %d, %r" % (page, text.returncode, text.stdout[:40]))
        if shutil.which("man") is None:
            print("man is not installed: rendering not checked")
            continue
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        shown = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, timeout=60,
                               env=env)
        if shown.returncode != 0 or shown.stderr:
            failures.append("man -l %s: exit %d\n%s" % (path, shown.returncode,
                                                        shown.stderr.decode(errors="replace")))
        plain = re.sub(".\b", "", shown.stdout.decode(errors="replace"))  # bold and underline
        for line in plain.splitlines():
            if len(line) > 80:
                failures.append("man -l %s: a line wider than 80 columns: %s" % (path, line))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
