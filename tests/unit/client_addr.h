/*
 * A client's socket address from its text, for the unit tests that hand a peer to policy checks,
 * tables and DNS lookups: "192.0.2.1" as AF_INET, "2001:db8::1" (or "::ffff:192.0.2.1") as
 * AF_INET6, port 0; any other text as an AF_UNIX client, which has no address.
 */
#ifndef SLUICE_TEST_CLIENT_ADDR_H
#define SLUICE_TEST_CLIENT_ADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static inline struct sockaddr_storage client_addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        ss.ss_family = AF_UNIX;
    return ss;
}

#endif
