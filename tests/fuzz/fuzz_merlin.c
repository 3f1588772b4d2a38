/* fuzz_merlin.c — libFuzzer harness for the Merlin format (src/formats/merlin.c).
 *
 * The same bytes go to the HDR parser, the MQ1 frame parser and decoder,
 * the MPX splitter and the file/stream reader. Each must either refuse with
 * a negative code and a message, or give results that stay inside the
 * input (ASan checks the reads). Accepted frames are re-encoded and decoded
 * again: the pixels must come back unchanged (raw values the counter depth
 * cannot hold may be refused with WEIR_ERANGE, nothing else). */
#include "weir/error.h"
#include "weir/merlin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const char *err)
{
    if (rc >= 0 || !err[0]) abort();
}

static uint64_t elem(const weir_array *a, size_t i)
{
    size_t isz = weir_dtype_size(a->dtype.kind);
    const uint8_t *p = a->data + i * isz; /* decoded arrays are C-contiguous */
    uint64_t v = 0;
    int big = a->dtype.order == WEIR_BIG;
    for (size_t b = 0; b < isz; b++)
        v |= (uint64_t)p[big ? isz - 1 - b : b] << (8 * b);
    return v;
}

static void fuzz_acq(const uint8_t *d, size_t size)
{
    char err[256] = "";
    weir_merlin_acq a;
    int rc = weir_merlin_acq_parse(d, size, &a, err, sizeof err);
    if (rc) {
        check_err(rc, err);
        return;
    }
    const char *v;
    size_t vl;
    if (weir_merlin_acq_get(&a, "Frames in Acquisition (Number)", &v, &vl) != 0) abort();
    if (v < a.text || v + vl > a.text + a.text_len) abort();
    weir_buf *enc;
    if (weir_merlin_acq_encode(&a, 1, &enc) != 0) abort();
    weir_merlin_mpx m;
    if (weir_merlin_mpx_split(weir_buf_data(enc), weir_buf_size(enc), &m, err, sizeof err) != 0 ||
        m.kind != WEIR_MERLIN_MSG_HDR)
        abort();
    weir_merlin_acq b;
    if (weir_merlin_acq_parse(weir_buf_data(enc) + m.payload_off, m.payload_len, &b, err,
                              sizeof err) != 0)
        abort();
    if (b.frames_in_acquisition != a.frames_in_acquisition ||
        b.frames_per_trigger != a.frames_per_trigger || b.counter_depth != a.counter_depth ||
        b.has_scan != a.has_scan || b.has_layout != a.has_layout)
        abort();
    weir_merlin_acq_clear(&b);
    weir_buf_unref(enc);
    weir_merlin_acq_clear(&a);
}

static void fuzz_frame(weir_buf *buf)
{
    char err[256] = "";
    const uint8_t *d = weir_buf_data(buf);
    size_t size = weir_buf_size(buf);
    weir_merlin_frame_header h;
    int rc = weir_merlin_frame_parse(d, size, &h, err, sizeof err);
    if (rc) {
        check_err(rc, err);
        return;
    }
    if (h.data_offset > size) abort();
    weir_array a;
    err[0] = 0;
    rc = weir_merlin_decode(buf, 0, &h, &a, err, sizeof err);
    if (rc) {
        /* the header was accepted: only missing pixels can stop the decoder */
        if (rc != WEIR_ETRUNCATED) abort();
        check_err(rc, err);
        return;
    }
    size_t n = a.shape[0] * a.shape[1];
    if (n * weir_dtype_size(a.dtype.kind) != weir_array_nbytes(&a)) abort();
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += elem(&a, i);
    (void)sum;

    weir_merlin_frame_header h2 = h;
    h2.data_offset = 0; /* the re-written text may be longer than the original */
    if (h2.ndac_blocks > WEIR_MERLIN_MAX_DAC_CHIPS) h2.ndac_blocks = 0;
    weir_buf *enc = NULL;
    err[0] = 0;
    rc = weir_merlin_encode_frame(&h2, &a, 1, &enc, err, sizeof err);
    if (rc) {
        if (rc != WEIR_ERANGE || h.pixel != WEIR_MERLIN_R64) abort();
        check_err(rc, err);
        goto release;
    }
    weir_merlin_mpx m;
    if (weir_merlin_mpx_split(weir_buf_data(enc), weir_buf_size(enc), &m, err, sizeof err) != 0 ||
        m.kind != WEIR_MERLIN_MSG_FRAME || m.total != weir_buf_size(enc))
        abort();
    weir_buf *fv = weir_buf_view(enc, m.payload_off, m.payload_len);
    weir_merlin_frame_header h3;
    weir_array b;
    if (!fv ||
        weir_merlin_frame_parse(weir_buf_data(fv), weir_buf_size(fv), &h3, err, sizeof err) != 0)
        abort();
    if (h3.data_offset + h3.payload_bytes != m.payload_len || h3.sequence != h.sequence ||
        h3.pixel != h.pixel || h3.counter_depth != h.counter_depth)
        abort();
    if (weir_merlin_decode(fv, 0, &h3, &b, err, sizeof err) != 0) abort();
    if (b.shape[0] != a.shape[0] || b.shape[1] != a.shape[1] || b.dtype.kind != a.dtype.kind)
        abort();
    for (size_t i = 0; i < n; i++)
        if (elem(&a, i) != elem(&b, i)) abort();
    weir_array_release(&b);
    weir_buf_unref(fv);
    weir_buf_unref(enc);
release:
    weir_array_release(&a);
}

static void fuzz_mpx(const uint8_t *d, size_t size)
{
    char err[256];
    size_t pos = 0;
    while (pos < size) {
        weir_merlin_mpx m;
        err[0] = 0;
        int rc = weir_merlin_mpx_split(d + pos, size - pos, &m, err, sizeof err);
        if (rc == WEIR_ETRUNCATED) {
            if (m.total <= size - pos) abort();
            check_err(rc, err);
            break;
        }
        if (rc) {
            check_err(rc, err);
            break;
        }
        if (m.total > size - pos || m.payload_off + m.payload_len != m.total) abort();
        pos += m.total;
    }
}

static void fuzz_reader(weir_buf *buf)
{
    char err[256];
    weir_merlin_reader *r;
    if (weir_merlin_reader_new(buf, NULL, &r) != 0) return;
    for (int k = 0; k < 64; k++) {
        weir_merlin_frame fr;
        int eof;
        err[0] = 0;
        int rc = weir_merlin_reader_next(r, &fr, &eof, err, sizeof err);
        if (rc) {
            check_err(rc, err);
            break;
        }
        if (eof) break;
        if (fr.offset + fr.hdr.data_offset + fr.hdr.payload_bytes > weir_buf_size(buf)) abort();
        weir_array a;
        /* the reader checked the frame's size: decoding must succeed */
        if (weir_merlin_decode(fr.buf, fr.offset, &fr.hdr, &a, err, sizeof err) != 0) abort();
        weir_array_release(&a);
        weir_merlin_frame_clear(&fr);
    }
    weir_merlin_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so ASan sees any over-read */
    weir_buf *b = weir_buf_copy(data, size);
    if (!b) return 0;
    const uint8_t *d = weir_buf_data(b);
    fuzz_acq(d, size);
    fuzz_frame(b);
    fuzz_mpx(d, size);
    fuzz_reader(b);
    weir_buf_unref(b);
    return 0;
}
