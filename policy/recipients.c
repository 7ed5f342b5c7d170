#include "policy/recipients.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/line_file.h"
#include "lib/strmap.h"
#include "lib/xalloc.h"

/* Where a domain's check is configured, for the decision's pos. */
struct recipients_domain {
    struct config_pos pos;
};

struct recipients {
    struct strmap addrs;   /* "local@domain", local part lowercased -> &listed */
    struct strmap domains; /* domain with a recipients file -> struct recipients_domain */
    size_t naddrs;
};

static char listed; /* the value of every addrs entry: strmap values must not be NULL */

static const struct config_pos builtin = {NULL, 0, 0};

static void domain_free(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void recipients_free(struct recipients *r)
{
    if (r == NULL)
        return;
    strmap_free(&r->addrs);
    strmap_each(&r->domains, domain_free, NULL);
    strmap_free(&r->domains);
    free(r);
}

size_t recipients_count(const struct recipients *r)
{
    return r->naddrs;
}

/* The table key of local@domain: "local@domain" with the local part's ASCII lowercased (the domain
 * is lowercase already). Returns 0, or -1 when it does not fit. */
static int key_make(const char *local, size_t local_len, const char *domain, char *key, size_t size)
{
    int n = snprintf(key, size, "%.*s@%s", (int)local_len, local, domain);
    if (n < 0 || (size_t)n >= size)
        return -1;
    for (size_t i = 0; i < local_len; i++)
        if (key[i] >= 'A' && key[i] <= 'Z')
            key[i] = (char)(key[i] - 'A' + 'a');
    return 0;
}

#define KEY_MAX (sizeof(((struct smtp_addr *)0)->local) + SMTP_DOMAIN_MAX + 2)

/* Checks one line (newline removed, surrounding blanks trimmed) and adds its address; returns NULL
 * or what is wrong with it. */
static const char *line_add(struct recipients *r, const char *domain, const char *line, size_t len)
{
    char path[SMTP_PATH_MAX + 3];
    int bracketed = len > 0 && line[0] == '<';
    if (len > SMTP_PATH_MAX)
        return "address longer than 256 octets";
    int n = snprintf(path, sizeof(path), bracketed ? "%.*s" : "<%.*s>", (int)len, line);
    if (n < 0 || (size_t)n >= sizeof(path))
        return "address longer than 256 octets";

    struct smtp_addr addr;
    const char *why = NULL;
    if (smtp_addr_parse(path, (size_t)n, SMTP_ADDR_ALLOW_UTF8, &addr, &why) < 0)
        return why;
    if (addr.flags & SMTP_ADDR_HAD_ROUTE)
        return "source routes are not allowed here";
    if (strcmp(addr.domain, domain) != 0)
        return "address is not in the file's domain";
    char key[KEY_MAX];
    if (key_make(addr.local, strlen(addr.local), addr.domain, key, sizeof(key)) < 0)
        return "address too long";
    if (strmap_put(&r->addrs, key, &listed) == NULL)
        r->naddrs++;
    return NULL;
}

struct file_load {
    struct recipients *r;
    const char *domain;
};

static const char *file_on_line(void *arg, const char *line, size_t len)
{
    struct file_load *fl = arg;
    return line_add(fl->r, fl->domain, line, len);
}

/* Reads one domain's file into r; returns 0 or a negative errno (messages appended to err). */
static int file_load(struct recipients *r, const struct config_domain *dom, struct buf *err)
{
    char what[SMTP_DOMAIN_MAX + 32];
    snprintf(what, sizeof(what), "recipients file of %s", dom->name);
    struct file_load fl = {r, dom->name};
    return line_file_read(dom->recipients, what, file_on_line, &fl, err);
}

int recipients_load(const struct config *cfg, struct recipients **out, struct buf *err)
{
    struct recipients *r = xcalloc(1, sizeof *r);
    int rc = 0;
    for (size_t i = 0; i < cfg->ndomains; i++) {
        const struct config_domain *dom = &cfg->domains[i];
        if (dom->recipients == NULL)
            continue;
        struct recipients_domain *d = xcalloc(1, sizeof *d);
        d->pos = dom->pos;
        free(strmap_put(&r->domains, dom->name, d));
        int frc = file_load(r, dom, err);
        if (frc < 0 && rc == 0)
            rc = frc;
    }
    if (rc < 0) {
        recipients_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int listed_as(const struct recipients *r, const char *local, size_t local_len,
                     const char *domain)
{
    char key[KEY_MAX];
    return key_make(local, local_len, domain, key, sizeof(key)) == 0 &&
           strmap_get(&r->addrs, key) != NULL;
}

static struct policy_decision decide(enum policy_verdict verdict, int code, const char *enhanced,
                                     const char *text, const char *rule, struct config_pos pos)
{
    struct policy_decision d = {verdict, code, enhanced, text, rule, pos};
    return d;
}

struct policy_decision recipients_check(const struct recipients *r, const struct smtp_addr *rcpt,
                                        char text[RECIPIENTS_TEXT_MAX])
{
    const struct recipients_domain *dom = strmap_get(&r->domains, rcpt->domain);
    if (dom == NULL)
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "domains.recipients.none", builtin);

    const char *local = rcpt->local;
    size_t local_len = strlen(local);
    if (listed_as(r, local, local_len, rcpt->domain))
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "domains.recipients", dom->pos);
    /* "user+tag": the part from the first '+' on is the user's own sub-address. A quoted local
     * part is taken as it is. */
    const char *plus = memchr(local, '+', local_len);
    if (!(rcpt->flags & SMTP_ADDR_QUOTED) && plus != NULL && plus > local &&
        listed_as(r, local, (size_t)(plus - local), rcpt->domain))
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "domains.recipients.tag", dom->pos);
    if (listed_as(r, "*", 1, rcpt->domain))
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "domains.recipients.catch_all", dom->pos);
    /* RFC 5321 §4.5.1: postmaster@ each domain we receive for must be reachable. */
    if (strcasecmp(local, "postmaster") == 0)
        return decide(POLICY_ACCEPT, 250, "2.1.5", "Ok", "builtin.postmaster", builtin);

    snprintf(text, RECIPIENTS_TEXT_MAX, "<%s@%s>: Recipient address rejected: User unknown", local,
             rcpt->domain);
    return decide(POLICY_REJECT, 550, "5.1.1", text, "domains.recipients", dom->pos);
}
