/*
 * `sluice queue`: inspect and steer the queue. list and show read the spool directly (read-only;
 * committed files are never rewritten in place, so reading races with nothing) and so work
 * whether or not the daemon runs; `list --json` asks the running daemon, which also knows the
 * destinations, a page at a time, and so does `destinations`, which tells in words what holds each
 * one back (the daemon's state: `sluice explain` only reads the configuration). retry, delete,
 * suspend and resume go through the daemon's control socket; with no daemon running, delete removes
 * the message from the spool itself and the others fail.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/config.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/control.h"
#include "mta/delivery/bounce_category.h"
#include "spool/spool.h"

/* The whole exchange with the daemon; a list of a big queue takes a while to build and send. */
#define QUEUE_CONTROL_TIMEOUT_MS 30000

struct show_args {
    const char *id;
    int found;
    int body_only;
};

static void list_on_entry(const struct spool_entry *e, void *arg)
{
    (void)arg;
    printf("%s %llu <%s>", e->id, (unsigned long long)e->body_size, e->env->sender);
    for (size_t i = 0; i < e->env->nrcpts; i++)
        printf("%s%s", i ? "," : " ", e->env->rcpts[i]);
    printf("\n");
}

static const char *const rcpt_status_names[] = {"pending", "deferred", "delivered", "failed",
                                                "bounced"};

/* "recipient: <addr> STATUS, N attempts[, next YYYY-MM-DDTHH:MM:SSZ][, category: CATEGORY]
 * [, last reply: TEXT]"; a category (bounce_category.h) for each one not delivered. */
static void show_recipient(const char *addr, const struct spool_rcpt_state *st)
{
    printf("recipient: <%s>", addr);
    if (st != NULL) {
        unsigned status = (unsigned)st->status;
        printf(" %s, %u attempts",
               status < ARRAY_LEN(rcpt_status_names) ? rcpt_status_names[status] : "unknown",
               st->attempts);
        if (st->status == SPOOL_RCPT_DEFERRED) {
            char when[32];
            time_t t = (time_t)st->next_attempt;
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
            printf(", next %s", when);
        }
        int undelivered = st->status == SPOOL_RCPT_DEFERRED || st->status == SPOOL_RCPT_FAILED ||
                          st->status == SPOOL_RCPT_BOUNCED;
        if (undelivered && st->reply != NULL && st->reply[0] != '\0')
            printf(", category: %s", bounce_category_name(bounce_category_of_reply(st->reply)));
        if (st->reply != NULL && st->reply[0] != '\0')
            printf(", last reply: %s", st->reply);
    }
    printf("\n");
}

static void show_on_entry(const struct spool_entry *e, void *arg)
{
    struct show_args *show = arg;
    if (strcmp(e->id, show->id) != 0)
        return;
    show->found = 1;
    if (show->body_only)
        return;
    printf("id: %s\nsender: <%s>\n", e->id, e->env->sender);
    for (size_t i = 0; i < e->env->nrcpts; i++)
        show_recipient(e->env->rcpts[i], e->rcpt_state ? &e->rcpt_state[i] : NULL);
    printf("client: %s\nhelo: %s\nlistener: %s\ntenant: %s\ncampaign: %s\nreceived_at: %lld\n"
           "size: %llu\n\n",
           e->env->client_addr ? e->env->client_addr : "", e->env->helo ? e->env->helo : "",
           e->env->listener ? e->env->listener : "", e->env->tenant ? e->env->tenant : "",
           e->env->campaign ? e->env->campaign : "", (long long)e->env->received_at,
           (unsigned long long)e->body_size);
}

static int queue_list(const char *spool, struct buf *err)
{
    return spool_scan(spool, list_on_entry, NULL, err) < 0 ? 1 : 0;
}

/* The site's bounce category rules for show; a broken pattern file must not hide the queue, so
 * it is reported and the shipped rules are used. */
static void queue_use_categories(const struct config *cfg)
{
    struct buf why = BUF_INIT;
    struct bounce_categories *set = NULL;
    if (bounce_categories_load_config(cfg, &set, &why) < 0)
        fprintf(stderr, "sluice: warning: %.*sthe shipped bounce categories are used instead\n",
                (int)why.len, why.data);
    bounce_categories_use(set);
    buf_free(&why);
}

static int queue_show(const char *spool, const char *id, int body_only, struct buf *err)
{
    struct show_args show = {id, 0, body_only};
    struct buf body = BUF_INIT;
    int status = 1;
    if (spool_scan(spool, show_on_entry, &show, err) < 0) {
        /* err says why */
    } else if (!show.found) {
        buf_printf(err, "queue: no message %s", id);
    } else if (spool_load_body(spool, id, &body, err) == 0) {
        fwrite(body.data, 1, body.len, stdout);
        status = 0;
    }
    buf_free(&body);
    return status;
}

/* ---- through the daemon ---- */

static void offline_on_removed(int status, void *arg)
{
    *(int *)arg = status;
}

/* delete with no daemon running: nothing else uses the spool, so remove the files here. */
static int queue_delete_offline(const char *spool, const char *id, struct buf *err)
{
    struct show_args show = {id, 0, 1};
    if (spool_scan(spool, show_on_entry, &show, err) < 0)
        return 1;
    if (!show.found) {
        buf_printf(err, "queue: no message %s", id);
        return 1;
    }
    uv_loop_t loop;
    struct spool *sp;
    int removed = 1; /* set by the callback */
    uv_loop_init(&loop);
    int rc = spool_open(&loop, spool, &sp, err);
    if (rc == 0) {
        spool_msg_remove(sp, id, offline_on_removed, &removed);
        uv_run(&loop, UV_RUN_DEFAULT);
        spool_close(sp);
        rc = removed;
        if (rc < 0)
            buf_printf(err, "queue: removing %s: %s", id, strerror(-rc));
    }
    uv_loop_close(&loop);
    if (rc < 0)
        return 1;
    printf("%s deleted from the spool (no daemon running)\n", id);
    return 0;
}

int command_control_call(const char *spool, const char *request, struct buf *payload,
                         struct buf *err)
{
    struct buf path = BUF_INIT, answer = BUF_INIT;
    int status = 1;
    if (control_socket_path(spool, &path, err) < 0)
        goto out;
    int rc = control_call(path.data, request, QUEUE_CONTROL_TIMEOUT_MS, &answer, err);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        status = -1;
    } else if (rc < 0) {
        /* err says why */
    } else if (answer.len >= 3 && memcmp(answer.data, "ok\n", 3) == 0) {
        buf_append(payload, answer.data + 3, answer.len - 3);
        status = 0;
    } else if (answer.len > 7 && memcmp(answer.data, "error: ", 7) == 0) {
        buf_printf(err, "%.*s", (int)(answer.len - 7 - (answer.data[answer.len - 1] == '\n')),
                   answer.data + 7);
    } else {
        buf_printf(err, "no answer from the daemon on %s", path.data);
    }
out:
    buf_free(&path);
    buf_free(&answer);
    return status;
}

/* The same, printing the payload on stdout. */
static int queue_control(const char *spool, const char *request, struct buf *err)
{
    struct buf payload = BUF_INIT;
    int status = command_control_call(spool, request, &payload, err);
    if (status == 0)
        fwrite(payload.data, 1, payload.len, stdout);
    buf_free(&payload);
    return status;
}

/* `list --json`: the daemon answers a page at a time (it never builds the whole queue), and the
 * pages are printed as they come, as one document: the messages of every page, the window's
 * counters of the last and the destinations of the first. */
static int queue_list_json(const char *spool, struct buf *err)
{
    struct buf request = BUF_INIT, page = BUF_INIT;
    json_t *destinations = NULL, *active = NULL;
    char after[SPOOL_ID_MAX + 1] = "";
    size_t listed = 0;
    int status = 0;
    for (unsigned pages = 0; status == 0; pages++) {
        buf_reset(&request);
        buf_reset(&page);
        buf_printf(&request, "list %d%s%s", CONTROL_PAGE_MAX, after[0] ? " " : "", after);
        status = command_control_call(spool, request.data, &page, err);
        if (status != 0)
            break;
        json_t *doc = json_loadb(page.data, page.len, 0, NULL);
        json_t *msgs = json_object_get(doc, "messages"), *next = json_object_get(doc, "next");
        if (!json_is_array(msgs) || (!json_is_null(next) && !json_is_string(next)) ||
            (json_is_string(next) && strlen(json_string_value(next)) > SPOOL_ID_MAX)) {
            buf_printf(err, "the daemon's page %u of the queue is not a listing", pages + 1);
            json_decref(doc);
            status = 1;
            break;
        }
        if (pages == 0) {
            destinations = json_incref(json_object_get(doc, "destinations"));
            printf("{\"messages\":[");
        }
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            char *text = json_dumps(m, JSON_COMPACT);
            printf("%s%s", listed++ ? "," : "", text);
            free(text);
        }
        json_decref(active);
        active = json_incref(json_object_get(doc, "active"));
        int last = json_is_null(next);
        if (!last)
            snprintf(after, sizeof after, "%s", json_string_value(next));
        json_decref(doc);
        if (last)
            break;
    }
    if (status == 0) {
        char *a = active != NULL ? json_dumps(active, JSON_COMPACT) : NULL;
        char *d = destinations != NULL ? json_dumps(destinations, JSON_COMPACT) : NULL;
        printf("],\"active\":%s,\"destinations\":%s}\n", a ? a : "{}", d ? d : "[]");
        free(a);
        free(d);
    }
    json_decref(active);
    json_decref(destinations);
    buf_free(&request);
    buf_free(&page);
    return status < 0 ? 1 : status; /* no daemon: err says so */
}

/* ---- arguments ---- */

struct action {
    const char *name;
    int min_args, max_args; /* after the action's name */
    const char *needs;      /* what the first argument is, for "missing ..." */
};

static const struct action actions[] = {
    {"list", 0, 0, NULL},
    {"show", 1, 1, "message ID"},
    {"retry", 1, 1, "message ID (or all)"},
    {"delete", 1, 1, "message ID"},
    {"suspend", 1, 2, "destination"},
    {"resume", 1, 1, "destination"},
    {"bounce", 1, 1, "message ID (or --destination, --tenant)"},
    {"destinations", 0, 1, NULL},
};

/* The selection of suspend|resume --tenant T [--campaign C] and of bounce --destination D
 * [--tenant T [--campaign C]]: its request, each name one word. */
struct selection {
    const char *destination, *tenant, *campaign; /* NULL: not given */
};

static int one_word(const char *s)
{
    return s == NULL || (s[0] != '\0' && strcspn(s, " \r\n\t") == strlen(s));
}

static int queue_selection(const char *spool, const char *action, const struct selection *sel,
                           struct buf *err)
{
    struct buf request = BUF_INIT;
    if (sel->destination != NULL)
        buf_printf(&request, "%s-destination %s", action, sel->destination);
    else
        buf_printf(&request, "%s-tenant", action);
    if (sel->tenant != NULL)
        buf_printf(&request, " %s", sel->tenant);
    if (sel->campaign != NULL)
        buf_printf(&request, " %s", sel->campaign);
    int status = one_word(sel->destination) && one_word(sel->tenant) && one_word(sel->campaign) &&
                         request.len < CONTROL_REQUEST_MAX
                     ? queue_control(spool, request.data, err)
                     : 2;
    buf_free(&request);
    if (status == 2)
        return command_usage_error(
            "queue", "%s: --destination, --tenant and --campaign take one word each", action);
    return status < 0 ? 1 : status;
}

static int queue_run(const char *spool, const char *action, char **args, int json, int body_only,
                     struct buf *err)
{
    if (strcmp(action, "list") == 0)
        return json ? queue_list_json(spool, err) : queue_list(spool, err);
    if (strcmp(action, "show") == 0)
        return queue_show(spool, args[0], body_only, err);

    struct buf request = BUF_INIT;
    buf_printf(&request, "%s", action); /* NUL-terminated */
    for (int i = 0; i < 2 && args[i] != NULL; i++)
        buf_printf(&request, " %s", args[i]);
    /* One word per argument, one line in all: the daemon parses it again and decides. */
    int status = request.len < CONTROL_REQUEST_MAX && strcspn(request.data, "\r\n\t") == request.len
                     ? queue_control(spool, request.data, err)
                     : 2;
    buf_free(&request);
    if (status == 2)
        return command_usage_error("queue",
                                   "%s: the request is longer than %d bytes or has a line "
                                   "break or tab",
                                   action, CONTROL_REQUEST_MAX - 1);
    if (status == -1 && strcmp(action, "delete") == 0) {
        buf_reset(err);
        return queue_delete_offline(spool, args[0], err);
    }
    return status < 0 ? 1 : status;
}

/* Checks the verb and its arguments: the action, or NULL after a usage error. */
static const struct action *queue_action(char **words, int nwords, int json, int body_only,
                                         int tenancy, int by_destination)
{
    const char *names[ARRAY_LEN(actions)];
    const struct action *act = NULL;
    for (size_t i = 0; i < ARRAY_LEN(actions); i++) {
        names[i] = actions[i].name;
        if (nwords > 0 && strcmp(words[0], actions[i].name) == 0)
            act = &actions[i];
    }
    if (nwords == 0) {
        command_usage_error("queue", "missing queue verb (list, show, retry, delete, suspend, "
                                     "resume, bounce or destinations)");
        return NULL;
    }
    if (act == NULL) {
        const char *hint = command_suggest(words[0], names, ARRAY_LEN(names));
        if (hint != NULL)
            command_usage_error("queue", "unknown queue verb '%s' (did you mean %s?)", words[0],
                                hint);
        else
            command_usage_error("queue", "unknown queue verb '%s'", words[0]);
        return NULL;
    }
    char name[32]; /* "queue VERB": the usage shown is that verb's */
    snprintf(name, sizeof name, "queue %s", act->name);
    int bounce = strcmp(act->name, "bounce") == 0;
    int by_selection = (tenancy && (strcmp(act->name, "suspend") == 0 ||
                                    strcmp(act->name, "resume") == 0 || bounce)) ||
                       (by_destination && bounce);
    if (by_destination && !bounce)
        command_usage_error(name, "--destination goes with bounce only");
    else if (tenancy && !by_selection)
        command_usage_error(name, "--tenant and --campaign go with suspend, resume and bounce");
    else if (by_selection && nwords > 1)
        command_usage_error(name, "%s, not both",
                            bounce ? "a message ID or --destination/--tenant"
                                   : "a destination or --tenant");
    else if (by_selection)
        return act;
    else if (nwords - 1 < act->min_args)
        command_usage_error(name, "missing %s", act->needs);
    else if (nwords - 1 > act->max_args)
        command_usage_error(name, "unexpected argument '%s'", words[act->max_args + 1]);
    else if (body_only && strcmp(act->name, "show") != 0)
        command_usage_error(name, "--body goes with queue show only");
    else if (json && strcmp(act->name, "list") != 0)
        command_usage_error(name, "--json goes with queue list only");
    else
        return act;
    return NULL;
}

int cmd_queue(int argc, char **argv)
{
    const char *path = NULL;
    char *words[4] = {NULL, NULL, NULL, NULL}; /* action and up to two arguments, NULL-ended */
    struct selection sel = {NULL, NULL, NULL};
    int nwords = 0, json = 0, body_only = 0;
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},           {"--json", NULL, NULL, &json},
        {"--body", NULL, NULL, &body_only},        {"--tenant", NULL, &sel.tenant, NULL},
        {"--campaign", NULL, &sel.campaign, NULL}, {"--destination", NULL, &sel.destination, NULL},
    };
    if (command_parse("queue", argc, argv, opts, ARRAY_LEN(opts), words, 3, &nwords) != 0)
        return 2;
    if (sel.campaign != NULL && sel.tenant == NULL)
        return command_usage_error("queue", "--campaign goes with --tenant");
    const struct action *act =
        queue_action(words, nwords, json, body_only, sel.tenant != NULL, sel.destination != NULL);
    if (act == NULL)
        return 2;

    struct buf err = BUF_INIT;
    /* Only server.spool is needed: a broken key or recipients file must not hide the queue. */
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL)
        return command_failed(&err);
    if (strcmp(act->name, "show") == 0 && !body_only)
        queue_use_categories(cfg);
    int status = sel.tenant != NULL || sel.destination != NULL
                     ? queue_selection(cfg->server.spool, act->name, &sel, &err)
                     : queue_run(cfg->server.spool, act->name, words + 1, json, body_only, &err);
    bounce_categories_use(NULL);
    if (status == 1)
        fprintf(stderr, "sluice: %.*s\n", (int)err.len, err.data);
    config_unref(cfg);
    buf_free(&err);
    return status;
}
