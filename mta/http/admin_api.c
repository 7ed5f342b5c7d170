/*
 * The admin API (admin_api.h): query parameters checked, the scheduler's operation called, its
 * words answered as JSON.
 */
#include "mta/http/admin_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

/* Destination names as the control socket takes them: printable ASCII, no space. */
#define NAME_MAX_LEN 255

/* A failure: the server wraps the message as {"error": ...}. */
static void answer_error(struct http_answer *answer, int status, const char *message)
{
    answer->status = status;
    buf_reset(&answer->body);
    buf_printf(&answer->body, "%s", message);
}

/* The scheduler's answer: its words as {"result": ...}, or as the error of a 404 / 400. */
static void answer_op(struct http_answer *answer, int rc, struct buf *words)
{
    const char *text = words->data != NULL ? words->data : "";
    if (rc < 0) {
        if (words->len > 0 && words->data[words->len - 1] == '\n')
            words->data[--words->len] = '\0';
        answer_error(answer, rc == -ENOENT ? 404 : 400, text[0] ? text : "refused");
        return;
    }
    json_t *o = json_pack("{s:s}", "result", text);
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    buf_printf(&answer->body, "%s\n", s != NULL ? s : "{}");
    free(s);
    json_decref(o);
}

/* Parameter name as printable ASCII without spaces into out; 0, or an answer of 400. */
static int param(const struct http_call *call, const char *name, char *out, size_t size,
                 struct http_answer *answer)
{
    int got = http_query_get(call->query, call->query_len, name, out, size);
    int ok = got == 1 && out[0] != '\0';
    for (const char *p = out; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f;
    if (!ok) {
        struct buf why = BUF_INIT;
        buf_printf(&why, "missing or malformed parameter %s", name);
        answer_error(answer, 400, why.data);
        buf_free(&why);
        return -EINVAL;
    }
    return 0;
}

/* An optional parameter as param checks it; 0 and out "" when absent. */
static int param_opt(const struct http_call *call, const char *name, char *out, size_t size,
                     struct http_answer *answer)
{
    out[0] = '\0';
    if (http_query_get(call->query, call->query_len, name, out, size) == 0)
        return 0;
    return param(call, name, out, size, answer);
}

/* A queue id (upper-case base 32, see spool.h), or "". */
static int valid_id(const char *id)
{
    for (const char *p = id; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

static int stopping(struct scheduler *s, struct http_answer *answer)
{
    if (s == NULL)
        answer_error(answer, 503, "the daemon is stopping");
    return s == NULL;
}

void admin_api_destinations(struct scheduler *s, const struct http_call *call,
                            struct http_answer *answer)
{
    (void)call;
    if (stopping(s, answer))
        return;
    buf_printf(&answer->body, "{\"destinations\":");
    scheduler_destinations_json(s, &answer->body);
    buf_printf(&answer->body, "}\n");
}

/* A tenant's mail (and campaign) the query names instead of a destination: 1 when it does, 0 when
 * it names none, or -EINVAL after an answer of 400. */
static int tenant_params(const struct http_call *call, char *tenant, char *campaign,
                         struct http_answer *answer)
{
    if (param_opt(call, "tenant", tenant, NAME_MAX_LEN + 1, answer) < 0 ||
        param_opt(call, "campaign", campaign, NAME_MAX_LEN + 1, answer) < 0)
        return -EINVAL;
    char destination[NAME_MAX_LEN + 1];
    int has_destination = http_query_get(call->query, call->query_len, "destination", destination,
                                         sizeof destination) != 0;
    if ((campaign[0] && !tenant[0]) || (tenant[0] && has_destination)) {
        answer_error(answer, 400, "destination, or tenant and an optional campaign");
        return -EINVAL;
    }
    return tenant[0] != '\0';
}

/* Holds or releases a tenant's mail (scheduler_hold_tenant, as `queue suspend --tenant`). */
static void hold_tenant(struct scheduler *s, const char *tenant, const char *campaign, int hold,
                        struct http_answer *answer)
{
    struct buf words = BUF_INIT;
    int rc = scheduler_hold_tenant(s, tenant, campaign, hold, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}

void admin_api_suspend(struct scheduler *s, const struct http_call *call,
                       struct http_answer *answer)
{
    char name[NAME_MAX_LEN + 1], seconds[16], tenant[NAME_MAX_LEN + 1], campaign[NAME_MAX_LEN + 1];
    int by_tenant = stopping(s, answer) ? -1 : tenant_params(call, tenant, campaign, answer);
    if (by_tenant < 0)
        return;
    int has = http_query_get(call->query, call->query_len, "seconds", seconds, sizeof seconds);
    if (by_tenant && has != 0) {
        answer_error(answer, 400, "a tenant is suspended until resumed: no seconds");
        return;
    }
    if (by_tenant) {
        hold_tenant(s, tenant, campaign, 1, answer);
        return;
    }
    if (param(call, "destination", name, sizeof name, answer) < 0)
        return;
    unsigned long n = 0;
    if (has != 0) {
        char *end = NULL;
        n = has == 1 && seconds[0] >= '0' && seconds[0] <= '9' ? strtoul(seconds, &end, 10) : 0;
        if (end == NULL || *end != '\0' || n == 0 || n > SCHEDULER_SUSPEND_MAX_S) {
            answer_error(answer, 400, "seconds: 1 to 2592000 (30 days)");
            return;
        }
    }
    struct buf words = BUF_INIT;
    int rc = scheduler_suspend(s, name, (uint64_t)n * 1000, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}

void admin_api_resume(struct scheduler *s, const struct http_call *call, struct http_answer *answer)
{
    char name[NAME_MAX_LEN + 1], tenant[NAME_MAX_LEN + 1], campaign[NAME_MAX_LEN + 1];
    int by_tenant = stopping(s, answer) ? -1 : tenant_params(call, tenant, campaign, answer);
    if (by_tenant < 0)
        return;
    if (by_tenant) {
        hold_tenant(s, tenant, campaign, 0, answer);
        return;
    }
    if (param(call, "destination", name, sizeof name, answer) < 0)
        return;
    struct buf words = BUF_INIT;
    int rc = scheduler_resume(s, name, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}

void admin_api_retry(struct scheduler *s, const struct http_call *call, struct http_answer *answer)
{
    char id[SPOOL_ID_MAX + 1];
    if (stopping(s, answer) || param(call, "id", id, sizeof id, answer) < 0)
        return;
    if (strcmp(id, "all") != 0 && !valid_id(id)) {
        answer_error(answer, 400, "id: a queue id or all");
        return;
    }
    struct buf words = BUF_INIT;
    int rc = scheduler_retry(s, id, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}

/* A message on its way: the scheduler answers later, perhaps after the client has gone (or at
 * once, from inside the call). */
struct show_job {
    struct http_later *later; /* NULL once the client has gone */
};

static void show_on_gone(void *owner)
{
    struct show_job *job = owner;
    job->later = NULL;
}

/* The scheduler's later answer: its document, or its reason with 404 (not queued) or 503. */
static void show_on_answer(void *arg, int status, const struct buf *doc)
{
    struct show_job *job = arg;
    if (job->later != NULL) {
        int code = status == 0 ? 200 : status == -ENOENT ? 404 : 503;
        struct http_answer answer = {code, "application/json", BUF_INIT, 0};
        if (status == 0)
            buf_append(&answer.body, doc->data, doc->len);
        else
            buf_printf(&answer.body, "%.*s", (int)strcspn(doc->data, "\n"), doc->data);
        http_later_answer(job->later, &answer);
    }
    free(job);
}

static struct show_job *show_job_new(const struct http_call *call)
{
    struct show_job *job = xcalloc(1, sizeof *job);
    job->later = call->later;
    http_later_watch(call->later, show_on_gone, job);
    return job;
}

void admin_api_bounce(struct scheduler *s, const struct http_call *call, struct http_answer *answer)
{
    char id[SPOOL_ID_MAX + 1];
    struct scheduler_list_filter filter = {0};
    if (stopping(s, answer) || param_opt(call, "id", id, sizeof id, answer) < 0 ||
        param_opt(call, "destination", filter.destination, sizeof filter.destination, answer) < 0 ||
        param_opt(call, "tenant", filter.tenant, sizeof filter.tenant, answer) < 0 ||
        param_opt(call, "campaign", filter.campaign, sizeof filter.campaign, answer) < 0)
        return;
    int selection = filter.destination[0] || filter.tenant[0];
    if ((id[0] != '\0') == selection || (filter.campaign[0] && !filter.tenant[0])) {
        answer_error(answer, 400,
                     "id, or a destination and/or a tenant (and an optional campaign)");
        return;
    }
    if (!valid_id(id)) {
        answer_error(answer, 400, "id: a queue id");
        return;
    }
    struct buf words = BUF_INIT;
    int rc = id[0] ? scheduler_bounce_message(s, id, &words)
                   : scheduler_bounce_selected(s, &filter, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}

/* A page of the queue goes to the client as the scheduler writes it (http_stream_write), the
 * next slice once h2o has taken the one before. */
static void page_put(void *arg, const char *data, size_t len)
{
    http_stream_write(arg, data, len);
}

static void page_wake(void *listing)
{
    scheduler_list_wake(listing);
}

static int page_full(void *arg, struct scheduler_listing *listing)
{
    return http_stream_full(arg, page_wake, listing);
}

static void page_done(void *arg, int status, const char *why)
{
    http_stream_end(arg, status == 0 ? 0 : 503, why);
}

void admin_api_messages(struct scheduler *s, const struct http_call *call,
                        struct http_answer *answer)
{
    static const char states[] = " pending deferred delivered failed bounced ";
    char limit[8], after[SPOOL_ID_MAX + 1], word[20];
    struct scheduler_list_filter filter;
    if (stopping(s, answer) || param_opt(call, "limit", limit, sizeof limit, answer) < 0 ||
        param_opt(call, "after", after, sizeof after, answer) < 0 ||
        param_opt(call, "destination", filter.destination, sizeof filter.destination, answer) < 0 ||
        param_opt(call, "state", filter.state, sizeof filter.state, answer) < 0 ||
        param_opt(call, "tenant", filter.tenant, sizeof filter.tenant, answer) < 0 ||
        param_opt(call, "campaign", filter.campaign, sizeof filter.campaign, answer) < 0)
        return;
    char *end = NULL;
    unsigned long n = limit[0] >= '1' && limit[0] <= '9' ? strtoul(limit, &end, 10) : 0;
    if (limit[0] != '\0' && (end == NULL || *end != '\0' || n > SCHEDULER_PAGE_MAX)) {
        answer_error(answer, 400, "limit: 1 to 1000");
        return;
    }
    if (!valid_id(after)) {
        answer_error(answer, 400, "after: a queue id");
        return;
    }
    snprintf(word, sizeof word, " %s ", filter.state);
    if (filter.state[0] && strstr(states, word) == NULL) {
        answer_error(answer, 400, "state: pending, deferred, delivered, failed or bounced");
        return;
    }
    answer->status = HTTP_ANSWER_LATER;
    struct http_stream *st = http_later_stream(call->later, "application/json");
    struct scheduler_list_sink sink = {page_put, page_full, page_done, st};
    scheduler_list_stream(s, after, n != 0 ? n : SCHEDULER_PAGE_MAX, &filter, &sink);
}

void admin_api_message(struct scheduler *s, const struct http_call *call,
                       struct http_answer *answer)
{
    char id[SPOOL_ID_MAX + 1];
    if (stopping(s, answer))
        return;
    if (call->rest_len > SPOOL_ID_MAX) {
        answer_error(answer, 400, "not a queue id");
        return;
    }
    snprintf(id, sizeof id, "%.*s", (int)call->rest_len, call->rest);
    if (!valid_id(id)) {
        answer_error(answer, 400, "not a queue id");
        return;
    }
    answer->status = HTTP_ANSWER_LATER;
    scheduler_show(s, id, show_on_answer, show_job_new(call));
}
