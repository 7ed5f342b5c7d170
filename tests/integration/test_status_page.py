"""
The status page (GET /) in a real browser: Debian's chromium, headless, loads it from the running
daemon, and what the page shows is checked against GET /api/v1/status: the queue by state, a
destination a reply rule suspended with its reason, the counts of the minute under way and since
the start, and a recent alarm whose text came from the network (a feedback report about mail we
never sent, its Subject an HTML tag): shown as text, never markup.
The DOM chromium built and its screenshot stay in the build tree (tests/output/status_page/).
Chromium is given no token: http.status_page_loopback lets a client on loopback read the page,
while without it, or from elsewhere, GET / needs a token like every other route.
Skipped only when chromium is not installed (packaging/install-deps.sh installs it).
"""
import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import harness
from harness import SMTPConn, main, send_message
from mailnet import MailNetCase, send
from test_feedback import FEEDBACK, stuff, yahoo_arf
from test_http import TOKEN, families, get, held_back_config, http_section, sample

SUBJECT = "<img src=x onerror=alert(1)> spring sale"
OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(harness.sluice_bin()))),
                      "tests", "output", "status_page")


class Page(HTMLParser):
    """The parts of a status page: the text of each element with an id, the rows of each table
    with an id (cells' text), and every tag name seen."""

    def __init__(self, text):
        super().__init__()
        self.by_id, self.tables, self.tags = {}, {}, set()
        self.open_ids, self.table, self.cell = [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "table" and "id" in a:
            self.table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.table[-1].append("")
            self.cell = self.table[-1]
        if "id" in a:
            self.by_id[a["id"]] = ""
            self.open_ids.append((tag, a["id"]))

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        if tag in ("td", "th"):
            self.cell = None
        if self.open_ids and self.open_ids[-1][0] == tag:
            self.open_ids.pop()

    def handle_data(self, data):
        for _, i in self.open_ids:
            self.by_id[i] += data
        if self.cell is not None:
            self.cell[-1] += data


def chromium(*args):
    """Runs headless chromium with a profile of its own; its standard output."""
    with tempfile.TemporaryDirectory(prefix="sluice-chromium-") as profile:
        res = subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox",
                              "--disable-gpu", "--no-first-run", "--user-data-dir=" + profile]
                             + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=120)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout.decode()


class StatusPage(MailNetCase):
    def setUp(self):
        super().setUp()
        if shutil.which("chromium") is None:
            self.skipTest("no chromium (packaging/install-deps.sh test installs it)")

    def start(self, **http):
        cfg = held_back_config(self.make_net())
        cfg["domains"] = {"fb.test": None}
        cfg["feedback"] = FEEDBACK
        d = self.start_sluice(start=False, config=cfg,
                              listeners=[{"name": "submission", "role": "submission"},
                                         {"name": "mx", "role": "inbound"}])
        d.extra["http"] = http_section(d, **http)
        d.start()
        self.d = d
        return d

    def test_page_in_chromium_matches_the_api(self):
        d = self.start(status_page_loopback=True)
        send(d, "alice@example.com", ["bob@slow.test", "carol@slow.test"])
        d.wait_event("delivery.suspend", timeout=20, destination="slow.test")
        # A report about mail we never sent (no trace): an alarm-level record, its text the peer's.
        headers = ("From: News <news@sender.test>\r\nSubject: %s\r\n"
                   "Message-ID: <never@sender.test>\r\n" % SUBJECT).encode()
        with SMTPConn(*d.addr("mx")) as c:
            c.ehlo("mta1.feedback.yahoo.com")
            self.assertEqual(send_message(c, "", ["fbl@fb.test"], stuff(yahoo_arf(headers))).code,
                             250)
        d.wait_event("feedback.unrecognized")
        api = json.loads(get(d, "/api/v1/status", token=TOKEN)[2])
        self.assertEqual(api["held_destinations"][0]["reason"], "reply rule hold-slow")

        os.makedirs(OUTPUT, exist_ok=True)
        url = "http://%s:%d/" % d.http_addr
        dom = chromium("--dump-dom", url)
        with open(os.path.join(OUTPUT, "status_page.html"), "w") as f:
            f.write(dom)
        shot = os.path.join(OUTPUT, "status_page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        chromium("--window-size=1200,1000", "--screenshot=" + shot, url)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

        page = Page(dom)
        self.assertIn("<title>sluice on %s</title>" % api["hostname"], dom)
        for key in ("messages", "on_disk", "pending", "deferred", "bouncing"):
            self.assertEqual(int(page.by_id["queue-" + key]), api["queue"][key], key)
        self.assertEqual(api["queue"]["deferred"], 2)
        held = page.tables["held"][1:]
        self.assertEqual([(r[0], r[1], r[4]) for r in held],
                         [(h["destination"], str(h["queued_jobs"]), h["reason"])
                          for h in api["held_destinations"]])
        self.assertRegex(held[0][3], r"^suspended for (59m\d\ds|1h00m)$")
        # The counts of the minute under way (the last row before the totals), and since start.
        minutes = page.tables["minutes"]
        self.assertEqual(minutes[-1][1:], [str(api["totals"][k]) for k in
                                           ("received", "delivered", "deferred", "bounced")])
        self.assertEqual(minutes[-2][1:], [str(api["minutes"][-1][k]) for k in
                                           ("received", "delivered", "deferred", "bounced")])
        self.assertEqual(api["minutes"][-1]["received"], 1)
        # The alarm: its peer-supplied subject is text on the page, not an element.
        events = [r[1] for r in page.tables["alarms"][1:]]
        self.assertIn("feedback.unrecognized", events)
        self.assertEqual(events, [a["event"] for a in api["alarms"]])
        details = page.tables["alarms"][1 + events.index("feedback.unrecognized")][2]
        self.assertIn("subject=" + SUBJECT, details)
        self.assertNotIn("img", page.tags)
        self.assertNotIn("script", page.tags)

        fams = families(d)
        self.assertEqual(sample(fams, "sluice_feedback_reports", "sluice_feedback_reports_total",
                                kind="unrecognized"), 1)

    def test_a_token_is_needed_unless_loopback_is_allowed(self):
        d = self.start()
        status, headers, _ = get(d, "/")
        self.assertEqual(status, 401)
        self.assertIn("Bearer", headers["www-authenticate"])
        status, headers, body = get(d, "/", token=TOKEN)
        self.assertEqual((status, headers["content-type"]), (200, "text/html; charset=utf-8"))
        self.assertIn(b"<meta http-equiv=\"refresh\"", body)
        # Only the page: the status API still wants a token on loopback.
        d.stop()
        d = self.start(status_page_loopback=True)
        self.assertEqual(get(d, "/")[0], 200)
        self.assertEqual(get(d, "/api/v1/status")[0], 401)


if __name__ == "__main__":
    main()
