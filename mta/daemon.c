#include "mta/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#ifdef SLUICE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "lib/dns.h"
#include "lib/log.h"
#include "lib/loop_watch.h"
#include "lib/tls.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/config_load.h"
#include "mta/control.h"
#include "mta/delivery/bounce_category.h"
#include "mta/dkim/dkim.h"
#include "mta/dkim/dkim_check.h"
#include "mta/delivery/mail_metrics.h"
#include "mta/http/admin_api.h"
#include "mta/http/api_inject.h"
#include "mta/http/http_server.h"
#include "mta/http/prom.h"
#include "mta/http/status.h"
#include "mta/http/status_page.h"
#include "mta/server/listener.h"
#include "mta/run_gates.h"
#include "mta/delivery/scheduler.h"
#include "mta/delivery/shared_limits.h"
#include "mta/delivery/tls_policy.h"
#include "mta/delivery/tls_rpt.h"
#include "mta/server/smtp_server.h"
#include "mta/webhooks/webhooks.h"
#include "policy/auth_users.h"
#include "policy/public_suffix.h"
#include "policy/recipients.h"
#include "policy/suppression.h"
#include "policy/verify.h"
#include "spool/spool.h"
#include "spool/spool_owner.h"
#include "spool/spool_space.h"

/* Disk syncs run on libuv's thread pool; many in flight let the file system merge them. */
#define THREADPOOL_SIZE "32"
/* Clients whose failed AUTH attempts are remembered (the least recent make room). */
#define AUTH_FAILURE_CLIENTS 4096

struct daemon {
    uv_loop_t loop;
    const char *config_path; /* NULL: embedded default */
    char *user;              /* the user it runs as, for log lines */
    struct smtp_server srv;
    struct listener *listeners;
    struct dns_resolver *dns;
    struct control *control;      /* <spool>/control: `sluice queue` */
    struct loop_watch *watch;     /* the loop's turn times */
    struct http_server *http;     /* http.listen: metrics and the status API; NULL: none */
    struct shared_limits *shared; /* limits kept with the other nodes (cluster.redis), or NULL */
    int64_t started_ms;           /* unix ms, for the status */
    SSL_CTX *tls_client_ctx;      /* STARTTLS towards MX hosts */
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t grace_timer;
    /* Event webhooks: stopped last, so they keep what the shutdown logs. */
    struct webhooks *webhooks;
    unsigned stopping : 1;
    unsigned drained : 1;           /* every SMTP session has ended */
    unsigned scheduler_stopped : 1; /* every delivery has ended */
    unsigned finished : 1;
    unsigned reloading : 1;    /* a reload's files are being read on the thread pool */
    unsigned reload_again : 1; /* SIGHUP during that: reload once more after it */
};

static void daemon_on_sighup(uv_signal_t *h, int signum);
static void daemon_on_stop_signal(uv_signal_t *h, int signum);
static void daemon_on_drained(struct smtp_server *srv);

static SSL_CTX *tls_ctx_for(const struct config *cfg, struct buf *err)
{
    if (cfg->tls.certificate == NULL)
        return NULL;
    return tls_server_ctx_new(cfg->tls.certificate, cfg->tls.key, err);
}

static struct listener *listener_by_address(struct listener *list, const char *address)
{
    for (; list != NULL; list = list->next)
        if (strcmp(list->address, address) == 0)
            return list;
    return NULL;
}

/* Opens the listeners of cfg that are not open yet, into *opened. Returns 0 or -1 (err set); on
 * failure the ones it opened are closed again. */
static void listeners_close(struct listener **list)
{
    while (*list != NULL) {
        struct listener *next = (*list)->next;
        listener_close(*list);
        *list = next;
    }
}

static int open_new_listeners(struct daemon *d, const struct config *cfg, struct listener **opened,
                              struct buf *err)
{
    *opened = NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct config_listener *cl = &cfg->listeners[i];
        if (listener_by_address(d->listeners, cl->address) != NULL)
            continue;
        struct listener *l;
        if (listener_open(&d->srv, cl, &l, err) < 0) {
            listeners_close(opened);
            return -1;
        }
        l->next = *opened;
        *opened = l;
    }
    return 0;
}

/* Makes the running listeners those of cfg: keeps unchanged addresses, closes the rest, adds the
 * new. */
static void adopt_listeners(struct daemon *d, const struct config *cfg, struct listener *opened)
{
    struct listener **link = &d->listeners;
    while (*link != NULL) {
        struct listener *l = *link;
        const struct config_listener *keep = NULL;
        for (size_t i = 0; i < cfg->nlisteners && keep == NULL; i++)
            if (strcmp(cfg->listeners[i].address, l->address) == 0)
                keep = &cfg->listeners[i];
        if (keep == NULL) {
            *link = l->next;
            listener_close(l);
            continue;
        }
        listener_rename(l, keep->name);
        link = &l->next;
    }
    *link = opened;
}

/* Tells the service manager how the daemon is (systemd's Type=notify: READY=1, RELOADING=1,
 * STOPPING=1), when it started the daemon with $NOTIFY_SOCKET; built without libsystemd, nothing.
 */
static void daemon_notify(const char *state)
{
#ifdef SLUICE_HAVE_SYSTEMD
    (void)sd_notify(0, state);
#else
    (void)state;
#endif
}

static void log_ready(struct daemon *d, const char *event)
{
    struct buf names = BUF_INIT;
    for (size_t i = 0; i < d->srv.cfg->nlisteners; i++) {
        const struct config_listener *cl = &d->srv.cfg->listeners[i];
        buf_printf(&names, "%s%s=%s", i ? "," : "", cl->name, cl->address);
    }
    struct logrec r;
    log_begin(&r, LOG_INFO, event);
    log_str(&r, "config", d->srv.cfg->source);
    log_strn(&r, "listeners", names.data, names.len);
    log_int(&r, "pid", (long long)getpid());
    log_str(&r, "user", d->user);
    log_end(&r);
    buf_free(&names);
}

static int strings_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int optional_strings_differ(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* The cluster keys are read once, at start. */
static int cluster_changed(const struct config *a, const struct config *b)
{
    return optional_strings_differ(a->cluster.redis, b->cluster.redis) ||
           optional_strings_differ(a->cluster.key_prefix, b->cluster.key_prefix) ||
           a->cluster.nodes != b->cluster.nodes ||
           a->cluster.lease_ttl_ms != b->cluster.lease_ttl_ms ||
           a->cluster.timeout_ms != b->cluster.timeout_ms;
}

/* A reload in progress: what is read from files, on the thread pool, then swapped in on the loop.
 */
struct reload {
    uv_work_t work;
    struct daemon *d;
    struct buf err;
    struct config *cfg; /* NULL: the file did not load (err says why) */
    struct dkim_signer_set *signers;
    struct recipients *recipients;
    SSL_CTX *tls;
    struct auth_users *users;
    struct bounce_categories *categories;
    struct public_suffixes *suffixes;
    struct http_files http;
};

static void reload_on_work(uv_work_t *req);
static void reload_on_loaded(uv_work_t *req, int status);
static int open_new_http(struct daemon *d, const struct config *cfg, struct listener **opened,
                         struct buf *err);

/* SIGHUP: the files (configuration, keys, certificates, users, recipients: any may be large or
 * slow) are read on the thread pool; a SIGHUP during a reload runs one more after it. */
static void daemon_reload(struct daemon *d)
{
    if (d->reloading) {
        d->reload_again = 1;
        return;
    }
    d->reloading = 1;
    daemon_notify("RELOADING=1");
    struct reload *r = xcalloc(1, sizeof *r);
    r->d = d;
    /* Fails only when given no work callback. */
    (void)uv_queue_work(&d->loop, &r->work, reload_on_work, reload_on_loaded);
}

static void reload_on_work(uv_work_t *req)
{
    struct reload *r = container_of(req, struct reload, work);
    r->cfg = config_load_with_signers(r->d->config_path, &r->signers, &r->recipients, &r->err);
    if (r->cfg == NULL)
        return;
    if ((r->cfg->tls.certificate != NULL && (r->tls = tls_ctx_for(r->cfg, &r->err)) == NULL) ||
        config_auth_users(r->cfg, &r->users, &r->err) < 0 ||
        bounce_categories_load_config(r->cfg, &r->categories, &r->err) < 0 ||
        config_public_suffixes(r->cfg, &r->suffixes, &r->err) < 0 ||
        http_files_load(r->cfg, &r->http, &r->err) < 0) {
        config_unref(r->cfg);
        r->cfg = NULL;
    }
}

static void reload_free(struct reload *r)
{
    if (r->tls != NULL)
        SSL_CTX_free(r->tls);
    auth_users_free(r->users);
    bounce_categories_free(r->categories);
    public_suffixes_unref(r->suffixes);
    http_files_free(&r->http);
    recipients_free(r->recipients);
    dkim_signer_set_unref(r->signers);
    config_unref(r->cfg);
    buf_free(&r->err);
    free(r);
}

/* The store is opened at start only (opening it syncs a file): a reload that would need another
 * one says so. Turning the list off takes effect at once. */
static void reload_check_suppression(struct daemon *d, const struct config *cfg)
{
    if (!cfg->suppression.enabled)
        return;
    struct buf now = BUF_INIT, then = BUF_INIT;
    suppression_dir(cfg, &now);
    suppression_dir(d->srv.cfg, &then);
    if (d->srv.suppression == NULL || strcmp(now.data, then.data) != 0)
        log_msg(LOG_WARN, "daemon.reload",
                "suppression.enabled or suppression.path changed: takes effect at the next "
                "restart");
    buf_free(&now);
    buf_free(&then);
}

/* Swaps in what the reload loaded (its fields are taken: NULL afterwards). */
static void reload_apply(struct daemon *d, struct reload *r, struct listener *opened)
{
    struct config *cfg = r->cfg;
    if (strcmp(cfg->server.spool, d->srv.cfg->server.spool) != 0)
        log_msg(LOG_WARN, "daemon.reload",
                "server.spool changed: takes effect at the next restart");
    if (optional_strings_differ(cfg->server.user, d->srv.cfg->server.user))
        log_msg(LOG_WARN, "daemon.reload", "server.user changed: takes effect at the next restart");
    if (!strings_equal(cfg->dns.servers, cfg->dns.nservers, d->srv.cfg->dns.servers,
                       d->srv.cfg->dns.nservers) ||
        cfg->dns.timeout_ms != d->srv.cfg->dns.timeout_ms)
        log_msg(LOG_WARN, "daemon.reload", "dns changed: takes effect at the next restart");
    reload_check_suppression(d, cfg);
    if (cluster_changed(cfg, d->srv.cfg))
        log_msg(LOG_WARN, "daemon.reload", "cluster changed: takes effect at the next restart");
    scheduler_set_config(d->srv.scheduler, cfg);
    webhooks_set_config(d->webhooks, cfg);
    adopt_listeners(d, cfg, opened);
    http_server_commit(&d->http, cfg, &r->http);
    if (d->srv.tls_ctx != NULL)
        SSL_CTX_free(d->srv.tls_ctx);
    d->srv.tls_ctx = r->tls;
    /* Sessions copy the hash they check, so the old table can go at once. */
    auth_users_free(d->srv.auth_users);
    d->srv.auth_users = r->users;
    bounce_categories_use(r->categories);
    /* Lookups are synchronous, so the old tables can go at once. */
    recipients_free(d->srv.recipients);
    d->srv.recipients = r->recipients;
    /* Messages being checked keep their reference to the old list. */
    public_suffixes_unref(d->srv.public_suffixes);
    d->srv.public_suffixes = r->suffixes;
    /* Streams in flight keep their reference to the old signer set. */
    dkim_signer_set_unref(d->srv.dkim);
    d->srv.dkim = r->signers;
    tls_rpt_set_signers(scheduler_tls_rpt(d->srv.scheduler), d->srv.dkim);
    config_unref(d->srv.cfg);
    d->srv.cfg = cfg;
    *r = (struct reload){.err = r->err};
    log_set_level(cfg->server.log_level);
    /* Reopened at every reload, so a rotated log file is let go (and a new path takes effect). */
    int log_err = log_open(cfg->server.log_file);
    if (log_err < 0)
        log_msg(LOG_ERROR, "daemon.reload",
                "server.log.file: cannot open %s: %s; still logging to the old target",
                cfg->server.log_file, strerror(-log_err));
    log_ready(d, "daemon.reload");
}

static void reload_on_loaded(uv_work_t *req, int status)
{
    struct reload *r = container_of(req, struct reload, work);
    struct daemon *d = r->d;
    struct listener *opened = NULL;
    (void)status; /* never cancelled */

    d->reloading = 0;
    if (d->stopping) {
        reload_free(r);
        return;
    }
    if (r->cfg != NULL && open_new_listeners(d, r->cfg, &opened, &r->err) == 0 &&
        open_new_http(d, r->cfg, &opened, &r->err) == 0) {
        reload_apply(d, r, opened);
    } else {
        config_log_lines(LOG_ERROR, "config.error", &r->err);
        log_msg(LOG_ERROR, "daemon.reload_failed", "configuration not changed");
    }
    reload_free(r);
    if (d->reload_again) {
        d->reload_again = 0;
        daemon_reload(d);
    } else {
        daemon_notify("READY=1"); /* the reload is over, applied or not */
    }
}

static void daemon_on_sighup(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (!d->stopping)
        daemon_reload(d);
}

static void daemon_finish(struct daemon *d)
{
    if (d->finished)
        return;
    d->finished = 1;
    uv_timer_stop(&d->grace_timer);
    uv_close((uv_handle_t *)&d->grace_timer, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    /* The loop ends once spool work still in flight (aborted messages' clean-up) is done. */
}

static void daemon_on_webhooks_stopped(void *arg)
{
    daemon_finish(arg);
}

/* The loop may end once the SMTP server has drained and deliveries have stopped, and the webhooks
 * have written what that logged to their backlogs. */
static void daemon_maybe_finish(struct daemon *d)
{
    if (!d->drained || !d->scheduler_stopped)
        return;
    struct webhooks *w = d->webhooks;
    d->webhooks = NULL;
    if (w != NULL)
        webhooks_stop(w, daemon_on_webhooks_stopped, d);
    else
        daemon_finish(d);
}

static void daemon_on_drained(struct smtp_server *srv)
{
    struct daemon *d = container_of(srv, struct daemon, srv);
    d->drained = 1;
    daemon_maybe_finish(d);
}

static void daemon_on_scheduler_stopped(void *arg)
{
    struct daemon *d = arg;
    scheduler_free(d->srv.scheduler);
    d->srv.scheduler = NULL; /* messages committed from now on wait for the next start */
    shared_limits_free(d->shared);
    d->shared = NULL;
    verifier_free(d->srv.verifier);
    d->srv.verifier = NULL;
    d->scheduler_stopped = 1;
    daemon_maybe_finish(d);
}

static void daemon_on_grace_over(uv_timer_t *t)
{
    struct daemon *d = t->data;
    log_msg(LOG_WARN, "daemon.grace_over", "closing %u sessions still open", d->srv.nsessions);
    smtp_server_close_all(&d->srv);
}

static void daemon_on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping)
        return;
    d->stopping = 1;
    daemon_notify("STOPPING=1");
    log_msg(LOG_INFO, "daemon.stopping", "signal %d: no new connections; %u sessions open", signum,
            d->srv.nsessions);
    while (d->listeners != NULL) {
        struct listener *next = d->listeners->next;
        listener_close(d->listeners);
        d->listeners = next;
    }
    uv_timer_start(&d->grace_timer, daemon_on_grace_over, d->srv.cfg->server.shutdown_grace_ms, 0);
    loop_watch_close(d->watch); /* freeing the queue at a stop may take a long turn: no client waits */
    d->watch = NULL;
    control_close(d->control);
    d->control = NULL;
    http_server_close(d->http);
    d->http = NULL;
    /* Connections to MX hosts are dropped at once: what they carried is deferred, not lost. */
    scheduler_stop(d->srv.scheduler, daemon_on_scheduler_stopped, d);
    dns_resolver_free(d->dns);
    d->dns = d->srv.dns = NULL;
    spool_space_free(d->srv.space); /* no MAIL is taken from now on */
    d->srv.space = NULL;
    smtp_server_stop(&d->srv);
}

/* ---- the control socket: `sluice queue` steering the scheduler ---- */

static struct scheduler *control_scheduler(void *arg, struct buf *out)
{
    struct daemon *d = arg;
    if (d->srv.scheduler == NULL)
        buf_printf(out, "the daemon is stopping\n");
    return d->srv.scheduler;
}

/* A page of the queue goes to the control client as it is written (control_later_put). */
static void list_on_piece(void *arg, const char *data, size_t len)
{
    control_later_put(arg, data, len);
}

static void list_wake(void *l)
{
    scheduler_list_wake(l);
}

static int list_on_full(void *arg, struct scheduler_listing *l)
{
    return control_later_full(arg, list_wake, l);
}

static void list_on_done(void *arg, int status, const char *why)
{
    struct buf payload = BUF_INIT;
    if (status < 0)
        buf_append_str(&payload, why);
    control_later_done(arg, status, &payload);
    buf_free(&payload);
}

static int control_on_list(void *arg, const char *after, unsigned limit, struct buf *out,
                           struct control_later *later)
{
    struct scheduler *s = control_scheduler(arg, out);
    if (s == NULL)
        return -ESHUTDOWN;
    static const struct scheduler_list_filter any;
    struct scheduler_list_sink sink = {list_on_piece, list_on_full, list_on_done, later};
    scheduler_list_stream(s, after, limit, &any, &sink);
    return CONTROL_LATER;
}

static int control_on_retry(void *arg, const char *id, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_retry(s, id, out) : -ESHUTDOWN;
}

static int control_on_delete(void *arg, const char *id, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_delete(s, id, out) : -ESHUTDOWN;
}

static int control_on_suspend(void *arg, const char *dest, uint32_t seconds, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_suspend(s, dest, (uint64_t)seconds * 1000, out) : -ESHUTDOWN;
}

static int control_on_resume(void *arg, const char *dest, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_resume(s, dest, out) : -ESHUTDOWN;
}

static int control_on_suspend_tenant(void *arg, const char *tenant, const char *campaign,
                                     struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_hold_tenant(s, tenant, campaign, 1, out) : -ESHUTDOWN;
}

static int control_on_resume_tenant(void *arg, const char *tenant, const char *campaign,
                                    struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_hold_tenant(s, tenant, campaign, 0, out) : -ESHUTDOWN;
}

static int control_on_bounce_selected(void *arg, const char *destination, const char *tenant,
                                      const char *campaign, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    struct scheduler_list_filter filter = {0};
    snprintf(filter.destination, sizeof filter.destination, "%s", destination);
    snprintf(filter.tenant, sizeof filter.tenant, "%s", tenant);
    snprintf(filter.campaign, sizeof filter.campaign, "%s", campaign);
    return s != NULL ? scheduler_bounce_selected(s, &filter, out) : -ESHUTDOWN;
}

static int control_on_bounce(void *arg, const char *id, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_bounce_message(s, id, out) : -ESHUTDOWN;
}

static int control_on_tls_rpt_send(void *arg, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    int n = s != NULL ? tls_rpt_send_now(scheduler_tls_rpt(s), out) : -ESHUTDOWN;
    if (n >= 0)
        buf_printf(out, "%d report(s) being sent\n", n);
    return n < 0 ? n : 0;
}

static int control_on_destinations(void *arg, const char *dest, struct buf *out)
{
    struct scheduler *s = control_scheduler(arg, out);
    return s != NULL ? scheduler_explain(s, dest, out) : -ESHUTDOWN;
}

/* ---- status and metrics: `sluice status` (control socket) and the HTTP routes ---- */

static void daemon_status_sources(struct daemon *d, struct status_sources *src)
{
    *src = (struct status_sources){
        .scheduler = d->srv.scheduler,
        .dns = d->dns,
        .suppression = d->srv.suppression,
        .conns_in = d->srv.nsessions,
        .http_conns = http_server_connections(d->http),
        .run_user = d->user,
        .hostname = d->srv.cfg->server.hostname,
        .started_ms = d->started_ms,
    };
}

static int control_on_status(void *arg, struct buf *out)
{
    struct status_sources src;
    daemon_status_sources(arg, &src);
    status_json(&src, NULL, out);
    return 0;
}

static void route_on_status(void *arg, const struct http_call *call, struct http_answer *answer)
{
    struct status_sources src;
    daemon_status_sources(arg, &src);
    status_json(&src, call->user, &answer->body);
}

static void route_on_metrics(void *arg, const struct http_call *call, struct http_answer *answer)
{
    (void)call;
    struct status_sources src;
    daemon_status_sources(arg, &src);
    prom_render(&src, &answer->body);
    answer->content_type = PROM_CONTENT_TYPE;
}

/* The status page: the status JSON, rendered as HTML. */
static void route_on_page(void *arg, const struct http_call *call, struct http_answer *answer)
{
    struct status_sources src;
    struct buf json = BUF_INIT;
    daemon_status_sources(arg, &src);
    status_json(&src, call->user, &json);
    status_page_render(json.data, json.len, &answer->body);
    answer->content_type = STATUS_PAGE_CONTENT_TYPE;
    buf_free(&json);
}

/* The admin API (admin_api.h) on the daemon's scheduler. */
#define ADMIN_ROUTE(name)                                                                          \
    static void route_on_##name(void *arg, const struct http_call *call,                           \
                                struct http_answer *answer)                                        \
    {                                                                                              \
        admin_api_##name(((struct daemon *)arg)->srv.scheduler, call, answer);                     \
    }
ADMIN_ROUTE(destinations)
ADMIN_ROUTE(suspend)
ADMIN_ROUTE(resume)
ADMIN_ROUTE(retry)
ADMIN_ROUTE(bounce)
ADMIN_ROUTE(messages)
ADMIN_ROUTE(message)

/* POST /api/v1/reload: as SIGHUP; the reload's outcome is logged (daemon.reload). */
static void route_on_reload(void *arg, const struct http_call *call, struct http_answer *answer)
{
    (void)call;
    struct daemon *d = arg;
    if (d->stopping) {
        answer->status = 503;
        buf_printf(&answer->body, "the daemon is stopping");
        return;
    }
    daemon_reload(d);
    buf_printf(&answer->body, "{\"result\":\"reload started: its outcome is logged\\n\"}\n");
}

/* POST /api/v1/inject: mail handed over whole, under submission policy (api_inject.h). */
static void route_on_inject(void *arg, const struct http_call *call, struct http_answer *answer)
{
    api_inject(&((struct daemon *)arg)->srv, call, answer);
}

static const struct http_route daemon_http_routes[] = {
    {"GET", "/", HTTP_ACCESS_PAGE, route_on_page},
    {"GET", "/metrics", HTTP_ACCESS_METRICS, route_on_metrics},
    {"GET", "/api/v1/status", HTTP_ACCESS_TOKEN, route_on_status},
    {"GET", "/api/v1/queue/destinations", HTTP_ACCESS_TOKEN, route_on_destinations},
    {"GET", "/api/v1/queue/messages", HTTP_ACCESS_TOKEN, route_on_messages},
    {"GET", "/api/v1/queue/messages/*", HTTP_ACCESS_TOKEN, route_on_message},
    {"POST", "/api/v1/queue/suspend", HTTP_ACCESS_TOKEN, route_on_suspend},
    {"POST", "/api/v1/queue/resume", HTTP_ACCESS_TOKEN, route_on_resume},
    {"POST", "/api/v1/queue/retry", HTTP_ACCESS_TOKEN, route_on_retry},
    {"POST", "/api/v1/queue/bounce", HTTP_ACCESS_TOKEN, route_on_bounce},
    {"POST", "/api/v1/reload", HTTP_ACCESS_TOKEN, route_on_reload},
    {"POST", "/api/v1/inject", HTTP_ACCESS_TOKEN, route_on_inject},
};

/* A reload's new http.listen addresses, after its SMTP listeners (opened): when one cannot be
 * listened on, those are closed too and the reload is refused whole. */
static int open_new_http(struct daemon *d, const struct config *cfg, struct listener **opened,
                         struct buf *err)
{
    if (http_server_prepare(&d->http, &d->loop, cfg, daemon_http_routes,
                            sizeof daemon_http_routes / sizeof daemon_http_routes[0], d, err) == 0)
        return 0;
    listeners_close(opened);
    return -1;
}

static const struct control_handlers daemon_control_handlers = {
    control_on_list,          control_on_retry,
    control_on_delete,        control_on_suspend,
    control_on_resume,        control_on_destinations,
    control_on_status,        control_on_suspend_tenant,
    control_on_resume_tenant, control_on_bounce_selected,
    control_on_bounce,        control_on_tls_rpt_send,
};

/* Opened before recovery, so a second daemon on the same spool is refused before its recovery
 * could remove the first one's half-written files. */
static int daemon_open_control(struct daemon *d, const struct config *cfg, struct buf *err)
{
    struct buf path = BUF_INIT;
    int rc = control_socket_path(cfg->server.spool, &path, err);
    if (rc == 0)
        rc = control_open(&d->loop, path.data, &daemon_control_handlers, d, &d->control, err);
    buf_free(&path);
    return rc;
}

/* The suppression list, when enabled: one that cannot be opened refuses the start. */
static int daemon_open_suppression(struct daemon *d, const struct config *cfg, struct buf *err)
{
    if (!cfg->suppression.enabled)
        return 0;
    struct buf dir = BUF_INIT;
    suppression_dir(cfg, &dir);
    int rc = suppression_open(dir.data, &d->loop, &d->srv.suppression, err);
    buf_free(&dir);
    if (rc == 0)
        scheduler_set_suppression(d->srv.scheduler, d->srv.suppression);
    return rc;
}

/* Started as root: the spool goes to the daemon's user without following a link it may have left
 * there, then the process becomes that user for good. Runs before the loop starts, so blocking
 * calls are fine here. */
static int daemon_become_user(const struct config *cfg, const struct run_user *u, struct buf *err)
{
    if (!u->change)
        return 0;
    int skipped = spool_owner_hand_over(cfg->server.spool, u->uid, u->gid, err);
    if (skipped < 0)
        return -1;
    return run_user_become(u, err);
}

/* What the gates loaded (g) is taken: run as g->user from here on. */
static int daemon_start(struct daemon *d, struct config *cfg, struct run_gates *g, struct buf *err)
{
    d->srv.loop = &d->loop;
    d->srv.cfg = cfg;
    d->srv.on_drained = daemon_on_drained;
    d->user = xstrdup(g->user.name);
    d->started_ms = (int64_t)time(NULL) * 1000;

    int log_err = run_user_log_open(&g->user, cfg->server.log_file);
    if (log_err < 0) {
        buf_printf(err, "server.log.file: cannot open %s: %s", cfg->server.log_file,
                   strerror(-log_err));
        return -1;
    }
    log_set_level(cfg->server.log_level);
    int dns_err = 0;
    d->dns = dns_resolver_new(&d->loop, (const char *const *)cfg->dns.servers, cfg->dns.nservers,
                              (unsigned)cfg->dns.timeout_ms, &dns_err);
    if (d->dns == NULL) {
        buf_printf(err, "dns: cannot start the resolver: %s", strerror(-dns_err));
        return -1;
    }
    d->srv.dns = d->dns;
    if ((d->tls_client_ctx = tls_client_ctx_new(err)) == NULL ||
        tls_policy_ctx_trust(d->tls_client_ctx, cfg->tls.ca_file, err) < 0)
        return -1;
    /* Read as root by the gates: the key or users file may be readable by root only. */
    d->srv.tls_ctx = g->tls;
    d->srv.auth_users = g->users;
    g->tls = NULL;
    g->users = NULL;
    d->srv.auth_failures = auth_failures_new(AUTH_FAILURE_CLIENTS);
    struct listener *opened;
    if (open_new_listeners(d, cfg, &opened, err) < 0)
        return -1;
    d->listeners = opened;
    /* Before giving up root: the tokens file and the key may be root's only. */
    if (http_server_open(&d->loop, cfg, daemon_http_routes,
                         sizeof daemon_http_routes / sizeof daemon_http_routes[0], d, &d->http,
                         err) < 0)
        return -1;
    if (daemon_become_user(cfg, &g->user, err) < 0)
        return -1;

    /* As the daemon's user from here on: recovery reads what that user could have left. */
    if (spool_open(&d->loop, cfg->server.spool, &d->srv.spool, err) < 0)
        return -1;
    if (daemon_open_control(d, cfg, err) < 0)
        return -1;
    d->srv.scheduler = scheduler_new(&d->loop, d->srv.spool, d->dns, d->tls_client_ctx, cfg);
    tls_rpt_set_signers(scheduler_tls_rpt(d->srv.scheduler), d->srv.dkim);
    d->shared = shared_limits_new(&d->loop, cfg);
    scheduler_share_limits(d->srv.scheduler, d->shared);
    /* Recipient verification (policy/verify.h): probes and cache, freed with the scheduler. */
    struct verifier_params verify_params = {.tls_ctx = d->tls_client_ctx}; /* STARTTLS if offered */
    d->srv.verifier = verifier_new(&d->loop, &verify_params);
    if (daemon_open_suppression(d, cfg, err) < 0)
        return -1;
    /* The rest of recovery lists the spool while the daemon serves (scheduler_start). */
    if (spool_recover_begin(d->srv.spool, err) < 0)
        return -1;

    uv_signal_init(&d->loop, &d->sighup);
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_timer_init(&d->loop, &d->grace_timer);
    d->sighup.data = d->sigterm.data = d->sigint.data = d->grace_timer.data = d;
    uv_signal_start(&d->sighup, daemon_on_sighup, SIGHUP);
    uv_signal_start(&d->sigterm, daemon_on_stop_signal, SIGTERM);
    uv_signal_start(&d->sigint, daemon_on_stop_signal, SIGINT);
    /* Last: nothing can fail after it, so the start-up error path has no timer to close. */
    d->srv.space = spool_space_new(&d->loop, cfg->server.spool);
    d->webhooks = webhooks_new(&d->loop, cfg->server.spool, cfg);
    scheduler_start(d->srv.scheduler);
    log_ready(d, "daemon.ready");
    daemon_notify("READY=1");
    return 0;
}

/* Opens server.log.file before the configuration goes through its gates, so what they say (an
 * acknowledged open relay's warnings) is in the log, not only on stderr; with the rights of the
 * user the daemon will run as, like every later opening. A file that does not load, or a user
 * that does not exist, leaves stderr: the gates' errors are printed there anyway. */
static void log_open_early(const char *config_path)
{
    struct buf err = BUF_INIT;
    struct config *cfg = config_load_ungated(config_path, &err);
    struct run_user u;
    if (cfg != NULL && run_user_resolve(cfg->server.user, &u) == 0) {
        (void)run_user_log_open(&u, cfg->server.log_file); /* a failure is a gate's error */
        run_user_free(&u);
    }
    config_unref(cfg);
    buf_free(&err);
}

int daemon_run(const char *config_path)
{
    struct buf err = BUF_INIT;
    struct dkim_signer_set *signers = NULL;
    struct recipients *recipients = NULL;
    log_open_early(config_path);
    struct config *cfg = config_load_with_signers(config_path, &signers, &recipients, &err);
    struct run_gates gates;
    struct bounce_categories *categories = NULL;
    struct public_suffixes *suffixes = NULL;
    if (cfg != NULL && (bounce_categories_load_config(cfg, &categories, &err) < 0 ||
                        config_public_suffixes(cfg, &suffixes, &err) < 0 ||
                        run_gates_check(cfg, config_path, &gates, &err) < 0)) {
        bounce_categories_free(categories);
        public_suffixes_unref(suffixes);
        dkim_signer_set_unref(signers);
        recipients_free(recipients);
        config_unref(cfg);
        cfg = NULL;
    }
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
        buf_free(&err);
        return 1;
    }
    setenv("UV_THREADPOOL_SIZE", THREADPOOL_SIZE, 0);
    signal(SIGPIPE, SIG_IGN);

    struct daemon *d = xcalloc(1, sizeof *d);
    d->config_path = config_path;
    d->srv.dkim = signers;
    d->srv.recipients = recipients;
    d->srv.public_suffixes = suffixes;
    bounce_categories_use(categories);
    d->srv.dkim_checker = dkim_checker_new();
    if (d->srv.dkim_checker == NULL)
        log_msg(LOG_WARN, "dkim.verify_unavailable",
                "libopendkim did not start: inbound "
                "messages are not DKIM-verified");
    uv_loop_init(&d->loop);
    int status = 0;
    if (daemon_start(d, cfg, &gates, &err) < 0) {
        config_log_lines(LOG_ERROR, "daemon.start_failed", &err);
        fprintf(stderr, "sluice: %.*s\n", (int)err.len, err.data);
        status = 1;
        /* Close what was opened so the loop can end cleanly. */
        while (d->listeners != NULL) {
            struct listener *next = d->listeners->next;
            listener_close(d->listeners);
            d->listeners = next;
        }
        control_close(d->control);
        d->control = NULL;
        http_server_close(d->http);
        d->http = NULL;
        if (d->srv.scheduler != NULL)
            scheduler_stop(d->srv.scheduler, daemon_on_scheduler_stopped, d);
        if (d->dns != NULL)
            dns_resolver_free(d->dns);
        d->finished = 1;
    }
    run_gates_free(&gates);
    if (status == 0)
        d->watch = loop_watch_start(&d->loop);
    uv_run(&d->loop, UV_RUN_DEFAULT);

    if (d->srv.spool != NULL)
        spool_close(d->srv.spool);
    if (d->srv.tls_ctx != NULL)
        SSL_CTX_free(d->srv.tls_ctx);
    if (d->tls_client_ctx != NULL)
        SSL_CTX_free(d->tls_client_ctx);
    auth_users_free(d->srv.auth_users);
    auth_failures_free(d->srv.auth_failures);
    dkim_signer_set_unref(d->srv.dkim);
    dkim_checker_free(d->srv.dkim_checker);
    recipients_free(d->srv.recipients);
    suppression_close(d->srv.suppression); /* the loop has run its last write */
    public_suffixes_unref(d->srv.public_suffixes);
    bounce_categories_use(NULL);
    mail_metrics_free();
    config_unref(d->srv.cfg);
    if (uv_loop_close(&d->loop) != 0)
        log_msg(LOG_WARN, "daemon.stopped", "handles left open at exit");
    if (status == 0)
        log_msg(LOG_INFO, "daemon.stopped", "spool intact");
    free(d->user);
    free(d);
    buf_free(&err);
    return status;
}
