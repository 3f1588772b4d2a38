/* cbor_guard.c — declared-size sanity check for CBOR from outside (see
 * cbor_guard.h). One pass of cbor_stream_decode with callbacks that only
 * look at container heads; nothing is allocated. */
#include "cbor_guard.h"

#include "weir/error.h"

#include <cbor.h>
#include <string.h>

typedef struct {
    size_t remaining; /* bytes after the current head */
    int bad;
} guard;

static void on_array(void *ctx, size_t n)
{
    guard *g = ctx;
    if (n > g->remaining) g->bad = 1;
}

static void on_map(void *ctx, size_t n)
{
    guard *g = ctx;
    if (n > g->remaining / 2) g->bad = 1;
}

int weir_cbor_guard(const uint8_t *data, size_t len, size_t *bad_offset)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    cb.array_start = on_array;
    cb.map_start = on_map;
    size_t off = 0;
    while (off < len) {
        guard g = {0, 0};
        /* The head's own length is not known before decoding it; the check
         * uses the bytes after the head, computed from what was read. */
        g.remaining = len - off;
        struct cbor_decoder_result r = cbor_stream_decode(data + off, len - off, &cb, &g);
        if (r.status == CBOR_DECODER_NEDATA) {
            *bad_offset = off;
            return WEIR_ETRUNCATED;
        }
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            *bad_offset = off;
            return WEIR_ECBOR;
        }
        if (g.bad) {
            *bad_offset = off;
            return WEIR_ECBOR;
        }
        off += r.read;
    }
    return WEIR_OK;
}
