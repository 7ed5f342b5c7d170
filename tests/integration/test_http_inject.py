"""
POST /api/v1/inject against the real daemon with python's http.client: a message and a batch are
answered with their queue ids once durable and delivered to a real SMTP peer, DKIM-signed (checked
with dkimpy), with the trace naming the token's tenant and campaign and the events naming the
tenant; a recipient the relay decision refuses is answered with its SMTP reply and a message with
none accepted is not spooled; bad JSON, a body over http.max_body_size, a message over
limits.max_message_size and a wrong token get their 4xx; a message answered 200 survives kill -9
and is delivered after the restart. The suppression list, read on the thread pool for all of a
message's recipients at once, answers each recipient in its place, and a client that leaves while
it is read leaves nothing behind.
"""
import base64
import http.client
import json
import re
import socket

import dkim

import harness
from harness import main
from mailnet import MailNetCase
import test_dkim
from test_dkim import keygen, txt_option
from test_http import TOKEN, write_tokens

ACME_TOKEN = "tok-acme-5c2e9b7a1d3f40e8b6"
KEYS = [{"id": "k1", "secret": "the inject test secret, 16+"}]
CONTENT = ("From: Alice <alice@sender.test>\nTo: bob@dest.test\nSubject: injected\n"
           "Date: Fri, 04 Dec 2026 09:00:00 +0000\n\nhello over HTTP\nsecond line\n")


def inject(d, body, token=ACME_TOKEN, path="/api/v1/inject", method="POST", timeout=15):
    """(status, parsed JSON or raw bytes) of one request; body is a dict or bytes."""
    conn = http.client.HTTPConnection(*d.http_addr, timeout=timeout)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        raw = res.read()
        try:
            return res.status, json.loads(raw)
        except ValueError:
            return res.status, raw
    finally:
        conn.close()


def read_chunked_answer(f):
    """(status, parsed body) of one answer read from file f, its body chunked (RFC 9112 7.1)."""
    status = f.readline().split()[1]
    while f.readline() not in (b"\r\n", b""):
        pass
    body = b""
    for _ in range(10000):
        size = int(f.readline().split(b";")[0], 16)
        body += f.read(size)
        f.readline()
        if size == 0:
            break
    return status, json.loads(body)


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()


class InjectCase(MailNetCase):
    def start_injecting(self, sign=True, **extra):
        """A net with dest.test's MX, and a daemon with an http listener, the tokens of ops and
        acme, the trace and (sign) a DKIM key for sender.test published in the net's DNS."""
        net = self.make_net()
        self.peer = net.peer("mx.dest.test")
        net.mx("dest.test", self.peer, 10)
        d = self.start_sluice(start=False)
        if sign:
            key, record = keygen(d, "inj", domain="sender.test")
            net.dns.txt("inj._domainkey.sender.test", txt_option(record))
        net.start()
        self.dns = net.dns
        d.extra = net.sluice_config()
        port = harness.free_port("127.0.0.1")
        d.http_addr = ("127.0.0.1", port)
        d.extra["http"] = {"listen": ["127.0.0.1:%d" % port],
                           "tokens": write_tokens(d.dir, ops=TOKEN, acme=ACME_TOKEN)}
        d.extra["feedback"] = {"sender_id": "inject-test", "trace_keys": KEYS}
        if sign:
            d.extra["dkim"] = [{"domain": "sender.test", "selector": "inj", "key": key,
                                "algorithm": "rsa-sha256", "canonicalization": "relaxed/relaxed"}]
        for section, value in extra.items():
            d.extra[section] = dict(d.extra.get(section, {}), **value)
        d.start()
        self.d = d
        return d

    def leave_then_inject_on(self, d, batch):
        """Posts batch as acme on a raw socket closed without reading the answer, then checks
        that the daemon, still running, injects and delivers the next message."""
        body = json.dumps(batch).encode()
        with socket.create_connection(d.http_addr, timeout=5) as s:
            s.sendall(b"POST /api/v1/inject HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + ACME_TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
        status, answer = inject(d, {"sender": "a@sender.test", "recipients": ["last@dest.test"],
                                    "content": CONTENT})
        self.assertEqual(status, 200, answer)
        self.delivered_to("last@dest.test")
        self.assertIsNone(d.proc.poll())

    # The verifier's key lookup, asked of self.dns: the net's dnsmasq.
    dnsfunc = test_dkim.DkimBase.dnsfunc

    def delivered_to(self, rcpt, timeout=20):
        """The bytes the peer received for rcpt (waiting for them)."""
        self.wait(lambda: rcpt in self.peer.delivered_rcpts(), timeout, "%s delivered" % rcpt)
        return [tx.data for a, tx in self.peer.delivered() if a == rcpt][0]


class Delivered(InjectCase):
    def test_single_message_delivered_signed_and_traced(self):
        d = self.start_injecting()
        status, answer = inject(d, {"sender": "alice@sender.test", "recipients": ["bob@dest.test"],
                                    "content": CONTENT, "campaign": "spring-sale",
                                    "tenant": "acme", "headers": {"X-Mailer": "inject-test"}})
        self.assertEqual(status, 200, answer)
        qid = answer["id"]
        self.assertEqual(answer["recipients"], [{"address": "bob@dest.test", "code": 250,
                                                 "enhanced": "2.1.5", "text": "Ok"}])
        data = self.delivered_to("bob@dest.test")
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertEqual(body, b"hello over HTTP\r\nsecond line\r\n")
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""), "every line ends in CRLF")
        self.assertRegex(head, rb"\nReceived: from acme \(\[127\.0\.0\.1\]\)\r\n\tby sluice\.test "
                               rb"\(Sluice, listener http\) with HTTP id " + qid.encode())
        self.assertIn(b"\r\nX-Mailer: inject-test\r\n", head)
        self.assertIn(b"\r\nFeedback-ID: ", head)
        self.assertNotIn(b"X-Sluice-Campaign", head)  # taken into the trace
        trace = re.search(rb"X-Sluice-Trace: (\S+)", head).group(1).decode()
        parts = dict((p[0], p[1:]) for p in trace.split("."))
        self.assertEqual((parts["q"], b64url(parts["t"]), b64url(parts["c"])),
                         (qid, "acme", "spring-sale"))
        self.assertEqual(len([k for k, _ in dkim.DKIM(data).headers
                              if k.lower() == b"dkim-signature"]), 1, head)
        self.assertTrue(dkim.DKIM(data).verify(dnsfunc=self.dnsfunc), head)
        ev = d.wait_event("http.injected", queue_id=qid)[0]
        self.assertEqual((ev["tenant"], ev["campaign"], ev["from"], ev["rcpts"]),
                         ("acme", "spring-sale", "alice@sender.test", "bob@dest.test"))
        done = d.wait_event("delivery.delivered", queue_id=qid, timeout=20)[0]
        self.assertEqual((done["tenant"], done["campaign"]), ("acme", "spring-sale"))

    def test_batch_with_refused_recipients(self):
        d = self.start_injecting(sign=False)
        msg = {"sender": "alice@sender.test", "content": CONTENT}
        status, answer = inject(d, {"messages": [
            dict(msg, recipients=["carol@dest.test", "x%y@dest.test"]),
            dict(msg, recipients=["eve@[192.0.2.1]"]),
            dict(msg, recipients=["dave@dest.test"], tenant="other"),
            dict(msg, recipients=["dave@dest.test"], sender="not an address"),
            dict(msg, recipients=["dave@dest.test"]),
        ]}, token=TOKEN)
        self.assertEqual(status, 200, answer)
        results = answer["messages"]
        self.assertEqual(len(results), 5, results)
        first, literal, tenant, sender, last = results
        self.assertEqual([(r["address"], r["code"], r["enhanced"]) for r in first["recipients"]],
                         [("carol@dest.test", 250, "2.1.5"), ("x%y@dest.test", 550, "5.7.1")])
        self.assertIn("routing characters", first["recipients"][1]["text"])
        self.assertNotIn("error", first)
        # No recipient accepted: no message, the reason per recipient and for the whole.
        self.assertEqual((literal["code"], literal["enhanced"], literal["error"]),
                         (554, "5.5.1", "No valid recipients"))
        self.assertEqual(literal["recipients"][0]["code"], 550)
        self.assertNotIn("id", literal)
        self.assertEqual((tenant["code"], tenant["enhanced"]), (550, "5.7.1"))
        self.assertEqual((sender["code"], sender["enhanced"]), (501, "5.1.7"))
        self.assertEqual(self.delivered_to("carol@dest.test").count(b"hello over HTTP"), 1)
        self.delivered_to("dave@dest.test")
        self.assertEqual(sorted(self.peer.delivered_rcpts()), ["carol@dest.test", "dave@dest.test"])
        injected = d.wait_event("http.injected", count=2)
        self.assertEqual(sorted(e["queue_id"] for e in injected), sorted([first["id"], last["id"]]))
        self.assertEqual({e["tenant"] for e in injected}, {"ops"})
        refused = d.events("http.inject_refused")
        self.assertIn(("x%y@dest.test", 550), [(e.get("address"), e["code"]) for e in refused])


class Suppressed(InjectCase):
    def test_tenant_list_refuses_and_drop_tenant_drops(self):
        """The token's name is the tenant whose suppression list applies: acme's own entry is
        refused with its SMTP reply; ops, a drop tenant, is told Ok and the recipient left out."""
        d = self.start_injecting(sign=False, suppression={"enabled": True,
                                                          "drop_tenants": ["ops"]})
        for args in (("gone@dest.test", "--tenant", "acme"), ("all@dest.test",)):
            res = d.cli("suppress", "add", *args)
            self.assertEqual(res.returncode, 0, res.stderr.decode())
        msg = {"sender": "alice@sender.test", "content": CONTENT}
        status, answer = inject(d, dict(msg, recipients=["gone@dest.test", "ok@dest.test"]))
        self.assertEqual(status, 200, answer)
        gone, ok = answer["recipients"]
        self.assertEqual((gone["code"], gone["enhanced"], ok["code"]), (550, "5.7.1", 250))
        self.assertRegex(gone["text"], r"^recipient suppressed \(manual \d{4}-\d\d-\d\d\)$")
        status, answer = inject(d, dict(msg, recipients=["all@dest.test", "ok2@dest.test"]),
                                token=TOKEN)
        self.assertEqual(status, 200, answer)
        self.assertEqual([r["code"] for r in answer["recipients"]], [250, 250])
        self.delivered_to("ok@dest.test")
        self.delivered_to("ok2@dest.test")
        self.assertEqual(sorted(self.peer.delivered_rcpts()), ["ok2@dest.test", "ok@dest.test"])
        refused = d.events("http.inject_refused")
        self.assertEqual(sorted((e["tenant"], e["address"], e["code"]) for e in refused),
                         [("acme", "gone@dest.test", 550), ("ops", "all@dest.test", 250)])


    def test_batch_mixing_suppressed_recipients_keeps_their_order(self):
        """Every recipient of relayed mail is read from the list, all of a message's at once: the
        answers keep the recipients' order and the batch's the messages'; the cap on recipients
        counts only the accepted ones, and comes before the list as over SMTP."""
        d = self.start_injecting(sign=False, suppression={"enabled": True},
                                 limits={"max_recipients_per_message": 2})
        for args in (("s1@dest.test", "--tenant", "acme"), ("s2@dest.test", "--tenant", "acme"),
                     ("s3@dest.test",)):
            res = d.cli("suppress", "add", *args)
            self.assertEqual(res.returncode, 0, res.stderr.decode())
        msg = {"sender": "alice@sender.test", "content": CONTENT}
        batch = [["a0@dest.test", "s1@dest.test", "b0@dest.test", "s2@dest.test"],
                 ["s3@dest.test", "s1@dest.test"],
                 ["s2@dest.test", "c0@dest.test", "s3@dest.test", "d0@dest.test", "e0@dest.test"],
                 ["f0@dest.test"]]
        status, answer = inject(d, {"messages": [dict(msg, recipients=r) for r in batch]})
        self.assertEqual(status, 200, answer)
        got = [[(r["address"], r["code"]) for r in m["recipients"]] for m in answer["messages"]]
        self.assertEqual(got, [
            [("a0@dest.test", 250), ("s1@dest.test", 550), ("b0@dest.test", 250),
             ("s2@dest.test", 452)],
            [("s3@dest.test", 550), ("s1@dest.test", 550)],
            [("s2@dest.test", 550), ("c0@dest.test", 250), ("s3@dest.test", 550),
             ("d0@dest.test", 250), ("e0@dest.test", 452)],
            [("f0@dest.test", 250)]])
        first, none, third, last = answer["messages"]
        self.assertEqual((none["code"], none["error"]), (554, "No valid recipients"))
        self.assertTrue(all("id" in m for m in (first, third, last)), answer)
        self.wait(lambda: len(self.peer.delivered_rcpts()) >= 5, 30, "5 delivered")
        self.assertEqual(sorted(self.peer.delivered_rcpts()),
                         ["a0@dest.test", "b0@dest.test", "c0@dest.test", "d0@dest.test",
                          "f0@dest.test"])

    def test_a_thousand_recipients_each_answered(self):
        """A message to 1,000 recipients (the list read in one batch): each is answered in its
        place, acme's own entries and the global ones refused, another tenant's not, an expired
        one not; only the others are delivered."""
        d = self.start_injecting(sign=False, suppression={"enabled": True})
        rcpts = ["r%04d@dest.test" % i for i in range(1000)]
        rows = []
        for i, r in enumerate(rcpts):
            if i % 7 == 3:
                rows.append("%s,acme,manual,2026-11-02T00:00:00Z,," % r.upper())
            elif i % 11 == 5:
                rows.append("%s,,complaint,2026-11-02T00:00:00Z,," % r)
            elif i % 13 == 6:
                rows.append("%s,bravo,manual,2026-11-02T00:00:00Z,," % r)
            elif i % 17 == 8:
                rows.append("%s,acme,manual,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z," % r)
        path = d.dir + "/list.csv"
        with open(path, "w") as f:
            f.write("address,tenant,source,time,expiry,note\n" + "\n".join(rows) + "\n")
        res = d.cli("suppress", "import", path)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        status, answer = inject(d, {"sender": "alice@sender.test", "recipients": rcpts,
                                    "content": CONTENT}, timeout=60)
        self.assertEqual(status, 200, answer)
        got = [(r["address"], r["code"], r["text"]) for r in answer["recipients"]]
        want = []
        for i, r in enumerate(rcpts):
            if i % 7 == 3:
                want.append((r, 550, "recipient suppressed (manual 2026-11-02)"))
            elif i % 11 == 5:
                want.append((r, 550, "recipient suppressed (complaint 2026-11-02)"))
            else:
                want.append((r, 250, "Ok"))
        self.assertEqual(got, want)
        kept = sorted(r for r, code, _ in want if code == 250)
        self.assertEqual(len(kept), 1000 - 143 - 78)
        self.wait(lambda: len(self.peer.delivered_rcpts()) >= len(kept), 60, "all delivered")
        self.assertEqual(sorted(self.peer.delivered_rcpts()), kept)

    def test_client_leaving_while_the_list_is_read(self):
        """A client that closes its connection while its messages' recipients are being read
        from the list: the daemon injects on, and (in the sanitized build) nothing of the
        request is left or leaked at its stop."""
        d = self.start_injecting(sign=False, suppression={"enabled": True},
                                 http={"max_body_size": "8M"})
        res = d.cli("suppress", "add", "gone@dest.test", "--tenant", "acme")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        rcpts = ["gone@dest.test"] + ["x%02d@dest.test" % i for i in range(49)]
        batch = {"messages": [{"sender": "alice@sender.test", "recipients": rcpts,
                               "content": "Subject: m%d\n\nbody\n" % i} for i in range(300)]}
        self.leave_then_inject_on(d, batch)
        d.stop()


class Batches(InjectCase):
    def test_more_messages_than_in_flight_and_a_client_that_leaves(self):
        """40 messages (more than a request commits at once) each get their id, in order, and are
        delivered; a client that closes its connection before the answer leaves the daemon
        injecting for the next one."""
        d = self.start_injecting(sign=False)
        rcpts = ["r%02d@dest.test" % i for i in range(40)]
        batch = {"messages": [{"sender": "alice@sender.test", "recipients": [r],
                               "content": "Subject: %s\n\nbody of %s\n" % (r, r)}
                              for r in rcpts]}
        status, answer = inject(d, batch)
        self.assertEqual(status, 200, answer)
        ids = [m["id"] for m in answer["messages"]]
        self.assertEqual(len(set(ids)), 40)
        self.wait(lambda: len(self.peer.delivered_rcpts()) >= 40, 60, "40 delivered")
        for rcpt, qid in zip(rcpts, ids):
            data = self.delivered_to(rcpt)
            self.assertIn(b"id " + qid.encode(), data)
            self.assertTrue(data.endswith(b"\r\n\r\nbody of " + rcpt.encode() + b"\r\n"))
        self.leave_then_inject_on(d, batch)


class ClientGone(InjectCase):
    def test_client_closing_mid_batch_cancels_the_rest(self):
        """A client that sends 1000 messages and closes its socket at once is noticed while the
        batch is injected, not after: the daemon logs the cancel, the messages already durable or
        being committed stay and are each delivered once, the others are never queued, the
        request is logged 499, and the daemon injects on."""
        d = self.start_injecting(sign=False, http={"max_body_size": "8M"})
        rcpts = ["c%04d@dest.test" % i for i in range(1000)]
        batch = {"messages": [{"sender": "alice@sender.test", "recipients": [r],
                               "content": "Subject: %s\n\nbody\n" % r} for r in rcpts]}
        body = json.dumps(batch).encode()
        with socket.create_connection(d.http_addr, timeout=5) as s:
            s.sendall(b"POST /api/v1/inject HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + ACME_TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
        gone = d.wait_event("http.inject_cancelled", timeout=20)[0]
        kept = gone["queued"] + gone["finishing"]
        self.assertEqual((gone["tenant"], gone["messages"]), ("acme", 1000))
        self.assertLess(kept, 1000, gone)
        self.assertEqual(d.wait_event("http.request", status=499)[0]["path"], "/api/v1/inject")
        injected = d.wait_event("http.injected", count=kept, timeout=20)
        self.wait(lambda: len(self.peer.delivered_rcpts()) >= kept, 60, "%d delivered" % kept)
        status, answer = inject(d, {"sender": "a@sender.test", "recipients": ["last@dest.test"],
                                    "content": CONTENT})
        self.assertEqual(status, 200, answer)
        self.delivered_to("last@dest.test")
        injected = [e["rcpts"] for e in d.events("http.injected") if e["rcpts"] in rcpts]
        self.assertEqual(len(injected), kept)
        delivered = [r for r in self.peer.delivered_rcpts() if r in rcpts]
        self.assertEqual(sorted(delivered), sorted(injected), "each kept message delivered once")
        self.assertIsNone(d.proc.poll())
        d.stop()

    def test_pipelined_request_answered_after_the_one_in_progress(self):
        """A request sent behind a batch still being injected is read while the batch is handled
        and answered after it, in order, on the same connection."""
        d = self.start_injecting(sign=False)
        batch = json.dumps({"messages": [
            {"sender": "alice@sender.test", "recipients": ["p%02d@dest.test" % i],
             "content": "Subject: p\n\nbody\n"} for i in range(40)]}).encode()
        single = json.dumps({"sender": "alice@sender.test", "recipients": ["q@dest.test"],
                             "content": CONTENT}).encode()
        head = (b"POST /api/v1/inject HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + ACME_TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n")
        with socket.create_connection(d.http_addr, timeout=15) as s:
            s.sendall(head % len(batch) + batch + head % len(single) + single)
            res = s.makefile("rb")
            answers = [read_chunked_answer(res), read_chunked_answer(res)]
        (first, batch_answer), (second, single_answer) = answers
        self.assertEqual((first, second), (b"200", b"200"))
        self.assertEqual(len(batch_answer["messages"]), 40)
        self.assertTrue(all("id" in m for m in batch_answer["messages"]), batch_answer)
        self.assertIn("id", single_answer)
        self.assertEqual(d.events("http.inject_cancelled"), [])


class BadRequests(InjectCase):
    def test_4xx_and_nothing_spooled(self):
        d = self.start_injecting(sign=False, http={"max_body_size": "64k"},
                                 limits={"max_message_size": "4k"})
        ok = {"sender": "a@sender.test", "recipients": ["bob@dest.test"], "content": CONTENT}
        status, answer = inject(d, b'{"sender": "a@sender.test", "recipients": [')
        self.assertEqual(status, 400)
        self.assertRegex(answer["error"], r"^invalid JSON at line 1, column \d+: ")
        status, answer = inject(d, {"sender": "a@sender.test", "content": "x"})
        self.assertEqual((status, answer), (400, {"error": "recipients: missing"}))
        status, answer = inject(d, {"messages": [ok, dict(ok, content=7)]})
        self.assertEqual((status, answer), (400, {"error": "messages[1].content: not a string"}))
        status, answer = inject(d, dict(ok, headers={"Bad Name": "v"}))
        self.assertEqual(status, 400)
        self.assertIn("headers.Bad Name", answer["error"])
        status, _ = inject(d, dict(ok, content="x" * 70000))
        self.assertEqual(status, 413)
        status, answer = inject(d, dict(ok, content="Subject: big\n\n" + ("z" * 70 + "\n") * 80))
        self.assertEqual((status, answer["code"], answer["enhanced"]), (422, 552, "5.3.4"))
        status, answer = inject(d, dict(ok, content="Subject: long\n\n" + "w" * 1200 + "\n"))
        self.assertEqual((status, answer["code"]), (422, 500))
        status, answer = inject(d, dict(ok, tenant="someone-else"))
        self.assertEqual((status, answer["code"]), (422, 550))
        for token in ("tok-wrong", None):
            status, _ = inject(d, ok, token=token)
            self.assertEqual(status, 401, token)
        status, _ = inject(d, ok, method="GET")
        self.assertEqual(status, 405)
        self.assertEqual(d.queue_list(), [])
        self.assertEqual(d.events("http.injected"), [])
        # The daemon still injects after all that.
        status, answer = inject(d, ok)
        self.assertEqual(status, 200, answer)
        self.delivered_to("bob@dest.test")


class Durable(InjectCase):
    def test_kill9_after_200_then_delivered_after_restart(self):
        d = self.start_injecting(sign=False)
        dns_servers = d.extra["dns"]
        d.extra["dns"] = {"servers": ["127.0.0.1:9"], "timeout": "1s"}  # nothing delivers yet
        d.stop()
        d.restart()
        status, answer = inject(d, {"sender": "alice@sender.test", "recipients": ["bob@dest.test"],
                                    "content": CONTENT})
        self.assertEqual(status, 200, answer)
        d.kill9()
        d.extra["dns"] = dns_servers
        d.restart()
        data = self.delivered_to("bob@dest.test", timeout=30)
        self.assertIn(b"with HTTP id " + answer["id"].encode(), data)
        d.wait_event("delivery.delivered", queue_id=answer["id"], timeout=20)


if __name__ == "__main__":
    main()
