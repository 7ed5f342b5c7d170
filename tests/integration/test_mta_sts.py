"""
MTA-STS (RFC 8461) for outbound mail, through the real daemon: dnsmasq on loopback serves the MX
records, the `_mta-sts` TXT records and the address of mta-sts.<domain>; a real HTTPS server
(python http.server over ssl, port 443 on its own loopback address) serves the policies with a
certificate from a test CA (pki.py), which the daemon trusts through tls.ca_file; the MX hosts
are peers (mailnet.py) with good, expired, wrong-name and self-signed certificates.

With `tls: mta-sts`: `mode: enforce` defers at every host whose certificate is not valid for its
name and at hosts outside the policy's `mx:` patterns, and delivers at the next MX host that is
right; `mode: testing` delivers and logs; after a restart with the HTTPS server down, the policy
saved in the spool still holds; a new TXT id fetches the new policy; mail under an enforced policy
does not ride on a session that does not meet it; a policy host that never answers costs at most
mta_sts.fetch_timeout (then opportunistic) and does not hold up a stop.
"""
import http.server
import socket
import ssl
import threading
import time

from harness import main
from mailnet import EGRESS, random_loopback, send
from pki import CaNetCase

SENDER = "sts@sender.test"


class PolicyServer:
    """HTTPS on address:443 serving /.well-known/mta-sts.txt per Host from `policies`."""

    def __init__(self, ca, names):
        self.policies = {}  # host name -> policy text
        self.requests = []  # (host, path)
        self.address = random_loopback()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                outer.requests.append((host, self.path))
                text = outer.policies.get(host)
                if self.path != "/.well-known/mta-sts.txt" or text is None:
                    self.send_error(404)
                    return
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        for _ in range(20):
            try:
                self.httpd = http.server.ThreadingHTTPServer((self.address, 443), Handler)
                break
            except OSError:
                self.address = random_loopback()
        else:
            raise AssertionError("no loopback address free for port 443")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*ca.server("mta-sts", *names))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


class MtaSts(CaNetCase):
    def publish(self, domains):
        """domains: {domain: (id, policy text)}: TXT records, mta-sts A records, one server."""
        self.https = PolicyServer(self.ca, *[["mta-sts." + d for d in domains]])
        self.addCleanup(self.https.stop)
        for domain, (sts_id, text) in domains.items():
            self.net.dns.txt("_mta-sts." + domain, "v=STSv1; id=%s" % sts_id)
            self.net.dns.host("mta-sts." + domain, self.https.address)
            self.https.policies["mta-sts." + domain] = text

    def start(self, tls="mta-sts", recheck="5m", rules=(), egress=EGRESS, fetch_timeout="10s",
              **shaping):
        if self.net.port is None:
            self.net.start()
        cfg = self.net.sluice_config(rules=rules, egress=egress, tls=tls, **shaping)
        cfg["tls"] = {"ca_file": self.ca.path}
        cfg["mta_sts"] = {"recheck": recheck, "fetch_timeout": fetch_timeout}
        self.d = self.start_sluice(config=cfg)

    def test_enforce(self):
        net = self.net
        expired = self.peer("mx1.good.test", expired=True)
        good = self.peer("mx2.good.test")
        net.mx("good.test", expired, 10)
        net.mx("good.test", good, 20)
        wrong = self.peer("mx.wrong.test", cert_name="elsewhere.test")
        net.mx("wrong.test", wrong, 10)
        selfsigned = self.peer("mx.self.test", self_signed=True)
        net.mx("self.test", selfsigned, 10)
        unlisted = self.peer("mx.unlisted.test")  # a valid certificate, but not in the policy
        net.mx("listed.test", unlisted, 10)
        self.publish({
            "good.test": ("1", policy("enforce", "*.good.test")),
            "wrong.test": ("1", policy("enforce", "mx.wrong.test")),
            "self.test": ("1", policy("enforce", "mx.self.test")),
            "listed.test": ("1", policy("enforce", "mx.listed.test")),
        })
        self.start()
        for domain in ("good.test", "wrong.test", "self.test", "listed.test"):
            send(self.d, SENDER, ["u@" + domain])
        self.wait(lambda: good.delivered(), 20, "delivered at the MX host that is right")
        for domain in ("good.test", "wrong.test", "self.test", "listed.test"):
            rec = self.d.wait_event("mta_sts.policy", domain=domain)[0]
            self.assertEqual((rec["mode"], rec["reason"]), ("enforce", "fetched"))
        reasons = {"mx1.good.test": "certificate has expired",
                   "mx.wrong.test": "hostname mismatch",
                   "mx.self.test": "self-signed certificate",
                   "mx.unlisted.test": "not in the domain's MTA-STS policy"}
        for mx, reason in reasons.items():
            rec = self.d.wait_event("tls_policy.failure", mx=mx)[0]
            self.assertIn(reason, rec["reason"])
            self.assertEqual((rec["source"], rec["testing"]), ("mta-sts", False))
        self.wait(lambda: len(self.d.events("delivery.deferred")) >= 3, 10, "three deferrals")
        for rec in self.d.events("delivery.deferred"):
            self.assertEqual((rec["code"], rec["enhanced"][:4]), (451, "4.7."), rec)
            self.assertEqual(rec["category"], "bad-configuration", rec)
        for p in (expired, wrong, selfsigned):
            self.assertEqual(p.transactions(), [], "no MAIL to %s" % p.name)
        self.assertEqual(unlisted.sessions, [], "the unlisted host is not even connected to")
        self.assertTrue(all(s.tls for s in good.sessions))
        self.assertEqual(sorted(h for h, _ in self.https.requests),
                         ["mta-sts.good.test", "mta-sts.listed.test", "mta-sts.self.test",
                          "mta-sts.wrong.test"], "one fetch per domain")

    def test_testing_mode_delivers_and_logs(self):
        wrong = self.peer("mx.t.test", cert_name="elsewhere.test")
        unlisted = self.peer("mx.t-unlisted.test")
        self.net.mx("t.test", wrong, 10)
        self.net.mx("t2.test", unlisted, 10)
        self.publish({"t.test": ("7", policy("testing", "mx.t.test")),
                      "t2.test": ("7", policy("testing", "mx.t2.test"))})
        self.start()
        send(self.d, SENDER, ["u@t.test"])
        send(self.d, SENDER, ["u@t2.test"])
        self.wait(lambda: wrong.delivered() and unlisted.delivered(), 20, "delivered anyway")
        rec = self.d.wait_event("tls_policy.failure", mx="mx.t.test")[0]
        self.assertIn("hostname mismatch", rec["reason"])
        self.assertEqual((rec["source"], rec["testing"]), ("mta-sts", True))
        rec = self.d.wait_event("tls_policy.failure", mx="mx.t-unlisted.test")[0]
        self.assertTrue(rec["testing"])

    def test_cached_policy_holds_when_the_server_is_down(self):
        wrong = self.peer("mx1.c.test", cert_name="elsewhere.test")
        good = self.peer("mx2.c.test")
        self.net.mx("c.test", wrong, 10)
        self.net.mx("c.test", good, 20)
        self.publish({"c.test": ("20261204", policy("enforce", "*.c.test"))})
        self.start()
        send(self.d, SENDER, ["first@c.test"])
        self.wait(lambda: good.delivered_rcpts() == ["first@c.test"], 20, "first delivered")
        self.wait_spool_empty(10)
        self.https.stop()
        self.assertEqual(self.d.stop(), 0)
        self.d.restart()
        send(self.d, SENDER, ["second@c.test"])
        self.wait(lambda: "second@c.test" in good.delivered_rcpts(), 20, "second delivered")
        self.assertEqual(wrong.transactions(), [], "the wrong-name host never got mail")
        self.d.wait_event("mta_sts.policy", domain="c.test", reason="read back from the spool")
        self.assertEqual(len(self.d.events("tls_policy.failure", mx="mx1.c.test")), 1)
        self.assertEqual(len(self.https.requests), 1, "fetched once, before the restart")

    def test_new_id_fetches_the_new_policy(self):
        mx1, mx2 = self.peer("mx1.r.test"), self.peer("mx2.r.test")
        self.net.mx("r.test", mx1, 10)
        self.net.mx("r.test", mx2, 20)
        self.publish({"r.test": ("1", policy("enforce", "mx2.r.test"))})
        self.start(recheck="1s", idle_timeout="0s")  # each message on a new connection
        send(self.d, SENDER, ["old@r.test"])
        self.wait(lambda: mx2.delivered_rcpts() == ["old@r.test"], 20, "delivered at the listed mx2")
        self.assertEqual(mx1.sessions, [])
        # A new policy with a new id: mx1 is listed too.
        self.https.policies["mta-sts.r.test"] = policy("enforce", "*.r.test")
        dns = self.net.dns
        dns.records = [r for r in dns.records if not r.startswith("--txt-record=_mta-sts.r.test,")]
        dns.txt("_mta-sts.r.test", "v=STSv1; id=2")
        dns.restart()
        # Mail keeps going under the cached policy until the TXT record is checked again (once a
        # second here) and the new id fetches the new policy in the background.
        for i in range(20):
            if self.d.events("mta_sts.policy", domain="r.test", id="2"):
                break
            send(self.d, SENDER, ["wait%d@r.test" % i])
            self.wait(lambda: "wait%d@r.test" % i in mx1.delivered_rcpts() + mx2.delivered_rcpts(),
                      20, "delivered")
        else:
            raise AssertionError("the new policy was never fetched\n" + self.detail())
        send(self.d, SENDER, ["new@r.test"])
        self.wait(lambda: "new@r.test" in mx1.delivered_rcpts(), 20, "delivered at mx1 now")
        self.assertEqual(len(self.https.requests), 2, "one fetch per id")

    def test_no_ride_on_a_session_that_does_not_meet_the_policy(self):
        # One provider (a shaping rule by MX pattern) hosts both domains, so their mail shares
        # connections: one at a time from one address, so strict.test's mail could only ride on
        # open.test's session; it must not, the certificate being unverified.
        mx = self.peer("mx.shared.test", cert_name="elsewhere.test")
        self.net.mx("open.test", mx, 10)
        self.net.mx("strict.test", mx, 10)
        self.publish({"strict.test": ("1", policy("enforce", "mx.shared.test"))})
        rule = {"match": {"mx": "*.shared.test"}, "idle_timeout": "20s", "connections": 1}
        self.start(rules=[rule], egress=EGRESS[:1])
        send(self.d, SENDER, ["a@open.test", "b@strict.test"])
        self.wait(lambda: mx.delivered(), 20, "open.test delivered")
        self.d.wait_event("delivery.deferred", rcpt="b@strict.test")
        self.assertEqual(mx.delivered_rcpts(), ["a@open.test"])
        send(self.d, SENDER, ["c@open.test", "d@strict.test"])
        self.wait(lambda: "c@open.test" in mx.delivered_rcpts(), 20, "open.test again")
        self.d.wait_event("delivery.deferred", rcpt="d@strict.test")
        self.assertEqual(sorted(mx.delivered_rcpts()), ["a@open.test", "c@open.test"])

    def silent_policy_host(self, domain):
        """A TXT record and an mta-sts host that takes the connection on port 443 and never
        answers. Returns the listening socket (closed at cleanup)."""
        for _ in range(20):
            address = random_loopback()
            sock = socket.socket()
            try:
                sock.bind((address, 443))
                break
            except OSError:
                sock.close()
        else:
            raise AssertionError("no loopback address free for port 443")
        sock.listen(8)
        self.addCleanup(sock.close)
        self.net.dns.txt("_mta-sts." + domain, "v=STSv1; id=1")
        self.net.dns.host("mta-sts." + domain, address)
        return sock

    def test_fetch_timeout_then_opportunistic(self):
        mx = self.peer("mx.slow.test", self_signed=True)
        self.net.mx("slow.test", mx, 10)
        self.silent_policy_host("slow.test")
        self.start(fetch_timeout="1s")
        send(self.d, SENDER, ["u@slow.test"])
        rec = self.d.wait_event("mta_sts.fetch_failed", domain="slow.test")[0]
        self.assertIn("timed out", rec["reason"])
        self.wait(lambda: mx.delivered(), 20, "delivered as opportunistic")

    def test_stop_while_a_policy_is_fetched(self):
        mx = self.peer("mx.stuck.test")
        self.net.mx("stuck.test", mx, 10)
        self.silent_policy_host("stuck.test")
        self.start(fetch_timeout="60s")
        send(self.d, SENDER, ["u@stuck.test"])
        self.wait(lambda: self.d.queue_list(), 10, "queued")
        time_before = time.monotonic()
        self.assertEqual(self.d.stop(timeout=10), 0)
        self.assertLess(time.monotonic() - time_before, 5, "the stop did not wait for the fetch")
        self.assertEqual(mx.sessions, [])

    def test_no_policy_is_opportunistic(self):
        mx = self.peer("mx.plain.test", self_signed=True)
        self.net.mx("plain.test", mx, 10)
        self.start()
        send(self.d, SENDER, ["u@plain.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertTrue(all(s.tls for s in mx.sessions))
        self.assertEqual(self.d.events("tls_policy.failure"), [])


if __name__ == "__main__":
    main()
