"""Checks a DSN built by test_dsn.c with Python's email package, independently of Sluice's code.

Usage: dsn_check.py FILE [EXPECTATION...]; each expectation is one of
  hdr.NAME=VALUE      a top-level header field (unfolded) equals VALUE
  msg.NAME=VALUE      a per-message delivery-status field equals VALUE
  rcptN.NAME=VALUE    recipient block N's field equals VALUE (rcptN.NAME~VALUE: contains VALUE)
  rcpts=N             the number of recipient blocks
  headers_type=TYPE   the content type of the third part
  headers~TEXT / headers!TEXT   the returned header section contains / lacks TEXT
  text~TEXT           the human-readable part contains TEXT
  raw!TEXT            no line of the whole DSN starts with TEXT
Always checked: CRLF line ends only, lines within 998 octets, multipart/report with
report-type=delivery-status and three parts. Exit status 0 when everything holds.
"""
import email
import email.policy
import re
import sys

errors = []


def fail(msg):
    errors.append(msg)


def unfold(value):
    return re.sub(r"\r?\n[ \t]", " ", str(value)) if value is not None else None


def main():
    raw = open(sys.argv[1], "rb").read()
    if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
        fail("bare CR or LF")
    for n, line in enumerate(raw.split(b"\r\n")):
        if len(line) > 998:
            fail("line %d has %d octets" % (n + 1, len(line)))
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if msg.get_content_type() != "multipart/report":
        fail("type " + msg.get_content_type())
    if msg.get_param("report-type") != "delivery-status":
        fail("report-type " + str(msg.get_param("report-type")))
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) != 3:
        fail("want 3 parts, got %r" % (len(parts) if isinstance(parts, list) else parts))
        return
    text, report, headers = parts
    if text.get_content_type() != "text/plain":
        fail("first part " + text.get_content_type())
    # The parts' bodies as sent; Python parses only message/delivery-status into blocks.
    raw_parts = raw.split(b"\r\n--" + msg.get_boundary().encode())
    raw_bodies = [p.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in p else b"" for p in raw_parts]
    blocks = report.get_payload()
    if report.get_content_type() == "message/global-delivery-status":
        blocks = [email.message_from_string(b + "\r\n") for b in
                  raw_bodies[2].decode("utf-8").strip("\r\n").split("\r\n\r\n")]
    elif report.get_content_type() != "message/delivery-status":
        fail("second part " + report.get_content_type())
    header_text = raw_bodies[3].decode("utf-8", "replace")
    text_body = text.get_payload(decode=True).decode("utf-8", "replace")
    for exp in sys.argv[2:]:
        m = re.match(r"(hdr|msg|rcpt\d+|rcpts|headers_type|headers|text|raw)\.?([\w-]*)([=~!])(.*)$",
                     exp, re.S)
        if not m:
            fail("bad expectation " + exp)
            continue
        kind, name, op, want = m.groups()
        if kind == "rcpts":
            got = str(len(blocks) - 1)
        elif kind == "headers_type":
            got = headers.get_content_type()
        elif kind == "headers":
            got = header_text
        elif kind == "text":
            got = unfold(text_body)
        elif kind == "raw":
            if any(line.startswith(want.encode()) for line in raw.split(b"\r\n")):
                fail("a line starts with %r" % want)
            continue
        else:
            src = msg if kind == "hdr" else blocks[0] if kind == "msg" else None
            if src is None:
                idx = int(kind[4:]) + 1
                src = blocks[idx] if idx < len(blocks) else None
            if src is not None and len(src.get_all(name, [])) > 1:
                fail("%s has %s more than once" % (kind, name))
            got = unfold(src.get(name)) if src is not None else None
        ok = (got == want if op == "=" else
              got is not None and want in got if op == "~" else
              got is not None and want not in got)
        if not ok:
            fail("%s: got %r" % (exp, got))


main()
for e in errors:
    print("dsn_check:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
