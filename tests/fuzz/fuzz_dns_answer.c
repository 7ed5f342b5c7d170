/*
 * Fuzzes the DNS answer reader with what a hostile or broken server could send. The first input
 * byte picks the record type asked for; the rest is the whole answer message, read for the name
 * in its own question (as the resolver would, after c-ares matched the question). The result must
 * keep the reader's promises: a known status, records only with DNS_OK, well-formed record data
 * (PTR names are host names), TTLs within their caps. A readable answer then goes through the cache
 * and must come back intact.
 */
#include <ares.h>
#include <ares_nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dns_int.h"

static const int qtypes[] = {ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt, ns_t_ptr};

/* The question's name, normalised like a name the resolver would send; "example.org" when the
 * message has none we could send. */
static void question_name(const uint8_t *msg, size_t len, char name[DNS_NAME_BUF])
{
    char *q = NULL;
    long used;
    strcpy(name, "example.org");
    if (len > 12 && len <= 65535 && ares_expand_name(msg + 12, msg, (int)len, &q, &used) == 0) {
        char norm[DNS_NAME_BUF];
        if (dns_name_normalize(q, norm) == 0)
            strcpy(name, norm);
        ares_free_string(q);
    }
}

static void check_answer(const struct dns_answer *a, int qtype)
{
    switch (a->status) {
    case DNS_OK:
        if (a->n == 0 || a->ttl > DNS_TTL_MAX)
            abort();
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        if (a->n != 0 || a->ttl > DNS_NEG_TTL_MAX)
            abort();
        break;
    case DNS_TEMPFAIL:
        if (a->n != 0 || a->rr != NULL)
            abort();
        break;
    default:
        abort();
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct dns_rdata *rd = &a->rr[i];
        if (rd->data == NULL || rd->data[rd->len] != '\0')
            abort();
        if ((qtype == ns_t_a && rd->len != 4) || (qtype == ns_t_aaaa && rd->len != 16))
            abort();
        if ((qtype == ns_t_mx || qtype == ns_t_ptr) && strlen(rd->data) != rd->len)
            abort();
        char norm[DNS_NAME_BUF];
        if (qtype == ns_t_ptr &&
            (dns_name_normalize(rd->data, norm) != 0 || strcmp(norm, rd->data) != 0))
            abort();
        if (qtype != ns_t_mx && rd->pref != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int qtype = qtypes[data[0] % (sizeof(qtypes) / sizeof(qtypes[0]))];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    char name[DNS_NAME_BUF];
    question_name(msg, len, name);

    struct dns_answer a;
    dns_answer_parse(&a, msg, len, qtype, name);
    check_answer(&a, qtype);

    if (a.status == DNS_OK) {
        struct dns_cache *c = dns_cache_new(4, 1 << 20);
        dns_cache_put(c, qtype, name, a.status, msg, len, 1000);
        enum dns_status status;
        unsigned char *copy = NULL;
        size_t copy_len = 0;
        if (dns_cache_get(c, qtype, name, 10, &status, &copy, &copy_len) == 1) {
            if (status != DNS_OK || copy_len != len || memcmp(copy, msg, len) != 0)
                abort();
            /* The cached copy must read the same. */
            struct dns_answer b;
            dns_answer_parse(&b, copy, copy_len, qtype, name);
            if (b.status != a.status || b.n != a.n || b.ttl != a.ttl)
                abort();
            dns_answer_free(&b);
        }
        free(copy);
        dns_cache_free(c);
    }
    dns_answer_free(&a);
    return 0;
}
