"""
The admin API's listing streamed (docs/http.md): GET /api/v1/queue/messages is sent as the
scheduler writes it, chunked, a slice at a time, the next slice only once h2o has taken the one
before. Against the real daemon with python's http.client on sockets with a small receive buffer:
a slow reader pages through 3,000 queued messages (a third in memory, the rest on disk) and gets
every one once, in order, the same pages as `sluice queue list --json`, while the daemon answers
other requests meanwhile; readers that leave mid-answer or before it (a reset before the head), or
stop reading, cost nothing after (their connections close, the next request is answered, the
daemon stops at once, no leak under ASan).
"""
import http.client
import json
import socket
import struct
import time

from harness import main
from mailnet import MailNetCase
from test_admin_load import control, qid, write_queue
from test_http import TOKEN, get, http_section

DOMAIN = "held.test"
MESSAGES = 3000
IN_MEMORY = 1000  # due within the active window; the others wait on disk
PAGE = 1000
MAX_CONNECTIONS = 8


def slow_connection(d, rcvbuf=4096, timeout=30):
    """An http.client connection to d's API whose socket takes little at a time, so that the
    daemon's writes wait for the reader."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(d.http_addr)
    conn = http.client.HTTPConnection(*d.http_addr, timeout=timeout)
    conn.sock = s
    return conn


def page_path(after=""):
    return "/api/v1/queue/messages?limit=%d%s" % (PAGE, "&after=" + after if after else "")


def ask_page(conn, after=""):
    conn.request("GET", page_path(after), headers={"Authorization": "Bearer " + TOKEN})
    return conn.getresponse()


def parse_chunked(data):
    """The chunks of a chunked body (RFC 9112 §7.1), ending with the empty last one."""
    chunks, pos = [], 0
    while len(chunks) < 100000:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        chunks.append(data[eol + 2:eol + 2 + size])
        pos = eol + 2 + size + 2
        if size == 0:
            return chunks
    raise AssertionError("no last chunk")


def slow_get(d, path, pause):
    """GET path on a socket with a small receive buffer, read a little at a time, pause() between
    reads: (head lines, the body's chunks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(d.http_addr)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Connection: close\r\n\r\n" % (path, TOKEN)).encode())
        got, reads = [], 0
        while reads < 100000:
            piece = s.recv(2048)
            if not piece:
                break
            got.append(piece)
            reads += 1
            pause(reads)
    head, _, body = b"".join(got).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, parse_chunked(body)


def reset(conn):
    """Closes conn's socket at once, with a reset: the client leaves mid-answer."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


class StreamedListing(MailNetCase):
    def start_held(self, rcpts=2, **http):
        net = self.make_net()
        peer = net.peer("mx." + DOMAIN)
        net.mx(DOMAIN, peer, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"], expire="5d")
        cfg["delivery"]["active_window"] = "1h"  # the first IN_MEMORY messages (write_queue)
        d = self.d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d, **http)
        write_queue(d.spool, MESSAGES, IN_MEMORY, rcpts, (DOMAIN,))
        d.start(timeout=120)
        ok, why = control(d.spool, "suspend " + DOMAIN)
        self.assertTrue(ok, why)
        self.wait(lambda: json.loads(control(d.spool, "list 1")[1])["active"]["in_memory"]
                  >= IN_MEMORY, 60, "the first messages read into memory")
        return d

    def answered(self, d):
        """The daemon answers a small request at once."""
        started = time.monotonic()
        status, _, body = get(d, "/api/v1/queue/messages?limit=3", token=TOKEN)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(json.loads(body)["messages"]), 3)
        return time.monotonic() - started

    def http_connections(self, d):
        """The daemon's HTTP connections as /metrics counts them."""
        status, _, body = get(d, "/metrics", token=TOKEN)
        self.assertEqual(status, 200, body)
        lines = [line for line in body.decode().split("\n")
                 if line.startswith("sluice_http_connections ")]
        self.assertEqual(len(lines), 1, body)
        return int(float(lines[0].split()[1]))

    def answered_at_once(self, d, n):
        """The statuses of n small requests on n connections open together."""
        conns = [http.client.HTTPConnection(*d.http_addr, timeout=5) for _ in range(n)]
        statuses = []
        try:
            for conn in conns:
                conn.connect()
            for conn in conns:
                conn.request("GET", "/api/v1/queue/messages?limit=1",
                             headers={"Authorization": "Bearer " + TOKEN})
                res = conn.getresponse()
                res.read()
                statuses.append(res.status)
            return statuses
        except (ConnectionError, http.client.HTTPException) as e:
            return statuses + [repr(e)]
        finally:
            for conn in conns:
                conn.close()

    def test_slow_reader_pages_through_every_message_once_in_order(self):
        d = self.start_held()

        def pause(reads):
            if reads == 1:
                # The reader dawdles while the daemon waits for it: others are answered.
                time.sleep(0.5)
                self.assertLess(self.answered(d), 2.0)
            elif reads % 20 == 0:
                time.sleep(0.01)

        ids, after, pages = [], "", 0
        while pages < MESSAGES // PAGE + 2:
            status, headers, chunks = slow_get(d, page_path(after), pause)
            self.assertEqual(status, "HTTP/1.1 200 OK")
            self.assertEqual(headers["content-type"], "application/json")
            # Streamed: sent a slice at a time as the scheduler writes it, not whole at the end.
            self.assertGreater(len(chunks), 5)
            body = b"".join(chunks)
            page = json.loads(body)
            pages += 1
            self.assertEqual("destinations" in page, after == "", "destinations on page 1")
            # The same page as the control socket's.
            ok, payload = control(d.spool, "list %d %s" % (PAGE, after))
            self.assertTrue(ok, payload)
            same = json.loads(payload)
            self.assertEqual(page["messages"], same["messages"])
            self.assertEqual(page["next"], same["next"])
            ids += [m["id"] for m in page["messages"]]
            if page["next"] is None:
                break
            after = page["next"]
        self.assertEqual(ids, [qid(n) for n in range(MESSAGES)])
        self.assertTrue(any(not m.get("in_memory", True) for m in page["messages"]),
                        "the last page is read from disk")

    def test_readers_that_leave_or_stall_cost_nothing_after(self):
        # Pages of ~9 MB: more than the kernel's buffers hold for a reader that takes nothing.
        d = self.start_held(rcpts=100, request_timeout="1s", max_connections=MAX_CONNECTIONS)
        # Leaving after the head, with or without the first bytes.
        for n in range(10):
            conn = slow_connection(d)
            res = ask_page(conn)
            self.assertEqual(res.status, 200)
            if n % 2 == 0:
                self.assertTrue(res.read(100))
            reset(conn)
            self.assertLess(self.answered(d), 2.0)
        # Leaving before the head: the request sent, the connection reset at once or a few ms
        # later, while the daemon walks the queue for a page (one read from disk).
        for n in range(5):
            conn = slow_connection(d)
            conn.request("GET", page_path(qid(IN_MEMORY - 1)),
                         headers={"Authorization": "Bearer " + TOKEN})
            time.sleep(n * 0.002)
            reset(conn)
        # A reader that takes nothing for http.request_timeout is cut off: what it gets then is an
        # answer cut short.
        conn = slow_connection(d, timeout=10)
        res = ask_page(conn)
        self.assertEqual(res.status, 200)
        time.sleep(3)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            res.read()
        conn.close()
        self.assertLess(self.answered(d), 2.0)
        # A whole page still comes whole.
        status, _, body = get(d, "/api/v1/queue/messages?limit=%d" % PAGE, token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)["messages"]), PAGE)
        # The connections of those that left are closed: the gauge counts only the one asking, and
        # http.max_connections can be opened at once (once the connections that asked have closed).
        self.wait(lambda: self.http_connections(d) == 1, 10, "the connections left closed",
                  step=0.2)
        self.wait(lambda: self.answered_at_once(d, MAX_CONNECTIONS) == [200] * MAX_CONNECTIONS,
                  10, "http.max_connections answered at once", step=0.2)
        # Nothing left waiting on a reader: the daemon stops at once (cleanup checks ASan's log).
        started = time.monotonic()
        self.assertEqual(d.stop(timeout=15), 0)
        self.assertLess(time.monotonic() - started, 10)


if __name__ == "__main__":
    main()
