/*
 * The address space as the relay gate judges it: which addresses are public (outside the IANA
 * special-purpose registries: private, loopback, link-local, shared CGNAT, documentation,
 * multicast, reserved, unique-local, ...), which IPv6 ranges carry an IPv4 address inside them
 * (NAT64, 6to4, Teredo, IPv4-mapped and -compatible), and sets of address ranges with the size of
 * their public part. Pure arithmetic over plain values: the relay lint and the relay battery use
 * it.
 */
#ifndef SLUICE_IP_SPACE_H
#define SLUICE_IP_SPACE_H

#include <stddef.h>

/* An address or a number of addresses. IPv6 needs 128 bits; GCC and Clang have them on every
 * 64-bit target. An IPv4 address is its 32-bit value. */
typedef unsigned __int128 ip_uint;

struct ip_range {
    ip_uint first, last; /* inclusive */
};

/* Addresses of one family, as ranges; ip_set_merge() sorts them and joins overlapping ones. */
struct ip_set {
    int family;              /* AF_INET or AF_INET6 */
    struct ip_range *ranges; /* owned */
    size_t n, cap;
};

void ip_set_init(struct ip_set *s, int family);
void ip_set_free(struct ip_set *s);
/* Adds the network net/prefix (net: 4 or 16 bytes in network order, host bits ignored). */
void ip_set_add(struct ip_set *s, const unsigned char *net, unsigned prefix);
/* Adds every range of `from` (of the same family). */
void ip_set_add_set(struct ip_set *s, const struct ip_set *from);
/* Adds every special-purpose range of the set's family: what is left outside is public. */
void ip_set_add_special(struct ip_set *s);
/* Sorts the ranges and joins overlapping and adjacent ones; the queries below need it. */
void ip_set_merge(struct ip_set *s);
/* How many addresses of the merged set s are public. */
ip_uint ip_set_public_count(const struct ip_set *s);
/* The lowest address in [from, to] that the merged set s does not hold, in *out: 0, or -1 when s
 * holds them all. */
int ip_set_find_outside(const struct ip_set *s, ip_uint from, ip_uint to, ip_uint *out);

/* 4 or 16 bytes in network order to a number and back. */
ip_uint ip_from_bytes(int family, const unsigned char *bytes);
void ip_to_bytes(int family, ip_uint addr, unsigned char *bytes);

/* An IPv6 range whose addresses carry an IPv4 address. Where the IPv4 bits sit follows RFC 6052
 * for a translation prefix of length `layout` (bits 64-71 are skipped when layout < 96). */
struct ip_embedding {
    const char *name; /* "NAT64", "6to4", ... */
    unsigned char net[16];
    unsigned prefix;
    unsigned layout;
    int inverted; /* Teredo stores the client's IPv4 address with every bit flipped */
};

extern const struct ip_embedding ip_embeddings[];
extern const size_t ip_nembeddings;

/* The IPv4 network that every address of the IPv6 network net/prefix can carry in embedding e:
 * 0 with it in v4[4] and *v4prefix (0.0.0.0/0 when net/prefix holds all of e's range), or -1
 * when net/prefix and e's range do not overlap. */
int ip_embedded_v4(const struct ip_embedding *e, const unsigned char *net, unsigned prefix,
                   unsigned char *v4, unsigned *v4prefix);
/* The IPv6 address of e's range that carries v4[4] (every other bit zero) into v6[16]. */
void ip_embed_v4(const struct ip_embedding *e, const unsigned char *v4, unsigned char *v6);

#endif
