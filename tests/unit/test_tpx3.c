/* test_tpx3.c — the ASI TPX3 sparse stream (src/formats/tpx3.c).
 *
 * Expected values never come from the code under test: header layouts are
 * checked against bytes this file writes by hand from the documented
 * offsets (LiberTEM-rs headers.rs: bincode, fixint, little-endian); sparse
 * frames are drawn as dense images with a fixed seed, turned into CSR by the
 * test itself, and every decoded frame is compared with the dense original;
 * the framer must give the same messages whether the stream arrives at once,
 * byte by byte or in random pieces; and every malformed case must give its
 * own code with a message naming the byte offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/tpx3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*, independent of the generator in tpx3.c */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A growable byte string: the test's own stream assembly. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} bstr;

static void bs_add(bstr *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void bs_add_buf(bstr *b, weir_buf *x)
{
    bs_add(b, weir_buf_data(x), weir_buf_size(x));
    weir_buf_unref(x);
}

/* Hand-written headers, straight from the documented layout. */
static void hand_acq_start(uint8_t h[32], uint8_t version, uint8_t fmt, uint16_t nav0,
                           uint16_t nav1, uint8_t ipdt, uint16_t sig0, uint16_t sig1, uint8_t ixdt,
                           uint32_t seq)
{
    memset(h, 0, 32);
    h[0] = 0x00;
    h[1] = version;
    h[2] = fmt;
    put_le(h + 3, nav0, 2);
    put_le(h + 5, nav1, 2);
    h[7] = ipdt;
    put_le(h + 8, sig0, 2);
    put_le(h + 10, sig1, 2);
    h[12] = ixdt;
    put_le(h + 13, seq, 4);
}

static void hand_scan_start(uint8_t h[32], uint32_t seq, uint64_t meta)
{
    memset(h, 0, 32);
    h[0] = 0x01;
    put_le(h + 1, seq, 4);
    put_le(h + 5, meta, 8);
}

static void hand_chunk(uint8_t h[32], uint8_t vdt, uint32_t nframes, uint32_t nnz, uint32_t ioff,
                       uint32_t voff)
{
    memset(h, 0, 32);
    h[0] = 0x02;
    h[1] = vdt;
    put_le(h + 2, nframes, 4);
    put_le(h + 6, nnz, 4);
    put_le(h + 10, ioff, 4);
    put_le(h + 14, voff, 4);
}

static void hand_end(uint8_t h[32], uint8_t tag, uint32_t seq)
{
    memset(h, 0, 32);
    h[0] = tag;
    put_le(h + 1, seq, 4);
}

/* A synthetic scan: dense frames, and their CSR as the test builds it. */
typedef struct {
    uint16_t sig_h, sig_w;
    uint32_t nframes;
    uint32_t *dense; /* nframes x npix */
} scan;

static void scan_make(scan *s, uint16_t h, uint16_t w, uint32_t nframes, uint32_t maxv,
                      uint64_t seed)
{
    size_t npix = (size_t)h * w;
    s->sig_h = h;
    s->sig_w = w;
    s->nframes = nframes;
    s->dense = calloc((size_t)nframes * npix, sizeof *s->dense);
    assert_non_null(s->dense);
    for (uint32_t f = 0; f < nframes; f++) {
        uint64_t hits = rng_next(&seed) % 9; /* 0..8 hits, some frames empty */
        for (uint64_t k = 0; k < hits; k++)
            s->dense[(size_t)f * npix + rng_next(&seed) % npix] =
                1 + (uint32_t)(rng_next(&seed) % maxv);
    }
}

/* Encodes frames [f0, f0+n) as one chunk (CSR by a scan of the dense frames). */
static weir_buf *scan_chunk(const scan *s, const weir_tpx3_acq_start *acq, unsigned vdt,
                            uint32_t f0, uint32_t n, size_t align)
{
    size_t npix = (size_t)s->sig_h * s->sig_w;
    uint64_t *indptr = calloc(n + 1, sizeof *indptr);
    uint64_t *ind = calloc(npix * n + 1, sizeof *ind);
    uint64_t *val = calloc(npix * n + 1, sizeof *val);
    size_t nnz = 0;
    for (uint32_t r = 0; r < n; r++) {
        for (size_t p = 0; p < npix; p++) {
            uint32_t v = s->dense[(size_t)(f0 + r) * npix + p];
            if (v) {
                ind[nnz] = p;
                val[nnz++] = v;
            }
        }
        indptr[r + 1] = nnz;
    }
    weir_buf *out = NULL;
    char err[256];
    int rc = weir_tpx3_chunk_encode(acq, (weir_tpx3_dtype)vdt, n, indptr, ind, val, align, &out,
                                    err, sizeof err);
    if (rc) fprintf(stderr, "encode: %s\n", err);
    assert_int_equal(rc, 0);
    free(indptr);
    free(ind);
    free(val);
    return out;
}

/* The whole wire stream of a scan in chunks of `per` frames. */
static void scan_stream(const scan *s, unsigned ipdt, unsigned ixdt, unsigned vdt, uint32_t per,
                        size_t align, bstr *b)
{
    uint8_t h[32];
    weir_tpx3_header acqh;
    hand_acq_start(h, 7, 0, 1, (uint16_t)s->nframes, (uint8_t)ipdt, s->sig_h, s->sig_w,
                   (uint8_t)ixdt, 42);
    bs_add(b, h, 32);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &acqh, NULL, 0), 0);
    hand_scan_start(h, 5, 0);
    bs_add(b, h, 32);
    for (uint32_t f = 0; f < s->nframes; f += per) {
        uint32_t n = s->nframes - f < per ? s->nframes - f : per;
        bs_add_buf(b, scan_chunk(s, &acqh.u.acq_start, vdt, f, n, align));
    }
    hand_end(h, 0x03, 5);
    bs_add(b, h, 32);
    hand_end(h, 0x04, 42);
    bs_add(b, h, 32);
}

/* Pops every message; checks that nothing else comes out. */
static size_t drain(weir_tpx3_framer *f, weir_msg *out, size_t cap)
{
    size_t n = 0;
    char err[256];
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int rc = weir_tpx3_framer_next(f, &m, err, sizeof err);
        if (rc == WEIR_ETRUNCATED) break;
        if (rc) fprintf(stderr, "framer: %s\n", err);
        assert_int_equal(rc, 0);
        assert_true(n < cap);
        out[n++] = m;
    }
    return n;
}

static int msg_equal(const weir_msg *a, const weir_msg *b)
{
    if (a->nparts != b->nparts) return 0;
    for (size_t i = 0; i < a->nparts; i++) {
        size_t n = weir_buf_size(a->parts[i]);
        if (n != weir_buf_size(b->parts[i]) ||
            memcmp(weir_buf_data(a->parts[i]), weir_buf_data(b->parts[i]), n))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- tests */

static void test_header_layout(void **state)
{
    (void)state;
    uint8_t h[32], enc[32];
    weir_tpx3_header d;
    char err[256];

    hand_acq_start(h, 7, 1, 0x0102, 0x0304, 3, 0x0506, 0x0708, 4, 0xA1B2C3D4u);
    for (int i = 17; i < 32; i++)
        h[i] = (uint8_t)(0xE0 + i); /* reserved bytes must survive */
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), 0);
    assert_int_equal(d.tag, WEIR_TPX3_ACQ_START);
    assert_int_equal(d.u.acq_start.version, 7);
    assert_int_equal(d.u.acq_start.format_type, WEIR_TPX3_FORMAT_TOT);
    assert_int_equal(d.u.acq_start.nav_shape[0], 0x0102);
    assert_int_equal(d.u.acq_start.nav_shape[1], 0x0304);
    assert_int_equal(d.u.acq_start.indptr_dtype, WEIR_TPX3_U16);
    assert_int_equal(d.u.acq_start.sig_shape[0], 0x0506);
    assert_int_equal(d.u.acq_start.sig_shape[1], 0x0708);
    assert_int_equal(d.u.acq_start.indices_dtype, WEIR_TPX3_U32);
    assert_int_equal(d.u.acq_start.sequence, 0xA1B2C3D4u);
    assert_int_equal(d.u.acq_start.reserved[0], 0xE0 + 17);
    assert_int_equal(weir_tpx3_header_encode(&d, enc), 0);
    assert_memory_equal(enc, h, 32);
    /* the init helper writes the same bytes (reserved zero) */
    weir_tpx3_header ih;
    weir_tpx3_acq_start_init(&ih, WEIR_TPX3_FORMAT_TOT, 0x0102, 0x0304, WEIR_TPX3_U16, 0x0506,
                             0x0708, WEIR_TPX3_U32, 0xA1B2C3D4u);
    weir_tpx3_header_encode(&ih, enc);
    memset(h + 17, 0, 15);
    assert_memory_equal(enc, h, 32);

    hand_scan_start(h, 0x11223344u, UINT64_C(0x0102030405060708));
    h[31] = 0x5A;
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), 0);
    assert_int_equal(d.tag, WEIR_TPX3_SCAN_START);
    assert_int_equal(d.u.scan_start.sequence, 0x11223344u);
    assert_true(d.u.scan_start.metadata_length == UINT64_C(0x0102030405060708));
    assert_int_equal(d.u.scan_start.reserved[18], 0x5A);
    weir_tpx3_header_encode(&d, enc);
    assert_memory_equal(enc, h, 32);
    h[31] = 0;
    weir_tpx3_scan_start_init(&ih, 0x11223344u, UINT64_C(0x0102030405060708));
    weir_tpx3_header_encode(&ih, enc);
    assert_memory_equal(enc, h, 32);

    hand_chunk(h, 5, 0x01020304u, 0x05060708u, 0x090A0B0Cu, 0x0D0E0F10u);
    h[18] = 0x77;
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), 0);
    assert_int_equal(d.tag, WEIR_TPX3_ARRAY_CHUNK);
    assert_int_equal(d.u.chunk.value_dtype, WEIR_TPX3_U64);
    assert_int_equal(d.u.chunk.nframes, 0x01020304u);
    assert_int_equal(d.u.chunk.length, 0x05060708u);
    assert_int_equal(d.u.chunk.indices_offset, 0x090A0B0Cu);
    assert_int_equal(d.u.chunk.values_offset, 0x0D0E0F10u);
    assert_int_equal(d.u.chunk.reserved[0], 0x77);
    weir_tpx3_header_encode(&d, enc);
    assert_memory_equal(enc, h, 32);

    for (uint8_t tag = 3; tag <= 4; tag++) {
        hand_end(h, tag, 0xCAFEBABEu);
        h[5] = 0x01;
        assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), 0);
        assert_int_equal(d.tag, tag);
        assert_int_equal(d.u.end.sequence, 0xCAFEBABEu);
        assert_int_equal(d.u.end.reserved[0], 0x01);
        weir_tpx3_header_encode(&d, enc);
        assert_memory_equal(enc, h, 32);
        h[5] = 0;
        weir_tpx3_end_init(&ih, (weir_tpx3_tag)tag, 0xCAFEBABEu);
        weir_tpx3_header_encode(&ih, enc);
        assert_memory_equal(enc, h, 32);
    }
}

/* The CSR payload layout, byte by byte, against the encoder. */
static void test_chunk_layout(void **state)
{
    (void)state;
    weir_tpx3_header a;
    weir_tpx3_acq_start_init(&a, WEIR_TPX3_FORMAT_CSR, 1, 2, WEIR_TPX3_U16, 4, 4, WEIR_TPX3_U8, 1);
    /* 2 frames: {3: 7, 9: 300}, {15: 1}; values u32; align 4 */
    uint64_t indptr[] = {0, 2, 3}, ind[] = {3, 9, 15}, val[] = {7, 300, 1};
    weir_buf *b;
    char err[256];
    assert_int_equal(weir_tpx3_chunk_encode(&a.u.acq_start, WEIR_TPX3_U32, 2, indptr, ind, val, 4,
                                            &b, err, sizeof err),
                     0);
    uint8_t want[32 + 24];
    memset(want, 0, sizeof want);
    /* indptr 3 x u16 = 6 bytes -> indices at 8; 3 x u8 end at 11 -> values at 12 */
    hand_chunk(want, 4, 2, 3, 8, 12);
    uint8_t *p = want + 32;
    put_le(p + 0, 0, 2);
    put_le(p + 2, 2, 2);
    put_le(p + 4, 3, 2);
    p[8] = 3, p[9] = 9, p[10] = 15;
    put_le(p + 12, 7, 4);
    put_le(p + 16, 300, 4);
    put_le(p + 20, 1, 4);
    assert_int_equal(weir_buf_size(b), sizeof want);
    assert_memory_equal(weir_buf_data(b), want, sizeof want);
    uint64_t size;
    weir_tpx3_header c;
    assert_int_equal(weir_tpx3_header_decode(want, 32, &c, err, sizeof err), 0);
    assert_int_equal(weir_tpx3_chunk_size(&a.u.acq_start, &c.u.chunk, 0, &size, err, sizeof err),
                     0);
    assert_int_equal(size, 24);
    weir_buf_unref(b);
}

static void check_roundtrip(unsigned ipdt, unsigned ixdt, unsigned vdt, uint32_t per, size_t align,
                            uint32_t frames_per_msg, uint64_t seed)
{
    scan s;
    uint32_t maxv = vdt == WEIR_TPX3_U8 ? 255 : 60000;
    scan_make(&s, 12, 10, 37, maxv, seed);
    bstr b = {0};
    scan_stream(&s, ipdt, ixdt, vdt, per, align, &b);
    weir_tpx3_framer_opts o = {.frames_per_msg = frames_per_msg};
    weir_tpx3_framer *f;
    assert_int_equal(weir_tpx3_framer_new(&o, &f), 0);
    assert_int_equal(weir_tpx3_framer_feed(f, b.p, b.len), 0);
    weir_msg msgs[128];
    size_t n = drain(f, msgs, 128);
    size_t npix = (size_t)s.sig_h * s.sig_w;
    double *sum = calloc(npix, sizeof *sum), *ref = calloc(npix, sizeof *ref);
    uint64_t next_frame = 0;
    int started = 0, ended = 0;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        weir_stins_kind kind;
        int64_t fr;
        assert_int_equal(weir_tpx3_classify(&msgs[i], &kind, &fr, err, sizeof err), 0);
        weir_tpx3_packet p;
        assert_int_equal(weir_tpx3_packet_parse(&msgs[i], 1, &p, err, sizeof err), 0);
        if (kind == WEIR_STINS_HEADER) {
            assert_int_equal(i, 0);
            assert_int_equal(p.kind, WEIR_TPX3_MSG_START);
            assert_int_equal(p.acq.sig_shape[0], 12);
            assert_int_equal(p.scan.sequence, 5);
            started = 1;
        } else if (kind == WEIR_STINS_IMAGE) {
            assert_true(started && !ended);
            assert_int_equal(fr, (int64_t)next_frame);
            assert_int_equal(p.first_frame, next_frame);
            uint64_t first;
            uint32_t cnt;
            assert_int_equal(weir_tpx3_msg_frames(&msgs[i], &first, &cnt), 0);
            assert_int_equal(first, next_frame);
            assert_int_equal(cnt, p.nrows);
            if (frames_per_msg != WEIR_TPX3_WHOLE_CHUNKS) assert_true(p.nrows <= frames_per_msg);
            for (uint32_t r = 0; r < p.nrows; r++) {
                weir_array d;
                uint64_t fidx = p.first_frame + r;
                weir_dtype_kind k = r % 2 ? WEIR_DT_U32 : WEIR_DT_F64;
                assert_int_equal(
                    weir_tpx3_chunk_dense(&p.chunk, p.row0 + r, k, &d, err, sizeof err), 0);
                assert_int_equal(d.ndim, 2);
                assert_int_equal(d.shape[0], 12);
                assert_int_equal(d.shape[1], 10);
                for (size_t q = 0; q < npix; q++) {
                    uint32_t want = s.dense[fidx * npix + q];
                    double got = weir_array_get_f64(&d, q);
                    if (got != (double)want)
                        fail_msg("frame %llu pixel %zu: %g != %u", (unsigned long long)fidx, q, got,
                                 want);
                    ref[q] += want;
                }
                weir_array_release(&d);
            }
            assert_int_equal(
                weir_tpx3_chunk_add_f64(&p.chunk, p.row0, p.nrows, sum, err, sizeof err), 0);
            next_frame += p.nrows;
        } else {
            assert_int_equal(kind, WEIR_STINS_SERIES_END);
            assert_int_equal(fr, -1);
            ended = 1;
        }
        weir_tpx3_packet_clear(&p);
    }
    assert_true(ended);
    assert_int_equal(next_frame, s.nframes);
    for (size_t q = 0; q < npix; q++)
        assert_true(sum[q] == ref[q]);
    const weir_tpx3_framer_stats *st = weir_tpx3_framer_stats_get(f);
    assert_int_equal(st->frames, s.nframes);
    assert_int_equal(st->bytes, b.len);
    assert_int_equal(st->skipped, 0);
    assert_int_equal(st->seq_mismatch, 0);
    assert_false(weir_tpx3_framer_in_scan(f));
    for (size_t i = 0; i < n; i++)
        weir_msg_clear(&msgs[i]);
    weir_tpx3_framer_free(f);
    free(sum);
    free(ref);
    free(s.dense);
    free(b.p);
}

static void test_roundtrip_dense(void **state)
{
    (void)state;
    /* dtype combinations, chunkings, paddings and message splittings */
    check_roundtrip(WEIR_TPX3_U32, WEIR_TPX3_U32, WEIR_TPX3_U16, 8, 1, 1, 1);
    check_roundtrip(WEIR_TPX3_U16, WEIR_TPX3_U16, WEIR_TPX3_U32, 5, 8, 1, 2);
    check_roundtrip(WEIR_TPX3_U64, WEIR_TPX3_U8, WEIR_TPX3_U8, 37, 4, WEIR_TPX3_WHOLE_CHUNKS, 3);
    check_roundtrip(WEIR_TPX3_U8, WEIR_TPX3_U64, WEIR_TPX3_U64, 3, 16, 2, 4);
    check_roundtrip(WEIR_TPX3_U32, WEIR_TPX3_U16, WEIR_TPX3_U16, 7, 1, 3, 5);
}

static void test_framer_pieces(void **state)
{
    (void)state;
    scan s;
    scan_make(&s, 8, 8, 20, 1000, 77);
    bstr b = {0};
    scan_stream(&s, WEIR_TPX3_U32, WEIR_TPX3_U16, WEIR_TPX3_U16, 6, 4, &b);
    weir_tpx3_framer *fa, *fb, *fc;
    assert_int_equal(weir_tpx3_framer_new(NULL, &fa), 0);
    assert_int_equal(weir_tpx3_framer_new(NULL, &fb), 0);
    assert_int_equal(weir_tpx3_framer_new(NULL, &fc), 0);
    weir_msg ma[64], mb[64], mc[64];
    assert_int_equal(weir_tpx3_framer_feed(fa, b.p, b.len), 0);
    size_t na = drain(fa, ma, 64), nb = 0, nc = 0;
    for (size_t i = 0; i < b.len; i++) {
        assert_int_equal(weir_tpx3_framer_feed(fb, b.p + i, 1), 0);
        nb += drain(fb, mb + nb, 64 - nb);
        assert_true(weir_tpx3_framer_pending(fb) < 32 + 200);
    }
    uint64_t seed = 9;
    for (size_t i = 0; i < b.len;) {
        size_t k = 1 + rng_next(&seed) % 50;
        if (k > b.len - i) k = b.len - i;
        assert_int_equal(weir_tpx3_framer_feed(fc, b.p + i, k), 0);
        i += k;
        if (rng_next(&seed) % 2) nc += drain(fc, mc + nc, 64 - nc);
    }
    nc += drain(fc, mc + nc, 64 - nc);
    assert_int_equal(na, 1 + 20 + 1);
    assert_int_equal(nb, na);
    assert_int_equal(nc, na);
    for (size_t i = 0; i < na; i++) {
        assert_true(msg_equal(&ma[i], &mb[i]));
        assert_true(msg_equal(&ma[i], &mc[i]));
        weir_msg_clear(&ma[i]);
        weir_msg_clear(&mb[i]);
        weir_msg_clear(&mc[i]);
    }
    assert_int_equal(weir_tpx3_framer_pending(fb), 0);
    weir_tpx3_framer_free(fa);
    weir_tpx3_framer_free(fb);
    weir_tpx3_framer_free(fc);
    free(s.dense);
    free(b.p);
}

/* Feeds bytes and returns the first error of the framer (0 if none). */
static int framer_error(const uint8_t *d, size_t n, int *broken, char *err, size_t errlen,
                        int *nmsgs)
{
    weir_tpx3_framer_opts o = {.frames_per_msg = 1, .max_payload = 1 << 20};
    weir_tpx3_framer *f;
    assert_int_equal(weir_tpx3_framer_new(&o, &f), 0);
    assert_int_equal(weir_tpx3_framer_feed(f, d, n), 0);
    int rc = 0, msgs = 0;
    char tmp[256];
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int r = weir_tpx3_framer_next(f, &m, rc ? tmp : err, rc ? sizeof tmp : errlen);
        if (r == 0) {
            msgs++;
            weir_msg_clear(&m);
            continue;
        }
        if (r != WEIR_ETRUNCATED && !rc) {
            rc = r;
            *broken = weir_tpx3_framer_broken(f);
            if (*broken) break;
            continue; /* recoverable: the framer goes on */
        }
        if (r == WEIR_ETRUNCATED) break;
    }
    if (nmsgs) *nmsgs = msgs;
    weir_tpx3_framer_free(f);
    return rc;
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t h[32];
    char err[256];
    int broken;
    weir_tpx3_header d;

    /* truncated header */
    hand_end(h, 0x03, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 31, &d, err, sizeof err), WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "31 of 32"));
    /* bad tag (the "magic" of this format) */
    h[0] = 0x05;
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 0"));
    assert_non_null(strstr(err, "0x05"));
    assert_int_equal(framer_error(h, 32, &broken, err, sizeof err, NULL), WEIR_EFORMAT);
    assert_true(broken);
    assert_non_null(strstr(err, "stream byte 0"));
    /* bad version */
    hand_acq_start(h, 6, 0, 1, 1, 4, 16, 16, 4, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EUNSUPPORTED);
    assert_non_null(strstr(err, "version 6"));
    /* bad format type, dtypes */
    hand_acq_start(h, 7, 2, 1, 1, 4, 16, 16, 4, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 2"));
    hand_acq_start(h, 7, 0, 1, 1, 0, 16, 16, 4, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EUNSUPPORTED);
    assert_non_null(strstr(err, "byte 7"));
    hand_acq_start(h, 7, 0, 1, 1, 4, 16, 16, 9, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "byte 12"));
    hand_acq_start(h, 7, 0, 1, 1, 4, 0, 16, 4, 1);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_ESHAPE);
    hand_chunk(h, 1, 1, 0, 8, 8);
    assert_int_equal(weir_tpx3_header_decode(h, 32, &d, err, sizeof err), WEIR_EUNSUPPORTED);

    /* a stream: acq start (indptr u32, indices u16, sig 4x4), scan start, then a chunk */
    uint8_t st[32 * 2 + 32 + 64];
    hand_acq_start(st, 7, 0, 1, 1, 4, 4, 4, 3, 1);
    hand_scan_start(st + 32, 1, 0);
    uint8_t *c = st + 64, *pl = st + 96;
    /* ArrayChunk before any AcquisitionStart: cannot be sized, fatal */
    hand_chunk(c, 3, 1, 1, 8, 10);
    assert_int_equal(framer_error(c, 32, &broken, err, sizeof err, NULL), WEIR_EFORMAT);
    assert_true(broken);
    assert_non_null(strstr(err, "before any AcquisitionStart"));
    /* inconsistent sizes: indices_offset inside indptr (2 x u32 = 8 bytes) */
    hand_chunk(c, 3, 1, 1, 6, 10);
    assert_int_equal(framer_error(st, 96, &broken, err, sizeof err, NULL), WEIR_EFORMAT);
    assert_true(broken);
    assert_non_null(strstr(err, "stream byte 64"));
    assert_non_null(strstr(err, "indices_offset 6"));
    /* values_offset inside the indices (2 x u16 from 8 end at 12) */
    hand_chunk(c, 3, 1, 2, 8, 10);
    assert_int_equal(framer_error(st, 96, &broken, err, sizeof err, NULL), WEIR_EFORMAT);
    assert_true(broken);
    assert_non_null(strstr(err, "values_offset 10"));
    /* payload larger than allowed */
    hand_chunk(c, 5, 1, 1, 8, 2000000);
    assert_int_equal(framer_error(st, 96, &broken, err, sizeof err, NULL), WEIR_ERANGE);
    assert_true(broken);

    /* valid sizes, bad contents: recoverable, the chunk is dropped */
    int nm;
    memset(pl, 0, 64);
    hand_chunk(c, 3, 1, 2, 8, 12); /* payload 12 + 2 x u16 = 16 bytes */
    put_le(pl, 0, 4);
    put_le(pl + 4, 1, 4); /* indptr[1] = 1 != length 2 */
    put_le(pl + 8, 3, 2);
    put_le(pl + 10, 5, 2);
    assert_int_equal(framer_error(st, 96 + 16, &broken, err, sizeof err, &nm), WEIR_EFORMAT);
    assert_false(broken);
    assert_int_equal(nm, 1); /* the start message only */
    assert_non_null(strstr(err, "byte 64"));
    assert_non_null(strstr(err, "indptr[1] = 1"));
    put_le(pl + 4, 2, 4);
    put_le(pl + 10, 16, 2); /* index 16 of a 4 x 4 signal */
    assert_int_equal(framer_error(st, 96 + 16, &broken, err, sizeof err, &nm), WEIR_ERANGE);
    assert_false(broken);
    assert_non_null(strstr(err, "indices[1] = 16"));
    put_le(pl, 1, 4); /* indptr[0] != 0 */
    put_le(pl + 10, 15, 2);
    assert_int_equal(framer_error(st, 96 + 16, &broken, err, sizeof err, &nm), WEIR_EFORMAT);
    assert_non_null(strstr(err, "indptr[0] = 1"));
    put_le(pl, 0, 4);
    assert_int_equal(framer_error(st, 96 + 16, &broken, err, sizeof err, &nm), 0);
    assert_int_equal(nm, 2);
    /* the same chunk outside a scan: skipped, framing intact */
    memmove(st + 32, c, 32 + 16);
    hand_end(st + 32 + 48, 0x04, 1);
    assert_int_equal(framer_error(st, 32 + 48 + 32, &broken, err, sizeof err, &nm), WEIR_EFORMAT);
    assert_false(broken);
    assert_int_equal(nm, 0);
    assert_non_null(strstr(err, "outside a scan"));

    /* chunk payload views: wrong sizes */
    weir_tpx3_header a, ch;
    hand_acq_start(h, 7, 0, 1, 1, 4, 4, 4, 3, 1);
    weir_tpx3_header_decode(h, 32, &a, NULL, 0);
    hand_chunk(h, 3, 1, 2, 8, 12);
    weir_tpx3_header_decode(h, 32, &ch, NULL, 0);
    weir_buf *pb = weir_buf_copy(pl, 15);
    weir_tpx3_chunk cv;
    assert_int_equal(weir_tpx3_chunk_view(&a.u.acq_start, &ch.u.chunk, pb, 1, &cv, err, sizeof err),
                     WEIR_ETRUNCATED);
    weir_buf_unref(pb);
    pb = weir_buf_copy(pl, 17);
    assert_int_equal(weir_tpx3_chunk_view(&a.u.acq_start, &ch.u.chunk, pb, 1, &cv, err, sizeof err),
                     WEIR_EFORMAT);
    weir_buf_unref(pb);
}

static void test_dense_overflow(void **state)
{
    (void)state;
    weir_tpx3_header a;
    weir_tpx3_acq_start_init(&a, WEIR_TPX3_FORMAT_CSR, 1, 1, WEIR_TPX3_U32, 2, 2, WEIR_TPX3_U32, 1);
    uint64_t indptr[] = {0, 3}, ind[] = {1, 1, 2}, val[] = {200, 100, 5};
    weir_buf *b;
    char err[256];
    assert_int_equal(weir_tpx3_chunk_encode(&a.u.acq_start, WEIR_TPX3_U16, 1, indptr, ind, val, 1,
                                            &b, err, sizeof err),
                     0);
    weir_tpx3_header ch;
    assert_int_equal(weir_tpx3_header_decode(weir_buf_data(b), 32, &ch, err, sizeof err), 0);
    weir_buf *pv = weir_buf_view(b, 32, weir_buf_size(b) - 32);
    weir_tpx3_chunk c;
    assert_int_equal(weir_tpx3_chunk_view(&a.u.acq_start, &ch.u.chunk, pv, 1, &c, err, sizeof err),
                     0);
    weir_array d;
    assert_int_equal(weir_tpx3_chunk_dense(&c, 0, WEIR_DT_U8, &d, err, sizeof err), WEIR_ERANGE);
    assert_non_null(strstr(err, "pixel 1"));
    assert_int_equal(weir_tpx3_chunk_dense(&c, 0, WEIR_DT_U16, &d, err, sizeof err), 0);
    assert_true(weir_array_get_f64(&d, 1) == 300.0);
    assert_true(weir_array_get_f64(&d, 2) == 5.0);
    assert_true(weir_array_get_f64(&d, 0) == 0.0);
    weir_array_release(&d);
    assert_int_equal(weir_tpx3_chunk_dense(&c, 1, WEIR_DT_U16, &d, err, sizeof err), WEIR_ERANGE);
    assert_int_equal(weir_tpx3_chunk_dense(&c, 0, WEIR_DT_I32, &d, err, sizeof err), WEIR_EDTYPE);
    weir_tpx3_chunk_clear(&c);
    weir_buf_unref(pv);
    weir_buf_unref(b);
    /* the encoder refuses what its dtypes cannot hold */
    uint64_t big[] = {70000, 1, 1};
    assert_int_equal(weir_tpx3_chunk_encode(&a.u.acq_start, WEIR_TPX3_U16, 1, indptr, ind, big, 1,
                                            &b, err, sizeof err),
                     WEIR_ERANGE);
    assert_null(b);
    uint64_t bad_ind[] = {1, 4, 2};
    assert_int_equal(weir_tpx3_chunk_encode(&a.u.acq_start, WEIR_TPX3_U16, 1, indptr, bad_ind, val,
                                            1, &b, err, sizeof err),
                     WEIR_ERANGE);
}

static void test_sequence_and_cancel(void **state)
{
    (void)state;
    /* acq, scan 1 (one chunk), scan end with another sequence, scan 2
     * cancelled by AcquisitionEnd, then a new acquisition (the sim loops) */
    scan s;
    scan_make(&s, 4, 4, 3, 100, 5);
    weir_tpx3_header a;
    weir_tpx3_acq_start_init(&a, WEIR_TPX3_FORMAT_CSR, 1, 3, WEIR_TPX3_U32, 4, 4, WEIR_TPX3_U32, 9);
    bstr b = {0};
    uint8_t h[32];
    weir_tpx3_header_encode(&a, h);
    bs_add(&b, h, 32);
    const char meta[] = "{\"scan\": 1}";
    hand_scan_start(h, 1, sizeof meta - 1);
    bs_add(&b, h, 32);
    bs_add(&b, meta, sizeof meta - 1);
    bs_add_buf(&b, scan_chunk(&s, &a.u.acq_start, WEIR_TPX3_U16, 0, 3, 1));
    hand_end(h, 3, 2); /* sequence mismatch: counted */
    bs_add(&b, h, 32);
    hand_scan_start(h, 2, 0);
    bs_add(&b, h, 32);
    bs_add_buf(&b, scan_chunk(&s, &a.u.acq_start, WEIR_TPX3_U16, 0, 2, 1));
    hand_end(h, 4, 9);
    bs_add(&b, h, 32);
    weir_tpx3_header_encode(&a, h);
    bs_add(&b, h, 32);
    weir_tpx3_framer *f;
    assert_int_equal(weir_tpx3_framer_new(NULL, &f), 0);
    assert_int_equal(weir_tpx3_framer_feed(f, b.p, b.len), 0);
    weir_msg m[16];
    size_t n = drain(f, m, 16);
    /* start, 3 images, end, start, 2 images, end (AcquisitionEnd) */
    assert_int_equal(n, 9);
    weir_stins_kind want[] = {WEIR_STINS_HEADER, WEIR_STINS_IMAGE,      WEIR_STINS_IMAGE,
                              WEIR_STINS_IMAGE,  WEIR_STINS_SERIES_END, WEIR_STINS_HEADER,
                              WEIR_STINS_IMAGE,  WEIR_STINS_IMAGE,      WEIR_STINS_SERIES_END};
    int64_t wantf[] = {-1, 0, 1, 2, -1, -1, 0, 1, -1};
    char err[256];
    for (size_t i = 0; i < n; i++) {
        weir_stins_kind k;
        int64_t fr;
        assert_int_equal(weir_tpx3_classify(&m[i], &k, &fr, err, sizeof err), 0);
        assert_int_equal(k, want[i]);
        assert_int_equal(fr, wantf[i]);
    }
    weir_tpx3_packet p;
    assert_int_equal(weir_tpx3_packet_parse(&m[0], 1, &p, err, sizeof err), 0);
    assert_int_equal(p.metadata_len, sizeof meta - 1);
    assert_memory_equal(p.metadata, meta, sizeof meta - 1);
    weir_tpx3_packet_clear(&p);
    assert_int_equal(weir_tpx3_packet_parse(&m[8], 1, &p, err, sizeof err), 0);
    assert_int_equal(p.head.tag, WEIR_TPX3_ACQ_END);
    weir_tpx3_packet_clear(&p);
    const weir_tpx3_framer_stats *st = weir_tpx3_framer_stats_get(f);
    assert_int_equal(st->seq_mismatch, 1);
    assert_int_equal(st->scans, 2);
    assert_int_equal(st->wire_msgs, 8);
    /* malformed messages for classify */
    weir_msg bad;
    weir_msg_init(&bad);
    weir_stins_kind k;
    int64_t fr;
    assert_int_equal(weir_tpx3_classify(&bad, &k, &fr, err, sizeof err), WEIR_EFORMAT);
    weir_msg_append(&bad, weir_buf_ref(m[1].parts[0])); /* an ArrayChunk header alone */
    assert_int_equal(weir_tpx3_classify(&bad, &k, &fr, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "1 parts"));
    weir_msg_clear(&bad);
    for (size_t i = 0; i < n; i++)
        weir_msg_clear(&m[i]);
    weir_tpx3_framer_free(f);
    free(s.dense);
    free(b.p);
}

static void test_reader_writer(void **state)
{
    (void)state;
    scan s;
    scan_make(&s, 16, 16, 30, 4000, 11);
    bstr b = {0};
    scan_stream(&s, WEIR_TPX3_U32, WEIR_TPX3_U16, WEIR_TPX3_U16, 7, 8, &b);
    const char *dir = tu_tmpdir("tpx3_rw");
    char path[1024];
    snprintf(path, sizeof path, "%s/stream.tpx3", dir);
    weir_tpx3_writer *w;
    char err[256];
    assert_int_equal(weir_tpx3_writer_open(path, &w, err, sizeof err), 0);
    /* the first two headers through the control encoder, the rest raw */
    weir_tpx3_header h;
    assert_int_equal(weir_tpx3_header_decode(b.p, 32, &h, err, sizeof err), 0);
    assert_int_equal(weir_tpx3_writer_control(w, &h, NULL, 0), 0);
    assert_int_equal(weir_tpx3_header_decode(b.p + 32, 32, &h, err, sizeof err), 0);
    assert_int_equal(weir_tpx3_writer_control(w, &h, NULL, 0), 0);
    assert_int_equal(weir_tpx3_writer_write(w, b.p + 64, b.len - 64), 0);
    assert_int_equal(weir_tpx3_writer_close(w), 0);
    size_t flen;
    uint8_t *file = tu_read_file(path, &flen);
    assert_int_equal(flen, b.len);
    assert_memory_equal(file, b.p, b.len);
    free(file);

    weir_tpx3_reader *r;
    assert_int_equal(weir_tpx3_reader_open(path, &r, err, sizeof err), 0);
    size_t pos = 0, count = 0, chunks = 0;
    for (int pass = 0; pass < 2; pass++) {
        pos = count = chunks = 0;
        for (;;) {
            weir_tpx3_item it;
            int eof;
            assert_int_equal(weir_tpx3_reader_next(r, 1, &it, &eof, err, sizeof err), 0);
            if (eof) break;
            assert_int_equal(it.offset, pos);
            assert_int_equal(it.index, count);
            assert_memory_equal(weir_buf_data(it.wire), b.p + pos, it.size);
            if (it.hdr.tag == WEIR_TPX3_ARRAY_CHUNK) chunks++;
            pos += it.size;
            count++;
            weir_tpx3_item_clear(&it);
        }
        assert_int_equal(pos, b.len);
        assert_int_equal(chunks, 5); /* 30 frames in 7s */
        weir_tpx3_reader_rewind(r);
    }
    weir_tpx3_reader_free(r);

    /* cut inside the last chunk: an error naming its offset, and again */
    weir_buf *cut = weir_buf_copy(b.p, b.len - 100);
    assert_int_equal(weir_tpx3_reader_new(cut, "cut", &r), 0);
    int rc = 0;
    size_t bad_at = 0;
    for (;;) {
        weir_tpx3_item it;
        int eof;
        rc = weir_tpx3_reader_next(r, 1, &it, &eof, err, sizeof err);
        if (rc || eof) break;
        bad_at = it.offset + it.size;
        weir_tpx3_item_clear(&it);
    }
    assert_int_equal(rc, WEIR_ETRUNCATED);
    char want[64];
    snprintf(want, sizeof want, "cut: byte %zu:", bad_at);
    assert_non_null(strstr(err, want));
    weir_tpx3_item it2;
    int eof2;
    assert_int_equal(weir_tpx3_reader_next(r, 1, &it2, &eof2, err, sizeof err), WEIR_ETRUNCATED);
    weir_tpx3_reader_free(r);
    weir_buf_unref(cut);
    free(s.dense);
    free(b.p);
}

static void test_synth(void **state)
{
    (void)state;
    weir_tpx3_synth_opts o = {.nframes = 50,
                              .frames_per_chunk = 16,
                              .nav_h = 5,
                              .nav_w = 10,
                              .sig_h = 32,
                              .sig_w = 32,
                              .max_hits = 20,
                              .max_value = 50,
                              .indptr_dtype = WEIR_TPX3_U32,
                              .indices_dtype = WEIR_TPX3_U32,
                              .value_dtype = WEIR_TPX3_U16,
                              .align = 8,
                              .seed = 3};
    weir_buf *a, *b2;
    char err[256];
    assert_int_equal(weir_tpx3_synth(&o, &a, err, sizeof err), 0);
    assert_int_equal(weir_tpx3_synth(&o, &b2, err, sizeof err), 0);
    assert_int_equal(weir_buf_size(a), weir_buf_size(b2));
    assert_memory_equal(weir_buf_data(a), weir_buf_data(b2), weir_buf_size(a));
    weir_tpx3_framer *f;
    assert_int_equal(weir_tpx3_framer_new(NULL, &f), 0);
    assert_int_equal(weir_tpx3_framer_feed(f, weir_buf_data(a), weir_buf_size(a)), 0);
    weir_msg m[64];
    size_t n = drain(f, m, 64);
    assert_int_equal(n, 52);
    weir_tpx3_packet p;
    assert_int_equal(weir_tpx3_packet_parse(&m[0], 1, &p, err, sizeof err), 0);
    assert_int_equal(p.acq.nav_shape[0], 5);
    assert_int_equal(p.acq.nav_shape[1], 10);
    weir_tpx3_packet_clear(&p);
    for (size_t i = 0; i < n; i++)
        weir_msg_clear(&m[i]);
    assert_int_equal(weir_tpx3_framer_stats_get(f)->frames, 50);
    weir_tpx3_framer_free(f);
    weir_buf_unref(a);
    weir_buf_unref(b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_chunk_layout),
        cmocka_unit_test(test_roundtrip_dense),
        cmocka_unit_test(test_framer_pieces),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dense_overflow),
        cmocka_unit_test(test_sequence_and_cancel),
        cmocka_unit_test(test_reader_writer),
        cmocka_unit_test(test_synth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
