"""
Issue 15, what we sent and what comes back, through the running daemon. Relayed mail carries
X-Sluice-Trace (queue id, tenant, campaign, MAC under the newest key: checked here by an
independent HMAC-SHA256 in python) and Feedback-ID; the client's X-Sluice-Campaign becomes the
campaign and is removed, a forged X-Sluice-Trace of the client's is dropped, and inbound mail gets
no trace.
"""
import base64
import hashlib
import hmac
import re

from harness import SluiceTestCase, main, queued_id, send_message

KEYS = [{"id": "old", "secret": "the retired secret, 16+"},
        {"id": "new", "secret": "the current secret, 16+"}]
FEEDBACK = {"addresses": ["fbl@fb.test"], "sender_id": "sluice-test", "trace_keys": KEYS}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_trace(token, keys=KEYS):
    """The fields of a trace whose MAC verifies under one of keys, else None."""
    m = re.fullmatch(r"q([A-Za-z0-9_-]+)\.t([A-Za-z0-9_-]*)\.c([A-Za-z0-9_-]*)\.k(\w+)\.m(\S+)",
                     token)
    if m is None:
        return None
    qid, tenant, campaign = m.group(1), b64url_decode(m.group(2)), b64url_decode(m.group(3))
    for key in keys:
        if key["id"] != m.group(4):
            continue
        data = b"\0".join([b"sluice1", qid.encode(), tenant, campaign, key["id"].encode()]) + b"\0"
        mac = hmac.new(key["secret"].encode(), data, hashlib.sha256).digest()[:16]
        if hmac.compare_digest(mac, b64url_decode(m.group(5))):
            return {"queue_id": qid, "tenant": tenant.decode(), "campaign": campaign.decode(),
                    "key": key["id"]}
    return None


def make_trace(qid, tenant, campaign, key):
    data = b"\0".join([b"sluice1", qid.encode(), tenant.encode(), campaign.encode(),
                       key["id"].encode()]) + b"\0"
    mac = hmac.new(key["secret"].encode(), data, hashlib.sha256).digest()[:16]
    enc = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
    return "q%s.t%s.c%s.k%s.m%s" % (qid, enc(tenant.encode()), enc(campaign.encode()), key["id"],
                                    enc(mac))


def header_fields(stored):
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    return [(n, v.strip()) for n, v in
            re.findall(r"^([^\s:]+):[ \t]*(.*(?:\r\n[ \t].*)*)", head, re.M)]


class TraceTest(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"},
                                              {"name": "mx", "role": "inbound"}],
                                   config={"domains": {"example.com": None, "fb.test": None},
                                           "feedback": FEEDBACK})

    def test_relayed_mail_carries_a_verified_trace(self):
        with self.d.connect("submission") as c:
            c.ehlo()
            r = send_message(c, "news@sender.test", ["bob@dest.test"],
                             b"X-Sluice-Campaign: spring\r\n sale\r\n"
                             b"X-Sluice-Trace: qFORGED.t.c.kold.mAAAA\r\n"
                             b"Subject: hi\r\n\r\nbody\r\n")
        qid = queued_id(r)
        fields = header_fields(self.d.queue_body(qid))
        names = [n.lower() for n, _ in fields]
        self.assertNotIn("x-sluice-campaign", names)
        traces = [v for n, v in fields if n.lower() == "x-sluice-trace"]
        self.assertEqual(len(traces), 1, fields)
        self.assertEqual(check_trace(traces[0]), {"queue_id": qid, "tenant": "",
                                                  "campaign": "spring sale", "key": "new"})
        self.assertIsNone(check_trace(traces[0], [dict(KEYS[1], secret="another secret 16+")]))
        self.assertIn(("Feedback-ID", ":spring_sale:sluice-test"), fields)

    def test_inbound_mail_is_not_traced(self):
        with self.d.connect("mx") as c:
            c.ehlo()
            r = send_message(c, "someone@elsewhere.test", ["user@example.com"],
                             b"Subject: hi\r\n\r\nbody\r\n")
        names = [n.lower() for n, _ in header_fields(self.d.queue_body(queued_id(r)))]
        self.assertNotIn("x-sluice-trace", names)
        self.assertNotIn("feedback-id", names)


if __name__ == "__main__":
    main()
