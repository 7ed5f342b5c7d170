/*
 * The address space arithmetic behind the relay gate: public counts with the special-purpose
 * ranges taken out, merging, finding an address outside a set, and IPv4 carried in IPv6.
 */
#include <arpa/inet.h>
#include <string.h>

#include "policy/ip_space.h"
#include "tests/unit/check.h"

static ip_uint public_of(int family, const char *net, unsigned prefix)
{
    unsigned char bytes[16];
    struct ip_set s;
    ip_set_init(&s, family);
    CHECK_INT_EQ(inet_pton(family, net, bytes), 1);
    ip_set_add(&s, bytes, prefix);
    ip_set_merge(&s);
    ip_uint n = ip_set_public_count(&s);
    ip_set_free(&s);
    return n;
}

#define P(bits) ((ip_uint)1 << (bits))

static void test_public_counts(void)
{
    /* 2^32 less 0/8, 10/8, 127/8, 100.64/10, 169.254/16, 172.16/12, 192.168/16, 198.18/15,
     * five /24s, 224/4 and 240/4. */
    CHECK(public_of(AF_INET, "0.0.0.0", 0) ==
          P(32) - 3 * P(24) - P(22) - P(16) - P(20) - P(16) - P(17) - 5 * P(8) - 2 * P(28));
    CHECK(public_of(AF_INET, "0.0.0.0", 0) == 3702258432u);
    CHECK(public_of(AF_INET, "8.0.0.0", 8) == P(24));
    CHECK(public_of(AF_INET, "10.0.0.0", 8) == 0);
    CHECK(public_of(AF_INET, "100.0.0.0", 8) == 3 * P(22));
    CHECK(public_of(AF_INET, "192.0.2.0", 24) == 0);
    CHECK(public_of(AF_INET, "192.0.2.7", 32) == 0);
    CHECK(public_of(AF_INET, "192.0.3.0", 24) == P(8));
    CHECK(public_of(AF_INET, "255.255.255.255", 32) == 0);
    /* 2000::/3 less 2001::/23, 2001:db8::/32 (outside the /23), 2002::/16 and 3fff::/20. */
    CHECK(public_of(AF_INET6, "2000::", 3) == P(125) - P(105) - P(96) - P(112) - P(108));
    CHECK(public_of(AF_INET6, "2a00::", 12) == P(116));
    CHECK(public_of(AF_INET6, "fd00::", 8) == 0);
    CHECK(public_of(AF_INET6, "64:ff9b::", 96) == 0); /* judged as the IPv4 it carries */
    CHECK(public_of(AF_INET6, "::1", 128) == 0);
    CHECK(public_of(AF_INET6, "ff02::1", 128) == 0);
    /* ::/0 has special ranges at both ends: no wrap-around. */
    CHECK(public_of(AF_INET6, "::", 0) > P(127));
}

static void test_merge_and_find(void)
{
    unsigned char a[4] = {1, 2, 0, 0}, b[4] = {1, 2, 128, 0}, c[4] = {1, 2, 64, 0},
                  d[4] = {10, 0, 0, 0};
    struct ip_set s;
    ip_set_init(&s, AF_INET);
    ip_set_add(&s, d, 8);
    ip_set_add(&s, b, 17);
    ip_set_add(&s, a, 17);
    ip_set_add(&s, c, 18); /* inside the first /17 */
    ip_set_merge(&s);
    CHECK_INT_EQ(s.n, 2); /* adjacent halves joined: 1.2.0.0/16, then 10/8 */
    CHECK(s.ranges[0].first == 0x01020000u && s.ranges[0].last == 0x0102ffffu);
    CHECK(ip_set_public_count(&s) == P(16));

    ip_uint out = 0;
    CHECK_INT_EQ(ip_set_find_outside(&s, 0x0a000000u, 0x0affffffu, &out), -1);
    CHECK_INT_EQ(ip_set_find_outside(&s, 0x01020304u, 0x0b000000u, &out), 0);
    CHECK(out == 0x01030000u);
    CHECK_INT_EQ(ip_set_find_outside(&s, 0x09000000u, 0x0b000000u, &out), 0);
    CHECK(out == 0x09000000u);
    CHECK_INT_EQ(ip_set_find_outside(&s, 0x0a000000u, 0x0b000000u, &out), 0);
    CHECK(out == 0x0b000000u);
    ip_set_free(&s);

    /* The whole IPv6 space merges into one range without wrapping. */
    unsigned char zero[16] = {0}, high[16] = {0xff, [15] = 1};
    ip_set_init(&s, AF_INET6);
    ip_set_add(&s, high, 128);
    ip_set_add(&s, zero, 0);
    ip_set_merge(&s);
    CHECK_INT_EQ(s.n, 1);
    CHECK(s.ranges[0].first == 0 && s.ranges[0].last == ~(ip_uint)0);
    CHECK_INT_EQ(ip_set_find_outside(&s, 0, ~(ip_uint)0, &out), -1);
    ip_set_free(&s);
}

static const struct ip_embedding *embedding(const char *name, unsigned layout)
{
    for (size_t i = 0; i < ip_nembeddings; i++)
        if (strcmp(ip_embeddings[i].name, name) == 0 && ip_embeddings[i].layout == layout)
            return &ip_embeddings[i];
    return NULL;
}

/* The IPv4 network that text/prefix carries in embedding e, as "a.b.c.d/n", or "none". */
static const char *carried(const struct ip_embedding *e, const char *text, unsigned prefix)
{
    static char out[32];
    unsigned char net[16], v4[4];
    unsigned v4prefix;
    CHECK_INT_EQ(inet_pton(AF_INET6, text, net), 1);
    if (ip_embedded_v4(e, net, prefix, v4, &v4prefix) < 0)
        return "none";
    snprintf(out, sizeof out, "%u.%u.%u.%u/%u", v4[0], v4[1], v4[2], v4[3], v4prefix);
    return out;
}

static void test_embeddings(void)
{
    const struct ip_embedding *nat64 = embedding("NAT64", 96), *six = embedding("6to4", 16),
                              *teredo = embedding("Teredo", 96),
                              *local48 = embedding("local NAT64", 48),
                              *local64 = embedding("local NAT64", 64);
    CHECK(nat64 && six && teredo && local48 && local64);
    if (!(nat64 && six && teredo && local48 && local64))
        return;
    CHECK_STR_EQ(carried(nat64, "64:ff9b::", 96), "0.0.0.0/0");
    CHECK_STR_EQ(carried(nat64, "::", 0), "0.0.0.0/0");
    CHECK_STR_EQ(carried(nat64, "64:ff9b::800:0", 104), "8.0.0.0/8");
    CHECK_STR_EQ(carried(nat64, "64:ff9b::808:808", 128), "8.8.8.8/32");
    CHECK_STR_EQ(carried(nat64, "2001:db8::", 32), "none");
    CHECK_STR_EQ(carried(six, "2002:808::", 32), "8.8.0.0/16");
    CHECK_STR_EQ(carried(six, "2002:808:808:1::", 64), "8.8.8.8/32");
    CHECK_STR_EQ(carried(teredo, "2001:0:4136:e378::", 64), "0.0.0.0/0");
    CHECK_STR_EQ(carried(teredo, "2001::f7f7:0", 112), "8.8.0.0/16"); /* inverted */
    /* RFC 6052 /48: IPv4 bits 48-63, then 72-87 past the u octet. */
    CHECK_STR_EQ(carried(local48, "64:ff9b:1:808::", 64), "8.8.0.0/16");
    CHECK_STR_EQ(carried(local48, "64:ff9b:1:808:8:800::", 88), "8.8.8.8/32");
    CHECK_STR_EQ(carried(local64, "64:ff9b:1:0:8:808::", 96), "8.8.8.0/24");
    CHECK_STR_EQ(carried(local64, "64:ff9b:2::", 48), "none");

    /* Every embedding carries back what it was given. */
    for (size_t i = 0; i < ip_nembeddings; i++) {
        unsigned char v4[4] = {198, 51, 100, 7}, v6[16], back[4];
        unsigned prefix;
        ip_embed_v4(&ip_embeddings[i], v4, v6);
        CHECK_INT_EQ(ip_embedded_v4(&ip_embeddings[i], v6, 128, back, &prefix), 0);
        CHECK_INT_EQ(prefix, 32);
        CHECK(memcmp(back, v4, 4) == 0);
    }
}

int main(void)
{
    test_public_counts();
    test_merge_and_find();
    test_embeddings();
    return check_report("test_ip_space");
}
