/* fuzz_merlin_ctl.c — libFuzzer harness for the Merlin control-port parser
 * and server (src/io/merlin_ctl.c).
 *
 * The same bytes are read as a stream of requests and as a stream of
 * replies. Each parse must refuse with a message or stay inside the input;
 * an accepted message is formatted again and must parse back to the same
 * fields; every accepted request is answered by a fresh server (no socket,
 * no callbacks) whose reply must itself parse as a reply to that request. */
#include "weir/error.h"
#include "weir/merlin_ctl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const char *err)
{
    if (rc == WEIR_ETRUNCATED) return; /* "need more" carries no message */
    if (rc >= 0 || !err[0]) abort();
}

static void round_trip(const weir_merlin_ctl_msg *m, int reply)
{
    char out[WEIR_MERLIN_CTL_MAX_PAYLOAD + 64];
    int n = reply ? weir_merlin_ctl_format_reply(out, sizeof out, m->type, m->name,
                                                 m->has_value ? m->value : NULL, m->rc)
                  : weir_merlin_ctl_format_request(out, sizeof out, m->type, m->name,
                                                   m->has_value ? m->value : NULL);
    if (n < 0) return; /* names with control characters, too long: refused, fine */
    weir_merlin_ctl_msg *b = malloc(sizeof *b);
    if (!b) return;
    size_t used = 0;
    char err[256] = "";
    int rc = reply ? weir_merlin_ctl_parse_reply((const uint8_t *)out, (size_t)n, b, &used, err,
                                                 sizeof err)
                   : weir_merlin_ctl_parse_request((const uint8_t *)out, (size_t)n, b, &used, err,
                                                   sizeof err);
    if (rc || used != (size_t)n || b->type != m->type || strcmp(b->name, m->name)) abort();
    if (!reply && (b->has_value != m->has_value || strcmp(b->value, m->value))) abort();
    if (reply && b->rc != m->rc) abort();
    if (reply && m->type == WEIR_MERLIN_CTL_GET && strcmp(b->value, m->has_value ? m->value : ""))
        abort();
    free(b);
}

static void answer(const weir_merlin_ctl_msg *req)
{
    weir_merlin_ctl_server *s;
    if (weir_merlin_ctl_server_new(NULL, &s)) return;
    char out[WEIR_MERLIN_CTL_MAX_PAYLOAD + 64];
    int n = weir_merlin_ctl_server_handle(s, req, out, sizeof out);
    if (n >= 0) {
        weir_merlin_ctl_msg *r = malloc(sizeof *r);
        size_t used;
        char err[256] = "";
        if (r && (weir_merlin_ctl_parse_reply((const uint8_t *)out, (size_t)n, r, &used, err,
                                              sizeof err) ||
                  r->type != req->type || strcasecmp(r->name, req->name) || r->rc < 0 || r->rc > 3))
            abort();
        free(r);
    }
    weir_merlin_ctl_server_free(s);
}

static void scan(const uint8_t *d, size_t size, int reply)
{
    size_t pos = 0;
    weir_merlin_ctl_msg *m = malloc(sizeof *m);
    if (!m) return;
    for (int k = 0; k < 16 && pos < size; k++) {
        size_t used = 0;
        char err[256] = "";
        int rc =
            reply ? weir_merlin_ctl_parse_reply(d + pos, size - pos, m, &used, err, sizeof err)
                  : weir_merlin_ctl_parse_request(d + pos, size - pos, m, &used, err, sizeof err);
        if (rc) {
            check_err(rc, err);
            break;
        }
        if (used == 0 || used > size - pos) abort();
        if (strlen(m->name) == 0 || strlen(m->name) >= WEIR_MERLIN_CTL_NAME_MAX) abort();
        round_trip(m, reply);
        if (!reply) answer(m);
        pos += used;
    }
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so ASan sees any over-read */
    uint8_t *d = malloc(size ? size : 1);
    if (!d) return 0;
    memcpy(d, data, size);
    scan(d, size, 0);
    scan(d, size, 1);
    free(d);
    return 0;
}
