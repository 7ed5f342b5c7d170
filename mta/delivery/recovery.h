/*
 * Recovery: how far the limits of one (destination, egress address) are slowed down, and their way
 * back. A backoff (a reply rule's named set of slower limits) holds the limits at that set for its
 * duration; a throttle (a reply that asks to slow down) halves the way back to the full limits
 * (multiplicative decrease); each clean interval after that wins back a step (additive increase),
 * so the limits never snap back to full speed. Pure arithmetic on a clock the caller passes in;
 * the destination (destination.c) owns one per egress address and applies what it computes.
 */
#ifndef SLUICE_RECOVERY_H
#define SLUICE_RECOVERY_H

#include <stdint.h>

#include "lib/config.h"

/* Level of the full limits, in thousandths: at RECOVERY_FULL the shaping's own limits hold. */
#define RECOVERY_FULL 1000u

struct recovery {
    unsigned level;              /* 0 (the floor) .. RECOVERY_FULL */
    struct config_backoff floor; /* the slowest limits (name unused); 0 values: the shaping's */
    uint64_t hold_until;         /* a backoff holds level 0 until then */
    uint64_t next_step_at;       /* the earliest time of the next step up */
};

/* The limits a slowed (destination, egress address) sends under. */
struct recovery_limits {
    unsigned connections;
    unsigned messages_per_connection;
    unsigned recipients_per_connection;
    struct config_rate rate; /* count 0: none */
};

void recovery_init(struct recovery *r);
/* A backoff to `set` until `until`: the level drops to the floor and stays there. */
void recovery_backoff(struct recovery *r, const struct config_backoff *set, uint64_t until);
/* A throttle at now: the way back is halved (from full: the floor is one connection and one
 * recipient per rate period); the next step is an interval away. */
void recovery_throttle(struct recovery *r, const struct config_shaping *sh, uint64_t now);
/* A transaction went through at now: one step up when the last change is an interval old and no
 * backoff holds. Returns 1 when the level rose. */
int recovery_clean(struct recovery *r, const struct config_shaping *sh, uint64_t now);
/* 1 while a backoff holds, or the level is below full. */
int recovery_slowed(const struct recovery *r, uint64_t now);
/* The limits at the current level, between the floor and the shaping's own. A rate the shaping
 * leaves unlimited climbs from the floor's rate to ten times it, and is lifted at full level. */
void recovery_limits(const struct recovery *r, const struct config_shaping *sh,
                     struct recovery_limits *out);

#endif
