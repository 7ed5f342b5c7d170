/*
 * Administrators' suspensions kept in the spool, so a restart keeps them: `<spool>/suspended`
 * holds one line per suspension in force, "NAME UNTIL" (UNTIL: unix ms it ends, 0: until resumed),
 * whether its destination exists yet or the scheduler holds it for the first mail (held_apply),
 * and one per hold of a tenant's mail, "+ TENANT" or "+ TENANT CAMPAIGN" (no destination name
 * holds a blank, and readers before tenant holds skip these lines).
 * The file is read at the start and rewritten whole after each suspend or resume, on the thread
 * pool (file_replace: written beside, synced, renamed). Owned by the scheduler; it outlives
 * scheduler_free until its file work is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/delivery/sched_int.h"

#define SUSPENDED_FILE "suspended"
#define FILE_MAGIC "sluice-suspended/1\n"
/* A destination name and a time, or a tenant and a campaign (255 bytes each at most), with room to
 * spare; a longer line is not ours. */
#define LINE_MAX_LEN 600
/* What starts the line (and the map's key) of a tenant hold. */
#define HOLD_PREFIX "+ "

/* What the map holds for a name: the unix ms it ends (INT64_MAX: until resumed), or RESUMED: lifted
 * since the start, so the file's older word for it does not count. */
#define RESUMED 0

struct sched_suspended {
    uv_loop_t *loop;
    struct scheduler *s; /* NULL once the scheduler is freed */
    char *dir;
    struct strmap until; /* name, or HOLD_PREFIX TENANT[ CAMPAIGN] -> int64_t */
    uv_work_t load_req, save_req;
    struct buf file;
    int io_status;
    unsigned loaded : 1, saving : 1, dirty : 1;
};

static void suspended_save(struct sched_suspended *ss);

static void suspended_free_now(struct sched_suspended *ss)
{
    strmap_free_values(&ss->until);
    buf_free(&ss->file);
    free(ss->dir);
    free(ss);
}

/* Frees it once no file work is in flight. */
static void suspended_settle(struct sched_suspended *ss)
{
    if (ss->s == NULL && ss->loaded && !ss->saving)
        suspended_free_now(ss);
}

static void set_until(struct sched_suspended *ss, const char *name, int64_t until)
{
    int64_t *v = xmalloc(sizeof *v);
    *v = until;
    free(strmap_put(&ss->until, name, v));
}

/* ---- reading at the start ---- */

static void load_work(uv_work_t *req)
{
    struct sched_suspended *ss = req->data;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ss->dir, SUSPENDED_FILE);
    ss->io_status = file_read_all(path, &ss->file);
}

/* "+ TENANT [CAMPAIGN]": restored unless lifted since the start. */
static void load_hold(struct sched_suspended *ss, const char *line)
{
    char tenant[256], campaign[256] = "";
    if (strmap_get(&ss->until, line) != NULL ||
        sscanf(line + strlen(HOLD_PREFIX), "%255s %255s", tenant, campaign) < 1)
        return;
    set_until(ss, line, INT64_MAX);
    if (ss->s != NULL)
        scheduler_restore_tenant_hold(ss->s, tenant, campaign);
}

/* "NAME UNTIL": restored unless over, or changed since the start. */
static void load_line(struct sched_suspended *ss, const char *line, int64_t now)
{
    char name[300];
    long long until;
    if (strncmp(line, HOLD_PREFIX, strlen(HOLD_PREFIX)) == 0) {
        load_hold(ss, line);
        return;
    }
    if (sscanf(line, "%299s %lld", name, &until) != 2 || (until != 0 && until <= now) ||
        strmap_get(&ss->until, name) != NULL)
        return;
    set_until(ss, name, until == 0 ? INT64_MAX : until);
    if (ss->s != NULL)
        scheduler_restore_suspension(ss->s, name, until == 0 ? 0 : (uint64_t)(until - now));
}

static void load_done(uv_work_t *req, int status)
{
    struct sched_suspended *ss = req->data;
    if (status == 0 && ss->io_status < 0)
        status = ss->io_status;
    size_t magic = strlen(FILE_MAGIC);
    if (status < 0) {
        log_msg(LOG_ERROR, "delivery.suspended_unreadable",
                "%s/%s could not be read (%s): suspensions from before the start are lost", ss->dir,
                SUSPENDED_FILE, uv_strerror(status));
    } else if (ss->file.len >= magic && memcmp(ss->file.data, FILE_MAGIC, magic) == 0) {
        int64_t now = wall_ms();
        char *p = ss->file.data + magic, *end = ss->file.data + ss->file.len;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL || nl - p > LINE_MAX_LEN)
                break; /* a torn or foreign last line */
            *nl = '\0';
            load_line(ss, p, now);
            p = nl + 1;
        }
    }
    buf_free(&ss->file);
    ss->loaded = 1;
    if (ss->dirty)
        suspended_save(ss);
    suspended_settle(ss);
}

/* ---- writing after each change ---- */

static void save_work(uv_work_t *req)
{
    struct sched_suspended *ss = req->data;
    ss->io_status = file_replace(ss->dir, SUSPENDED_FILE, ss->file.data, ss->file.len);
}

struct save_walk {
    struct buf *file;
    int64_t now;
};

static void save_line(const char *key, void *value, void *arg)
{
    struct save_walk *sw = arg;
    int64_t until = *(int64_t *)value;
    if (until != RESUMED && strncmp(key, HOLD_PREFIX, strlen(HOLD_PREFIX)) == 0)
        buf_printf(sw->file, "%s\n", key);
    else if (until != RESUMED && until > sw->now)
        buf_printf(sw->file, "%s %lld\n", key, until == INT64_MAX ? 0LL : (long long)until);
}

static void save_done(uv_work_t *req, int status)
{
    struct sched_suspended *ss = req->data;
    ss->saving = 0;
    if (status == 0 && ss->io_status < 0)
        status = ss->io_status;
    if (status < 0)
        log_msg(LOG_ERROR, "delivery.suspended_unsaved",
                "%s/%s could not be written (%s): a restart may lose a suspension or its lifting",
                ss->dir, SUSPENDED_FILE, uv_strerror(status));
    buf_free(&ss->file);
    if (ss->dirty)
        suspended_save(ss);
    suspended_settle(ss);
}

/* Writes the suspensions now or, with a write in flight or the file not read yet, after that. */
static void suspended_save(struct sched_suspended *ss)
{
    ss->dirty = 1;
    if (ss->saving || !ss->loaded)
        return;
    ss->dirty = 0;
    ss->saving = 1;
    ss->io_status = 0;
    buf_append_str(&ss->file, FILE_MAGIC);
    struct save_walk sw = {&ss->file, wall_ms()};
    strmap_each(&ss->until, save_line, &sw);
    int rc = uv_queue_work(ss->loop, &ss->save_req, save_work, save_done);
    if (rc < 0)
        save_done(&ss->save_req, rc);
}

/* ---- the scheduler's side ---- */

struct sched_suspended *sched_suspended_open(struct scheduler *s, const char *spool_dir)
{
    struct sched_suspended *ss = xcalloc(1, sizeof *ss);
    ss->loop = s->loop;
    ss->s = s;
    ss->dir = xstrdup(spool_dir);
    ss->until = (struct strmap)STRMAP_INIT;
    ss->load_req.data = ss->save_req.data = ss;
    int rc = uv_queue_work(s->loop, &ss->load_req, load_work, load_done);
    if (rc < 0)
        load_done(&ss->load_req, rc);
    return ss;
}

void sched_suspended_note(struct sched_suspended *ss, const char *name, uint64_t for_ms)
{
    set_until(ss, name, for_ms > 0 ? wall_ms() + (int64_t)for_ms : INT64_MAX);
    suspended_save(ss);
}

void sched_suspended_forget(struct sched_suspended *ss, const char *name)
{
    set_until(ss, name, RESUMED);
    suspended_save(ss);
}

void sched_suspended_hold(struct sched_suspended *ss, const char *tenant, const char *campaign,
                          int hold)
{
    struct buf key = BUF_INIT;
    buf_printf(&key, HOLD_PREFIX "%s%s%s", tenant, campaign[0] != '\0' ? " " : "", campaign);
    set_until(ss, key.data, hold ? INT64_MAX : RESUMED);
    buf_free(&key);
    suspended_save(ss);
}

void sched_suspended_close(struct sched_suspended *ss)
{
    ss->s = NULL;
    suspended_settle(ss);
}
