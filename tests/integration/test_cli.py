"""
The command line as a user meets it: each bad invocation in the table exits 2 and says what is
wrong ("missing --selector", "unknown queue verb 'lst' (did you mean list?)", unknown option,
missing value, extra argument) on its first line, then the usage of that command; `--help`, `-h`
and `sluice help CMD` print every command's help on standard output and exit 0; a configuration
with a tab in its indentation or an unclosed quote is refused in plain words at file:line:column.
"""
import os
import re
import subprocess
import tempfile
import unittest

from harness import SluiceTestCase, main, sluice_bin

KEYGEN = ["dkim", "keygen", "--domain", "example.com", "--selector", "s1"]

# (arguments, what the first line of standard error says after "sluice ")
USAGE_ERRORS = [
    ([], "sluice: missing command"),
    (["quee"], "sluice: unknown command 'quee' (did you mean queue?)"),
    (["frobnicate"], "sluice: unknown command 'frobnicate'"),
    (["help", "nosuch"], "sluice: unknown command 'nosuch'"),
    (["help", "queue", "x"], "sluice help: unexpected argument 'x'"),
    (["version", "x"], "sluice version: unexpected argument 'x'"),
    (["queue"], "sluice queue: missing queue verb (list, show, retry, delete, suspend, resume, "
                "bounce or destinations)"),
    (["queue", "lst"], "sluice queue: unknown queue verb 'lst' (did you mean list?)"),
    (["queue", "frob"], "sluice queue: unknown queue verb 'frob'"),
    (["queue", "show"], "sluice queue show: missing message ID"),
    (["queue", "suspend"], "sluice queue suspend: missing destination"),
    (["queue", "list", "x"], "sluice queue list: unexpected argument 'x'"),
    (["queue", "destinations", "a", "b"], "sluice queue destinations: unexpected argument 'b'"),
    (["queue", "destinations", "--json"],
     "sluice queue destinations: --json goes with queue list only"),
    (["queue", "suspend", "a", "1h", "x"], "sluice queue: unexpected argument 'x'"),
    (["queue", "list", "--bdy"], "sluice queue: unknown option '--bdy' (did you mean --body?)"),
    (["queue", "list", "--body"], "sluice queue list: --body goes with queue show only"),
    (["queue", "show", "X", "--json"], "sluice queue show: --json goes with queue list only"),
    (["queue", "list", "-c"], "sluice queue: missing value for -c"),
    (["queue", "list", "--config="], "sluice queue: missing value for --config"),
    (["queue", "list", "--json", "--json"], "sluice queue: --json given twice"),
    (["queue", "list", "--json=yes"], "sluice queue: --json takes no value"),
    (["dkim"], "sluice dkim: missing dkim verb (keygen or check)"),
    (["dkim", "kegen"], "sluice dkim: unknown dkim verb 'kegen' (did you mean keygen?)"),
    (["dkim", "keygen", "--domain", "example.com"], "sluice dkim keygen: missing --selector"),
    (["dkim", "keygen", "--selector", "s1"], "sluice dkim keygen: missing --domain"),
    (["dkim", "keygen", "--domain", "example.com", "--selector"],
     "sluice dkim keygen: missing value for --selector"),
    (["dkim", "keygen", "--domain", "--selector", "s1"],
     "sluice dkim keygen: missing value for --domain"),
    (KEYGEN + ["--algorithm", "ed25519"],
     "sluice dkim keygen: unknown algorithm 'ed25519' (did you mean ed25519-sha256?)"),
    (KEYGEN + ["--algorithm", "rsa"],
     "sluice dkim keygen: unknown algorithm 'rsa' (did you mean rsa-sha256?)"),
    (KEYGEN + ["--algorithm", "dsa"],
     "sluice dkim keygen: unknown algorithm 'dsa' (rsa-sha256 or ed25519-sha256)"),
    (KEYGEN + ["--bits", "big"], "sluice dkim keygen: --bits: 'big' is not a whole number"),
    (KEYGEN + ["--bits", "-5"], "sluice dkim keygen: --bits: '-5' is not a whole number"),
    (KEYGEN + ["--bits", "99999"], "sluice dkim keygen: --bits: 99999 is more than 4096"),
    (KEYGEN + ["--bits", "1024"],
     "sluice dkim keygen: --bits: 1024 is less than 2048, the least for a new RSA key (RFC 8301)"),
    (KEYGEN + ["--selecter", "s2"],
     "sluice dkim keygen: unknown option '--selecter' (did you mean --selector?)"),
    (KEYGEN + ["extra"], "sluice dkim keygen: unexpected argument 'extra'"),
    (["dkim", "check", "extra"], "sluice dkim check: unexpected argument 'extra'"),
    (["explain", "--client", "192.0.2.1", "--from", "a@b.example"], "sluice explain: missing --rcpt"),
    (["explain", "--from", "a@b.example", "--rcpt", "c@d.example"], "sluice explain: missing --client"),
    (["explain", "--client", "nowhere", "--from", "a@b.example", "--rcpt", "c@d.example"],
     "sluice explain: --client 'nowhere' is not an IP address"),
    (["explain", "--clinet", "192.0.2.1"],
     "sluice explain: unknown option '--clinet' (did you mean --client?)"),
    (["explain", "--client", "192.0.2.1", "stray"], "sluice explain: unexpected argument 'stray'"),
    (["relay-test", "127.0.0.1:25"],
     "sluice relay-test: missing --local-domain (a domain 127.0.0.1:25 accepts mail for)"),
    (["relay-test", "nohostport", "--local-domain", "example.com"],
     "sluice relay-test: 'nohostport' is not HOST:PORT"),
    (["relay-test", "127.0.0.1:25", "--local-domain", "x", "-c", "f"],
     "sluice relay-test: -c goes without HOST:PORT"),
    (["relay-test", "--from", "a@b.example"], "sluice relay-test: --from goes with HOST:PORT"),
    (["relay-test", "a:1", "b:2"], "sluice relay-test: unexpected argument 'b:2'"),
]

# The same for run and check-config (mta/cli/cmd_run.c).
USAGE_ERRORS_RUN = [
    (["check-config", "--frob"], "sluice check-config: unknown option '--frob'"),
    (["run", "-c"], "sluice run: missing value for -c"),
    (["config-keys", "x"], "sluice config-keys: unexpected argument 'x'"),
    (["log-events", "x"], "sluice log-events: unexpected argument 'x'"),
]

# A line of the help of each command, besides its usage.
HELP_MENTIONS = {
    "run": "SIGHUP", "check-config": "file:line:column", "config-keys": "default",
    "log-events": "fields",
    "queue": "--json", "relay-test": "--local-domain", "explain": "--rcpt ADDRESS",
    "dkim": "--algorithm A", "doctor": "--json", "version": "VERSION",
    "audit-mx": "--ns-port N", "suppress": "--expires WHEN", "status": "--json",
    "tls-rpt": "_smtp._tls",
}


class CommandLine(SluiceTestCase):
    def setUp(self):
        self.bin = sluice_bin()
        self.dir = tempfile.TemporaryDirectory(prefix="sluice-cli-")
        self.addCleanup(self.dir.cleanup)

    def sluice(self, *args):
        # In an empty directory: nothing a command might write lands in the tree.
        return subprocess.run([self.bin] + list(args), cwd=self.dir.name, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=20)

    def check_usage_error(self, args, first_line):
        res = self.sluice(*args)
        err = res.stderr.decode().splitlines()
        self.assertEqual(res.returncode, 2, "%s: %r" % (args, res.stderr))
        self.assertEqual(res.stdout, b"", args)
        self.assertTrue(err and err[0].startswith(first_line), "%s: %r" % (args, err[:1]))
        # Then the usage: of the command (or the list of commands), a few lines at most.
        self.assertGreater(len(err), 1, args)
        self.assertTrue(err[1].startswith("usage: sluice "), "%s: %r" % (args, err[1]))
        command = "<command>" if not args or "unknown command" in err[0] else args[0]
        self.assertRegex(err[1], r"^usage: sluice %s( |$)" % re.escape(command), args)
        return err

    def test_usage_errors_say_what_is_wrong(self):
        for args, first_line in USAGE_ERRORS:
            with self.subTest(args=args):
                self.check_usage_error(args, first_line)
        # Nothing was written by the refused keygen runs.
        self.assertEqual(os.listdir(self.dir.name), [])

    def test_usage_errors_of_run_and_check_config(self):
        for args, first_line in USAGE_ERRORS_RUN:
            self.check_usage_error(args, first_line)

    def test_usage_error_shows_the_verb_only(self):
        err = self.check_usage_error(["queue", "show"], "sluice queue show: missing message ID")
        self.assertEqual(err[1:], ["usage: sluice queue [-c FILE] show ID [--body]",
                                   "'sluice queue --help' for more."])
        err = self.check_usage_error(["queue", "lst"], "sluice queue: unknown queue verb 'lst'")
        # the seven verbs' usage, bounce ID, suspend|resume --tenant, bounce --tenant and
        # bounce --destination
        self.assertEqual(len([line for line in err if "sluice queue [-c FILE]" in line]), 11)

    def commands(self):
        res = self.sluice("--help")
        self.assertEqual(res.returncode, 0)
        names = re.findall(r"(?m)^  (\S+) +\S", res.stdout.decode())
        self.assertEqual(sorted(names), sorted(HELP_MENTIONS), "every command is listed")
        return names

    def test_help_for_every_command(self):
        for name in self.commands():
            for args in ([name, "--help"], [name, "-h"], ["help", name], ["--help", name]):
                with self.subTest(args=args):
                    res = self.sluice(*args)
                    out = res.stdout.decode()
                    self.assertEqual(res.returncode, 0, "%s: %r" % (args, res.stderr))
                    self.assertEqual(res.stderr, b"", args)
                    self.assertTrue(out.startswith("usage: sluice %s" % name), "%s: %r" % (args, out))
                    self.assertIn(HELP_MENTIONS[name], out, args)
                    self.assertIn("-h, --help", out, args)
        # --help wins over anything else on the line, even where the rest is wrong.
        for args in (["queue", "show", "--help"], ["dkim", "keygen", "--bits", "x", "-h"],
                     ["run", "-c", "/nonexistent", "--help"]):
            with self.subTest(args=args):
                res = self.sluice(*args)
                self.assertEqual(res.returncode, 0, args)
                self.assertTrue(res.stdout.decode().startswith("usage: sluice %s" % args[0]), args)

    def test_help_lists_commands(self):
        for args in (["--help"], ["-h"], ["help"]):
            res = self.sluice(*args)
            self.assertEqual(res.returncode, 0, args)
            self.assertTrue(res.stdout.decode().startswith("usage: sluice <command>"), args)
            self.assertEqual(res.stderr, b"", args)
        res = self.sluice("version")
        self.assertEqual(res.returncode, 0)
        self.assertRegex(res.stdout.decode(), r"^sluice \d+\.\d+\.\d+\n$")

    def test_yaml_mistakes_in_plain_words(self):
        cases = [
            ("server:\n\tspool: /x\n",
             ":2:1: tab character used for indentation: YAML allows only spaces"),
            ("server:\n  spool: \"/x\nlimits: {}\n",
             ":2:10: unclosed quoted string starting at 2:10: no closing \" before the end of "
             "the file"),
        ]
        for text, message in cases:
            with self.subTest(text=text):
                path = os.path.join(self.dir.name, "bad.yaml")
                with open(path, "w") as f:
                    f.write(text)
                res = self.sluice("check-config", "-c", path)
                self.assertEqual(res.returncode, 1)
                self.assertEqual(res.stderr.decode(), path + message + "\n")


if __name__ == "__main__":
    main()
