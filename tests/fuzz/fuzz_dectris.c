/* fuzz_dectris.c — libFuzzer harness for the DECTRIS stream v1 and v2
 * parsers (include/weir/dectris.h).
 *
 * Byte 0 picks the path. Even: the rest is one stream v2 CBOR message,
 * parsed with decoding on. Odd: the rest is split into 1 + (b0 >> 1) % 9
 * parts (a v1 multipart message): first the 16-bit little-endian lengths
 * of every part but the last (clamped to what is left), then the parts,
 * each copied into its own buffer so ASan sees any over-read; parsed with
 * decoding on. Decoded
 * output is capped at 64 MiB per message. Broken promises trap:
 *  - a failed parse leaves the packet empty and says why;
 *  - every decoded channel is a C-contiguous (or, for v2 tag 1040,
 *    column-major) array inside its buffer, of the byte size its shape and
 *    dtype give; v1 uncompressed images are zero-copy views of part 2;
 *  - auxiliary arrays either decode to such an array or fail with a message.
 * Every element is touched through the generic accessor. */
#include "weir/dectris.h"
#include "weir/error.h"
#include "weir/message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP ((size_t)64 << 20)

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

static void check_array(const weir_array *a)
{
    if (!a->buf) __builtin_trap();
    size_t nb = weir_array_nbytes(a);
    if (a->data < weir_buf_data(a->buf) ||
        a->data + nb > weir_buf_data(a->buf) + weir_buf_size(a->buf))
        __builtin_trap();
    volatile double s = weir_array_sum_f64(a); /* reads every element */
    (void)s;
}

static void check_packet(const weir_dectris_packet *p, const weir_msg *m)
{
    if (p->kind < WEIR_DECTRIS_START || p->kind > WEIR_DECTRIS_END) __builtin_trap();
    for (size_t i = 0; i < p->nchannels; i++) {
        const weir_dectris_channel *c = &p->channels[i];
        if (!c->name || !c->raw) __builtin_trap();
        check_array(&c->data);
        if (!c->fortran && !weir_array_is_contiguous(&c->data)) __builtin_trap();
        if (m && c->encoding == WEIR_DECTRIS_ENC_NONE &&
            (c->data.data != weir_buf_data(m->parts[2]) ||
             weir_array_nbytes(&c->data) != weir_buf_size(m->parts[2])))
            __builtin_trap();
    }
    for (size_t i = 0; i < p->naux; i++) {
        weir_array a;
        char err[256] = "";
        int rc = weir_dectris_aux(p, p->aux[i].name, &a, err, sizeof err);
        if (rc) {
            if (rc > 0 || !err[0] || a.buf) __builtin_trap();
            continue;
        }
        check_array(&a);
        weir_array_release(&a);
    }
    double f;
    int64_t v;
    const char *s;
    weir_dectris_get_f64(p, "config.count_time", &f);
    weir_dectris_get_i64(p, "dconfig.real_time", &v);
    weir_dectris_get_str(p, "series_unique_id", &s);
    (void)weir_dectris_num_frames(p);
    char *js = weir_dectris_json(p);
    free(js);
}

static void trap_unless_empty(int rc, const weir_dectris_packet *p, const char *err)
{
    if (rc > 0 || p->json_ || p->cbor_ || p->channels || p->aux || p->appendix || p->nchannels)
        __builtin_trap();
    if (!err[0]) __builtin_trap(); /* every failure says why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    weir_dectris_packet pk;
    char err[512] = "";
    if (!(data[0] & 1)) {
        /* a copy of exactly the message bytes, so ASan catches over-reads */
        uint8_t *msg = malloc(size - 1 ? size - 1 : 1);
        if (!msg) return 0;
        memcpy(msg, data + 1, size - 1);
        int rc = weir_dectris_v2_parse_ex(msg, size - 1, 1, CAP, &pk, err, sizeof err);
        free(msg); /* the packet must not refer to the input */
        if (rc) {
            trap_unless_empty(rc, &pk, err);
            return 0;
        }
        check_packet(&pk, NULL);
        weir_dectris_clear(&pk);
        return 0;
    }

    size_t nparts = 1 + (size_t)(data[0] >> 1) % 9;
    const uint8_t *p = data + 1;
    size_t left = size - 1, lens[9];
    for (size_t i = 0; i + 1 < nparts; i++)
        lens[i] = read_len(&p, &left);
    weir_msg m;
    weir_msg_init(&m);
    for (size_t i = 0; i < nparts; i++) {
        size_t n = i + 1 < nparts ? lens[i] : left;
        if (n > left) n = left;
        weir_buf *b = weir_buf_copy(p, n);
        if (!b || weir_msg_append(&m, b)) goto out;
        p += n;
        left -= n;
    }
    int rc = weir_dectris_v1_parse_ex(&m, 1, CAP, &pk, err, sizeof err);
    if (rc) {
        trap_unless_empty(rc, &pk, err);
        goto out;
    }
    check_packet(&pk, pk.kind == WEIR_DECTRIS_IMAGE ? &m : NULL);
    weir_dectris_clear(&pk);
out:
    weir_msg_clear(&m);
    return 0;
}
