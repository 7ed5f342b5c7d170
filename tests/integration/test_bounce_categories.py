"""
Bounce categories through the real daemon: a real SMTP peer answers recipients with real provider
replies (Gmail's unknown user, over quota and spam block, plus a site-specific text that a site
pattern file, delivery.bounce_category_files, categorises), and one recipient's domain does not
exist. Each category is checked where an operator sees it: the delivery.failed/deferred log
records, the DSN's per-recipient X-Sluice-Category field (parsed with Python's email package) and
`sluice queue show`. A reload reads the site's files again; a pattern file that does not compile
refuses the configuration at check-config, naming file:line:column.
"""
import email
import os
import signal

from harness import main
from mailnet import MailNetCase, send

SENDER = "alice@sender.test"
NO_SUCH_USER = ("550 5.1.1 The email account that you tried to reach does not exist. Please try "
                "double-checking the recipient's email address for typos or unnecessary spaces. "
                "- gsmtp")
OVER_QUOTA = "452 4.2.2 The email account that you tried to reach is over quota. - gsmtp"
SPAM_BLOCK = ("550 5.7.1 Our system has detected that this message is likely unsolicited mail. "
              "To reduce the amount of spam sent to Gmail, this message has been blocked. - gsmtp")
SITE_TEXT = "550 5.7.1 Message refused by rule XYZZY-42"

WANT = {
    "gone@dest.test": "bad-mailbox",
    "spam@dest.test": "spam-related",
    "site@dest.test": "content-related",  # policy-related without the site's file
    "lost@nowhere.test": "bad-domain",    # NXDOMAIN: no server answered
}
DEFERRED = {"full@dest.test": "quota-issues"}


def unfold(value):
    return " ".join(str(value or "").split())


class BounceCategories(MailNetCase):
    def start_with_site_file(self, text):
        """A daemon on this net whose delivery.bounce_category_files names one file with text."""
        cfg = self.net.sluice_config(expire="1h")
        d = self.start_sluice(start=False, config=cfg)
        path = os.path.join(d.dir, "site-categories.conf")
        with open(path, "w") as f:
            f.write(text)
        cfg["delivery"]["bounce_category_files"] = [path]
        return d, path

    def test_category_in_log_dsn_and_queue_show(self):
        net = self.make_net()
        home = net.peer("mx.sender.test")
        dest = net.peer("mx.dest.test", rcpt=[("gone@*", NO_SUCH_USER), ("full@*", OVER_QUOTA),
                                               ("spam@*", SPAM_BLOCK), ("site@*", SITE_TEXT)])
        net.mx("sender.test", home, 10)
        net.mx("dest.test", dest, 10)
        net.start()
        self.d, _ = self.start_with_site_file("# this site's words\ncontent-related  XYZZY-[0-9]+\n")
        self.d.start()
        send(self.d, SENDER, sorted(WANT) + sorted(DEFERRED),
             b"Subject: categories\r\nFrom: <alice@sender.test>\r\n\r\nBODY-CAT\r\n")

        # The log: one record per result, with its category.
        failed = self.d.wait_event("delivery.failed", timeout=20, count=len(WANT))
        got = {e["rcpt"]: e.get("category") for e in failed}
        self.assertEqual(got, WANT)
        deferred = self.d.wait_event("delivery.deferred", timeout=20, rcpt="full@dest.test")
        self.assertEqual(deferred[0].get("category"), "quota-issues")

        # The DSN: one per-recipient block for each failed recipient, X-Sluice-Category in it.
        self.wait(lambda: [tx for tx in home.transactions() if tx.accepted()], 20, "a DSN")
        dsn = [tx for tx in home.transactions() if tx.accepted()][0]
        msg = email.message_from_bytes(dsn.data)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1)
        blocks = status[0].get_payload()[1:]
        in_dsn = {unfold(b.get("Final-Recipient")).split(";")[-1].strip(): unfold(
            b.get("X-Sluice-Category")) for b in blocks}
        self.assertEqual(in_dsn, WANT)

        # queue show: the message waits for full@, every recipient not delivered has a category.
        qid = failed[0]["queue_id"]
        shown = {}
        for line in self.d.queue_show(qid).decode().splitlines():
            if line.startswith("recipient: <"):
                addr = line[len("recipient: <"):line.index(">")]
                shown[addr] = line.split(", category: ")[1].split(",")[0] \
                    if ", category: " in line else None
        self.assertEqual(shown, dict(WANT, **DEFERRED))

    def test_reload_reads_the_site_files_again(self):
        """A site file added by a reload (SIGHUP) categorises the next result."""
        net = self.make_net()
        dest = net.peer("mx.dest.test", rcpt=[("site*", SITE_TEXT)])
        home = net.peer("mx.sender.test")
        net.mx("dest.test", dest, 10)
        net.mx("sender.test", home, 10)
        net.start()
        self.d, path = self.start_with_site_file("# nothing yet\n")
        self.d.start()
        send(self.d, SENDER, ["site1@dest.test"])
        first = self.d.wait_event("delivery.failed", timeout=20, rcpt="site1@dest.test")
        self.assertEqual(first[0].get("category"), "policy-related", "the shipped rules: 5.7.1")

        with open(path, "w") as f:
            f.write("content-related  XYZZY-[0-9]+\n")
        done = len(self.d.events("daemon.reload"))
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload", count=done + 1)
        send(self.d, SENDER, ["site2@dest.test"])
        second = self.d.wait_event("delivery.failed", timeout=20, rcpt="site2@dest.test")
        self.assertEqual(second[0].get("category"), "content-related")

    def test_broken_pattern_file_refused_with_its_position(self):
        self.make_net()
        self.net.start()
        d, path = self.start_with_site_file("bad-mailbox  no such user\n"
                                            "spam-related  (unclosed\n")
        d.write_config()
        res = d.cli("check-config")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("%s:2:15: bad pattern for spam-related" % path, res.stderr.decode())


if __name__ == "__main__":
    main()
