#include "mta/server/smtp_tx_dsn.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/smtp_dsn.h"
#include "lib/xalloc.h"

static int key_is(const struct smtp_param *p, const char *key)
{
    return p->key.len == strlen(key) && strncasecmp(p->key.ptr, key, p->key.len) == 0 &&
           p->value.ptr != NULL;
}

int smtp_tx_dsn_mail_param(struct smtp_tx_dsn *d, const struct smtp_param *p, const char **why)
{
    if (key_is(p, "RET")) {
        int ret = smtp_dsn_ret_parse(p->value);
        *why = "Error: bad RET parameter (FULL or HDRS)";
        if (ret < 0)
            return -1;
        d->ret = (unsigned)ret;
        return 1;
    }
    if (!key_is(p, "ENVID"))
        return 0;
    struct buf v = BUF_INIT;
    *why = "Error: bad ENVID parameter (xtext of at most 100 characters)";
    if (d->envid != NULL || smtp_dsn_envid_parse(p->value, &v) < 0) {
        buf_free(&v);
        return -1;
    }
    d->envid = v.data;
    return 1;
}

int smtp_tx_dsn_rcpt_params(struct smtp_tx_dsn *d, const struct smtp_path_args *args,
                            const char **why)
{
    d->next_notify = 0;
    free(d->next_orcpt);
    d->next_orcpt = NULL;
    for (size_t i = 0; i < args->nparams; i++)
        if (!smtp_dsn_is_rcpt_param(&args->params[i]))
            return 0;
    for (size_t i = 0; i < args->nparams; i++) {
        const struct smtp_param *p = &args->params[i];
        if (key_is(p, "NOTIFY")) {
            int bits = smtp_dsn_notify_parse(p->value);
            *why = "Error: bad NOTIFY parameter (NEVER, or SUCCESS, FAILURE and DELAY)";
            if (bits < 0 || d->next_notify != 0)
                goto bad;
            d->next_notify = (unsigned)bits;
        } else {
            struct buf v = BUF_INIT;
            *why = "Error: bad ORCPT parameter (addr-type;xtext of at most 500 characters)";
            if (d->next_orcpt != NULL || smtp_dsn_orcpt_parse(p->value, &v) < 0) {
                buf_free(&v);
                goto bad;
            }
            d->next_orcpt = v.data;
        }
    }
    return 1;
bad:
    d->next_notify = 0;
    free(d->next_orcpt);
    d->next_orcpt = NULL;
    return -1;
}

int smtp_tx_dsn_rcpt_arg(struct smtp_tx_dsn *d, struct smtp_slice *arg, const char **why)
{
    struct smtp_path_args args;
    if (smtp_cmd_parse_path_args(*arg, "TO:", &args) < 0)
        args.nparams = 0; /* the policy answers the syntax; the last RCPT's are forgotten */
    int rc = smtp_tx_dsn_rcpt_params(d, &args, why);
    if (rc < 0)
        return -1;
    if (rc > 0 && args.nparams > 0)
        arg->len = (size_t)(args.path.ptr + args.path.len - arg->ptr);
    return 0;
}

void smtp_tx_dsn_accept(struct smtp_tx_dsn *d, const char *original)
{
    d->notify = xrealloc(d->notify, (d->nrcpts + 1) * sizeof *d->notify);
    d->orcpt = xrealloc(d->orcpt, (d->nrcpts + 1) * sizeof *d->orcpt);
    if (d->next_orcpt == NULL && original != NULL) {
        struct buf v = BUF_INIT;
        buf_printf(&v, "rfc822;%s", original);
        d->next_orcpt = v.data;
    }
    d->notify[d->nrcpts] = (unsigned char)d->next_notify;
    d->orcpt[d->nrcpts++] = d->next_orcpt;
    d->next_notify = 0;
    d->next_orcpt = NULL;
}

void smtp_tx_dsn_remove(struct smtp_tx_dsn *d, size_t i)
{
    free(d->orcpt[i]);
    memmove(&d->notify[i], &d->notify[i + 1], (d->nrcpts - i - 1) * sizeof *d->notify);
    memmove(&d->orcpt[i], &d->orcpt[i + 1], (d->nrcpts - i - 1) * sizeof *d->orcpt);
    d->nrcpts--;
}

const struct envelope_dsn *smtp_tx_dsn_view(struct smtp_tx_dsn *d)
{
    int given = d->ret != 0 || d->envid != NULL;
    for (size_t i = 0; i < d->nrcpts && !given; i++)
        given = d->notify[i] != 0 || d->orcpt[i] != NULL;
    if (!given)
        return NULL;
    d->view = (struct envelope_dsn){d->ret, d->envid, d->notify, (const char *const *)d->orcpt};
    return &d->view;
}

void smtp_tx_dsn_free(struct smtp_tx_dsn *d)
{
    for (size_t i = 0; i < d->nrcpts; i++)
        free(d->orcpt[i]);
    free(d->orcpt);
    free(d->notify);
    free(d->envid);
    free(d->next_orcpt);
    memset(d, 0, sizeof *d);
}
