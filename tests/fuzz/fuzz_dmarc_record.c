/*
 * Fuzzes what DMARC reads from senders (policy/dmarc.h, both pure): the input as a TXT record for
 * the record parser, and as the value of a From field for the From domain. A parsed record holds
 * only valid policies, modes and a pct within 0..100; a From domain is a lower-case host name of
 * at most 253 octets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dmarc.h"

static void check_domain(const char *d)
{
    size_t len = strlen(d);
    if (len == 0 || len > DMARC_DOMAIN_MAX || d[0] == '.' || d[len - 1] == '.')
        abort();
    for (size_t i = 0; i < len; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.", d[i]) == NULL)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *txt = (const char *)data;
    struct dmarc_record rec;
    const char *err = NULL;
    if (dmarc_record_parse(txt, size, &rec, &err) == 0) {
        if (!dmarc_record_is_dmarc(txt, size) || rec.p > DMARC_POLICY_REJECT ||
            rec.sp > DMARC_POLICY_REJECT || rec.pct > 100 || strchr("rs", rec.adkim) == NULL ||
            strchr("rs", rec.aspf) == NULL)
            abort();
    } else if (err == NULL) {
        abort();
    }
    char out[DMARC_DOMAIN_MAX + 1];
    err = NULL;
    if (dmarc_from_domain(&txt, &size, 1, out, sizeof out, &err) == 0)
        check_domain(out);
    else if (err == NULL)
        abort();
    return 0;
}
