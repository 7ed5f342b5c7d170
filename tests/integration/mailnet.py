"""
A small Internet on loopback for outbound-delivery tests: a real DNS server (dnsmasq) that answers
for the test zone only, and scriptable SMTP peers (asyncio, in one background thread) that record
every connection, command and byte the daemon sends them.

All peers of one MailNet listen on one TCP port (the daemon's delivery.port is one number), each on
its own random 127.a.b.c address; start() retries with a new port and new addresses until every
peer binds, so tests run in parallel without clashes. Every wait is bounded.

    class T(MailNetCase):
        def test_x(self):
            net = self.make_net()
            mx = net.peer("mx1.dest.test")               # an SMTP server and its A record
            net.mx("dest.test", mx, 10)                  # dest.test MX 10 mx1.dest.test
            self.start_daemon(rate="6/s")                # dnsmasq, peers, then the daemon
            send(self.d, "a@sender.test", ["x@dest.test"])   # smtplib to its listener
            self.wait(lambda: mx.delivered(), 20, "delivered")
"""
import asyncio
import fnmatch
import random
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import harness
from certs import make_test_cert

DNSMASQ = "/usr/sbin/dnsmasq"
EGRESS = [("127.0.0.10", "out1.sluice.test"), ("127.0.0.11", "out2.sluice.test")]
SHAPING = {"retry": ["1s", "2s"], "expire": "8s", "connections": 4}  # short schedules
LINE_MAX = 100000  # a peer drops a client that sends a longer line


def wait_until(cond, timeout, what, detail=lambda: "", step=0.05):
    """Polls cond() until it is truthy and returns its value; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0fs\n%s" % (what, timeout, detail()))
        time.sleep(step)


def random_loopback():
    """A random 127.a.b.c address, avoiding 127.0.0.x (used by daemons and egress addresses)."""
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255), random.randint(1, 254))


# ---- DNS ----

class Dns:
    """dnsmasq on 127.0.0.1:<free port>: authoritative answers from the records added before
    start(), NXDOMAIN for any other name under .test, nothing forwarded anywhere."""

    def __init__(self):
        self.records = []  # dnsmasq options
        self.proc = None
        self.port = None

    def mx(self, domain, host, preference):
        self.records.append("--mx-host=%s,%s,%d" % (domain, host, preference))

    def null_mx(self, domain):
        """RFC 7505: "MX 0 ."."""
        self.records.append("--mx-host=%s,.,0" % domain)

    def host(self, name, *addresses):
        self.records.append("--host-record=%s,%s" % (name, ",".join(addresses)))

    def txt(self, name, text):
        self.records.append("--txt-record=%s,%s" % (name, text))

    def ptr(self, name, target):
        self.records.append("--ptr-record=%s,%s" % (name, target))

    def cname(self, alias, target):
        self.records.append("--cname=%s,%s" % (alias, target))

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=10.0, port=None):
        """port: the one to listen on (a restart); None: a free one."""
        for _ in range(5):
            self.port = port or _free_udp_tcp_port()
            self.proc = subprocess.Popen(
                [DNSMASQ, "--no-daemon", "--port=%d" % self.port, "--listen-address=127.0.0.1",
                 "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                 "--pid-file", "--local=/test/", "--local-ttl=1", "--log-facility=-"]
                + self.records,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.answers("probe.test") is not None:
                    return self
            err = self.stop()
            if "in use" not in err:
                raise AssertionError("dnsmasq did not start: %s" % err)
        raise AssertionError("dnsmasq: no free port after 5 attempts")

    def restart(self):
        """Serves the records as they are now (a zone change), on the same port."""
        port = self.port
        self.stop()
        return self.start(port=port)

    def answers(self, name, qtype=1, wait=0.2):
        """The rcode of a query for name (qtype 1: A, 15: MX), or None without a reply in time."""
        qid = random.randint(0, 65535)
        query = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        for label in name.strip(".").split("."):
            query += bytes([len(label)]) + label.encode()
        query += b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(wait)
            s.sendto(query, ("127.0.0.1", self.port))
            try:
                reply = s.recv(4096)
            except (socket.timeout, ConnectionRefusedError):
                return None
        if len(reply) < 12 or reply[:2] != query[:2]:
            return None
        return reply[3] & 0x0F

    def stop(self):
        """Stops dnsmasq (bounded); returns its stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        self.proc = None
        return err.decode("utf-8", "replace")


def _free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1 a moment ago (dnsmasq listens on both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both UDP and TCP")


# ---- what a peer records ----

class Transaction:
    """MAIL FROM through the reply to the end of data (or RSET / close)."""

    def __init__(self, sender, t):
        self.sender = sender
        self.params = []         # MAIL parameters ("SIZE=...", "SMTPUTF8")
        self.mail_time = t
        self.rcpts = []          # (address, time, reply code)
        self.rcpt_params = {}    # address -> its RCPT parameters ("NOTIFY=...", "ORCPT=...")
        self.data_raw = None     # bytes on the wire between the 354 and ".CRLF", still dot-stuffed
        self.data = None         # the same with dot-stuffing undone
        self.data_time = None
        self.data_code = None

    def accepted(self):
        """Recipients delivered by this transaction: 2xx at RCPT and at the end of data."""
        if self.data_code is None or self.data_code >= 300:
            return []
        return [a for a, _, code in self.rcpts if code < 300]


class Session:
    def __init__(self, client, t):
        self.client = client     # (source address, port)
        self.connect_time = t
        self.ehlo = None
        self.tls = False
        self.transactions = []
        self.quit = False
        self.close_time = None

    def describe(self):
        lines = ["  %.3f connect from %s:%d ehlo=%s tls=%s" % (
            self.connect_time, self.client[0], self.client[1], self.ehlo, self.tls)]
        for tx in self.transactions:
            lines.append("    MAIL <%s> rcpts=%s data=%s" % (
                tx.sender, ["%s:%d" % (a, c) for a, _, c in tx.rcpts], tx.data_code))
        lines.append("    %s at %s" % ("QUIT" if self.quit else "closed", self.close_time))
        return "\n".join(lines)


# ---- the SMTP peer ----

class Peer:
    """One scriptable SMTP server on (address, port).

    greeting: the banner ("220 ..." by default; "421 ..." closes at once, other codes answer
        503 to everything but QUIT).
    rcpt: [(fnmatch pattern, reply)], first match wins, else "250 2.1.5 ok".
    data_cmd_reply: reply to DATA itself ("354 ..." by default); data_reply: to the end of data. defer_first: the first N RCPTs of each address get
        451. close_after_rcpts: the RCPT after the first N of a connection gets 421 and the
        connection is closed. pipelining / starttls / smtputf8 / dsn: advertised or not (STARTTLS
        needs tls_context).
    delay: seconds before each reply (a slow peer).
    rcpt_rate: (count, seconds): a rolling-window limit per client address, like a large
        provider's: a RCPT arriving when `count` RCPTs from that address already arrived within
        the last `seconds` gets 450 4.7.0 and is counted in rate_refused.
    jitter: seconds: each line is seen (and timed) a random 0..jitter seconds after it arrived,
        in order, like a network path whose delay varies; not with starttls. A line is timed when
        it was due, not when the peer's thread got round to it after the sleep (late on a loaded
        machine).
    idle_close: seconds a connection may stay silent after a transaction; then the peer says
        idle_close_reply (None: nothing) and closes it, like a receiver's own idle timeout."""

    def __init__(self, name, address, greeting="220 {name} ESMTP peer", rcpt=(),
                 data_cmd_reply="354 go ahead", data_reply="250 2.0.0 ok", defer_first=0,
                 close_after_rcpts=None, pipelining=True, starttls=False, tls_context=None, delay=0.0,
                 smtputf8=False, dsn=False, rcpt_rate=None, jitter=0.0, idle_close=None,
                 idle_close_reply="421 4.4.2 idle too long, closing"):
        self.name = name
        self.address = address
        self.port = None
        self.greeting = greeting.format(name=name)
        self.rcpt_rules = list(rcpt)
        self.data_cmd_reply = data_cmd_reply
        self.data_reply = data_reply
        self.defer_first = defer_first
        self.close_after_rcpts = close_after_rcpts
        self.pipelining = pipelining
        self.starttls = starttls
        self.smtputf8 = smtputf8
        self.dsn = dsn
        self.tls_context = tls_context
        self.delay = delay
        self.rcpt_rate = rcpt_rate
        self.jitter = jitter
        self.idle_close = idle_close
        self.idle_close_reply = idle_close_reply
        self.idle_closed = 0     # connections the peer closed for being idle
        self.rcpt_arrivals = {}  # client address -> RCPT arrival times, for rcpt_rate
        self.rate_refused = 0
        self.lock = threading.Lock()
        self.sessions = []
        self.attempts = {}       # recipient -> RCPTs seen
        self.open = {}           # source address -> connections open now
        self.max_open = {}       # source address -> most connections open at once
        self.server = None

    # recording, read by the test thread
    def transactions(self):
        with self.lock:
            return [tx for s in self.sessions for tx in s.transactions]

    def delivered(self):
        """[(recipient, transaction)] for every accepted recipient, duplicates included."""
        return [(a, tx) for tx in self.transactions() for a in tx.accepted()]

    def delivered_rcpts(self):
        return [a for a, _ in self.delivered()]

    def report(self):
        with self.lock:
            body = "\n".join(s.describe() for s in self.sessions)
            return "peer %s (%s:%s), %d sessions, max open %s\n%s" % (
                self.name, self.address, self.port, len(self.sessions), self.max_open, body)

    # the server, on the MailNet's loop
    async def start(self, port):
        self.port = port
        self.server = await asyncio.start_server(self.serve, self.address, port, reuse_address=True,
                                                 limit=LINE_MAX)

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def over_rcpt_rate(self, client, t):
        """Records a RCPT from client at t; whether it breaks rcpt_rate."""
        if self.rcpt_rate is None:
            return False
        count, seconds = self.rcpt_rate
        with self.lock:
            arrivals = self.rcpt_arrivals.setdefault(client, [])
            recent = sum(1 for a in arrivals[-count:] if t - a <= seconds)
            arrivals.append(t)
            if recent >= count:
                self.rate_refused += 1
                return True
        return False

    def rcpt_reply(self, session_rcpts, address):
        if self.close_after_rcpts is not None and session_rcpts >= self.close_after_rcpts:
            return "421 4.7.0 too many recipients, closing"
        with self.lock:
            self.attempts[address] = self.attempts.get(address, 0) + 1
            attempt = self.attempts[address]
        if attempt <= self.defer_first:
            return "451 4.3.0 deferred, attempt %d" % attempt
        for pattern, reply in self.rcpt_rules:
            if fnmatch.fnmatchcase(address.lower(), pattern.lower()):
                return reply
        return "250 2.1.5 ok"

    async def serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        session = Session((peer[0], peer[1]), time.time())
        with self.lock:
            self.sessions.append(session)
            self.open[peer[0]] = self.open.get(peer[0], 0) + 1
            self.max_open[peer[0]] = max(self.max_open.get(peer[0], 0), self.open[peer[0]])
        try:
            await self.converse(session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ssl.SSLError):
            pass
        finally:
            with self.lock:
                session.close_time = time.time()
                self.open[peer[0]] -= 1
            writer.close()

    async def converse(self, session, reader, writer):
        async def reply(text):
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        if self.jitter:
            delayed = _JitteredLines(reader, self.jitter)
            try:
                await self.dialogue(session, delayed.read_line, reply, writer)
            finally:
                delayed.stop()
        else:
            async def read_line():
                line = await asyncio.wait_for(reader.readuntil(b"\n"), 60)
                return time.time(), line
            await self.dialogue(session, read_line, reply, writer)

    async def dialogue(self, session, read_line, reply, writer):
        """The SMTP conversation of one session, its lines (and the times they were seen) from
        read_line()."""
        await reply(self.greeting)
        if self.greeting.startswith("421"):
            return
        tx = None
        session_rcpts = 0
        idle = False  # a transaction ended and no command came since
        while True:
            try:
                timeout = self.idle_close if idle else None
                seen, line = await asyncio.wait_for(read_line(), timeout)
            except asyncio.TimeoutError:
                if not idle:
                    raise
                with self.lock:
                    self.idle_closed += 1
                if self.idle_close_reply:
                    await reply(self.idle_close_reply)
                return
            idle = False
            line = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if not self.greeting.startswith("220") and verb != "QUIT":
                await reply("503 5.5.1 no service")
            elif verb in ("EHLO", "HELO"):
                session.ehlo = arg
                tx = None
                lines = ["%s hello %s" % (self.name, arg)]
                if verb == "EHLO":
                    lines += ["8BITMIME", "SIZE 100000000", "ENHANCEDSTATUSCODES"]
                    lines += ["PIPELINING"] if self.pipelining else []
                    lines += ["STARTTLS"] if self.starttls and not session.tls else []
                    lines += ["SMTPUTF8"] if self.smtputf8 else []
                    lines += ["DSN"] if self.dsn else []
                await reply("\r\n".join(["250-" + l for l in lines[:-1]] + ["250 " + lines[-1]]))
            elif verb == "STARTTLS" and self.starttls and not session.tls:
                await reply("220 2.0.0 go ahead")
                await writer.start_tls(self.tls_context)
                session.tls = True
                session.ehlo = None
                tx = None
            elif verb == "MAIL":
                tx = Transaction(_path(arg), seen)
                tx.params = arg[arg.find(">") + 1:].split()
                with self.lock:
                    session.transactions.append(tx)
                await reply("250 2.1.0 ok")
            elif verb == "RCPT" and tx is not None:
                address = _path(arg)
                if self.over_rcpt_rate(session.client[0], seen):
                    text = "450 4.7.0 RL000010 rate limit exceeded, try again later"
                else:
                    text = self.rcpt_reply(session_rcpts, address)
                session_rcpts += 1
                with self.lock:
                    tx.rcpts.append((address, seen, int(text[:3])))
                    tx.rcpt_params[address] = arg[arg.find(">") + 1:].split()
                await reply(text)
                if text.startswith("421"):
                    return
            elif verb == "DATA" and tx is not None:
                if not any(code < 300 for _, _, code in tx.rcpts):
                    await reply("554 5.5.1 no valid recipients")
                    continue
                await reply(self.data_cmd_reply)
                if not self.data_cmd_reply.startswith("354"):
                    with self.lock:
                        tx.data_code = int(self.data_cmd_reply[:3])
                    tx = None
                    continue
                raw = bytearray()  # grows in place: a body of megabytes is not copied per line
                while True:
                    _, chunk = await read_line()
                    if chunk == b".\r\n" and (not raw or raw.endswith(b"\r\n")):
                        break
                    raw += chunk
                raw = bytes(raw)
                with self.lock:
                    tx.data_raw = raw
                    tx.data = _unstuff(raw)
                    tx.data_time = time.time()
                    tx.data_code = int(self.data_reply[:3])
                tx = None
                await reply(self.data_reply)
                idle = True
            elif verb == "RSET":
                tx = None
                await reply("250 2.0.0 ok")
            elif verb == "NOOP":
                await reply("250 2.0.0 ok")
            elif verb == "QUIT":
                session.quit = True
                await reply("221 2.0.0 bye")
                return
            else:
                await reply("503 5.5.1 bad sequence or command")


class _JitteredLines:
    """Lines of a reader, each handed out a random 0..jitter seconds after it arrived, in order."""

    def __init__(self, reader, jitter):
        self.jitter = jitter
        self.lines = asyncio.Queue()
        self.due = 0.0
        self.pump = asyncio.ensure_future(self._pump(reader))

    async def _pump(self, reader):
        try:
            while True:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), 60)
                self.lines.put_nowait((time.time(), line))
        except Exception as e:  # handed to read_line, which raises it in order
            self.lines.put_nowait((time.time(), e))

    async def read_line(self):
        """(the time the line is due, the line)."""
        arrived, line = await asyncio.wait_for(self.lines.get(), 60)
        if isinstance(line, Exception):
            raise line
        self.due = max(self.due, arrived + random.uniform(0, self.jitter))
        await asyncio.sleep(max(0.0, self.due - time.time()))
        return self.due, line

    def stop(self):
        self.pump.cancel()


def _path(arg):
    """The address inside FROM:<...> / TO:<...>, parameters dropped."""
    start, end = arg.find("<"), arg.find(">")
    return arg[start + 1:end] if 0 <= start < end else arg.split(":", 1)[-1].strip()


def _unstuff(raw):
    """Undoes dot-stuffing; lines end at CRLF only (RFC 5321 §4.5.2)."""
    return b"\r\n".join(line[1:] if line.startswith(b".") else line
                        for line in raw.split(b"\r\n"))


# ---- rolling windows, as a receiver counts ----

def rcpt_times_by_source(*peers):
    """{source address: sorted RCPT arrival times} over all sessions of the peers."""
    times = {}
    for peer in peers:
        for session in list(peer.sessions):
            for tx in session.transactions:
                times.setdefault(session.client[0], []).extend(t for _, t, _ in tx.rcpts)
    return {src: sorted(ts) for src, ts in times.items()}


def connect_times_by_source(*peers):
    """{source address: sorted connection times} over all sessions of the peers."""
    times = {}
    for peer in peers:
        for session in list(peer.sessions):
            times.setdefault(session.client[0], []).append(session.connect_time)
    return {src: sorted(ts) for src, ts in times.items()}


def crowded_windows(times, count, seconds):
    """Every run of count + 1 of the sorted times that fits in one window of `seconds`, however
    the window is placed (not only windows aligned to whole seconds): the breaches of a limit
    of `count` per rolling window. [(first, last)]."""
    return [(first, last) for first, last in zip(times, times[count:]) if last - first <= seconds]


# ---- the world ----

class MailNet:
    """dnsmasq plus peers on one shared port, and helpers to point a Sluice daemon at them."""

    def __init__(self):
        self.dns = Dns()
        self.peers = []
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tls_dir = None

    def run(self, coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def peer(self, name, **script):
        """A peer named `name` (its A record too); script: see Peer."""
        if script.get("starttls") and "tls_context" not in script:
            script["tls_context"] = self.server_tls_context()
        p = Peer(name, None, **script)
        self.peers.append(p)
        return p

    def dead_host(self, name):
        """A host name with an address nobody listens on: connections are refused."""
        self.dns.host(name, random_loopback())
        return name

    def mx(self, domain, host, preference=10):
        """domain MX preference host (a Peer or a host name)."""
        self.dns.mx(domain, host.name if isinstance(host, Peer) else host, preference)

    def server_tls_context(self):
        if self.tls_dir is None:
            self.tls_dir = tempfile.mkdtemp(prefix="mailnet-tls-")
        cert, key = make_test_cert(self.tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    def start(self):
        """Binds every peer on one shared random port (retrying on clashes), then starts DNS."""
        for _ in range(30):
            port = random.randint(20000, 60000)
            for p in self.peers:
                p.address = random_loopback()
            try:
                for p in self.peers:
                    self.run(p.start(port))
            except OSError:
                for p in self.peers:
                    self.run(p.stop())
                continue
            self.port = port
            break
        else:
            raise AssertionError("peers could not bind one shared port in 30 attempts")
        for p in self.peers:
            self.dns.host(p.name, p.address)
        self.dns.start()
        return self

    def close(self):
        """Stops the peers (ending their open sessions), DNS and the loop thread."""
        try:
            self.run(self._shutdown())
        finally:
            self.dns.stop()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if self.tls_dir:
                shutil.rmtree(self.tls_dir, ignore_errors=True)

    async def _shutdown(self):
        for p in self.peers:
            await p.stop()
        sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    def sluice_config(self, rules=(), egress=EGRESS, **default):
        """Config sections for harness.Sluice(config=...): this net's DNS and port, the egress
        pool, shaping.default = SHAPING updated with `default`, and shaping.rules = rules."""
        shaping = {"default": dict(SHAPING, **default)}
        if rules:
            shaping["rules"] = list(rules)
        cfg = {"server": {"hostname": "sluice.test"},
               "dns": {"servers": [self.dns.server], "timeout": "1s"},
               "delivery": {"port": self.port},
               "shaping": shaping}
        if egress:
            cfg["egress"] = {"pools": {"default": [{"address": a, "ehlo": e} for a, e in egress]}}
        return cfg

    def report(self):
        """Every peer's record, for failure messages."""
        return "\n".join(p.report() for p in self.peers)


def send(daemon, sender, rcpts, message=b"Subject: test\r\n\r\nhello\r\n", timeout=15):
    """Submits one message through the daemon's first listener with smtplib."""
    host, port = daemon.addr()
    with smtplib.SMTP(host, port, timeout=timeout) as client:
        client.ehlo("submit.test")
        refused = client.sendmail(sender, rcpts, message)
        if refused:
            raise AssertionError("daemon refused recipients %r" % refused)


class MailNetCase(harness.SluiceTestCase):
    """A test with one MailNet (self.net) and one daemon (self.d) pointed at it; on failure the
    peers' records and the daemon's log tail are printed."""

    def make_net(self):
        net = self.net = MailNet()
        self.addCleanup(net.close)
        self.addCleanup(self._dump_net_on_failure, net)
        return net

    def _dump_net_on_failure(self, net):
        if self.has_failed():
            sys.stderr.write("\n%s\n%s\n" % (self.id(), net.report()))

    def start_daemon(self, **config):
        """Starts the net (when not yet started) and a daemon with net.sluice_config(**config)."""
        if self.net.port is None:
            self.net.start()
        self.d = self.start_sluice(config=self.net.sluice_config(**config))
        return self.d

    def reload_daemon(self, **config):
        """Rewrites the daemon's configuration as net.sluice_config(**config) and reloads it
        (SIGHUP), waiting for this reload's daemon.reload record."""
        done = len(self.d.events("daemon.reload"))
        self.d.write_config(extra=self.net.sluice_config(**config))
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload", count=done + 1)

    def detail(self):
        return "%s\n%s" % (self.net.report(), self.d.log_tail())

    def wait(self, cond, timeout, what, step=0.05):
        return wait_until(cond, timeout, what, self.detail, step)

    def wait_spool_empty(self, timeout):
        self.wait(lambda: not self.d.queue_list(), timeout, "spool empty", step=0.3)
