/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char slots[8][4096];
static int slot;

static char *next_slot(void)
{
    char *s = slots[slot];
    slot = (slot + 1) % 8;
    return s;
}

const char *tu_shared(const char *rel)
{
    char *s = next_slot();
    snprintf(s, 4096, "%s/%s", WEIR_SHARED_DATA, rel);
    if (access(s, R_OK) != 0) {
        fprintf(stderr,
                "shared data file missing: %s\n"
                "The tests need ../shared/data beside the checkout (see README).\n",
                s);
        fail_msg("missing shared data: %s", s);
    }
    return s;
}

static char dirs[16][4096];
static int dir_slot;

const char *tu_tmpdir(const char *name)
{
    /* a ring of its own, so paths from tu_build/tu_shared never overwrite it */
    char *s = dirs[dir_slot];
    dir_slot = (dir_slot + 1) % 16;
    snprintf(s, 4096, "%s/test-tmp/%s-%d", WEIR_BUILD_DIR, name, (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", s, s);
    if (system(cmd) != 0) fail_msg("cannot create %s", s);
    return s;
}

const char *tu_build(const char *rel)
{
    char *s = next_slot();
    snprintf(s, 4096, "%s/%s", WEIR_BUILD_DIR, rel);
    return s;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    fclose(f);
    p[n] = 0; /* usable as a string too */
    *len = (size_t)n;
    return p;
}

static char out_path[4200];

int tu_run(const char *dir, const char *fmt, ...)
{
    char cmd[8192], full[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    snprintf(full, sizeof full, "cd '%s' && export LOG_LEVEL=WARNING && ( %s ) > out.txt 2>&1", dir,
             cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *tu_output(void)
{
    size_t len;
    uint8_t *p = tu_read_file(out_path, &len);
    p[len] = 0;
    return (char *)p;
}

const char *tu_write(const char *dir, const char *name, const char *text)
{
    char *s = next_slot();
    snprintf(s, 4096, "%s/%s", dir, name);
    FILE *f = fopen(s, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) fail_msg("cannot write %s", s);
    return s;
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot find a free TCP port");
    close(fd);
    return ntohs(a.sin_port);
}
