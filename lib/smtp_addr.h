/*
 * The one validate-and-canonicalize function for mailbox paths (RFC 5321 §4.1.2, RFC 6531). Policy
 * and delivery both use its output and nothing else: an address it rejects never reaches another
 * module. Canonical form: source route dropped, quoting removed where it is not needed, domain
 * lowercased without a trailing dot and internationalized names in their A-label form (IDNA 2008
 * with the UTS #46 mapping, lib/idna.h), address literals normalised.
 */
#ifndef SLUICE_SMTP_ADDR_H
#define SLUICE_SMTP_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 5321 §4.5.3.1: local part 64 octets, domain 255, path 256. */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256

/* Parse options. */
#define SMTP_ADDR_ALLOW_NULL 0x01       /* "<>" is valid (MAIL FROM) */
#define SMTP_ADDR_ALLOW_POSTMASTER 0x02 /* bare "<postmaster>" is valid (RCPT TO, §4.1.1.3) */
#define SMTP_ADDR_ALLOW_UTF8 0x04       /* SMTPUTF8 was given on MAIL: UTF-8 allowed (RFC 6531) */

/* Facts about the parsed address, for policy to judge. */
#define SMTP_ADDR_NULL 0x001            /* "<>" */
#define SMTP_ADDR_POSTMASTER_ONLY 0x002 /* "<postmaster>" with no domain; domain[] is empty */
#define SMTP_ADDR_HAD_ROUTE 0x004       /* a source route "@a,@b:" was present and dropped */
#define SMTP_ADDR_QUOTED 0x008 /* the local part needs quoting (canonical form keeps quotes) */
#define SMTP_ADDR_ROUTING_CHARS 0x010 /* the local part contains '@', '%' or '!' */
#define SMTP_ADDR_IP_LITERAL 0x020    /* the domain is an address literal "[...]" */
#define SMTP_ADDR_UTF8 0x040 /* the local part has non-ASCII UTF-8 (a domain never keeps any) */
#define SMTP_ADDR_TRAILING_DOT 0x080 /* the domain had a trailing dot, now removed */

struct smtp_addr {
    /* Canonical local part, with quotes if it needs them; NUL-terminated. Sized for the worst case:
     * 64 octets of content that are all '"' or '\\', each escaped, plus the quotes. */
    char local[2 * SMTP_LOCAL_MAX + 3];
    /* Lowercase ASCII, no trailing dot: A-labels for internationalized names; "[1.2.3.4]" or
     * "[IPv6:...]" for literals (the one place with capitals). */
    char domain[SMTP_DOMAIN_MAX + 1];
    unsigned flags;
};

/* Parses a path including its angle brackets ("<user@example.com>"). Returns 0, or -EINVAL with
 * *why set to a short static reason fit for a reply ("missing angle brackets", "local part too
 * long", "domain has a character IDNA 2008 disallows", ...). */
int smtp_addr_parse(const char *path, size_t len, unsigned options, struct smtp_addr *out,
                    const char **why);

/* Writes "local@domain" into out (the bare local part for SMTP_ADDR_POSTMASTER_ONLY, "" for the
 * null path), NUL-terminated when size > 0; returns the length written, truncated to size-1. */
size_t smtp_addr_format(const struct smtp_addr *addr, char *out, size_t size);

/* The form of a canonical address text (as smtp_addr_format writes it) for a server that announced
 * SMTPUTF8: the domain's A-labels turned back into U-labels (RFC 6531 §3.2). The local part, an
 * address literal and a label that does not convert back exactly are kept as they are. Writes a
 * NUL-terminated string; returns 0, or -ENAMETOOLONG when out is too small. */
int smtp_addr_to_utf8(const char *addr, char *out, size_t size);

/* The socket address an address literal names (a canonical domain "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]", RFC 5321 §4.1.3), with `port`. Returns 0, or -EINVAL when domain is not
 * a literal. */
int smtp_addr_literal_sockaddr(const char *domain, uint16_t port, struct sockaddr_storage *out);

/* The socket address of a numeric IPv4 or IPv6 address text ("192.0.2.1", "2001:db8::1"), with
 * `port`. Returns 0, or -EINVAL when text is not a numeric address (a host name, say). */
int ip_text_sockaddr(const char *text, uint16_t port, struct sockaddr_storage *out);

#endif
