"""
The admin API (docs/http.md) against the real daemon with python's http.client: suspend, resume
and retry by destination or message, the destinations and a reload, answered as `sluice queue` answers the
same operations (the same scheduler functions behind both), with a bearer token only (401
otherwise), 400 for a bad parameter and 404 for an unknown message or destination.
"""
import json

from harness import main
from mailnet import MailNetCase, send
from test_http import TOKEN, get, http_section

SENDER = "ops@sender.test"


def start_small_window(case, net):
    """case's daemon on the started net, with the admin API; deferred mail retries in an hour and
    waits on disk (active window of 30 s, at most 4 messages in memory)."""
    cfg = net.sluice_config(retry=["1h"], expire="5d")
    cfg["delivery"].update({"active_limit": 4, "active_window": "30s"})
    d = case.d = case.start_sluice(start=False, config=cfg)
    d.extra["http"] = http_section(d)
    d.start()
    return d


class ApiClient:
    """The admin API and `sluice queue` of the test's daemon (self.d)."""

    def api(self, method, path, token=TOKEN):
        status, _, body = get(self.d, path, token=token, method=method)
        return status, json.loads(body.decode()) if body else None

    def cli(self, *args):
        res = self.d.cli("queue", *args)
        return res.returncode, res.stdout.decode(), res.stderr.decode()

    def listed(self):
        """`sluice queue list --json`."""
        rc, out, err = self.cli("list", "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def pages(self, query, limit):
        """Every page of GET /api/v1/queue/messages?limit=limit&query, following "next"."""
        got, after = [], ""
        for _ in range(50):
            status, doc = self.api("GET", "/api/v1/queue/messages?limit=%d%s%s" % (
                limit, "&after=" + after if after else "", query))
            self.assertEqual(status, 200, doc)
            got.append(doc["messages"])
            if doc["next"] is None:
                return got
            after = doc["next"]
        self.fail("more than 50 pages")


class AdminApi(ApiClient, MailNetCase):
    def test_queue_operations_answer_as_the_command_line(self):
        net = self.make_net()
        peer = net.peer("mx.api.test", defer_first=1)
        net.mx("api.test", peer, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"], expire="5d")
        d = self.d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d)
        d.start()

        self.assertEqual(self.api("POST", "/api/v1/queue/suspend?destination=a.test", token=None)[0],
                         401)
        self.assertEqual(self.api("GET", "/api/v1/queue/suspend?destination=a.test")[0], 405)

        # Suspend a name no mail has gone to, by API and by command line: the same words.
        status, doc = self.api("POST", "/api/v1/queue/suspend?destination=a.test")
        self.assertEqual(status, 200, doc)
        rc, out, err = self.cli("suspend", "b.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["result"], out.replace("b.test", "a.test"))
        status, doc = self.api("POST", "/api/v1/queue/suspend?destination=a.test&seconds=90")
        self.assertEqual((status, doc["result"].splitlines()[0]), (200, "a.test suspended for 90 s"))

        # Resume: once by API, once by command line; a second time both say no such destination.
        status, doc = self.api("POST", "/api/v1/queue/resume?destination=a.test")
        self.assertEqual((status, doc["result"]), (200, "a.test resumed\n"))
        rc, out, err = self.cli("resume", "b.test")
        self.assertEqual((rc, out), (0, "b.test resumed\n"), err)
        status, doc = self.api("POST", "/api/v1/queue/resume?destination=a.test")
        rc, out, err = self.cli("resume", "a.test")
        self.assertEqual((status, rc), (404, 1))
        self.assertEqual("sluice: %s\n" % doc["error"], err)

        # A deferred message: its destination shows alike, and retry answers alike.
        send(d, SENDER, ["x@api.test"])
        d.wait_event("delivery.deferred", rcpt="x@api.test")
        qid = d.events("delivery.deferred")[0]["queue_id"]
        status, doc = self.api("GET", "/api/v1/queue/destinations")
        self.assertEqual(status, 200, doc)
        rc, out, err = self.cli("list", "--json")
        self.assertEqual(rc, 0, err)
        listed = json.loads(out)["destinations"]
        self.assertEqual([x["destination"] for x in doc["destinations"]],
                         [x["destination"] for x in listed])
        self.assertIn("api.test", [x["destination"] for x in listed])
        status, doc = self.api("POST", "/api/v1/queue/retry?id=" + qid)
        self.assertEqual((status, doc["result"]), (200, "%s scheduled for delivery now\n" % qid))
        self.wait(lambda: peer.delivered_rcpts() == ["x@api.test"], 20, "delivered once retried")
        self.wait_spool_empty(10)
        status, doc = self.api("POST", "/api/v1/queue/retry?id=" + qid)
        rc, out, err = self.cli("retry", qid)
        self.assertEqual((status, rc), (404, 1))
        self.assertEqual("sluice: %s\n" % doc["error"], err)
        status, doc = self.api("POST", "/api/v1/queue/retry?id=all")
        self.assertEqual((status, doc["result"]), (200, "0 messages scheduled for delivery now\n"))

        # A reload, as SIGHUP.
        reloads = len(d.events("daemon.reload"))
        status, doc = self.api("POST", "/api/v1/reload")
        self.assertEqual(status, 200, doc)
        d.wait_event("daemon.reload", count=reloads + 1)

        # Bad parameters.
        for path in ("/api/v1/queue/retry", "/api/v1/queue/retry?id=abc", "/api/v1/queue/retry?id=A%20B",
                     "/api/v1/queue/suspend", "/api/v1/queue/suspend?destination=a.test&seconds=0",
                     "/api/v1/queue/suspend?destination=a.test&seconds=2592001",
                     "/api/v1/queue/suspend?destination=a.test&seconds=1x",
                     "/api/v1/queue/resume?destination=%00"):
            status, doc = self.api("POST", path)
            self.assertEqual(status, 400, (path, doc))
            self.assertIn("error", doc)

    def test_paged_listing_with_filters_as_the_command_line(self):
        net = self.make_net()
        ok = net.peer("mx.ok.test")
        slow = net.peer("mx.slow.test", defer_first=100)
        net.mx("ok.test", ok, 10)
        net.mx("slow.test", slow, 10)
        net.start()
        d = start_small_window(self, net)
        for i in range(6):
            send(d, SENDER, ["x%d@slow.test" % i])
        for i in range(4):
            send(d, SENDER, ["y%d@ok.test" % i, "z%d@Slow.test" % i])
        d.wait_event("delivery.deferred", count=10, timeout=30)

        # Deferred for an hour, beyond the window: read back from disk for every listing.
        self.wait(lambda: self.listed()["active"]["on_disk"] == 10, 30, "every message on disk")
        listed = self.listed()["messages"]
        self.assertEqual(len(listed), 10)

        pages = self.pages("", 3)
        self.assertEqual([len(p) for p in pages], [3, 3, 3, 1])
        self.assertEqual([m for p in pages for m in p], listed)

        def matching(domain, state):
            return [m for m in listed if any(
                (not domain or r["rcpt"].split("@")[1].lower() == domain) and
                (not state or r["status"] == state) for r in m["rcpts"])]
        for query, domain, state in (("&destination=ok.test&state=delivered", "ok.test", "delivered"),
                                     ("&destination=SLOW.test", "slow.test", None),
                                     ("&state=deferred", None, "deferred"),
                                     ("&destination=ok.test&state=deferred", "ok.test", "deferred"),
                                     ("&destination=none.test", "none.test", None)):
            want = matching(domain, state)
            pages = self.pages(query, 2)
            # Every page but the last is full: the walk goes on past what does not match.
            self.assertTrue(all(len(p) == 2 for p in pages[:-1]), (query, pages))
            self.assertEqual([m for p in pages for m in p], want, query)
        self.assertEqual(len(matching("ok.test", "delivered")), 4)
        self.assertEqual(matching("ok.test", "deferred"), [])

        for path in ("limit=0", "limit=1001", "limit=x", "after=abc", "state=waiting",
                     "destination=a%20b"):
            status, doc = self.api("GET", "/api/v1/queue/messages?" + path)
            self.assertEqual(status, 400, (path, doc))

        # One message and why it waits: its recipients as listed, and the destination it still
        # waits for (not the one it was delivered to) in the words of `sluice queue destinations`.
        both = matching("ok.test", "delivered")[0]
        self.assertEqual(self.api("POST", "/api/v1/queue/suspend?destination=slow.test")[0], 200)

        def shown():
            status, doc = self.api("GET", "/api/v1/queue/messages/" + both["id"])
            self.assertEqual(status, 200, doc)
            rc, out, err = self.cli("destinations", "slow.test")
            self.assertEqual(rc, 0, err)
            return doc, out
        doc, out = shown()
        for _ in range(5):  # a backoff's time left may tick between the two answers
            if doc["destinations"][0]["why"] == out:
                break
            doc, out = shown()
        self.assertEqual(doc["message"], both)
        self.assertEqual([x["destination"] for x in doc["destinations"]], ["slow.test"])
        dest = doc["destinations"][0]
        self.assertEqual(dest["why"], out)
        self.assertIn("suspended by an administrator", dest["why"])
        self.assertEqual(dest["state"]["suspended"], "admin")
        slow_rcpt = [r for r in doc["message"]["rcpts"] if r["rcpt"].endswith("slow.test")][0]
        self.assertEqual((slow_rcpt["status"], slow_rcpt["attempts"]), ("deferred", 1))
        self.assertIn("451", slow_rcpt["reply"])
        self.assertIn("next_attempt", slow_rcpt)

        status, doc = self.api("GET", "/api/v1/queue/messages/AAAAAAAAAAAAAAAA")
        self.assertEqual((status, doc["error"]), (404, "no message AAAAAAAAAAAAAAAA in the queue"))
        self.assertEqual(self.api("GET", "/api/v1/queue/messages/abc")[0], 400)
        self.assertEqual(self.api("GET", "/api/v1/queue/messages/%s/x" % both["id"])[0], 404)


class TenantListingAndBounce(ApiClient, MailNetCase):
    """The listing filtered by tenant and campaign (as `queue list --json` filtered here), and
    bounces by message id (HTTP and command line) and by tenant: the sender gets the DSN."""

    def send(self, tenant, campaign, rcpt):
        head = b""
        if tenant:
            head += b"X-Sluice-Tenant: %s\r\n" % tenant.encode()
        if campaign:
            head += b"X-Sluice-Campaign: %s\r\n" % campaign.encode()
        send(self.d, SENDER, [rcpt], head + b"Subject: hi\r\n\r\nbody\r\n")

    def dsn_for(self, rcpt):
        """The DSN to SENDER that names rcpt, once it has arrived at the sender's MX."""
        got = self.wait(lambda: [tx for a, tx in self.sink.delivered()
                                 if a == SENDER and rcpt.encode() in tx.data], 30,
                        "a DSN for %s" % rcpt)
        return got[0].data

    def test_listing_by_tenant_and_bounce_by_message(self):
        net = self.make_net()
        self.sink = net.peer("mx.sender.test")
        slow = net.peer("mx.slow.test", defer_first=100)
        net.mx("sender.test", self.sink, 10)
        net.mx("slow.test", slow, 10)
        net.mx("held.test", slow, 10)
        net.mx("other.test", slow, 10)
        net.start()
        d = start_small_window(self, net)
        sent = [("acme", "spring"), ("acme", "spring"), ("acme", "fall"), ("bravo", "spring"),
                ("bravo", ""), ("", "")]
        for i, (tenant, campaign) in enumerate(sent):
            self.send(tenant, campaign, "r%d@slow.test" % i)
        d.wait_event("delivery.deferred", count=len(sent), timeout=30)
        # Deferred for an hour: every one waits on disk, read back for each listing.
        self.wait(lambda: self.listed()["active"]["on_disk"] == len(sent), 30, "all on disk")
        listed = self.listed()["messages"]

        for query, tenant, campaign in (("&tenant=acme", "acme", None),
                                        ("&tenant=acme&campaign=spring", "acme", "spring"),
                                        ("&campaign=spring", None, "spring"),
                                        ("&tenant=bravo&state=deferred", "bravo", None),
                                        ("&tenant=nobody", "nobody", None)):
            want = [m for m in listed if (tenant is None or m["tenant"] == tenant) and
                    (campaign is None or m["campaign"] == campaign)]
            got = [m for p in self.pages(query, 1) for m in p]
            self.assertEqual(got, want, query)
        self.assertEqual(len([m for p in self.pages("&tenant=acme", 2) for m in p]), 3)
        for path in ("tenant=", "tenant=a%20b", "campaign=%0a", "tenant=" + "x" * 300):
            status, doc = self.api("GET", "/api/v1/queue/messages?" + path)
            self.assertEqual(status, 400, (path, doc))

        # Bounce one message on disk over HTTP, another from the command line.
        first, second = [m for m in listed if m["tenant"] == "acme" and m["campaign"] == "spring"]
        for path in ("id=abc", "id=%s&tenant=acme" % first["id"], "campaign=spring", ""):
            status, doc = self.api("POST", "/api/v1/queue/bounce?" + path)
            self.assertEqual(status, 400, (path, doc))
        self.assertEqual(self.api("POST", "/api/v1/queue/bounce?id=" + first["id"], token=None)[0],
                         401)
        status, doc = self.api("POST", "/api/v1/queue/bounce?id=" + first["id"])
        self.assertEqual((status, doc["result"]), (200, "%s bounced\n" % first["id"]))
        rc, out, err = self.cli("bounce", second["id"])
        self.assertEqual((rc, out), (0, "%s bounced\n" % second["id"]), err)
        for m in (first, second):
            rcpt = m["rcpts"][0]["rcpt"]
            dsn = self.dsn_for(rcpt)
            self.assertIn(b"5.0.0", dsn)
            self.assertIn(b"bounced by an administrator", dsn)
            d.wait_event("queue.bounced", queue_id=m["id"])
        self.wait(lambda: not [m for m in self.listed()["messages"]
                               if m["id"] in (first["id"], second["id"])], 30, "both gone")
        self.assertEqual(len(self.listed()["messages"]), len(sent) - 2, "the others still wait")

        # A message in memory, its job queued at a suspended destination: bounced at once.
        self.assertEqual(self.api("POST", "/api/v1/queue/suspend?destination=held.test")[0], 200)
        self.send("acme", "spring", "h@held.test")
        held = self.wait(lambda: [m for m in self.listed()["messages"]
                                  if m["rcpts"][0]["rcpt"] == "h@held.test" and m["in_memory"]],
                         30, "the held message in memory")[0]
        # A page where messages read from disk come before one in memory: all of them, in order.
        listing = self.listed()["messages"]
        self.assertEqual(len(listing), len(sent) - 1, listing)
        self.assertEqual([m["id"] for m in listing], sorted(m["id"] for m in listing))
        self.assertEqual((listing[0]["in_memory"], listing[-1]["id"]), (False, held["id"]))
        status, doc = self.api("POST", "/api/v1/queue/bounce?id=" + held["id"])
        self.assertEqual((status, doc["result"]), (200, "%s bounced\n" % held["id"]))
        self.assertIn(b"5.0.0", self.dsn_for("h@held.test"))

        # Gone now: 404, alike on the command line.
        status, doc = self.api("POST", "/api/v1/queue/bounce?id=" + first["id"])
        rc, out, err = self.cli("bounce", first["id"])
        self.assertEqual((status, rc), (404, 1))
        self.assertEqual(err, "sluice: %s\n" % doc["error"])
        self.assertEqual(self.api("POST", "/api/v1/queue/bounce?id=AAAAAAAAAAAAAAAA")[0], 404)

        # By tenant and campaign over HTTP, the words of `sluice queue bounce --tenant`: the
        # message waits on disk, beyond the active window, and is bounced all the same.
        words = r"^bouncing the waiting mail %s: \d+ messages in memory, \d+ queued ids to check on disk\n$"
        status, doc = self.api("POST", "/api/v1/queue/bounce?tenant=bravo&campaign=spring")
        self.assertEqual(status, 200, doc)
        self.assertRegex(doc["result"], words % "of bravo, campaign spring")
        rc, out, err = self.cli("bounce", "--tenant", "acme", "--campaign", "fall")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, words % "of acme, campaign fall")
        for tenant, campaign in (("bravo", "spring"), ("acme", "fall")):
            done = d.wait_event("queue.bounce_done", tenant=tenant, campaign=campaign)[0]
            self.assertEqual((done["in_memory"], done["on_disk"]), (0, 1), done)
        for rcpt in ("r3@slow.test", "r2@slow.test"):
            self.assertIn(b"bounced by an administrator", self.dsn_for(rcpt))

        # By destination: only the recipients at that domain fail, of every message on disk.
        send(d, SENDER, ["x@slow.test", "y@other.test"])
        mixed_rcpt = "y@other.test"
        self.wait(lambda: [m for m in self.listed()["messages"]
                           if mixed_rcpt in [r["rcpt"] for r in m["rcpts"]] and not m["in_memory"]],
                  30, "the mixed message on disk")
        for path in ("destination=slow.test&id=" + first["id"], "destination=a%20b",
                     "destination=slow.test&campaign=x"):
            status, doc = self.api("POST", "/api/v1/queue/bounce?" + path)
            self.assertEqual(status, 400, (path, doc))
        for args, why in ((("retry", "--destination", "slow.test"), "--destination goes with bounce only"),
                          (("bounce", first["id"], "--destination", "slow.test"), "not both")):
            rc, out, err = self.cli(*args)
            self.assertEqual(rc, 2, (args, out))
            self.assertIn(why, err)
        rc, out, err = self.cli("bounce", "--destination", "slow.test", "--tenant", "bravo")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, words % "for slow.test of bravo")
        self.assertIn(b"r4@slow.test", self.dsn_for("r4@slow.test"))
        status, doc = self.api("POST", "/api/v1/queue/bounce?destination=SLOW.test")
        self.assertEqual(status, 200, doc)
        self.assertRegex(doc["result"], words % "for SLOW.test")
        for rcpt in ("r5@slow.test", "x@slow.test"):
            self.assertIn(b"bounced by an administrator", self.dsn_for(rcpt))
        d.wait_event("queue.bounce_done", destination="SLOW.test")
        mixed = self.wait(lambda: [m for m in self.listed()["messages"]
                                   if m["rcpts"][0]["rcpt"] == "x@slow.test"
                                   and m["rcpts"][0]["status"] == "bounced"], 30, "x bounced")[0]
        self.assertIn(mixed["rcpts"][1]["status"], ("deferred", "pending"), mixed)
        self.assertFalse([m for m in self.listed()["messages"]
                          if any(r["rcpt"].endswith("@slow.test") and r["status"] != "bounced"
                                 for r in m["rcpts"])], "nothing waits for slow.test")
        self.assertFalse([tx for a, tx in self.sink.delivered() if b"y@other.test" in tx.data])


class TenantHolds(ApiClient, MailNetCase):
    """Suspend and resume of a tenant's mail (or a campaign's) over HTTP: the words of `sluice queue
    suspend|resume --tenant T [--campaign C]`, one implementation behind both; held mail is not
    sent until resumed."""

    def send(self, tenant, campaign, rcpt):
        head = b"X-Sluice-Tenant: %s\r\n" % tenant.encode()
        if campaign:
            head += b"X-Sluice-Campaign: %s\r\n" % campaign.encode()
        send(self.d, SENDER, [rcpt], head + b"Subject: hi\r\n\r\nbody\r\n")

    def test_tenant_suspend_and_resume_over_http(self):
        net = self.make_net()
        peer = net.peer("mx.live.test")
        net.mx("live.test", peer, 10)
        net.start()
        d = self.d = self.start_sluice(start=False, config=net.sluice_config())
        d.extra["http"] = http_section(d)
        d.start()

        status, doc = self.api("POST", "/api/v1/queue/suspend?tenant=acme&campaign=spring")
        self.assertEqual(status, 200, doc)
        rc, out, err = self.cli("suspend", "--tenant", "bravo", "--campaign", "spring")
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["result"], out.replace("bravo", "acme"))
        self.assertEqual(doc["result"], "campaign spring of acme suspended until resumed\n")
        status, doc = self.api("POST", "/api/v1/queue/suspend?tenant=acme")
        self.assertEqual((status, doc["result"]), (200, "tenant acme of acme suspended until resumed\n"))
        d.wait_event("delivery.tenant_suspend", tenant="acme", campaign="")

        self.send("acme", "spring", "a@live.test")
        self.send("zulu", "", "z@live.test")
        self.wait(lambda: peer.delivered_rcpts() == ["z@live.test"], 20, "the other tenant's mail")
        # Released from the command line, the campaign's hold still by HTTP: still held.
        rc, out, err = self.cli("resume", "--tenant", "acme")
        self.assertEqual((rc, out), (0, "tenant acme of acme resumed\n"), err)
        status, doc = self.api("POST", "/api/v1/queue/resume?tenant=acme")
        rc, out, err = self.cli("resume", "--tenant", "acme")
        self.assertEqual((status, rc), (404, 1))
        self.assertEqual(err, "sluice: %s\n" % doc["error"])
        self.assertEqual(self.listed()["messages"][0]["rcpts"][0]["rcpt"], "a@live.test")
        status, doc = self.api("POST", "/api/v1/queue/resume?tenant=acme&campaign=spring")
        self.assertEqual((status, doc["result"]), (200, "campaign spring of acme resumed\n"))
        self.wait(lambda: sorted(peer.delivered_rcpts()) == ["a@live.test", "z@live.test"], 20,
                  "the campaign's mail once resumed")

        for path in ("suspend?tenant=acme&destination=a.test", "suspend?campaign=spring",
                     "suspend?tenant=acme&seconds=60", "resume?tenant=a%20b", "resume?tenant="):
            status, doc = self.api("POST", "/api/v1/queue/" + path)
            self.assertEqual(status, 400, (path, doc))
            self.assertIn("error", doc)


if __name__ == "__main__":
    main()
