"""
A raw-socket conformance pass of the inbound session: one reply per command, always, in order.

About 65 command shapes (every verb with and without arguments, bad arguments, unknown verbs,
overlong lines, lower case, trailing spaces, SIZE=/BODY=/SMTPUTF8 parameters, NUL bytes, bare CR
and LF, ...) are driven in every session state a client can reach: before and after the greeting,
after HELO, after EHLO, after MAIL, after RCPT (accepted or refused), after RSET, after a message
(sent with DATA or BDAT), between BDAT chunks, and over TLS with AUTH offered (inside an AUTH exchange too). Each shape goes once command by
command (waiting for each reply, then HELP as a sentinel that a stray extra reply would
displace) and once pipelined (the whole session in one write). `Model` says what RFC 5321 (and
RFC 1870, 3030, 3207, 4954, 6152, 6531 for the extensions offered) has the server answer to each line
in each state; the test compares the COUNT and the ORDER of the codes the daemon sends with it.
"""
import base64
import os
import re
import subprocess
import threading
import time

from certs import client_context
from harness import SluiceTestCase, main

CRLF = b"\r\n"
CMD_LINE_MAX = 512     # RFC 5321 §4.5.3.1.4, CRLF included
AUTH_LINE_MAX = 12288  # RFC 4954 §4: a response line in an AUTH exchange
MAX_SIZE = 1000000     # limits.max_message_size of the daemons below
READ_TIMEOUT = 3.0     # a missing reply fails within this

VERBS = {b"HELO", b"EHLO", b"MAIL", b"RCPT", b"DATA", b"BDAT", b"RSET", b"NOOP", b"QUIT", b"VRFY",
         b"EXPN", b"HELP", b"STARTTLS", b"AUTH"}
# RFC 5321 §4.1.4: no transaction before HELO/EHLO; STARTTLS (RFC 3207) and AUTH (RFC 4954) follow
# EHLO. BDAT (RFC 3030) answers for itself: its chunk is read whatever the answer.
NEEDS_GREETING = {b"MAIL", b"RCPT", b"DATA", b"STARTTLS", b"AUTH"}
BASE64 = re.compile(rb"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")

# (label, lines, outcome): the lines are sent each with CRLF after it. The outcome is what the
# first line's arguments earn when its verb is allowed in the state: for MAIL the reply code; for
# RCPT "ok", "syntax" (501, not a refused recipient), "param" (555) or "address" (501 5.1.3, a
# refused recipient for RFC 2920's 554 at DATA). Other verbs are judged by Model alone.
SHAPES = [
    ("HELO", [b"HELO client.test"], None),
    ("HELO bare", [b"HELO"], None),
    ("HELO space", [b"HELO "], None),
    ("helo lower", [b"helo client.test"], None),
    ("HELO two words", [b"HELO client test"], None),
    ("EHLO", [b"EHLO client.test"], None),
    ("EHLO bare", [b"EHLO"], None),
    ("ehlo trailing spaces", [b"ehlo client.test   "], None),
    ("EHLO literal", [b"EHLO [192.0.2.1]"], None),
    ("EHLO bad chars", [b"EHLO bad(name)"], None),
    ("MAIL", [b"MAIL FROM:<a@example.org>"], 250),
    ("MAIL bare", [b"MAIL"], 501),
    ("MAIL FROM: empty", [b"MAIL FROM:"], 501),
    ("MAIL TO:", [b"MAIL TO:<a@example.org>"], 501),
    ("mail lower", [b"mail from:<a@example.org>"], 250),
    ("MAIL null sender", [b"MAIL FROM:<>"], 250),
    ("MAIL space before path", [b"MAIL FROM: <a@example.org>"], 250),
    ("MAIL SIZE", [b"MAIL FROM:<a@example.org> SIZE=1000"], 250),
    ("MAIL SIZE not a number", [b"MAIL FROM:<a@example.org> SIZE=abc"], 501),
    ("MAIL SIZE over the limit", [b"MAIL FROM:<a@example.org> SIZE=%d" % (MAX_SIZE + 1)], 552),
    ("MAIL SIZE twice", [b"MAIL FROM:<a@example.org> SIZE=1 SIZE=2"], 501),
    ("MAIL BODY=8BITMIME", [b"MAIL FROM:<a@example.org> BODY=8BITMIME"], 250),
    ("MAIL BODY=7BIT", [b"MAIL FROM:<a@example.org> BODY=7BIT"], 250),
    ("MAIL BODY=BINARYMIME", [b"MAIL FROM:<a@example.org> BODY=BINARYMIME"], 250),
    ("MAIL BODY unknown", [b"MAIL FROM:<a@example.org> BODY=BINARY"], 501),
    ("MAIL SMTPUTF8", [b"MAIL FROM:<a@example.org> SMTPUTF8"], 250),
    ("MAIL SMTPUTF8=value", [b"MAIL FROM:<a@example.org> SMTPUTF8=yes"], 555),
    ("MAIL RET ENVID", [b"MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2B1"], 250),
    ("MAIL RET bad", [b"MAIL FROM:<a@example.org> RET=ALL"], 501),
    ("MAIL ENVID not xtext", [b"MAIL FROM:<a@example.org> ENVID=a+2b"], 501),
    ("MAIL unknown param", [b"MAIL FROM:<a@example.org> FOO=bar"], 555),
    ("MAIL param syntax", [b"MAIL FROM:<a@example.org> =x"], 501),
    ("MAIL glued param", [b"MAIL FROM:<a@example.org>SIZE=1"], 501),
    ("MAIL bad address", [b"MAIL FROM:<not an address>"], 501),
    ("MAIL trailing spaces", [b"MAIL FROM:<a@example.org>  "], 250),
    ("RCPT", [b"RCPT TO:<b@example.com>"], "ok"),
    ("RCPT bare", [b"RCPT"], "syntax"),
    ("RCPT TO: empty", [b"RCPT TO:"], "syntax"),
    ("rcpt lower", [b"rcpt to:<b@example.com>"], "ok"),
    ("RCPT postmaster", [b"RCPT TO:<postmaster>"], "ok"),
    ("RCPT NOTIFY", [b"RCPT TO:<b@example.com> NOTIFY=NEVER"], "ok"),
    ("RCPT NOTIFY ORCPT", [b"RCPT TO:<b@example.com> notify=SUCCESS,DELAY ORCPT=rfc822;B+2B1@x"],
     "ok"),
    ("RCPT NOTIFY bad", [b"RCPT TO:<b@example.com> NOTIFY=NEVER,DELAY"], "syntax"),
    ("RCPT ORCPT not xtext", [b"RCPT TO:<b@example.com> ORCPT=rfc822;b=c@x"], "syntax"),
    ("RCPT unknown param", [b"RCPT TO:<b@example.com> NOTIFY=NEVER FOO=bar"], "param"),
    ("RCPT bad address", [b"RCPT TO:<b@@example.com>"], "address"),
    ("RCPT other domain", [b"RCPT TO:<c@example.net>"], "ok"),  # the client may relay
    ("DATA", [b"DATA", b"."], None),
    ("data lower", [b"data", b"."], None),
    ("DATA with argument", [b"DATA now"], None),
    ("RSET", [b"RSET"], None),
    ("RSET with argument", [b"RSET all"], None),
    ("rset trailing spaces", [b"rset  "], None),
    ("NOOP", [b"NOOP"], None),
    ("NOOP with argument", [b"NOOP anything at all"], None),
    ("NOOP 8-bit", [b"NOOP \xc3\xa9t\xc3\xa9"], None),
    ("VRFY bare", [b"VRFY"], None),
    ("VRFY", [b"VRFY b@example.com"], None),
    ("EXPN bare", [b"EXPN"], None),
    ("EXPN", [b"EXPN list"], None),
    ("HELP", [b"HELP"], None),
    ("HELP topic", [b"HELP MAIL"], None),
    ("BDAT 0 LAST", [b"BDAT 0 LAST"], None),
    ("bdat lower, LAST", [b"bdat 0 last"], None),
    ("BDAT chunk", [b"BDAT 3", b"a"], None),  # the chunk is "a" CRLF
    ("BDAT chunk LAST", [b"BDAT 3 LAST", b"b"], None),
    ("BDAT chunk holding a command", [b"BDAT 6 LAST", b"NOOP"], None),
    ("BDAT then DATA", [b"BDAT 3", b"c", b"DATA"], None),
    ("BDAT then RCPT", [b"BDAT 3", b"d", b"RCPT TO:<b@example.com>"], None),
    ("STARTTLS", [b"STARTTLS"], None),
    ("STARTTLS with argument", [b"STARTTLS now"], None),
    ("AUTH bare", [b"AUTH"], None),
    ("AUTH PLAIN then cancel", [b"AUTH PLAIN", b"*"], None),
    ("AUTH LOGIN then cancel", [b"AUTH LOGIN", b"*"], None),
    ("AUTH unknown mechanism", [b"AUTH CRAM-MD5"], None),
    ("AUTH PLAIN bad initial response", [b"AUTH PLAIN !!!!"], None),
    ("unknown verb", [b"FOO bar"], None),
    ("XCLIENT", [b"XCLIENT NAME=spoofed"], None),
    ("empty line", [b""], None),
    ("leading space", [b" NOOP"], None),
    ("NUL in verb", [b"NO\x00OP"], None),
    ("NUL in address", [b"MAIL FROM:<a\x00@example.org>"], None),
    ("DEL", [b"NOOP \x7f"], None),
    ("overlong line", [b"NOOP " + b"x" * 600], None),
    ("longest line", [b"NOOP " + b"y" * (CMD_LINE_MAX - 7)], None),
    ("one over the longest", [b"NOOP " + b"z" * (CMD_LINE_MAX - 6)], None),
    ("bare LF", [b"NOOP\nMAIL FROM:<x@example.org>"], None),
    ("bare CR", [b"NOOP\rRSET"], None),
    ("tab separator", [b"NOOP\tx"], None),
    ("QUIT with argument", [b"QUIT now"], None),
    ("QUIT", [b"QUIT"], None),
    # last, as it ends the session once greeted (the chunk's end is unknown): the pipelined test
    # leaves out the QUIT shapes, so this one ends its stream
    ("BDAT bare", [b"BDAT"], None),
    ("BDAT bad size", [b"BDAT 1x LAST"], None),
]


class Model:
    """What the server must answer, line by line, from the state the lines put it in."""

    def __init__(self, tls=False, auth=False):
        self.tls = tls            # TLS is up (the implicit TLS listener)
        self.auth_enabled = auth  # relay.users set on this submission listener
        self.greeting = None      # None, b"HELO" or b"EHLO"
        self.tx = None            # None, or [accepted, refused, binary] since MAIL
        self.chunked = None       # None, or the octets of the BDAT chunks accepted so far
        self.data = False         # reading message content, until "."
        self.chunk = None         # None, or [octets of a BDAT chunk still to come, its reply]
        self.exchange = False     # inside AUTH: the next line is a response (RFC 4954 §4)
        self.closed = False

    def feed(self, raw, outcome=None):
        """The codes answering one line (CRLF included) of the client's stream, in order."""
        assert raw.endswith(CRLF) and CRLF not in raw[:-2]
        if self.closed:
            return []
        if self.chunk is not None:  # RFC 3030 §2: the chunk, whatever it holds, then the reply
            assert len(raw) <= self.chunk[0], "a shape's chunk must end with one of its lines"
            self.chunk[0] -= len(raw)
            if self.chunk[0] > 0:
                return []
            code, self.chunk = self.chunk[1], None
            return [code]
        line = raw[:-2]
        if self.data:
            if line == b".":
                self.data, self.tx = False, None
                return [250]
            return []
        # RFC 5321 §2.3.8: only CRLF ends a line; one with a bare CR or LF, or longer than the
        # limit, is answered once as a whole and never read as commands.
        limit = AUTH_LINE_MAX if self.exchange else CMD_LINE_MAX
        if b"\r" in line or b"\n" in line or len(raw) > limit:
            self.exchange = False
            return [500]
        if self.exchange:
            return [self.auth_response(line, initial=False)]
        return self.command(line, outcome)

    def command(self, line, outcome):
        # RFC 5321 §4.1.1: a command is a verb, SP and its arguments; control octets, an empty
        # line or an unknown verb are "500 syntax error, command unrecognized".
        if any((c < 0x20 and c != 0x09) or c == 0x7f for c in line):
            return [500]
        verb, _, rest = line.partition(b" ")
        verb = verb.upper()
        if verb not in VERBS:
            return [500]
        if verb in NEEDS_GREETING and self.greeting is None:
            return [503]
        arg = rest.lstrip(b" ").rstrip(b" \t")
        code = getattr(self, "cmd_" + verb.decode().lower())(verb, arg, outcome)
        return [] if code is None else [code]

    def cmd_helo(self, verb, arg, outcome):
        # RFC 5321 §4.1.1.1: HELO/EHLO need a domain or an address literal; a good one ends any
        # transaction (§4.1.4) and a bad one changes nothing.
        if not (0 < len(arg) <= 255 and all(0x20 < c < 0x7f and c not in b"()\\" for c in arg)):
            return 501
        self.greeting, self.tx, self.chunked = verb, None, None
        return 250

    cmd_ehlo = cmd_helo

    def cmd_mail(self, verb, arg, outcome):
        if self.tx is not None:  # §4.1.4: no MAIL inside a transaction
            return 503
        if outcome == 250:
            self.tx = [0, 0, b"BODY=BINARYMIME" in arg.upper()]
        return outcome

    def cmd_rcpt(self, verb, arg, outcome):
        if self.tx is None or self.chunked is not None:  # nor between BDAT chunks
            return 503
        if outcome == "ok":
            self.tx[0] += 1
            return 250
        if outcome == "address":
            self.tx[1] += 1
            return 501
        return {"syntax": 501, "param": 555}[outcome]

    def cmd_data(self, verb, arg, outcome):
        # §4.3.2: DATA, RSET and QUIT take no argument (501); RFC 2920 §3.1: DATA after refused
        # recipients only is 554, with none at all 503.
        if arg:
            return 501
        if self.tx is None or self.chunked is not None:
            return 503
        if self.tx[0] == 0:
            return 554 if self.tx[1] else 503
        if self.tx[2]:  # RFC 3030 §3: a binary message comes with BDAT
            return 503
        self.data = True
        return 354

    def cmd_rset(self, verb, arg, outcome):
        if arg:
            return 501
        self.tx, self.chunked = None, None
        return 250

    def cmd_quit(self, verb, arg, outcome):
        if arg:
            return 501
        self.closed = True
        return 221

    def cmd_noop(self, verb, arg, outcome):
        return 250  # §4.1.1.9: the argument is ignored

    def cmd_vrfy(self, verb, arg, outcome):
        return 252 if arg else 501  # §3.5.3: 252 tells nothing

    def cmd_expn(self, verb, arg, outcome):
        return 502

    def cmd_help(self, verb, arg, outcome):
        return 214

    def cmd_bdat(self, verb, arg, outcome):
        """RFC 3030 §2: "BDAT" SP chunk-size [SP "LAST"]. Its reply (None here) follows the
        chunk, read even when the BDAT is refused, so the next command is found where it starts.
        """
        m = re.fullmatch(rb"(\d+)( +LAST)?", arg, re.I)
        if not m or int(m.group(1)) >= 2 ** 64:
            if self.greeting is None:
                return 503
            self.closed = True  # the chunk's end is unknown: nothing after it can be trusted
            return 501
        size, last = int(m.group(1)), m.group(2) is not None
        if self.greeting is None or self.tx is None:
            code = 503
        elif self.tx[0] == 0:
            code = 554 if self.tx[1] else 503  # as DATA (RFC 2920 §3.1)
        elif size > MAX_SIZE - (self.chunked or 0):
            code, self.tx, self.chunked = 552, None, None  # RFC 1870: the transaction fails
        elif last:
            code, self.tx, self.chunked = 250, None, None
        else:
            code, self.chunked = 250, (self.chunked or 0) + size
        if size == 0:
            return code
        self.chunk = [size, code]
        return None

    def cmd_starttls(self, verb, arg, outcome):
        if self.chunked is not None:
            return 503  # not between BDAT chunks
        if arg:
            return 501
        if self.tls:
            return 503
        return 454  # these daemons have no certificate for STARTTLS

    def cmd_auth(self, verb, arg, outcome):
        if not self.auth_enabled:
            return 503
        if not self.tls:
            return 538  # RFC 4954 §6
        if self.greeting != b"EHLO" or self.tx is not None:
            return 503  # RFC 4954 §4: after EHLO, never inside a transaction
        mech, space, initial = arg.partition(b" ")
        if not mech or (space and (not initial or b" " in initial)):
            return 501
        if mech.upper() not in (b"PLAIN", b"LOGIN"):
            return 504
        if space:
            return self.auth_response(initial, initial=True)
        self.exchange = True
        return 334

    def auth_response(self, text, initial):
        """One AUTH PLAIN response (RFC 4616): it ends the exchange either way."""
        self.exchange = False
        if text == b"*":
            return 501  # the client cancels
        if initial and text == b"=":
            text = b""  # RFC 4954 §4: an empty initial response
        if not BASE64.match(text) or base64.b64decode(text).count(b"\0") < 2:
            return 501  # not strict base64, or not "authzid NUL authcid NUL passwd"
        return 535  # nobody knows the password


# Each state: how a client gets there (lines whose replies are checked too).
EHLO, HELO = b"EHLO client.test", b"HELO client.test"
MAIL, RCPT = b"MAIL FROM:<a@example.org>", b"RCPT TO:<b@example.com>"
PLAIN_STATES = {
    "connected": [],
    "helo": [HELO],
    "ehlo": [EHLO],
    "helo-mail": [HELO, MAIL],
    "mail": [EHLO, MAIL],
    "rcpt": [EHLO, MAIL, RCPT],
    "rcpt-refused": [EHLO, MAIL, b"RCPT TO:<b@@example.com>"],
    "rset": [EHLO, MAIL, RCPT, b"RSET"],
    "after-message": [EHLO, MAIL, RCPT, b"DATA", b"."],
    "after-bdat-message": [EHLO, MAIL, RCPT, b"BDAT 3 LAST", b"x"],
    "between-chunks": [EHLO, MAIL, RCPT, b"BDAT 3", b"x"],
    "bdat-refused": [EHLO, MAIL, b"BDAT 3", b"x"],
}
TLS_STATES = {
    "tls-connected": [],
    "tls-ehlo": [EHLO],
    "tls-helo": [HELO],
    "tls-mail": [EHLO, MAIL],
    "auth-exchange": [EHLO, b"AUTH PLAIN"],
}
OUTCOMES = {line: outcome for _, lines, outcome in SHAPES for line in lines[:1]}
OUTCOMES.update({MAIL: 250, RCPT: "ok", b"RCPT TO:<b@@example.com>": "address"})


class Conformance(SluiceTestCase):
    tls = False
    states = PLAIN_STATES

    def setUp(self):
        config = {"limits": {"max_message_size": MAX_SIZE, "max_errors": 1000}}
        listeners = [{"name": "submission", "role": "submission"}]
        self.ctx = None
        if self.tls:
            listeners = [{"name": "submission", "role": "submission", "tls": "implicit"}]
            self.ctx = client_context()
        self.d = self.start_sluice(listeners=listeners, config=config, tls=self.tls, start=False)
        if self.tls:
            # AUTH is offered; nobody knows the password.
            users = os.path.join(self.d.dir, "users")
            hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                                    input=os.urandom(16).hex().encode(), stdout=subprocess.PIPE,
                                    check=True, timeout=30).stdout.decode().strip()
            with open(users, "w") as f:
                f.write("nobody:%s\n" % hashed)
            config["relay"] = {"trusted_networks": ["127.0.0.0/8", "::1/128"], "users": users}
        self.d.start()

    def model(self):
        return Model(tls=self.tls, auth=self.tls)

    def connect(self, banner=True):
        return self.d.connect(timeout=READ_TIMEOUT, tls_context=self.ctx, banner=banner)

    def read_codes(self, c, n, context):
        codes = []
        for _ in range(n):
            try:
                codes.append(c.read_reply(READ_TIMEOUT).code)
            except Exception as e:  # noqa: BLE001 - reported with what came so far
                self.fail("%s: expected %d replies, got %r, then %s: %s\ntranscript: %r"
                          % (context, n, codes, type(e).__name__, e, c.transcript[-12:]))
        return codes

    def expect_closed(self, c, context):
        self.assertTrue(c.wait_closed(READ_TIMEOUT), "%s: still open after 221" % context)
        self.assertEqual(c.buf, b"", "%s: bytes after the last reply" % context)

    def test_one_command_at_a_time(self):
        """Every shape in every state, waiting for each reply; then HELP, which must get its own
        214 (a stray second reply to the shape would be read in its place), and QUIT."""
        for state, prefix in self.states.items():
            for label, lines, outcome in SHAPES:
                with self.subTest(state=state, shape=label):
                    context = "state %s, shape %r" % (state, label)
                    model = self.model()
                    with self.connect() as c:
                        self.assertEqual(c.banner.code, 220)
                        sent = [(line, OUTCOMES.get(line)) for line in prefix]
                        sent += [(lines[0], outcome)]
                        sent += [(line, OUTCOMES.get(line)) for line in lines[1:]]
                        sent += [(b"HELP", None), (b"QUIT", None)]
                        for line, out in sent:
                            if model.closed:
                                break
                            want = model.feed(line + CRLF, out)
                            c.send(line + CRLF)
                            got = self.read_codes(c, len(want), "%s, line %r" % (context, line))
                            self.assertEqual(got, want, "%s, line %r" % (context, line))
                        if model.closed:
                            self.expect_closed(c, context)

    def test_pipelined(self):
        """Each state's whole session in one write: for every shape the way into the state, then
        the shape (in "connected", the shapes follow each other, sent before the banner is read).
        The replies must come in the model's count and order, nothing more."""
        body = [s for s in SHAPES if not s[1][0].startswith(b"QUIT")]
        for state, prefix in self.states.items():
            with self.subTest(state=state):
                model = self.model()
                stream, want = b"", []
                for label, lines, outcome in body:
                    sent = [(line, OUTCOMES.get(line)) for line in prefix]
                    sent += [(lines[0], outcome)]
                    sent += [(line, OUTCOMES.get(line)) for line in lines[1:]]
                    for line, out in sent:
                        stream += line + CRLF
                        want += model.feed(line + CRLF, out)
                stream += b"QUIT" + CRLF
                want += model.feed(b"QUIT" + CRLF)
                with self.connect(banner=False) as c:
                    c.send(stream)  # before the banner is read
                    self.assertEqual(c.read_reply(READ_TIMEOUT).code, 220)
                    got = self.read_codes(c, len(want), "state %s pipelined" % state)
                    if got != want:
                        first = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
                        self.fail("state %s pipelined: reply %d is %d, expected %d\n"
                                  "expected %r\ngot      %r"
                                  % (state, first, got[first], want[first], want, got))
                    self.expect_closed(c, "state %s pipelined" % state)


class ConformanceTLS(Conformance):
    """The same over implicit TLS with AUTH offered: STARTTLS is 503, AUTH is exchanged."""
    tls = True
    states = TLS_STATES


class LateReader(SluiceTestCase):
    def test_client_reading_its_replies_late(self):
        """A client pipelines far more commands than the server will queue replies for while it
        does not read (the server stops reading then), and reads only later: every command still
        gets its reply, in order, once the client reads."""
        d = self.start_sluice()
        n = 20000  # ~1.4 MB of HELP replies: more than the kernel buffers and the server queue
        with d.connect(timeout=READ_TIMEOUT) as c:
            self.assertEqual(c.ehlo().code, 250)
            stream = (b"HELP" + CRLF) * n + b"QUIT" + CRLF
            writer = c.sock.dup()  # its own timeout: the reader's changes with every read
            writer.settimeout(30)
            sender = threading.Thread(target=writer.sendall, args=(stream,))
            sender.start()
            try:
                time.sleep(1.0)  # the client reads nothing for a while: the server stops reading
                codes = self.read_all(c, n)
            finally:
                sender.join(30)
                writer.close()
            self.assertEqual(codes, [214] * n, "replies to the pipelined HELPs")
            self.assertEqual(c.read_reply(READ_TIMEOUT).code, 221)
            self.assertFalse(sender.is_alive(), "the client could not send all of its commands")

    def read_all(self, c, n):
        codes = []
        try:
            while len(codes) < n:
                codes.append(c.read_reply(READ_TIMEOUT).code)
        except Exception as e:  # noqa: BLE001 - reported with the count
            self.fail("%d of %d replies, then %s: %s" % (len(codes), n, type(e).__name__, e))
        return codes


class BeforeGreeting(SluiceTestCase):
    def test_pregreet(self):
        """An inbound listener with a pregreet wait: whatever a client sends before the banner
        gets exactly one reply, 554, and the connection is closed (postscreen's pregreet test)."""
        d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}],
                              config={"inbound": {"pregreet_wait": "3s"}})
        for label, lines, _ in SHAPES[::5]:
            with self.subTest(shape=label):
                with d.connect(timeout=READ_TIMEOUT, banner=False) as c:
                    c.send(b"".join(line + CRLF for line in lines))
                    self.assertEqual(c.read_reply(READ_TIMEOUT).code, 554)
                    self.assertTrue(c.wait_closed(READ_TIMEOUT), "open after 554")
                    self.assertEqual(c.buf, b"", "bytes after the 554")


if __name__ == "__main__":
    main()
