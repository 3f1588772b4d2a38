/* fuzz_stins.c — libFuzzer harness for the STINS parser.
 *
 * Input framing (so seeds stay readable): byte 0 picks the number of frames,
 * 1 + b0 % 3; then for every frame but the last a 16-bit little-endian
 * length (clamped to what is left); the remaining bytes form the last frame.
 * The frames are copied into their own buffers (so ASan sees any over-read
 * past a frame), parsed with decode = 1, and the result is checked against
 * the parser's own promises; any broken promise traps:
 *  - a failed parse leaves the packet empty;
 *  - an image holds a C-contiguous array whose byte size is what its shape
 *    and dtype say, an uncompressed one as a zero-copy view of frame 1;
 *  - a header hands back every extra frame. */
#include "weir/error.h"
#include "weir/message.h"
#include "weir/stins.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t read_len(const uint8_t **p, size_t *left)
{
    if (*left < 2) {
        *left = 0;
        return 0;
    }
    size_t n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    *p += 2;
    *left -= 2;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t nframes = 1 + data[0] % 3;
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    size_t lens[3];
    for (size_t i = 0; i + 1 < nframes; i++)
        lens[i] = read_len(&p, &left);
    weir_msg m;
    weir_msg_init(&m);
    for (size_t i = 0; i < nframes; i++) {
        size_t n = i + 1 < nframes ? lens[i] : left;
        if (n > left) n = left;
        weir_buf *b = weir_buf_copy(p, n);
        if (!b || weir_msg_append(&m, b)) goto out;
        p += n;
        left -= n;
    }

    weir_stins_packet pk;
    char err[256];
    int rc = weir_stins_parse(&m, 1, &pk, err, sizeof err);
    if (rc) {
        if (rc > 0 || pk.json_ || pk.raw || pk.data.buf || pk.extra || pk.filename)
            __builtin_trap();
        if (!err[0]) __builtin_trap(); /* every failure says why */
        goto out;
    }
    if (pk.kind == WEIR_STINS_IMAGE) {
        if (m.nparts != 2 || pk.raw != m.parts[1] || !pk.data.buf) __builtin_trap();
        if (!weir_array_is_contiguous(&pk.data)) __builtin_trap();
        size_t nb = weir_array_nbytes(&pk.data);
        if (pk.data.data + nb > weir_buf_data(pk.data.buf) + weir_buf_size(pk.data.buf))
            __builtin_trap();
        if (pk.compression == WEIR_STINS_COMP_NONE &&
            (pk.data.data != weir_buf_data(m.parts[1]) || nb != weir_buf_size(m.parts[1])))
            __builtin_trap();
        /* touch every element through the generic accessor */
        volatile double s = weir_array_sum_f64(&pk.data);
        (void)s;
    } else if (pk.kind == WEIR_STINS_HEADER) {
        if (pk.nextra != m.nparts - 1) __builtin_trap();
        for (size_t i = 0; i < pk.nextra; i++)
            if (pk.extra[i] != m.parts[i + 1]) __builtin_trap();
    } else if (pk.kind == WEIR_STINS_SERIES_END) {
        if (m.nparts != 1) __builtin_trap();
    } else {
        __builtin_trap();
    }
    double f;
    const char *str;
    weir_stins_get_f64(&pk, "exposure_time", &f);
    weir_stins_get_str(&pk, "filename", &str);
    char *js = weir_stins_json(&pk);
    free(js);
    weir_stins_clear(&pk);
out:
    weir_msg_clear(&m);
    return 0;
}
