"""
The suppression list through the real daemon: an entry made with `sluice suppress add` while the
daemon runs refuses the next RCPT of relayed mail with 550 5.7.1 naming the source and date (raw
socket, replies counted), or is dropped (250, left out of the queued message) in drop mode; an
expiry ends it; a tenant's entry (the authenticated user) holds for that tenant only and the
global one for all, with drop_tenants overriding the action for one tenant; entries survive a
restart; CSV import and export round-trip and a bad CSV names its lines and imports nothing.
Fed by hard bounces: a real peer answers 550 5.1.1 user unknown, the recipient goes on the list,
and the next message to it is refused at RCPT. A tenant named by X-Sluice-Tenant (known only after
RCPT) has its own list read once the header section has passed (smtplib): a suppressed recipient
is taken out of the queued message; with none left the message gets 550 5.7.1 at its end, or, for
a drop tenant, 250 and nothing is spooled.
"""
import calendar
import os
import smtplib
import time

from certs import client_context
from harness import SluiceTestCase, main, queued_id, send_message
from mailnet import MailNetCase, send, wait_until
from spool_files import hashed_files
from test_auth import plain, sha512_hash
from test_http import families, http_section, sample

ON = {"enabled": True}
TODAY_RE = r"\d{4}-\d\d-\d\d"


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class SuppressionCase(SluiceTestCase):
    def start_with(self, suppression, **kwargs):
        self.d = self.start_sluice(config={"suppression": suppression}, **kwargs)
        return self.d

    def suppress(self, *args, ok=True):
        res = self.d.cli("suppress", *args)
        if ok and res.returncode != 0:
            raise AssertionError("suppress %r: %d %s" % (args, res.returncode, res.stderr.decode()))
        return res

    def rcpt(self, c, rcpt, sender="sender@example.com"):
        """RCPT TO:<rcpt> in a fresh transaction on c; returns its reply."""
        self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        self.assertReply(c.cmd("RSET"), 250)
        return r


class Manual(SuppressionCase):
    def test_added_while_running_then_refused_at_rcpt(self):
        self.start_with(ON)
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "gone@foreign.example"), 250, "2.1.5", "before the add")
            self.suppress("add", "Gone@Foreign.Example", "--note", "asked us")
            r = self.rcpt(c, "gone@FOREIGN.example")
            self.assertReply(r, 550, "5.7.1")
            self.assertRegex(r.text, r"^5\.7\.1 recipient suppressed \(manual %s\)$" % TODAY_RE)
            self.assertReply(self.rcpt(c, "kept@foreign.example"), 250, "2.1.5")
            # the hit is an event naming the list, the source and the action
            hit = self.d.wait_event("suppression.hit", address="gone@foreign.example")[0]
            self.assertEqual((hit["listed"], hit["source"], hit["action"]),
                             ("global", "manual", "reject"))
            # removed: accepted again
            self.suppress("remove", "gone@foreign.example")
            self.assertReply(self.rcpt(c, "gone@foreign.example"), 250, "2.1.5", "after remove")

    def test_off_by_default_and_for_mail_we_do_not_relay(self):
        self.start_with({}, listeners=[{"name": "submission", "role": "submission"},
                                       {"name": "mx", "role": "inbound"}])
        self.suppress("add", "gone@foreign.example")
        self.suppress("add", "user@example.com")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "gone@foreign.example"), 250, "2.1.5", "disabled")
        self.d.stop()
        self.d.extra["suppression"] = ON
        self.d.write_config()
        self.d.start()
        with self.d.connect("mx") as c:  # inbound: mail for us is not relayed
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "user@example.com"), 250, "2.1.5", "inbound")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "gone@foreign.example"), 550, "5.7.1", "enabled")

    def test_pipelined_rcpts_answered_in_order(self):
        """The list is read off the loop, for the pipelined RCPTs in one batch: they (suppressed or
        not, a bad one among them) get one reply each, in order, then DATA its 354; a client that
        leaves while a read is in flight leaves the daemon serving."""
        self.start_with(ON)
        self.suppress("add", "gone1@foreign.example")
        self.suppress("add", "gone2@foreign.example")
        rcpts = ["ok1", "gone1", "ok2", "gone2", None, "ok3", "gone1"]
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            c.send(b"MAIL FROM:<sender@example.com>\r\n" +
                   b"".join(b"RCPT TO:<%s>\r\n" % (b"bad address" if r is None else
                                                    r.encode() + b"@foreign.example")
                            for r in rcpts) + b"DATA\r\n")
            replies = c.read_replies(len(rcpts) + 2)
            want = [250] + [501 if r is None else 550 if r.startswith("gone") else 250
                            for r in rcpts] + [354]
            self.assertEqual([r.code for r in replies], want)
            c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
            qid = queued_id(c.read_reply())
            self.assertEqual(c.pending(), b"", "one reply per command")
        queued = {e["id"]: e["rcpts"] for e in self.d.queue_list()}
        self.assertEqual(queued.get(qid), ["ok1@foreign.example", "ok2@foreign.example",
                                           "ok3@foreign.example"])
        for _ in range(5):
            with self.d.connect() as c:
                c.send(b"EHLO client.test\r\nMAIL FROM:<s@example.com>\r\n"
                       b"RCPT TO:<gone1@foreign.example>\r\n")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "gone2@foreign.example"), 550, "5.7.1", "still serving")

    def test_large_pipelined_groups(self):
        """Two transactions of 150 pipelined RCPTs each in one send (RSET between them): every
        RCPT gets its own reply, in order, whether it was read with the first of its group or on
        its own (a repeated address, one with DSN parameters, a bad one)."""
        self.d = self.start_sluice(config={"suppression": ON, "limits": {"max_errors": 1000}})
        rows = ["g%03d@foreign.example,,manual,2026-11-02T00:00:00Z,," % i
                for i in range(300) if i % 7 == 3]
        path = os.path.join(self.d.dir, "list.csv")
        with open(path, "w") as f:
            f.write("address,tenant,source,time,expiry,note\n" + "\n".join(rows) + "\n")
        self.suppress("import", path)

        def group(first):
            lines, want = [], []
            for i in range(first, first + 150):
                addr = "g%03d@foreign.example" % i
                if i % 50 == 10:
                    lines.append("RCPT TO:<g003@FOREIGN.example>")  # again, another case
                    want.append(550)
                elif i % 50 == 20:
                    lines.append("RCPT TO:<%s> NOTIFY=FAILURE ORCPT=rfc822;%s" % (addr, addr))
                    want.append(550 if i % 7 == 3 else 250)
                elif i % 50 == 30:
                    lines.append("RCPT TO:<bad address>")
                    want.append(501)
                else:
                    lines.append("RCPT TO:<%s>" % addr)
                    want.append(550 if i % 7 == 3 else 250)
            return lines, want

        first, want1 = group(0)
        second, want2 = group(150)
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            c.send(("\r\n".join(["MAIL FROM:<s@example.com>"] + first + ["RSET",
                    "MAIL FROM:<s@example.com>"] + second + ["DATA"]) + "\r\n").encode())
            replies = c.read_replies(len(want1) + len(want2) + 4, timeout=30)
            self.assertEqual([r.code for r in replies],
                             [250] + want1 + [250, 250] + want2 + [354])
            c.send(b"Subject: many\r\n\r\nhello\r\n.\r\n")
            qid = queued_id(c.read_reply())
            self.assertEqual(c.pending(), b"", "one reply per command")
        kept = [("g%03d@foreign.example" % i) for i in range(150, 300)
                if i % 7 != 3 and i % 50 not in (10, 30)]
        queued = {e["id"]: e["rcpts"] for e in self.d.queue_list()}
        self.assertEqual(queued.get(qid), kept)

    def test_pipelined_rcpts_one_read(self):
        """RCPTs pipelined together cost one read of the list, not one each: GET /metrics counts
        the reads (sluice_suppression_reads_total) and the addresses they looked up."""
        self.d = self.start_sluice(start=False, config={"suppression": ON,
                                                        "limits": {"max_errors": 1000}})
        self.d.extra["http"] = http_section(self.d)
        self.d.start()
        self.suppress("add", "gone@foreign.example")

        def reads_and_lookups():
            fams = families(self.d)
            return (sample(fams, "sluice_suppression_reads", "sluice_suppression_reads_total"),
                    sample(fams, "sluice_suppression_lookups",
                           "sluice_suppression_lookups_total"))

        self.assertEqual(reads_and_lookups(), (0, 0))
        rcpts = ["gone" if i % 10 == 5 else "r%03d" % i for i in range(100)]
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            c.send(b"MAIL FROM:<s@example.com>\r\n" +
                   b"".join(b"RCPT TO:<%s@foreign.example>\r\n" % r.encode() for r in rcpts) +
                   b"RSET\r\n")
            replies = c.read_replies(len(rcpts) + 2, timeout=30)
            self.assertEqual([r.code for r in replies],
                             [250] + [550 if r == "gone" else 250 for r in rcpts] + [250])
        self.assertEqual(reads_and_lookups(), (1, len(rcpts)))
        # one more RCPT on its own: a read of its own
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "gone@foreign.example"), 550, "5.7.1")
        self.assertEqual(reads_and_lookups(), (2, len(rcpts) + 1))

    def test_drop_mode(self):
        self.start_with({"enabled": True, "action": "drop"})
        self.suppress("add", "gone@foreign.example")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            reply = send_message(c, "sender@example.com", ["gone@foreign.example",
                                                           "kept@foreign.example"],
                                 b"Subject: drop\r\n\r\nhello\r\n")
            self.assertReply(reply, 250, "2.0.0")
        qid = queued_id(reply)
        queued = {e["id"]: e["rcpts"] for e in self.d.queue_list()}
        self.assertEqual(queued.get(qid), ["kept@foreign.example"])
        hit = self.d.wait_event("suppression.hit", address="gone@foreign.example")[0]
        self.assertEqual(hit["action"], "drop")
        self.assertEqual([e for e in self.d.events() if e["level"] == "error"], [])

    def test_drop_mode_every_recipient_dropped(self):
        """Every recipient dropped: the client heard 250 for each, so DATA and BDAT go on and the
        message gets 250 too, but nothing is spooled (suppression.discarded says so). Pipelined
        RCPTs get one reply each, in order; one refused among the dropped does not make it 554."""
        self.start_with({"enabled": True, "action": "drop"})
        self.suppress("add", "gone@foreign.example")
        self.suppress("add", "left@foreign.example")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<gone@foreign.example>\r\n"
                   b"RCPT TO:<bad address>\r\nRCPT TO:<left@foreign.example>\r\nDATA\r\n")
            replies = c.read_replies(5)
            self.assertEqual([r.code for r in replies], [250, 250, 501, 250, 354])
            body = b"Subject: drop all\r\n\r\nhello\r\n"
            c.send(body + b".\r\n")
            end = c.read_reply()
            self.assertReply(end, 250, "2.0.0", "after DATA")
            self.assertIsNone(queued_id(end), "no queue id: nothing was queued")
            chunk = b"Subject: drop all, in chunks\r\n\r\nhello\r\n"
            c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<gone@foreign.example>\r\n"
                   b"BDAT %d\r\n%sBDAT 0 LAST\r\n" % (len(chunk), chunk))
            replies = c.read_replies(4)
            self.assertEqual([r.code for r in replies], [250, 250, 250, 250])
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "the session goes on")
            self.assertEqual(c.pending(), b"", "one reply per command")
        discarded = self.d.wait_event("suppression.discarded", count=2)
        self.assertEqual([(e["rcpts"], e["size"]) for e in discarded],
                         [(2, len(body)), (1, len(chunk))])
        self.assertEqual(self.d.events("smtp.accepted"), [], "nothing committed")
        self.assertEqual(self.d.queue_list(), [])
        self.assertEqual(hashed_files(self.d.spool, "queue"), [], "no queue file")
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [], "no torn file")
        self.assertEqual([e for e in self.d.events() if e["level"] == "error"], [])

    def test_expiry(self):
        self.start_with(ON)
        ends = int(time.time()) + 3
        self.suppress("add", "brief@foreign.example", "--expires", utc(ends))
        replies = []

        def accepted():  # a connection each: refusals count as the client's errors
            with self.d.connect() as c:
                self.assertReply(c.ehlo(), 250)
                replies.append((time.time(), self.rcpt(c, "brief@foreign.example").code))
            return replies[-1][1] == 250
        wait_until(accepted, 10, "the entry to expire", step=0.2)
        self.assertEqual(replies[0][1], 550, "refused before the expiry")
        self.assertGreaterEqual(replies[-1][0], ends, "accepted before the expiry")
        # expired entries are listed as such
        self.assertIn(b"(expired)", self.suppress("list").stdout)

    def test_survives_restart(self):
        self.start_with(ON)
        self.suppress("add", "gone@foreign.example", "--tenant", "acme")
        self.suppress("add", "also@foreign.example")
        self.d.stop()
        res = self.suppress("check", "gone@foreign.example", "--tenant", "acme")
        self.assertIn(b"suppressed", res.stdout)
        self.d.start()
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.rcpt(c, "also@foreign.example"), 550, "5.7.1", "after restart")
        self.assertEqual(self.suppress("check", "nobody@foreign.example", ok=False).returncode, 3)

    def test_import_export_round_trip(self):
        self.start_with(ON)
        rows = ["a@foreign.example,,complaint,2026-12-01T00:00:00Z,,",
                "b@foreign.example,acme,manual,2026-11-02T10:30:00Z,2099-01-01T00:00:00Z,"
                "\"said \"\"stop\"\", twice\"",
                "c@foreign.example,,bad-mailbox,2026-10-03T00:00:00Z,,550 5.1.1 user unknown"]
        path = os.path.join(self.d.dir, "in.csv")
        with open(path, "w") as f:
            f.write("address,tenant,source,time,expiry,note\n" + "\n".join(rows) + "\n")
        self.assertIn(b"imported 3 entries", self.suppress("import", path).stdout)
        out = self.suppress("export").stdout.decode().splitlines()
        self.assertEqual(out[0], "address,tenant,source,time,expiry,note")
        self.assertEqual(sorted(out[1:]), sorted(rows))
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            r = self.rcpt(c, "a@foreign.example")
            self.assertReply(r, 550, "5.7.1")
            self.assertEqual(r.text, "5.7.1 recipient suppressed (complaint 2026-12-01)")
        # the export imports again as it is
        again = os.path.join(self.d.dir, "again.csv")
        with open(again, "w") as f:
            f.write("\n".join(out) + "\n")
        self.suppress("import", again)
        self.assertEqual(self.suppress("export").stdout.decode().splitlines(), out)

        bad = os.path.join(self.d.dir, "bad.csv")
        with open(bad, "w") as f:
            f.write("address,tenant,source,time,expiry,note\n"
                    "d@foreign.example,,,,,\n"
                    "e@foreign.example,,spam,,,\n"
                    "\"f@foreign.example,,,,,\n")
        res = self.suppress("import", bad, ok=False)
        self.assertEqual(res.returncode, 1)
        err = res.stderr.decode()
        self.assertIn("%s:3: source: 'spam'" % bad, err)
        self.assertIn("%s:4: address: a quote is not closed" % bad, err)
        self.assertIn("nothing imported", err)
        self.assertEqual(self.suppress("check", "d@foreign.example", ok=False).returncode, 3)


class Tenants(SuppressionCase):
    """The tenant is the authenticated user; 127.0.0.1 is not trusted here, so relaying needs AUTH."""
    PASSWORDS = {"alice": "wonder land", "bob": "s3cret!"}

    def setUp(self):
        self.d = self.start_sluice(tls=True, start=False,
                                   listeners=[{"name": "submission", "role": "submission",
                                               "tls": "starttls"}])
        users = os.path.join(self.d.dir, "users")
        with open(users, "w") as f:
            for name, password in self.PASSWORDS.items():
                f.write("%s:%s\n" % (name, sha512_hash(password)))
        self.d.extra = {"relay": {"trusted_networks": [], "users": users},
                        "suppression": {"enabled": True, "drop_tenants": ["bob"]}}
        self.d.start()

    def session(self, user):
        c = self.d.connect()
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls(client_context())
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("AUTH PLAIN " + plain(user, self.PASSWORDS[user]), timeout=40),
                         235)
        return c

    def test_tenant_and_global_entries(self):
        self.suppress("add", "mine@foreign.example", "--tenant", "alice")
        self.suppress("add", "all@foreign.example")
        with self.session("alice") as c:
            self.assertReply(self.rcpt(c, "mine@foreign.example"), 550, "5.7.1", "alice's own")
            self.assertReply(self.rcpt(c, "all@foreign.example"), 550, "5.7.1", "global")
        with self.session("bob") as c:
            self.assertReply(self.rcpt(c, "mine@foreign.example"), 250, "2.1.5", "alice's only")
            # bob is a drop tenant: the global entry holds, answered 250 and dropped
            self.assertReply(self.rcpt(c, "all@foreign.example"), 250, "2.1.5", "dropped")
        hits = self.d.wait_event("suppression.hit", count=3)
        self.assertEqual(sorted((h["tenant"], h["address"], h["listed"], h["action"]) for h in hits),
                         [("alice", "all@foreign.example", "global", "reject"),
                          ("alice", "mine@foreign.example", "tenant", "reject"),
                          ("bob", "all@foreign.example", "global", "drop")])

    def explain(self, rcpt, user):
        res = self.d.cli("explain", "--client", "127.0.0.1", "--auth", user, "--from",
                         "sender@example.com", "--rcpt", rcpt)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        return res.stdout.decode()

    def test_explain_names_the_entry(self):
        """`sluice explain` reads the list the daemon reads: the entry's list (the tenant's or
        the global one), source and date, and the reply the daemon gives (550, or 250 dropped)."""
        self.suppress("add", "mine@foreign.example", "--tenant", "alice")
        self.suppress("add", "all@foreign.example")
        mine = self.explain("mine@foreign.example", "alice")
        self.assertRegex(mine, r"  suppressed: on tenant alice's list, source manual, added %s\n"
                         r"  reject 550 5\.7\.1 recipient suppressed \(manual %s\)\n"
                         % (TODAY_RE, TODAY_RE))
        self.assertRegex(self.explain("all@foreign.example", "alice"),
                         r"  suppressed: on the global list, source manual, added %s\n  reject 550"
                         % TODAY_RE)
        self.assertRegex(self.explain("all@foreign.example", "bob"),
                         r"  suppressed: on the global list, source manual, added %s\n"
                         r"  drop 250 2\.1\.5 " % TODAY_RE)
        kept = self.explain("mine@foreign.example", "bob")
        self.assertNotIn("suppressed", kept)
        self.assertIn("  accept 250 2.1.5 Ok\n", kept)
        # the daemon agrees
        with self.session("alice") as c:
            self.assertReply(self.rcpt(c, "mine@foreign.example"), 550, "5.7.1")


class HardBounce(MailNetCase):
    def test_hard_bounce_suppresses_the_next_message(self):
        net = self.make_net()
        home = net.peer("mx.sender.test")
        dest = net.peer("mx.dest.test", rcpt=[("gone@*", "550 5.1.1 <gone@dest.test>: user unknown")])
        net.mx("sender.test", home, 10)
        net.mx("dest.test", dest, 10)
        net.start()
        cfg = net.sluice_config(expire="1h")
        cfg["suppression"] = ON
        self.d = self.start_sluice(config=cfg)
        send(self.d, "alice@sender.test", ["gone@dest.test"], b"Subject: one\r\n\r\nfirst\r\n")
        added = self.d.wait_event("suppression.added", timeout=20, address="gone@dest.test")[0]
        self.assertEqual((added["source"], added["tenant"]), ("bad-mailbox", ""))
        # expires after suppression.hard_bounce_expiry (90 days by default)
        self.assertAlmostEqual(added["expiry"], time.time() + 90 * 86400, delta=120)
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<alice@sender.test>"), 250)
            r = c.cmd("RCPT TO:<gone@dest.test>")
            self.assertReply(r, 550, "5.7.1", "the next message")
            self.assertEqual(r.text, "5.7.1 recipient suppressed (bad-mailbox %s)"
                             % time.strftime("%Y-%m-%d", time.gmtime(added_at(added))))
        check = self.d.cli("suppress", "check", "gone@dest.test")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn(b"550 5.1.1", check.stdout)
        self.assertEqual(len(dest.delivered()), 0)


def added_at(event):
    """The unix time of an event's "ts" field."""
    return calendar.timegm(time.strptime(event["ts"][:19], "%Y-%m-%dT%H:%M:%S"))


class HeaderTenant(SuppressionCase):
    """Relayed from a trusted network without AUTH: the tenant comes with the header section."""

    def sendmail(self, client, tenant, rcpts, subject="t"):
        head = "X-Sluice-Tenant: %s\r\n" % tenant if tenant else ""
        return client.sendmail("sender@example.com", rcpts,
                               head + "Subject: %s\r\n\r\nhello\r\n" % subject)

    def smtp(self):
        host, port = self.d.addr()
        client = smtplib.SMTP(host, port, timeout=15)
        client.ehlo("submit.test")
        return client

    def test_a_suppressed_recipient_leaves_the_message(self):
        self.start_with({"enabled": True, "drop_tenants": ["newsletters"]})
        self.suppress("add", "gone@foreign.example", "--tenant", "acme")
        with self.smtp() as c:
            self.assertEqual(self.sendmail(c, "acme", ["kept@foreign.example",
                                                       "GONE@foreign.example"]), {})
            # another tenant, and mail with no tenant, are not held to acme's list
            self.assertEqual(self.sendmail(c, "bravo", ["gone@foreign.example"]), {})
            self.assertEqual(self.sendmail(c, None, ["gone@foreign.example"]), {})
            # every recipient suppressed: 550 at the end of the message, naming the entry
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                self.sendmail(c, "acme", ["gone@foreign.example"])
            self.assertEqual(refused.exception.smtp_code, 550)
            self.assertRegex(refused.exception.smtp_error.decode(),
                             r"^5\.7\.1 recipient suppressed \(manual %s\)$" % TODAY_RE)
            # the session goes on
            self.assertEqual(self.sendmail(c, "acme", ["after@foreign.example"]), {})
        self.assertEqual(sorted(e["rcpts"] for e in self.d.queue_list()),
                         [["after@foreign.example"], ["gone@foreign.example"],
                          ["gone@foreign.example"], ["kept@foreign.example"]])
        hits = self.d.wait_event("suppression.hit", count=2)
        self.assertEqual([(h["tenant"], h["address"], h["listed"], h["action"], h["stage"])
                          for h in hits],
                         [("acme", "GONE@foreign.example", "tenant", "reject", "data"),
                          ("acme", "gone@foreign.example", "tenant", "reject", "data")])
        self.d.wait_event("smtp.rejected", rule="suppression")
        self.assertEqual([e for e in self.d.events() if e["level"] == "error"], [])

    def test_pipelined_after_the_message_and_bdat(self):
        """The end of the message waits for the list: commands pipelined behind the final dot
        are answered after it, one reply each and in order; BDAT takes the same way."""
        self.start_with(ON)
        self.suppress("add", "gone@foreign.example", "--tenant", "acme")
        msg = b"X-Sluice-Tenant: acme\r\nSubject: p\r\n\r\nhello\r\n"
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            c.send(b"MAIL FROM:<s@example.com>\r\nRCPT TO:<gone@foreign.example>\r\nDATA\r\n")
            self.assertEqual([r.code for r in c.read_replies(3)], [250, 250, 354])
            c.send(msg + b".\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<gone@foreign.example>\r\n"
                   b"RCPT TO:<kept@foreign.example>\r\nBDAT %d LAST\r\n" % len(msg) + msg +
                   b"NOOP\r\n")
            replies = c.read_replies(6)  # the RCPTs do not know the tenant yet: 250
            self.assertEqual([r.code for r in replies], [550, 250, 250, 250, 250, 250])
            self.assertEqual(replies[0].enhanced, "5.7.1")
            qid = queued_id(replies[4])
            self.assertEqual(c.pending(), b"", "one reply per command")
        queued = {e["id"]: e["rcpts"] for e in self.d.queue_list()}
        self.assertEqual(queued, {qid: ["kept@foreign.example"]})

    def test_many_recipients_each_checked(self):
        """A message to 600 recipients (the tenant's list read for all of them in one batch):
        exactly those on acme's list leave it, in any case of the address; another tenant's
        entries and expired ones do not count."""
        self.start_with(ON)
        rcpts = ["m%03d@foreign.example" % i for i in range(600)]
        rows = []
        for i, r in enumerate(rcpts):
            if i % 7 == 3:
                rows.append("%s,acme,manual,2026-11-02T00:00:00Z,," % r.upper())
            elif i % 13 == 6:
                rows.append("%s,bravo,manual,2026-11-02T00:00:00Z,," % r)
            elif i % 17 == 8:
                rows.append("%s,acme,manual,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z," % r)
        path = os.path.join(self.d.dir, "list.csv")
        with open(path, "w") as f:
            f.write("address,tenant,source,time,expiry,note\n" + "\n".join(rows) + "\n")
        self.suppress("import", path)
        with self.smtp() as c:
            self.assertEqual(self.sendmail(c, "acme", rcpts), {})
        kept = [r for i, r in enumerate(rcpts) if i % 7 != 3]
        self.assertEqual([e["rcpts"] for e in self.d.queue_list()], [kept])
        gone = len(rcpts) - len(kept)
        hits = self.d.wait_event("suppression.hit", count=gone)
        self.assertEqual(sorted(h["address"] for h in hits),
                         sorted(r for r in rcpts if r not in kept))
        self.assertEqual({(h["listed"], h["stage"]) for h in hits}, {("tenant", "data")})

    def test_drop_tenant_every_recipient_dropped(self):
        self.start_with({"enabled": True, "drop_tenants": ["newsletters"]})
        self.suppress("add", "gone@foreign.example", "--tenant", "newsletters")
        self.suppress("add", "left@foreign.example", "--tenant", "newsletters")
        with self.smtp() as c:
            self.assertEqual(self.sendmail(c, "newsletters", ["gone@foreign.example",
                                                              "left@foreign.example"]), {})
            self.assertEqual(self.sendmail(c, "newsletters", ["kept@foreign.example",
                                                              "left@foreign.example"]), {})
        discarded = self.d.wait_event("suppression.discarded")[0]
        self.assertEqual((discarded["tenant"], discarded["rcpts"]), ("newsletters", 2))
        self.assertEqual([e["rcpts"] for e in self.d.queue_list()], [["kept@foreign.example"]])
        hits = self.d.wait_event("suppression.hit", count=3)
        self.assertEqual({(h["action"], h["stage"]) for h in hits}, {("drop", "data")})


if __name__ == "__main__":
    main()
