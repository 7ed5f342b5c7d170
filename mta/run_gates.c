/*
 * The start-up gates shared by `sluice run` and `sluice check-config` (see run_gates.h).
 */
#include "mta/run_gates.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "mta/config_load.h"
#include "mta/control.h"
#include "policy/auth_users.h"

/* One run over the gates. */
struct gates_run {
    const struct config *cfg;
    const char *config_path;
    struct run_gates *g;
    int have_user; /* g->user is resolved */
    struct buf *err;
    struct buf warn; /* warning lines, logged once every gate has run */
};

/* Starts a message line at pos: "file:line:column: key: ", or "file: key: " for a default. */
static void at(struct buf *out, const struct config *cfg, struct config_pos pos, const char *key)
{
    const char *file = pos.file != NULL ? pos.file : cfg->source;
    if (pos.line > 0)
        buf_printf(out, "%s:%u:%u: %s: ", file, pos.line, pos.column, key);
    else
        buf_printf(out, "%s: %s: ", file, key);
}

/* A file the daemon opens again at every reload: once it is no longer root, can it? */
static void warn_unreadable_at_reload(struct gates_run *r, struct config_pos pos, const char *key,
                                      const char *path)
{
    const struct run_user *u = &r->g->user;
    if (!r->have_user || !u->change || path == NULL)
        return;
    struct buf why = BUF_INIT;
    if (run_user_can_open(u, path, R_OK, &why) < 0) {
        at(&r->warn, r->cfg, pos, key);
        buf_printf(&r->warn,
                   "%s cannot read %s once it is no longer root, so a reload (SIGHUP) would "
                   "fail: %s (make it readable by %s, e.g. group %s and mode 0640)\n",
                   u->name, path, why.data, u->name, u->name);
    }
    buf_free(&why);
}

static int gate_user(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    struct run_user *u = &r->g->user;
    if (run_user_resolve(cfg->server.user, u) < 0) {
        at(r->err, cfg, cfg->server.user_pos, "server.user");
        if (cfg->server.user != NULL)
            buf_printf(r->err, "no such user '%s' (create it, or name an existing user)\n",
                       cfg->server.user);
        else
            buf_printf(r->err,
                       "not starting as root without server.user: the default user '%s' does "
                       "not exist; create it (useradd --system --user-group --no-create-home "
                       "--home-dir /nonexistent --shell /usr/sbin/nologin %s) or set "
                       "server.user\n",
                       RUN_USER_DEFAULT, RUN_USER_DEFAULT);
        return -1;
    }
    r->have_user = 1;
    if (u->uid == 0 && geteuid() == 0) {
        at(&r->warn, cfg, cfg->server.user_pos, "server.user");
        buf_printf(&r->warn, "the daemon stays root, with every privilege: meant only for a "
                             "container whose root has no power over the host\n");
    }
    if (u->ignored) {
        at(&r->warn, cfg, cfg->server.user_pos, "server.user");
        buf_printf(&r->warn,
                   "not started as root, so the daemon stays %s (server.user applies when "
                   "started as root)\n",
                   u->name);
    }
    return 0;
}

/* The log file is opened with the rights of the daemon's user (run_user_log_open). */
static int gate_log(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    const char *path = cfg->server.log_file;
    const struct run_user *u = &r->g->user;
    if (!r->have_user || strcmp(path, "-") == 0)
        return 0;
    struct buf why = BUF_INIT;
    int rc = 0;
    if (run_user_can_open(u, path, W_OK, &why) < 0) {
        at(r->err, cfg, cfg->server.log_file_pos, "server.log.file");
        buf_printf(r->err, "%s cannot append to %s: %s\n", u->name, path, why.data);
        rc = -1;
    } else if (u->uid != 0) {
        /* Appending works; after a rotation renames the file, a new one is needed. */
        struct buf dir = BUF_INIT;
        run_user_parent_dir(path, &dir);
        struct stat st;
        if (stat(dir.data, &st) == 0 && !run_user_allows(u, &st, S_IWOTH | S_IXOTH)) {
            at(&r->warn, cfg, cfg->server.log_file_pos, "server.log.file");
            buf_printf(&r->warn,
                       "%s is not writable by %s: after a rotation renames the file, SIGHUP "
                       "can only reopen a new file the rotation created for %s (logrotate: "
                       "create 0640 %s adm)\n",
                       dir.data, u->name, u->name, u->name);
        }
        buf_free(&dir);
    }
    buf_free(&why);
    return rc;
}

/* Root creates the spool and hands it over; the daemon then reaches it by its path as its user.
 * Started as anyone else, the daemon creates and uses the spool as itself. */
static int gate_spool(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    const char *spool = cfg->server.spool;
    const struct run_user *u = &r->g->user;
    struct buf path = BUF_INIT, why = BUF_INIT;
    struct stat st;
    int exists = stat(spool, &st) == 0;
    int rc = control_socket_path(spool, &path, &why);
    if (rc == 0 && exists && !S_ISDIR(st.st_mode)) {
        buf_printf(&why, "%s is not a directory", spool);
        rc = -ENOTDIR;
    } else if (rc == 0 && r->have_user) {
        buf_printf(&why, "%s cannot reach %s: ", u->name, spool); /* shown only on failure */
        if (u->change) {
            run_user_parent_dir(spool, &path); /* the spool itself is handed over */
            rc = run_user_can_reach(u, path.data, 0, &why);
        } else {
            rc = run_user_can_reach(u, spool, 1, &why);
            if (rc == 0 && exists && !run_user_allows(u, &st, S_IROTH | S_IWOTH | S_IXOTH)) {
                buf_printf(&why, "%s is not writable by %s (", spool, u->name);
                run_user_describe(&st, &why);
                buf_printf(&why, ")");
                rc = -EACCES;
            }
        }
    }
    if (rc < 0) {
        at(r->err, cfg, cfg->server.spool_pos, "server.spool");
        buf_printf(r->err, "%s\n", why.data);
    }
    buf_free(&path);
    buf_free(&why);
    return rc < 0 ? -1 : 0;
}

/* Binding each address on port 0 shows whether this machine has it, without touching the port a
 * running daemon may hold. */
static int gate_listeners(struct gates_run *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->cfg->nlisteners; i++) {
        const struct config_listener *cl = &r->cfg->listeners[i];
        struct sockaddr_storage addr = cl->addr;
        socklen_t len = sizeof(struct sockaddr_in);
        int one = 1, e = 0;
        if (addr.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&addr)->sin6_port = 0;
            len = sizeof(struct sockaddr_in6);
        } else {
            ((struct sockaddr_in *)&addr)->sin_port = 0;
        }
        int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 ||
            (addr.ss_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
            bind(fd, (struct sockaddr *)&addr, len) < 0)
            e = errno;
        if (fd >= 0)
            close(fd);
        if (e != 0) {
            struct buf key = BUF_INIT;
            buf_printf(&key, "listeners[%zu]", i);
            at(r->err, r->cfg, cl->pos, key.data);
            buf_printf(r->err, "listener %s cannot listen on %s: %s\n", cl->name, cl->address,
                       uv_strerror(uv_translate_sys_error(e)));
            buf_free(&key);
            rc = -1;
        }
    }
    return rc;
}

/* The certificate and key load as they will at start; their keys' positions name what is wrong. */
static int gate_tls(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    if (cfg->tls.certificate == NULL)
        return 0;
    const struct {
        const char *key, *path;
        struct config_pos pos;
    } files[] = {
        {"tls.certificate", cfg->tls.certificate, cfg->tls.certificate_pos},
        {"tls.key", cfg->tls.key, cfg->tls.key_pos},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int fd = open(files[i].path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            at(r->err, cfg, files[i].pos, files[i].key);
            buf_printf(r->err, "%s: %s\n", files[i].path, strerror(errno));
            rc = -1;
            continue;
        }
        close(fd);
        warn_unreadable_at_reload(r, files[i].pos, files[i].key, files[i].path);
    }
    if (rc < 0)
        return rc;
    struct buf why = BUF_INIT;
    r->g->tls = tls_server_ctx_new(cfg->tls.certificate, cfg->tls.key, &why);
    if (r->g->tls == NULL) {
        at(r->err, cfg, cfg->tls.certificate_pos, "tls");
        buf_printf(r->err, "%s\n", why.data);
        rc = -1;
    }
    buf_free(&why);
    return rc;
}

static int tls_on_a_submission_listener(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].role == LISTENER_SUBMISSION &&
            cfg->listeners[i].tls != LISTENER_TLS_NONE)
            return 1;
    return 0;
}

/* AUTH is offered only over TLS on a submission listener (mta/server/smtp_auth.c). */
static int gate_users(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    if (cfg->relay.users == NULL)
        return 0;
    if (cfg->tls.certificate == NULL || !tls_on_a_submission_listener(cfg)) {
        at(&r->warn, cfg, cfg->relay.users_pos, "relay.users");
        buf_printf(&r->warn,
                   "SMTP AUTH is never offered: it needs TLS on a submission listener, "
                   "and %s\n",
                   cfg->tls.certificate == NULL ? "tls.certificate is not set"
                                                : "no submission listener offers TLS");
    }
    warn_unreadable_at_reload(r, cfg->relay.users_pos, "relay.users", cfg->relay.users);
    return config_auth_users(cfg, &r->g->users, r->err);
}

/* The other files a reload reads: the configuration itself, DKIM keys, recipients files. */
static int gate_reload_files(struct gates_run *r)
{
    const struct config *cfg = r->cfg;
    struct config_pos file = {cfg->source, 0, 0};
    warn_unreadable_at_reload(r, file, "configuration", r->config_path);
    struct buf key = BUF_INIT;
    for (size_t i = 0; i < cfg->ndkim; i++) {
        buf_reset(&key);
        buf_printf(&key, "dkim[%zu].key", i);
        warn_unreadable_at_reload(r, cfg->dkim[i].pos, key.data, cfg->dkim[i].key);
    }
    for (size_t i = 0; i < cfg->ndomains; i++) {
        buf_reset(&key);
        buf_printf(&key, "domains.%s.recipients", cfg->domains[i].name);
        warn_unreadable_at_reload(r, cfg->domains[i].pos, key.data, cfg->domains[i].recipients);
    }
    buf_free(&key);
    return 0;
}

/* In order; every gate runs, so one pass names every problem. */
static int (*const gates[])(struct gates_run *r) = {
    gate_user, gate_log, gate_spool, gate_listeners, gate_tls, gate_users, gate_reload_files,
};

int run_gates_check(const struct config *cfg, const char *config_path, struct run_gates *g,
                    struct buf *err)
{
    *g = (struct run_gates){0};
    struct gates_run r = {cfg, config_path, g, 0, err, BUF_INIT};
    int failed = 0;
    for (size_t i = 0; i < sizeof gates / sizeof gates[0]; i++)
        failed |= gates[i](&r) < 0;
    config_log_lines(LOG_WARN, "config.warning", &r.warn);
    buf_free(&r.warn);
    if (failed) {
        run_gates_free(g);
        return -1;
    }
    return 0;
}

void run_gates_free(struct run_gates *g)
{
    run_user_free(&g->user);
    if (g->tls != NULL)
        SSL_CTX_free(g->tls);
    auth_users_free(g->users);
    *g = (struct run_gates){0};
}
