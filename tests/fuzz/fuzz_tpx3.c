/* fuzz_tpx3.c — libFuzzer harness for the ASI TPX3 stream (src/formats/tpx3.c).
 *
 * The input is a TPX3 byte stream. It goes to the header decoder (an
 * accepted header must re-encode to the same 32 bytes), to two framers —
 * one fed at once, one in pieces whose sizes come from the input — which
 * must deliver the same messages and errors, and to the recorded-stream
 * reader. Every message the framer delivers has been validated, so parsing
 * it again, classifying it and making every row dense (float64 cannot
 * overflow) must succeed; errors must come with a message. */
#include "weir/error.h"
#include "weir/tpx3.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 512

static void check_err(int rc, const char *err)
{
    if (rc >= 0 || !err[0]) abort();
}

static void check_msg(const weir_msg *m)
{
    char err[256] = "";
    weir_stins_kind kind;
    int64_t frame;
    if (weir_tpx3_classify(m, &kind, &frame, err, sizeof err) != 0) abort();
    weir_tpx3_packet p;
    if (weir_tpx3_packet_parse(m, 1, &p, err, sizeof err) != 0) abort();
    if (p.kind == WEIR_TPX3_MSG_IMAGE) {
        if (kind != WEIR_STINS_IMAGE || frame != (int64_t)p.first_frame) abort();
        size_t npix = p.chunk.npixels;
        if (npix > (1u << 16)) { /* a 65535 x 65535 signal is legal, but not for the fuzzer's RAM */
            weir_tpx3_packet_clear(&p);
            return;
        }
        double *acc = calloc(npix, sizeof *acc);
        if (!acc) abort();
        double total = 0;
        for (uint32_t r = p.row0; r < p.row0 + p.nrows; r++) {
            weir_array d;
            if (weir_tpx3_chunk_dense(&p.chunk, r, WEIR_DT_F64, &d, err, sizeof err) != 0) abort();
            total += weir_array_sum_f64(&d);
            weir_array_release(&d);
        }
        if (weir_tpx3_chunk_add_f64(&p.chunk, p.row0, p.nrows, acc, err, sizeof err) != 0) abort();
        double s = 0;
        for (size_t i = 0; i < npix; i++)
            s += acc[i];
        (void)s; /* the order of additions differs: no exact comparison */
        (void)total;
        free(acc);
    } else if (kind == WEIR_STINS_IMAGE || frame != -1) {
        abort();
    }
    weir_tpx3_packet_clear(&p);
}

/* Runs a framer over the input; records the outcome of every next(). */
static size_t run_framer(const uint8_t *d, size_t size, const uint8_t *pieces, size_t npieces,
                         uint32_t per, int *codes, weir_msg *msgs)
{
    weir_tpx3_framer_opts o = {.frames_per_msg = per, .max_payload = 1 << 20};
    weir_tpx3_framer *f;
    char err[256];
    size_t n = 0, pos = 0, k = 0;
    if (weir_tpx3_framer_new(&o, &f) != 0) abort();
    while (pos < size || k == 0) {
        size_t len = npieces ? 1 + pieces[k % npieces] % 64 : size - pos;
        if (len > size - pos) len = size - pos;
        k++;
        if (weir_tpx3_framer_feed(f, d + pos, len) != 0) abort();
        pos += len;
        for (;;) {
            weir_msg m;
            weir_msg_init(&m);
            err[0] = 0;
            int rc = weir_tpx3_framer_next(f, &m, err, sizeof err);
            if (rc == WEIR_ETRUNCATED) break;
            check_err(rc == 0 ? -1 : rc, rc == 0 ? "ok" : err);
            if (n < MAX_MSGS) {
                codes[n] = rc;
                msgs[n] = m;
                n++;
            } else {
                weir_msg_clear(&m);
            }
            if (rc && weir_tpx3_framer_broken(f)) break;
        }
        if (weir_tpx3_framer_broken(f)) break;
        if (!size) break;
    }
    weir_tpx3_framer_free(f);
    return n;
}

static void fuzz_framers(const uint8_t *d, size_t size)
{
    static const uint32_t pers[] = {1, 3, WEIR_TPX3_WHOLE_CHUNKS};
    uint32_t per = size ? pers[d[size - 1] % 3] : 1;
    int *ca = calloc(MAX_MSGS, sizeof *ca), *cb = calloc(MAX_MSGS, sizeof *cb);
    weir_msg *ma = calloc(MAX_MSGS, sizeof *ma), *mb = calloc(MAX_MSGS, sizeof *mb);
    if (!ca || !cb || !ma || !mb) abort();
    size_t na = run_framer(d, size, NULL, 0, per, ca, ma);
    size_t nb = run_framer(d, size, d, size < 16 ? size : 16, per, cb, mb);
    if (na != nb) abort();
    for (size_t i = 0; i < na; i++) {
        if (ca[i] != cb[i] || ma[i].nparts != mb[i].nparts) abort();
        for (size_t j = 0; j < ma[i].nparts; j++) {
            size_t l = weir_buf_size(ma[i].parts[j]);
            if (l != weir_buf_size(mb[i].parts[j]) ||
                memcmp(weir_buf_data(ma[i].parts[j]), weir_buf_data(mb[i].parts[j]), l))
                abort();
        }
        if (!ca[i]) check_msg(&ma[i]);
        weir_msg_clear(&ma[i]);
        weir_msg_clear(&mb[i]);
    }
    free(ca);
    free(cb);
    free(ma);
    free(mb);
}

static void fuzz_header(const uint8_t *d, size_t size)
{
    char err[256] = "";
    weir_tpx3_header h;
    int rc = weir_tpx3_header_decode(d, size, &h, err, sizeof err);
    if (rc) {
        check_err(rc, err);
        return;
    }
    uint8_t out[WEIR_TPX3_HEADER_SIZE];
    if (weir_tpx3_header_encode(&h, out) != 0 || memcmp(out, d, WEIR_TPX3_HEADER_SIZE)) abort();
}

static void fuzz_reader(weir_buf *buf)
{
    char err[256];
    weir_tpx3_reader *r;
    if (weir_tpx3_reader_new(buf, NULL, &r) != 0) abort();
    size_t pos = 0;
    for (int k = 0; k < 256; k++) {
        weir_tpx3_item it;
        int eof;
        err[0] = 0;
        int rc = weir_tpx3_reader_next(r, 1, &it, &eof, err, sizeof err);
        if (rc) {
            check_err(rc, err);
            break;
        }
        if (eof) {
            if (pos != weir_buf_size(buf)) abort();
            break;
        }
        if (it.offset != pos || it.size < WEIR_TPX3_HEADER_SIZE ||
            it.size > weir_buf_size(buf) - pos || weir_buf_size(it.wire) != it.size)
            abort();
        pos += it.size;
        weir_tpx3_item_clear(&it);
    }
    weir_tpx3_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so ASan sees any over-read */
    weir_buf *b = weir_buf_copy(data, size);
    if (!b) return 0;
    const uint8_t *d = weir_buf_data(b);
    fuzz_header(d, size);
    fuzz_framers(d, size);
    fuzz_reader(b);
    weir_buf_unref(b);
    return 0;
}
