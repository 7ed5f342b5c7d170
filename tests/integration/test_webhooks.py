"""
Event webhooks (docs/webhooks.md) against a real HTTP receiver on loopback (python's http.server,
with TLS for https): events arrive in JSON batches exactly as the log has them, in order; an
endpoint that is down gets everything once it is up, across a restart of the daemon too; 500 is
retried and 400 drops the batch; a full backlog drops new events with one log line; https needs the
configured CA. Events come from messages submitted with SMTP (smtp.accepted) and, in the first
test, delivered to a mailnet peer (delivery.delivered).
"""
import http.server
import json
import os
import signal
import ssl
import subprocess
import threading
import time

import harness
from harness import free_port, main, send_message
from mailnet import MailNetCase, send, wait_until

SENDER = "sender@example.com"


class Receiver:
    """An HTTP(S) endpoint on a free loopback port that records each POST and answers with the
    next status of `statuses` (then 200)."""

    def __init__(self, statuses=(), tls=None):
        self.port = free_port("127.0.0.1")
        self.statuses = list(statuses)
        self.tls = tls  # (cert, key) or None
        self.requests = []  # (status, headers, body bytes)
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d/hook" % ("https" if self.tls else "http", self.port)

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append((status, dict(self.headers), body))
                reply = b"ok" if status < 300 else b"no thanks: status %d" % status
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def taken(self):
        """The events of the batches answered 2xx, in the order they came."""
        with self.lock:
            return [e for status, _, body in self.requests if status < 300
                    for e in json.loads(body)]

    def accepted_ids(self):
        return [e["queue_id"] for e in self.taken() if e["event"] == "smtp.accepted"]


def hook(url, events, **more):
    entry = {"url": url, "events": events, "retry_max": "1s"}
    entry.update(more)
    return entry


def submit(d, n, tag):
    """n messages, one recipient each, through the daemon's listener: their queue ids in order."""
    ids = []
    with d.connect() as c:
        c.ehlo()
        for i in range(n):
            reply = send_message(c, SENDER, ["%s%d@elsewhere.test" % (tag, i)],
                                 b"Subject: %s %d\r\n\r\nhello\r\n" % (tag.encode(), i))
            ids.append(harness.queued_id(reply))
    return ids


class Webhooks(harness.SluiceTestCase):
    def receiver(self, **kw):
        r = Receiver(**kw)
        self.addCleanup(r.stop)
        return r

    def daemon(self, *hooks):
        return self.start_sluice(config={"webhooks": list(hooks)})

    def test_down_then_up_loses_nothing_and_keeps_order(self):
        r = self.receiver()  # not listening yet
        d = self.daemon(hook(r.url, ["smtp.accepted"], batch_max=3, batch_wait="100ms"))
        ids = submit(d, 10, "down")
        d.wait_event("webhook.retry", count=2)
        r.start()
        wait_until(lambda: len(r.accepted_ids()) >= 10, 20, "10 events after the endpoint is up",
                   lambda: d.log_tail())
        self.assertEqual(r.accepted_ids(), ids, "every event once, in the order logged")
        self.assertTrue(all(len(json.loads(b)) <= 3 for _, _, b in r.requests), "batch_max")

    def test_500_is_retried_400_is_dropped(self):
        r = self.receiver(statuses=[500, 200, 400]).start()
        d = self.daemon(hook(r.url, ["smtp.accepted"], batch_wait="0"))
        first = submit(d, 1, "retried")
        wait_until(lambda: len(r.requests) >= 2, 10, "the batch tried twice", d.log_tail)
        self.assertEqual(r.requests[0][2], r.requests[1][2], "the same batch again")
        retry = d.wait_event("webhook.retry", status=500)[0]
        self.assertEqual(retry["url"], r.url)
        second = submit(d, 1, "refused")
        rejected = d.wait_event("webhook.rejected", status=400)[0]
        self.assertIn("no thanks", rejected["reply"])
        third = submit(d, 1, "after")
        wait_until(lambda: len(r.requests) >= 4, 10, "the next batch sent", d.log_tail)
        self.assertEqual(r.accepted_ids(), first + third, "the refused batch is not sent again")
        self.assertEqual([json.loads(b)[0]["queue_id"] for _, _, b in r.requests],
                         first + first + second + third)

    def test_backlog_survives_restart(self):
        r = self.receiver()
        d = self.daemon(hook(r.url, ["smtp.accepted"], batch_max=2))
        ids = submit(d, 5, "kept")
        d.wait_event("webhook.retry")
        d.stop()
        backlogs = os.listdir(os.path.join(d.spool, "webhooks"))
        self.assertEqual(len(backlogs), 1, backlogs)
        r.start()
        d.start()
        wait_until(lambda: len(r.accepted_ids()) >= 5, 20, "the backlog sent after the restart",
                   d.log_tail)
        self.assertEqual(r.accepted_ids(), ids)

    def test_full_backlog_drops_new_events_logged_once(self):
        r = self.receiver()
        d = self.daemon(hook(r.url, ["smtp.accepted"], backlog_max="4k", batch_max=100))
        ids = submit(d, 30, "full")
        full = d.wait_event("webhook.backlog_full")
        self.assertEqual(full[0]["backlog_max"], 4096)
        r.start()
        wait_until(lambda: r.accepted_ids(), 20, "the backlog sent", d.log_tail)
        d.settle()
        kept = r.accepted_ids()
        self.assertGreater(len(kept), 3)
        self.assertLess(len(kept), 30)
        self.assertEqual(kept, ids[:len(kept)], "the first events are kept, the later dropped")
        self.assertEqual(len(d.events("webhook.backlog_full")), 1, "one line for the episode")
        # Taken events make room: the episode is over and new events are kept again.
        more = submit(d, 1, "room")
        wait_until(lambda: r.accepted_ids()[-1:] == more, 20, "an event after the episode")

    def test_https_needs_the_ca(self):
        from certs import make_test_cert
        cert_dir = os.path.join(self.start_sluice(start=False).dir, "ca")
        os.mkdir(cert_dir)
        cert, key = make_test_cert(cert_dir)
        trusted = self.receiver(tls=(cert, key)).start()
        untrusted = self.receiver(tls=(cert, key)).start()
        d = self.daemon(hook(trusted.url, ["smtp.accepted"], ca_file=cert, batch_wait="0"),
                        hook(untrusted.url, ["smtp.accepted"], batch_wait="0"))
        ids = submit(d, 1, "tls")
        wait_until(lambda: trusted.accepted_ids() == ids, 10, "sent over verified TLS", d.log_tail)
        retry = d.wait_event("webhook.retry", url=untrusted.url)[0]
        self.assertEqual(retry["status"], 0)
        self.assertIn("certificate", retry["error"])
        self.assertEqual(untrusted.requests, [])

    def test_reload_changes_endpoints(self):
        first = self.receiver().start()
        second = self.receiver().start()
        d = self.daemon(hook(first.url, ["smtp.accepted"], batch_wait="0"))
        before = submit(d, 1, "before")
        wait_until(lambda: first.accepted_ids() == before, 10, "sent before the reload", d.log_tail)
        d.write_config(extra={"webhooks": [
            hook(first.url, ["smtp.connect"], batch_wait="0"),
            hook(second.url, ["smtp.accepted"], batch_wait="0")]})
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload")
        after = submit(d, 1, "after")
        wait_until(lambda: second.accepted_ids() == after, 10, "the new endpoint", d.log_tail)
        wait_until(lambda: any(e["event"] == "smtp.connect" for e in first.taken()), 10,
                   "the first endpoint's new selection", d.log_tail)
        self.assertEqual(first.accepted_ids(), before, "no longer selected after the reload")

    def test_config_refuses_bad_url_and_no_events(self):
        d = self.start_sluice(start=False)
        path = d.write_config(extra={"webhooks": [{"url": "ftp://127.0.0.1/x",
                                                   "events": ["smtp.accepted"]},
                                                  {"url": "http://127.0.0.1:1/", "events": []}]})
        res = subprocess.run([d.bin, "check-config", "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=20)
        out = res.stdout.decode() + res.stderr.decode()
        self.assertNotEqual(res.returncode, 0, out)
        self.assertRegex(out, r"sluice\.yaml:\d+:\d+: webhooks\[0\]\.url: 'ftp://127\.0\.0\.1/x' "
                              r"is not an http:// or https:// URL")
        self.assertRegex(out, r"sluice\.yaml:\d+:\d+: webhooks\[1\]\.events: name at least one")


class DeliveryWebhooks(MailNetCase):
    def test_delivery_events_batched_as_logged(self):
        r = Receiver().start()
        self.addCleanup(r.stop)
        net = self.make_net()
        peer = net.peer("mx.dest.test")
        net.mx("dest.test", peer, 10)
        net.start()
        cfg = net.sluice_config()
        cfg["webhooks"] = [hook(r.url, ["smtp.accepted", "delivery.delivered"], batch_max=4,
                                batch_wait="300ms", bearer_token="s3cret",
                                headers=["X-Sluice-Test: yes"])]
        self.d = self.start_sluice(config=cfg)
        for i in range(6):
            send(self.d, SENDER, ["rcpt%d@dest.test" % i])
        wait_until(lambda: len([e for e in r.taken() if e["event"] == "delivery.delivered"]) >= 6,
                   30, "6 deliveries reported", self.detail)
        self.d.settle()
        logged = [e for e in self.d.events() if e["event"] in ("smtp.accepted",
                                                               "delivery.delivered")]
        self.assertEqual(r.taken(), logged, "the records as logged, in the order logged")
        for status, headers, body in r.requests:
            self.assertEqual(headers.get("Content-Type"), "application/json")
            self.assertEqual(headers.get("Authorization"), "Bearer s3cret")
            self.assertEqual(headers.get("X-Sluice-Test"), "yes")
            self.assertLessEqual(len(json.loads(body)), 4)
        self.assertLess(len(r.requests), 12, "events share batches")
        for qid in {e["queue_id"] for e in logged}:
            names = [e["event"] for e in r.taken() if e.get("queue_id") == qid]
            self.assertEqual(names[0], "smtp.accepted", "a message's events in order")


if __name__ == "__main__":
    main()
