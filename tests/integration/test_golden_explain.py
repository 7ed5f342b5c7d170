"""
Golden policy tests: each tests/golden/policy/NAME.in holds a configuration, a line "---", then one
`sluice explain` argument list per line ('#' lines are comments). Every envelope is explained and
the transcript is compared with NAME.ref. The configuration is written as sluice.yaml in a temp dir
and explain runs there, so positions read "sluice.yaml:line:column" on every machine; the files of
a directory NAME.d (recipients tables) are copied next to it.
SLUICE_GOLDEN_UPDATE=1 rewrites the .ref files instead (review the diff before committing).
"""
import difflib
import glob
import os
import shlex
import shutil
import subprocess
import tempfile
import unittest

from harness import SOURCE_DIR, main, sluice_bin

GOLDEN_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "policy")


def transcript(binary, text, workdir):
    """The explain transcript of one .in file's text."""
    config, sep, envelopes = text.partition("\n---\n")
    if not sep:
        raise AssertionError("no '---' line between the configuration and the envelopes")
    with open(os.path.join(workdir, "sluice.yaml"), "w") as f:
        f.write(config + "\n")
    out = []
    for line in envelopes.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        res = subprocess.run([binary, "explain", "-c", "sluice.yaml"] + shlex.split(line),
                             cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        out.append("$ sluice explain %s\n" % line)
        out.append(res.stdout.decode())
        out.append(res.stderr.decode())
        out.append("exit %d\n\n" % res.returncode)
    return "".join(out)


class GoldenExplain(unittest.TestCase):
    def test_golden(self):
        binary = sluice_bin()
        inputs = sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.in")))
        self.assertTrue(inputs, "no golden inputs in %s" % GOLDEN_DIR)
        for path in inputs:
            name = os.path.basename(path)[:-3]
            with self.subTest(name):
                workdir = tempfile.mkdtemp(prefix="golden-")
                if os.path.isdir(path[:-3] + ".d"):
                    shutil.copytree(path[:-3] + ".d", workdir, dirs_exist_ok=True)
                try:
                    got = transcript(binary, open(path).read(), workdir)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                ref = path[:-3] + ".ref"
                if os.environ.get("SLUICE_GOLDEN_UPDATE"):
                    with open(ref, "w") as f:
                        f.write(got)
                    continue
                want = open(ref).read() if os.path.exists(ref) else ""
                if got != want:
                    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                        ref, "explain output"))
                    self.fail("%s differs from its reference:\n%s" % (name, diff))


if __name__ == "__main__":
    main()
