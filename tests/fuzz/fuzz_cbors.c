/* fuzz_cbors.c — libFuzzer harness for the .cbors reader and encoders.
 *
 * Feeds arbitrary bytes to weir_cbors_open_buf (gzip-looking input goes
 * through the inflater too) and walks every item the reader accepts. Each
 * accepted event or raw message is re-encoded with weir's writer and read
 * back, and the two must agree: the reader and the writer are inverse on
 * everything the reader lets through. Any disagreement traps. */
#include "weir/cbors.h"
#include "weir/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 4096

static int same_msg(const weir_msg *a, const weir_msg *b)
{
    if (a->nparts != b->nparts) return 0;
    for (size_t i = 0; i < a->nparts; i++) {
        size_t n = weir_buf_size(a->parts[i]);
        if (n != weir_buf_size(b->parts[i])) return 0;
        if (n && memcmp(weir_buf_data(a->parts[i]), weir_buf_data(b->parts[i]), n)) return 0;
    }
    return 1;
}

static int same_event(const weir_event *a, const weir_event *b)
{
    if (a->number != b->number || a->nstreams != b->nstreams) return 0;
    if (!a->created_at != !b->created_at) return 0;
    if (a->created_at && strcmp(a->created_at, b->created_at)) return 0;
    for (size_t i = 0; i < a->nstreams; i++) {
        if (strcmp(a->streams[i].name, b->streams[i].name)) return 0;
        if (strcmp(a->streams[i].typ, b->streams[i].typ)) return 0;
        if (!same_msg(&a->streams[i].msg, &b->streams[i].msg)) return 0;
    }
    return 1;
}

static weir_cbors_reader *reopen(uint8_t *enc, size_t len)
{
    weir_cbors_reader *r = NULL;
    weir_buf *b = weir_buf_copy(enc, len);
    if (!b) return NULL;
    if (weir_cbors_open_buf(b, "re-encoded", &r, NULL, 0)) __builtin_trap();
    weir_buf_unref(b);
    return r;
}

static void check_event(const weir_event *ev)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    if (weir_cbors_encode_event(ev, ev->created_at, &enc, &len)) return; /* OOM only */
    weir_cbors_reader *r = reopen(enc, len);
    if (r) {
        weir_event *back = NULL;
        if (weir_cbors_next_event(r, &back) || !back || !same_event(ev, back)) __builtin_trap();
        weir_event_free(back);
        if (weir_cbors_next_event(r, &back) || back) __builtin_trap(); /* exactly one item */
        weir_cbors_close(r);
    }
    free(enc);
}

static void check_raw(const weir_msg *m)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    if (weir_cbors_encode_raw(m, &enc, &len)) return;
    weir_cbors_reader *r = reopen(enc, len);
    if (r) {
        weir_msg back;
        weir_msg_init(&back);
        int eof = 0;
        if (weir_cbors_next_raw(r, &back, &eof) || eof || !same_msg(m, &back)) __builtin_trap();
        weir_msg_clear(&back);
        weir_cbors_close(r);
    }
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_buf *b = weir_buf_copy(data, size);
    if (!b) return 0;
    weir_cbors_reader *r = NULL;
    char err[256];
    int rc = weir_cbors_open_buf(b, "fuzz.cbors", &r, err, sizeof err);
    weir_buf_unref(b);
    if (rc) {
        if (r || !err[0]) __builtin_trap(); /* failures always explain themselves */
        return 0;
    }
    for (int i = 0; i < MAX_ITEMS; i++) {
        if (weir_cbors_kind_of(r) == WEIR_CBORS_RAW) {
            weir_msg m;
            weir_msg_init(&m);
            int eof = 0;
            rc = weir_cbors_next_raw(r, &m, &eof);
            if (rc || eof) break;
            check_raw(&m);
            weir_msg_clear(&m);
        } else {
            weir_event *ev = NULL;
            rc = weir_cbors_next_event(r, &ev);
            if (rc || !ev) break;
            check_event(ev);
            weir_event_free(ev);
        }
    }
    if (rc && !weir_cbors_error(r)[0]) __builtin_trap();
    weir_cbors_close(r);
    return 0;
}
