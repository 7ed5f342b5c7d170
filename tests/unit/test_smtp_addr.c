#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "lib/smtp_addr.h"
#include "tests/unit/check.h"

#define NUL_OK SMTP_ADDR_ALLOW_NULL
#define PM_OK SMTP_ADDR_ALLOW_POSTMASTER
#define U8_OK SMTP_ADDR_ALLOW_UTF8

#define QUOTED SMTP_ADDR_QUOTED
#define ROUTING SMTP_ADDR_ROUTING_CHARS
#define ROUTE SMTP_ADDR_HAD_ROUTE
#define LITERAL SMTP_ADDR_IP_LITERAL
#define UTF8 SMTP_ADDR_UTF8
#define TDOT SMTP_ADDR_TRAILING_DOT

/* An accepted path and its canonical parts. */
struct good {
    const char *path;
    unsigned options;
    const char *local;
    const char *domain;
    unsigned flags;
};

static const struct good goods[] = {
    {"<user@example.com>", 0, "user", "example.com", 0},
    {"<User.Name@Example.COM>", 0, "User.Name", "example.com", 0}, /* local keeps its case */
    {"<user@example.com.>", 0, "user", "example.com", TDOT},
    {"<user@EXAMPLE.com.>", 0, "user", "example.com", TDOT},
    {"<user@localhost>", 0, "user", "localhost", 0},
    {"<user@123.example>", 0, "user", "123.example", 0},
    {"<user@xn--bcher-kva.example>", 0, "user", "xn--bcher-kva.example", 0},
    {"<a.b-c+tag@sub-domain.example>", 0, "a.b-c+tag", "sub-domain.example", 0},
    {"<!#$%&'*+-/=?^_`{|}~@x.example>", 0, "!#$%&'*+-/=?^_`{|}~", "x.example", ROUTING},
    {"<postmaster@example.com>", PM_OK, "postmaster", "example.com", 0},

    /* Null path and the bare postmaster. */
    {"<>", NUL_OK, "", "", SMTP_ADDR_NULL},
    {"<postmaster>", PM_OK, "postmaster", "", SMTP_ADDR_POSTMASTER_ONLY},
    {"<PostMaster>", PM_OK | NUL_OK, "postmaster", "", SMTP_ADDR_POSTMASTER_ONLY},

    /* Relay tricks: accepted, canonicalized, and flagged for policy. */
    {"<user%other.example@ours.example>", 0, "user%other.example", "ours.example", ROUTING},
    {"<other.example!user@ours.example>", 0, "other.example!user", "ours.example", ROUTING},
    {"<\"a@b\"@ours.example>", 0, "\"a@b\"", "ours.example", QUOTED | ROUTING},
    {"<\"a\\@b\"@ours.example>", 0, "\"a@b\"", "ours.example", QUOTED | ROUTING},
    {"<\"user%other\"@Ours.Example.>", 0, "user%other", "ours.example", ROUTING | TDOT},
    {"<@a.example,@b.example:user@c.example>", 0, "user", "c.example", ROUTE},
    {"<@a.example:user@c.example>", 0, "user", "c.example", ROUTE},
    {"<@A.Example.:\"u\"@C.example>", 0, "u", "c.example", ROUTE},

    /* Quoted strings: unquoted when the content is a Dot-string, else minimally quoted. */
    {"<\"user\"@example.com>", 0, "user", "example.com", 0},
    {"<\"us\\er\"@example.com>", 0, "user", "example.com", 0},
    {"<\"a.b\"@x.example>", 0, "a.b", "x.example", 0},
    {"<\"first last\"@x.example>", 0, "\"first last\"", "x.example", QUOTED},
    {"<\"a\\\"b\"@x.example>", 0, "\"a\\\"b\"", "x.example", QUOTED},
    {"<\"a\\\\b\"@x.example>", 0, "\"a\\\\b\"", "x.example", QUOTED},
    {"<\"a..b\"@x.example>", 0, "\"a..b\"", "x.example", QUOTED},
    {"<\".a\"@x.example>", 0, "\".a\"", "x.example", QUOTED},
    {"<\"a.\"@x.example>", 0, "\"a.\"", "x.example", QUOTED},
    {"<\"\"@x.example>", 0, "\"\"", "x.example", QUOTED},
    {"<\"a>b\"@x.example>", 0, "\"a>b\"", "x.example", QUOTED},
    {"<\"a\\ b\"@x.example>", 0, "\"a b\"", "x.example", QUOTED},
    {"<\"a,b:c\"@x.example>", 0, "\"a,b:c\"", "x.example", QUOTED},

    /* Address literals. */
    {"<user@[192.0.2.1]>", 0, "user", "[192.0.2.1]", LITERAL},
    {"<user@[0.0.0.0]>", 0, "user", "[0.0.0.0]", LITERAL},
    {"<user@[255.255.255.255]>", 0, "user", "[255.255.255.255]", LITERAL},
    {"<user@[IPv6:2001:DB8::1]>", 0, "user", "[IPv6:2001:db8::1]", LITERAL},
    {"<user@[ipv6:2001:0db8:0:0:0:0:0:1]>", 0, "user", "[IPv6:2001:db8::1]", LITERAL},
    {"<user@[IPv6:::1]>", 0, "user", "[IPv6:::1]", LITERAL},
    {"<user@[IPv6:::FFFF:192.0.2.1]>", 0, "user", "[IPv6:::ffff:192.0.2.1]", LITERAL},
    {"<@a.example:user@[192.0.2.1]>", 0, "user", "[192.0.2.1]", ROUTE | LITERAL},

    /* UTF-8 with SMTPUTF8: the local part as given, the domain in its A-label form. */
    {"<j\xc3\xb6rg@m\xc3\xbcller.example>", U8_OK, "j\xc3\xb6rg", "xn--mller-kva.example", UTF8},
    {"<user@M\xc3\x9cLLER.Example>", U8_OK, "user", "xn--mller-kva.example", 0},
    {"<\"j\xc3\xb6rg\"@x.example>", U8_OK, "j\xc3\xb6rg", "x.example", UTF8},
    {"<\"j\xc3\xb6 rg\"@x.example>", U8_OK, "\"j\xc3\xb6 rg\"", "x.example", QUOTED | UTF8},
    {"<\xe2\x82\xac\xf0\x9f\x93\xa7@x.example>", U8_OK, "\xe2\x82\xac\xf0\x9f\x93\xa7", "x.example",
     UTF8},
    {"<\xef\xbf\xbd@x.example>", U8_OK, "\xef\xbf\xbd", "x.example", UTF8},
    {"<\xf4\x8f\xbf\xbf@x.example>", U8_OK, "\xf4\x8f\xbf\xbf", "x.example", UTF8},
    {"<user@example.com>", U8_OK, "user", "example.com", 0},

    /* Internationalized domains (IDNA 2008, UTS #46 mapping, non-transitional): U-labels, mixed
     * case, full-width forms and ideographic full stops, decomposed input, and A-labels all become
     * the one lowercase A-label form. */
    {"<user@b\xc3\xbc"
     "cher.example>",
     U8_OK, "user", "xn--bcher-kva.example", 0},
    {"<user@B\xc3\x9c"
     "CHER.Example>",
     U8_OK, "user", "xn--bcher-kva.example", 0},
    {"<user@bu\xcc\x88"
     "cher.example>",
     U8_OK, "user", "xn--bcher-kva.example", 0}, /* NFD: u + U+0308 */
    {"<user@b\xc3\xbc"
     "cher.example.>",
     U8_OK, "user", "xn--bcher-kva.example", TDOT},
    {"<user@\xef\xbd\x85\xef\xbd\x98\xef\xbd\x81\xef\xbd\x8d\xef\xbd\x90\xef\xbd\x8c\xef\xbd\x85"
     "\xef\xbc\x8e\xef\xbd\x83\xef\xbd\x8f\xef\xbd\x8d>",
     U8_OK, "user", "example.com", 0}, /* full-width "example.com" */
    {"<user@\xe4\xbe\x8b\xe3\x81\x88\xe3\x80\x82\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88>", U8_OK,
     "user", "xn--r8jz45g.xn--zckzah", 0}, /* U+3002 separates labels */
    {"<user@fa\xc3\x9f.example>", U8_OK, "user", "xn--fa-hia.example", 0}, /* not fass */
    {"<user@xn--bcher-kva.example>", U8_OK, "user", "xn--bcher-kva.example", 0},
    {"<user@XN--BCHER-KVA.Example>", 0, "user", "xn--bcher-kva.example", 0},
    {"<user@b\xc3\xbc.xn--zckzah>", U8_OK, "user", "xn--b-eha.xn--zckzah", 0},
    /* Only labels with non-ASCII or "xn--" go through IDNA: DNS allows "--" elsewhere. */
    {"<user@b\xc3\xbc"
     "cher.r3---sn-abc.example>",
     U8_OK, "user", "xn--bcher-kva.r3---sn-abc.example", 0},
    {"<user@r3---sn-abc.example>", 0, "user", "r3---sn-abc.example", 0},
    {"<j\xc3\xb6rg@xn--mller-kva.example>", U8_OK, "j\xc3\xb6rg", "xn--mller-kva.example", UTF8},
};

/* A refused path and the reason given. */
struct bad {
    const char *path;
    unsigned options;
    const char *why;
};

static const struct bad bads[] = {
    {"", 0, "missing angle brackets"},
    {"user@example.com", 0, "missing angle brackets"},
    {"<user@example.com", 0, "missing angle brackets"},
    {"<user", 0, "missing angle brackets"},
    {"user@example.com>", 0, "missing angle brackets"},
    {"<", 0, "missing angle brackets"},
    {"<user@example.com> ", 0, "text after path"},
    {"<user@example.com>x", 0, "text after path"},
    {"<user@example.com>>", 0, "text after path"},
    {"<postmaster> ", PM_OK, "text after path"},

    /* Null path and the domainless forms. */
    {"<>", 0, "null path not allowed"},
    {"<>", PM_OK | U8_OK, "null path not allowed"},
    {"<> ", NUL_OK, "bad local part"},
    {"<postmaster>", NUL_OK, "missing domain"},
    {"<\"postmaster\">", PM_OK, "missing domain"},
    {"<postmaster.x>", PM_OK, "missing domain"},
    {"<@a.example:postmaster>", PM_OK, "missing domain"},
    {"<user>", PM_OK, "missing domain"},
    {"<other!user>", PM_OK, "missing domain"}, /* bang path */
    {"<a!b!user>", 0, "missing domain"},
    {"<user%other>", PM_OK, "missing domain"},

    /* Source routes. */
    {"<@example.com>", 0, "bad source route"},
    {"<@a.example,user@c.example>", 0, "bad source route"},
    {"<@a.example,@:user@c.example>", 0, "bad source route"},
    {"<@:user@c.example>", 0, "bad source route"},
    {"<@a..b:user@c.example>", 0, "bad source route"},
    {"<@[192.0.2.1]:user@c.example>", 0, "bad source route"},
    {"<@a.example;@b.example:user@c.example>", 0, "bad source route"},
    {"<@a.example, @b.example:user@c.example>", 0, "bad source route"},
    {"<@b\xc3\xbc.example:user@c.example>", 0, "bad source route"},
    {"<@a.example:@b.example:user@c.example>", 0, "bad local part"},
    {"<@a.example:>", 0, "bad local part"},

    /* Local parts. */
    {"<.user@x.example>", 0, "bad local part"},
    {"<user.@x.example>", 0, "bad local part"},
    {"<us..er@x.example>", 0, "bad local part"},
    {"<us er@x.example>", 0, "bad local part"},
    {"< user@x.example>", 0, "bad local part"},
    {"<us\\er@x.example>", 0, "bad local part"},
    {"<us\"er\"@x.example>", 0, "bad local part"},
    {"<\"a\"b@x.example>", 0, "bad local part"},
    {"<\"a\".b@x.example>", 0, "bad local part"},
    {"<\"unterminated@x.example>", 0, "bad local part"},
    {"<\"a\\\">", 0, "bad local part"},
    {"<(comment)user@x.example>", 0, "bad local part"},
    {"<us,er@x.example>", 0, "bad local part"},
    {"<us[er@x.example>", 0, "bad local part"},
    {"<<user@x.example>>", 0, "bad local part"},
    {"<\"a\\\xc3\xa4\"@x.example>", U8_OK, "bad local part"}, /* quoted-pair is ASCII only */

    /* Domains. */
    {"<user@>", 0, "bad domain"},
    {"<user@.>", 0, "bad domain"},
    {"<user@@example.com>", 0, "bad domain"},
    {"<user@a@example.com>", 0, "bad domain"},
    {"<user@example..com>", 0, "bad domain"},
    {"<user@.example.com>", 0, "bad domain"},
    {"<user@example.com..>", 0, "bad domain"},
    {"<user@-example.com>", 0, "bad domain"},
    {"<user@example-.com>", 0, "bad domain"},
    {"<user@exa_mple.com>", 0, "bad domain"},
    {"<user@exa mple.com>", 0, "bad domain"},
    {"<user@example.com >", 0, "bad domain"},
    {"<user@example.com:25>", 0, "bad domain"},
    {"<user@example.com\\>", 0, "bad domain"},
    {"<user@\"example.com\">", 0, "bad domain"},
    {"<user@1.2.3.4>", 0, "bad domain"}, /* an IP address posing as a name */
    {"<user@example.123>", 0, "bad domain"},
    {"<user@example.123.>", 0, "bad domain"},

    /* Address literals. */
    {"<user@[1.2.3]>", 0, "bad address literal"},
    {"<user@[1.2.3.4.5]>", 0, "bad address literal"},
    {"<user@[256.1.1.1]>", 0, "bad address literal"},
    {"<user@[1.2.3.1000]>", 0, "bad address literal"},
    {"<user@[01.2.3.4]>", 0, "bad address literal"},
    {"<user@[1.2.3.04]>", 0, "bad address literal"},
    {"<user@[1.2.3.4.]>", 0, "bad address literal"},
    {"<user@[1..3.4]>", 0, "bad address literal"},
    {"<user@[ 1.2.3.4]>", 0, "bad address literal"},
    {"<user@[1.2.3.4]x>", 0, "bad address literal"},
    {"<user@[1.2.3.4].>", 0, "bad address literal"},
    {"<user@[1.2.3.4>", 0, "bad address literal"},
    {"<user@[]>", 0, "bad address literal"},
    {"<user@[>", 0, "bad address literal"},
    {"<user@[IPv6:]>", 0, "bad address literal"},
    {"<user@[IPv6:1::2::3]>", 0, "bad address literal"},
    {"<user@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, "bad address literal"},
    {"<user@[IPv6:fe80::1%eth0]>", 0, "bad address literal"},
    {"<user@[IPv6:192.0.2.1]>", 0, "bad address literal"},
    {"<user@[IPv4:192.0.2.1]>", 0, "bad address literal"},
    {"<user@[tag:content]>", 0, "bad address literal"},
    {"<user@[example.com]>", 0, "bad address literal"},

    /* UTF-8: refused without SMTPUTF8, and only well-formed with it. */
    {"<j\xc3\xb6rg@x.example>", 0, "UTF-8 not allowed"},
    {"<user@m\xc3\xbcller.example>", 0, "UTF-8 not allowed"},
    {"<\"j\xc3\xb6rg\"@x.example>", 0, "UTF-8 not allowed"},
    {"<a\xc0\xafz@x.example>", U8_OK, "bad UTF-8"},         /* overlong '/' */
    {"<a\xe0\x80\xafz@x.example>", U8_OK, "bad UTF-8"},     /* overlong, 3 octets */
    {"<a\xf0\x80\x80\xafz@x.example>", U8_OK, "bad UTF-8"}, /* overlong, 4 octets */
    {"<a\xed\xa0\x80z@x.example>", U8_OK, "bad UTF-8"},     /* surrogate */
    {"<a\xf4\x90\x80\x80z@x.example>", U8_OK, "bad UTF-8"}, /* past U+10FFFF */
    {"<a\xf5\x80\x80\x80z@x.example>", U8_OK, "bad UTF-8"},
    {"<a\x80z@x.example>", U8_OK, "bad UTF-8"}, /* lone continuation */
    {"<a\xc3@x.example>", U8_OK, "bad UTF-8"},  /* truncated */
    {"<a\xe2\x82@x.example>", U8_OK, "bad UTF-8"},
    {"<a\xc2\x85z@x.example>", U8_OK, "bad UTF-8"}, /* C1 control NEL */
    {"<\"a\xff\"@x.example>", U8_OK, "bad UTF-8"},
    {"<user@b\xc3.example>", U8_OK, "bad UTF-8"},

    /* Internationalized domains that do not convert (IDNA 2008). */
    {"<user@b\xc3\xbc"
     "cher.example>",
     0, "UTF-8 not allowed"},
    {"<user@xn--zz.example>", 0, "domain has an invalid A-label (xn--)"},
    {"<user@xn--a.example>", U8_OK, "domain has an invalid A-label (xn--)"},
    {"<user@\xe2\x98\x83.example>", U8_OK,
     "domain has a character IDNA 2008 disallows"}, /* snowman */
    {"<user@\xf0\x9f\x98\x80.example>", U8_OK, "domain has a character IDNA 2008 disallows"},
    {"<user@xn--ls8h.la>", 0, "domain has a character IDNA 2008 disallows"}, /* emoji A-label */
    {"<user@a\xe2\x80\x8d"
     "b.example>",
     U8_OK, "domain has a joiner or context character where IDNA 2008 forbids it"},
    {"<user@-b\xc3\xbc.example>", U8_OK, "domain has a label that starts or ends with a hyphen"},
    {"<user@\xcc\x88"
     "a.example>",
     U8_OK, "domain has a label that starts with a combining mark"},
    {"<user@a\xd7\x90.example>", U8_OK, "domain breaks the IDNA right-to-left rules (RFC 5893)"},
    /* What converts must still be a host name. */
    {"<user@\xef\xbc\x91\xef\xbc\x8e\xef\xbc\x92\xef\xbc\x8e\xef\xbc\x93\xef\xbc\x8e\xef\xbc\x94>",
     U8_OK, "bad domain"}, /* full-width 1.2.3.4 */
    {"<user@a_b\xc3\xbc.example>", U8_OK, "bad domain"},
    {"<user@.b\xc3\xbc.example>", U8_OK, "bad domain"},
    {"<user@b\xc3\xbc..example>", U8_OK, "bad domain"},

    /* Control characters, in or out of quotes. */
    {"<us\ter@x.example>", 0, "control character"},
    {"<\"us\ter\"@x.example>", 0, "control character"},
    {"<user@x.example>\r\n", 0, "control character"},
    {"<user\x7f@x.example>", 0, "control character"},
    {"<user@x.ex\x1bzample>", 0, "control character"},
};

static void test_good(void)
{
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        struct smtp_addr a;
        const char *why = NULL;
        int rc = smtp_addr_parse(g->path, strlen(g->path), g->options, &a, &why);
        if (rc != 0)
            fprintf(stderr, "case %s: refused (%s)\n", g->path, why);
        CHECK_INT_EQ(rc, 0);
        CHECK_STR_EQ(a.local, g->local);
        CHECK_STR_EQ(a.domain, g->domain);
        CHECK_INT_EQ(a.flags, g->flags);

        /* The canonical form is a fixed point: it parses back to itself with the same facts,
         * except the ones canonicalization removed. */
        char text[SMTP_PATH_MAX + 1], path[SMTP_PATH_MAX + 3];
        size_t n = smtp_addr_format(&a, text, sizeof text);
        CHECK_INT_EQ(n, strlen(text));
        int plen = snprintf(path, sizeof path, "<%s>", text);
        struct smtp_addr again;
        CHECK_INT_EQ(smtp_addr_parse(path, (size_t)plen, g->options, &again, &why), 0);
        CHECK_STR_EQ(again.local, a.local);
        CHECK_STR_EQ(again.domain, a.domain);
        CHECK_INT_EQ(again.flags, a.flags & ~(unsigned)(ROUTE | TDOT));
    }
}

static void test_bad(void)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        struct smtp_addr a;
        const char *why = NULL;
        int rc = smtp_addr_parse(b->path, strlen(b->path), b->options, &a, &why);
        if (rc == 0)
            fprintf(stderr, "case %s: accepted as %s@%s\n", b->path, a.local, a.domain);
        CHECK_INT_EQ(rc, -EINVAL);
        CHECK_STR_EQ(why, b->why);
        /* A refused path leaves nothing that looks like an address. */
        CHECK(a.local[0] == '\0' && a.domain[0] == '\0' && a.flags == 0);
    }
}

/* NUL cannot sit in a C string table; it is refused wherever it appears. */
static void test_nul(void)
{
#define WITH_NUL(s)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *path;
        size_t len;
    } cases[] = {WITH_NUL("<us\0er@x.example>"), WITH_NUL("<user@x.exa\0mple>"),
                 WITH_NUL("<\"us\0er\"@x.example>"), WITH_NUL("<user@x.example>\0"),
                 WITH_NUL("\0<user@x.example>")};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_addr a;
        const char *why = NULL;
        CHECK_INT_EQ(smtp_addr_parse(cases[i].path, cases[i].len, 0, &a, &why), -EINVAL);
        CHECK_STR_EQ(why, "control character");
    }
}

static void fill(char *p, char c, size_t n)
{
    memset(p, c, n);
    p[n] = '\0';
}

static int parse_str(const char *path, unsigned options, struct smtp_addr *a, const char **why)
{
    return smtp_addr_parse(path, strlen(path), options, a, why);
}

/* Lengths: 64-octet local part, 63-octet label, 256-octet path, each one over. */
static void test_limits(void)
{
    char local[80], path[600];
    struct smtp_addr a;
    const char *why;

    fill(local, 'a', 64);
    snprintf(path, sizeof path, "<%s@x.example>", local);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), 0);
    CHECK_STR_EQ(a.local, local);
    fill(local, 'a', 65);
    snprintf(path, sizeof path, "<%s@x.example>", local);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "local part too long");

    /* Quoted: the limit is on the content, and 64 escaped quotes need 130 octets canonically. */
    char quoted[200] = "<\"";
    for (int i = 0; i < 64; i++)
        strcat(quoted, "\\\"");
    strcat(quoted, "\"@x.example>");
    CHECK_INT_EQ(parse_str(quoted, 0, &a, &why), 0);
    CHECK_INT_EQ(strlen(a.local), 130);
    CHECK_INT_EQ(a.flags, QUOTED);
    char formatted[300];
    CHECK_INT_EQ(smtp_addr_format(&a, formatted, sizeof formatted), 130 + 10);
    CHECK_MEM_EQ(formatted, 2, "\"\\");
    char quoted65[200] = "<\"";
    for (int i = 0; i < 65; i++)
        strcat(quoted65, "\\q");
    strcat(quoted65, "\"@x.example>");
    CHECK_INT_EQ(parse_str(quoted65, 0, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "local part too long");
    /* UTF-8 counts octets: 32 two-octet characters fit, 33 do not. */
    char u8[120] = "<";
    for (int i = 0; i < 32; i++)
        strcat(u8, "\xc3\xa9");
    strcat(u8, "@x.example>");
    CHECK_INT_EQ(parse_str(u8, U8_OK, &a, &why), 0);
    CHECK_INT_EQ(strlen(a.local), 64);
    u8[65] = '\0';
    strcat(u8, "\xc3\xa9@x.example>");
    CHECK_INT_EQ(parse_str(u8, U8_OK, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "local part too long");

    char label[70];
    fill(label, 'b', 63);
    snprintf(path, sizeof path, "<u@%s.example>", label);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), 0);
    fill(label, 'b', 64);
    snprintf(path, sizeof path, "<u@%s.example>", label);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "bad domain");

    /* A U-label is measured as its A-label: 40 "\xc3\xbc" are 80 octets, but far fewer as an
     * A-label; 64 of them make an A-label longer than 63. */
    char ulabel[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(ulabel, "\xc3\xbc");
    snprintf(path, sizeof path, "<u@%s.example>", ulabel);
    CHECK_INT_EQ(parse_str(path, U8_OK, &a, &why), 0);
    CHECK(strncmp(a.domain, "xn--", 4) == 0 && strlen(a.domain) <= 63 + strlen(".example"));
    for (int i = 40; i < 64; i++)
        strcat(ulabel, "\xc3\xbc");
    snprintf(path, sizeof path, "<u@%s.example>", ulabel);
    CHECK_INT_EQ(parse_str(path, U8_OK, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "domain has a label longer than 63 octets as an A-label");

    /* The canonical (A-label) path must fit in 256 octets too: 25 labels "\xe4\xbe\x8b" are 99
     * octets as given and 199 as "xn--fsq" labels, with a 64-octet local part 266 in all. */
    char cjk[200] = "";
    for (int i = 0; i < 25; i++)
        strcat(cjk, i == 0 ? "\xe4\xbe\x8b" : ".\xe4\xbe\x8b");
    fill(local, 'a', 64);
    snprintf(path, sizeof path, "<%s@%s>", local, cjk);
    CHECK_INT_EQ(parse_str(path, U8_OK, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "path too long");
    snprintf(path, sizeof path, "<u@%s>", cjk);
    CHECK_INT_EQ(parse_str(path, U8_OK, &a, &why), 0);
    CHECK_INT_EQ(strlen(a.domain), 199);

    /* "<" + 64 + "@" + 189 + ">" = 256 octets. */
    char l1[64], l2[64], l3[64];
    fill(local, 'a', 64);
    fill(l1, 'c', 63);
    fill(l2, 'd', 63);
    fill(l3, 'e', 61);
    int n = snprintf(path, sizeof path, "<%s@%s.%s.%s>", local, l1, l2, l3);
    CHECK_INT_EQ(n, SMTP_PATH_MAX);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), 0);
    CHECK_INT_EQ(strlen(a.domain), 189);
    /* The same with a trailing dot is 257 octets. */
    n = snprintf(path, sizeof path, "<%s@%s.%s.%s.>", local, l1, l2, l3);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "path too long");
    /* A long source route counts too. */
    fill(label, 'r', 60);
    n = snprintf(path, sizeof path, "<@%s.a,@%s.b,@%s.c,@%s.d:u@x.example>", label, label, label,
                 label);
    CHECK(n > SMTP_PATH_MAX);
    CHECK_INT_EQ(parse_str(path, 0, &a, &why), -EINVAL);
    CHECK_STR_EQ(why, "path too long");
}

static void test_format(void)
{
    struct smtp_addr a;
    char out[64];
    CHECK_INT_EQ(parse_str("<User@Example.org.>", 0, &a, NULL), 0); /* why may be NULL */
    CHECK_INT_EQ(smtp_addr_format(&a, out, sizeof out), 16);
    CHECK_STR_EQ(out, "User@example.org");
    /* Truncation keeps a terminated prefix. */
    CHECK_INT_EQ(smtp_addr_format(&a, out, 5), 4);
    CHECK_STR_EQ(out, "User");
    CHECK_INT_EQ(smtp_addr_format(&a, out, 1), 0);
    CHECK_STR_EQ(out, "");
    CHECK_INT_EQ(smtp_addr_format(&a, NULL, 0), 0);

    CHECK_INT_EQ(parse_str("<>", NUL_OK, &a, NULL), 0);
    CHECK_INT_EQ(smtp_addr_format(&a, out, sizeof out), 0);
    CHECK_STR_EQ(out, "");
    CHECK_INT_EQ(parse_str("<POSTMASTER>", PM_OK, &a, NULL), 0);
    CHECK_INT_EQ(smtp_addr_format(&a, out, sizeof out), 10);
    CHECK_STR_EQ(out, "postmaster");
    CHECK_INT_EQ(parse_str("<\"a b\"@[IPv6:0:0::1]>", 0, &a, NULL), 0);
    smtp_addr_format(&a, out, sizeof out);
    CHECK_STR_EQ(out, "\"a b\"@[IPv6:::1]");
}

/* The U-label form for SMTPUTF8 servers: A-labels turned back, everything else kept. */
static void test_to_utf8(void)
{
    static const struct {
        const char *addr, *want;
    } cases[] = {
        {"user@xn--bcher-kva.example", "user@b\xc3\xbc"
                                       "cher.example"},
        {"j\xc3\xb6rg@xn--r8jz45g.xn--zckzah",
         "j\xc3\xb6rg@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"},
        {"user@example.com", "user@example.com"},
        {"\"a@b\"@xn--fa-hia.example", "\"a@b\"@fa\xc3\x9f.example"},
        {"user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"},
        {"postmaster", "postmaster"},
        {"", ""},
        /* Spool entries from before A-labels were checked: kept as they are. */
        {"user@xn--zz.example", "user@xn--zz.example"},
        {"user@xn--ls8h.la", "user@xn--ls8h.la"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[300];
        CHECK_INT_EQ(smtp_addr_to_utf8(cases[i].addr, out, sizeof out), 0);
        CHECK_STR_EQ(out, cases[i].want);
    }
    char small[12];
    CHECK_INT_EQ(smtp_addr_to_utf8("user@xn--bcher-kva.example", small, sizeof small),
                 -ENAMETOOLONG);
    CHECK_INT_EQ(smtp_addr_to_utf8("a-long-local-part@x.example", small, sizeof small),
                 -ENAMETOOLONG);
}

/* Literal and numeric texts to socket addresses: the family, the port and the bytes. */
static void test_sockaddr(void)
{
    static const struct {
        const char *text;
        int literal; /* 1: "[...]" form, 0: bare numeric text */
        int family;  /* AF_UNSPEC: refused */
        const char *ip;
    } cases[] = {
        {"[192.0.2.1]", 1, AF_INET, "192.0.2.1"},
        {"[IPv6:2001:db8::1]", 1, AF_INET6, "2001:db8::1"},
        {"[ipv6:::1]", 1, AF_INET6, "::1"},
        {"[2001:db8::1]", 1, AF_UNSPEC, NULL},    /* IPv6 needs its tag */
        {"[IPv6:192.0.2.1]", 1, AF_UNSPEC, NULL}, /* the tag needs IPv6 */
        {"[host.example]", 1, AF_UNSPEC, NULL},
        {"192.0.2.1", 1, AF_UNSPEC, NULL}, /* no brackets */
        {"[]", 1, AF_UNSPEC, NULL},
        {"192.0.2.1", 0, AF_INET, "192.0.2.1"},
        {"2001:db8::1", 0, AF_INET6, "2001:db8::1"},
        {"::ffff:192.0.2.1", 0, AF_INET6, "::ffff:192.0.2.1"},
        {"mx.example", 0, AF_UNSPEC, NULL},
        {"192.0.2.256", 0, AF_UNSPEC, NULL},
        {"", 0, AF_UNSPEC, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0xa5, sizeof ss);
        int rc = cases[i].literal ? smtp_addr_literal_sockaddr(cases[i].text, 2525, &ss)
                                  : ip_text_sockaddr(cases[i].text, 2525, &ss);
        CHECK_INT_EQ(rc, cases[i].family == AF_UNSPEC ? -EINVAL : 0);
        CHECK_INT_EQ(ss.ss_family, cases[i].family);
        if (cases[i].family == AF_UNSPEC)
            continue;
        char text[INET6_ADDRSTRLEN];
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
        const void *bytes =
            cases[i].family == AF_INET ? (const void *)&v4->sin_addr : (const void *)&v6->sin6_addr;
        CHECK(inet_ntop(cases[i].family, bytes, text, sizeof text) != NULL);
        CHECK_STR_EQ(text, cases[i].ip);
        CHECK_INT_EQ(ntohs(cases[i].family == AF_INET ? v4->sin_port : v6->sin6_port), 2525);
    }
}

int main(void)
{
    test_good();
    test_bad();
    test_nul();
    test_limits();
    test_format();
    test_to_utf8();
    test_sockaddr();
    return check_report("test_smtp_addr");
}
