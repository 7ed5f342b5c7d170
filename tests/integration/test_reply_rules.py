"""
Reply rules and gradual recovery, as the receiver sees them (see mailnet.py for the test world).
A scripted receiver sends a provider's real reply and the test watches the wire: no connection
during a suspension (of one egress address, or of the whole destination), and the held mail tried
when it ends rather than at its next retry step; a slower rate during a backoff, then rates that
climb back step by step, never a jump to full speed; a bounce rule that fails the queued mail with
a DSN that says why. A dry-run rule only logs; a threshold rule acts at its N-th match only. Each
shipped provider rule fires on its provider's reply from its provider's MX host. Every transition
is in the log.
"""
import calendar
import json
import os
import re
import smtplib
import time

from harness import main
from mailnet import EGRESS, MailNetCase, Peer, crowded_windows, rcpt_times_by_source, send

SENDER = "alice@sender.test"
ONE_EGRESS = EGRESS[:1]
SLACK = 0.3  # timer granularity and peer-side delays on a loaded machine
TSS04 = ("421 4.7.0 [TSS04] Messages from 127.0.0.10 temporarily deferred due to unexpected "
         "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes")
GMAIL_RATE = ("421 4.7.28 [127.0.0.10] Gmail has detected an unusual rate of unsolicited mail "
              "originating from your IP address. To protect our users from spam, mail sent from "
              "your IP address has been temporarily rate limited.")


def log_time(rec):
    """A log record's ts as seconds since the epoch (what the peers' time.time() counts)."""
    stamp, ms = rec["ts"].rstrip("Z").split(".")
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0


def send_many(daemon, rcpts, per_message=1):
    """Submits one message per `per_message` recipients over one SMTP session."""
    host, port = daemon.addr()
    with smtplib.SMTP(host, port, timeout=15) as client:
        client.ehlo("submit.test")
        for i in range(0, len(rcpts), per_message):
            refused = client.sendmail(SENDER, rcpts[i:i + per_message],
                                      b"Subject: m%d\r\n\r\nhello\r\n" % i)
            if refused:
                raise AssertionError("daemon refused %r" % refused)


class OneShotPeer(Peer):
    """A peer whose scripted RCPT replies answer each address's first RCPT only; later ones are
    accepted (the retry from another egress address goes through)."""

    def rcpt_reply(self, session_rcpts, address):
        reply = super().rcpt_reply(session_rcpts, address)
        with self.lock:
            return reply if self.attempts[address] == 1 else "250 2.1.5 ok"


class ReplyRules(MailNetCase):
    def setUp(self):
        self.make_net()
        self.home = self.net.peer("mx.sender.test")  # where DSNs to SENDER arrive
        self.net.mx("sender.test", self.home, 10)

    def start_with(self, reply_rules=(), backoff=(), rules=(), egress=ONE_EGRESS, **default):
        if self.net.port is None:
            self.net.start()
        cfg = self.net.sluice_config(rules=rules, egress=egress, **default)
        cfg["shaping"]["reply_rules"] = list(reply_rules)
        if backoff:
            cfg["shaping"]["backoff"] = list(backoff)
        self.d = self.start_sluice(config=cfg)
        return self.d

    def destination(self, key):
        res = self.d.cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        found = [d for d in json.loads(res.stdout)["destinations"] if d["destination"] == key]
        self.assertEqual(len(found), 1, "destination %s in %s" % (key, res.stdout))
        return found[0]

    def explain(self, key):
        """`sluice queue destinations KEY`: the destination's state in words."""
        res = self.d.cli("queue", "destinations", key)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.decode()

    def rcpt_time(self, peer, address):
        return min(t for tx in peer.transactions() for a, t, _ in tx.rcpts if a == address)

    # ---- suspension ----

    def check_suspension(self, action):
        """TSS04 from the receiver, under a site rule that suspends for 2 s with a retry step of a
        minute: no connection (from the egress address, or at all) until the suspension ends, not
        even to the next MX host, and the deferred recipient tried as it ends, not a minute
        later."""
        peer = self.net.peer("mx.susp.test", rcpt=[("first@*", TSS04)])
        backup = self.net.peer("mx2.susp.test")
        self.net.mx("susp.test", peer, 10)
        self.net.mx("susp.test", backup, 20)
        self.start_with(
            reply_rules=[{"name": "tss04-short", "match": {"domain": "susp.test"},
                          "text": r"\[TSS04\]", "action": action, "duration": "2s"}],
            egress=EGRESS, retry=["60s"], expire="120s", connections=1)
        send(self.d, SENDER, ["first@susp.test"])
        fired = self.d.wait_event("delivery.rule", 15, rule="tss04-short")[0]
        self.assertEqual(fired["action"], action)
        self.assertFalse(fired["dry_run"])
        suspend = self.d.wait_event("delivery.suspend", 5, destination="susp.test")[0]
        self.assertEqual(suspend["reason"], "reply rule tss04-short")
        self.assertEqual(suspend["for_ms"], 2000)
        described = self.destination("susp.test")
        explained = self.explain("susp.test")
        self.assertRegex(explained, r"suspended by reply rule tss04-short: [12]s left\n")
        # (a retry from the other egress address may meet the same reply before the test clears it)
        self.assertRegex(explained, r"  reply rule tss04-short \(%s\): ([12]) hits, acted \1 times\n"
                         % action)
        peer.rcpt_rules = []  # from now on the receiver takes the mail
        struck = self.rcpt_time(peer, "first@susp.test")
        hit_from = peer.sessions[0].client[0]
        send(self.d, SENDER, ["second@susp.test"])
        self.wait(lambda: {"first@susp.test", "second@susp.test"} <= set(
            peer.delivered_rcpts() + backup.delivered_rcpts()), 15,
                  "both delivered after the suspension")
        during = [s for s in peer.sessions + backup.sessions
                  if struck < s.connect_time < struck + 2 - SLACK]
        if action == "suspend":
            self.assertEqual(described["egress"][[e["address"] for e in described["egress"]]
                                                 .index(hit_from)]["suspended_by"],
                             "reply rule tss04-short")
            self.assertFalse([s for s in during if s.client[0] == hit_from],
                             "no connection from the suspended egress address")
            self.assertTrue(during, "the other egress address goes on")
        else:
            self.assertEqual(described["suspended_by"], "reply rule tss04-short")
            self.assertEqual(during, [], "no connection at all while the destination is suspended")
            retried = min(t for tx in peer.transactions() + backup.transactions()
                          for a, t, _ in tx.rcpts if a == "second@susp.test")
            self.assertLess(retried - struck, 2 + 3, "held mail tried when the suspension ends")
        first_again = max(t for tx in peer.transactions() + backup.transactions()
                          for a, t, _ in tx.rcpts if a == "first@susp.test")
        self.assertLess(first_again - struck, 2 + 3,
                        "the deferred recipient tried when the suspension ends, not at its retry "
                        "step a minute later")
        if action == "suspend_destination":
            self.assertGreaterEqual(first_again - struck, 2 - SLACK)
        self.d.wait_event("delivery.resume", 5, destination="susp.test",
                          reason="reply rule tss04-short")

    def test_suspend_egress_address(self):
        self.check_suspension("suspend")

    def test_suspend_destination(self):
        self.check_suspension("suspend_destination")

    def test_dry_run_only_logs(self):
        """The same rule with dry_run: logged as what it would do, and nothing held back."""
        peer = self.net.peer("mx.dry.test", rcpt=[("first@*", TSS04)])
        self.net.mx("dry.test", peer, 10)
        self.start_with(
            reply_rules=[{"name": "dry", "match": {"domain": "dry.test"}, "code": 421,
                          "text": r"\[TSS04\]", "action": "suspend_destination",
                          "duration": "1h", "dry_run": True}],
            retry=["1s"], expire="60s")
        send(self.d, SENDER, ["first@dry.test"])
        fired = self.d.wait_event("delivery.rule", 15, rule="dry")[0]
        self.assertTrue(fired["dry_run"])
        peer.rcpt_rules = []
        send(self.d, SENDER, ["second@dry.test"])
        self.wait(lambda: {"first@dry.test", "second@dry.test"} <= set(peer.delivered_rcpts()),
                  15, "delivered: the dry-run rule suspended nothing")
        self.assertEqual(self.d.events("delivery.suspend"), [])
        self.assertEqual(self.d.events("delivery.throttle")[0]["reason"], "a 421 or a rate reply",
                         "the fallback acted instead")
        self.assertNotIn("suspended_by", self.destination("dry.test"))

    # ---- backoff and recovery ----

    def test_backoff_then_gradual_recovery(self):
        """Gmail's 421 4.7.28 under a site rule that backs off to 2 recipients a second for 3 s,
        with 20/s configured: the receiver sees at most 2 a second during the backoff, then rates
        that climb by steps of a quarter each clean second (6, 11, 15, then 20), never a jump."""
        peer = self.net.peer("mx.slow.test", rcpt=[("trigger@*", GMAIL_RATE)])
        self.net.mx("slow.test", peer, 10)
        self.start_with(
            backoff=[{"name": "slow", "connections": 1, "rate": "2/s"}],
            reply_rules=[{"name": "gmail-short", "match": {"domain": "slow.test"}, "code": 421,
                          "enhanced": "4.7.28", "action": "backoff", "backoff": "slow",
                          "duration": "3s"}],
            rate="20/s", connections=2, retry=["60s"], expire="120s",
            recovery_interval="1s", recovery_step_percent=25)
        send(self.d, SENDER, ["trigger@slow.test"])
        backoff = self.d.wait_event("delivery.backoff", 15, destination="slow.test")[0]
        self.assertEqual((backoff["connections"], backoff["rate"]), (1, 2))
        self.assertEqual(backoff["reason"], "reply rule gmail-short")
        explained = self.explain("slow.test")
        self.assertRegex(explained, r"egress 127.0.0.10: \d+ open of 1 connections, limits at 0%\n"
                                    r"    backed off by reply rule gmail-short: [123]s left, then "
                                    r"back up step by step\n")
        self.assertIn("  reply rule gmail-short (backoff): 1 hits, acted 1 times\n", explained)
        started = log_time(backoff)
        peer.rcpt_rules = []
        rcpts = ["r%d@slow.test" % i for i in range(90)]
        send_many(self.d, rcpts)
        self.wait(lambda: set(rcpts) <= set(peer.delivered_rcpts()), 60, "all delivered",
                  step=0.2)
        recovered = self.d.wait_event("delivery.recovered", 10, destination="slow.test")[0]
        steps = self.d.events("delivery.recover", destination="slow.test") + [recovered]
        self.assertEqual([s["level_permille"] for s in steps], [250, 500, 750, 1000])
        self.assertEqual([s["rate"] for s in steps], [6, 11, 15, 20])
        for s in steps:
            self.assertEqual(s["reason"], "reply rule gmail-short")

        times = [t for t in rcpt_times_by_source(peer)[ONE_EGRESS[0][0]]
                 if t >= started]
        ends = [started + 3] + [log_time(s) for s in steps]
        # Backoff: 2 a second; each step: its own rate, in any rolling second at the receiver.
        limits = [2] + [s["rate"] for s in steps[:-1]]
        for (start, end), limit in zip(zip([started] + ends[1:], ends[1:] + [float("inf")]),
                                       limits + [20]):
            window = [t for t in times if start <= t < end]
            self.assertEqual(crowded_windows(window, limit, 1.0), [],
                             "more than %d RCPTs in a second between %.2f and %.2f: %r"
                             % (limit, start - started, end - started, window))
        in_backoff = [t for t in times if t < started + 3]
        self.assertGreaterEqual(len(in_backoff), 3, "mail flows slowly during the backoff")
        first_second = [t for t in times if started + 3 <= t < started + 4]
        self.assertLessEqual(len(first_second), 7, "no snap back to 20/s when the backoff ends")
        self.assertLessEqual(peer.max_open.get(ONE_EGRESS[0][0], 0), 2)

    # ---- bounce, via the shipped Microsoft rule ----

    def test_bounce_rule_fails_queued_mail_with_a_dsn(self):
        """Microsoft's 550 5.7.515 (the shipped rule): that recipient and mail queued for the
        destination afterwards fail at once, without a connection, each with a DSN that says why;
        the log says why too."""
        peer = self.net.peer("bounce-test.olc.protection.outlook.com", rcpt=[(
            "first@*", "550 5.7.515 Access denied, sending domain [SENDER.TEST] does not meet the "
                       "required authentication level. The sender's domain in the 5322.From "
                       "address doesn't meet the authentication requirements defined for the "
                       "sender. To learn more, see https://aka.ms/EXOSmtpErrors")])
        self.net.mx("bounce.test", peer, 10)
        self.start_with(rules=[{"match": {"domain": "bounce.test"}}], retry=["60s"],
                        expire="120s")
        send(self.d, SENDER, ["first@bounce.test"])
        fired = self.d.wait_event("delivery.rule", 15, rule="microsoft-5.7.515")[0]
        self.assertEqual(fired["action"], "bounce")
        self.assertIn("DMARC", fired["reason"])
        send(self.d, SENDER, ["second@bounce.test"])
        self.wait(lambda: len(self.home.delivered()) >= 2, 20, "two DSNs")
        self.assertEqual([a for tx in peer.transactions() for a, _, _ in tx.rcpts],
                         ["first@bounce.test"], "the queued mail never reached the receiver")
        self.assertEqual(len(peer.sessions), 1, "no connection for the bounced mail")
        for _, tx in self.home.delivered():
            text = re.sub(rb"\s+", b" ", tx.data)  # unfolded
            self.assertIn(b"Status: 5.7.515", text)
            self.assertIn(b"(reply rule microsoft-5.7.515: Microsoft requires SPF, DKIM", text)
        self.assertIn("bouncing_ms", self.destination("bounce.test"))
        explained = self.explain("bounce.test")
        self.assertRegex(explained, r"  mail fails for (\d+m)?\d+s more with: 550 5.7.515 .*"
                                    r"\(reply rule microsoft-5.7.515: Microsoft requires SPF")
        self.assertIn("  reply rule microsoft-5.7.515 (bounce, shipped): 1 hits, acted 1 times\n",
                      explained)
        failed = self.d.events("delivery.failed")
        self.assertEqual(sorted(f["rcpt"] for f in failed),
                         ["first@bounce.test", "second@bounce.test"])

    # ---- every shipped rule ----

    SHIPPED = [  # rule, its provider's MX host, the reply, action, matches needed
        ("yahoo-tss04", "mta5.am0.yahoodns.net", TSS04, "suspend", 1),
        ("yahoo-tss05", "mta6.am0.yahoodns.net",
         "421 4.7.0 [TSS05] Messages from 127.0.0.10 temporarily deferred due to user complaints "
         "- 4.16.56.1; see https://postmaster.yahooinc.com/error-codes", "backoff", 1),
        ("yahoo-ipts04", "mta7.am0.yahoodns.net",
         "421 4.7.0 [IPTS04] Messages from 127.0.0.10 temporarily deferred due to unexpected "
         "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
         "suspend", 1),
        ("gmail-4.7.28", "gmail-smtp-in.l.google.com", GMAIL_RATE, "backoff", 1),
        ("gmail-4.7.0-unusual-rate", "alt1.gmail-smtp-in.l.google.com",
         "421 4.7.0 [127.0.0.10] Our system has detected an unusual rate of unsolicited mail "
         "originating from your IP address. To protect our users from spam, mail sent from your "
         "IP address has been temporarily blocked.", "backoff", 1),
        ("microsoft-4.7.650", "hotmail-com.olc.protection.outlook.com",
         "451 4.7.650 The mail server [127.0.0.10] has been temporarily rate limited due to IP "
         "reputation. For e-mail delivery information, see https://postmaster.live.com",
         "backoff", 1),
        ("microsoft-s775", "outlook-com.olc.protection.outlook.com",
         "451 4.7.500 Server busy. Please try again later from [127.0.0.10]. (S775) "
         "[Name=Protocol Filter Agent][AGT=PFA]", "backoff", 1),
        ("microsoft-s3150", "live-com.olc.protection.outlook.com",
         "550 5.7.1 Unfortunately, messages from [127.0.0.10] weren't sent. Please contact your "
         "Internet service provider since part of their network is on our block list (S3150).",
         "suspend", 1),
        ("microsoft-5.7.515", "example-com.mail.protection.outlook.com",
         "550 5.7.515 Access denied, sending domain [SENDER.TEST] does not meet the required "
         "authentication level.", "bounce", 1),
        ("comcast-rl000003", "mx1.comcast.net",
         "421 4.7.0 mx1.comcast.net comcast 127.0.0.10 Comcast RL000003 "
         "http://postmaster.comcast.net/smtp-error-codes.php#RL000003", "backoff", 2),
        ("comcast-rl000010", "mx2.comcast.net",
         "452 4.2.2 Too many recipients for this connection, please retry later. RL000010 "
         "http://postmaster.comcast.net/smtp-error-codes.php#RL000010", "backoff", 2),
        ("apple-hcm1", "mx01.mail.icloud.com",
         "421 4.7.0 Too many messages from this host, please try again later (HCM1)", "backoff",
         1),
        ("orange-too-many", "smtp-in.orange.fr",
         "421 mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. OFR004_104",
         "backoff", 1),
        ("gmx-webde-throttle", "mx00.emig.gmx.net",
         "421 gmx.net (mxgmx110) Nemesis ESMTP Service not available; Reject due to policy "
         "restrictions", "backoff", 1),
    ]

    def test_each_shipped_rule_acts_on_its_providers_reply(self):
        """One domain per shipped rule, hosted at that provider's MX host, whose receiver answers
        "trigger" recipients with the provider's reply: the rule fires (a threshold rule at its
        N-th match only) and its action holds: a suspended egress address opens no connection,
        a backed-off one is down to the set's one connection, a bounce fails the mail. Two egress
        addresses: a match below a threshold throttles its address (the fallback), and the next
        match comes from the other."""
        peers = {}
        for i, (rule, mx, reply, _, _) in enumerate(self.SHIPPED):
            peers[rule] = OneShotPeer(mx, None, rcpt=[("trigger*@*", reply)])
            self.net.peers.append(peers[rule])
            self.net.mx("p%d.test" % i, peers[rule], 10)
        # Each domain its own destination (a domain rule wins over the shipped provider rule), so
        # that one rule's action does not stand in another's way.
        self.start_with(rules=[{"match": {"domain": "p%d.test" % i}}
                               for i in range(len(self.SHIPPED))],
                        egress=EGRESS, retry=["60s"], expire="120s")
        for i, (rule, _, _, _, needed) in enumerate(self.SHIPPED):
            send(self.d, SENDER, ["trigger1@p%d.test" % i])
        for i, (rule, _, _, _, needed) in enumerate(self.SHIPPED):
            self.wait(lambda: peers[rule].transactions(), 15, "%s answered" % rule)
        for i, (rule, _, _, _, needed) in enumerate(self.SHIPPED):
            if needed == 2:
                hits = [r for r in self.destination("p%d.test" % i)["reply_rules"]
                        if r["rule"] == rule]
                self.assertEqual([(r["hits"], r["fired"]) for r in hits], [(1, 0)],
                                 "%s: one match, below its threshold" % rule)
                self.assertEqual(self.d.events("delivery.rule", rule=rule), [])
                send(self.d, SENDER, ["trigger2@p%d.test" % i])
        for i, (rule, mx, _, action, _) in enumerate(self.SHIPPED):
            key = "p%d.test" % i
            fired = self.d.wait_event("delivery.rule", 15, rule=rule)
            self.assertEqual(len(fired), 1, rule)
            self.assertEqual((fired[0]["action"], fired[0]["destination"], fired[0]["mx"]),
                             (action, key, mx))
            self.assertTrue(fired[0]["reason"], rule)
            dest = self.destination(key)
            listed = [r for r in dest["reply_rules"] if r["rule"] == rule]
            self.assertEqual(len(listed), 1, "%s listed for %s: %r" % (rule, key, dest))
            self.assertTrue(listed[0]["shipped"])
            egress = [e for e in dest["egress"] if e["address"] == fired[0]["egress"]][0]
            if action == "suspend":
                self.assertEqual(egress["suspended_by"], "reply rule " + rule)
            elif action == "backoff":
                self.assertEqual((egress["cap"], egress["backoff_by"]), (1, "reply rule " + rule))
            else:
                self.assertIn("bouncing_ms", dest)
        # On the wire: a suspended egress address opens no connection for new mail, which goes
        # from the other address.
        suspended = [(i, rule) for i, (rule, _, _, action, _) in enumerate(self.SHIPPED)
                     if action == "suspend"]
        struck = {rule: self.d.events("delivery.rule", rule=rule)[0]["egress"]
                  for _, rule in suspended}
        before = {rule: len(peers[rule].sessions) for _, rule in suspended}
        for i, rule in suspended:
            peers[rule].rcpt_rules = []
            send(self.d, SENDER, ["after@p%d.test" % i])
        for i, rule in suspended:
            self.wait(lambda: "after@p%d.test" % i in peers[rule].delivered_rcpts(), 15,
                      "%s: new mail delivered from the other address" % rule)
            new = peers[rule].sessions[before[rule]:]
            self.assertEqual([s.client[0] for s in new if s.client[0] == struck[rule]], [],
                             "%s: the suspended address connected" % rule)
        self.assertEqual(len(self.d.events("delivery.rule")), len(self.SHIPPED))

    # ---- configuration ----

    def test_bad_regex_names_file_line_column(self):
        self.net.start()
        d = self.start_sluice(start=False, config=self.net.sluice_config())
        path = os.path.join(d.dir, "bad-rules.yaml")
        with open(path, "w") as f:
            f.write("shaping:\n  reply_rules:\n    - name: broken\n      action: suspend\n"
                    "      text: 'unusual (rate'\n")
        res = d.cli("check-config", config=path)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("%s:5:13: shaping.reply_rules[0].text: not a valid regular expression"
                      % path, res.stderr.decode())


if __name__ == "__main__":
    main()
