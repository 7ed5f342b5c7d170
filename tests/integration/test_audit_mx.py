#!/usr/bin/python3
"""
`sluice audit-mx` against a small Internet on loopback.

DNS: three dnsmasq instances in authoritative mode for the zone audit.test. The first, on
127.0.0.1, stands for the parent zone as the resolver sees it: asked for NS it gives ns1 and ns2
with their addresses (glue as A records), and it answers the MX hosts' A records. ns1 and ns2 are
two more dnsmasq instances on their own loopback addresses (one port for both, given with
--ns-port), each serving the zone's NS set and its own MX set: in the broken world ns2 publishes a
third MX that ns1 does not, so the servers disagree.

SMTP: the MX hosts listen on their own loopback addresses, one port for all (--port): the primary
is a Sluice daemon refusing relays and unknown recipients (a recipients file), the second another
such daemon, and the third (broken world only) a small server in this test that accepts anything.

audit-mx must name the open third MX and the disagreement and exit 1; against the clean world (two
strict daemons, servers agreeing) it exits 0; a backup taking the unknown recipients its primary
refuses is weaker; a resolver that never answers ends the audit within --timeout; --json parses;
it runs without root.
"""
import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time

from harness import SluiceTestCase, daemon_user, give_to_daemon_user, main
from mailnet import DNSMASQ, Dns, random_loopback

DOMAIN = "audit.test"
NS = ["ns1.audit.test", "ns2.audit.test"]
MX = ["mx1.audit.test", "mx2.audit.test", "mx3.audit.test"]


def shared_port(addresses, udp=False):
    """A port free on every address a moment ago (TCP, and UDP too when asked)."""
    for _ in range(20):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for address in addresses:
                kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
                for kind in kinds:
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind((address, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on %s" % addresses)


class AuthServer:
    """dnsmasq answering for the zone on address:port: its NS set and its MX set."""

    def __init__(self, address, port, mx_records):
        self.proc = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--port=%d" % port, "--listen-address=" + address,
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--pid-file", "--local-ttl=1", "--log-facility=-", "--auth-zone=" + DOMAIN,
             "--auth-server=%s,%s" % (NS[0], address), "--auth-sec-servers=" + NS[1]]
            + ["--mx-host=%s,%s,%d" % (DOMAIN, host, pref) for host, pref in mx_records],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=10)


class AcceptAll(socketserver.StreamRequestHandler):
    """An open relay: 250 to every command, 221 to QUIT."""

    def handle(self):
        self.connection.settimeout(10)
        self.wfile.write(b"220 open.audit.test ESMTP\r\n")
        for _ in range(1000):
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-open.audit.test\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class OpenRelay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class AuditMxTest(SluiceTestCase):
    def setUp(self):
        self.mx_addrs = [random_loopback() for _ in MX]
        self.ns_addrs = [random_loopback() for _ in NS]
        self.smtp_port = shared_port(self.mx_addrs)
        self.ns_port = shared_port(self.ns_addrs, udp=True)

    def strict_sluice(self, address, tls=False):
        """A daemon for audit.test on address:smtp_port: no relay, only listed recipients."""
        d = self.start_sluice(start=False, tls=tls, listeners=[{"name": "mx", "role": "inbound",
                                                                "host": address}])
        recipients = os.path.join(d.dir, "recipients")
        with open(recipients, "w") as f:
            f.write("user@%s\n" % DOMAIN)
        d.extra = {"relay": {"trusted_networks": ["10.0.0.0/8"]},
                   "domains": {DOMAIN: {"recipients": recipients}}}
        d.addresses["mx"] = (address, self.smtp_port)
        d.start()
        return d

    def open_relay(self, address):
        server = OpenRelay((address, self.smtp_port), AcceptAll)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)

    def world(self, ns1_mx, ns2_mx):
        """The resolver (parent) and the two name servers, serving the given MX sets."""
        self.resolver = Dns()
        self.resolver.records += ["--auth-zone=" + DOMAIN,
                                  "--auth-server=%s,127.0.0.1" % NS[0],
                                  "--auth-sec-servers=" + NS[1]]
        for name, address in zip(NS + MX, self.ns_addrs + self.mx_addrs):
            self.resolver.host(name, address)
        self.resolver.start()
        self.addCleanup(self.resolver.stop)
        for address, mx in zip(self.ns_addrs, (ns1_mx, ns2_mx)):
            server = AuthServer(address, self.ns_port, mx)
            self.addCleanup(server.stop)
        # Both name servers answer before the audit starts.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(self.ns_answers(a) for a in self.ns_addrs):
            time.sleep(0.05)
        self.assertTrue(all(self.ns_answers(a) for a in self.ns_addrs),
                        "a name server did not start on port %d" % self.ns_port)

    def ns_answers(self, address):
        query = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05audit\x04test\x00\x00\x0f\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, (address, self.ns_port))
                return s.recv(4096)[:2] == b"\x12\x34"
            except OSError:
                return False

    def audit(self, *args, user=None, timeout=60):
        cmd = [self.bin, "audit-mx", "--dns", self.resolver.server, "--ns-port",
               str(self.ns_port), "--port", str(self.smtp_port), "--timeout", str(timeout),
               "--helo", "auditor.test"] + list(args) + [DOMAIN]
        kwargs = {}
        if user is not None:
            # The build tree may be where that user cannot go: it runs a copy it is given.
            where = self.start_sluice(start=False).dir
            cmd[0] = os.path.join(where, "sluice")
            shutil.copy2(self.bin, cmd[0])
            give_to_daemon_user(where)
            kwargs["preexec_fn"] = lambda: (os.setgroups([]), os.setgid(user.pw_gid),
                                            os.setuid(user.pw_uid))
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90,
                             **kwargs)
        out = res.stdout.decode()
        self.detail = "exit %d\n%s\n%s" % (res.returncode, out, res.stderr.decode())
        return res.returncode, out

    @property
    def bin(self):
        from harness import sluice_bin
        return sluice_bin()

    def rows(self, *args, **kwargs):
        code, out = self.audit("--json", *args, **kwargs)
        return code, json.loads(out)

    def row(self, rows, check, subject_start):
        found = [r for r in rows if r["check"] == check and r["subject"].startswith(subject_start)]
        self.assertEqual(len(found), 1, "%s %s\n%s" % (check, subject_start, self.detail))
        return found[0]

    def test_open_third_mx_and_disagreeing_servers(self):
        self.strict_sluice(self.mx_addrs[0], tls=True)
        self.strict_sluice(self.mx_addrs[1])
        self.open_relay(self.mx_addrs[2])
        both = [(MX[0], 10), (MX[1], 20)]
        self.world(both, both + [(MX[2], 30)])
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        disagreement = self.row(rows, "mx-set", DOMAIN)
        self.assertEqual(disagreement["status"], "FAIL", self.detail)
        self.assertIn("%s gives 10 %s, 20 %s;" % (NS[0], MX[0], MX[1]), disagreement["found"])
        self.assertIn("%s gives 10 %s, 20 %s, 30 %s" % (NS[1], MX[0], MX[1], MX[2]),
                      disagreement["found"])
        for name in NS:
            self.assertIn("listed by the parent and zone", self.row(rows, "ns", name)["found"])
        self.assertEqual(self.row(rows, "mx", MX[0])["status"], "PASS", self.detail)
        self.assertEqual(self.row(rows, "mx", MX[1])["status"], "PASS", self.detail)
        self.assertIn("answers like the primary", self.row(rows, "mx", MX[1])["found"])
        third = self.row(rows, "mx", MX[2])
        self.assertEqual(third["status"], "FAIL", self.detail)
        self.assertTrue(third["found"].startswith("OPEN RELAY: "), self.detail)
        summary = self.row(rows, "summary", DOMAIN)
        self.assertEqual(summary["status"], "FAIL", self.detail)
        self.assertIn("weakest: " + MX[2], summary["found"])
        primary = self.row(rows, "smtp", self.mx_addrs[0])["found"]
        self.assertIn("STARTTLS", primary.split("; ")[1].split(), self.detail)
        # The certificate shown after STARTTLS (the test certificate: CN and names localhost).
        self.assertIn("/CN=localhost, names localhost (does not cover %s), expires " % MX[0],
                      primary)
        self.assertIn("STARTTLS not offered", self.row(rows, "smtp", self.mx_addrs[1])["found"])
        self.assertIn("relay battery 0 of", primary)
        self.assertIn("unknown recipient 550", primary)

    def test_backup_taking_unknown_recipients_is_weaker(self):
        self.strict_sluice(self.mx_addrs[0])
        lax = self.start_sluice(start=False, listeners=[{"name": "mx", "role": "inbound",
                                                         "host": self.mx_addrs[1]}])
        lax.extra = {"relay": {"trusted_networks": ["10.0.0.0/8"]},
                     "domains": {DOMAIN: None}}  # every local part accepted
        lax.addresses["mx"] = (self.mx_addrs[1], self.smtp_port)
        lax.start()
        both = [(MX[0], 10), (MX[1], 20)]
        self.world(both, both)
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertEqual(self.row(rows, "mx-set", DOMAIN)["status"], "PASS", self.detail)
        backup = self.row(rows, "mx", MX[1])
        self.assertEqual(backup["status"], "FAIL", self.detail)
        self.assertIn("weaker than the primary: accepts an unknown recipient", backup["found"])
        self.assertIn("weakest: " + MX[1], self.row(rows, "summary", DOMAIN)["found"])

    def test_clean_setup_exits_0(self):
        self.strict_sluice(self.mx_addrs[0])
        self.strict_sluice(self.mx_addrs[1])
        both = [(MX[0], 10), (MX[1], 20)]
        self.world(both, both)
        code, out = self.audit()
        self.assertEqual(code, 0, self.detail)
        self.assertIn("2 MX host(s): none relays, every one answers like the primary", out)
        self.assertNotIn("FAIL ", out)

    def test_runs_without_root(self):
        user = daemon_user()
        if user is None and os.geteuid() == 0:
            self.skipTest("no unprivileged user to run as")
        self.strict_sluice(self.mx_addrs[0])
        self.world([(MX[0], 10)], [(MX[0], 10)])
        code, rows = self.rows(user=user)
        self.assertEqual(code, 0, self.detail)
        self.assertEqual(self.row(rows, "summary", DOMAIN)["status"], "PASS", self.detail)

    def test_silent_resolver_ends_within_the_timeout(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes questions, never answers
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        self.resolver = Dns()
        self.resolver.port = silent.getsockname()[1]
        started = time.monotonic()
        code, rows = self.rows(timeout=1)
        # Unbounded, the NS question alone would take c-ares's two tries of 2 s.
        self.assertLess(time.monotonic() - started, 3.5, self.detail)
        self.assertEqual(code, 1, self.detail)
        self.assertIn("no answer in time", self.row(rows, "ns", DOMAIN)["found"])
        self.assertEqual(self.row(rows, "summary", DOMAIN)["found"], "no MX host to audit")

    def test_usage_errors_exit_2(self):
        for args, text in ((["audit-mx"], "missing DOMAIN"),
                           (["audit-mx", "--port", "0", DOMAIN], "is not a port"),
                           (["audit-mx", "--jsn", DOMAIN], "did you mean --json"),
                           (["audit-mx", "--timeout", "x", DOMAIN], "--timeout 'x'")):
            res = subprocess.run([self.bin] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(text, res.stderr.decode(), args)


if __name__ == "__main__":
    main()
