/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cbor.h>
#include <math.h>

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

/* ROI means of every image of dump_xrd.cbors by event number, from the raw
 * bytes: 55799(42877([n, {"xrd": 42878(["STINS", [json, px]])}])), 10x10
 * little-endian uint16 frames. */
int tu_xrd_roi_means(double *means, int till_x, int from_y)
{
    size_t len;
    uint8_t *buf = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &len);
    size_t off = 0;
    int images = 0;
    while (off < len) {
        struct cbor_load_result r;
        cbor_item_t *it = cbor_load(buf + off, len - off, &r);
        assert_non_null(it);
        off += r.read;
        cbor_item_t *t = it;
        while (cbor_isa_tag(t)) {
            cbor_item_t *in = cbor_tag_item(t);
            if (t != it) cbor_decref(&t);
            t = in;
        }
        uint64_t n = cbor_get_int(cbor_array_handle(t)[0]);
        cbor_item_t *streams = cbor_array_handle(t)[1];
        cbor_item_t *sd = cbor_tag_item(cbor_map_handle(streams)[0].value);
        cbor_item_t *frames = cbor_array_handle(sd)[1];
        if (cbor_array_size(frames) == 2) {
            const uint8_t *px = cbor_bytestring_handle(cbor_array_handle(frames)[1]);
            assert_int_equal(cbor_bytestring_length(cbor_array_handle(frames)[1]), 200);
            double s = 0;
            int cnt = 0;
            for (int row = 0; row < till_x && row < 10; row++)
                for (int col = from_y; col < 10; col++) {
                    s += px[2 * (row * 10 + col)] | (px[2 * (row * 10 + col) + 1] << 8);
                    cnt++;
                }
            means[n] = cnt ? s / cnt : NAN;
            images++;
        }
        cbor_decref(&sd);
        cbor_decref(&t);
        cbor_decref(&it);
    }
    free(buf);
    return images;
}
