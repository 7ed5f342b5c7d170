/*
 * Configuration loading: good and bad files (each error's exact "file:line:column: key" prefix),
 * defaults and the embedded default, value parsing (sizes, durations, networks, addresses),
 * reference counting and the generated reference. The sections (networks, domains, egress,
 * shaping, DKIM) are in test_config_sections.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "tests/unit/check.h"
#include "tests/unit/config_load.h"
#include "tests/unit/doc_reference.h"

struct bad_case {
    const char *text;
    const char *prefix; /* the first error line starts with this */
    const char *rest;   /* and contains this afterwards */
};

#define EGRESS_POOL(name, a) "egress:\n  pools:\n    " name ":\n      - {address: " a "}\n"
#define DKIM_ENTRY(extra) "dkim:\n  - {domain: example.com, selector: s1, key: /k, " extra "}\n"
#define LISTENER_WITH_ADDRESS(a) "listeners:\n  - name: a\n    address: " a "\n    role: inbound\n"

static const struct bad_case bad_cases[] = {
    /* Unknown keys. */
    {"server:\n  hostnmae: x\n", "t.yaml:2:3: unknown key 'server.hostnmae'",
     "did you mean 'server.hostname'?"},
    {"limitz:\n  max_errors: 3\n", "t.yaml:1:1: unknown key 'limitz'", "'limits'"},
    {"shaping:\n  default:\n    conections: 3\n",
     "t.yaml:3:5: unknown key 'shaping.default.conections'",
     "(did you mean 'shaping.default.connections'?)"},
    {"inbound:\n  spf_check: mark\n", "t.yaml:2:3: unknown key 'inbound.spf_check'", ""},
    {"server:\n  log: {format: text}\n", "t.yaml:2:17: server.log.format: 'text'",
     "is not one of: json"},
    {"server:\n  log: {file: x, level: verbose}\n", "t.yaml:2:25: server.log.level: 'verbose'",
     "is not one of: debug, info, warn, error"},
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
    /* The YAML mistakes people make most, in plain words. */
    {"server:\n\tspool: /x\n",
     "t.yaml:2:1: tab character used for indentation: YAML allows only spaces", ""},
    {"dns:\n  servers:\n  \t- 1.1.1.1\n", "t.yaml:3:3: tab character used for indentation", ""},
    {"server:\n  spool: /x\n\tlimits: {}\n", "t.yaml:3:1: tab character used for indentation", ""},
    {"server:\n  spool: /x\n  \n\t\n", "t.yaml:4:1: tab character used for indentation", ""},
    {"server:\n  spool: \"/x\n  hostname: a\n",
     "t.yaml:2:10: unclosed quoted string starting at 2:10: no closing \" before the end of the "
     "file",
     ""},
    {"server:\n  spool: 'it''s\n",
     "t.yaml:2:10: unclosed quoted string starting at 2:10: no closing ' before the end of the "
     "file",
     ""},
    {"server: {spool: \"/x}\n---\nlimits: {}\n",
     "t.yaml:1:17: unclosed quoted string starting at 1:17: no closing \" before the '---' at 2:1",
     ""},
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
    {"domains:\n  \"ex\xe2\x98\x83mple.com\":\n", "t.yaml:2:3: domains:", "IDNA 2008 disallows"},
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
    /* Egress pools. */
    {EGRESS_POOL("out", "\"192.0.2.1:25\""),
     "t.yaml:4:19: egress.pools.out[0].address: '192.0.2.1:25' is not an IPv4 or IPv6 address", ""},
    {EGRESS_POOL("out", "mx.example.com"),
     "t.yaml:4:19: egress.pools.out[0].address:", "host name where a numeric address is needed"},
    {EGRESS_POOL("out", "192.0.2.1") "    b:\n      - {address: 192.0.2.1}\n",
     "t.yaml:6:9: egress.pools.b[0].address: '192.0.2.1' is already in pool out (line 4)", ""},
    {EGRESS_POOL("default", "\"2001:db8::1\"") "      - {address: \"2001:DB8:0::1\"}\n",
     "t.yaml:5:9: egress.pools.default[1].address:", "already in pool default"},
    {"egress:\n  pools:\n    out: []\n", "t.yaml:3:10: egress.pools.out: no address given", ""},
    {"egress:\n  pools:\n    out:\n      - {ehlo: a.example}\n",
     "t.yaml:4:9: egress.pools.out[0].address is required", ""},
    {"egress:\n  pools:\n    \"a b\":\n      - {address: 192.0.2.1}\n",
     "t.yaml:3:5: egress.pools: 'a b'", "character other than"},
    {"egress:\n  pools:\n    out:\n      - {address: 192.0.2.1, helo: x}\n",
     "t.yaml:4:30: unknown key 'egress.pools.out[0].helo'", "'egress.pools.out[0].ehlo'"},
    {"egress:\n  pools:\n    out:\n      - {address: 192.0.2.1, ehlo: \"a b\"}\n",
     "t.yaml:4:36: egress.pools.out[0].ehlo: 'a b'", "character other than"},
    /* IP warm-up. */
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n",
     "t.yaml:6:18: egress.pools.out[0].warmup.schedule is required with warmup.start", ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          schedule: [{per_day: [1, 2]}]\n",
     "t.yaml:6:22: egress.pools.out[0].warmup.start is required with a schedule", ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-02-29\n          schedule: [{per_day: [1]}]\n",
     "t.yaml:6:18: egress.pools.out[0].warmup.start: '2026-02-29' is not a date written YYYY-MM-DD",
     ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n          schedule: [{provider: a.example}]\n",
     "t.yaml:7:22: egress.pools.out[0].warmup.schedule[0].per_day is required", ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n          schedule: [{per_day: [10, x]}]\n",
     "t.yaml:7:37: egress.pools.out[0].warmup.schedule[0].per_day[1]: 'x' is not a whole number",
     ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n          schedule: [{per_day: [1]}, {per_day: [2]}]\n",
     "t.yaml:7:38: egress.pools.out[0].warmup.schedule[1].provider: '*' is already scheduled "
     "(line 7)",
     ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n          utc_offset: \"2:00\"\n"
     "          schedule: [{per_day: [1]}]\n",
     "t.yaml:7:23: egress.pools.out[0].warmup.utc_offset: '2:00' is not an offset from UTC", ""},
    {"egress:\n  pools:\n    out:\n      - address: 192.0.2.1\n        warmup:\n"
     "          start: 2026-12-01\n          overflow: later\n"
     "          schedule: [{per_day: [1]}]\n",
     "t.yaml:7:21: egress.pools.out[0].warmup.overflow: 'later'", "next, wait"},
    /* Pools named by shaping must exist ("default" may stand for no pools at all). */
    {EGRESS_POOL("out", "192.0.2.1"),
     "t.yaml:3:5: shaping.default.pool: 'default' is not a pool of egress.pools", ""},
    {"shaping:\n  default:\n    pool: out\n",
     "t.yaml:3:11: shaping.default.pool: 'out' is not a pool of egress.pools", ""},
    {EGRESS_POOL(
         "default",
         "192.0.2.1") "shaping:\n  rules:\n    - match: {domain: a.example}\n      pool: nope\n",
     "t.yaml:8:13: shaping.rules[0].pool: 'nope' is not a pool of egress.pools", ""},
    /* Shaping values. */
    {"shaping:\n  default:\n    rate: 6/x\n",
     "t.yaml:3:11: shaping.default.rate: '6/x': period unit must be s, m, h or d", ""},
    {"shaping:\n  default:\n    message_rate: 0/s\n",
     "t.yaml:3:19: shaping.default.message_rate: '0/s':", "use none for no limit"},
    {"shaping:\n  default:\n    retry: []\n",
     "t.yaml:3:12: shaping.default.retry: expected a list of durations", "not an empty list"},
    {"shaping:\n  default:\n    retry: 5m\n",
     "t.yaml:3:12: shaping.default.retry: expected a list of durations", "not a single value"},
    {"shaping:\n  default:\n    retry: [5m, 500ms]\n",
     "t.yaml:3:17: shaping.default.retry[1]: '500ms' is out of range (1s..7d)", ""},
    {"shaping:\n  default:\n    expire: 0\n",
     "t.yaml:3:13: shaping.default.expire: '0' is out of range (1s..30d)", ""},
    {"shaping:\n  default:\n    tls: maybe\n",
     "t.yaml:3:10: shaping.default.tls: 'maybe' is not one of: opportunistic, required, none", ""},
    {"shaping:\n  provider_rules: maybe\n",
     "t.yaml:2:19: shaping.provider_rules: 'maybe' is not one of: false, true", ""},
    /* Shaping rules. */
    {"shaping:\n  rules:\n    - connections: 3\n", "t.yaml:3:7: shaping.rules[0].match is required",
     ""},
    {"shaping:\n  rules:\n    - match: {}\n",
     "t.yaml:3:14: shaping.rules[0].match: needs mx, domain or both", ""},
    {"shaping:\n  rules:\n    - match: a.example\n",
     "t.yaml:3:14: shaping.rules[0].match: expected a mapping", ""},
    {"shaping:\n  rules:\n    - match: {mx: \"*.a..b\"}\n",
     "t.yaml:3:19: shaping.rules[0].match.mx: '*.a..b' has an empty label", ""},
    {"shaping:\n  rules:\n    - match: {mx: [a.example, \"a.*.b\"]}\n",
     "t.yaml:3:31: shaping.rules[0].match.mx[1]: 'a.*.b'", "character other than"},
    {"shaping:\n  rules:\n    - match: {domain: []}\n",
     "t.yaml:3:23: shaping.rules[0].match.domain:", "not an empty list"},
    {"shaping:\n  rules:\n    - match: {host: a.b}\n",
     "t.yaml:3:15: unknown key 'shaping.rules[0].match.host'", ""},
    {"shaping:\n  rules:\n    - match: {domain: a.b}\n      match: {domain: c.d}\n",
     "t.yaml:4:7: duplicate key 'shaping.rules[0].match' (first at line 3)", ""},
    {"shaping:\n  rules:\n    - match: {domain: a.b}\n      connections: 0\n",
     "t.yaml:4:20: shaping.rules[0].connections: '0' is out of range (1..1000)", ""},
    {"shaping:\n  rules:\n    - match: {domain: a.b}\n      rate: 6/s\n      rate: 7/s\n",
     "t.yaml:5:7: duplicate key 'shaping.rules[0].rate' (first at line 4)", ""},
    {"shaping:\n  rules:\n    - match: {domain: a.b}\n      ratee: 6/s\n",
     "t.yaml:4:7: unknown key 'shaping.rules[0].ratee'", "'shaping.rules[0].rate'"},
    {"shaping:\n  rules: {a: b}\n", "t.yaml:2:10: shaping.rules: expected a list of rules", ""},
    /* DKIM. */
    {"dkim:\n  - domain: example.com\n", "t.yaml:2:5: dkim[0].selector is required", ""},
    {"dkim:\n  domain: example.com\n", "t.yaml:2:3: dkim: expected a list of mappings", ""},
    {DKIM_ENTRY("algorithm: rsa-sha1"),
     "t.yaml:2:61: dkim[0].algorithm: 'rsa-sha1' is not one of: rsa-sha256, ed25519-sha256", ""},
    {DKIM_ENTRY("canonicalization: relaxed"),
     "t.yaml:2:68: dkim[0].canonicalization: 'relaxed' is not one of:", "simple/simple"},
    {DKIM_ENTRY("identity: nobody"), "t.yaml:2:60: dkim[0].identity: 'nobody' has no '@domain'",
     ""},
    {DKIM_ENTRY("identity: \"@other.org\""),
     "t.yaml:2:5: dkim[0].identity: '@other.org' is not in example.com or below it", ""},
    {DKIM_ENTRY("identity: \"@notexample.com\""),
     "t.yaml:2:5: dkim[0].identity:", "not in example.com"},
    {DKIM_ENTRY("expire: 1y"), "t.yaml:2:58: dkim[0].expire: '1y' is not a duration", ""},
    {DKIM_ENTRY("selector: \"a b\""), "t.yaml:2:50: duplicate key 'dkim[0].selector'", ""},
    {"dkim_on_failure: bounce\n",
     "t.yaml:1:18: dkim_on_failure: 'bounce' is not one of: accept, tempfail", ""},
    /* Inbound checks. */
    {"inbound:\n  dnsbl:\n    - {weight: 2}\n", "t.yaml:3:7: inbound.dnsbl[0].zone is required",
     ""},
    {"inbound:\n  dnsbl:\n    - {zone: zen.spamhaus.org, weight: 0}\n",
     "t.yaml:3:40: inbound.dnsbl[0].weight: '0' is out of range (1..100)", ""},
    {"inbound:\n  max_connection_rate_per_client: 30/fortnight\n",
     "t.yaml:2:35: inbound.max_connection_rate_per_client:", ""},
    {"domains:\n  example.com:\n    verify_recipients: maybe\n",
     "t.yaml:3:24: domains.example.com.verify_recipients:", ""},
    {"inbound:\n  dnsbl: [zen.spamhaus.org]\n", "t.yaml:2:11: inbound.dnsbl[0]: expected a mapping",
     ""},
    {"inbound:\n  reverse_dns: strict\n",
     "t.yaml:2:16: inbound.reverse_dns: 'strict' is not one of: ignore, require_ptr, "
     "require_forward_confirmed",
     ""},
    {"inbound:\n  spf: hardfail\n",
     "t.yaml:2:8: inbound.spf: 'hardfail' is not one of: ignore, mark, reject_fail", ""},
    {"inbound:\n  blocked_attachments: [\"e.x\"]\n",
     "t.yaml:2:25: inbound.blocked_attachments[0]: 'e.x'", "other than letters and digits"},
    {"inbound:\n  pregreet_wait: 2m\n",
     "t.yaml:2:18: inbound.pregreet_wait: '2m' is out of range (0..1m)", ""},
    {"inbound:\n  max_connections_per_client: -1\n",
     "t.yaml:2:31: inbound.max_connections_per_client:", "not a whole number"},
    {"inbound:\n  clamd: clamd\n", "t.yaml:2:10: inbound.clamd: 'clamd' is neither", ""},
    {"inbound:\n  clamd: \"127.0.0.1:0\"\n", "t.yaml:2:10: inbound.clamd:", "1 to 65535"},
    {"inbound:\n  clamd_down: reject\n",
     "t.yaml:2:15: inbound.clamd_down: 'reject' is not one of: tempfail, accept", ""},
    /* Delivery. */
    {"delivery:\n  port: 0\n", "t.yaml:2:9: delivery.port: '0' is out of range (1..65535)", ""},
    {"delivery:\n  port: 65536\n", "t.yaml:2:9: delivery.port:", "out of range"},
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

/* Tabs where YAML allows them (between a key and its value, in a flow list, before a comment)
 * are no indentation: the file loads. */
static void test_tabs_where_yaml_allows_them(void)
{
    struct config *cfg = load_good("server:\n  spool:\t/x\t# the spool\n"
                                   "dns:\n  servers: [\"127.0.0.1\",\t\"127.0.0.2\"]\n");
    CHECK(cfg != NULL);
    if (cfg != NULL) {
        CHECK_STR_EQ(cfg->server.spool, "/x");
        CHECK_INT_EQ(cfg->dns.nservers, 2);
    }
    config_unref(cfg);
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

/* egress, shaping, dkim, inbound and delivery when the file leaves them out. */
static void check_new_section_defaults(const struct config *cfg)
{
    static const uint64_t retry[] = {5, 10, 30, 60, 120, 240};
    const struct config_shaping *sh = &cfg->shaping.defaults;
    CHECK_INT_EQ(cfg->negress_pools, 0);
    CHECK(config_egress_pool_find(cfg, "default") == NULL);
    CHECK_INT_EQ(sh->connections, 10);
    CHECK_INT_EQ(sh->messages_per_connection, 100);
    CHECK_INT_EQ(sh->recipients_per_connection, 500);
    CHECK_INT_EQ(sh->recipients_per_message, 100);
    CHECK_INT_EQ(sh->rate.count, 0);
    CHECK_INT_EQ(sh->message_rate.count, 0);
    CHECK_INT_EQ(sh->nretry, 6);
    for (size_t i = 0; i < sh->nretry && i < 6; i++)
        CHECK_INT_EQ(sh->retry_ms[i], retry[i] * minute_ms);
    CHECK_INT_EQ(sh->expire_ms, 5 * 24 * hour_ms);
    CHECK_INT_EQ(sh->tls, SHAPING_TLS_OPPORTUNISTIC);
    CHECK_STR_EQ(sh->pool, "default");
    CHECK_INT_EQ(sh->connect_timeout_ms, 30 * 1000);
    CHECK_INT_EQ(cfg->shaping.provider_rules, 1);
    CHECK(cfg->shaping.nrules > 0);
    for (size_t i = 0; i < cfg->shaping.nrules; i++)
        CHECK_INT_EQ(cfg->shaping.rules[i].shipped, 1);
    CHECK_INT_EQ(cfg->ndkim, 0);
    CHECK_INT_EQ(cfg->dkim_on_error, DKIM_ON_ERROR_ACCEPT);
    CHECK_INT_EQ(cfg->inbound.ndnsbl, 0);
    CHECK_INT_EQ(cfg->inbound.dnsbl_threshold, 1);
    CHECK_INT_EQ(cfg->inbound.reverse_dns, REVERSE_DNS_IGNORE);
    CHECK_INT_EQ(cfg->inbound.spf, SPF_IGNORE);
    CHECK_INT_EQ(cfg->inbound.nblocked_attachments, 15);
    if (cfg->inbound.nblocked_attachments == 15) {
        CHECK_STR_EQ(cfg->inbound.blocked_attachments[0], "exe");
        CHECK_STR_EQ(cfg->inbound.blocked_attachments[14], "iso");
    }
    CHECK_INT_EQ(cfg->inbound.max_connections_per_client, 20);
    CHECK_INT_EQ(cfg->inbound.max_connection_rate_per_client.count, 0);
    CHECK_INT_EQ(cfg->inbound.verify_positive_ttl_ms, 3600 * 1000);
    CHECK_INT_EQ(cfg->inbound.verify_negative_ttl_ms, 600 * 1000);
    CHECK_INT_EQ(cfg->inbound.pregreet_wait_ms, 0);
    CHECK(cfg->inbound.clamd == NULL);
    CHECK_INT_EQ(cfg->inbound.clamd_down, CLAMD_DOWN_TEMPFAIL);
    CHECK_INT_EQ(cfg->delivery.port, 25);
}

static void test_verify_and_rate_keys(void)
{
    struct config *cfg = load_good("domains:\n  example.com: {verify_recipients: true}\n"
                                   "  example.net:\ninbound:\n"
                                   "  max_connection_rate_per_client: 30/m\n"
                                   "  verify_positive_ttl: 2h\n  verify_negative_ttl: 1m\n");
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    CHECK_INT_EQ(config_domain_find(cfg, "example.com")->verify_recipients, 1);
    CHECK_INT_EQ(config_domain_find(cfg, "example.net")->verify_recipients, 0);
    CHECK_INT_EQ(cfg->inbound.max_connection_rate_per_client.count, 30);
    CHECK_INT_EQ(cfg->inbound.max_connection_rate_per_client.period_ms, 60 * 1000);
    CHECK_INT_EQ(cfg->inbound.verify_positive_ttl_ms, 2 * 3600 * 1000);
    CHECK_INT_EQ(cfg->inbound.verify_negative_ttl_ms, 60 * 1000);
    config_unref(cfg);
}

static void check_defaults(const struct config *cfg)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    CHECK_STR_EQ(cfg->server.hostname, host);
    CHECK_STR_EQ(cfg->server.spool, "./var/spool");
    CHECK(cfg->server.user == NULL);
    CHECK_STR_EQ(cfg->server.log_file, "-");
    CHECK_INT_EQ(cfg->server.log_level, LOG_INFO);
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
    check_new_section_defaults(cfg);
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
        "  log: { format: json, file: /var/log/sluice.jsonl, level: debug }\n"
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
    CHECK_INT_EQ(cfg->server.log_level, LOG_DEBUG);
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

    check_doc_carries("configuration.md", out.data, "sluice config-keys");
    buf_free(&out);
}
int main(void)
{
    test_bad_files();
    test_tabs_where_yaml_allows_them();
    test_several_errors();
    test_defaults();
    test_full_file();
    test_sizes_and_durations();
    test_refcount();
    test_load_file();
    test_describe_keys();
    test_verify_and_rate_keys();
    return check_report("test_config");
}
