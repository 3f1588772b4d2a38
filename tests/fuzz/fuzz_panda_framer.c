/* fuzz_panda_framer.c — the PandA TCP byte-stream framer. The first byte
 * picks a piece size; the rest is fed once in those pieces and once at
 * once, and the two must give the same packets and the same final result
 * (the framer is resumable at any byte). */
#include "weir/beamline.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *bytes; /* packets back to back */
    size_t n, count;
    int rc;
} run;

static void collect(weir_panda_framer *f, run *r)
{
    char err[256];
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int rc = weir_panda_framer_next(f, &m, err, sizeof err);
        if (rc == 1) {
            size_t k = weir_buf_size(m.parts[0]);
            uint8_t *b = realloc(r->bytes, r->n + k + 1);
            if (!b) abort();
            memcpy(b + r->n, weir_buf_data(m.parts[0]), k);
            r->bytes = b;
            r->n += k;
            r->count++;
        }
        weir_msg_clear(&m);
        if (rc != 1) {
            r->rc = rc;
            return;
        }
    }
}

static run feed(const uint8_t *d, size_t n, size_t piece)
{
    run r = {0};
    weir_panda_framer *f;
    if (weir_panda_framer_new(&f)) abort();
    for (size_t pos = 0; pos < n && r.rc == 0; pos += piece) {
        size_t k = n - pos < piece ? n - pos : piece;
        weir_panda_framer_feed(f, d + pos, k);
        collect(f, &r);
    }
    weir_panda_framer_free(f);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t piece = 1 + data[0] % 64;
    run a = feed(data + 1, size - 1, piece), b = feed(data + 1, size - 1, size);
    if (a.count != b.count || a.n != b.n || a.rc != b.rc || (a.n && memcmp(a.bytes, b.bytes, a.n)))
        abort();
    free(a.bytes);
    free(b.bytes);
    return 0;
}
