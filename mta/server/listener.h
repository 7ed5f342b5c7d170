/*
 * Listening sockets. One struct listener per configured listener address; each accepted connection
 * becomes an SMTP session. On reload the daemon keeps listeners whose address is unchanged (taking
 * the new name and settings from the new configuration) and opens or closes the others.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

#include <uv.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/server/smtp_server.h"

struct listener {
    uv_tcp_t tcp;
    struct smtp_server *srv;
    char *name;    /* the configured name; sessions look their settings up by it */
    char *address; /* as configured, also the identity across reloads */
    struct listener *next;
};

/* Binds and listens. Returns 0, or a negative libuv error with a message naming the address in err
 * (the listener is then already being closed and freed). */
int listener_open(struct smtp_server *srv, const struct config_listener *cl, struct listener **out,
                  struct buf *err);
void listener_rename(struct listener *l, const char *name);
/* Stops accepting and frees the listener once libuv has closed the socket. */
void listener_close(struct listener *l);

#endif
