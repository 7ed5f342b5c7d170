"""
A DNS server on loopback for benchmarks with many destinations: every name under ZONE has
"MX 10 mx.ZONE", mx.ZONE has one A record (the address given) and no AAAA, any other question is
NXDOMAIN; answers live an hour (negative ones too, by the zone's SOA). One UDP socket with a large
receive buffer, answered one datagram at a time, so tens of thousands of MX lookups a daemon
starts at once are all answered on the first try. Run as a process of its own:

    python3 wildcard_dns.py ZONE ADDRESS    # prints the port it listens on (127.0.0.1), then serves
"""
import socket
import struct
import sys

TTL = 3600
RCVBUF = 32 << 20  # bytes: a burst of 20,000 queries waits in the socket, none dropped
SO_RCVBUFFORCE = 33  # Linux (asm-generic/socket.h); the socket module does not name it


def encode_name(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"


def parse_question(packet):
    """(name lower-cased, qtype, offset past the question) of the first question."""
    labels, pos = [], 12
    while packet[pos]:
        n = packet[pos]
        labels.append(packet[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    qtype = struct.unpack(">H", packet[pos + 1:pos + 3])[0]
    return ".".join(labels), qtype, pos + 5


def record(rtype, rdata):
    """A resource record whose owner is the question's name (a pointer to offset 12)."""
    return struct.pack(">HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata


def answer(packet, zone, address):
    name, qtype, end = parse_question(packet)
    flags, rcode, answers = 0x8400, 0, []  # a response, authoritative
    if name == "mx." + zone:
        if qtype == 1:
            answers.append(record(1, socket.inet_aton(address)))
    elif name.endswith("." + zone) and qtype == 15:
        answers.append(record(15, struct.pack(">H", 10) + encode_name("mx." + zone)))
    elif not name.endswith("." + zone) or qtype != 28:
        rcode = 3
    soa = b""
    if not answers:  # the SOA's last field is the negative answers' lifetime (RFC 2308)
        rdata = encode_name("ns." + zone) + encode_name("hostmaster." + zone)
        rdata += struct.pack(">IIIII", 1, TTL, TTL, TTL, TTL)
        soa = encode_name(zone) + struct.pack(">HHIH", 6, 1, TTL, len(rdata)) + rdata
    head = packet[:2] + struct.pack(">HHHHH", flags | (packet[2] & 1) << 8 | rcode, 1,
                                    len(answers), 1 if soa else 0, 0)
    return head + packet[12:end] + b"".join(answers) + soa


def main():
    zone, address = sys.argv[1].lower().strip("."), sys.argv[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:  # not privileged
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # up to net.core.rmem_max
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(packet, zone, address), peer)
        except (IndexError, struct.error):
            pass  # not a question: no answer


if __name__ == "__main__":
    main()
