/* lib/loop_watch: a busy loop, whose turns follow each other without a wait, pays no read of
 * /proc/thread-self/schedstat per turn. Counted by the kernel: the read system calls of the loop's
 * thread (syscr of /proc/thread-self/io) over TURNS turns kept busy by an idle handle. */
#include "lib/loop_watch.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define TURNS 20000

/* The read system calls of this thread so far, or -1 when the kernel does not count them. */
static long long thread_reads(void)
{
    char text[512];
    int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    const char *at = strstr(text, "syscr: ");
    return at != NULL ? atoll(at + 7) : -1;
}

static void on_idle(uv_idle_t *h)
{
    unsigned *turns = h->data;
    if (++*turns == TURNS)
        uv_idle_stop(h);
}

static void busy_turns_read_nothing(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct loop_watch *w = loop_watch_start(&loop);
    unsigned turns = 0;
    uv_idle_t idle;
    uv_idle_init(&loop, &idle);
    idle.data = &turns;
    long long before = thread_reads();
    uv_idle_start(&idle, on_idle);
    uv_run(&loop, UV_RUN_DEFAULT);
    long long after = thread_reads();
    CHECK_INT_EQ(turns, TURNS);
    if (before < 0 || after < 0) {
        printf("no syscr in /proc/thread-self/io: the reads are not counted\n");
    } else {
        /* A turn kept off the CPU (a loaded machine) may read once; most are not. */
        printf("%lld reads in %d busy turns\n", after - before, TURNS);
        CHECK(after - before < TURNS / 20);
    }
    uv_close((uv_handle_t *)&idle, NULL);
    loop_watch_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    busy_turns_read_nothing();
    return check_report("test_loop_watch");
}
