#include "mta/server/listener.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* Backlog: the kernel queues this many connections while the loop is busy. */
#define LISTEN_BACKLOG 511

static void listener_on_connection(uv_stream_t *server, int status)
{
    struct listener *l = container_of((uv_tcp_t *)server, struct listener, tcp);
    if (status < 0) {
        log_msg(LOG_WARN, "listener.accept_error", "%s: %s", l->address, uv_strerror(status));
        return;
    }
    smtp_session_accept(l->srv, server, l->name);
}

static void listener_on_closed(uv_handle_t *h)
{
    struct listener *l = container_of((uv_tcp_t *)h, struct listener, tcp);
    free(l->name);
    free(l->address);
    free(l);
}

int listener_open(struct smtp_server *srv, const struct config_listener *cl, struct listener **out,
                  struct buf *err)
{
    struct listener *l = xcalloc(1, sizeof *l);
    l->srv = srv;
    l->name = xstrdup(cl->name);
    l->address = xstrdup(cl->address);
    uv_tcp_init(srv->loop, &l->tcp);

    /* An IPv6 listener takes IPv6 only, so "0.0.0.0:25" and "[::]:25" can both be configured. */
    unsigned flags = cl->addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&cl->addr, flags);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, listener_on_connection);
    if (rc < 0) {
        buf_printf(err, "listener %s: cannot listen on %s: %s", cl->name, cl->address,
                   uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, listener_on_closed);
        return rc;
    }
    *out = l;
    return 0;
}

void listener_rename(struct listener *l, const char *name)
{
    free(l->name);
    l->name = xstrdup(name);
}

void listener_close(struct listener *l)
{
    uv_close((uv_handle_t *)&l->tcp, listener_on_closed);
}
