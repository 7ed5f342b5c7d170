/*
 * Configuration loading: good and bad files (each error's exact "file:line:column: key" prefix),
 * defaults and the embedded default, value parsing (sizes, durations, networks, addresses),
 * reference counting, domain lookup, trusted-network matching and the generated reference.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "tests/unit/check.h"

static int load(const char *text, struct config **cfg, struct buf *err)
{
    buf_reset(err);
    *cfg = NULL;
    return config_load_string(text, strlen(text), "t.yaml", cfg, err);
}

/* Loads text that must be valid; prints the errors when it is not. */
static struct config *load_good(const char *text)
{
    struct buf err = BUF_INIT;
    struct config *cfg;
    int rc = load(text, &cfg, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "unexpected errors for:\n%s---\n%.*s", text, (int)err.len, err.data);
    buf_free(&err);
    return rc == 0 ? cfg : NULL;
}

struct bad_case {
    const char *text;
    const char *prefix; /* the first error line starts with this */
    const char *rest;   /* and contains this afterwards */
};

#define LISTENER_WITH_ADDRESS(a) "listeners:\n  - name: a\n    address: " a "\n    role: inbound\n"

static const struct bad_case bad_cases[] = {
    /* Unknown keys, including sections that are not implemented yet. */
    {"server:\n  hostnmae: x\n", "t.yaml:2:3: unknown key 'server.hostnmae'",
     "did you mean 'server.hostname'?"},
    {"limitz:\n  max_errors: 3\n", "t.yaml:1:1: unknown key 'limitz'", "'limits'"},
    {"dkim:\n  - domain: example.com\n", "t.yaml:1:1: unknown key 'dkim'", ""},
    {"egress: {}\n", "t.yaml:1:1: unknown key 'egress'", ""},
    {"shaping:\n", "t.yaml:1:1: unknown key 'shaping'", ""},
    {"inbound:\n  spf: ignore\n", "t.yaml:1:1: unknown key 'inbound'", ""},
    {"server:\n  log: {format: text}\n", "t.yaml:2:17: server.log.format: 'text'",
     "is not one of: json"},
    {"server:\n  log: {file: x, level: debug}\n", "t.yaml:2:18: unknown key 'server.log.level'",
     ""},
    {"listeners:\n  - {name: a, address: \"127.0.0.1:25\", role: inbound, port: 25}\n",
     "t.yaml:2:55: unknown key 'listeners[0].port'", ""},
    {"domains:\n  example.com: {deliver: x}\n",
     "t.yaml:2:17: unknown key 'domains.example.com.deliver'", ""},
    /* Sizes, durations, numbers and their bounds. */
    {"limits:\n  max_message_size: 50Q\n",
     "t.yaml:2:21: limits.max_message_size: '50Q' is not a size (use e.g. 50M)", ""},
    {"limits:\n  max_message_size: 3G\n", "t.yaml:2:21: limits.max_message_size: '3G'",
     "is out of range (1k..2G)"},
    {"limits:\n  max_message_size: 1023\n", "t.yaml:2:21: limits.max_message_size: '1023'",
     "out of range"},
    {"limits:\n  max_message_size: 5 M\n", "t.yaml:2:21: limits.max_message_size:", "not a size"},
    {"limits:\n  max_message_size: -5M\n", "t.yaml:2:21: limits.max_message_size:", "not a size"},
    {"limits:\n  max_errors: 0\n", "t.yaml:2:15: limits.max_errors: '0' is out of range (1..1000)",
     ""},
    {"limits:\n  max_errors: 1k\n", "t.yaml:2:15: limits.max_errors: '1k' is not a whole number",
     ""},
    {"limits:\n  max_connections: 99999999999999999999999\n",
     "t.yaml:2:20: limits.max_connections:", "not a whole number"},
    {"limits:\n  max_recipients_per_message: 100001\n",
     "t.yaml:2:31: limits.max_recipients_per_message:", "out of range (1..100000)"},
    {"limits:\n  command_timeout: 2h\n", "t.yaml:2:20: limits.command_timeout: '2h'",
     "out of range (1s..1h)"},
    {"limits:\n  data_timeout: 5x\n", "t.yaml:2:17: limits.data_timeout: '5x' is not a duration",
     ""},
    {"limits:\n  data_timeout: 500ms\n", "t.yaml:2:17: limits.data_timeout:", "out of range"},
    {"server:\n  shutdown_grace: 2d\n", "t.yaml:2:19: server.shutdown_grace: '2d'",
     "out of range (0..1h)"},
    {"dns:\n  timeout: 1.5s\n", "t.yaml:2:12: dns.timeout:", "not a duration"},
    /* Shapes: a list or mapping where one value belongs, and the reverse. */
    {"limits:\n  command_timeout: [5, m]\n",
     "t.yaml:2:20: limits.command_timeout:", "expected a duration (e.g. 30s, 5m), not a list"},
    {"server:\n  hostname: {a: b}\n",
     "t.yaml:2:13: server.hostname:", "expected a string, not a mapping"},
    {"server: [a]\n", "t.yaml:1:9: server:", "not a list"},
    {"relay:\n  trusted_networks: 127.0.0.1/32\n",
     "t.yaml:2:21: relay.trusted_networks:", "not a single value"},
    {"- server\n", "t.yaml:1:1: expected a mapping of sections", ""},
    {"just words\n", "t.yaml:1:1: expected a mapping of sections", ""},
    {"? [a]\n: b\n", "t.yaml:1:3: keys must be names", ""},
    /* Duplicate keys. */
    {"server:\n  spool: a\n  spool: b\n",
     "t.yaml:3:3: duplicate key 'server.spool' (first at line 2)", ""},
    {"limits: {}\nlimits: {}\n", "t.yaml:2:1: duplicate key 'limits'", ""},
    {"domains:\n  example.com:\n    recipients: /a\n    recipients: /b\n",
     "t.yaml:4:5: duplicate key 'domains.example.com.recipients'", ""},
    /* YAML features a configuration does not need. */
    {"server:\n  spool: &s /x\n", "t.yaml:2:10: YAML anchors (&s) are not allowed", ""},
    {"server:\n  spool: *s\n", "t.yaml:2:10: YAML aliases (*s) are not allowed", ""},
    {"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "t.yaml:1:4: YAML anchors (&a)", ""},
    {"server:\n  spool: !!str x\n", "t.yaml:2:10: YAML tags", "not allowed"},
    {"server: {}\n---\nlimits: {}\n", "t.yaml:2:1: only one YAML document is allowed", ""},
    {"a: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\n", "t.yaml:1:19: nested too deeply", ""},
    {"server:\n  spool: [a\n", "t.yaml:", "YAML syntax error"},
    {"server:\n  spool: \xff\n", "t.yaml:2:10: YAML syntax error", "UTF-8"},
    /* Strings. */
    {"server:\n  spool: \"a\\nb\"\n", "t.yaml:2:10: server.spool: control characters", ""},
    {"server:\n  spool: \"\"\n", "t.yaml:2:10: server.spool: must not be empty", ""},
    {"server:\n  hostname: mx_1.example.com\n", "t.yaml:2:13: server.hostname: 'mx_1.example.com'",
     "character other than"},
    {"server:\n  hostname: \"mx.example.com\\r\\nEHLO x\"\n",
     "t.yaml:2:13: server.hostname:", "control characters"},
    {"dns:\n  servers: [\"dns.google\"]\n", "t.yaml:2:13: dns.servers[0]: 'dns.google'",
     "host name"},
    {"dns:\n  servers: [\"127.0.0.1:0\"]\n", "t.yaml:2:13: dns.servers[0]:", "port"},
    /* Listeners. */
    {LISTENER_WITH_ADDRESS("mx.example.com:25"),
     "t.yaml:3:14: listeners[0].address:", "host name where a numeric address is needed"},
    {LISTENER_WITH_ADDRESS("127.0.0.1"), "t.yaml:3:14: listeners[0].address:", "no :port"},
    {LISTENER_WITH_ADDRESS("127.0.0.1:0"), "t.yaml:3:14: listeners[0].address:", "1 to 65535"},
    {LISTENER_WITH_ADDRESS("127.0.0.1:65536"), "t.yaml:3:14: listeners[0].address:", "port"},
    {LISTENER_WITH_ADDRESS("127.0.0.1:25x"), "t.yaml:3:14: listeners[0].address:", "port"},
    {LISTENER_WITH_ADDRESS("256.0.0.1:25"),
     "t.yaml:3:14: listeners[0].address:", "no valid IPv4 address"},
    {LISTENER_WITH_ADDRESS("\"::1:25\""), "t.yaml:3:14: listeners[0].address:", "brackets"},
    {LISTENER_WITH_ADDRESS("\"[::1]\""), "t.yaml:3:14: listeners[0].address:", "no :port"},
    {LISTENER_WITH_ADDRESS("\"[::1\""), "t.yaml:3:14: listeners[0].address:", "without ']'"},
    {LISTENER_WITH_ADDRESS("\"[1.2.3.4]:25\""),
     "t.yaml:3:14: listeners[0].address:", "no valid IPv6 address"},
    {"listeners:\n  - name: a\n    role: inbound\n", "t.yaml:2:5: listeners[0].address is required",
     ""},
    {"listeners:\n  - name: a\n    address: \"127.0.0.1:25\"\n",
     "t.yaml:2:5: listeners[0].role is required", ""},
    {"listeners:\n  - {address: \"127.0.0.1:25\", role: inbound}\n",
     "t.yaml:2:5: listeners[0].name is required", ""},
    {"listeners:\n  - name: a b\n    address: \"127.0.0.1:25\"\n    role: inbound\n",
     "t.yaml:2:11: listeners[0].name: 'a b'", "character other than"},
    {"listeners:\n  - name: a\n    address: \"127.0.0.1:25\"\n    role: outbound\n",
     "t.yaml:4:11: listeners[0].role: 'outbound' is not one of: inbound, submission", ""},
    {"listeners:\n  - name: a\n    address: \"127.0.0.1:25\"\n    role: inbound\n"
     "    tls: starttls_maybe\n",
     "t.yaml:5:10: listeners[0].tls:", "one of: starttls, implicit, none"},
    {"listeners:\n  - {name: a, address: \"127.0.0.1:25\", role: inbound}\n"
     "  - {name: a, address: \"127.0.0.1:26\", role: inbound}\n",
     "t.yaml:3:12: listeners[1].name: 'a' is already the name of listeners[0]", ""},
    {"listeners:\n  - {name: a, address: \"[::1]:25\", role: inbound}\n"
     "  - {name: b, address: \"[0::1]:25\", role: inbound}\n",
     "t.yaml:3:24: listeners[1].address: '[0::1]:25' is already the address of listeners[0]", ""},
    {"listeners: []\n", "t.yaml:1:12: listeners: no listener given", ""},
    {"listeners:\n", "t.yaml:1:11: listeners: no listener given", ""},
    {"listeners:\n  - a\n", "t.yaml:2:5: listeners[0]: expected a mapping", ""},
    {"listeners:\n  - name: a\n    address: \"127.0.0.1:465\"\n    role: submission\n"
     "    tls: implicit\n",
     "t.yaml:5:10: listeners[0].tls: implicit TLS needs tls.certificate", ""},
    /* TLS: a certificate and its key go together; the error points at the section. */
    {"tls:\n  certificate: /c.pem\n", "t.yaml:2:3: tls.key is required with tls.certificate", ""},
    {"tls:\n  key: /k.pem\n", "t.yaml:2:3: tls.certificate is required with tls.key", ""},
    /* Trusted networks. */
    {"relay:\n  trusted_networks: [\"10.0.0.1/8\"]\n",
     "t.yaml:2:22: relay.trusted_networks[0]: '10.0.0.1/8' has host bits set beyond the /8 prefix "
     "(the network is 10.0.0.0/8)",
     ""},
    {"relay:\n  trusted_networks:\n    - 2001:db8::1/32\n",
     "t.yaml:3:7: relay.trusted_networks[0]: '2001:db8::1/32' has host bits set", "2001:db8::/32"},
    {"relay:\n  trusted_networks: [\"10.0.0.0/33\"]\n",
     "t.yaml:2:22: relay.trusted_networks[0]:", "prefix longer than /32"},
    {"relay:\n  trusted_networks: [\"::/129\"]\n",
     "t.yaml:2:22: relay.trusted_networks[0]:", "prefix longer than /128"},
    {"relay:\n  trusted_networks: [localhost/8]\n",
     "t.yaml:2:22: relay.trusted_networks[0]:", "is not a network"},
    {"relay:\n  trusted_networks: [\"10.0.0.0/\"]\n", "t.yaml:2:22:", "is not a network"},
    {"relay:\n  trusted_networks: [\"/8\"]\n", "t.yaml:2:22:", "is not a network"},
    {"relay:\n  trusted_networks: [\"10.0.0.0/8/8\"]\n", "t.yaml:2:22:", "is not a network"},
    /* Domains. */
    {"domains:\n  exa_mple.com:\n", "t.yaml:2:3: domains: 'exa_mple.com'", "character other"},
    {"domains:\n  example..com:\n", "t.yaml:2:3: domains: 'example..com' has an empty label", ""},
    {"domains:\n  -example.com:\n", "t.yaml:2:3: domains:", "starts or ends with '-'"},
    {"domains:\n  192.0.2.1:\n", "t.yaml:2:3: domains:", "is an IP address"},
    {"domains:\n  \"ex\xc3\xa4mple.com\":\n", "t.yaml:2:3: domains:", "xn--"},
    {"domains:\n  example.com..:\n", "t.yaml:2:3: domains:", "empty label"},
    {"domains:\n  example.com:\n  EXAMPLE.com.:\n",
     "t.yaml:3:3: domains: 'example.com' is listed twice (also at line 2)", ""},
    {"domains:\n  example.com: yes\n", "t.yaml:2:16: domains.example.com: expected nothing", ""},
    {"domains: [example.com]\n", "t.yaml:1:10: domains: expected a mapping of domain names", ""},
    {"domains:\n  example.com: {deliver_to: \"10.0.0.1:25\"}\n",
     "t.yaml:2:29: domains.example.com.deliver_to: '10.0.0.1:25'", "brackets"},
    {"domains:\n  example.com: {deliver_to: \"[10.0.0.1]:x\"}\n",
     "t.yaml:2:29: domains.example.com.deliver_to:", "port"},
    {"domains:\n  example.com: {deliver_to: \"[mx.example.com]\"}\n",
     "t.yaml:2:29: domains.example.com.deliver_to:", "no valid [address]"},
};

static void test_bad_files(void)
{
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct config *cfg;
        int rc = load(c->text, &cfg, &err);
        CHECK_INT_EQ(rc, -EINVAL);
        CHECK(cfg == NULL);
        const char *got = err.len ? err.data : "";
        size_t plen = strlen(c->prefix);
        int ok = strncmp(got, c->prefix, plen) == 0;
        const char *eol = strchr(got, '\n');
        ok = ok && eol != NULL &&
             memmem(got + plen, (size_t)(eol - got) - plen, c->rest, strlen(c->rest)) != NULL;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "case %zu:\n%s---\ngot: %s\nwant: %s ... %s\n", i, c->text, got,
                    c->prefix, c->rest);
    }
    buf_free(&err);
}

static size_t count_lines(const struct buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* Several mistakes are reported together, each on its own line, in file order; a long run of
 * them is cut short. */
static void test_several_errors(void)
{
    struct buf err = BUF_INIT;
    struct config *cfg;
    CHECK_INT_EQ(
        load("server:\n  hostnmae: x\nlimits:\n  max_errors: 0\n  data_timeout: 5q\n", &cfg, &err),
        -EINVAL);
    CHECK_MEM_EQ(err.data, err.len,
                 "t.yaml:2:3: unknown key 'server.hostnmae' (did you mean 'server.hostname'?)\n"
                 "t.yaml:4:15: limits.max_errors: '0' is out of range (1..1000)\n"
                 "t.yaml:5:17: limits.data_timeout: '5q' is not a duration (use e.g. 30s or 5m)\n");

    struct buf text = BUF_INIT;
    buf_append_str(&text, "relay:\n  trusted_networks:\n");
    for (int i = 0; i < 50; i++)
        buf_printf(&text, "    - 10.0.0.%d/8\n", i + 1);
    CHECK_INT_EQ(load(text.data, &cfg, &err), -EINVAL);
    CHECK_INT_EQ(count_lines(&err), 21);
    CHECK(strstr(err.data, "t.yaml:23:7: too many errors") != NULL);
    buf_free(&text);
    buf_free(&err);
}

static void check_defaults(const struct config *cfg)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    CHECK_STR_EQ(cfg->server.hostname, host);
    CHECK_STR_EQ(cfg->server.spool, "./var/spool");
    CHECK(cfg->server.user == NULL);
    CHECK_STR_EQ(cfg->server.log_file, "-");
    CHECK_INT_EQ(cfg->server.shutdown_grace_ms, 30000);
    CHECK_INT_EQ(cfg->dns.nservers, 0);
    CHECK_INT_EQ(cfg->dns.timeout_ms, 5000);
    CHECK(cfg->tls.certificate == NULL && cfg->tls.key == NULL);
    CHECK_INT_EQ(cfg->nlisteners, 1);
    if (cfg->nlisteners == 1) {
        const struct config_listener *l = &cfg->listeners[0];
        CHECK_STR_EQ(l->name, "default");
        CHECK_STR_EQ(l->address, "127.0.0.1:2525");
        CHECK_INT_EQ(l->addr.ss_family, AF_INET);
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
        CHECK_INT_EQ(ntohs(sin->sin_port), 2525);
        CHECK_INT_EQ(ntohl(sin->sin_addr.s_addr), 0x7f000001);
        CHECK_INT_EQ(l->role, LISTENER_SUBMISSION);
        CHECK_INT_EQ(l->tls, LISTENER_TLS_STARTTLS);
    }
    CHECK_INT_EQ(cfg->relay.ntrusted_networks, 2);
    if (cfg->relay.ntrusted_networks == 2) {
        CHECK_STR_EQ(cfg->relay.trusted_networks[0].text, "127.0.0.0/8");
        CHECK_INT_EQ(cfg->relay.trusted_networks[0].family, AF_INET);
        CHECK_INT_EQ(cfg->relay.trusted_networks[0].prefix, 8);
        CHECK_STR_EQ(cfg->relay.trusted_networks[1].text, "::1/128");
        CHECK_INT_EQ(cfg->relay.trusted_networks[1].family, AF_INET6);
        CHECK_INT_EQ(cfg->relay.trusted_networks[1].prefix, 128);
    }
    CHECK(cfg->relay.users == NULL);
    CHECK_INT_EQ(cfg->ndomains, 0);
    CHECK_INT_EQ(cfg->limits.max_message_size, 50u << 20);
    CHECK_INT_EQ(cfg->limits.max_recipients_per_message, 1000);
    CHECK_INT_EQ(cfg->limits.max_connections, 10000);
    CHECK_INT_EQ(cfg->limits.max_errors, 10);
    CHECK_INT_EQ(cfg->limits.command_timeout_ms, 5 * 60 * 1000);
    CHECK_INT_EQ(cfg->limits.data_timeout_ms, 3 * 60 * 1000);
}

static void test_defaults(void)
{
    /* Empty in every way a file can be: all defaults, positions 0. */
    static const char *const empty[] = {
        "",
        "\n",
        "# only a comment\n",
        "---\n",
        "---\n...\n",
        "~\n",
        "server:\ndns:\ntls:\nrelay:\nlimits:\ndomains:\n",
        "server: {log: {}}\nlimits: {max_errors: null}\ndomains: {}\n",
    };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        struct config *cfg = load_good(empty[i]);
        if (cfg == NULL)
            continue;
        check_defaults(cfg);
        CHECK_STR_EQ(cfg->source, "t.yaml");
        CHECK_INT_EQ(cfg->refs, 1);
        CHECK_INT_EQ(cfg->listeners[0].pos.line, 0);
        CHECK_INT_EQ(cfg->relay.trusted_networks[0].pos.line, 0);
        config_unref(cfg);
    }

    /* The embedded default says the same, with the positions of its own text. */
    const char *text = config_default_yaml();
    struct config *cfg = load_good(text);
    if (cfg != NULL) {
        check_defaults(cfg);
        CHECK_INT_EQ(cfg->listeners[0].pos.line, 6);
        CHECK_INT_EQ(cfg->listeners[0].pos.column, 5);
        config_unref(cfg);
    }
}

static void test_full_file(void)
{
    const char *text =
        "server:\n"
        "  hostname: MX1.example.net\n"
        "  spool: /var/spool/sluice\n"
        "  user: sluice\n"
        "  log: { format: json, file: /var/log/sluice.jsonl }\n"
        "  shutdown_grace: 10s\n"
        "dns:\n"
        "  servers: [\"127.0.0.1:5353\", \"::1\", \"[::1]:53\", 192.0.2.53]\n"
        "  timeout: 500ms\n"
        "tls:\n"
        "  certificate: /etc/sluice/cert.pem\n"
        "  key: /etc/sluice/key.pem\n"
        "listeners:\n"
        "  - name: mx\n"
        "    address: \"0.0.0.0:25\"\n"
        "    role: inbound\n"
        "  - name: submission\n"
        "    address: \"[::]:587\"\n"
        "    role: submission\n"
        "    tls: none\n"
        "  - {name: smtps, address: \"127.0.0.1:465\", role: submission, tls: implicit}\n"
        "relay:\n"
        "  trusted_networks: [\"192.0.2.0/24\", \"2001:db8::/32\", 10.1.2.3,\n"
        "                     \"::ffff:198.51.100.0/120\", 0.0.0.0/0]\n"
        "  users: /etc/sluice/users\n"
        "domains:\n"
        "  example.com:\n"
        "    deliver_to: \"[10.0.0.25]:25\"\n"
        "    recipients: /etc/sluice/recipients/example.com\n"
        "  Example.ORG.: null\n"
        "  example.net: {deliver_to: mail.example.net}\n"
        "  a.example: {deliver_to: \"[2001:db8::25]\"}\n"
        "limits:\n"
        "  max_message_size: 10k\n"
        "  max_recipients_per_message: 100000\n"
        "  max_connections: 1\n"
        "  max_errors: 1000\n"
        "  command_timeout: 90\n"
        "  data_timeout: 1h\n";
    struct config *cfg = load_good(text);
    if (cfg == NULL)
        return;
    CHECK_STR_EQ(cfg->server.hostname, "MX1.example.net");
    CHECK_STR_EQ(cfg->server.spool, "/var/spool/sluice");
    CHECK_STR_EQ(cfg->server.user, "sluice");
    CHECK_STR_EQ(cfg->server.log_file, "/var/log/sluice.jsonl");
    CHECK_INT_EQ(cfg->server.shutdown_grace_ms, 10000);
    CHECK_INT_EQ(cfg->dns.nservers, 4);
    if (cfg->dns.nservers == 4) {
        CHECK_STR_EQ(cfg->dns.servers[0], "127.0.0.1:5353");
        CHECK_STR_EQ(cfg->dns.servers[1], "::1");
        CHECK_STR_EQ(cfg->dns.servers[3], "192.0.2.53");
    }
    CHECK_INT_EQ(cfg->dns.timeout_ms, 500);
    CHECK_STR_EQ(cfg->tls.certificate, "/etc/sluice/cert.pem");
    CHECK_STR_EQ(cfg->tls.key, "/etc/sluice/key.pem");

    CHECK_INT_EQ(cfg->nlisteners, 3);
    if (cfg->nlisteners == 3) {
        const struct config_listener *l = cfg->listeners;
        CHECK_STR_EQ(l[0].name, "mx");
        CHECK_INT_EQ(l[0].role, LISTENER_INBOUND);
        CHECK_INT_EQ(l[0].tls, LISTENER_TLS_STARTTLS);
        CHECK_INT_EQ(ntohs(((const struct sockaddr_in *)&l[0].addr)->sin_port), 25);
        CHECK_INT_EQ(l[0].pos.line, 14);
        CHECK_INT_EQ(l[0].pos.column, 5);
        CHECK(l[0].pos.file == cfg->source);
        CHECK_STR_EQ(l[1].address, "[::]:587");
        CHECK_INT_EQ(l[1].addr.ss_family, AF_INET6);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l[1].addr;
        CHECK_INT_EQ(ntohs(sin6->sin6_port), 587);
        CHECK(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
        CHECK_INT_EQ(l[1].role, LISTENER_SUBMISSION);
        CHECK_INT_EQ(l[1].tls, LISTENER_TLS_NONE);
        CHECK_STR_EQ(l[2].name, "smtps");
        CHECK_INT_EQ(l[2].tls, LISTENER_TLS_IMPLICIT);
        CHECK_INT_EQ(l[2].pos.line, 21);
        CHECK_INT_EQ(l[2].pos.column, 5);
    }

    CHECK_INT_EQ(cfg->relay.ntrusted_networks, 5);
    if (cfg->relay.ntrusted_networks == 5) {
        const struct config_cidr *n = cfg->relay.trusted_networks;
        static const unsigned char net24[4] = {192, 0, 2, 0}, host[4] = {10, 1, 2, 3};
        static const unsigned char mapped[4] = {198, 51, 100, 0};
        CHECK_INT_EQ(n[0].family, AF_INET);
        CHECK_INT_EQ(n[0].prefix, 24);
        CHECK(memcmp(n[0].addr, net24, 4) == 0);
        CHECK_INT_EQ(n[0].pos.line, 23);
        CHECK_INT_EQ(n[0].pos.column, 22);
        CHECK_INT_EQ(n[1].family, AF_INET6);
        CHECK_INT_EQ(n[1].prefix, 32);
        CHECK_INT_EQ(n[2].prefix, 32); /* a bare address is one host */
        CHECK(memcmp(n[2].addr, host, 4) == 0);
        CHECK_INT_EQ(n[3].family, AF_INET); /* v4-mapped: the IPv4 network it stands for */
        CHECK_INT_EQ(n[3].prefix, 24);
        CHECK(memcmp(n[3].addr, mapped, 4) == 0);
        CHECK_STR_EQ(n[3].text, "::ffff:198.51.100.0/120");
        CHECK_INT_EQ(n[4].prefix, 0);
        CHECK_INT_EQ(n[4].pos.line, 24);
    }
    CHECK_STR_EQ(cfg->relay.users, "/etc/sluice/users");

    /* Sorted by canonical name. */
    CHECK_INT_EQ(cfg->ndomains, 4);
    if (cfg->ndomains == 4) {
        CHECK_STR_EQ(cfg->domains[0].name, "a.example");
        CHECK_STR_EQ(cfg->domains[0].deliver_to, "[2001:db8::25]");
        CHECK_STR_EQ(cfg->domains[1].name, "example.com");
        CHECK_STR_EQ(cfg->domains[1].deliver_to, "[10.0.0.25]:25");
        CHECK_STR_EQ(cfg->domains[1].recipients, "/etc/sluice/recipients/example.com");
        CHECK_INT_EQ(cfg->domains[1].pos.line, 27);
        CHECK_INT_EQ(cfg->domains[1].pos.column, 3);
        CHECK_STR_EQ(cfg->domains[2].name, "example.net");
        CHECK_STR_EQ(cfg->domains[2].deliver_to, "mail.example.net");
        CHECK_STR_EQ(cfg->domains[3].name, "example.org");
        CHECK(cfg->domains[3].deliver_to == NULL && cfg->domains[3].recipients == NULL);
    }

    CHECK_INT_EQ(cfg->limits.max_message_size, 10240);
    CHECK_INT_EQ(cfg->limits.max_recipients_per_message, 100000);
    CHECK_INT_EQ(cfg->limits.max_connections, 1);
    CHECK_INT_EQ(cfg->limits.max_errors, 1000);
    CHECK_INT_EQ(cfg->limits.command_timeout_ms, 90000);
    CHECK_INT_EQ(cfg->limits.data_timeout_ms, 3600000);
    config_unref(cfg);
}

struct value_case {
    const char *key;   /* limits key */
    const char *value; /* as written */
    uint64_t want;
};

static void test_sizes_and_durations(void)
{
    static const struct value_case cases[] = {
        {"max_message_size", "50M", 50ull << 20},   {"max_message_size", "50m", 50ull << 20},
        {"max_message_size", "10k", 10240},         {"max_message_size", "10K", 10240},
        {"max_message_size", "1G", 1ull << 30},     {"max_message_size", "2G", 2ull << 30},
        {"max_message_size", "1024", 1024},         {"max_message_size", "1k", 1024},
        {"max_message_size", "\"7M\"", 7ull << 20}, {"max_message_size", "0010k", 10240},
        {"command_timeout", "5m", 300000},          {"command_timeout", "30s", 30000},
        {"command_timeout", "1h", 3600000},         {"command_timeout", "1000ms", 1000},
        {"command_timeout", "45", 45000},           {"data_timeout", "3600s", 3600000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "limits:\n  %s: %s\n", cases[i].key, cases[i].value);
        struct config *cfg = load_good(text);
        if (cfg == NULL)
            continue;
        uint64_t got = strcmp(cases[i].key, "max_message_size") == 0 ? cfg->limits.max_message_size
                       : strcmp(cases[i].key, "command_timeout") == 0
                           ? cfg->limits.command_timeout_ms
                           : cfg->limits.data_timeout_ms;
        if (got != cases[i].want)
            fprintf(stderr, "case %zu: %s: %s\n", i, cases[i].key, cases[i].value);
        CHECK_INT_EQ(got, cases[i].want);
        config_unref(cfg);
    }
    /* Days and the other bounds, through the out-of-range message (so "2d" parsed). */
    struct buf err = BUF_INIT;
    struct config *cfg;
    CHECK_INT_EQ(load("dns:\n  timeout: 2d\n", &cfg, &err), -EINVAL);
    CHECK_MEM_EQ(err.data, err.len, "t.yaml:2:12: dns.timeout: '2d' is out of range (100ms..1m)\n");
    buf_free(&err);
}

static struct sockaddr_storage client(const char *text)
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

static void test_trusted_networks(void)
{
    struct config *cfg = load_good("relay:\n  trusted_networks:\n"
                                   "    - 192.0.2.128/25\n"
                                   "    - 2001:db8:1::/48\n"
                                   "    - 198.51.100.7\n"
                                   "    - 10.0.0.0/7\n"
                                   "    - \"::ffff:203.0.113.0/124\"\n");
    if (cfg == NULL)
        return;
    static const struct {
        const char *client;
        int want; /* index of the network, or -1 */
    } cases[] = {
        {"192.0.2.128", 0},        {"192.0.2.255", 0},       {"192.0.2.127", -1},
        {"::ffff:192.0.2.200", 0}, {"::ffff:192.0.2.1", -1}, {"2001:db8:1::1", 1},
        {"2001:db8:1:ffff::1", 1}, {"2001:db8:2::1", -1},    {"198.51.100.7", 2},
        {"198.51.100.8", -1},      {"10.0.0.1", 3},          {"11.255.255.255", 3},
        {"12.0.0.0", -1},          {"203.0.113.15", 4},      {"::ffff:203.0.113.3", 4},
        {"203.0.113.16", -1},      {"::192.0.2.200", -1},    {"unix", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss = client(cases[i].client);
        const struct config_cidr *net = config_trusted_network_match(cfg, (struct sockaddr *)&ss);
        long got = net ? (long)(net - cfg->relay.trusted_networks) : -1;
        if (got != cases[i].want)
            fprintf(stderr, "client %s\n", cases[i].client);
        CHECK_INT_EQ(got, cases[i].want);
    }
    config_unref(cfg);

    /* The default trusts loopback only, in both families. */
    cfg = load_good("");
    if (cfg == NULL)
        return;
    static const char *const local[] = {"127.0.0.1", "127.255.0.3", "::1", "::ffff:127.0.0.1"};
    static const char *const remote[] = {"128.0.0.1", "::2", "192.0.2.1", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        struct sockaddr_storage a = client(local[i]), b = client(remote[i]);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&a) != NULL);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&b) == NULL);
    }
    config_unref(cfg);

    cfg = load_good("relay:\n  trusted_networks: []\n");
    if (cfg != NULL) {
        struct sockaddr_storage a = client("127.0.0.1");
        CHECK_INT_EQ(cfg->relay.ntrusted_networks, 0);
        CHECK(config_trusted_network_match(cfg, (struct sockaddr *)&a) == NULL);
        config_unref(cfg);
    }
}

static void test_domain_find(void)
{
    struct config *cfg = load_good("domains:\n  example.com:\n  Example.NET.:\n  b.example.org:\n"
                                   "  a.example.org: {recipients: /r}\n");
    if (cfg == NULL)
        return;
    static const struct {
        const char *query;
        const char *want;
    } cases[] = {
        {"example.com", "example.com"},
        {"EXAMPLE.COM", "example.com"},
        {"example.com.", "example.com"},
        {"Example.Net", "example.net"},
        {"example.net.", "example.net"},
        {"a.example.org", "a.example.org"},
        {"B.EXAMPLE.ORG.", "b.example.org"},
        {"example.com..", NULL},
        {"sub.example.com", NULL},
        {"example.co", NULL},
        {"xample.com", NULL},
        {"example.org", NULL},
        {"", NULL},
        {".", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct config_domain *d = config_domain_find(cfg, cases[i].query);
        if ((d == NULL) != (cases[i].want == NULL))
            fprintf(stderr, "query '%s'\n", cases[i].query);
        CHECK_STR_EQ(d ? d->name : NULL, cases[i].want);
    }
    const struct config_domain *a = config_domain_find(cfg, "a.example.org");
    CHECK(a != NULL && a->recipients != NULL && strcmp(a->recipients, "/r") == 0);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(config_domain_find(cfg, longname) == NULL);
    config_unref(cfg);

    cfg = load_good("");
    if (cfg != NULL) {
        CHECK(config_domain_find(cfg, "example.com") == NULL);
        config_unref(cfg);
    }
}

static void test_refcount(void)
{
    struct config *cfg = load_good("server: {hostname: mx.example.com}\n");
    if (cfg == NULL)
        return;
    CHECK_INT_EQ(cfg->refs, 1);
    CHECK(config_ref(cfg) == cfg);
    CHECK_INT_EQ(cfg->refs, 2);
    config_unref(cfg);
    CHECK_INT_EQ(cfg->refs, 1);
    CHECK_STR_EQ(cfg->server.hostname, "mx.example.com"); /* still alive: one reference left */
    config_unref(cfg); /* freed: ASan would see a leak or reuse */
    config_unref(NULL);
}

static void test_load_file(void)
{
    char dir[] = "/tmp/sluice-test-config-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/sluice.yaml", dir);
    struct buf err = BUF_INIT;
    struct config *cfg = NULL;

    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("server:\n  spool: /tmp/spool\nlimits:\n  max_message_size: 50Q\n", f);
    fclose(f);
    CHECK_INT_EQ(config_load_file(path, &cfg, &err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want,
             "%s:4:21: limits.max_message_size: '50Q' is not a size (use e.g. 50M)\n", path);
    CHECK_MEM_EQ(err.data, err.len, want);

    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("server:\n  spool: /tmp/spool\nlimits:\n  max_message_size: 20M\n", f);
        fclose(f);
        buf_reset(&err);
        CHECK_INT_EQ(config_load_file(path, &cfg, &err), 0);
        CHECK_INT_EQ(err.len, 0);
        if (cfg != NULL) {
            CHECK_STR_EQ(cfg->source, path);
            CHECK_STR_EQ(cfg->server.spool, "/tmp/spool");
            CHECK_INT_EQ(cfg->limits.max_message_size, 20u << 20);
            config_unref(cfg);
        }
    }
    unlink(path);

    buf_reset(&err);
    cfg = NULL;
    CHECK_INT_EQ(config_load_file(path, &cfg, &err), -ENOENT);
    CHECK(cfg == NULL);
    CHECK(err.len > 0 && strstr(err.data, path) != NULL);
    buf_reset(&err);
    CHECK(config_load_file(dir, &cfg, &err) < 0); /* a directory */
    CHECK(err.len > 0 && strstr(err.data, dir) != NULL);
    rmdir(dir);
    buf_free(&err);
}

/* The reference is generated from the key table, and docs/configuration.md carries it as is. */
static void test_describe_keys(void)
{
    struct buf out = BUF_INIT;
    config_describe_keys(&out);
    buf_append(&out, "", 1);
    CHECK(strncmp(out.data, "| Key | Type | Default | Bounds | Description |\n", 48) == 0);
    CHECK(strstr(out.data, "\n| `limits.max_message_size` | size | `50M` | 1k..2G | ") != NULL);
    CHECK(strstr(out.data, "\n| `limits.command_timeout` | duration | `5m` | 1s..1h | ") != NULL);
    CHECK(strstr(out.data, "\n| `listeners[].role` | one of: inbound, submission | required | ") !=
          NULL);
    CHECK(strstr(out.data, "\n| `server.hostname` | string | the system's host name | ") != NULL);
    CHECK(strstr(out.data, "\n| `domains.*.deliver_to` | string | none | ") != NULL);

    /* __FILE__ is tests/unit/test_config.c under the source tree. */
    char path[4096];
    const char *end = strstr(__FILE__, "tests/unit/test_config.c");
    CHECK(end != NULL);
    if (end != NULL) {
        snprintf(path, sizeof path, "%.*sdocs/configuration.md", (int)(end - __FILE__), __FILE__);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (f != NULL) {
            static char doc[65536];
            size_t n = fread(doc, 1, sizeof doc - 1, f);
            doc[n] = '\0';
            fclose(f);
            int same = strstr(doc, out.data) != NULL;
            CHECK(same);
            if (!same)
                fprintf(stderr, "%s: the key table differs from `sluice config-keys`\n", path);
        }
    }
    buf_free(&out);
}

int main(void)
{
    test_bad_files();
    test_several_errors();
    test_defaults();
    test_full_file();
    test_sizes_and_durations();
    test_trusted_networks();
    test_domain_find();
    test_refcount();
    test_load_file();
    test_describe_keys();
    return check_report("test_config");
}
