"""
The operations interface over HTTP, against the real daemon with real clients (http.client, curl
and raw sockets): every request needs a bearer token of http.tokens (401 with a Bearer challenge
otherwise) except /metrics when http.metrics_public; malformed and oversized requests get 4xx and
the daemon answers the next one; http.max_connections and http.request_timeout hold as a client
sees them; a non-loopback http.listen without TLS and tokens does not load. Mail sent through the
daemon to real SMTP peers shows in /metrics (parsed by prometheus_client's text parser) and in
`sluice status`, as many as were delivered and bounced, by destination, egress address and
category, with the spool commits, DNS questions and a reply rule's matches counted too.
"""
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

import harness
from harness import main
from mailnet import EGRESS, MailNetCase, send

TOKEN = "tok-3f9a1c0e5b7d4e21a8c6"
OTHER_TOKEN = "tok-0000000000000000000"
NO_SUCH_USER = "550 5.1.1 The email account that you tried to reach does not exist. - gsmtp"


def write_tokens(directory, **users):
    path = os.path.join(directory, "http-tokens")
    with open(path, "w") as f:
        f.write("# name:sha256(token)\n")
        for name, token in users.items():
            f.write("%s:%s\n" % (name, hashlib.sha256(token.encode()).hexdigest()))
    return path


def http_section(d, **extra):
    """The http section for daemon d: one loopback address, tokens for the user ops."""
    port = harness.free_port("127.0.0.1")
    d.http_addr = ("127.0.0.1", port)
    section = {"listen": ["127.0.0.1:%d" % port], "tokens": write_tokens(d.dir, ops=TOKEN)}
    section.update(extra)
    return section


def get(d, path, token=None, method="GET", headers=None):
    """(status, headers dict lower-cased, body bytes) of one request on a new connection."""
    conn = http.client.HTTPConnection(*d.http_addr, timeout=5)
    try:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        conn.request(method, path, headers=h)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def raw(d, data, timeout=5.0):
    """Sends data on a new connection and reads until the server closes or stops sending."""
    with socket.create_connection(d.http_addr, timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got


def status_code(response):
    line = response.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/1.") else None


def closed_within(sock, seconds):
    """True when the server closes sock (EOF or reset) within seconds."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class HttpCase(harness.SluiceTestCase):
    def start_http(self, **extra):
        d = self.start_sluice(start=False)
        d.extra = {"http": http_section(d, **extra)}
        d.start()
        return d


class Authentication(HttpCase):
    def test_every_request_needs_a_token(self):
        d = self.start_http()
        for path in ("/metrics", "/api/v1/status", "/no/such/path"):
            status, headers, _ = get(d, path)
            self.assertEqual(status, 401, path)
            self.assertEqual(headers.get("www-authenticate"), 'Bearer realm="sluice"', path)
            status, headers, _ = get(d, path, token=OTHER_TOKEN)
            self.assertEqual(status, 401, path)
            self.assertIn('error="invalid_token"', headers.get("www-authenticate", ""))
        # Not a bearer token at all, and a token with a character RFC 6750 does not allow.
        self.assertEqual(get(d, "/metrics", headers={"Authorization": "Basic b3BzOng="})[0], 401)
        self.assertEqual(get(d, "/metrics", token=TOKEN + ",x")[0], 401)

        status, headers, body = get(d, "/api/v1/status", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        st = json.loads(body)
        self.assertEqual(st["caller"], "ops")
        self.assertEqual(st["version"], subprocess.run(
            [d.bin, "--version"], stdout=subprocess.PIPE, check=True).stdout.decode().split()[-1])
        status, headers, body = get(d, "/metrics", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        self.assertEqual(get(d, "/no/such/path", token=TOKEN)[0], 404)
        status, headers, _ = get(d, "/metrics", token=TOKEN, method="DELETE")
        self.assertEqual((status, headers.get("allow")), (405, "GET"))
        self.assertEqual([e["status"] for e in d.events("http.request", user="ops")][:1], [200])

    def test_curl_with_and_without_token(self):
        d = self.start_http()
        url = "http://%s:%d/api/v1/status" % d.http_addr
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                             stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(out.stdout, b"401")
        out = subprocess.run(["curl", "-s", "-f", "-H", "Authorization: Bearer " + TOKEN, url],
                             stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(out.returncode, 0)
        self.assertEqual(json.loads(out.stdout)["caller"], "ops")

    def test_metrics_public(self):
        d = self.start_http(metrics_public=True)
        status, _, body = get(d, "/metrics")
        self.assertEqual(status, 200)
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        self.assertIn("sluice_queue_messages", names)
        # Only /metrics: the status API and unknown paths still want a token.
        self.assertEqual(get(d, "/api/v1/status")[0], 401)
        self.assertEqual(get(d, "/other")[0], 401)


class BadRequests(HttpCase):
    def test_malformed_and_oversized_get_4xx_and_the_daemon_lives(self):
        d = self.start_http(max_header_size="4k", max_body_size="1k")
        auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        cases = [
            ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n"),
            ("no version", b"GET /metrics\r\nHost: x\r\n\r\n"),
            ("bad header line", b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n"),
            ("header over max_header_size",
             b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + auth + b"X-Big: " + b"a" * 6000 +
             b"\r\n\r\n"),
            ("many headers",
             b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(
                 b"X-%d: y\r\n" % i for i in range(300)) + b"\r\n"),
            ("body over max_body_size",
             b"POST /metrics HTTP/1.1\r\nHost: x\r\n" + auth +
             b"Content-Length: 100000\r\n\r\n" + b"b" * 2000),
            ("bad content-length",
             b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ]
        for what, data in cases:
            code = status_code(raw(d, data))
            self.assertIsNotNone(code, what)
            self.assertTrue(400 <= code < 500, "%s: %s" % (what, code))
            # The daemon answers the next request as before.
            self.assertEqual(get(d, "/metrics", token=TOKEN)[0], 200, what)
        self.assertEqual(status_code(raw(d, cases[3][1])), 431)
        self.assertEqual(status_code(raw(d, cases[5][1])), 413)
        self.assertEqual(d.proc.poll(), None)

    def test_connection_limit(self):
        d = self.start_http(max_connections=2)
        # Accepted in the order they come: the two held ones first.
        held = [socket.create_connection(d.http_addr, timeout=5) for _ in range(2)]
        try:
            third = socket.create_connection(d.http_addr, timeout=5)
            self.assertTrue(closed_within(third, 5), "a third connection stays open")
            third.close()
            d.wait_event("http.refused")
            self.assertFalse(closed_within(held[0], 0.2), "a held connection was closed")
        finally:
            for s in held:
                s.close()
        # Once they are gone, requests are served again.
        deadline = time.monotonic() + 5
        while get_or_none(d) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(get(d, "/metrics", token=TOKEN)[0], 200)

    def test_request_timeout(self):
        d = self.start_http(request_timeout="500ms")
        with socket.create_connection(d.http_addr, timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            start = time.monotonic()
            self.assertTrue(closed_within(s, 5), "an unfinished request was not timed out")
            self.assertLess(time.monotonic() - start, 4)
        self.assertEqual(get(d, "/metrics", token=TOKEN)[0], 200)


def get_or_none(d):
    try:
        return get(d, "/metrics", token=TOKEN)[0]
    except OSError:
        return None


class Reload(HttpCase):
    NEW_TOKEN = "tok-9e8d7c6b5a4f3e2d1c0b"
    THIRD_TOKEN = "tok-1a2b3c4d5e6f7a8b9c0d"

    def reload(self, d, http, outcome="daemon.reload"):
        """Rewrites d's http section and sends SIGHUP; waits for this reload's outcome."""
        done = len(d.events(outcome))
        d.extra = dict(d.extra, http=http)
        d.write_config()
        d.signal(signal.SIGHUP)
        d.wait_event(outcome, count=done + 1)

    def refused(self, addr):
        try:
            socket.create_connection(addr, timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    def test_reload_moves_the_listener_rereads_tokens_and_applies_limits(self):
        """A SIGHUP with a new http.listen, tokens and header limit: the new address answers with
        the new tokens and limit, the old one takes no new connection while a connection made
        before the reload goes on; a reload whose new address cannot be listened on changes
        nothing (neither the tokens nor the addresses)."""
        d = self.start_http()
        old = d.http_addr
        before = http.client.HTTPConnection(*old, timeout=5)
        self.addCleanup(before.close)
        before.request("GET", "/api/v1/status", headers={"Authorization": "Bearer " + TOKEN})
        res = before.getresponse()
        self.assertEqual((res.status, res.read() != b""), (200, True))
        port = harness.free_port("127.0.0.1")
        self.reload(d, {"listen": ["127.0.0.1:%d" % port],
                        "tokens": write_tokens(d.dir, ops=self.NEW_TOKEN),
                        "max_header_size": "1k"})
        self.assertTrue(self.refused(old), "the old address still listens")
        d.http_addr = ("127.0.0.1", port)
        self.assertEqual(get(d, "/api/v1/status", token=TOKEN)[0], 401)
        self.assertEqual(get(d, "/api/v1/status", token=self.NEW_TOKEN)[0], 200)
        self.assertEqual(get(d, "/api/v1/status", token=self.NEW_TOKEN,
                             headers={"X-Big": "b" * 2000})[0], 431)
        # The connection made before the reload still has its answers (with the new tokens).
        before.request("GET", "/api/v1/status",
                       headers={"Authorization": "Bearer " + self.NEW_TOKEN})
        res = before.getresponse()
        self.assertEqual((res.status, res.read() != b""), (200, True))

        # A new address in use by someone else: the whole reload is refused.
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_addr = "127.0.0.1:%d" % busy.getsockname()[1]
        self.reload(d, {"listen": ["127.0.0.1:%d" % port, busy_addr],
                        "tokens": write_tokens(d.dir, ops=self.THIRD_TOKEN)},
                    outcome="daemon.reload_failed")
        self.assertTrue(any("cannot listen on " + busy_addr in e.get("msg", "")
                            for e in d.events("config.error")), d.log_tail())
        self.assertEqual(get(d, "/api/v1/status", token=self.THIRD_TOKEN)[0], 401)
        self.assertEqual(get(d, "/api/v1/status", token=self.NEW_TOKEN)[0], 200)
        self.assertEqual(get(d, "/api/v1/status", token=self.NEW_TOKEN,
                             headers={"X-Big": "b" * 2000})[0], 431)
        self.assertIsNone(d.proc.poll())

    def test_reload_opens_and_closes_the_server(self):
        """No http.listen at start: a reload adds one and it answers; a reload without it closes
        it."""
        d = self.start_sluice()
        section = http_section(d)
        self.assertTrue(self.refused(d.http_addr))
        self.reload(d, section)
        self.assertEqual(get(d, "/api/v1/status", token=TOKEN)[0], 200)
        self.reload(d, {"listen": []})
        self.assertTrue(self.refused(d.http_addr), "still listening")
        self.assertIsNone(d.proc.poll())


class ListenGate(harness.SluiceTestCase):
    def check(self, d, http):
        d.write_config(extra={"http": http})
        return d.cli("check-config")

    def test_non_loopback_needs_tls_and_tokens(self):
        d = self.start_sluice(start=False, tls=True)
        tokens = write_tokens(d.dir, ops=TOKEN)
        for http in ({"listen": ["0.0.0.0:8080"]},
                     {"listen": ["127.0.0.1:8080", "0.0.0.0:8080"], "tokens": tokens},
                     {"listen": ["[::]:8080"], "tls": True}):
            res = self.check(d, http)
            self.assertEqual(res.returncode, 1, http)
            err = res.stderr.decode()
            self.assertRegex(err, r"sluice\.yaml:\d+:\d+: http\.listen: (0\.0\.0\.0|\[::\]):8080 "
                                  r"is not a loopback address", http)
        # The second address is the one named, on its own line of the file.
        err = self.check(d, {"listen": ["127.0.0.1:8080", "0.0.0.0:8081"]}).stderr.decode()
        line = int(err.split("sluice.yaml:")[1].split(":")[0])
        with open(d.config_path) as f:
            self.assertIn("0.0.0.0:8081", f.read().splitlines()[line - 1])
        res = self.check(d, {"listen": ["0.0.0.0:8080"], "tls": True, "tokens": tokens})
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        res = self.check(d, {"listen": ["127.0.0.1:8080"]})
        self.assertEqual(res.returncode, 0, res.stderr.decode())

    def test_https_with_token(self):
        import ssl
        d = self.start_sluice(start=False, tls=True)
        d.extra = {"http": http_section(d, tls=True)}
        d.start()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(*d.http_addr, timeout=5, context=ctx)
        conn.request("GET", "/api/v1/status", headers={"Authorization": "Bearer " + TOKEN})
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        self.assertEqual(json.loads(res.read())["caller"], "ops")
        conn.close()


def families(d):
    status, _, body = get(d, "/metrics", token=TOKEN)
    assert status == 200, status
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample(fams, family, name, **labels):
    """The sum of the samples of family named name whose labels include labels (the other labels,
    such as the egress address, may differ); 0 if none."""
    return sum(s.value for s in fams[family].samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


class MetricsOfRealMail(MailNetCase):
    def test_counts_match_what_was_sent(self):
        net = self.make_net()
        dest = net.peer("mx.dest.test", rcpt=[("gone*@*", NO_SUCH_USER)])
        net.mx("dest.test", dest, 10)
        net.start()
        cfg = net.sluice_config()
        # A dry-run rule only counts (and logs): each 550 is a match; the second one fires it.
        cfg["shaping"]["reply_rules"] = [{"name": "no-such-user", "match": {"domain": "dest.test"},
                                          "code": 550, "threshold": 2, "action": "suspend",
                                          "dry_run": True}]
        d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d)
        d.start()
        self.d = d
        delivered = ["a@dest.test", "b@dest.test", "c@dest.test"]
        gone = ["gone1@dest.test", "gone2@dest.test"]
        send(d, "alice@example.com", delivered[:2] + gone[:1])
        send(d, "alice@example.com", delivered[2:] + gone[1:])
        d.wait_event("delivery.delivered", timeout=20, count=3)
        d.wait_event("delivery.failed", timeout=20, count=2)

        fams = families(d)
        self.assertEqual(sample(fams, "sluice_messages_received", "sluice_messages_received_total",
                                listener="submission"), 2)
        self.assertEqual(sample(fams, "sluice_recipients", "sluice_recipients_total",
                                destination="dest.test", result="delivered"), 3)
        self.assertEqual(sample(fams, "sluice_recipients", "sluice_recipients_total",
                                destination="dest.test", result="bounced"), 2)
        self.assertEqual(sample(fams, "sluice_bounces", "sluice_bounces_total",
                                destination="dest.test", category="bad-mailbox"), 2)
        # Counted per egress address the connections came from (this net's pool has two); the
        # DSNs to example.com, whose route fails, count under egress "none".
        egress = {s.labels["egress"] for s in fams["sluice_recipients"].samples
                  if s.name == "sluice_recipients_total" and s.labels["destination"] == "dest.test"}
        self.assertTrue(egress and egress <= {a for a, _ in EGRESS}, egress)
        self.assertEqual(sample(fams, "sluice_delivery_delay_seconds",
                                "sluice_delivery_delay_seconds_count"), 3)
        self.assertEqual(sample(fams, "sluice_connections_in", "sluice_connections_in"), 0)
        # dest.test's MX and its address at least; every answered question is timed (the DSNs'
        # lookups may be on the wire now).
        queries = sample(fams, "sluice_dns_queries", "sluice_dns_queries_total")
        timed = sample(fams, "sluice_dns_query_seconds", "sluice_dns_query_seconds_count")
        self.assertGreaterEqual(timed, 2)
        self.assertLessEqual(timed, queries)
        self.assertEqual(sample(fams, "sluice_spool_commit_seconds",
                                "sluice_spool_commit_seconds_count"), 2)
        for what, times in (("matched", 2), ("fired", 1)):
            self.assertEqual(sample(fams, "sluice_reply_rule_hits", "sluice_reply_rule_hits_total",
                                    rule="no-such-user", what=what), times, what)

        # The DSNs for the two bounces go to example.com's MX, which does not answer: they wait.
        self.wait(lambda: sample(families(d), "sluice_queue_messages", "sluice_queue_messages") >= 1,
                  10, "the DSNs queued")

        st = d.cli("status", "--json")
        self.assertEqual(st.returncode, 0, st.stderr.decode())
        st = json.loads(st.stdout)
        self.assertEqual(st["totals"]["received"], 2)
        self.assertEqual(st["totals"]["delivered"], 3)
        self.assertEqual(st["totals"]["bounced"], 2)
        self.assertIsNone(st["caller"])
        screen = d.cli("status")
        self.assertEqual(screen.returncode, 0, screen.stderr.decode())
        text = screen.stdout.decode()
        # The DSNs' failed route lookups count as deferred, each attempt as recorded (they are
        # tried again meanwhile).
        self.assertRegex(text, r"since start: 2 received, 3 delivered, \d+ deferred, 2 bounced\n")
        self.assertRegex(text, r"^sluice \S+ on sluice\.test, running as \S+, up \d+s\n")
        self.assertLessEqual(len(text.splitlines()), 24)
        # The HTTP status API answers what `sluice status` prints, from the same builder.
        api = json.loads(get(d, "/api/v1/status", token=TOKEN)[2])
        for key in ("received", "delivered", "bounced"):  # the DSNs' deferrals go on
            self.assertEqual(api["totals"][key], st["totals"][key], key)


def held_back_config(net):
    """Starts net with slow.test, whose MX defers everything, and returns a daemon configuration
    whose reply rule hold-slow suspends slow.test for an hour at the first 451."""
    slow = net.peer("mx.slow.test", rcpt=[("*@*", "451 4.7.1 [TSS04] try again later")])
    net.mx("slow.test", slow, 10)
    net.start()
    cfg = net.sluice_config(retry=["1h"], expire="2h")
    cfg["delivery"]["active_window"] = "2h"  # the deferred message stays in memory
    cfg["shaping"]["reply_rules"] = [{"name": "hold-slow", "match": {"domain": "slow.test"},
                                      "code": 451, "action": "suspend_destination",
                                      "duration": "1h"}]
    return cfg


class HeldBack(MailNetCase):
    def test_a_suspended_destination_and_its_reason(self):
        """A reply rule suspends a destination: the gauges, the status API and `sluice status`
        show it held back, with the rule that did it; a second destination is suspended by an
        admin, until resumed."""
        d = self.start_sluice(start=False, config=held_back_config(self.make_net()))
        d.extra["http"] = http_section(d)
        d.start()
        self.d = d
        send(d, "alice@example.com", ["bob@slow.test"])
        d.wait_event("delivery.suspend", timeout=20, destination="slow.test")
        fams = families(d)
        self.assertEqual(sample(fams, "sluice_destinations_suspended",
                                "sluice_destinations_suspended"), 1)
        self.assertEqual(sample(fams, "sluice_destination_suspended",
                                "sluice_destination_suspended", destination="slow.test"), 1)
        self.assertEqual(sample(fams, "sluice_queue_recipients", "sluice_queue_recipients",
                                state="deferred"), 1)
        held = json.loads(get(d, "/api/v1/status", token=TOKEN)[2])["held_destinations"]
        self.assertEqual([(h["destination"], h.get("suspended"), h.get("reason")) for h in held],
                         [("slow.test", True, "reply rule hold-slow")])
        self.assertGreater(held[0]["suspended_for_s"], 3500)
        text = d.cli("status").stdout.decode()
        self.assertRegex(text, r"held back:\n  slow\.test +\d+ queued +0 conn  suspended "
                               r"(59m\d\ds|1h00m)  by reply rule hold-slow\n")


class StatusWithoutHttp(harness.SluiceTestCase):
    def test_status_needs_no_http_listen(self):
        d = self.start_sluice()
        res = d.cli("status")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("queue: 0 messages (0 on disk)", res.stdout.decode())
        d.stop()
        res = d.cli("status")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no daemon is running", res.stderr.decode())


if __name__ == "__main__":
    main()
