"""
`sluice relay-test` against the running daemon (as an inbound MX and as a submission server whose
trusted networks leave out 127.0.0.1): no attempt relays, postmaster and local recipients are
accepted; against a server that does relay for 127.0.0.1 the relays are reported. `relay-test -c`
judges a configuration file, check-config refuses open relays with a clear message, and `explain`
names the deciding rule with its line.
"""
import os
import re
import subprocess

from harness import SluiceTestCase, main

LINE = re.compile(r"^(\S+) (\S+) (.+) (refused|RELAY|accepted-local|refused-local|untested) (.*)$")


def parse(stdout):
    """relay-test output as ({case: (outcome, rest)}, verdict line)."""
    lines = stdout.decode().splitlines()
    cases = {}
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, "unexpected relay-test line %r" % line
        cases[m.group(2)] = (m.group(4), m.group(5))
    assert lines and lines[-1].startswith("verdict: "), lines
    return cases, lines[-1]


# Written by hand so explain's line numbers are known.
EXPLAIN_CONFIG = """\
server:
  spool: {spool}
listeners:
  - name: mx
    address: "127.0.0.1:2"
    role: inbound
  - name: sub
    address: "127.0.0.1:3"
    role: submission
relay:
  trusted_networks:
    - "10.0.0.0/8"
domains:
  example.com: {{}}
"""

OPEN_CONFIGS = [
    ("world-wide IPv4", 'relay:\n  trusted_networks: ["0.0.0.0/0"]\n',
     ":2:22: relay.trusted_networks: 0.0.0.0/0"),
    ("world-wide IPv6", 'relay:\n  trusted_networks: ["::/0"]\n',
     ":2:22: relay.trusted_networks: ::/0"),
    ("a /7", 'relay:\n  trusted_networks: ["2.0.0.0/7"]\n',
     ":2:22: relay.trusted_networks: 2.0.0.0/7"),
    ("public submission without AUTH",
     'listeners:\n  - {name: sub, address: "0.0.0.0:2", role: submission}\n',
     ":2:5: listeners: submission listener 'sub'"),
    # Every /8 but the one holding the documentation address the lint used to sample.
    ("every /8 but 192/8", "listeners:\n  - {name: sub, address: \"127.0.0.1:2\", role: submission}\n"
     "relay:\n  trusted_networks:\n" +
     "".join('    - "%d.0.0.0/8"\n' % i for i in range(1, 224) if i != 192),
     ":12:7: relay.trusted_networks: 8.0.0.0/8 trusts 16777216 public IPv4 addresses (a /8)"),
    ("NAT64", 'relay:\n  trusted_networks: ["64:ff9b::/96"]\n',
     ":2:22: relay.trusted_networks: 64:ff9b::/96 trusts 3702258432 public IPv4 addresses "
     "(more than a /1) through NAT64"),
    ("two public /16", 'relay:\n  trusted_networks: ["1.2.0.0/16", "8.8.0.0/16"]\n',
     ":2:36: relay.trusted_networks: with 8.8.0.0/16 the trusted networks cover 131072 public "
     "IPv4 addresses (a /15) in all"),
]


class RelayTest(SluiceTestCase):
    def relay_test(self, *args, timeout=60):
        return subprocess.run([self.bin] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def setUp(self):
        from harness import sluice_bin
        self.bin = sluice_bin()

    def check_no_relay(self, res, what):
        self.assertEqual(res.returncode, 0, "%s: %s%s" % (what, res.stdout.decode(), res.stderr.decode()))
        cases, verdict = parse(res.stdout)
        self.assertGreaterEqual(len(cases), 17, what)
        self.assertRegex(verdict, r"^verdict: ok: 0 of \d+ attempts relayed$", what)
        for name, (outcome, rest) in cases.items():
            if name in ("postmaster", "postmaster-local", "local-recipient"):
                self.assertEqual(outcome, "accepted-local", "%s: %s %s" % (what, name, rest))
                self.assertTrue(rest.startswith("250 "), "%s: %s %s" % (what, name, rest))
            else:
                self.assertEqual(outcome, "refused", "%s: %s %s" % (what, name, rest))
                self.assertRegex(rest, r"^5\d\d ", "%s: %s" % (what, name))
        return cases

    def test_live_inbound_and_submission_refuse_outsiders(self):
        d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"},
                                         {"name": "sub", "role": "submission"}],
                              config={"relay": {"trusted_networks": ["10.0.0.0/8"]}})
        for listener in ("mx", "sub"):
            host, port = d.addr(listener)
            res = self.relay_test("relay-test", "%s:%d" % (host, port), "--local-domain", "example.com",
                                  "--helo", "tester.example")
            cases = self.check_no_relay(res, listener)
            self.assertIn("TO:<user%foreign.example@example.com>", res.stdout.decode())
            self.assertEqual(cases["foreign-domain"][1][:9], "550 5.7.1")
        # The attempts really reached the daemon (more refusals than one session allows: it
        # reconnected after the 421) and nothing was queued.
        self.assertGreaterEqual(len(d.events("smtp.rejected", stage="rcpt")), 2 * 14)
        self.assertEqual(d.queue_list(), [])

    def test_live_detects_a_relay(self):
        # 127.0.0.1 trusted on a submission listener: from here the server does relay.
        d = self.start_sluice(listeners=[{"name": "sub", "role": "submission"}])
        host, port = d.addr("sub")
        res = self.relay_test("relay-test", "%s:%d" % (host, port), "--local-domain", "example.com")
        self.assertEqual(res.returncode, 1, res.stdout.decode() + res.stderr.decode())
        cases, verdict = parse(res.stdout)
        self.assertEqual(cases["foreign-domain"][0], "RELAY")
        self.assertEqual(cases["null-sender"][0], "RELAY")
        self.assertEqual(cases["percent-hack"][0], "refused")  # routing characters, trusted or not
        self.assertTrue(verdict.startswith("verdict: OPEN RELAY: "), verdict)

    def test_live_unreachable_is_inconclusive(self):
        from harness import free_port
        res = self.relay_test("relay-test", "127.0.0.1:%d" % free_port("127.0.0.1"),
                              "--local-domain", "example.com")
        self.assertEqual(res.returncode, 3, res.stdout.decode() + res.stderr.decode())
        self.assertIn("cannot connect", res.stderr.decode())

    def test_usage(self):
        for args in (["relay-test", "127.0.0.1:25"], ["relay-test", "nohostport", "--local-domain", "x"],
                     ["relay-test", "127.0.0.1:25", "--local-domain", "x", "-c", "f"],
                     ["explain", "--client", "192.0.2.1"]):
            self.assertEqual(self.relay_test(*args).returncode, 2, args)

    def test_policy_mode(self):
        d = self.start_sluice(start=False)
        safe = d.write_config(text=EXPLAIN_CONFIG.format(spool=d.spool),
                              path=os.path.join(d.dir, "safe.yaml"))
        res = self.relay_test("relay-test", "-c", safe)
        self.assertEqual(res.returncode, 0, res.stdout.decode() + res.stderr.decode())
        lines = res.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2 * 2 * 17 + 1)  # IPv4 and IPv6 clients, two listeners
        self.assertIn("mx 1.123.45.67 foreign-domain TO:<user@foreign.example> refused 550 "
                      "listener.inbound (%s:4:5)" % safe, lines)
        self.assertIn("sub 2023:4567:89ab:cdef::1 local-recipient TO:<user@example.com> "
                      "accepted-local 250 domains (%s:14:3)" % safe, lines)
        self.assertEqual(lines[-1], "verdict: ok: 0 of 68 attempts relayed (each asked for 221 IPv4 "
                         "and 2021 IPv6 outside clients)")

        opened = EXPLAIN_CONFIG.replace('"10.0.0.0/8"\n', '"0.0.0.0/0"\n'
                                        '  i_understand_this_is_an_open_relay: true\n')
        path = d.write_config(text=opened.format(spool=d.spool), path=os.path.join(d.dir, "open.yaml"))
        self.assertEqual(d.cli("check-config", config=path).returncode, 0)
        res = self.relay_test("relay-test", "-c", path)
        self.assertEqual(res.returncode, 1, res.stdout.decode())
        out = res.stdout.decode()
        self.assertIn("sub 1.123.45.67 foreign-domain TO:<user@foreign.example> RELAY 250 "
                      "relay.trusted_networks (%s:12:7) for 221 of 221 outside IPv4 clients\n" % path,
                      out)
        # IPv6 clients relay only where they carry an IPv4 address the session judges as IPv4.
        self.assertIn("sub ::ffff:1.123.45.67 foreign-domain TO:<user@foreign.example> RELAY 250 "
                      "relay.trusted_networks (%s:12:7) for 221 of 2021 outside IPv6 clients\n" % path,
                      out)

        # A trusted NAT64 prefix relays for IPv4 carried in it: one outside client was not enough.
        nat64 = EXPLAIN_CONFIG.replace('"10.0.0.0/8"\n', '"64:ff9b::/96"\n')
        path = d.write_config(text=nat64.format(spool=d.spool), path=os.path.join(d.dir, "nat64.yaml"))
        res = self.relay_test("relay-test", "-c", path)
        self.assertEqual(res.returncode, 1, res.stdout.decode())
        self.assertIn("sub 64:ff9b::17b:2d43 foreign-domain TO:<user@foreign.example> RELAY 250 "
                      "relay.trusted_networks (%s:12:7) for 221 of 2021 outside IPv6 clients\n" % path,
                      res.stdout.decode())

    def test_check_config_refuses_open_relays(self):
        d = self.start_sluice(start=False)
        for what, text, message in OPEN_CONFIGS:
            with self.subTest(what):
                path = d.write_config(text="server:\n  spool: %s\n" % d.spool + text,
                                      path=os.path.join(d.dir, "open.yaml"))
                # The file starts with two server lines: shift the expected line number.
                line, rest = re.match(r"^:(\d+)(:.*)$", message).groups()
                want = "%s:%d%s" % (path, int(line) + 2, rest)
                res = d.cli("check-config", config=path)
                err = res.stderr.decode()
                self.assertEqual(res.returncode, 1, "%s accepted: %s" % (what, err))
                self.assertIn(want, err)
                self.assertIn("refusing a configuration that relays for strangers", err)
                self.assertIn("relay.i_understand_this_is_an_open_relay: true", err)

    def test_explain_names_the_rule_and_its_line(self):
        d = self.start_sluice(start=False)
        path = d.write_config(text=EXPLAIN_CONFIG.format(spool=d.spool),
                              path=os.path.join(d.dir, "explain.yaml"))

        def explain(*args):
            res = self.relay_test("explain", "-c", path, *args)
            self.assertEqual(res.returncode, 0, res.stderr.decode())
            return res.stdout.decode()

        out = explain("--client", "192.0.2.1", "--from", "a@b.example", "--rcpt", "user@foreign.example")
        self.assertIn("listener: mx (inbound, 127.0.0.1:2) at %s:4:5" % path, out)
        self.assertIn("MAIL FROM:<a@b.example>\n  spf: not checked (inbound.spf is ignore)\n"
                      "  accept 250 2.1.0 Ok\n", out)
        self.assertIn("RCPT TO:<user@foreign.example>\n  reject 550 5.7.1 <user@foreign.example>: "
                      "Relay access denied\n  rule: listener.inbound at %s:4:5\n" % path, out)

        out = explain("--client", "10.1.2.3", "--listener", "sub", "--helo", "h.example",
                      "--from", "<a@b.example>", "--rcpt", "user@foreign.example")
        self.assertIn("client: 10.1.2.3, in relay.trusted_networks 10.0.0.0/8 at %s:12:7" % path, out)
        self.assertIn("  accept 250 2.1.5 Ok\n  rule: relay.trusted_networks at %s:12:7\n" % path, out)

        out = explain("--client", "2001:db8::7", "--listener", "sub", "--auth", "alice",
                      "--from", "<>", "--rcpt", "User@EXAMPLE.com.")
        self.assertIn("auth: none (relay.users is not set, so alice cannot authenticate)", out)
        self.assertIn("  accept 250 2.1.5 Ok\n  rule: domains at %s:14:3\n" % path, out)

        out = explain("--client", "192.0.2.1", "--from", "a@b.example", "--rcpt", "user%x@example.com")
        self.assertIn("rule: builtin.routing_characters (built in)", out)
        out = explain("--client", "192.0.2.1", "--from", "a b@c", "--rcpt", "user@example.com")
        self.assertIn("  reject 501 5.1.7", out)
        self.assertIn("not reached: MAIL was refused", out)

        res = self.relay_test("explain", "-c", path, "--client", "192.0.2.1", "--listener", "nope",
                              "--from", "a@b.example", "--rcpt", "user@example.com")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no listener 'nope'", res.stderr.decode())


if __name__ == "__main__":
    main()
