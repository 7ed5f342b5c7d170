#include "mta/delivery/postmaster.h"

#include <string.h>
#include <strings.h>

#define POSTMASTER "postmaster"

const char *postmaster_redirect(const struct config *cfg, const char *rcpt)
{
    if (cfg->server.postmaster == NULL)
        return rcpt;
    size_t n = strlen(POSTMASTER);
    if (strncasecmp(rcpt, POSTMASTER, n) != 0 || (rcpt[n] != '\0' && rcpt[n] != '@'))
        return rcpt;
    const char *domain = rcpt[n] == '@' ? rcpt + n + 1 : NULL;
    if (domain == NULL || config_domain_find(cfg, domain) != NULL ||
        strcasecmp(domain, cfg->server.hostname) == 0)
        return cfg->server.postmaster;
    return rcpt;
}

int postmaster_is_mailbox(const struct config *cfg, const char *addr)
{
    return cfg->server.postmaster != NULL && strcasecmp(addr, cfg->server.postmaster) == 0;
}

int postmaster_quota_take(struct postmaster_quota *q, struct config_rate rate, int64_t now_ms)
{
    if (rate.count == 0)
        return 1;
    if (q->used == 0 || now_ms - q->period_start_ms >= (int64_t)rate.period_ms) {
        q->period_start_ms = now_ms;
        q->used = 0;
    }
    if (q->used >= rate.count)
        return 0;
    q->used++;
    return 1;
}

const char *postmaster_report_refusal(const struct config *cfg, struct postmaster_quota *q,
                                      int to_postmaster, int64_t now_ms)
{
    if (cfg->server.postmaster == NULL)
        return "undeliverable mail from the null sender: no DSN is sent, it is dropped";
    if (to_postmaster)
        return "the postmaster (server.postmaster) could not be reached: dropped";
    if (!postmaster_quota_take(q, cfg->server.postmaster_rate, now_ms))
        return "more double bounces than server.postmaster_rate allows: dropped, not reported";
    return NULL;
}
