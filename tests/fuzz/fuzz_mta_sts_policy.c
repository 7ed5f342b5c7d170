/*
 * Fuzzes what MTA-STS reads from remote domains (mta/delivery/mta_sts_policy.h, all pure): the
 * input as a TXT record and as a policy file. A parsed record has an id of 1 to 32 letters and
 * digits; a parsed policy a known mode, a max_age of at most a year, at most MTA_STS_MX_MAX
 * lower-case patterns (and some unless mode none), each of which matches a host name made from it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/delivery/mta_sts_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char id[MTA_STS_ID_MAX + 1];
    struct buf err = BUF_INIT;
    int rc = mta_sts_record_parse(in, size, id, &err);
    if (rc == 1) {
        size_t n = strlen(id);
        if (n == 0 || n > MTA_STS_ID_MAX)
            abort();
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)id[i]))
                abort();
    } else if ((rc == -1) != (err.len > 0)) {
        abort();
    }
    buf_reset(&err);

    struct mta_sts_policy p;
    if (mta_sts_policy_parse(in, size, &p, &err) == 0) {
        if (p.mode > MTA_STS_MODE_ENFORCE || p.max_age > MTA_STS_MAX_AGE ||
            p.nmx > MTA_STS_MX_MAX || (p.mode != MTA_STS_MODE_NONE && p.nmx == 0))
            abort();
        for (size_t i = 0; i < p.nmx; i++) {
            const char *m = p.mx[i];
            char host[300];
            snprintf(host, sizeof host, "%s%s", m[0] == '*' ? "x" : "", m[0] == '*' ? m + 1 : m);
            if (!mta_sts_mx_match(&p, host))
                abort();
            for (const char *c = m; *c; c++)
                if (isupper((unsigned char)*c))
                    abort();
        }
        mta_sts_policy_free(&p);
    } else if (err.len == 0 || p.nmx != 0) {
        abort();
    }
    buf_free(&err);
    return 0;
}
