"""
packaging/sluice.bash-completion completes what `sluice help` lists: commands, the verbs of queue
and dkim, each command's options, the manual pages after `help`, and file names after -c.

usage: bash_completion.py SLUICE_BIN SOURCE_DIR
"""
import os
import subprocess
import sys
import tempfile


def complete(script, sluice, line):
    """COMPREPLY for the command line `line` (the cursor at its end) as bash's completion sets it."""
    words = line.split(" ")
    words[0] = sluice
    program = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_sluice\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n"
               % (script, " ".join("'%s'" % w for w in words), len(words) - 1))
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("bash: %s" % out.stderr)
    return sorted(w for w in out.stdout.split("\n") if w)


def main():
    sluice, source = sys.argv[1], sys.argv[2]
    script = os.path.join(source, "packaging", "sluice.bash-completion")
    with tempfile.TemporaryDirectory(prefix="sluice-completion-") as tmp:
        open(os.path.join(tmp, "site.yaml"), "w").close()
        cases = [
            ("sluice ", ["--help", "--version", "audit-mx", "check-config", "config-keys", "dkim",
                         "doctor", "explain", "help", "log-events", "queue", "relay-test", "run",
                         "status", "suppress", "tls-rpt", "version"]),
            ("sluice q", ["queue"]),
            ("sluice status --j", ["--json"]),
            ("sluice queue ", ["bounce", "delete", "destinations", "list", "resume", "retry",
                              "show", "suspend"]),
            ("sluice queue -c /etc/x.yaml s", ["show", "suspend"]),
            ("sluice queue list ", []),
            ("sluice queue list --j", ["--json"]),
            ("sluice suppress ", ["add", "check", "export", "import", "list", "remove"]),
            ("sluice dkim ", ["check", "keygen"]),
            ("sluice dkim keygen --a", ["--algorithm"]),
            ("sluice explain --r", ["--rcpt"]),
            ("sluice doctor --", ["--config", "--help", "--json", "--watch"]),
            ("sluice audit-mx --n", ["--ns-port"]),
            ("sluice help sluice", ["sluice", "sluice.yaml"]),
            ("sluice help --roff ", ["sluice", "sluice.yaml"]),
            ("sluice run -c %s/si" % tmp, ["%s/site.yaml" % tmp]),
        ]
        failures = 0
        for line, want in cases:
            got = complete(script, sluice, line)
            if got != sorted(want):
                print("%r: completed %r, want %r" % (line, got, sorted(want)), file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
