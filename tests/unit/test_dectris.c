/* test_dectris.c — DECTRIS stream v1 and v2 (include/weir/dectris.h) on real
 * captures and on weir's own encoders.
 *
 * Ground truth: per-channel sums, maxima and pixel counts at the maximum of
 * the three stream2 captures come from the table in ../shared/data/README.md
 * (an independent cbor2 + lz4 + numpy decode); statistics here are computed
 * from the little-endian bytes directly, not through weir_array helpers. The
 * eiger-small.cbors header values (series 6, 3108 x 3262, 32 bit, nimages 3,
 * ntrigger 1, "ints", the appendix's col_id 128579) and payload sizes were
 * read with `strings` from the capture while writing this test;
 * reference/dranspose.md §3.3 describes the file. MD5 vectors are RFC 1321's
 * and md5sum's. Round trips compare the decoded bytes with the encoder's
 * input for every encoding, compression and several dtypes. Bad inputs are
 * hand-made messages, each checked for its code, a message naming the
 * problem, and an empty packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/cbors.h"
#include "weir/dectris.h"
#include "weir/error.h"

#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    uint64_t sum, max;
    size_t at_max;
} stats;

/* Statistics of a C-contiguous little-endian unsigned array, from its bytes. */
static stats le_stats(const weir_array *a)
{
    stats s = {0, 0, 0};
    size_t isz = weir_dtype_size(a->dtype.kind), n = weir_array_nelem(a);
    assert_true(weir_array_is_contiguous(a));
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (size_t k = 0; k < isz; k++)
            v |= (uint64_t)a->data[i * isz + k] << (8 * k);
        s.sum += v;
        if (v > s.max) {
            s.max = v;
            s.at_max = 0;
        }
        if (v == s.max) s.at_max++;
    }
    return s;
}

static void v2_ok(const uint8_t *b, size_t n, int decode, weir_dectris_packet *p)
{
    char err[512] = "";
    int rc = weir_dectris_v2_parse(b, n, decode, p, err, sizeof err);
    if (rc) fail_msg("v2 parse: %s (%s)", err, weir_err_name(rc));
}

static void v1_ok(const weir_msg *m, int decode, weir_dectris_packet *p)
{
    char err[512] = "";
    int rc = weir_dectris_v1_parse(m, decode, p, err, sizeof err);
    if (rc) fail_msg("v1 parse: %s (%s)", err, weir_err_name(rc));
}

static void assert_empty(const weir_dectris_packet *p)
{
    assert_null(p->json_);
    assert_null(p->cbor_);
    assert_null(p->channels);
    assert_null(p->aux);
    assert_null(p->appendix);
    assert_int_equal(p->nchannels, 0);
}

/* Expects v1 parse of m to fail with code and a message containing word. */
static void v1_bad(const weir_msg *m, int decode, int code, const char *word)
{
    weir_dectris_packet p;
    char err[512] = "";
    int rc = weir_dectris_v1_parse(m, decode, &p, err, sizeof err);
    if (rc != code || !strstr(err, word))
        fail_msg("expected %s with \"%s\", got %s: %s", weir_err_name(code), word,
                 weir_err_name(rc), err);
    assert_non_null(strstr(err, "DECTRIS v1"));
    assert_empty(&p);
}

static void v2_bad(const uint8_t *b, size_t n, int code, const char *word)
{
    weir_dectris_packet p;
    char err[512] = "";
    int rc = weir_dectris_v2_parse(b, n, 1, &p, err, sizeof err);
    if (rc != code || !strstr(err, word))
        fail_msg("expected %s with \"%s\", got %s: %s", weir_err_name(code), word,
                 weir_err_name(rc), err);
    assert_non_null(strstr(err, "DECTRIS v2"));
    assert_empty(&p);
}

static void add_text(weir_msg *m, const char *s)
{
    assert_int_equal(weir_msg_append(m, weir_buf_copy(s, strlen(s))), 0);
}

static void add_bytes(weir_msg *m, const void *b, size_t n)
{
    assert_int_equal(weir_msg_append(m, weir_buf_copy(b, n)), 0);
}

/* Deterministic test pixels: mostly small values with a few large ones
 * (compressible, like detector data, but exercising every byte). */
static void fill(weir_array *a, uint32_t seed)
{
    size_t n = weir_array_nelem(a), isz = weir_dtype_size(a->dtype.kind);
    uint8_t *w = weir_buf_mutable(a->buf);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        uint64_t v = (x >> 28) % 5;
        if ((x & 0xff) == 7) v = x;
        memcpy(w + i * isz, &v, isz); /* host order = little endian here */
    }
}

static weir_array make_array(weir_dtype_kind k, size_t y, size_t x, uint32_t seed)
{
    weir_array a;
    size_t shape[2] = {y, x};
    assert_int_equal(weir_array_alloc(&a, (weir_dtype){k, WEIR_LITTLE}, 2, shape), 0);
    fill(&a, seed);
    return a;
}

static void assert_same_pixels(const weir_array *got, const weir_array *want)
{
    assert_int_equal(got->dtype.kind, want->dtype.kind);
    assert_int_equal(got->ndim, want->ndim);
    for (int i = 0; i < want->ndim; i++)
        assert_int_equal(got->shape[i], want->shape[i]);
    size_t n = weir_array_nelem(want);
    for (size_t i = 0; i < n; i++)
        if (weir_array_get_f64(got, i) != weir_array_get_f64(want, i))
            fail_msg("pixel %zu: %g != %g", i, weir_array_get_f64(got, i),
                     weir_array_get_f64(want, i));
}

/* ---- stream v2: real captures ---------------------------------------------- */

typedef struct {
    const char *dir;
    weir_dtype_kind kind;
    weir_dectris_encoding enc;
    stats ch[3]; /* threshold_1, threshold_2, difference */
} capture_truth;

static const capture_truth truths[3] = {
    {"r500k_bm_bslz4_16bit",
     WEIR_DT_U16,
     WEIR_DECTRIS_ENC_BSLZ4,
     {{909218, 4, 4503}, {908375, 4, 4303}, {12746207625ull, 65535, 194490}}},
    {"r500k_bm_bslz4_32bit",
     WEIR_DT_U32,
     WEIR_DECTRIS_ENC_BSLZ4,
     {{7414309, 28, 13562}, {7402644, 28, 13542}, {1093915287603637ull, 4294967295ull, 254697}}},
    {"r500k_bm_lz4_8bit",
     WEIR_DT_U8,
     WEIR_DECTRIS_ENC_LZ4,
     {{909336, 4, 4326}, {908359, 4, 4348}, {49907273, 255, 194519}}},
};
static const char *const chan_names[3] = {"threshold_1", "threshold_2", "difference"};

static void test_v2_real_images(void **state)
{
    (void)state;
    for (int t = 0; t < 3; t++) {
        char rel[128];
        size_t n;
        snprintf(rel, sizeof rel, "dectris/stream2/%s/000001.cbor", truths[t].dir);
        uint8_t *b = tu_read_file(tu_shared(rel), &n);
        weir_dectris_packet p;
        v2_ok(b, n, 1, &p);
        free(b); /* the packet must not refer to the input */
        assert_int_equal(p.version, 2);
        assert_int_equal(p.kind, WEIR_DECTRIS_IMAGE);
        assert_int_equal(p.series, 1);
        assert_int_equal(p.frame, 0);
        assert_int_equal(p.nchannels, 3);
        weir_array keep[3];
        for (int c = 0; c < 3; c++) {
            const weir_dectris_channel *ch = weir_dectris_channel_find(&p, chan_names[c]);
            assert_non_null(ch);
            assert_int_equal(ch->encoding, truths[t].enc);
            assert_int_equal(ch->data.dtype.kind, truths[t].kind);
            assert_int_equal(ch->data.dtype.order, WEIR_LITTLE);
            assert_int_equal(ch->data.ndim, 2);
            assert_int_equal(ch->data.shape[0], 514);
            assert_int_equal(ch->data.shape[1], 1030);
            weir_array_copy_view(&keep[c], &ch->data);
        }
        const char *uid;
        assert_int_equal(weir_dectris_get_str(&p, "series_unique_id", &uid), 0);
        assert_int_equal(strlen(uid), 26);
        int64_t den;
        assert_int_equal(weir_dectris_get_i64(&p, "real_time.1", &den), WEIR_ENOTFOUND);
        assert_int_equal(weir_dectris_get_str(&p, "data.threshold_1.dtype", &uid), 0);
        assert_string_equal(uid, weir_dtype_name(truths[t].kind));
        weir_dectris_clear(&p);
        /* the arrays outlive the packet */
        for (int c = 0; c < 3; c++) {
            stats s = le_stats(&keep[c]);
            if (s.sum != truths[t].ch[c].sum || s.max != truths[t].ch[c].max ||
                s.at_max != truths[t].ch[c].at_max)
                fail_msg("%s %s: sum %llu max %llu count %zu", truths[t].dir, chan_names[c],
                         (unsigned long long)s.sum, (unsigned long long)s.max, s.at_max);
            weir_array_release(&keep[c]);
        }
    }
}

static void test_v2_real_no_decode_and_end(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = tu_read_file(tu_shared("dectris/stream2/r500k_bm_lz4_8bit/000001.cbor"), &n);
    weir_dectris_packet p;
    v2_ok(b, n, 0, &p);
    const weir_dectris_channel *ch = weir_dectris_channel_find(&p, "difference");
    assert_non_null(ch);
    assert_null(ch->data.buf);
    assert_int_equal(weir_buf_size(ch->raw), 371703); /* the byte string's length */
    weir_array a;
    char err[256];
    assert_int_equal(weir_dectris_aux(&p, "difference", &a, err, sizeof err), 0);
    stats s = le_stats(&a);
    assert_int_equal(s.sum, 49907273);
    weir_array_release(&a);
    assert_int_equal(weir_dectris_aux(&p, "nope", &a, err, sizeof err), WEIR_ENOTFOUND);
    char uid[64];
    const char *u;
    assert_int_equal(weir_dectris_get_str(&p, "series_unique_id", &u), 0);
    snprintf(uid, sizeof uid, "%s", u);
    weir_dectris_clear(&p);

    /* a byte-identical CBOR cap below the decoded size is refused */
    assert_int_equal(weir_dectris_v2_parse_ex(b, n, 1, 1000, &p, err, sizeof err), WEIR_ERANGE);
    assert_non_null(strstr(err, "limit"));
    assert_empty(&p);
    free(b);

    b = tu_read_file(tu_shared("dectris/stream2/r500k_bm_lz4_8bit/000011.cbor"), &n);
    v2_ok(b, n, 1, &p);
    assert_int_equal(p.kind, WEIR_DECTRIS_END);
    assert_int_equal(p.series, 1);
    assert_int_equal(p.frame, -1);
    assert_int_equal(weir_dectris_get_str(&p, "series_unique_id", &u), 0);
    assert_string_equal(u, uid);
    weir_dectris_clear(&p);
    free(b);
    for (int t = 0; t < 2; t++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dectris/stream2/%s/000011.cbor", truths[t].dir);
        b = tu_read_file(tu_shared(rel), &n);
        v2_ok(b, n, 1, &p);
        assert_int_equal(p.kind, WEIR_DECTRIS_END);
        weir_dectris_clear(&p);
        free(b);
    }
}

/* ---- stream v1: eiger-small.cbors ------------------------------------------ */

static void test_v1_eiger_small(void **state)
{
    (void)state;
    weir_cbors_reader *r = NULL;
    char err[512];
    assert_int_equal(weir_cbors_open(tu_shared("dranspose/eiger-small.cbors"), &r, err, sizeof err),
                     0);
    weir_msg m;
    int eof = 0;
    weir_dectris_packet p;

    weir_msg_init(&m);
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), 0);
    assert_int_equal(m.nparts, 9);
    v1_ok(&m, 1, &p);
    assert_int_equal(p.version, 1);
    assert_int_equal(p.kind, WEIR_DECTRIS_START);
    assert_string_equal(p.header_detail, "all");
    assert_int_equal(p.series, 6);
    assert_int_equal(p.x_pixels, 3108);
    assert_int_equal(p.y_pixels, 3262);
    assert_int_equal(p.bit_depth, 32);
    assert_int_equal(p.nimages, 3);
    assert_int_equal(p.ntrigger, 1);
    assert_string_equal(p.trigger_mode, "ints");
    assert_int_equal(weir_dectris_num_frames(&p), 3);
    const char *s;
    assert_int_equal(weir_dectris_get_str(&p, "config.description", &s), 0);
    assert_string_equal(s, "Dectris EIGER2 CdTe 9M");
    assert_int_equal(weir_dectris_get_str(&p, "pixel_mask.htype", &s), 0);
    assert_string_equal(s, "dpixelmask-1.0");
    int64_t v;
    assert_int_equal(weir_dectris_get_i64(&p, "appendix.collect_dict.col_id", &v), 0);
    assert_int_equal(v, 128579);
    assert_int_equal(weir_dectris_get_i64(&p, "config.description", &v), WEIR_EINVAL);
    assert_ptr_equal(p.appendix, m.parts[8]);
    assert_int_equal(p.naux, 3);
    /* the pixel mask blob was truncated to 20000 bytes in the capture */
    weir_array a;
    assert_int_equal(weir_dectris_aux(&p, "pixel_mask", &a, err, sizeof err), WEIR_ESHAPE);
    assert_non_null(strstr(err, "40553184"));
    /* the countrate table (8008 bytes) is whole: DECTRIS [2, 1001] -> (1001, 2) */
    assert_int_equal(weir_dectris_aux(&p, "countrate_table", &a, err, sizeof err), 0);
    assert_int_equal(a.dtype.kind, WEIR_DT_F32);
    assert_int_equal(a.shape[0], 1001);
    assert_int_equal(a.shape[1], 2);
    assert_ptr_equal(a.data, weir_buf_data(m.parts[7])); /* zero-copy */
    weir_array_release(&a);
    char *js = weir_dectris_json(&p);
    assert_non_null(strstr(js, "\"header_detail\":\"all\""));
    free(js);
    weir_dectris_clear(&p);
    weir_msg_clear(&m);

    static const int64_t sizes[3] = {755083, 754672, 755895};
    for (int f = 0; f < 3; f++) {
        weir_msg_init(&m);
        assert_int_equal(weir_cbors_next_raw(r, &m, &eof), 0);
        assert_int_equal(m.nparts, 5);
        v1_ok(&m, 0, &p);
        assert_int_equal(p.kind, WEIR_DECTRIS_IMAGE);
        assert_int_equal(p.series, 6);
        assert_int_equal(p.frame, f);
        assert_int_equal(p.nchannels, 1);
        const weir_dectris_channel *ch = weir_dectris_channel_find(&p, "image");
        assert_non_null(ch);
        assert_int_equal(ch->encoding, WEIR_DECTRIS_ENC_BSLZ4);
        assert_int_equal(ch->elem_size, 4);
        assert_int_equal(ch->dtype.kind, WEIR_DT_U32);
        assert_int_equal(ch->dtype.order, WEIR_LITTLE);
        assert_int_equal(ch->ndim, 2);
        assert_int_equal(ch->shape[0], 3262);
        assert_int_equal(ch->shape[1], 3108);
        assert_int_equal(ch->declared_size, sizes[f]);
        assert_int_equal(weir_buf_size(ch->raw), 20000);
        assert_null(ch->data.buf);
        assert_int_equal(weir_dectris_get_str(&p, "dimage_d.encoding", &s), 0);
        assert_string_equal(s, "bs32-lz4<");
        assert_int_equal(weir_dectris_get_i64(&p, "dconfig.real_time", &v), 0);
        assert_int_equal(v, 9999900);
        assert_int_equal(weir_dectris_get_str(&p, "hash", &s), 0);
        assert_int_equal(strlen(s), 32);
        weir_dectris_clear(&p);

        err[0] = '\0';
        int rc = weir_dectris_v1_parse(&m, 1, &p, err, sizeof err);
        assert_int_equal(rc, WEIR_ETRUNCATED);
        char want[64];
        snprintf(want, sizeof want, "image %d (series 6)", f);
        if (!strstr(err, want) || !strstr(err, "truncated")) fail_msg("message: %s", err);
        assert_empty(&p);
        weir_msg_clear(&m);
    }

    weir_msg_init(&m);
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), 0);
    v1_ok(&m, 1, &p);
    assert_int_equal(p.kind, WEIR_DECTRIS_END);
    assert_int_equal(p.series, 6);
    weir_dectris_clear(&p);
    weir_msg_clear(&m);
    weir_msg_init(&m);
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), 0);
    assert_true(eof);
    weir_cbors_close(r);
}

/* ---- stream v1: encoder ---------------------------------------------------- */

static void test_v1_header_levels(void **state)
{
    (void)state;
    static const char *const levels[3] = {"none", "basic", "all"};
    static const size_t parts[3] = {1, 2, 8};
    for (int l = 0; l < 3; l++) {
        for (int app = 0; app < 2; app++) {
            weir_dectris_series s = {0};
            s.series = 42;
            s.header_detail = levels[l];
            s.nimages = 5;
            s.ntrigger = 3;
            s.x_pixels = 8;
            s.y_pixels = 4;
            s.bit_depth = 16;
            s.extra_json = "{\"description\":\"sim\",\"nimages\":6}";
            s.appendix = app ? "{\"user\":1}" : NULL;
            weir_msg m;
            weir_msg_init(&m);
            assert_int_equal(weir_dectris_v1_encode_header(&m, &s), 0);
            assert_int_equal(m.nparts, parts[l] + (size_t)app);
            weir_dectris_packet p;
            v1_ok(&m, 1, &p);
            assert_int_equal(p.kind, WEIR_DECTRIS_START);
            assert_string_equal(p.header_detail, levels[l]);
            assert_int_equal(p.series, 42);
            if (l == 0) {
                assert_int_equal(p.x_pixels, -1);
                assert_int_equal(p.nimages, -1);
                assert_int_equal(weir_dectris_num_frames(&p), -1);
            } else {
                assert_int_equal(p.x_pixels, 8);
                assert_int_equal(p.y_pixels, 4);
                assert_int_equal(p.bit_depth, 16);
                assert_int_equal(p.nimages, 6); /* extra_json overrides */
                assert_int_equal(p.ntrigger, 3);
                assert_string_equal(p.trigger_mode, "ints");
                assert_int_equal(weir_dectris_num_frames(&p), 18);
            }
            if (app) {
                int64_t u;
                assert_int_equal(weir_dectris_get_i64(&p, "appendix.user", &u), 0);
                assert_int_equal(u, 1);
            } else {
                assert_null(p.appendix);
            }
            if (l == 2) {
                weir_array a;
                char err[256];
                assert_int_equal(weir_dectris_aux(&p, "flatfield", &a, err, sizeof err), 0);
                assert_int_equal(a.shape[0], 4);
                assert_int_equal(a.shape[1], 8);
                assert_true(weir_array_sum_f64(&a) == 32.0);
                weir_array_release(&a);
                assert_int_equal(weir_dectris_aux(&p, "pixel_mask", &a, err, sizeof err), 0);
                assert_int_equal(a.dtype.kind, WEIR_DT_U32);
                assert_true(weir_array_sum_f64(&a) == 0.0);
                weir_array_release(&a);
            } else {
                assert_int_equal(p.naux, 0);
            }
            weir_dectris_clear(&p);
            weir_msg_clear(&m);
        }
    }
    /* exte counts triggers only (LiberTEM-live's rule) */
    weir_dectris_series s = {.series = 1,
                             .trigger_mode = "exte",
                             .nimages = 4,
                             .ntrigger = 7,
                             .x_pixels = 2,
                             .y_pixels = 2,
                             .bit_depth = 8};
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_dectris_v1_encode_header(&m, &s), 0);
    weir_dectris_packet p;
    v1_ok(&m, 0, &p);
    assert_int_equal(weir_dectris_num_frames(&p), 7);
    weir_dectris_clear(&p);
    weir_msg_clear(&m);
    s.header_detail = "most";
    assert_int_equal(weir_dectris_v1_encode_header(&m, &s), WEIR_EINVAL);
    s.header_detail = NULL;
    s.extra_json = "[1]";
    assert_int_equal(weir_dectris_v1_encode_header(&m, &s), WEIR_EJSON);
    weir_msg_clear(&m);

    /* end message */
    weir_msg_init(&m);
    assert_int_equal(weir_dectris_v1_encode_end(&m, 9), 0);
    assert_int_equal(m.nparts, 1);
    v1_ok(&m, 1, &p);
    assert_int_equal(p.kind, WEIR_DECTRIS_END);
    assert_int_equal(p.series, 9);
    weir_dectris_clear(&p);
    weir_msg_clear(&m);
}

static void test_md5(void **state)
{
    (void)state;
    char h[33];
    weir_dectris_md5_hex("", 0, h);
    assert_string_equal(h, "d41d8cd98f00b204e9800998ecf8427e");
    weir_dectris_md5_hex("abc", 3, h);
    assert_string_equal(h, "900150983cd24fb0d6963f7d28e17f72");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    weir_dectris_md5_hex(fox, strlen(fox), h);
    assert_string_equal(h, "9e107d9d372bb6826bd81d3542a419d6");
    uint8_t buf[1000];
    memset(buf, 'a', sizeof buf);
    weir_dectris_md5_hex(buf, sizeof buf, h);
    assert_string_equal(h, "cabe45dcc9ae5b66ba86600cca6b8ba8");
    for (int i = 0; i < 1000; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    weir_dectris_md5_hex(buf, sizeof buf, h);
    assert_string_equal(h, "10046f077f2082ac19676b8079f1cb1a");
}

static void test_v1_roundtrip(void **state)
{
    (void)state;
    static const weir_dtype_kind kinds[3] = {WEIR_DT_U8, WEIR_DT_U16, WEIR_DT_U32};
    static const weir_dectris_encoding encs[3] = {WEIR_DECTRIS_ENC_NONE, WEIR_DECTRIS_ENC_BSLZ4,
                                                  WEIR_DECTRIS_ENC_LZ4};
    static const char *const want_enc[3][3] = {
        {"<", "bs8-lz4<", "lz4<"}, {"<", "bs16-lz4<", "lz4<"}, {"<", "bs32-lz4<", "lz4<"}};
    for (int k = 0; k < 3; k++) {
        for (int e = 0; e < 3; e++) {
            /* 37 x 53: not a multiple of 8 elements, so bslz4's raw tail is used */
            weir_array img = make_array(kinds[k], 37, 53, (uint32_t)(k * 3 + e));
            weir_dectris_times t = {1000, 2000, 1000, 0};
            weir_msg m;
            weir_msg_init(&m);
            assert_int_equal(
                weir_dectris_v1_encode_image(&m, 7, 11, &img, encs[e], &t, e == 1 ? "{}" : NULL),
                0);
            assert_int_equal(m.nparts, e == 1 ? 5 : 4);
            weir_dectris_packet p;
            v1_ok(&m, 1, &p);
            assert_int_equal(p.kind, WEIR_DECTRIS_IMAGE);
            assert_int_equal(p.series, 7);
            assert_int_equal(p.frame, 11);
            const weir_dectris_channel *ch = &p.channels[0];
            assert_int_equal(ch->encoding, encs[e]);
            assert_same_pixels(&ch->data, &img);
            if (encs[e] == WEIR_DECTRIS_ENC_NONE)
                assert_ptr_equal(ch->data.data, weir_buf_data(m.parts[2]));
            const char *s;
            assert_int_equal(weir_dectris_get_str(&p, "dimage_d.encoding", &s), 0);
            assert_string_equal(s, want_enc[k][e]);
            int64_t v;
            assert_int_equal(weir_dectris_get_i64(&p, "dimage_d.size", &v), 0);
            assert_int_equal(v, weir_buf_size(m.parts[2]));
            assert_int_equal(weir_dectris_get_i64(&p, "dimage_d.shape.0", &v), WEIR_ENOTFOUND);
            assert_int_equal(weir_dectris_get_i64(&p, "dconfig.stop_time", &v), 0);
            assert_int_equal(v, 2000);
            char h[33];
            weir_dectris_md5_hex(weir_buf_data(m.parts[2]), weir_buf_size(m.parts[2]), h);
            assert_int_equal(weir_dectris_get_str(&p, "hash", &s), 0);
            assert_string_equal(s, h);
            weir_dectris_clear(&p);
            weir_msg_clear(&m);
            weir_array_release(&img);
        }
    }

    /* a strided view (every other column) and big-endian pixels */
    weir_array img = make_array(WEIR_DT_U16, 16, 32, 99), view;
    weir_array_copy_view(&view, &img);
    view.shape[1] = 16;
    view.strides[1] = 4;
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(
        weir_dectris_v1_encode_image(&m, 1, 0, &view, WEIR_DECTRIS_ENC_BSLZ4, NULL, "{}"), 0);
    weir_dectris_packet p;
    v1_ok(&m, 1, &p);
    assert_same_pixels(&p.channels[0].data, &view);
    weir_dectris_clear(&p);
    weir_msg_clear(&m);

    weir_array be;
    size_t shape[2] = {16, 32};
    assert_int_equal(weir_array_alloc(&be, (weir_dtype){WEIR_DT_U16, WEIR_BIG}, 2, shape), 0);
    uint8_t *w = weir_buf_mutable(be.buf);
    for (size_t i = 0; i < 16 * 32; i++) {
        w[2 * i] = img.data[2 * i + 1];
        w[2 * i + 1] = img.data[2 * i];
    }
    for (int e = 0; e < 3; e++) {
        weir_msg_init(&m);
        assert_int_equal(weir_dectris_v1_encode_image(&m, 1, 0, &be, encs[e], NULL, NULL), 0);
        v1_ok(&m, 1, &p);
        assert_int_equal(p.channels[0].dtype.order, WEIR_BIG);
        assert_same_pixels(&p.channels[0].data, &img);
        const char *s;
        assert_int_equal(weir_dectris_get_str(&p, "dimage_d.encoding", &s), 0);
        assert_int_equal(s[strlen(s) - 1], '>');
        weir_dectris_clear(&p);
        weir_msg_clear(&m);
    }
    weir_array_release(&be);
    weir_array_release(&view);

    /* arguments the encoder refuses */
    weir_msg_init(&m);
    weir_array f;
    assert_int_equal(weir_array_alloc(&f, (weir_dtype){WEIR_DT_F32, WEIR_LITTLE}, 2, shape), 0);
    assert_int_equal(weir_dectris_v1_encode_image(&m, 1, 0, &f, WEIR_DECTRIS_ENC_NONE, NULL, NULL),
                     WEIR_EINVAL);
    assert_int_equal(
        weir_dectris_v1_encode_image(&m, 1, 0, &img, (weir_dectris_encoding)7, NULL, NULL),
        WEIR_EINVAL);
    assert_int_equal(m.nparts, 0);
    weir_array_release(&f);
    weir_array_release(&img);
}

/* ---- stream v2: encoder ---------------------------------------------------- */

static void test_v2_roundtrip(void **state)
{
    (void)state;
    static const weir_dtype_kind kinds[6] = {WEIR_DT_U8,  WEIR_DT_U16, WEIR_DT_U32,
                                             WEIR_DT_I16, WEIR_DT_F32, WEIR_DT_U64};
    static const weir_dectris_encoding encs[3] = {WEIR_DECTRIS_ENC_NONE, WEIR_DECTRIS_ENC_BSLZ4,
                                                  WEIR_DECTRIS_ENC_LZ4};
    static const char *const names[2] = {"threshold_1", "difference"};
    for (int k = 0; k < 6; k++) {
        for (int e = 0; e < 3; e++) {
            weir_array imgs[2] = {make_array(kinds[k], 19, 45, (uint32_t)k),
                                  make_array(kinds[k], 19, 45, (uint32_t)(k + 100))};
            weir_dectris_times t = {3, 5, 2, 1000};
            weir_msg m;
            weir_msg_init(&m);
            assert_int_equal(
                weir_dectris_v2_encode_image(&m, 12, "UID", 4, 2, names, imgs, encs[e], &t), 0);
            assert_int_equal(m.nparts, 1);
            /* self-described CBOR, as DECTRIS sends */
            assert_memory_equal(weir_buf_data(m.parts[0]), "\xd9\xd9\xf7", 3);
            weir_dectris_packet p;
            /* without decoding, only uncompressed channels have data (views) */
            v2_ok(weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]), 0, &p);
            assert_true((p.channels[1].data.buf != NULL) == (encs[e] == WEIR_DECTRIS_ENC_NONE));
            weir_dectris_clear(&p);
            v2_ok(weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]), 1, &p);
            weir_msg_clear(&m);
            assert_int_equal(p.kind, WEIR_DECTRIS_IMAGE);
            assert_int_equal(p.series, 12);
            assert_int_equal(p.frame, 4);
            assert_int_equal(p.nchannels, 2);
            for (int c = 0; c < 2; c++) {
                assert_string_equal(p.channels[c].name, names[c]);
                assert_int_equal(p.channels[c].encoding, encs[e]);
                assert_same_pixels(&p.channels[c].data, &imgs[c]);
                weir_array_release(&imgs[c]);
            }
            int64_t v;
            assert_int_equal(weir_dectris_get_i64(&p, "stop_time.1", &v), WEIR_ENOTFOUND);
            char *js = weir_dectris_json(&p);
            assert_non_null(strstr(js, "\"stop_time\":[5,1000]"));
            free(js);
            weir_dectris_clear(&p);
        }
    }

    /* start and end */
    static const char *const chans[3] = {"threshold_1", "threshold_2", "difference"};
    weir_dectris_series s = {.series = 3,
                             .series_unique_id = "ABC",
                             .nimages = 100,
                             .x_pixels = 1030,
                             .y_pixels = 514,
                             .bit_depth = 16,
                             .nchannels = 3,
                             .channels = chans,
                             .trigger_mode = "exts"};
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_dectris_v2_encode_start(&m, &s), 0);
    assert_int_equal(weir_dectris_v2_encode_end(&m, 3, "ABC"), 0);
    weir_dectris_packet p;
    v2_ok(weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]), 1, &p);
    assert_int_equal(p.kind, WEIR_DECTRIS_START);
    assert_int_equal(p.series, 3);
    assert_int_equal(p.nimages, 100);
    assert_int_equal(weir_dectris_num_frames(&p), 100);
    assert_int_equal(p.x_pixels, 1030);
    assert_int_equal(p.y_pixels, 514);
    assert_int_equal(p.bit_depth, 16);
    assert_string_equal(p.trigger_mode, "exts");
    char *js = weir_dectris_json(&p);
    assert_non_null(strstr(js, "\"channels\":[\"threshold_1\",\"threshold_2\",\"difference\"]"));
    free(js);
    weir_dectris_clear(&p);
    v2_ok(weir_buf_data(m.parts[1]), weir_buf_size(m.parts[1]), 1, &p);
    assert_int_equal(p.kind, WEIR_DECTRIS_END);
    const char *u;
    assert_int_equal(weir_dectris_get_str(&p, "series_unique_id", &u), 0);
    assert_string_equal(u, "ABC");
    weir_dectris_clear(&p);
    weir_msg_clear(&m);
}

/* Hand-built CBOR with libcbor: tag 1040 (column-major) and a start message
 * with a pixel mask, both shapes weir's encoder does not write. */
static uint8_t *serialise(cbor_item_t *it, size_t *n)
{
    unsigned char *buf = NULL;
    size_t cap;
    *n = cbor_serialize_alloc(it, &buf, &cap);
    cbor_decref(&it);
    assert_true(*n > 0);
    return buf;
}

static cbor_item_t *md_array(uint64_t tag, size_t d0, size_t d1, uint64_t ttag, const void *b,
                             size_t nb)
{
    cbor_item_t *dims = cbor_new_definite_array(2), *a = cbor_new_definite_array(2);
    assert_true(cbor_array_push(dims, cbor_move(cbor_build_uint64(d0))));
    assert_true(cbor_array_push(dims, cbor_move(cbor_build_uint64(d1))));
    assert_true(cbor_array_push(a, cbor_move(dims)));
    assert_true(cbor_array_push(
        a, cbor_move(cbor_build_tag(ttag, cbor_move(cbor_build_bytestring(b, nb))))));
    return cbor_build_tag(tag, cbor_move(a));
}

static void test_v2_handmade(void **state)
{
    (void)state;
    /* u16 LE, dims [2, 3] column-major: element (i, j) is data[i + 2 j] */
    uint8_t px[12];
    for (int i = 0; i < 6; i++) {
        px[2 * i] = (uint8_t)(10 + i);
        px[2 * i + 1] = 0;
    }
    cbor_item_t *m = cbor_new_definite_map(3), *data = cbor_new_definite_map(1);
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("type")),
                                                   cbor_move(cbor_build_string("image"))}));
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("image_id")),
                                                   cbor_move(cbor_build_uint8(2))}));
    assert_true(
        cbor_map_add(data, (struct cbor_pair){cbor_move(cbor_build_string("c")),
                                              cbor_move(md_array(1040, 2, 3, 69, px, 12))}));
    assert_true(
        cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("data")), cbor_move(data)}));
    size_t n;
    uint8_t *b = serialise(m, &n);
    weir_dectris_packet p;
    v2_ok(b, n, 1, &p);
    free(b);
    const weir_array *a = &p.channels[0].data;
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++)
            assert_true(weir_array_get_f64(a, i * 3 + j) == (double)(10 + i + 2 * j));
    assert_int_equal(p.series, -1); /* absent */
    weir_dectris_clear(&p);

    /* start with a pixel mask per channel (u32 big endian, tag 66) */
    uint8_t mask[16] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    m = cbor_new_definite_map(3);
    cbor_item_t *pm = cbor_new_definite_map(1);
    assert_true(cbor_map_add(pm, (struct cbor_pair){cbor_move(cbor_build_string("threshold_1")),
                                                    cbor_move(md_array(40, 2, 2, 66, mask, 16))}));
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("type")),
                                                   cbor_move(cbor_build_string("start"))}));
    assert_true(cbor_map_add(
        m, (struct cbor_pair){cbor_move(cbor_build_string("pixel_mask")), cbor_move(pm)}));
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("image_dtype")),
                                                   cbor_move(cbor_build_string("uint32"))}));
    b = serialise(cbor_build_tag(55799, cbor_move(m)), &n);
    v2_ok(b, n, 1, &p);
    free(b);
    assert_int_equal(p.kind, WEIR_DECTRIS_START);
    assert_int_equal(p.bit_depth, 32);
    weir_array mk;
    char err[256];
    assert_int_equal(weir_dectris_aux(&p, "pixel_mask/threshold_1", &mk, err, sizeof err), 0);
    assert_int_equal(mk.dtype.order, WEIR_BIG);
    assert_true(weir_array_get_f64(&mk, 0) == 1.0);
    assert_true(weir_array_get_f64(&mk, 3) == 256.0);
    weir_array_release(&mk);
    const char *s;
    assert_int_equal(weir_dectris_get_str(&p, "pixel_mask.threshold_1.dtype", &s), 0);
    assert_string_equal(s, "uint32");
    weir_dectris_clear(&p);
}

/* ---- bad input --------------------------------------------------------------- */

static void test_v1_bad(void **state)
{
    (void)state;
    weir_msg m;
    const char *img0 = "{\"frame\":3,\"hash\":\"x\",\"htype\":\"dimage-1.0\",\"series\":1}";
    const char *cfg =
        "{\"htype\":\"dconfig-1.0\",\"real_time\":1,\"start_time\":0,\"stop_time\":1}";
    uint8_t px[8] = {1, 2, 3, 4, 5, 6, 7, 8};

    /* wrong part counts */
    weir_msg_init(&m);
    add_text(&m, img0);
    add_text(&m,
             "{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}");
    add_bytes(&m, px, 8);
    v1_bad(&m, 1, WEIR_EFORMAT, "expected 4 parts");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"header_detail\":\"all\",\"htype\":\"dheader-1.0\",\"series\":1}");
    add_text(&m, "{}");
    add_text(&m, "{}");
    v1_bad(&m, 1, WEIR_EFORMAT, "expected 8 parts");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"header_detail\":\"basic\",\"htype\":\"dheader-1.0\",\"series\":1}");
    v1_bad(&m, 1, WEIR_EFORMAT, "expected 2 parts");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"htype\":\"dseries_end-1.0\",\"series\":1}");
    add_text(&m, "{}");
    v1_bad(&m, 1, WEIR_EFORMAT, "expected 1 part");
    weir_msg_clear(&m);
    v1_bad(&m, 1, WEIR_EFORMAT, "empty message");

    /* unknown htype, header detail, missing fields, not JSON */
    weir_msg_init(&m);
    add_text(&m, "{\"htype\":\"dimage-2.0\",\"series\":1}");
    v1_bad(&m, 1, WEIR_EFORMAT, "unknown htype \"dimage-2.0\"");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"header_detail\":\"most\",\"htype\":\"dheader-1.0\",\"series\":1}");
    v1_bad(&m, 1, WEIR_EFORMAT, "unknown header_detail");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"htype\":\"dseries_end-1.0\"}");
    v1_bad(&m, 1, WEIR_EFORMAT, "\"series\"");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"htype\":");
    v1_bad(&m, 1, WEIR_EJSON, "not a JSON object");
    weir_msg_clear(&m);
    weir_msg_init(&m);
    add_text(&m, "{\"header_detail\":\"basic\",\"htype\":\"dheader-1.0\",\"series\":1}");
    add_text(&m, "[1,2]");
    v1_bad(&m, 1, WEIR_EJSON, "detector config");
    weir_msg_clear(&m);

    /* image parts: encoding, dtype, sizes */
    struct {
        const char *dimage_d;
        size_t npx;
        int code;
        const char *word;
    } cases[] = {
        {"{\"encoding\":\"bs12-lz4<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":"
         "\"uint16\"}",
         8, WEIR_EUNSUPPORTED, "unknown encoding \"bs12-lz4<\""},
        {"{\"encoding\":\"zstd<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}",
         8, WEIR_EUNSUPPORTED, "unknown encoding"},
        {"{\"encoding\":\"bs16<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}",
         8, WEIR_EUNSUPPORTED, "unknown encoding"},
        {"{\"encoding\":\"lz4\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}", 8,
         WEIR_EUNSUPPORTED, "unknown encoding"},
        {"{\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}", 8, WEIR_EUNSUPPORTED,
         "(missing)"},
        {"{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"complex64\"}",
         8, WEIR_EDTYPE, "complex64"},
        {"{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2],\"type\":\"uint16\"}", 8,
         WEIR_EFORMAT, "[x, y]"},
        {"{\"encoding\":\"<\",\"htype\":\"dimage_x-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}", 8,
         WEIR_EFORMAT, "dimage_d-1.0"},
        /* size mismatch: uncompressed pixels of the wrong length */
        {"{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}", 6,
         WEIR_ESHAPE, "need 8 bytes, the payload has 6"},
        {"{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint32\"}", 8,
         WEIR_ESHAPE, "need 16 bytes"},
        /* compressed payload longer than its declared size */
        {"{\"encoding\":\"lz4<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"size\":4,"
         "\"type\":\"uint16\"}",
         8, WEIR_ESHAPE, "\"size\" says 4"},
        /* 8 bytes are no bslz4 header */
        {"{\"encoding\":\"bs16-lz4<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":"
         "\"uint16\"}",
         8, WEIR_ETRUNCATED, "12-byte bslz4 header"},
        /* far too little payload for the shape: refused before allocating */
        {"{\"encoding\":\"lz4<\",\"htype\":\"dimage_d-1.0\",\"shape\":[4000,4000],"
         "\"type\":\"uint32\"}",
         8, WEIR_ECODEC, "cannot expand"},
        /* garbage LZ4 */
        {"{\"encoding\":\"lz4<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}",
         8, WEIR_ECODEC, "does not decode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weir_msg_init(&m);
        add_text(&m, img0);
        add_text(&m, cases[i].dimage_d);
        add_bytes(&m, px, cases[i].npx);
        add_text(&m, cfg);
        v1_bad(&m, 1, cases[i].code, cases[i].word);
        weir_msg_clear(&m);
    }
    /* dconfig part missing its htype */
    weir_msg_init(&m);
    add_text(&m, img0);
    add_text(&m,
             "{\"encoding\":\"<\",\"htype\":\"dimage_d-1.0\",\"shape\":[2,2],\"type\":\"uint16\"}");
    add_bytes(&m, px, 8);
    add_text(&m, "{}");
    v1_bad(&m, 1, WEIR_EFORMAT, "dconfig-1.0");
    weir_msg_clear(&m);

    /* a bslz4 image whose header disagrees with the shape; and a corrupt one */
    weir_array img = make_array(WEIR_DT_U16, 8, 8, 5);
    weir_msg_init(&m);
    assert_int_equal(
        weir_dectris_v1_encode_image(&m, 1, 2, &img, WEIR_DECTRIS_ENC_BSLZ4, NULL, NULL), 0);
    weir_buf *old = m.parts[1];
    m.parts[1] = weir_buf_copy("{\"encoding\":\"bs16-lz4<\",\"htype\":\"dimage_d-1.0\","
                               "\"shape\":[4,8],\"type\":\"uint16\"}",
                               strlen("{\"encoding\":\"bs16-lz4<\",\"htype\":\"dimage_d-1.0\","
                                      "\"shape\":[4,8],\"type\":\"uint16\"}"));
    weir_buf_unref(old);
    v1_bad(&m, 1, WEIR_ESHAPE, "header says 128");
    weir_dectris_packet p;
    v1_ok(&m, 0, &p); /* without decoding, only the JSON is checked */
    weir_dectris_clear(&p);
    weir_msg_clear(&m);
    weir_msg_init(&m);
    assert_int_equal(
        weir_dectris_v1_encode_image(&m, 1, 2, &img, WEIR_DECTRIS_ENC_BSLZ4, NULL, NULL), 0);
    size_t n = weir_buf_size(m.parts[2]);
    uint8_t *bad = malloc(n);
    memcpy(bad, weir_buf_data(m.parts[2]), n);
    bad[16] ^= 0xff; /* the first block's LZ4 token */
    bad[n - 1] ^= 0x55;
    old = m.parts[2];
    m.parts[2] = weir_buf_copy(bad, n);
    weir_buf_unref(old);
    free(bad);
    weir_dectris_packet q;
    char err[512] = "";
    int rc = weir_dectris_v1_parse(&m, 1, &q, err, sizeof err);
    if (rc) {
        assert_non_null(strstr(err, "image 2 (series 1)"));
        assert_empty(&q);
    } else {
        weir_dectris_clear(&q); /* a flipped literal can still decode */
    }
    weir_msg_clear(&m);
    weir_array_release(&img);
}

static void test_v2_bad(void **state)
{
    (void)state;
    /* {"data": {}}: a map without "type" */
    static const uint8_t notype[] = {0xa1, 0x64, 'd', 'a', 't', 'a', 0xa0};
    v2_bad(notype, sizeof notype, WEIR_EFORMAT, "no \"type\"");
    /* {"type": "frame"} */
    static const uint8_t unknown[] = {0xa1, 0x64, 't', 'y', 'p', 'e',
                                      0x65, 'f',  'r', 'a', 'm', 'e'};
    v2_bad(unknown, sizeof unknown, WEIR_EFORMAT, "unknown message type \"frame\"");
    /* [1, 2]: not a map; tag 41 wrapping a map: an unexpected tag */
    static const uint8_t arr[] = {0x82, 0x01, 0x02};
    v2_bad(arr, sizeof arr, WEIR_EFORMAT, "not a CBOR map");
    static const uint8_t tag41[] = {0xd8, 0x29, 0xa0};
    v2_bad(tag41, sizeof tag41, WEIR_EFORMAT, "unexpected tag");
    /* trailing bytes, empty input, huge declared container, deep nesting */
    static const uint8_t trail[] = {0xa0, 0x00};
    v2_bad(trail, sizeof trail, WEIR_ECBOR, "after the message");
    v2_bad(NULL, 0, WEIR_ETRUNCATED, "empty message");
    static const uint8_t huge[] = {0x9b, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01};
    v2_bad(huge, sizeof huge, WEIR_ECBOR, "byte 0");
    uint8_t deep[2000];
    memset(deep, 0x81, sizeof deep - 1);
    deep[sizeof deep - 1] = 0x01;
    v2_bad(deep, sizeof deep, WEIR_ECBOR, "deeper than 64");

    /* real message cut in half, and with the 56500 tag's algorithm changed */
    size_t n;
    uint8_t *b = tu_read_file(tu_shared("dectris/stream2/r500k_bm_bslz4_16bit/000001.cbor"), &n);
    v2_bad(b, n / 2, WEIR_ETRUNCATED, "middle of an item");
    v2_bad(b, 3, WEIR_ETRUNCATED, "middle of an item");
    uint8_t *hit = memmem(b, n,
                          "\x65"
                          "bslz4",
                          6);
    assert_non_null(hit);
    memcpy(hit + 1, "zstd5", 5);
    v2_bad(b, n, WEIR_EUNSUPPORTED, "compression \"zstd5\"");
    memcpy(hit + 1, "bslz4", 5);
    /* the typed-array tag 69 (d8 45) changed to 80 (float16, unsupported) */
    uint8_t *t69 = memmem(b, n, "\xd8\x45\xd9\xdc\xb4", 5);
    assert_non_null(t69);
    t69[1] = 0x50;
    v2_bad(b, n, WEIR_EDTYPE, "typed array");
    t69[1] = 0x45;
    /* tag 40 (d8 28) changed to 41: no typed array where one is needed */
    uint8_t *t40 = memmem(b, n, "\xd8\x28\x82", 3);
    assert_non_null(t40);
    t40[1] = 0x29;
    v2_bad(b, n, WEIR_EDTYPE, "typed array");
    t40[1] = 0x28;
    /* the bslz4 header's size made smaller than the shape needs */
    uint8_t *hdr = memmem(b, n, "\x00\x00\x00\x00\x00\x10\x28\x18\x00\x00\x20\x00", 12);
    assert_non_null(hdr);
    hdr[6] = 0x27;
    v2_bad(b, n, WEIR_ESHAPE, "compressed header says");
    hdr[6] = 0x28;
    weir_dectris_packet p;
    v2_ok(b, n, 1, &p); /* restored: parses again */
    weir_dectris_clear(&p);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_real_images),
        cmocka_unit_test(test_v2_real_no_decode_and_end),
        cmocka_unit_test(test_v1_eiger_small),
        cmocka_unit_test(test_v1_header_levels),
        cmocka_unit_test(test_md5),
        cmocka_unit_test(test_v1_roundtrip),
        cmocka_unit_test(test_v2_roundtrip),
        cmocka_unit_test(test_v2_handmade),
        cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v2_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
