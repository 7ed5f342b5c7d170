"""
A scripted SMTP server for test_smtp_client.c and test_verify.c: one connection on a free
loopback port, replies taken from a JSON script, everything received recorded byte for byte.

usage: smtp_peer.py SCRIPT_JSON OUT_DIR
Prints the port on stdout once listening. Writes into OUT_DIR:
  commands.log  one line per command: "<ms since accept> <replies sent before it was read> <line>"
  data_<n>.bin  the raw bytes of the n-th DATA body as received, final "." line included
  message_<n>.bin  the n-th message as the peer understands it: a DATA body without its final "."
                line and with dot-stuffing undone, or the BDAT chunks (RFC 3030) put together
Script keys: "greeting", "ehlo", "helo", "starttls", "mail", "rcpt", "data", "end", "rset", "quit",
"bdat" (the reply to a chunk before the LAST, whose reply is "end"): each a reply or a list of
replies used in turn (the last one repeats); multi-line replies use
"\r\n". A reply "@close" closes the connection, "@hang" stops answering (and reads until the
client gives up), "@raw:TEXT" sends TEXT as is. "tls": true makes a certificate so that STARTTLS
works.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

DEFAULTS = {
    "greeting": "220 peer.test ESMTP",
    "ehlo": "250-peer.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME",
    "helo": "250 peer.test",
    "starttls": "220 go ahead",
    "mail": "250 2.1.0 ok",
    "rcpt": "250 2.1.5 ok",
    "data": "354 go",
    "end": "250 2.0.0 queued",
    "bdat": "250 2.0.0 chunk ok",
    "rset": "250 2.0.0 reset",
    "quit": "221 2.0.0 bye",
    "noop": "250 ok",
}
DEADLINE = 30  # seconds: the peer never outlives a broken test by much


class Peer:
    def __init__(self, script, out):
        self.script = dict(DEFAULTS, **script)
        self.out = out
        self.used = {}
        self.replies = 0
        self.ndata = 0
        self.chunks = b""  # the BDAT chunks of the message so far
        # Latin-1 both ways: the log holds the bytes received, UTF-8 envelopes included.
        self.log = open(os.path.join(out, "commands.log"), "w", encoding="latin-1")

    def reply_for(self, key):
        r = self.script[key]
        if isinstance(r, list):
            i = self.used.get(key, 0)
            self.used[key] = i + 1
            r = r[min(i, len(r) - 1)]
        return r

    def send(self, key):
        """Sends the scripted reply; returns False when the connection is to end."""
        r = self.reply_for(key)
        if r == "@close":
            return False
        if r == "@hang":
            while self.sock.recv(65536):
                pass
            return False
        data = r[5:].encode() if r.startswith("@raw:") else (r + "\r\n").encode()
        self.sock.sendall(data)
        self.replies += 1
        return True

    def recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        return chunk

    def run(self, sock, cert):
        self.sock = sock
        self.start = time.monotonic()
        if not self.send("greeting"):
            return
        buf = b""
        while True:
            seen = self.replies
            buf += self.recv()
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.rstrip(b"\r").decode("latin-1")
                ms = int((time.monotonic() - self.start) * 1000)
                self.log.write("%d %d %s\n" % (ms, seen, text))
                self.log.flush()
                verb = text.split(" ")[0].split(":")[0].lower()
                key = {"mail": "mail", "rcpt": "rcpt", "data": "data", "ehlo": "ehlo",
                       "helo": "helo", "starttls": "starttls", "rset": "rset",
                       "quit": "quit", "bdat": "bdat"}.get(verb, "noop")
                if key == "bdat":
                    buf, key = self.read_chunk(text, buf)
                if not self.send(key):
                    return
                if key == "quit":
                    return
                if key == "starttls" and self.script[key].startswith("220"):
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*cert)
                    self.sock = ctx.wrap_socket(self.sock, server_side=True)
                    buf = b""
                    break
                if key == "data" and self.used_reply_is_354():
                    buf = self.read_body(buf)
                    if not self.send("end"):
                        return

    def read_chunk(self, line, buf):
        """Reads the chunk of "BDAT n [LAST]"; returns what follows it and the reply's key."""
        words = line.split(" ")
        size, last = int(words[1]), len(words) > 2 and words[2].upper() == "LAST"
        while len(buf) < size:
            buf += self.recv()
        self.chunks += buf[:size]
        if not last:
            return buf[size:], "bdat"
        self.ndata += 1
        self.write_message(self.chunks)
        self.chunks = b""
        return buf[size:], "end"

    def write_message(self, message):
        with open(os.path.join(self.out, "message_%d.bin" % self.ndata), "wb") as f:
            f.write(message)

    def used_reply_is_354(self):
        r = self.script["data"]
        if isinstance(r, list):
            r = r[min(self.used["data"] - 1, len(r) - 1)]
        return r.startswith("354")

    def read_body(self, buf):
        """Reads up to and including CRLF.CRLF; returns what follows it."""
        data = buf
        while True:
            end = (b"\r\n" + data).find(b"\r\n.\r\n")
            if end >= 0:
                end += 3  # in data's coordinates, past ".\r\n"
                break
            data += self.recv()
        self.ndata += 1
        with open(os.path.join(self.out, "data_%d.bin" % self.ndata), "wb") as f:
            f.write(data[:end])
        lines = data[:end - 3].split(b"\r\n")
        self.write_message(b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines))
        ms = int((time.monotonic() - self.start) * 1000)
        self.log.write("%d %d <body %d bytes>\n" % (ms, self.replies, end))
        self.log.flush()
        return data[end:]


def make_cert(out):
    cert, key = os.path.join(out, "cert.pem"), os.path.join(out, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


def main():
    script, out = json.loads(sys.argv[1]), sys.argv[2]
    cert = make_cert(out) if script.get("tls") else None
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(DEADLINE)
    print(lsock.getsockname()[1], flush=True)
    sock, _ = lsock.accept()
    sock.settimeout(DEADLINE)
    peer = Peer(script, out)
    try:
        peer.run(sock, cert)
    except (EOFError, OSError, ssl.SSLError):
        pass
    peer.log.close()
    sock.close()


if __name__ == "__main__":
    main()
