/*
 * The admin API (admin_api.h): query parameters checked, the scheduler's operation called, its
 * words answered as JSON.
 */
#include "mta/http/admin_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>


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

void admin_api_suspend(struct scheduler *s, const struct http_call *call,
                       struct http_answer *answer)
{
    char name[NAME_MAX_LEN + 1], seconds[16];
    if (stopping(s, answer) || param(call, "destination", name, sizeof name, answer) < 0)
        return;
    unsigned long n = 0;
    int has = http_query_get(call->query, call->query_len, "seconds", seconds, sizeof seconds);
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
    char name[NAME_MAX_LEN + 1];
    if (stopping(s, answer) || param(call, "destination", name, sizeof name, answer) < 0)
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
    int valid = 1;
    for (const char *p = id; valid && *p && strcmp(id, "all") != 0; p++)
        valid = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
    if (!valid) {
        answer_error(answer, 400, "id: a queue id or all");
        return;
    }
    struct buf words = BUF_INIT;
    int rc = scheduler_retry(s, id, &words);
    answer_op(answer, rc, &words);
    buf_free(&words);
}
