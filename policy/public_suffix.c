/*
 * The Public Suffix List through libpsl (see public_suffix.h). Our own loader would be short, but
 * the list's rules (wildcards, exceptions, IDN rules written as U-labels that must match A-labels)
 * are exactly what libpsl exists for; Debian builds it against libidn2, which we link already.
 */
#include "policy/public_suffix.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "lib/xalloc.h"

struct public_suffixes {
    int refs;
    psl_ctx_t *ctx;
};

struct public_suffixes *public_suffixes_load(const char *path, struct buf *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    psl_ctx_t *psl = psl_load_fp(f);
    fclose(f);
    /* libpsl takes any text: a file with no rule is not a list (an empty or wrong file). */
    if (psl == NULL || psl_suffix_count(psl) <= 0) {
        psl_free(psl);
        buf_printf(err, "%s holds no public suffix rules", path);
        return NULL;
    }
    struct public_suffixes *list = xcalloc(1, sizeof *list);
    list->refs = 1;
    list->ctx = psl;
    return list;
}

struct public_suffixes *public_suffixes_ref(struct public_suffixes *psl)
{
    psl->refs++;
    return psl;
}

void public_suffixes_unref(struct public_suffixes *psl)
{
    if (psl == NULL || --psl->refs > 0)
        return;
    psl_free(psl->ctx);
    free(psl);
}

int public_suffix_org_domain(const struct public_suffixes *psl, const char *domain, char *out,
                             size_t size)
{
    const char *org = psl_registrable_domain(psl->ctx, domain);
    if (org == NULL) /* a public suffix itself */
        org = domain;
    size_t len = strlen(org);
    if (len >= size)
        return -1;
    memcpy(out, org, len + 1);
    return 0;
}
