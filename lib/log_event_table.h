/*
 * The log event table: every event name the daemon and the command-line tools log, the levels it is
 * logged at, its fields and what it means. The reference (`sluice log-events`, docs/events.md) is
 * rendered from it, log_begin() reports a name missing from it (log.unknown_event), and
 * tests/log_events.py checks that the sources log exactly these names. Included by log_events.c
 * only. Adding an event: one row here, in strcmp order (the lookup is a binary search).
 */
#ifndef SLUICE_LOG_EVENT_TABLE_H
#define SLUICE_LOG_EVENT_TABLE_H

#include "lib/log_events.h"

/* clang-format off */
static const struct log_event log_event_table[] = {
    {"bounce.late", "info",
     "queue_id, tenant, campaign, recipient, matched_by, status, suppress, client, format, "
     "provider, source_ip, type",
     "A bounce that came back after the 250 (a DSN or a plain-text bounce sent to a feedback "
     "address or a VERP return path) is about a message we sent: the trace it quotes, or its VERP "
     "return path (`matched_by`), verified. `recipient` is the trace's when the message had one, "
     "else the bounce's; `suppress` says whether its recipient goes on the suppression list (a "
     "mailbox or domain that is gone)."},
    {"cluster.error", "warn",
     "msg",
     "Redis answered a shared-limit call with an error (cluster.redis); the decision is asked "
     "again."},
    {"cluster.fallback", "warn",
     "msg",
     "Redis (cluster.redis) cannot be reached, or was lost: after one quiet window of each rate, "
     "this node keeps to 1/cluster.nodes of every rate and connection limit until Redis is back."},
    {"cluster.shared", "info",
     "msg",
     "Redis (cluster.redis) answers again: rates, connections and suspensions are shared with the "
     "other nodes (this node still keeps to its share for one window of each rate)."},
    {"config.error", "error",
     "msg",
     "One line per problem of a configuration that a reload (SIGHUP) refused, as "
     "`file:line:column: problem`; `daemon.reload_failed` follows."},
    {"config.open_relay", "warn",
     "msg, relays",
     "The relay battery found relaying from outside, and "
     "`relay.i_understand_this_is_an_open_relay` allows it: `relays` attempts were accepted "
     "(without that key the configuration is refused)."},
    {"config.warning", "warn",
     "msg",
     "A configuration that starts, but not as meant (`file:line:column: key: problem`): a file the "
     "daemon's user could not read again at reload, running as root, a weak setting."},
    {"control.accept", "warn",
     "msg",
     "Accepting a connection on the control socket failed."},
    {"control.busy", "warn",
     "msg",
     "A control connection was refused because the most allowed are open."},
    {"control.request", "info, warn",
     "msg",
     "A request on the control socket (`sluice queue ...`) and the first line of its answer; warn "
     "when it failed."},
    {"control.timeout", "warn",
     "msg",
     "A control client sent nothing for too long and was dropped."},
    {"daemon.grace_over", "warn",
     "msg",
     "`server.shutdown_grace` ran out while stopping: the sessions still open are closed and their "
     "uncommitted messages rolled back."},
    {"daemon.ready", "info",
     "config, listeners, pid, user",
     "The daemon has started and accepts mail: its configuration file, listeners "
     "(`name=address,...`), process id and the user it runs as."},
    {"daemon.reload", "info, warn, error",
     "config, listeners, pid, user, msg",
     "A reload (SIGHUP) took effect (info, with the fields of `daemon.ready`); warn: a changed key "
     "that waits for a restart (`server.spool`, `server.user`, `dns`); error: the new "
     "`server.log.file` could not be opened."},
    {"daemon.reload_failed", "error",
     "msg",
     "A reload was refused (the `config.error` lines before it say why); the running configuration "
     "stays."},
    {"daemon.start_failed", "error",
     "msg",
     "The daemon could not start: one line per problem."},
    {"daemon.stopped", "info, warn",
     "msg",
     "The daemon has stopped with the spool intact (info); warn: libuv handles were left open at "
     "exit."},
    {"daemon.stopping", "info",
     "msg",
     "SIGTERM or SIGINT: the listeners close and open sessions may finish for "
     "`server.shutdown_grace`."},
    {"dane.lookup", "info, warn",
     "host, mode, records, usable, authenticated, msg, base, tlsa_cname",
     "The TLSA records of an MX host were looked up before delivering to it (dns.dnssec). `mode` "
     "is what the connection does: verify (usable DANE-TA/DANE-EE records: the certificate must "
     "match one), encrypt (validated records, none usable: TLS without authentication), none (no "
     "records, or records the resolver did not validate: the usual TLS policy), or defer (the "
     "lookup failed: no delivery to this host now, logged at warn). Only when CNAMEs were "
     "followed: `base` is where the records that decided were asked when that is not `host` (the "
     "end of the MX host's CNAME chain), `tlsa_cname` the host the TLSA records' own CNAME pointed "
     "to (_25._tcp.<tlsa_cname>), which a DANE-TA certificate may name."},
    {"dane.off", "warn",
     "msg",
     "dns.dnssec is on but DANE cannot be used: not every dns.servers entry is on loopback, so "
     "the AD bit cannot be trusted (logged once), or OpenSSL cannot enable DANE."},
    {"delivery.backoff", "warn",
     "destination, egress, connections, level_permille, rate, rate_period_ms, "
     "messages_per_connection, recipients_per_connection, reason, msg",
     "A reply rule backed an egress address off: the limits it now sends under."},
    {"delivery.bounce", "info",
     "queue_id, dsn_queue_id, to, tenant, campaign, double_bounce, rcpts",
     "A delivery status notification for `rcpts` failed recipients was queued as `dsn_queue_id`, "
     "to the sender (or the postmaster: `double_bounce`)."},
    {"delivery.bounce_failed", "error",
     "queue_id, msg, retry_in_ms",
     "The DSN for a message's failed recipients, or a success notice, could not be written; the "
     "recipients stay failed (the notice owed) and it is tried again in `retry_in_ms` (1 s, "
     "doubling with each failure in a row, at most 5 minutes). A delay notice that could not be "
     "written has no `retry_in_ms`: it waits for the next delay step."},
    {"delivery.deferred", "warn",
     "queue_id, from, rcpt, tenant, campaign, mx, code, enhanced, stage, remote, reply, class, "
     "category, attempts, delay_ms, retry_in_ms",
     "A recipient got a temporary failure and will be tried again in `retry_in_ms`."},
    {"delivery.delay_notice", "info",
     "queue_id, dsn_queue_id, to, tenant, campaign, double_bounce, rcpts",
     "A delay warning (RFC 3464 `Action: delayed`) for `rcpts` recipients that asked for one "
     "(`NOTIFY=DELAY`) and are still deferred past an age of `delivery.delay_warning` was queued "
     "as `dsn_queue_id`."},
    {"delivery.delivered", "info",
     "queue_id, from, rcpt, tenant, campaign, mx, code, enhanced, stage, remote, reply, attempts, "
     "delay_ms",
     "A recipient was accepted by the receiving server."},
    {"delivery.double_bounce", "warn",
     "queue_id, rcpt, msg",
     "A failed recipient of a bounce (null sender) that gets no further DSN: why in `msg`."},
    {"delivery.dsn_not_requested", "warn",
     "queue_id, rcpt, msg",
     "A failed recipient whose `NOTIFY` asked for no failure DSN: none is sent."},
    {"delivery.expired", "warn",
     "queue_id, from, rcpt, tenant, campaign, mx, code, enhanced, stage, remote, reply, class, "
     "category, attempts, delay_ms",
     "A temporary failure after the message's queue lifetime: Sluice gives up and the recipient "
     "fails."},
    {"delivery.failed", "warn",
     "queue_id, from, rcpt, tenant, campaign, mx, code, enhanced, stage, remote, reply, class, "
     "category, attempts, delay_ms",
     "A recipient got a permanent failure (5xx); a DSN follows unless not wanted."},
    {"delivery.forgotten", "debug",
     "destination, msg",
     "A destination with no mail waiting, no connection and no state left to keep was forgotten "
     "(checked each minute); one whose deferred mail waits for its retry is kept."},
    {"delivery.load_failed", "error",
     "msg",
     "A committed message could not be read from the spool for delivery."},
    {"delivery.recover", "info",
     "destination, egress, connections, level_permille, rate, rate_period_ms, "
     "messages_per_connection, recipients_per_connection, reason, msg",
     "One step back up towards the destination's own limits after a clean interval."},
    {"delivery.recovered", "info",
     "destination, egress, connections, level_permille, rate, rate_period_ms, "
     "messages_per_connection, recipients_per_connection, reason, msg",
     "An egress address is back at the destination's own limits."},
    {"delivery.relayed_notice", "info",
     "queue_id, dsn_queue_id, to, tenant, campaign, double_bounce, rcpts",
     "A success notice (`Action: relayed`) for `rcpts` recipients that asked for one "
     "(`NOTIFY=SUCCESS`) and were delivered to a server that does not offer DSN was queued as "
     "`dsn_queue_id`."},
    {"delivery.resume", "info",
     "destination, egress, reason, msg",
     "A suspension ended (a rule's, when mail is next dispatched) or `sluice queue resume` lifted "
     "one."},
    {"delivery.rule", "warn",
     "destination, egress, rule, action, backoff, for_ms, dry_run, hits, mx, code, enhanced, "
     "reply, reason, msg",
     "A reply rule matched a reply and acts (or would: `dry_run`)."},
    {"delivery.suspend", "warn",
     "destination, egress, connections, failures, for_ms, reason, msg",
     "Delivery to a destination or one egress address stops for `for_ms`: by a reply rule, by "
     "`sluice queue suspend`, or after repeated connection `failures` (with backoff)."},
    {"delivery.suspended_unreadable", "error",
     "msg",
     "The spool's file of administrators' suspensions could not be read at the start: those from "
     "before it are lost."},
    {"delivery.suspended_unsaved", "error",
     "msg",
     "The spool's file of administrators' suspensions could not be written: a restart may lose a "
     "suspension or its lifting."},
    {"delivery.tenant_resume", "info",
     "tenant, campaign",
     "`sluice queue resume --tenant` released a tenant's mail (`campaign` \"\": all of it)."},
    {"delivery.tenant_suspend", "warn",
     "tenant, campaign",
     "`sluice queue suspend --tenant` holds a tenant's mail (`campaign` \"\": all of it): its "
     "queued jobs come back from the destinations and none is sent until it is resumed."},
    {"delivery.throttle", "warn",
     "destination, egress, connections, level_permille, rate, rate_period_ms, "
     "messages_per_connection, recipients_per_connection, reason, msg",
     "The fallback when no rule acted on a 421 or a rate reply: the egress address slows down to "
     "these limits."},
    {"delivery.warmup_full", "info",
     "egress, destination, day, allowance, used, msg",
     "A warming egress address has used its allowance of the day for a destination (its warm-up "
     "schedule's `day`)."},
    {"delivery.warmup_overflow", "info",
     "egress, destination, day, allowance, used, msg",
     "Mail for a destination a warming address has used the day's allowance for goes from the "
     "pool's other addresses (`overflow: next`); once a day."},
    {"delivery.warmup_unreadable", "error",
     "msg",
     "The warm-up counts could not be read back at start: they start from 0."},
    {"delivery.warmup_unsaved", "error",
     "msg",
     "The warm-up counts could not be written: a restart may forget today's counts."},
    {"delivery.warmup_wait", "info",
     "egress, destination, day, allowance, used, msg",
     "A warming address has used the day's allowance and the destination's mail waits for the "
     "next day (`overflow: wait`); once a day."},
    {"dkim.sign_failed", "error",
     "session, queue_id, from_domain, error, action",
     "A message could not be DKIM-signed; `action` says whether it was refused or accepted "
     "unsigned."},
    {"dkim.signed", "info",
     "session, queue_id, from_domain, signatures",
     "A message was DKIM-signed with `signatures` signatures."},
    {"dkim.verify_unavailable", "warn",
     "msg",
     "libopendkim did not start: inbound messages are not DKIM-verified."},
    {"dnsbl_error", "warn",
     "msg",
     "A DNS blocklist query failed (not a \"not listed\" answer): the zone is counted as not "
     "listing the client."},
    {"doctor.change", "info, warn",
     "check, subject, from, to, found, fix",
     "`sluice doctor --watch`: a row's status changed (`from` and `to`: PASS, INFO, WARN, FAIL or "
     "none); warn when it is now FAIL."},
    {"doctor.round", "info, error",
     "round, pass, info, warn, fail, msg",
     "`sluice doctor --watch`: one round of checks ran, with the count of rows by status; error: "
     "the round could not run."},
    {"feedback.alarm", "error",
     "count, window_s, provider, sender, notify",
     "More than `feedback.alarm_threshold` reports about mail we never sent arrived within "
     "`feedback.alarm_window`: someone may be sending as us (an open relay, a stolen account, "
     "forged mail; see feedback.md). Logged once, and mailed to `notify` when set; armed again "
     "after a whole window without such a report."},
    {"feedback.alarm_notify_failed", "error",
     "msg",
     "The alarm's message to `feedback.alarm_notify` could not be queued."},
    {"feedback.complaint", "warn",
     "queue_id, tenant, campaign, recipient, matched_by, suppress, client, format, provider, "
     "source_ip, type",
     "A complaint report (ARF, or Microsoft's JMRP) is about a message we sent: its trace verified. "
     "`recipient` is the trace's when the message had one (reports often redact it), else the "
     "report's."},
    {"feedback.ignored", "info",
     "client, provider",
     "Mail for a feedback address was neither a complaint report nor a bounce; it was read and "
     "dropped."},
    {"feedback.unrecognized", "error",
     "reason, kind, client, format, provider, source_ip, type, sender, subject, recipient, "
     "queue_id, in_window",
     "A complaint or bounce about mail we did not send: `reason` is no_trace, malformed_trace, "
     "unknown_key, bad_mac (forged or altered) or never_issued (a queue id outside the time we "
     "could have issued it). `source_ip` is where the reported message came from (ARF), `client` "
     "who sent the report; counted towards `feedback.alarm`."},
    {"feedback.untraced", "warn",
     "msg",
     "A relayed message's header section was too big to hold (over 1 MB), so it went on without "
     "X-Sluice-Trace and Feedback-ID: a complaint about it cannot be matched."},
    {"http.inject_cancelled", "info",
     "tenant, client, messages, queued, finishing",
     "The client of POST /api/v1/inject closed its connection before the answer: of the request's "
     "`messages`, `queued` were durable already and `finishing` were being committed (they stay "
     "and are delivered, logged http.injected); the others are not queued."},
    {"http.inject_refused", "info",
     "tenant, client, address, code, text, rule",
     "POST /api/v1/inject refused a recipient (`address`) or a whole message (no `address`) with "
     "the SMTP reply `code` and `text` a submission listener would have given; `tenant` is the "
     "token's user. A suppressed recipient whose tenant drops them shows with code 250."},
    {"http.injected", "info",
     "queue_id, tenant, campaign, from, rcpts, size, client",
     "A message injected over HTTP (POST /api/v1/inject) is durable in the spool under `queue_id` "
     "and was answered with that id (unless its client had gone: http.inject_cancelled); `tenant` "
     "is the token's user."},
    {"http.refused", "warn",
     "msg",
     "An HTTP connection was closed as it arrived: http.max_connections were open."},
    {"http.request", "info",
     "method, path, status, user",
     "The HTTP interface answered a request with `status`; `user` is the bearer token's "
     "(none when it was refused, or for a public /metrics). 499: the client closed the "
     "connection before the answer, and what the request had started was called off."},
    {"listener.accept_error", "warn",
     "msg",
     "Accepting a connection on a listener failed (the address and the system's error)."},
    {"log.dropped", "error",
     "count, msg",
     "The log target fell behind: `count` lines were dropped. Written whatever `server.log.level` "
     "says."},
    {"log.unknown_event", "error",
     "name, msg",
     "A record was logged under an event name this table does not have (a bug in Sluice). Written "
     "once per name, whatever `server.log.level` says."},
    {"loop.late_turn", "info",
     "cpu_ms, work_ms, runq_ms, count",
     "A turn of the daemon's event loop took under 20 ms of CPU time but its clients waited 20 ms "
     "or more anyway: its work took `work_ms` milliseconds of wall time, or its thread waited "
     "`runq_ms` for a CPU (other processes had them), in the turn or on waking for it. A busy "
     "machine's, not a bug: `runq_ms` near the delay says the machine is short of CPU. At most one "
     "line a second; `count` is the late turns since the last line, each figure the largest."},
    {"loop.slow_turn", "warn",
     "cpu_ms, work_ms, runq_ms, count",
     "One turn of the daemon's event loop took `cpu_ms` milliseconds of CPU time (20 or more): every "
     "client waited that long for its next reply (`work_ms`, its wall time, and `runq_ms`, its "
     "waits for a CPU, as in `loop.late_turn`). At most one line a second; `count` is the slow turns "
     "since the last line, each figure the largest of them. A bug to report, with what ran."},
    {"mta_sts.fetch_failed", "warn",
     "domain, id, mode, max_age, reason",
     "The MTA-STS policy of `domain` could not be had: a malformed or duplicate `_mta-sts` TXT "
     "record, no address for mta-sts.`domain`, an HTTPS failure (certificate, timeout, a status "
     "other than 200, a body over 64 KB) or a policy that does not parse (`reason`). A cached "
     "policy that has not expired (its `id`, `mode` and `max_age` shown) is still used; without "
     "one, mail goes as with `tls: opportunistic`."},
    {"mta_sts.policy", "info",
     "domain, id, mode, max_age, reason",
     "Sluice has the MTA-STS policy of `domain`: `fetched` over HTTPS (a new domain, or its TXT "
     "record's `id` changed), or `read back from the spool` at start."},
    {"mta_sts.save_failed", "error",
     "msg",
     "A fetched MTA-STS policy could not be written to the spool (`<spool>/mta-sts/`); it is "
     "used from memory, but a restart fetches it again."},
    {"panic", "error",
     "msg",
     "A broken invariant: the daemon aborts."},
    {"queue.bounce_done", "info",
     "destination, tenant, campaign, in_memory, on_disk, unread",
     "A bounce of a selection (`sluice queue bounce --destination`/`--tenant`, or the admin API) "
     "has gone through the queue: `in_memory` messages had waiting recipients failed, `on_disk` "
     "were marked to fail when read back (at once); `unread`: messages on disk that could not be "
     "read."},
    {"queue.bounce_started", "warn",
     "destination, tenant, campaign, in_memory, to_read",
     "A bounce of the waiting mail for a destination and/or of a tenant (and campaign) starts: "
     "`in_memory` messages selected in memory, `to_read` queued ids on disk to check; it goes on "
     "in slices, with DSNs to the senders."},
    {"queue.bounced", "warn",
     "queue_id",
     "`sluice queue bounce ID` (or the admin API) failed the message's waiting recipients; the "
     "sender gets a DSN."},
    {"queue.deleted", "warn",
     "msg",
     "`sluice queue delete` removed a message; no DSN is sent."},
    {"smtp.accept_failed", "warn",
     "msg",
     "A connection accepted on a listener could not be set up as a session."},
    {"smtp.accepted", "info",
     "session, queue_id, from, rcpts, size, client, listener, tenant, campaign, body",
     "A message was committed to the spool and answered `250`; `rcpts` comma-separated; `body` "
     "(`8BITMIME` or `BINARYMIME`) when MAIL declared one."},
    {"smtp.accepted_unacknowledged", "warn",
     "msg",
     "A message was committed but its client had gone before the `250`: it is delivered all the "
     "same."},
    {"smtp.auth", "info, warn",
     "session, client, user, mechanism, result, delay_ms",
     "An AUTH attempt and its result; warn when it failed (`delay_ms`: the delay before the "
     "answer)."},
    {"smtp.auth_failed", "error",
     "msg",
     "An AUTH check could not be started (thread pool error); the exchange ends."},
    {"smtp.check_failed", "warn",
     "session, check, error",
     "A connect-time check (DNS blocklists, reverse DNS) could not start."},
    {"smtp.clamd_down", "warn",
     "session, queue_id, error, action",
     "clamd could not scan a message; `action` is `tempfail` or `accepted_unscanned` "
     "(`inbound.clamd_down`)."},
    {"smtp.connect", "info",
     "session, client, listener",
     "A client connected."},
    {"smtp.disconnect", "info",
     "session, client, state",
     "A session ended; `state`: what it was waiting for (`tls-wait`, `greet-wait`, `starttls`, "
     "`mail-check`, `auth-check`, `end-of-data`), else its phase (`connected`, `ready`, `mail`, "
     "`rcpt`, `data`, `auth`, `closing`)."},
    {"smtp.dkim_verified", "info",
     "session, queue_id, signatures, results",
     "The DKIM signatures of an inbound message were verified."},
    {"smtp.dmarc", "info",
     "session, queue_id, client, from_domain, result, policy, disposition, reason, override, spf, "
     "spf_domain, dkim",
     "The DMARC result of an inbound message (`inbound.dmarc`): `result` as in "
     "Authentication-Results, `policy` the domain's p= or sp=, `disposition` what was done "
     "(`none`, `quarantine`, `reject`), `override` (`network` or `sender`) when "
     "`inbound.dmarc_override` let a failure through; `spf` and `spf_domain` the SPF result, "
     "`dkim` each signature as `pass d` or `fail d` (`fail` for any result but pass): with "
     "`client`, what an aggregate report (RFC 7489 7.2) counts."},
    {"smtp.dnsbl", "info",
     "session, client, listed, score, zone",
     "The client's DNS blocklist result."},
    {"smtp.header_removed", "info",
     "session, field, count",
     "Header fields a client may not set (`Authentication-Results` claiming our name) were removed "
     "from a message."},
    {"smtp.rcpt_checked", "info",
     "session, address, rule",
     "A recipient was found by a recipients list (`rule` names it)."},
    {"smtp.rejected", "info",
     "session, client, stage, code, text, rule, address",
     "A MAIL, RCPT or DATA was refused: the reply and the rule that decided."},
    {"smtp.reply", "debug, info",
     "session, code, enhanced, text",
     "A reply sent to a client: at info a refusal or failure (4xx, 5xx), at debug every reply "
     "(`EHLO` for the EHLO answer). An accepted message is logged once, by `smtp.accepted`."},
    {"smtp.reverse_dns", "info",
     "session, client, status, name",
     "The client's reverse DNS result (`status`; `name` the PTR name)."},
    {"smtp.sender_domain", "info",
     "session, domain, result",
     "The DNS answer about the sender's domain (does it take mail)."},
    {"smtp.spf", "info",
     "session, client, result, identity, domain, reason",
     "The SPF result for the sender."},
    {"smtp.state", "debug",
     "session, from, to, wait",
     "A session's phase changed (`from`, `to` as for `smtp.disconnect`); `wait`: what it now waits "
     "for, `none` when it reads the client's next line."},
    {"smtp.timeout", "info",
     "session, client, state, limit",
     "A session ran out of time (`limit`: the configuration key) and gets `421 4.4.2`."},
    {"smtp.tls", "info",
     "session, version, cipher",
     "A STARTTLS or implicit TLS handshake completed."},
    {"smtp.tls_failed", "info",
     "session, error",
     "A TLS handshake with a client failed."},
    {"smtp.verify", "info",
     "session, address, result, cached, reason",
     "Recipient verification's answer (`valid`, `invalid`, `tempfail`, `skipped`)."},
    {"smtp_client.misuse", "warn",
     "msg",
     "A bug guard: a delivery session was asked to send while busy; ignored."},
    {"smtp_client.session", "info, warn",
     "session, mx, address, connected, tls, messages, code, stage, reason",
     "An outbound delivery session ended: the host, TLS version, messages sent and why it ended; "
     "warn when it ended on an error (`code`, `stage`)."},
    {"smtp_client.state", "debug",
     "msg",
     "An outbound delivery session's state changed (`session N: old -> new`)."},
    {"spool.checkpoint_failed", "error",
     "msg",
     "A journal segment's files could not be made durable; the segment stays until the next start "
     "replays it."},
    {"spool.cleanup_failed", "warn",
     "msg",
     "A spool file of a finished or deleted message could not be removed."},
    {"spool.commit_failed", "error",
     "msg",
     "A message could not be written to the spool; the client gets `451 4.3.0` or, when the disk "
     "is full, `452 4.3.1`."},
    {"spool.corrupt", "warn",
     "file, reason, moved_to, move_failed",
     "A committed-looking file failed its checks and was moved to `corrupt/` (never deleted)."},
    {"spool.finished", "info",
     "msg",
     "At start: messages whose every recipient was final were removed."},
    {"spool.finished_removed", "info",
     "msg",
     "At start: one message whose every recipient was final was removed."},
    {"spool.id_clash", "warn",
     "msg",
     "A new message's queue id was taken: it gets another."},
    {"spool.journal_failed", "error",
     "msg",
     "A journal batch could not be made durable; the commits waiting on it fail (their clients get "
     "an error reply)."},
    {"spool.journal_repaired", "warn",
     "queue_id, msg",
     "At start: a queue file that was missing or torn was written again from the journal."},
    {"spool.journal_replayed", "info",
     "msg",
     "At start: journal records replayed and queue files written again."},
    {"spool.journal_tail", "info",
     "msg",
     "At start: bytes of a journal batch that was never acknowledged were ignored."},
    {"spool.low_space", "warn",
     "available, required, refused",
     "MAIL is refused with `452 4.3.1` for lack of disk space (at most one line a while; "
     "`refused`: since the last)."},
    {"spool.migrated", "info",
     "count, state_files, msg",
     "At start: files of the old flat spool layout were moved into hashed directories."},
    {"spool.not_handed_over", "warn",
     "msg",
     "An entry of the spool that the start left as it is (a symbolic link, a hard link, a FIFO, a "
     "directory too deep)."},
    {"spool.recovered", "info",
     "queue_id, due",
     "After the start: each committed message the spool's listing found (`due`: unix seconds of "
     "its next attempt, when later than now), whose envelope is read only when it is due."},
    {"spool.recovery_done", "info",
     "msg",
     "After the start: the spool's listing is done; the count of committed messages found."},
    {"spool.space_ok", "info",
     "available",
     "Disk space is back after `spool.low_space`."},
    {"spool.state_cut", "warn, error",
     "msg",
     "At start, or when a message is read back for delivery: a torn state record at the end of a "
     "queue file (or of an earlier version's state file) was removed (warn) or could not be "
     "(error)."},
    {"spool.state_left", "warn",
     "msg",
     "At start: a state file without a message could not be removed."},
    {"spool.state_orphans", "info",
     "msg",
     "At start, or in the spool's listing after it: state files without a message were removed."},
    {"spool.statfs_failed", "warn",
     "msg",
     "The spool's free space could not be read: MAIL is not checked against it."},
    {"spool.tmp_left", "warn",
     "msg",
     "At start: a half-written message could not be removed."},
    {"spool.tmp_removed", "info",
     "msg",
     "At start: half-written messages were removed."},
    {"spool.update_failed", "error",
     "msg",
     "A recipient's result could not be recorded in the spool: a restart may repeat its delivery."},
    {"suppression.add_failed", "error",
     "tenant, address, source, msg",
     "A recipient could not be added to the suppression list (a hard bounce or a complaint): "
     "`msg` says why."},
    {"suppression.added", "info",
     "tenant, address, source, already, expiry",
     "The daemon added a recipient to the suppression list (`tenant` \"\" is the global list); "
     "`already` when an entry that still counts was there and was kept; `expiry` in unix seconds, "
     "0 for good."},
    {"suppression.discarded", "info",
     "session, tenant, from, rcpts, size",
     "A message whose every recipient was dropped (suppression drop mode, `rcpts` of them, at RCPT "
     "or by its header-named tenant's list) "
     "was read to its end, answered `250` as its recipients were, and discarded: nothing was "
     "spooled."},
    {"suppression.hit", "info",
     "session, tenant, address, listed, source, added, action, stage",
     "Relayed mail named a suppressed recipient: `listed` is tenant or global, `source` and "
     "`added` (a date) are the entry's, `action` reject (550 5.7.1) or drop (250, left out). "
     "`stage` rcpt: found at RCPT; data: found in the list of the tenant the header section "
     "named, and taken out of the message's recipients (the message is refused at its end only "
     "when none is left and the action is reject)."},
    {"tls_policy.failure", "warn",
     "session, mx, source, testing, reason",
     "A connection to an MX host did not meet its outbound TLS policy (`source`: `shaping` for "
     "`tls: required`, `mta-sts` for the destination's MTA-STS policy): no STARTTLS, or a "
     "certificate that is expired, self-signed, from an untrusted CA or not for the MX name "
     "(`reason`). With `testing` false the attempt defers (451 4.7.x) and the next MX host is "
     "tried; with `testing` true (MTA-STS `mode: testing`) the mail is delivered anyway."},
    {"tls_rpt.no_record", "info",
     "msg",
     "A recipient domain's TLS report (tls_rpt.enabled) is not sent: the domain publishes no "
     "usable `_smtp._tls` TXT record (`v=TLSRPTv1; rua=...`); its counts for the day are "
     "dropped."},
    {"tls_rpt.overflow", "warn",
     "msg",
     "More recipient domains than tls_rpt.max_domains had TLS sessions counted on one day; "
     "sessions to the others are not counted (logged the first time one is dropped)."},
    {"tls_rpt.report", "info",
     "domain, report_id, rua, queue_id",
     "A TLS report (RFC 8460) about sessions to `domain` is in the queue (`queue_id`) for the "
     "mailto: address `rua` of the domain's `_smtp._tls` TXT record; a copy is in "
     "<spool>/tls-rpt/reports/`report_id`.json."},
    {"tls_rpt.rua_unsupported", "info",
     "msg",
     "A domain asks for its TLS reports by a URI other than mailto: (https): those are not sent."},
    {"tls_rpt.save_failed", "error",
     "msg",
     "The TLS report counts (<spool>/tls-rpt/counts.json) or a report's copy could not be "
     "written, or the counts file read back at start is not one; the message names the file."},
    {"tls_rpt.send_deferred", "warn",
     "msg",
     "A TLS report could not be sent when due: the `_smtp._tls` TXT record of its domain could "
     "not be looked up (a temporary DNS failure), a report mail could not be written to the "
     "spool, or the daemon was stopping. The report is kept and tried again at the next send "
     "time, for up to 7 days after the day it covers."},
    {"tls_rpt.send_failed", "error",
     "domain, report_id, rua, reason",
     "A TLS report mail could not be written to the spool; the report is kept for the next send "
     "time (tls_rpt.send_deferred), or dropped 7 days after the day it covers."},
    {"tls_rpt.sign_failed", "error",
     "msg",
     "A TLS report mail could not be DKIM-signed with the dkim: entry covering tls_rpt.sender's "
     "domain (the message says why); it is sent unsigned."},
    {"webhook.backlog_error", "error",
     "url, msg",
     "A webhook endpoint's backlog in the spool could not be opened, written or moved on: `msg` "
     "says which and how many events were lost; a batch not recorded as sent may be sent again."},
    {"webhook.backlog_full", "warn",
     "url, backlog_max, msg",
     "A webhook endpoint's backlog reached `webhooks[].backlog_max`: new events for it are dropped "
     "(and counted) until it takes some; once per episode."},
    {"webhook.rejected", "error",
     "url, status, events, reply",
     "A webhook endpoint answered a batch with a 4xx other than 408 and 429 (or a redirect): the "
     "batch's events are dropped; `reply` is the start of its answer."},
    {"webhook.retry", "warn",
     "url, status, error, events, attempts, retry_in_ms",
     "A batch did not reach its webhook endpoint (no answer: `error`; or 408, 429, 5xx: "
     "`status`): it is tried again in `retry_in_ms`."},
    {"webhook.sent", "debug",
     "url, status, events",
     "A webhook endpoint took a batch of `events` events."},
};
/* clang-format on */

#endif
