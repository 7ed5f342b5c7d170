"""
`sluice check-config` runs every gate `sluice run` runs (so systemd's ExecStartPre is truthful): for
a table of configurations that run refuses, check-config refuses them too, with the same
"file:line:column: key: problem" lines. And the warnings both give: relay.users without a TLS
certificate (SMTP AUTH is never offered), named at relay.users' line and column.
"""
import os
import re
import shutil
import subprocess
import tempfile

from certs import make_test_cert
from harness import SluiceTestCase, daemon_user, free_port, main

HEAD = """\
server:
  hostname: mx.example.test
  spool: {spool}
listeners:
  - name: mx
    address: "127.0.0.1:{port}"
    role: submission
"""
TLS = "tls:\n  certificate: {cert}\n  key: {key}\n"


def server_extra(lines):
    """HEAD with more keys in its server section."""
    return HEAD.replace("  spool: {spool}\n", "  spool: {spool}\n" + lines)


def error_lines(stderr):
    """What a person reads: the lines that are not JSON log records."""
    return [l for l in stderr.decode().splitlines() if l and not l.startswith("{")]


def json_messages(stderr, event):
    return re.findall(r'"event":"%s","msg":"((?:[^"\\]|\\.)*)"' % re.escape(event),
                      stderr.decode())


def position(text, needle):
    """(line, column) of the first character of needle in text, 1-based."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class CheckConfigLikeRun(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(start=False)
        # Files only root may touch, outside the directory handed to the daemon's user.
        self.private = tempfile.mkdtemp(prefix="check-config-root-")
        self.addCleanup(shutil.rmtree, self.private, True)
        self.cert, self.key = make_test_cert(self.d.dir)
        other = os.path.join(self.d.dir, "other")
        os.mkdir(other)
        _, self.other_key = make_test_cert(other)

    def write(self, text, name="bad.yaml"):
        path = os.path.join(self.d.dir, name)
        with open(path, "w") as f:
            f.write(text.format(spool=self.d.spool, port=free_port("127.0.0.1"), dir=self.d.dir,
                                private=self.private, cert=self.cert, key=self.key,
                                other_key=self.other_key))
        return path

    def cases(self):
        """(what, the file, the key its first error names; None: the users file names itself)."""
        table = [
            ("missing certificate", HEAD + TLS.replace("{cert}", "{dir}/nope.pem"),
             "tls.certificate"),
            ("missing key", HEAD + TLS.replace("{key}", "{dir}/nope.key"), "tls.key"),
            ("key of another certificate", HEAD + TLS.replace("{key}", "{other_key}"), "tls"),
            ("unknown server.user", server_extra("  user: no-such-user-for-sluice\n"),
             "server.user"),
            ("log file in a missing directory",
             server_extra("  log:\n    file: {dir}/nodir/sluice.log\n"), "server.log.file"),
            ("listener address not on this machine",
             HEAD.replace("127.0.0.1:{port}", "192.0.2.1:{port}").replace("submission",
                                                                          "inbound"),
             "listeners[0]"),
            ("missing users file", HEAD + "relay:\n  users: {dir}/nope.users\n", None),
            ("spool that is a file", HEAD.replace("{spool}", "{dir}/a-file"), "server.spool"),
            ("spool path too long for the control socket",
             HEAD.replace("{spool}", "{dir}/" + "s" * 108), "server.spool"),
            ("DKIM key that is not a key",
             HEAD + "dkim:\n  - domain: example.com\n    selector: s\n"
                    "    key: {dir}/garbage.key\n", "dkim[0]"),
        ]
        if daemon_user() is not None:
            table += [
                ("log file the daemon's user cannot write",
                 server_extra("  log:\n    file: {private}/log\n"), "server.log.file"),
                ("spool the daemon's user cannot reach", HEAD.replace("{spool}", "{private}/spool"),
                 "server.spool"),
            ]
        return table

    def test_check_config_refuses_what_run_refuses(self):
        with open(os.path.join(self.d.dir, "a-file"), "w") as f:
            f.write("not a directory\n")
        with open(os.path.join(self.d.dir, "garbage.key"), "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
        os.chmod(os.path.join(self.d.dir, "garbage.key"), 0o600)
        log = os.path.join(self.private, "log")
        with open(log, "w"):
            pass
        os.chmod(log, 0o600)
        os.chmod(self.private, 0o700)
        for what, text, key in self.cases():
            with self.subTest(what):
                path = self.write(text)
                check = self.d.cli("check-config", config=path)
                try:
                    run = self.d.cli("run", config=path, timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail("%s: run started (check-config said %r)" % (what, check.stdout))
                self.assertEqual(run.returncode, 1, "%s: run: %r" % (what, run.stderr))
                self.assertEqual(check.returncode, 1, "%s: check-config said ok: %r %r"
                                 % (what, check.stdout, check.stderr))
                run_lines, check_lines = error_lines(run.stderr), error_lines(check.stderr)
                self.assertTrue(check_lines, what)
                self.assertEqual(check_lines, run_lines, "%s: different messages" % what)
                if key is not None:
                    self.assertRegex(check_lines[0], r"^%s(:\d+:\d+)?: %s: \S"
                                     % (re.escape(path), re.escape(key)), what)

    def test_a_good_file_passes_both(self):
        path = self.write(HEAD + TLS, "good.yaml")
        check = self.d.cli("check-config", config=path)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertEqual(check.stdout.decode().strip(), "%s: ok" % path)


class Warnings(SluiceTestCase):
    def test_relay_users_without_a_certificate(self):
        """AUTH is only ever offered over TLS: users without a certificate are a dead setting."""
        d = self.start_sluice(start=False)
        users = os.path.join(d.dir, "users")
        with open(users, "w") as f:
            f.write("alice:$6$salt$hash\n")
        d.extra = {"relay": {"users": users}}
        path = d.write_config()
        line, column = position(open(path).read(), users)
        expected = "%s:%d:%d: relay.users: SMTP AUTH is never offered" % (path, line, column)

        check = d.cli("check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        warnings = json_messages(check.stderr, "config.warning")
        self.assertTrue(any(w.startswith(expected) for w in warnings), (expected, warnings))
        self.assertIn("tls.certificate is not set", " ".join(warnings))

        d.start()
        self.assertTrue(any(r["msg"].startswith(expected) for r in d.events("config.warning")),
                        d.log_tail())


if __name__ == "__main__":
    main()
