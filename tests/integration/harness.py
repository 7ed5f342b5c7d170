"""
Integration test harness: runs the real `sluice` daemon on free loopback ports with a YAML config
written into a private temp dir (spool included), reads its JSON-lines log, and talks SMTP to it
with raw sockets so tests control every byte and every write. Every wait is bounded, and every
daemon a test starts is stopped (SIGTERM, then SIGKILL) by the test's clean-up, pass or fail.

Run as root (as in CI), the harness starts the daemon as root and lets it drop to its default
user, `sluice` (packaging/install-deps.sh creates it), so every test goes through the real drop of
privileges; the test's temp dir is handed to that user first, as an administrator gives a service
its files, so the daemon can read its configuration and keys again at reload. Where that user does
not exist, the daemon is told to stay root (server.user: root).

Environment: SLUICE_BIN (the binary), SLUICE_SOURCE_DIR, SLUICE_KEEP=1 keeps temp dirs.
"""
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
HOSTNAME = "mx.sluice.test"
DEAD_DNS = "127.0.53.53:53"  # a DNS server nobody runs: lookups fail temporarily
SKIP_EXIT = 77  # tests/CMakeLists.txt: SKIP_RETURN_CODE


def sluice_bin():
    """The binary under test: $SLUICE_BIN, else the first build directory that has one."""
    path = os.environ.get("SLUICE_BIN")
    if path:
        return path
    for build in ("build-it", "build"):
        candidate = os.path.join(SOURCE_DIR, build, "mta", "sluice")
        if os.access(candidate, os.X_OK):
            return candidate
    raise unittest.SkipTest("no sluice binary: set SLUICE_BIN")


def daemon_user():
    """The pwd entry of the user a daemon started by this process drops to, or None when it
    stays who it is (not root, or root without a `sluice` user)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("sluice")
    except KeyError:
        return None


def give_to_daemon_user(top):
    """Hands the directory tree at top to the daemon's user. Like the daemon with its spool, it
    never follows a link and leaves a file with more than one name alone (a test's bait)."""
    user = daemon_user()
    if user is None:
        return
    os.lchown(top, user.pw_uid, user.pw_gid)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not os.path.isdir(path) and st.st_nlink > 1:
                continue
            os.lchown(path, user.pw_uid, user.pw_gid)


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(host):
    """A port that was free a moment ago (the daemon binds it next; start() retries on a clash)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- YAML (block style; enough for configs: dicts, lists, scalars) ----

_PLAIN = re.compile(r"^[A-Za-z0-9_./+-][A-Za-z0-9_./+-]*$")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "~", "y", "n"}


def _scalar(value):
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Renders dicts/lists/scalars as block YAML."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)) and value:
                lines.append("%s%s:" % (pad, key))
                lines.append(to_yaml(value, indent + 2))
            elif isinstance(value, dict):
                lines.append("%s%s: {}" % (pad, key))
            elif isinstance(value, list):
                lines.append("%s%s: []" % (pad, key))
            else:
                lines.append("%s%s: %s" % (pad, key, _scalar(value)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                inner = to_yaml(item, indent + 2)
                lines.append(pad + "- " + inner[indent + 2:])
            else:
                lines.append("%s- %s" % (pad, _scalar(item)))
    else:
        lines.append(pad + _scalar(obj))
    return "\n".join(lines)


# ---- SMTP over raw sockets ----

class Reply:
    """One (possibly multi-line) SMTP reply."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN ", one per line

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        """The RFC 3463 code at the start of the first line, or None."""
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)", self.lines[0] if self.lines else "")
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class ConnectionClosed(Exception):
    pass


class SMTPConn:
    """A client socket with a read buffer, reading replies line by line (multi-line aware)."""

    def __init__(self, host, port, timeout=5.0, tls_context=None, banner=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.transcript = []  # ("C"|"S", bytes), for failure messages
        try:
            self.sock.connect((host, port))
            if tls_context is not None:
                self.sock = tls_context.wrap_socket(self.sock)
        except BaseException:
            self.sock.close()
            raise
        self.banner = self.read_reply() if banner else None

    # raw I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(("C", data))
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no reply in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnectionClosed("server closed the connection; unread: %r" % self.buf)
        self.transcript.append(("S", chunk))
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise AssertionError("reply line without CRLF: %r" % self.buf[:200])
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self, timeout=None):
        lines = []
        code = None
        while True:
            line = self.read_line(timeout).decode("utf-8", "replace")
            if not re.match(r"^\d{3}([ -]|$)", line):
                raise AssertionError("malformed reply line %r (so far %r)" % (line, lines))
            if code is not None and int(line[:3]) != code:
                raise AssertionError("code changed inside a multi-line reply: %r" % line)
            code = int(line[:3])
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(code, lines)

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF added) and returns its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def pending(self, wait=0.3):
        """Whatever the server sends within `wait` seconds, without waiting for a full line."""
        deadline = time.monotonic() + wait
        try:
            while True:
                self._fill(deadline)
        except (socket.timeout, ConnectionClosed, ssl.SSLError, OSError):
            pass
        data, self.buf = self.buf, b""
        return data

    def wait_closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (pending bytes are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except (ssl.SSLError, OSError):
                return True

    def starttls(self, context):
        """Wraps the socket in TLS (after the 220 reply). Any byte already buffered is an error."""
        if self.buf:
            raise AssertionError("plaintext after the STARTTLS reply: %r" % self.buf)
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock)

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def queued_id(reply):
    """The queue id of a "250 2.0.0 Ok: queued as ID" reply, else None."""
    m = re.search(r"queued as (\S+)", reply.text)
    return m.group(1) if reply.code == 250 and m else None


def send_message(conn, sender, rcpts, body, helo=None):
    """One whole transaction on conn, one command per write. Returns the reply to the final dot.
    `body` is sent as is (already dot-stuffed, ending in CRLF), then ".CRLF"."""
    if helo:
        r = conn.ehlo(helo)
        assert r.code == 250, r
    r = conn.cmd("MAIL FROM:<%s>" % sender)
    assert r.code == 250, r
    for rcpt in rcpts:
        r = conn.cmd("RCPT TO:<%s>" % rcpt)
        assert r.code == 250, r
    r = conn.cmd("DATA")
    assert r.code == 354, r
    conn.send(body + b".\r\n")
    return conn.read_reply(timeout=15)


def split_received(stored):
    """Splits a stored body into (the fields Sluice added, rest): on inbound listeners an
    Authentication-Results field, then always the Received field. Either may be folded."""
    pos = 0
    if stored.startswith(b"Authentication-Results:"):
        pos = field_end(stored, 0)
    assert stored[pos:].startswith(b"Received:"), \
        "stored body does not start with Received: %r" % stored[:200]
    return stored[:field_end(stored, pos)], stored[field_end(stored, pos):]


def field_end(stored, pos):
    """The offset just past the (possibly folded) header field starting at `pos`."""
    while True:
        end = stored.find(b"\r\n", pos)
        assert end >= 0, "unterminated header field: %r" % stored[:300]
        pos = end + 2
        if stored[pos:pos + 1] not in (b" ", b"\t"):
            return pos


# ---- the daemon ----

class Sluice:
    """One daemon instance with its private temp dir (config, spool, logs)."""

    def __init__(self, listeners=None, config=None, tls=False, name="sluice"):
        """listeners: list of dicts {name, role, tls?, host?}; host defaults to 127.0.0.1.
        config: extra top-level sections merged over the defaults. tls: make a certificate."""
        self.bin = sluice_bin()
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        self.spool = os.path.join(self.dir, "spool")
        self.listener_specs = listeners or [{"name": "submission", "role": "submission"}]
        self.extra = config or {}
        self.cert = self.key = None
        if tls:
            from certs import make_test_cert
            self.cert, self.key = make_test_cert(self.dir)
        give_to_daemon_user(self.dir)  # again at each start, for what the test added
        self.proc = None
        self.run = 0
        self.log_paths = []
        self.expect_exit = None  # set by kill9(): any status is then fine
        self.addresses = {}
        self.assign_ports()

    # config
    def assign_ports(self):
        self.addresses = {}
        for spec in self.listener_specs:
            host = spec.get("host", "127.0.0.1")
            self.addresses[spec["name"]] = (host, free_port(host))

    def config_dict(self, extra=None):
        listeners = []
        for spec in self.listener_specs:
            host, port = self.addresses[spec["name"]]
            entry = {"name": spec["name"],
                     "address": ("[%s]:%d" if ":" in host else "%s:%d") % (host, port),
                     "role": spec["role"]}
            if "tls" in spec:
                entry["tls"] = spec["tls"]
            listeners.append(entry)
        cfg = {"server": {"hostname": HOSTNAME, "spool": self.spool, "shutdown_grace": "10s"},
               "listeners": listeners,
               "relay": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
               "domains": {"example.com": None},
               # No test ever serves DNS on this address (mailnet's peers use 127.a.b.c with a > 0),
               # so deliveries defer and messages stay queued where tests look for them. Delivery
               # tests point dns at their own server.
               "dns": {"servers": [DEAD_DNS], "timeout": "1s"}}
        if self.cert:
            cfg["tls"] = {"certificate": self.cert, "key": self.key}
        if os.geteuid() == 0 and daemon_user() is None:
            cfg["server"]["user"] = "root"  # no `sluice` user to drop to
        for section, value in (self.extra if extra is None else extra).items():
            if isinstance(value, dict) and isinstance(cfg.get(section), dict):
                merged = dict(cfg[section])
                merged.update(value)
                cfg[section] = merged
            else:
                cfg[section] = value
        return cfg

    def write_config(self, extra=None, text=None, path=None):
        """Writes the config (defaults + extra, or a literal text) to path (default: the config).
        The file is replaced whole, as editors and configuration tools do: a reload running
        meanwhile reads the old file or the new one, never one cut short by the truncation."""
        if text is None:
            text = to_yaml(self.config_dict(extra)) + "\n"
        path = path or self.config_path
        new = path + ".new"
        with open(new, "w") as f:
            f.write(text)
        if os.path.exists(path):
            st = os.stat(path)
            os.chown(new, st.st_uid, st.st_gid)
            os.chmod(new, st.st_mode & 0o7777)
        os.replace(new, path)
        return path

    # process
    @property
    def log_path(self):
        return self.log_paths[-1]

    def start(self, timeout=10.0):
        """Starts the daemon and waits for daemon.ready and for the spool's listing that follows it
        (spool.recovery_done); retries with new ports on a port clash."""
        for attempt in range(3):
            if self.run == 0 or attempt > 0:
                self.write_config()
            give_to_daemon_user(self.dir)
            self.run += 1
            path = os.path.join(self.dir, "log-%d.jsonl" % self.run)
            self.log_paths.append(path)
            with open(path, "wb") as log:
                self.proc = subprocess.Popen([self.bin, "run", "-c", self.config_path], cwd=self.dir,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.expect_exit = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.find("daemon.ready", timeout=0) and self.find("spool.recovery_done", timeout=0):
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill9()
                raise AssertionError("no daemon.ready within %.0fs\n%s" % (timeout, self.log_tail()))
            if "in use" not in self.log_text().lower() or attempt == 2:
                raise AssertionError("daemon exited with %s before ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            self.assign_ports()
        return self

    def restart(self, timeout=10.0):
        """Starts a new process on the same config and spool (the previous one must be gone)."""
        assert self.proc is None or self.proc.poll() is not None, "previous daemon still running"
        return self.start(timeout)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=15.0):
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit status (negative: killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("daemon ignored SIGTERM for %.0fs\n%s" % (timeout, self.log_tail()))
        return self.proc.returncode

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.expect_exit = "killed"

    def cleanup(self):
        """Stops the daemon (if running) and checks it ended cleanly; removes the temp dir."""
        problems = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                status = self.stop()
                if status != 0:
                    problems.append("exit status %s after SIGTERM" % status)
            elif self.proc is not None and self.expect_exit is None and self.proc.returncode != 0:
                problems.append("daemon died with status %s" % self.proc.returncode)
            for path in self.log_paths:
                text = open(path, "rb").read().decode("utf-8", "replace")
                # log.unknown_event: an event name missing from lib/log_event_table.h.
                for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                               '"event":"panic"', '"event":"log.unknown_event"'):
                    if marker in text:
                        problems.append("%s in %s" % (marker, os.path.basename(path)))
            if problems:
                raise AssertionError("daemon problems: %s\n%s" % ("; ".join(problems), self.log_tail()))
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            if not os.environ.get("SLUICE_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    # log
    def log_text(self, run=None):
        path = self.log_paths[-1 if run is None else run - 1]
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=40):
        if not self.log_paths:
            return ""
        lines = self.log_text().splitlines()
        return "--- %s (last %d lines)\n%s" % (self.log_path, n, "\n".join(lines[-n:]))

    def settle(self, quiet=0.05, timeout=5.0):
        """Waits until the log stops growing. The daemon's log thread writes a line a moment after
        the event, possibly after the reply that followed it went out."""
        deadline = time.monotonic() + timeout
        size = os.path.getsize(self.log_path)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = os.path.getsize(self.log_path)
            if now == size:
                return
            size = now

    def events(self, event=None, run=None, **fields):
        """Parsed log records of one run (default: the current, once its log has settled),
        filtered by event name and fields."""
        if run is None and self.proc is not None and self.proc.poll() is None:
            self.settle()
        out = []
        for line in self.log_text(run).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            if event is not None and rec.get("event") != event:
                continue
            if any(rec.get(k) != v for k, v in fields.items()):
                continue
            out.append(rec)
        return out

    def find(self, event, timeout=5.0, **fields):
        """The first matching record, waiting up to `timeout` for it to be logged; None if it never
        is (to show an event did not happen, use events(), which waits for the log to settle)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(event, **fields)
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.02)

    def wait_event(self, event, timeout=10.0, count=1, **fields):
        """Waits until at least `count` records match; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(event, **fields)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("no %s %r event within %.0fs\n%s"
                                     % (event, fields, timeout, self.log_tail()))
            time.sleep(0.02)

    # clients
    def addr(self, listener=None):
        return self.addresses[listener or self.listener_specs[0]["name"]]

    def connect(self, listener=None, timeout=5.0, tls_context=None, banner=True):
        host, port = self.addr(listener)
        return SMTPConn(host, port, timeout=timeout, tls_context=tls_context, banner=banner)

    # CLI
    def cli(self, *args, timeout=20.0, config=None):
        return subprocess.run([self.bin] + list(args) + ["-c", config or self.config_path],
                              cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def queue_list(self):
        """`sluice queue list` as a list of dicts: id, size, sender, rcpts."""
        res = self.cli("queue", "list")
        if res.returncode != 0:
            raise AssertionError("queue list failed (%d): %s" % (res.returncode, res.stderr.decode()))
        entries = []
        for line in res.stdout.decode().splitlines():
            m = re.match(r"^(\S+) (\d+) <([^>]*)> (\S*)$", line)
            if not m:
                raise AssertionError("unexpected queue list line %r" % line)
            entries.append({"id": m.group(1), "size": int(m.group(2)), "sender": m.group(3),
                            "rcpts": m.group(4).split(",") if m.group(4) else []})
        return entries

    def queue_body(self, queue_id):
        """`sluice queue show ID --body`: the stored bytes exactly."""
        res = self.cli("queue", "show", queue_id, "--body")
        if res.returncode != 0:
            raise AssertionError("queue show %s failed (%d): %s"
                                 % (queue_id, res.returncode, res.stderr.decode()))
        return res.stdout

    def queue_show(self, queue_id):
        res = self.cli("queue", "show", queue_id)
        if res.returncode != 0:
            raise AssertionError("queue show %s failed: %s" % (queue_id, res.stderr.decode()))
        return res.stdout


class SluiceTestCase(unittest.TestCase):
    """Adds start_sluice(): a started daemon stopped and checked by the test's clean-up."""

    def start_sluice(self, start=True, **kwargs):
        d = Sluice(name=self.id().split(".")[-1], **kwargs)
        self.addCleanup(d.cleanup)
        self.addCleanup(self._dump_log_on_failure, d)  # runs first: clean-ups are LIFO
        if start:
            d.start()
        return d

    def _dump_log_on_failure(self, d):
        if d.log_paths and self.has_failed():
            sys.stderr.write("\n%s\n%s\n" % (self.id(), d.log_tail(25)))

    def has_failed(self):
        """True in a clean-up when this test (or one of its subtests) failed or raised."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        problems = (result.failures + result.errors) if result is not None else []
        return any(getattr(t, "test_case", t) is self for t, _ in problems)

    def assertReply(self, reply, code, enhanced=None, msg=None):
        """Checks the code and (when given) the enhanced status code of a reply."""
        detail = "%s: got %r, expected %d %s" % (msg or "reply", reply, code, enhanced or "")
        self.assertEqual(reply.code, code, detail)
        if enhanced is not None:
            self.assertEqual(reply.enhanced, enhanced, detail)

    def open_data(self, c, sender, rcpt):
        """EHLO, MAIL FROM:<sender>, RCPT TO:<rcpt> and DATA on c, each reply checked (250, 250
        2.1.0, 250 2.1.5, 354): what c sends next is the message."""
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)

    def assertStored(self, d, queue_id, content):
        """The stored body is a Received header naming the queue id, then exactly `content`."""
        stored = d.queue_body(queue_id)
        received, rest = split_received(stored)
        self.assertEqual(rest, content, "stored body after the Received header")
        self.assertIn(queue_id.encode(), received, "Received header names the queue id")
        return received


def main():
    """Runs the calling module's tests; the last line printed is "N passed, M failed"."""
    module = sys.modules["__main__"]
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    only = sys.argv[1:]
    if only:
        suite = unittest.TestSuite(t for t in _flatten(suite) if any(o in t.id() for o in only))
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    # Count test methods, not problems: a failing subTest or clean-up must not count twice.
    failed_ids = {getattr(test, "test_case", test).id()
                  for test, _ in result.failures + result.errors}
    failed_ids |= {test.id() for test in result.unexpectedSuccesses}
    failed = len(failed_ids)
    passed = result.testsRun - failed - len(result.skipped)
    sys.stderr.flush()
    for test, why in result.skipped:
        print("skipped %s: %s" % (test.id(), why))
    print("%d passed, %d failed, %d skipped" % (passed, failed, len(result.skipped)))
    sys.stdout.flush()
    if failed or result.testsRun == 0:
        sys.exit(1)
    # ctest shows SKIP_EXIT as "Skipped": a test that did not run never reads as passed.
    sys.exit(SKIP_EXIT if result.skipped else 0)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t
