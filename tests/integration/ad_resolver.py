"""
A stand-in for a validating resolver on loopback, for DANE tests: it forwards each UDP query to an
upstream (a MailNet's dnsmasq, which holds the records, TLSA included) and sets the AD bit on the
answer, as a validating resolver does for data it could validate (RFC 4035 §3.2.3). Names in
`insecure` are answered without the AD bit (an unsigned zone), names in `servfail` with SERVFAIL
(what a validating resolver answers for bogus data). Names in `cnames` are aliases it answers
itself, as a recursive resolver does: the CNAME chain, then what the upstream holds at its end
(dnsmasq cannot alias names it only has TLSA records for). It tests the daemon's AD-bit path, not
DNSSEC validation itself. Runs in a thread; every wait is bounded.
"""
import select
import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

UPSTREAM_WAIT = 2.0  # seconds for dnsmasq's answer
CNAME_HOPS = 8


class AdResolver:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.insecure = set()  # lower-case names, no trailing dot
        self.servfail = set()
        self.cnames = {}  # alias -> target, lower-case names without the trailing dot
        self.questions = []  # (name, type name, AD bit in the query) in arrival order
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def asked(self, name, qtype="TLSA"):
        """How many queries for (name, qtype) came in; each must have had the AD bit set."""
        hits = [q for q in self.questions if q[0] == name and q[1] == qtype]
        assert all(q[2] for q in hits), "%s %s asked without the AD bit" % (name, qtype)
        return len(hits)

    def _serve(self):
        while not self.stopping:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            try:
                wire, client = self.sock.recvfrom(4096)
                query = dns.message.from_wire(wire)
            except (OSError, dns.exception.DNSException):
                continue
            answer = self._answer(query, wire)
            if answer is not None:
                self.sock.sendto(answer, client)

    def _answer(self, query, wire):
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.questions.append((name, dns.rdatatype.to_text(question.rdtype),
                               bool(query.flags & dns.flags.AD)))
        if name in self.servfail:
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.SERVFAIL)
            return reply.to_wire()
        if name in self.cnames:
            return self._alias(query, name, question.rdtype)
        answer = self._upstream(wire)
        if answer is None:
            return None
        if name in self.insecure:
            answer[3] &= ~0x20
        else:
            answer[3] |= 0x20
        return bytes(answer)

    def _upstream(self, wire):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(UPSTREAM_WAIT)
            up.sendto(wire, self.upstream)
            try:
                return bytearray(up.recv(65535))
            except socket.timeout:
                return None

    def _alias(self, query, name, rdtype):
        """The CNAME chain from `name`, then the upstream's answer at its end; AD set unless a
        name of the chain is in `insecure`."""
        reply = dns.message.make_response(query)
        chain = [name]
        while chain[-1] in self.cnames and len(chain) <= CNAME_HOPS:
            target = self.cnames[chain[-1]]
            reply.answer.append(dns.rrset.from_text(chain[-1] + ".", 300, "IN", "CNAME",
                                                    target + "."))
            chain.append(target)
        wire = self._upstream(dns.message.make_query(chain[-1], rdtype).to_wire())
        if wire is None:
            return None
        end = dns.message.from_wire(bytes(wire))
        reply.answer.extend(end.answer)
        reply.authority.extend(end.authority)
        reply.set_rcode(end.rcode())
        reply.flags |= dns.flags.RA
        if not self.insecure.intersection(chain):
            reply.flags |= dns.flags.AD
        return reply.to_wire()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
