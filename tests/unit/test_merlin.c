/* test_merlin.c — Quantum Detectors Merlin frames, HDR and MPX framing
 * (src/formats/merlin.c).
 *
 * Expected values never come from the code under test: the real .mib files
 * are checked against the ground-truth table of ../shared/data/README.md
 * and against sums the test computes itself from the file bytes (header
 * fields read with sscanf, big-endian pixels assembled by hand, raw 1-bit
 * totals as popcounts); raw decoding is checked by its correlation with the
 * U08 acquisition of the same scene, and the wrong bit order (decoded by the
 * test itself) must correlate badly; hand-packed raw bytes pin the packing
 * down bit by bit; re-encoding every real frame must give its bytes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/merlin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

/* Element i of a decoded 2-D array as an integer, read by hand. */
static uint64_t px(const weir_array *a, size_t i)
{
    size_t isz = weir_dtype_size(a->dtype.kind);
    size_t r = i / a->shape[1], c = i % a->shape[1];
    const uint8_t *p = a->data + (ptrdiff_t)r * a->strides[0] + (ptrdiff_t)c * a->strides[1];
    uint64_t v = 0;
    int big = a->dtype.order == WEIR_BIG;
    for (size_t b = 0; b < isz; b++)
        v |= (uint64_t)p[big ? isz - 1 - b : b] << (8 * b);
    return v;
}

static uint64_t arr_sum(const weir_array *a, uint64_t *max)
{
    uint64_t s = 0, m = 0;
    size_t n = a->shape[0] * a->shape[1];
    for (size_t i = 0; i < n; i++) {
        uint64_t v = px(a, i);
        s += v;
        if (v > m) m = v;
    }
    if (max) *max = m;
    return s;
}

static double pearson(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Independent frame walk: header fields by sscanf, sizes by the format
 * description (reference §1a), pixel sums by hand from big-endian bytes. */
typedef struct {
    unsigned frames;
    uint64_t sum, max, first_sum;
    unsigned w, h;
    char type[4];
} indep;

static void indep_scan(const uint8_t *f, size_t len, int raw_bits, indep *out)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0;
    while (pos < len) {
        unsigned seq, off, chips, w, h;
        char type[4] = {0};
        char hdr[64];
        memcpy(hdr, f + pos, 63);
        hdr[63] = 0;
        assert_int_equal(
            sscanf(hdr, "MQ1,%6u,%5u,%2u,%4u,%4u,%3c", &seq, &off, &chips, &w, &h, type), 6);
        assert_int_equal(seq, out->frames + 1);
        size_t bpp = type[0] == 'R' ? 0 : (size_t)atoi(type + 1) / 8;
        size_t pay = bpp ? (size_t)w * h * bpp : (size_t)w * h * (size_t)raw_bits / 8;
        assert_true(pos + off + pay <= len);
        uint64_t s = 0;
        const uint8_t *p = f + pos + off;
        if (bpp) {
            for (size_t i = 0; i < (size_t)w * h; i++) {
                uint64_t v = 0;
                for (size_t b = 0; b < bpp; b++)
                    v = v << 8 | p[i * bpp + b];
                s += v;
                if (v > out->max) out->max = v;
            }
        } else {
            for (size_t i = 0; i < pay; i++)
                s += (uint64_t)__builtin_popcount(p[i]);
            out->max = 1;
        }
        if (!out->frames) out->first_sum = s;
        out->sum += s;
        out->frames++;
        out->w = w;
        out->h = h;
        memcpy(out->type, type, 4);
        pos += off + pay;
    }
}

/* ------------------------------------------------- real files vs. table */

typedef struct {
    const char *file;
    const char *type;
    size_t rows, cols;
    unsigned frames;
    uint64_t sum, max, first;
    unsigned depth;
    int quad;
} truth;

/* ../shared/data/README.md, merlin/ table */
static const truth table[] = {
    {"Quad_1_Frame_CounterDepth_12_Rows_256", "U16", 512, 512, 1, 845907, 4093, 845907, 12, 1},
    {"Quad_1_Frame_CounterDepth_1_Rows_256", "U08", 512, 512, 1, 10331, 1, 10331, 1, 1},
    {"Quad_1_Frame_CounterDepth_24_Rows_256", "U32", 512, 512, 1, 778764, 4095, 778764, 24, 1},
    {"Quad_1_Frame_CounterDepth_6_Rows_256", "U08", 512, 512, 1, 115263, 63, 115263, 6, 1},
    {"Single_1_Frame_CounterDepth_12_Rows_256", "U16", 256, 256, 1, 28911, 2239, 28911, 12, 0},
    {"Single_1_Frame_CounterDepth_1_Rows_256", "U08", 256, 256, 1, 2398, 1, 2398, 1, 0},
    {"Single_1_Frame_CounterDepth_24_Rows_256", "U32", 256, 256, 1, 29416, 2255, 29416, 24, 0},
    {"Single_1_Frame_CounterDepth_6_Rows_256", "U08", 256, 256, 1, 24336, 63, 24336, 6, 0},
    {"Single_9_Frame_CounterDepth_12_Rows_256", "U16", 256, 256, 9, 260753, 2216, 29032, 12, 0},
    {"Single_9_Frame_CounterDepth_1_Rows_256", "U08", 256, 256, 9, 21614, 1, 2389, 1, 0},
    {"Single_9_Frame_CounterDepth_24_Rows_256", "U32", 256, 256, 9, 258156, 2074, 28662, 24, 0},
    {"Single_9_Frame_CounterDepth_6_Rows_256", "U08", 256, 256, 9, 217684, 63, 24125, 6, 0},
};

static void test_real_files_match_table(void **state)
{
    (void)state;
    char err[256], rel[128];
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        const truth *T = &table[t];
        snprintf(rel, sizeof rel, "merlin/%s.mib", T->file);
        const char *path = tu_shared(rel);
        size_t flen;
        uint8_t *fbytes = tu_read_file(path, &flen);
        indep ind;
        indep_scan(fbytes, flen, 0, &ind);
        /* the table and the test's own reading agree */
        assert_int_equal(ind.frames, T->frames);
        assert_int_equal(ind.sum, T->sum);
        assert_int_equal(ind.max, T->max);
        assert_int_equal(ind.first_sum, T->first);
        assert_string_equal(ind.type, T->type);

        weir_merlin_reader *r;
        assert_int_equal(weir_merlin_reader_open(path, &r, err, sizeof err), 0);
        uint64_t sum = 0, max = 0, first = 0;
        unsigned n = 0;
        for (;;) {
            weir_merlin_frame fr;
            int eof;
            int rc = weir_merlin_reader_next(r, &fr, &eof, err, sizeof err);
            if (rc) fail_msg("%s: %s", T->file, err);
            if (eof) break;
            assert_int_equal(fr.index, n);
            assert_int_equal(fr.hdr.sequence, n + 1);
            assert_int_equal(fr.hdr.counter_depth, T->depth);
            assert_int_equal(fr.hdr.nchips, T->quad ? 4 : 1);
            assert_int_equal(fr.hdr.layout.nx, T->quad ? 2 : 1);
            assert_int_equal(fr.hdr.data_offset, T->quad ? 768 : 384);
            assert_int_equal(fr.hdr.ndac_blocks, T->quad ? 4 : 1);
            assert_string_equal(fr.hdr.chip_type, "3RX");
            assert_int_equal(fr.hdr.dacs[0][1], 511);
            assert_true(fabs(fr.hdr.thresholds[1] - 511.0) < 1e-9);
            assert_true(fabs(fr.hdr.shutter_s - 0.001) < 1e-12);
            assert_int_equal(fr.hdr.ext_shutter_ns, 1000000);
            weir_array a;
            if (weir_merlin_decode(fr.buf, fr.offset, &fr.hdr, &a, err, sizeof err))
                fail_msg("%s: %s", T->file, err);
            assert_int_equal(a.ndim, 2);
            assert_int_equal(a.shape[0], T->rows);
            assert_int_equal(a.shape[1], T->cols);
            /* zero copy: the pixels are the file's own bytes */
            assert_ptr_equal(a.data, weir_buf_data(fr.buf) + fr.offset + fr.hdr.data_offset);
            if (weir_dtype_size(a.dtype.kind) > 1) assert_int_equal(a.dtype.order, WEIR_BIG);
            uint64_t m;
            uint64_t s = arr_sum(&a, &m);
            if (!n) first = s;
            sum += s;
            if (m > max) max = m;
            /* re-encoding gives the frame's bytes back, header included */
            weir_buf *enc;
            if (weir_merlin_encode_frame(&fr.hdr, &a, 0, &enc, err, sizeof err))
                fail_msg("%s: encode: %s", T->file, err);
            assert_int_equal(weir_buf_size(enc), fr.hdr.data_offset + fr.hdr.payload_bytes);
            assert_memory_equal(weir_buf_data(enc), fbytes + fr.offset, weir_buf_size(enc));
            weir_buf_unref(enc);
            weir_array_release(&a);
            weir_merlin_frame_clear(&fr);
            n++;
        }
        assert_int_equal(n, T->frames);
        assert_int_equal(sum, T->sum);
        assert_int_equal(max, T->max);
        assert_int_equal(first, T->first);
        weir_merlin_reader_free(r);
        free(fbytes);
    }
}

static void test_real_hdr_files(void **state)
{
    (void)state;
    char err[256], rel[128];
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        const truth *T = &table[t];
        snprintf(rel, sizeof rel, "merlin/%s.hdr", T->file);
        weir_merlin_acq a;
        if (weir_merlin_acq_read(tu_shared(rel), &a, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(a.text_len, 2048);
        assert_int_equal(a.frames_in_acquisition, T->frames);
        /* this one acquisition was triggered frame by frame (its .hdr says so) */
        assert_int_equal(a.frames_per_trigger,
                         strcmp(T->file, "Single_9_Frame_CounterDepth_24_Rows_256") ? T->frames
                                                                                    : 1);
        assert_int_equal(a.counter_depth, T->depth);
        assert_true(a.has_layout);
        assert_int_equal(a.layout.nx, T->quad ? 2 : 1);
        assert_int_equal(a.layout.ny, T->quad ? 2 : 1);
        assert_false(a.has_scan);
        const char *v;
        size_t vl;
        assert_int_equal(
            weir_merlin_acq_get(&a, "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX)", &v, &vl),
            0);
        assert_int_equal(vl, 11);
        assert_memory_equal(v, "Medipix 3RX", 11);
        /* a value with ':' and '\\' in it */
        assert_int_equal(weir_merlin_acq_get(&a, "Dead Time File", &v, &vl), 0);
        assert_int_equal(vl, 17);
        assert_memory_equal(v, "Dummy (C:\\<NUL>\\)", 17);
        assert_int_equal(weir_merlin_acq_get(&a, "ScanX", &v, &vl), WEIR_ENOTFOUND);
        weir_merlin_acq_clear(&a);
    }
    static const char *const raw_hdrs[] = {"Single_1_Frame_CounterDepth_1_Rows_256RAW",
                                           "Single_9_Frame_CounterDepth_1_Rows_256RAW",
                                           "Quad_1_Frame_CounterDepth_1_Rows_256RAW"};
    static const unsigned raw_frames[] = {1, 9, 1};
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "merlin/%s.hdr", raw_hdrs[i]);
        weir_merlin_acq a;
        if (weir_merlin_acq_read(tu_shared(rel), &a, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(a.frames_in_acquisition, raw_frames[i]);
        assert_int_equal(a.counter_depth, 1);
        assert_int_equal(a.layout.nx, i == 2 ? 2 : 1);
        weir_merlin_acq_clear(&a);
    }
}

/* ---------------------------------------------------------- raw files */

/* Decodes all frames of a file; returns the per-pixel sum over frames
 * (malloc'd doubles) and the per-frame totals. */
static double *decode_all(const char *rel, size_t *rows, size_t *cols, uint64_t *totals,
                          unsigned *nframes)
{
    char err[256];
    weir_merlin_reader *r;
    assert_int_equal(weir_merlin_reader_open(tu_shared(rel), &r, err, sizeof err), 0);
    double *img = NULL;
    unsigned n = 0;
    for (;;) {
        weir_merlin_frame fr;
        int eof;
        if (weir_merlin_reader_next(r, &fr, &eof, err, sizeof err)) fail_msg("%s", err);
        if (eof) break;
        weir_array a;
        if (weir_merlin_decode(fr.buf, fr.offset, &fr.hdr, &a, err, sizeof err))
            fail_msg("%s", err);
        size_t np = a.shape[0] * a.shape[1];
        if (!img) {
            img = calloc(np, sizeof *img);
            assert_non_null(img);
            *rows = a.shape[0];
            *cols = a.shape[1];
        }
        uint64_t tot = 0;
        for (size_t i = 0; i < np; i++) {
            uint64_t v = px(&a, i);
            img[i] += (double)v;
            tot += v;
        }
        if (totals) totals[n] = tot;
        /* re-encoding the decoded raw frame gives the file's bytes back */
        weir_buf *enc;
        if (weir_merlin_encode_frame(&fr.hdr, &a, 0, &enc, err, sizeof err))
            fail_msg("encode: %s", err);
        assert_int_equal(weir_buf_size(enc), fr.hdr.data_offset + fr.hdr.payload_bytes);
        assert_memory_equal(weir_buf_data(enc), weir_buf_data(fr.buf) + fr.offset,
                            weir_buf_size(enc));
        weir_buf_unref(enc);
        /* an independent total: the 1-bit payload's popcount */
        if (fr.hdr.pixel == WEIR_MERLIN_R64 && fr.hdr.counter_depth == 1) {
            uint64_t pc = 0;
            const uint8_t *p = weir_buf_data(fr.buf) + fr.offset + fr.hdr.data_offset;
            for (size_t i = 0; i < fr.hdr.payload_bytes; i++)
                pc += (uint64_t)__builtin_popcount(p[i]);
            assert_int_equal(pc, tot);
        }
        weir_array_release(&a);
        weir_merlin_frame_clear(&fr);
        n++;
    }
    *nframes = n;
    weir_merlin_reader_free(r);
    return img;
}

/* Wrong bit orders, decoded here. msb != 0: the 64-pixel group read in the
 * opposite direction (pixel i = bit 63 - i of the big-endian u64, i.e. bytes
 * in file order, most significant bit first: README's "wrong bit order",
 * about 0.27); msb == 0: bytes in file order, least significant bit first
 * (the chunk's bytes not reversed). Single chip only. */
static double *decode_wrong_order(const char *rel, int msb)
{
    size_t len;
    uint8_t *f = tu_read_file(tu_shared(rel), &len);
    double *img = calloc(65536, sizeof *img);
    assert_non_null(img);
    size_t frame = 384 + 8192;
    assert_int_equal(len % frame, 0);
    for (size_t pos = 0; pos < len; pos += frame)
        for (size_t i = 0; i < 65536; i++)
            img[i] += (f[pos + 384 + i / 8] >> (msb ? 7 - i % 8 : i % 8)) & 1;
    free(f);
    return img;
}

static void check_wrong_orders(const char *rel, const double *u08, const char *what)
{
    for (int msb = 1; msb >= 0; msb--) {
        double *wrong = decode_wrong_order(rel, msb);
        double c = pearson(wrong, u08, 65536);
        print_message("%s: wrong bit order (%s) correlation %.4f\n", what,
                      msb ? "group reversed" : "bytes not reversed", c);
        assert_true(c < 0.5);
        if (msb) assert_true(c > 0.2 && c < 0.35); /* README: about 0.27 */
        free(wrong);
    }
}

static void test_raw_single(void **state)
{
    (void)state;
    size_t rr, rc, ur, uc;
    uint64_t tot[16];
    unsigned n, un;
    /* one frame */
    double *raw =
        decode_all("merlin/Single_1_Frame_CounterDepth_1_Rows_256RAW.mib", &rr, &rc, tot, &n);
    assert_int_equal(n, 1);
    assert_int_equal(rr, 256);
    assert_int_equal(rc, 256);
    assert_int_equal(tot[0], 2394);
    double *u08 =
        decode_all("merlin/Single_1_Frame_CounterDepth_1_Rows_256.mib", &ur, &uc, NULL, &un);
    double corr = pearson(raw, u08, 65536);
    print_message("single 1 frame: raw vs U08 correlation %.4f\n", corr);
    assert_true(corr >= 0.99);
    check_wrong_orders("merlin/Single_1_Frame_CounterDepth_1_Rows_256RAW.mib", u08,
                       "single 1 frame");
    free(raw);
    free(u08);

    /* nine frames */
    raw = decode_all("merlin/Single_9_Frame_CounterDepth_1_Rows_256RAW.mib", &rr, &rc, tot, &n);
    assert_int_equal(n, 9);
    assert_int_equal(tot[0], 2390);
    assert_int_equal(tot[1], 2404);
    assert_int_equal(tot[2], 2400);
    u08 = decode_all("merlin/Single_9_Frame_CounterDepth_1_Rows_256.mib", &ur, &uc, NULL, &un);
    assert_int_equal(un, 9);
    corr = pearson(raw, u08, 65536);
    print_message("single 9 frames: raw vs U08 correlation %.4f\n", corr);
    assert_true(corr >= 0.99);
    check_wrong_orders("merlin/Single_9_Frame_CounterDepth_1_Rows_256RAW.mib", u08,
                       "single 9 frames");
    free(raw);
    free(u08);
}

static void test_raw_quad(void **state)
{
    (void)state;
    size_t rr, rc, ur, uc, len;
    uint64_t tot[2];
    unsigned n, un;
    double *raw =
        decode_all("merlin/Quad_1_Frame_CounterDepth_1_Rows_256RAW.mib", &rr, &rc, tot, &n);
    assert_int_equal(n, 1);
    assert_int_equal(rr, 512);
    assert_int_equal(rc, 512);
    double *u08 =
        decode_all("merlin/Quad_1_Frame_CounterDepth_1_Rows_256.mib", &ur, &uc, NULL, &un);
    double corr = pearson(raw, u08, 512 * 512);
    print_message("quad: raw vs U08 correlation %.4f\n", corr);
    assert_true(corr >= 0.99);
    /* without the quadrant reordering (the chip bits right, rows as sent)
     * the image is scrambled */
    uint8_t *f =
        tu_read_file(tu_shared("merlin/Quad_1_Frame_CounterDepth_1_Rows_256RAW.mib"), &len);
    double *naive = calloc(512 * 512, sizeof *naive);
    assert_non_null(naive);
    for (size_t i = 0; i < 512 * 512; i++) {
        size_t chunk = i / 64, j = i % 64;
        naive[i] = (f[768 + chunk * 8 + 7 - j / 8] >> (j % 8)) & 1;
    }
    double ncorr = pearson(naive, u08, 512 * 512);
    print_message("quad: without quadrant reordering %.4f\n", ncorr);
    assert_true(ncorr < 0.5);
    free(f);
    free(naive);
    free(raw);
    free(u08);
}

/* ------------------------------------------------- hand-packed raw bytes */

static void encode_ok(weir_merlin_frame_header *h, const weir_array *a, weir_buf **out)
{
    char err[256];
    if (weir_merlin_encode_frame(h, a, 0, out, err, sizeof err)) fail_msg("encode: %s", err);
}

static void decode_ok(weir_buf *b, weir_merlin_frame_header *h, weir_array *a)
{
    char err[256];
    if (weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), h, err, sizeof err))
        fail_msg("parse: %s", err);
    if (weir_merlin_decode(b, 0, h, a, err, sizeof err)) fail_msg("decode: %s", err);
}

static void make_u16(weir_array *a, size_t rows, size_t cols, const uint16_t *vals)
{
    size_t shape[2] = {rows, cols};
    weir_dtype dt = {WEIR_DT_U16, weir_host_order()};
    assert_int_equal(weir_array_alloc(a, dt, 2, shape), 0);
    memcpy(weir_buf_mutable(a->buf), vals, rows * cols * 2);
}

static void test_raw_packing_by_hand(void **state)
{
    (void)state;
    weir_merlin_frame_header h, back;
    weir_array a, d;
    weir_buf *b;
    const uint8_t *p;

    /* 1-bit: pixels 0 and 9 set -> last byte bit 0, second to last bit 1 */
    uint16_t v1[64] = {0};
    v1[0] = 1;
    v1[9] = 1;
    make_u16(&a, 1, 64, v1);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 1), 0);
    encode_ok(&h, &a, &b);
    assert_int_equal(weir_buf_size(b), 384 + 8);
    p = weir_buf_data(b) + 384;
    static const uint8_t e1[8] = {0, 0, 0, 0, 0, 0, 0x02, 0x01};
    assert_memory_equal(p, e1, 8);
    decode_ok(b, &back, &d);
    assert_int_equal(d.dtype.kind, WEIR_DT_U8);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(px(&d, i), v1[i]);
    weir_array_release(&d);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* 6-bit: the 8 bytes of a chunk reversed */
    uint16_t v6[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    make_u16(&a, 1, 8, v6);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 6), 0);
    encode_ok(&h, &a, &b);
    static const uint8_t e6[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(weir_buf_data(b) + 384, e6, 8);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* 12-bit: four big-endian u16 reversed */
    uint16_t v12[4] = {0x123, 0x456, 0x789, 0xABC};
    make_u16(&a, 1, 4, v12);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 12), 0);
    encode_ok(&h, &a, &b);
    static const uint8_t e12[8] = {0x0A, 0xBC, 0x07, 0x89, 0x04, 0x56, 0x01, 0x23};
    assert_memory_equal(weir_buf_data(b) + 384, e12, 8);
    decode_ok(b, &back, &d);
    assert_int_equal(d.dtype.kind, WEIR_DT_U16);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(px(&d, i), v12[i]);
    weir_array_release(&d);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* 24-bit: two 12-bit images, high bits first; header width doubled */
    uint16_t dummy[4] = {0};
    make_u16(&a, 1, 4, dummy);
    weir_array_release(&a);
    size_t shape[2] = {1, 4};
    weir_dtype dt32 = {WEIR_DT_U32, weir_host_order()};
    assert_int_equal(weir_array_alloc(&a, dt32, 2, shape), 0);
    uint32_t v24[4] = {0xABC123, 1, 0xFFF000, 0x000FFF};
    memcpy(weir_buf_mutable(a.buf), v24, sizeof v24);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 24), 0);
    encode_ok(&h, &a, &b);
    assert_int_equal(weir_buf_size(b), 384 + 16);
    static const uint8_t e24[16] = {0x00, 0x00, 0x0F, 0xFF, 0x00, 0x00, 0x0A, 0xBC,
                                    0x0F, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x01, 0x23};
    assert_memory_equal(weir_buf_data(b) + 384, e24, 16);
    decode_ok(b, &back, &d);
    assert_int_equal(back.width, 8);
    assert_int_equal(d.dtype.kind, WEIR_DT_U32);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(px(&d, i), v24[i]);
    weir_array_release(&d);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* quad 1-bit, one row per chip: (0,0) is Q1 column 0, the last part of
     * the input row; (1,0) is Q3 (flipped) column 255, the second part */
    uint16_t *vq = calloc(2 * 512, sizeof *vq);
    assert_non_null(vq);
    vq[0] = 1;
    vq[512] = 1;
    make_u16(&a, 2, 512, vq);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "2x2", 1), 0);
    encode_ok(&h, &a, &b);
    assert_int_equal(weir_buf_size(b), 768 + 128);
    p = weir_buf_data(b) + 768;
    for (size_t i = 0; i < 128; i++)
        assert_int_equal(p[i], i == 96 + 7 ? 0x01 : i == 32 + 24 ? 0x80 : 0);
    decode_ok(b, &back, &d);
    assert_int_equal(back.width, 1024);
    assert_int_equal(back.height, 1);
    for (size_t i = 0; i < 1024; i++)
        assert_int_equal(px(&d, i), vq[i]);
    weir_array_release(&d);
    weir_array_release(&a);
    weir_buf_unref(b);
    free(vq);
}

/* --------------------------------------------------------- round trips */

static void fill_random(weir_array *a, uint64_t maxv)
{
    size_t n = a->shape[0] * a->shape[1], isz = weir_dtype_size(a->dtype.kind);
    uint8_t *p = weir_buf_mutable(a->buf);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = maxv == UINT64_MAX ? rng() : rng() % (maxv + 1);
        /* sparse high values too, as detector data has */
        if (i % 97 == 0) v = maxv;
        memcpy(p + i * isz, (uint8_t *)&v + (weir_host_order() == WEIR_BIG ? 8 - isz : 0), isz);
    }
}

static void roundtrip(weir_merlin_pixel pix, const char *layout, unsigned depth, size_t rows,
                      size_t cols, weir_dtype_kind in_kind, uint64_t maxv)
{
    char err[256];
    weir_merlin_frame_header h, back;
    weir_array a, d;
    weir_buf *b;
    size_t shape[2] = {rows, cols};
    weir_dtype dt = {in_kind, weir_host_order()};
    assert_int_equal(weir_array_alloc(&a, dt, 2, shape), 0);
    fill_random(&a, maxv);
    int gap = strchr(layout, 'G') != NULL;
    if (pix == WEIR_MERLIN_R64 && gap) {
        /* gap pixels are not transmitted: they come back as 0 */
        uint8_t *p = weir_buf_mutable(a.buf);
        size_t isz = weir_dtype_size(in_kind), R = (rows - 2) / 2;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                if (r == R || r == R + 1 || c == 256 || c == 257)
                    memset(p + (r * cols + c) * isz, 0, isz);
    }
    assert_int_equal(weir_merlin_frame_header_init(&h, pix, layout, depth), 0);
    h.sequence = 4242;
    if (weir_merlin_encode_frame(&h, &a, 1, &b, err, sizeof err))
        fail_msg("%s %u: %s", layout, depth, err);
    /* through the MPX splitter */
    weir_merlin_mpx m;
    assert_int_equal(weir_merlin_mpx_split(weir_buf_data(b), weir_buf_size(b), &m, err, sizeof err),
                     0);
    assert_int_equal(m.kind, WEIR_MERLIN_MSG_FRAME);
    assert_int_equal(m.total, weir_buf_size(b));
    weir_buf *frame = weir_buf_view(b, m.payload_off, m.payload_len);
    assert_non_null(frame);
    decode_ok(frame, &back, &d);
    assert_int_equal(back.sequence, 4242);
    assert_int_equal(back.data_offset % 384, 0);
    assert_int_equal(back.data_offset + back.payload_bytes, m.payload_len);
    assert_int_equal(back.layout.gap, gap);
    assert_int_equal(back.counter_depth, depth);
    assert_int_equal(d.shape[0], rows);
    assert_int_equal(d.shape[1], cols);
    size_t n = rows * cols;
    for (size_t i = 0; i < n; i++)
        if (px(&d, i) != px(&a, i))
            fail_msg("%s depth %u pixel %zu: %llu != %llu", layout, depth, i,
                     (unsigned long long)px(&d, i), (unsigned long long)px(&a, i));
    weir_array_release(&d);
    weir_buf_unref(frame);
    weir_buf_unref(b);
    weir_array_release(&a);
}

static void test_roundtrips(void **state)
{
    (void)state;
    static const char *const layouts[] = {"1x1", "2x2", "2x2G"};
    for (int l = 0; l < 3; l++) {
        size_t side = l == 0 ? 256 : l == 1 ? 512 : 514;
        roundtrip(WEIR_MERLIN_U08, layouts[l], 6, side, side, WEIR_DT_U8, 255);
        roundtrip(WEIR_MERLIN_U16, layouts[l], 12, side, side, WEIR_DT_U16, 65535);
        roundtrip(WEIR_MERLIN_U32, layouts[l], 24, side, side, WEIR_DT_U32, 0xffffffffu);
        roundtrip(WEIR_MERLIN_U64, layouts[l], 24, side, side, WEIR_DT_U64, UINT64_MAX);
    }
    roundtrip(WEIR_MERLIN_U08, "1x1", 1, 7, 13, WEIR_DT_U8, 1); /* any shape for U* */
    roundtrip(WEIR_MERLIN_U16, "1x1", 12, 7, 13, WEIR_DT_I32, 4095);
    static const unsigned depths[] = {1, 6, 12};
    for (int k = 0; k < 3; k++) {
        uint64_t maxv = (1u << depths[k]) - 1;
        roundtrip(WEIR_MERLIN_R64, "1x1", depths[k], 256, 256, WEIR_DT_U16, maxv);
        roundtrip(WEIR_MERLIN_R64, "2x2", depths[k], 512, 512, WEIR_DT_U16, maxv);
        roundtrip(WEIR_MERLIN_R64, "2x2G", depths[k], 514, 514, WEIR_DT_U16, maxv);
        roundtrip(WEIR_MERLIN_R64, "2x2", depths[k], 2 * 64, 512, WEIR_DT_U8, maxv); /* ROI rows */
    }
    roundtrip(WEIR_MERLIN_R64, "1x1", 24, 256, 256, WEIR_DT_U32, 0xffffff);
}

static void test_encoder_errors(void **state)
{
    (void)state;
    char err[256];
    weir_merlin_frame_header h;
    weir_array a;
    weir_buf *b;
    uint16_t v[64] = {0};
    v[5] = 2;
    make_u16(&a, 1, 64, v);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 1), 0);
    assert_int_equal(weir_merlin_encode_frame(&h, &a, 0, &b, err, sizeof err), WEIR_ERANGE);
    assert_non_null(strstr(err, "pixel (0, 5) = 2"));
    assert_null(b);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_U08, "1x1", 6), 0);
    v[5] = 256;
    weir_array_release(&a);
    make_u16(&a, 1, 64, v);
    assert_int_equal(weir_merlin_encode_frame(&h, &a, 0, &b, err, sizeof err), WEIR_ERANGE);
    /* a quad raw frame must be 2R x 512 */
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "2x2", 1), 0);
    assert_int_equal(weir_merlin_encode_frame(&h, &a, 0, &b, err, sizeof err), WEIR_ESHAPE);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "2y2", 1), WEIR_EINVAL);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_R64, "1x1", 7), WEIR_EINVAL);
    weir_array_release(&a);
}

/* ------------------------------------------------------------- MPX */

static void test_mpx_stream(void **state)
{
    (void)state;
    char err[256];
    weir_merlin_acq acq = {0};
    acq.frames_in_acquisition = 2;
    acq.frames_per_trigger = 2;
    acq.counter_depth = 12;
    acq.has_layout = 1;
    acq.layout.nx = acq.layout.ny = 1;
    acq.has_scan = 1;
    acq.scan_x = 2;
    acq.scan_y = 1;
    weir_buf *hb, *f1, *f2;
    assert_int_equal(weir_merlin_acq_encode(&acq, 1, &hb), 0);
    assert_int_equal(weir_buf_size(hb), 15 + 2048);
    assert_memory_equal(weir_buf_data(hb), "MPX,0000002049,HDR,", 19);

    weir_merlin_frame_header h;
    weir_array a;
    uint16_t v1[16], v2[16];
    for (int i = 0; i < 16; i++)
        v1[i] = (uint16_t)(i * 100), v2[i] = (uint16_t)(4095 - i);
    assert_int_equal(weir_merlin_frame_header_init(&h, WEIR_MERLIN_U16, "1x1", 12), 0);
    make_u16(&a, 4, 4, v1);
    assert_int_equal(weir_merlin_encode_frame(&h, &a, 1, &f1, err, sizeof err), 0);
    weir_array_release(&a);
    h.sequence = 2;
    make_u16(&a, 4, 4, v2);
    assert_int_equal(weir_merlin_encode_frame(&h, &a, 1, &f2, err, sizeof err), 0);
    weir_array_release(&a);
    /* 384 header + 32 pixel bytes + the comma */
    assert_memory_equal(weir_buf_data(f1), "MPX,0000000417,MQ1,000001,00384,01,0004,0004,U16,", 49);

    size_t n1 = weir_buf_size(hb), n2 = weir_buf_size(f1), n3 = weir_buf_size(f2);
    size_t total = n1 + n2 + n3;
    weir_buf *sb = weir_buf_new(total);
    assert_non_null(sb);
    uint8_t *s = weir_buf_mutable(sb);
    memcpy(s, weir_buf_data(hb), n1);
    memcpy(s + n1, weir_buf_data(f1), n2);
    memcpy(s + n1 + n2, weir_buf_data(f2), n3);

    /* split one message after the other */
    weir_merlin_mpx m;
    size_t pos = 0;
    const weir_merlin_msg_kind kinds[3] = {WEIR_MERLIN_MSG_HDR, WEIR_MERLIN_MSG_FRAME,
                                           WEIR_MERLIN_MSG_FRAME};
    const size_t sizes[3] = {n1, n2, n3};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(weir_merlin_mpx_split(s + pos, total - pos, &m, err, sizeof err), 0);
        assert_int_equal(m.kind, kinds[k]);
        assert_int_equal(m.total, sizes[k]);
        assert_int_equal(m.payload_off, 15);
        assert_int_equal(m.payload_len, sizes[k] - 15);
        pos += m.total;
    }
    assert_int_equal(pos, total);
    /* a message cut anywhere needs more data; the size is known after 15 bytes */
    for (size_t cut = 0; cut < n2; cut += (cut < 20 ? 1 : 37)) {
        assert_int_equal(weir_merlin_mpx_split(s + n1, cut, &m, err, sizeof err), WEIR_ETRUNCATED);
        assert_int_equal(m.total, cut < 15 ? 15 : n2);
    }
    assert_int_equal(weir_merlin_mpx_split(s + n1, n2 - 1, &m, err, sizeof err), WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "incomplete"));

    /* the reader walks the same stream */
    weir_merlin_reader *r;
    assert_int_equal(weir_merlin_reader_new(sb, "stream", &r), 0);
    assert_null(weir_merlin_reader_acq(r));
    const uint16_t *want[2] = {v1, v2};
    for (int k = 0; k < 2; k++) {
        weir_merlin_frame fr;
        int eof;
        if (weir_merlin_reader_next(r, &fr, &eof, err, sizeof err)) fail_msg("%s", err);
        assert_false(eof);
        assert_int_equal(fr.hdr.sequence, (uint64_t)k + 1);
        const weir_merlin_acq *ra = weir_merlin_reader_acq(r);
        assert_non_null(ra);
        assert_int_equal(ra->frames_in_acquisition, 2);
        assert_int_equal(ra->counter_depth, 12);
        assert_true(ra->has_scan);
        assert_int_equal(ra->scan_x, 2);
        assert_int_equal(ra->scan_y, 1);
        weir_array d;
        assert_int_equal(weir_merlin_decode(fr.buf, fr.offset, &fr.hdr, &d, err, sizeof err), 0);
        for (size_t i = 0; i < 16; i++)
            assert_int_equal(px(&d, i), want[k][i]);
        weir_array_release(&d);
        weir_merlin_frame_clear(&fr);
    }
    weir_merlin_frame fr;
    int eof;
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), 0);
    assert_true(eof);
    weir_merlin_reader_free(r);

    /* the same stream cut in the last message */
    weir_buf *cutb = weir_buf_view(sb, 0, total - 10);
    assert_int_equal(weir_merlin_reader_new(cutb, "cut", &r), 0);
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), 0);
    weir_merlin_frame_clear(&fr);
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "cut short"));
    /* the reader stays at the bad item */
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), WEIR_ETRUNCATED);
    weir_merlin_reader_free(r);
    weir_buf_unref(cutb);

    weir_buf_unref(sb);
    weir_buf_unref(hb);
    weir_buf_unref(f1);
    weir_buf_unref(f2);
}

static void test_mpx_garbage(void **state)
{
    (void)state;
    char err[256];
    weir_merlin_mpx m;
    const char *g1 = "MPX,00000x0012,MQ1,";
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)g1, strlen(g1), &m, err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 9"));
    assert_non_null(strstr(err, "10 decimal digits"));
    /* refused as soon as the bad byte is there, not only with the whole prefix */
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)g1, 10, &m, err, sizeof err),
                     WEIR_EFORMAT);
    const char *g2 = "GARBAGEGARBAGEGARBAGE";
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)g2, strlen(g2), &m, err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "expected \"MPX,\""));
    const char *g3 = "MPX,0000000000,";
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)g3, 15, &m, err, sizeof err),
                     WEIR_EFORMAT);
    const char *g4 = "MPX,0000000005;abcd";
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)g4, strlen(g4), &m, err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 14"));
    /* a control-socket reply is a message of another kind */
    const char *c = "MPX,0000000021,GET,COUNTERDEPTH,12,0";
    assert_int_equal(weir_merlin_mpx_split((const uint8_t *)c, strlen(c), &m, err, sizeof err), 0);
    assert_int_equal(m.kind, WEIR_MERLIN_MSG_OTHER);
    assert_int_equal(m.payload_len, 20);
    char pre[16];
    assert_int_equal(weir_merlin_mpx_prefix(20, pre), 0);
    assert_string_equal(pre, "MPX,0000000021,");
}

/* ------------------------------------------------------------ bad input */

/* A frame from header text: NUL-padded to off, then pay bytes of 1s. */
static weir_buf *frame_from_text(const char *text, size_t off, size_t pay)
{
    size_t tl = strlen(text);
    weir_buf *b = weir_buf_new(off + pay);
    assert_non_null(b);
    uint8_t *p = weir_buf_mutable(b);
    memset(p, 0, off);
    memcpy(p, text, tl < off ? tl : off);
    memset(p + off, 1, pay);
    return b;
}

#define HEAD "MQ1,000001,00384,01,0004,0004,"
#define MID "   1x1,01,2021-04-15 14:43:02.396481,0.001000,0,0,0,"
#define THR "2.000000E+0,5.110000E+2,0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0,0.0E+0,0E0,"
#define DAC                                                                                        \
    "3RX,011,511,000,000,000,000,000,000,175,010,200,125,100,100,093,100,099,030,128,004,255,140," \
    "128,191,179,511,511,"
#define EXT "MQ1A,2021-04-15T13:43:02.396481181Z,1000000ns,"

static int parse_text(const char *text, size_t off, size_t pay, char *err, size_t errlen,
                      weir_merlin_frame_header *h)
{
    weir_buf *b = frame_from_text(text, off, pay);
    int rc = weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), h, err, errlen);
    weir_buf_unref(b);
    return rc;
}

static void test_bad_frames(void **state)
{
    (void)state;
    char err[256];
    weir_merlin_frame_header h;
    /* the well-formed baseline */
    assert_int_equal(parse_text(HEAD "U08," MID THR DAC EXT "6,", 384, 16, err, sizeof err, &h), 0);
    assert_int_equal(h.counter_depth, 6);
    assert_int_equal(h.payload_bytes, 16);
    assert_true(fabs(h.thresholds[7]) < 1e-12);
    /* raw form: no thresholds (one empty field), no DACs */
    assert_int_equal(parse_text(HEAD "U08," MID "," EXT "6,", 384, 16, err, sizeof err, &h), 0);
    assert_int_equal(h.nthresholds, 0);
    assert_int_equal(h.ndac_blocks, 0);
    /* without MQ1A and without a trailing comma */
    assert_int_equal(parse_text(HEAD "U08," MID THR "3RX,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
                                     "17,18,19,20,21,22,23,24,25,26,27",
                                384, 16, err, sizeof err, &h),
                     0);
    assert_false(h.has_ext);
    assert_int_equal(h.dacs[0][26], 27);

    /* unknown pixel depth */
    assert_int_equal(parse_text(HEAD "U12," MID THR DAC EXT "6,", 384, 16, err, sizeof err, &h),
                     WEIR_EDTYPE);
    assert_non_null(strstr(err, "field 6 (pixel depth)"));
    assert_non_null(strstr(err, "\"U12\""));
    assert_non_null(strstr(err, "byte 30"));
    /* wrong field count: the header stops after the gain */
    assert_int_equal(parse_text(HEAD "U08,   1x1,01,2021-04-15 14:43:02.396481,0.001,0,0", 384, 16,
                                err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "field 13 (gain) is missing"));
    /* seven thresholds: the eighth position holds a chip type */
    assert_int_equal(
        parse_text(HEAD "U08," MID "2.0E+0,5.1E+2,0.0E+0,0.0E+0,0.0E+0,0.0E+0,0.0E+0," DAC EXT "6,",
                   384, 16, err, sizeof err, &h),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "threshold 7"));
    /* one field too many after MQ1A */
    assert_int_equal(
        parse_text(HEAD "U08," MID THR DAC EXT "6,extra,", 384, 16, err, sizeof err, &h),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "too many fields"));
    /* a DAC block short of a value */
    assert_int_equal(parse_text(HEAD "U08," MID THR "3RX,011,511,000,MQ1A,x," EXT "6,", 384, 16,
                                err, sizeof err, &h),
                     WEIR_EFORMAT);
    /* two DAC blocks for one chip */
    assert_int_equal(parse_text("MQ1,000001,00768,01,0004,0004,U08," MID THR DAC DAC EXT "6,", 768,
                                16, err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "DAC blocks"));
    /* a quad header with 3 DAC blocks for 4 chips */
    assert_int_equal(parse_text("MQ1,000001,00768,04,0004,0004,U08,   2x2,0F,2021-04-15 "
                                "14:43:02.396481,0.001000,0,0,0," THR DAC DAC DAC EXT "6,",
                                768, 16, err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "3 DAC blocks for 4 chips"));
    /* counter depth 7 */
    assert_int_equal(parse_text(HEAD "U08," MID THR DAC EXT "7,", 384, 16, err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "1, 6, 12 or 24"));
    /* bad layout, bad timestamp, letters in a number */
    assert_int_equal(
        parse_text(HEAD "U08,   1y1,01,2021-04-15 14:43:02.396481,0.001,0,0,0," THR DAC EXT "6,",
                   384, 16, err, sizeof err, &h),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "sensor layout"));
    assert_int_equal(parse_text(HEAD "U08,   1x1,01,2021-04-15T14:43:02,0.001,0,0,0," THR DAC EXT
                                     "6,",
                                384, 16, err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "timestamp"));
    assert_int_equal(parse_text("MQ1,00000x,00384,01,0004,0004,U08," MID THR DAC EXT "6,", 384, 16,
                                err, sizeof err, &h),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "sequence number"));
    assert_int_equal(
        parse_text(HEAD "U08,   1x1,01,2021-04-15 14:43:02.396481,inf,0,0,0," THR DAC EXT "6,", 384,
                   16, err, sizeof err, &h),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "shutter time"));
    /* raw without MQ1A: the packing is unknown */
    assert_int_equal(parse_text(HEAD "R64," MID THR DAC, 384, 16, err, sizeof err, &h),
                     WEIR_EUNSUPPORTED);
    assert_non_null(strstr(err, "MQ1A"));
    /* raw with a layout weir cannot place */
    assert_int_equal(parse_text("MQ1,000001,00768,04,1024,0256,R64,   4x1,0F,2021-04-15 "
                                "14:43:02.396481,0.001000,0,0,0,," EXT "1,",
                                768, 32768, err, sizeof err, &h),
                     WEIR_EUNSUPPORTED);
    /* data offset past the end of the input */
    weir_buf *b =
        frame_from_text("MQ1,000001,09999,01,0004,0004,U08," MID THR DAC EXT "6,", 384, 16);
    assert_int_equal(
        weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), &h, err, sizeof err),
        WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "9999"));
    assert_non_null(strstr(err, "past the end"));
    weir_buf_unref(b);
    /* data offset inside the text */
    assert_int_equal(parse_text("MQ1,000001,00012,01,0004,0004,U08," MID THR DAC EXT "6,", 384, 16,
                                err, sizeof err, &h),
                     WEIR_EFORMAT);
    /* text after the NUL padding */
    b = frame_from_text(HEAD "U08," MID THR DAC EXT "6,", 384, 16);
    weir_buf_mutable(b)[380] = 'x';
    assert_int_equal(
        weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), &h, err, sizeof err),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 380"));
    weir_buf_unref(b);
    /* not a frame at all; a prefix of one */
    const char *nf = "HDR,\t\r\n";
    assert_int_equal(weir_merlin_frame_parse((const uint8_t *)nf, 7, &h, err, sizeof err),
                     WEIR_EFORMAT);
    assert_int_equal(weir_merlin_frame_parse((const uint8_t *)"MQ", 2, &h, err, sizeof err),
                     WEIR_ETRUNCATED);
    /* a stream that has delivered only the start of a header: read more */
    static const char *const partial[] = {"MQ1,", "MQ1,0000", "MQ1,000001,", "MQ1,000001,003"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(weir_merlin_frame_parse((const uint8_t *)partial[i], strlen(partial[i]),
                                                 &h, err, sizeof err),
                         WEIR_ETRUNCATED);
        assert_non_null(strstr(err, "ends before the data offset"));
    }
    /* ... unless what is there is already wrong */
    static const char *const wrong[] = {"MQ1,abc", "MQ1,000001,0x", "MQ1,00x001,00384"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(weir_merlin_frame_parse((const uint8_t *)wrong[i], strlen(wrong[i]), &h,
                                                 err, sizeof err),
                         WEIR_EFORMAT);

    /* truncated pixels: the header parses, decoding refuses */
    b = frame_from_text(HEAD "U16," MID THR DAC EXT "12,", 384, 31);
    assert_int_equal(
        weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), &h, err, sizeof err), 0);
    assert_int_equal(h.payload_bytes, 32);
    weir_array a;
    assert_int_equal(weir_merlin_decode(b, 0, &h, &a, err, sizeof err), WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "384 header + 32 pixel bytes"));
    /* a header edited to claim fewer pixel bytes is refused too */
    h.payload_bytes = 2;
    assert_int_equal(weir_merlin_decode(b, 0, &h, &a, err, sizeof err), WEIR_EINVAL);
    weir_buf_unref(b);
}

static void test_truncated_file(void **state)
{
    (void)state;
    char err[256];
    size_t len;
    uint8_t *f =
        tu_read_file(tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"), &len);
    weir_buf *b = weir_buf_copy(f, len - 100);
    assert_non_null(b);
    weir_merlin_reader *r;
    assert_int_equal(weir_merlin_reader_new(b, "cut.mib", &r), 0);
    weir_merlin_frame fr;
    int eof;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), 0);
        assert_false(eof);
        weir_merlin_frame_clear(&fr);
    }
    size_t frame = 384 + 2 * 65536;
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), WEIR_ETRUNCATED);
    char want[64];
    snprintf(want, sizeof want, "cut.mib: byte %zu:", 8 * frame);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "cut short"));
    assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), WEIR_ETRUNCATED);
    weir_merlin_reader_free(r);
    weir_buf_unref(b);

    /* garbage after the last frame */
    b = weir_buf_new(len + 4);
    assert_non_null(b);
    memcpy(weir_buf_mutable(b), f, len);
    memcpy(weir_buf_mutable(b) + len, "junk", 4);
    assert_int_equal(weir_merlin_reader_new(b, NULL, &r), 0);
    int rc = 0;
    for (int i = 0; i < 10 && !rc; i++) {
        rc = weir_merlin_reader_next(r, &fr, &eof, err, sizeof err);
        weir_merlin_frame_clear(&fr);
    }
    assert_int_equal(rc, WEIR_EFORMAT);
    assert_non_null(strstr(err, "\"junk\""));
    weir_merlin_reader_free(r);
    weir_buf_unref(b);
    free(f);
    assert_int_equal(weir_merlin_reader_open("/nonexistent/x.mib", &r, err, sizeof err),
                     WEIR_ENOENT);
}

static void test_bad_hdr(void **state)
{
    (void)state;
    char err[256];
    weir_merlin_acq a;
#define ACQ(s) weir_merlin_acq_parse((const uint8_t *)(s), strlen(s), &a, err, sizeof err)
    assert_int_equal(ACQ("HDR,\nFrames in Acquisition (Number):\t16384\nFrames per Trigger "
                         "(Number):\t128\nCounter Depth (number):\t6\nEnd\t"),
                     0);
    assert_int_equal(a.frames_in_acquisition, 16384);
    assert_int_equal(a.frames_per_trigger, 128);
    assert_int_equal(a.counter_depth, 6);
    assert_false(a.has_layout);
    weir_merlin_acq_clear(&a);
    assert_int_equal(ACQ("HDR,\nFrames per Trigger (Number):\t128\nEnd\t"), WEIR_EFORMAT);
    assert_non_null(strstr(err, "Frames in Acquisition (Number)"));
    const char *nc = "HDR,\nFrames in Acquisition (Number):\t1\nFrames per Trigger "
                     "(Number):\t1\nno colon here\nEnd\t";
    assert_int_equal(ACQ(nc), WEIR_EFORMAT);
    char want[32];
    snprintf(want, sizeof want, "byte %d:", (int)(strstr(nc, "no colon") - nc));
    assert_non_null(strstr(err, want));
    assert_int_equal(ACQ("HDR,\nFrames in Acquisition (Number):\t1\nFrames per Trigger "
                         "(Number):\t1\n"),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "End"));
    assert_int_equal(ACQ("HDR,\nFrames in Acquisition (Number):\tmany\nFrames per Trigger "
                         "(Number):\t1\nEnd"),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "\"many\""));
    assert_int_equal(ACQ("HDR,\nFrames in Acquisition (Number):\t1\nFrames per Trigger "
                         "(Number):\t1\nCounter Depth (number):\t7\nEnd"),
                     WEIR_EFORMAT);
    assert_int_equal(ACQ("HDR,\nFrames in Acquisition (Number):\t1\nFrames per Trigger "
                         "(Number):\t1\nEnd\t   \nmore"),
                     WEIR_EFORMAT);
    assert_int_equal(ACQ("MQ1,000001"), WEIR_EFORMAT);
    assert_int_equal(ACQ("HD"), WEIR_ETRUNCATED);
#undef ACQ
    /* encode -> parse */
    weir_merlin_acq in = {0};
    in.frames_in_acquisition = 16384;
    in.frames_per_trigger = 128;
    in.counter_depth = 24;
    in.has_layout = 1;
    in.layout.nx = 2;
    in.layout.ny = 2;
    in.layout.gap = 1;
    weir_buf *b;
    assert_int_equal(weir_merlin_acq_encode(&in, 0, &b), 0);
    assert_int_equal(weir_buf_size(b), 2048);
    assert_int_equal(weir_merlin_acq_parse(weir_buf_data(b), weir_buf_size(b), &a, err, sizeof err),
                     0);
    assert_int_equal(a.frames_in_acquisition, 16384);
    assert_int_equal(a.frames_per_trigger, 128);
    assert_int_equal(a.counter_depth, 24);
    assert_true(a.layout.gap);
    assert_false(a.has_scan);
    const char *v;
    size_t vl;
    assert_int_equal(weir_merlin_acq_get(&a, "Assembly Size (NX1, 2X2)", &v, &vl), 0);
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "2x2G", 4);
    weir_merlin_acq_clear(&a);
    weir_buf_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_files_match_table),
        cmocka_unit_test(test_real_hdr_files),
        cmocka_unit_test(test_raw_single),
        cmocka_unit_test(test_raw_quad),
        cmocka_unit_test(test_raw_packing_by_hand),
        cmocka_unit_test(test_roundtrips),
        cmocka_unit_test(test_encoder_errors),
        cmocka_unit_test(test_mpx_stream),
        cmocka_unit_test(test_mpx_garbage),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_bad_hdr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
