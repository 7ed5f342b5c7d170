/*
 * A bounded table of per-client state keyed by the client's address, for limits that must outlive
 * one connection (connection rates). At most `capacity` clients are kept; the least recently seen
 * one makes room, so a flood of addresses costs bounded memory and only forgets old clients.
 */
#ifndef SLUICE_CLIENT_TABLE_H
#define SLUICE_CLIENT_TABLE_H

#include <stddef.h>
#include <sys/socket.h>

struct client_table;

/* A table of at most `capacity` clients, each with `value_size` bytes of the caller's state. */
struct client_table *client_table_new(size_t capacity, size_t value_size);
void client_table_free(struct client_table *t);
/* The state of addr's client, marked most recently seen. A client not in the table gets zeroed
 * state (evicting the least recently seen when full) and *created set to 1. NULL when addr is
 * neither IPv4 nor IPv6. IPv4 (also v4-mapped IPv6) counts by address, IPv6 by its /64. */
void *client_table_get(struct client_table *t, const struct sockaddr *addr, int *created);
/* The state of addr's client, or NULL when it is not in the table; changes nothing. */
const void *client_table_find(const struct client_table *t, const struct sockaddr *addr);
/* Clients in the table. */
size_t client_table_count(const struct client_table *t);

#endif
