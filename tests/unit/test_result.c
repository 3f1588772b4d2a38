/* test_result.c — worker results (src/core/result.h): typed values (integers
 * up to the int64 limits, floats, text, bytes, n-d arrays of every dtype in
 * both byte orders and from strided input, which must come out C-contiguous),
 * the encode → decode round trip, robustness of the decoder against garbage
 * and malformed maps, and the wire form pinned byte for byte against CBOR
 * worked out by hand from RFC 8949 (shortest heads) and RFC 8746 (tag 40
 * multi-dimensional arrays, typed-array tags). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "core/result.h"
#include "weir/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decoder runs libcbor's cbor_load, which allocates a container of the
 * size its head declares before reading it: random heads ask for many GB.
 * Let ASan builds return NULL for those (as malloc does) instead of aborting,
 * so the garbage test checks "error, not crash" in every build. */
__attribute__((used)) const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* ---- helpers ------------------------------------------------------------ */

static weir_result *roundtrip(const weir_result *r)
{
    weir_buf *b = NULL;
    assert_int_equal(weir_result_encode(r, &b), WEIR_OK);
    assert_non_null(b);
    char err[256] = "";
    weir_result *d = NULL;
    int rc = weir_result_decode(b, &d, err, sizeof err);
    if (rc) fail_msg("decode: %s (%s)", err, weir_err_name(rc));
    weir_buf_unref(b); /* the decoded result keeps its own reference */
    return d;
}

static int decode_bytes(const uint8_t *p, size_t n, weir_result **out, char *err, size_t errlen)
{
    weir_buf *b = weir_buf_copy(p, n);
    assert_non_null(b);
    int rc = weir_result_decode(b, out, err, errlen);
    weir_buf_unref(b);
    return rc;
}

static void dump_hex(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* 1 when r encodes to exactly want; prints both on a mismatch. The caller
 * frees what it holds before asserting, so a failure leaks nothing. */
static int same_bytes(const weir_result *r, const uint8_t *want, size_t n)
{
    weir_buf *b = NULL;
    if (weir_result_encode(r, &b) != WEIR_OK) return 0;
    int same = weir_buf_size(b) == n && !memcmp(weir_buf_data(b), want, n);
    if (!same) {
        dump_hex("expected", want, n);
        dump_hex("encoded ", weir_buf_data(b), weir_buf_size(b));
    }
    weir_buf_unref(b);
    return same;
}

/* ---- scalars ------------------------------------------------------------ */

static void check_scalars(const weir_result *r)
{
    static const int64_t ints[] = {0,   1,   -1,    23,     24,        -24,       -25,
                                   255, 256, 65536, -65537, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    char key[16];
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(key, sizeof key, "i%zu", i);
        int64_t v = 12345;
        assert_int_equal(weir_result_get_i64(r, key, &v), WEIR_OK);
        if (v != ints[i])
            fail_msg("%s: got %lld, want %lld", key, (long long)v, (long long)ints[i]);
    }
    double f = 0;
    assert_int_equal(weir_result_get_f64(r, "f", &f), WEIR_OK);
    assert_true(f == 0.1);
    assert_int_equal(weir_result_get_f64(r, "fneg", &f), WEIR_OK);
    assert_true(f == -1e300);
    assert_int_equal(weir_result_get_f64(r, "fnan", &f), WEIR_OK);
    assert_true(isnan(f));
    assert_int_equal(weir_result_get_f64(r, "finf", &f), WEIR_OK);
    assert_true(isinf(f) && f < 0);
    /* an integer reads as a float too */
    assert_int_equal(weir_result_get_f64(r, "i8", &f), WEIR_OK);
    assert_true(f == 256.0);

    const char *s = NULL;
    assert_int_equal(weir_result_get_str(r, "s", &s), WEIR_OK);
    assert_string_equal(s, "h\xc3\xa9llo");
    assert_int_equal(weir_result_get_str(r, "sempty", &s), WEIR_OK);
    assert_string_equal(s, "");
    const void *d = NULL;
    size_t len = 99;
    assert_int_equal(weir_result_get_bytes(r, "b", &d, &len), WEIR_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(d, "\x00\xff\x00\x01", 4);
    assert_int_equal(weir_result_get_bytes(r, "bempty", &d, &len), WEIR_OK);
    assert_int_equal(len, 0);

    /* wrong types and absent keys */
    int64_t i;
    weir_array a;
    assert_int_equal(weir_result_get_i64(r, "f", &i), WEIR_EINVAL);
    assert_int_equal(weir_result_get_i64(r, "s", &i), WEIR_EINVAL);
    assert_int_equal(weir_result_get_f64(r, "s", &f), WEIR_EINVAL);
    assert_int_equal(weir_result_get_str(r, "b", &s), WEIR_EINVAL);
    assert_int_equal(weir_result_get_bytes(r, "s", &d, &len), WEIR_EINVAL);
    assert_int_equal(weir_result_get_array(r, "i0", &a), WEIR_EINVAL);
    assert_int_equal(weir_result_get_i64(r, "nope", &i), WEIR_ENOTFOUND);
    assert_int_equal(weir_result_get_f64(r, "nope", &f), WEIR_ENOTFOUND);
    assert_int_equal(weir_result_get_str(r, "nope", &s), WEIR_ENOTFOUND);
    assert_int_equal(weir_result_get_bytes(r, "nope", &d, &len), WEIR_ENOTFOUND);
    assert_int_equal(weir_result_get_array(r, "nope", &a), WEIR_ENOTFOUND);
    assert_true(weir_result_has(r, "s"));
    assert_false(weir_result_has(r, "nope"));
}

static void test_scalars_roundtrip(void **state)
{
    (void)state;
    weir_result *r = weir_result_new(17, 3, "0123456789abcdef");
    assert_non_null(r);
    static const int64_t ints[] = {0,   1,   -1,    23,     24,        -24,       -25,
                                   255, 256, 65536, -65537, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    char key[16];
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(key, sizeof key, "i%zu", i);
        assert_int_equal(weir_result_set_i64(r, key, ints[i]), WEIR_OK);
    }
    assert_int_equal(weir_result_set_f64(r, "f", 0.1), WEIR_OK);
    assert_int_equal(weir_result_set_f64(r, "fneg", -1e300), WEIR_OK);
    assert_int_equal(weir_result_set_f64(r, "fnan", NAN), WEIR_OK);
    assert_int_equal(weir_result_set_f64(r, "finf", -INFINITY), WEIR_OK);
    assert_int_equal(weir_result_set_str(r, "s", "h\xc3\xa9llo"), WEIR_OK);
    assert_int_equal(weir_result_set_str(r, "sempty", ""), WEIR_OK);
    assert_int_equal(weir_result_set_bytes(r, "b", "\x00\xff\x00\x01", 4), WEIR_OK);
    assert_int_equal(weir_result_set_bytes(r, "bempty", NULL, 0), WEIR_OK);
    assert_int_equal(weir_result_nvalues(r), 14 + 8);
    /* setting a key again replaces it */
    assert_int_equal(weir_result_set_str(r, "s", "first"), WEIR_OK);
    assert_int_equal(weir_result_set_str(r, "s", "h\xc3\xa9llo"), WEIR_OK);
    assert_int_equal(weir_result_nvalues(r), 14 + 8);

    check_scalars(r); /* before encoding */
    weir_result *d = roundtrip(r);
    assert_int_equal(weir_result_event(d), 17);
    assert_int_equal(weir_result_worker(d), 3);
    assert_string_equal(weir_result_params_hash(d), "0123456789abcdef");
    assert_int_equal(weir_result_nvalues(d), 14 + 8);
    check_scalars(d); /* after */
    /* a decoded result is read-only */
    assert_int_equal(weir_result_set_i64(d, "new", 1), WEIR_EINVAL);
    assert_int_equal(weir_result_nvalues(d), 14 + 8);
    weir_result_free(d);
    weir_result_free(r);
    weir_result_free(NULL);
}

static void test_header_fields(void **state)
{
    (void)state;
    weir_result *r = weir_result_new(0, -1, NULL); /* worker -1, no hash */
    assert_int_equal(weir_result_nvalues(r), 0);
    weir_result *d = roundtrip(r);
    assert_int_equal(weir_result_event(d), 0);
    assert_int_equal(weir_result_worker(d), -1);
    assert_string_equal(weir_result_params_hash(d), "");
    assert_int_equal(weir_result_nvalues(d), 0);
    weir_result_free(d);
    weir_result_free(r);

    r = weir_result_new(123456789012ULL, 250, "h");
    d = roundtrip(r);
    assert_true(weir_result_event(d) == 123456789012ULL);
    assert_int_equal(weir_result_worker(d), 250);
    weir_result_free(d);
    weir_result_free(r);
}

static void test_event_above_int64(void **state)
{
    (void)state;
    /* Regression (fixed): result.c weir_result_decode() reads "event" through item_to_i64(),
     * which refuses values above INT64_MAX with WEIR_ERANGE, so decode fails
     * with WEIR_EFORMAT ("expected map {event, worker, params, values}") on a
     * result that weir_result_encode() wrote for an event number >= 2^63 —
     * the event is a uint64 in the API (weir_result_new, weir_result_event).
     * Expected: the round trip keeps the number. */
    weir_result *r = weir_result_new((uint64_t)INT64_MAX + 1, 0, "");
    weir_buf *b = NULL;
    assert_int_equal(weir_result_encode(r, &b), WEIR_OK);
    weir_result *d = NULL;
    char err[256] = "";
    int rc = weir_result_decode(b, &d, err, sizeof err);
    weir_buf_unref(b);
    weir_result_free(r);
    if (rc) fail_msg("decode of an event >= 2^63: %s (%s)", err, weir_err_name(rc));
    assert_true(weir_result_event(d) == (uint64_t)INT64_MAX + 1);
    weir_result_free(d);
}

/* ---- arrays ------------------------------------------------------------- */

static void check_array(const weir_array *a, weir_dtype dt, int ndim, const size_t *shape,
                        const uint8_t *bytes)
{
    size_t isz = weir_dtype_size(dt.kind);
    assert_int_equal(a->dtype.kind, dt.kind);
    if (isz > 1) assert_int_equal(a->dtype.order, dt.order);
    assert_int_equal(a->ndim, ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        assert_int_equal(a->shape[i], shape[i]);
        n *= shape[i];
    }
    /* C-contiguous strides worked out here */
    ptrdiff_t s = (ptrdiff_t)isz;
    for (int i = ndim - 1; i >= 0; i--) {
        assert_int_equal(a->strides[i], s);
        s *= (ptrdiff_t)shape[i];
    }
    assert_true(weir_array_is_contiguous(a));
    if (n) assert_memory_equal(a->data, bytes, n * isz);
}

static void test_arrays_every_dtype(void **state)
{
    (void)state;
    static const weir_dtype_kind kinds[] = {WEIR_DT_U8,  WEIR_DT_U16, WEIR_DT_U32, WEIR_DT_U64,
                                            WEIR_DT_I8,  WEIR_DT_I16, WEIR_DT_I32, WEIR_DT_I64,
                                            WEIR_DT_F32, WEIR_DT_F64};
    size_t shape[2] = {3, 5};
    for (int order = 0; order < 2; order++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            weir_dtype dt = {kinds[k], order ? WEIR_BIG : WEIR_LITTLE};
            size_t isz = weir_dtype_size(dt.kind), nb = 15 * isz;
            weir_buf *buf = weir_buf_new(nb);
            uint8_t *m = weir_buf_mutable(buf);
            for (size_t i = 0; i < nb; i++)
                m[i] = (uint8_t)(i * 37 + 11 + k);
            weir_array a;
            assert_int_equal(weir_array_init(&a, dt, 2, shape, buf, 0), WEIR_OK);
            weir_result *r = weir_result_new(1, 0, "");
            assert_int_equal(weir_result_set_array(r, "a", &a), WEIR_OK);
            weir_array out;
            /* readable before encoding too */
            assert_int_equal(weir_result_get_array(r, "a", &out), WEIR_OK);
            check_array(&out, dt, 2, shape, m);
            weir_result *d = roundtrip(r);
            assert_int_equal(weir_result_get_array(d, "a", &out), WEIR_OK);
            check_array(&out, dt, 2, shape, m);
            /* element values agree with the input's */
            for (size_t i = 0; i < 15; i++) {
                double x = weir_array_get_f64(&a, i), y = weir_array_get_f64(&out, i);
                assert_true((isnan(x) && isnan(y)) || x == y);
            }
            weir_result_free(d);
            weir_result_free(r);
            weir_array_release(&a);
            weir_buf_unref(buf);
        }
    }
}

static void test_array_bool(void **state)
{
    (void)state;
    const uint8_t v[4] = {1, 0, 0, 1};
    weir_buf *buf = weir_buf_copy(v, 4);
    size_t shape[1] = {4};
    weir_array a;
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_BOOL, WEIR_LITTLE}, 1, shape, buf, 0),
                     WEIR_OK);
    weir_result *r = weir_result_new(1, 0, "");
    assert_int_equal(weir_result_set_array(r, "mask", &a), WEIR_OK);
    weir_result *d = roundtrip(r);
    weir_array out;
    assert_int_equal(weir_result_get_array(d, "mask", &out), WEIR_OK);
    assert_memory_equal(out.data, v, 4); /* the values survive */
    /* Documented in result.h: bool travels as uint8 (RFC 8746 has no boolean
     * typed array), so the values survive and the kind becomes uint8. */
    weir_dtype_kind got = out.dtype.kind;
    weir_result_free(d);
    weir_result_free(r);
    weir_array_release(&a);
    weir_buf_unref(buf);
    assert_int_equal(got, WEIR_DT_U8);
}

static void test_array_big_endian_values(void **state)
{
    (void)state;
    /* >u2 [3] = 258, 16, 65535 and >f8 [1] = 1.5 (IEEE 754 0x3FF8...) */
    const uint8_t be16[6] = {0x01, 0x02, 0x00, 0x10, 0xff, 0xff};
    const uint8_t bef8[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    weir_buf *b1 = weir_buf_copy(be16, 6), *b2 = weir_buf_copy(bef8, 8);
    size_t s3[1] = {3}, s1[1] = {1};
    weir_array a1, a2;
    assert_int_equal(weir_array_init(&a1, (weir_dtype){WEIR_DT_U16, WEIR_BIG}, 1, s3, b1, 0), 0);
    assert_int_equal(weir_array_init(&a2, (weir_dtype){WEIR_DT_F64, WEIR_BIG}, 1, s1, b2, 0), 0);
    weir_result *r = weir_result_new(1, 0, "");
    assert_int_equal(weir_result_set_array(r, "u", &a1), WEIR_OK);
    assert_int_equal(weir_result_set_array(r, "f", &a2), WEIR_OK);
    weir_result *d = roundtrip(r);
    weir_array o;
    assert_int_equal(weir_result_get_array(d, "u", &o), WEIR_OK);
    assert_int_equal(o.dtype.order, WEIR_BIG);
    assert_true(weir_array_get_f64(&o, 0) == 258.0);
    assert_true(weir_array_get_f64(&o, 1) == 16.0);
    assert_true(weir_array_get_f64(&o, 2) == 65535.0);
    assert_int_equal(weir_result_get_array(d, "f", &o), WEIR_OK);
    assert_int_equal(o.dtype.order, WEIR_BIG);
    assert_true(weir_array_get_f64(&o, 0) == 1.5);
    weir_result_free(d);
    weir_result_free(r);
    weir_array_release(&a1);
    weir_array_release(&a2);
    weir_buf_unref(b1);
    weir_buf_unref(b2);
}

static void test_array_strided_input(void **state)
{
    (void)state;
    /* 4 x 4 little-endian uint16 v[i][j] = 10 i + j */
    uint8_t mem[32];
    for (int i = 0; i < 16; i++) {
        mem[2 * i] = (uint8_t)(10 * (i / 4) + i % 4);
        mem[2 * i + 1] = 0;
    }
    weir_array a;
    memset(&a, 0, sizeof a);
    a.dtype = (weir_dtype){WEIR_DT_U16, WEIR_LITTLE};
    a.ndim = 2;
    /* every other row and column from [1][1]: [[11, 13], [31, 33]] */
    a.shape[0] = 2, a.shape[1] = 2;
    a.strides[0] = 16, a.strides[1] = 4;
    a.data = mem + 10;
    weir_result *r = weir_result_new(1, 0, "");
    assert_int_equal(weir_result_set_array(r, "sub", &a), WEIR_OK);
    /* transposed: t[i][j] = 10 j + i */
    a.shape[0] = 4, a.shape[1] = 4;
    a.strides[0] = 2, a.strides[1] = 8;
    a.data = mem;
    assert_int_equal(weir_result_set_array(r, "t", &a), WEIR_OK);
    /* a reversed big-endian int32 column, 3 elements, stride -8: -1, 2, -3 */
    const uint8_t be32[24] = {0xff, 0xff, 0xff, 0xfd, 0,    0,    0,    0,    0, 0, 0, 2,
                              0,    0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    weir_array c;
    memset(&c, 0, sizeof c);
    c.dtype = (weir_dtype){WEIR_DT_I32, WEIR_BIG};
    c.ndim = 1;
    c.shape[0] = 3;
    c.strides[0] = -8;
    c.data = be32 + 16;
    assert_int_equal(weir_result_set_array(r, "rev", &c), WEIR_OK);

    weir_result *d = roundtrip(r);
    weir_array o;
    const uint8_t want_sub[8] = {11, 0, 13, 0, 31, 0, 33, 0};
    size_t s22[2] = {2, 2}, s44[2] = {4, 4}, s3[1] = {3};
    assert_int_equal(weir_result_get_array(d, "sub", &o), WEIR_OK);
    check_array(&o, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, s22, want_sub);
    uint8_t want_t[32];
    for (int k = 0; k < 16; k++) {
        want_t[2 * k] = (uint8_t)(10 * (k % 4) + k / 4);
        want_t[2 * k + 1] = 0;
    }
    assert_int_equal(weir_result_get_array(d, "t", &o), WEIR_OK);
    check_array(&o, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, s44, want_t);
    const uint8_t want_rev[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfd};
    assert_int_equal(weir_result_get_array(d, "rev", &o), WEIR_OK);
    check_array(&o, (weir_dtype){WEIR_DT_I32, WEIR_BIG}, 1, s3, want_rev);
    assert_true(weir_array_get_f64(&o, 0) == -1.0);
    assert_true(weir_array_get_f64(&o, 2) == -3.0);
    weir_result_free(d);
    weir_result_free(r);
}

static void test_array_edge_shapes(void **state)
{
    (void)state;
    weir_result *r = weir_result_new(1, 0, "");
    /* 0-d (a scalar array) and an empty array */
    weir_array z, e;
    assert_int_equal(weir_array_alloc(&z, (weir_dtype){WEIR_DT_F32, WEIR_LITTLE}, 0, NULL), 0);
    size_t s0[2] = {0, 3};
    assert_int_equal(weir_array_alloc(&e, (weir_dtype){WEIR_DT_I16, WEIR_LITTLE}, 2, s0), 0);
    assert_int_equal(weir_result_set_array(r, "z", &z), WEIR_OK);
    assert_int_equal(weir_result_set_array(r, "e", &e), WEIR_OK);
    /* an invalid dtype is refused */
    weir_array bad = z;
    bad.dtype.kind = WEIR_DT_INVALID;
    assert_int_equal(weir_result_set_array(r, "bad", &bad), WEIR_EDTYPE);
    weir_result *d = roundtrip(r);
    weir_array o;
    assert_int_equal(weir_result_get_array(d, "z", &o), WEIR_OK);
    assert_int_equal(o.ndim, 0);
    assert_int_equal(weir_array_nelem(&o), 1);
    assert_true(weir_array_get_f64(&o, 0) == 0.0);
    assert_int_equal(weir_result_get_array(d, "e", &o), WEIR_OK);
    assert_int_equal(o.ndim, 2);
    assert_int_equal(o.shape[0], 0);
    assert_int_equal(o.shape[1], 3);
    assert_int_equal(weir_array_nelem(&o), 0);
    assert_false(weir_result_has(d, "bad"));
    weir_result_free(d);
    weir_result_free(r);
    weir_array_release(&z);
    weir_array_release(&e);
}

static void test_typed_array_tags(void **state)
{
    (void)state;
    /* RFC 8746 §2.1 table, by hand */
    static const struct {
        weir_dtype_kind k;
        uint64_t le, be;
    } t[] = {{WEIR_DT_U8, 64, 64},  {WEIR_DT_U16, 69, 65}, {WEIR_DT_U32, 70, 66},
             {WEIR_DT_U64, 71, 67}, {WEIR_DT_I8, 72, 72},  {WEIR_DT_I16, 77, 73},
             {WEIR_DT_I32, 78, 74}, {WEIR_DT_I64, 79, 75}, {WEIR_DT_F32, 85, 81},
             {WEIR_DT_F64, 86, 82}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(weir_typed_array_tag((weir_dtype){t[i].k, WEIR_LITTLE}), t[i].le);
        assert_int_equal(weir_typed_array_tag((weir_dtype){t[i].k, WEIR_BIG}), t[i].be);
        weir_dtype dt;
        assert_int_equal(weir_typed_array_dtype(t[i].le, &dt), WEIR_OK);
        assert_int_equal(dt.kind, t[i].k);
        if (weir_dtype_size(t[i].k) > 1) assert_int_equal(dt.order, WEIR_LITTLE);
        assert_int_equal(weir_typed_array_dtype(t[i].be, &dt), WEIR_OK);
        assert_int_equal(dt.kind, t[i].k);
        if (weir_dtype_size(t[i].k) > 1) assert_int_equal(dt.order, WEIR_BIG);
    }
    assert_int_equal(weir_typed_array_tag((weir_dtype){WEIR_DT_INVALID, WEIR_LITTLE}), 0);
    weir_dtype dt;
    /* 68 uint8 clamped, 76 reserved, 80/84 float16, 83/87 float128, 40 */
    const uint64_t unsupported[] = {68, 76, 80, 83, 84, 87, 40, 63, 88, 0};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        assert_int_equal(weir_typed_array_dtype(unsupported[i], &dt), WEIR_EDTYPE);
}

/* ---- wire form ---------------------------------------------------------- */

/* {"event": 3, "worker": 1, "params": "ab", "values": {"n": 5, "m": -2,
 *  "a": 40([[2], 69(h'01000200')])} — RFC 8949 §3 heads, shortest form. */
static void test_wire_bytes(void **state)
{
    (void)state;
    weir_result *r = weir_result_new(3, 1, "ab");
    assert_int_equal(weir_result_set_i64(r, "n", 5), WEIR_OK);
    assert_int_equal(weir_result_set_i64(r, "m", -2), WEIR_OK);
    const uint8_t px[4] = {1, 0, 2, 0}; /* little-endian 1, 2 */
    weir_buf *pb = weir_buf_copy(px, sizeof px);
    size_t shape[1] = {2};
    weir_array a;
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 1, shape, pb, 0),
                     WEIR_OK);
    assert_int_equal(weir_result_set_array(r, "a", &a), WEIR_OK);
    const uint8_t want[] = {
        0xa4,                                                     /* map(4) */
        0x65, 'e',  'v',  'e',  'n',  't',  0x03,                 /* "event": 3 */
        0x66, 'w',  'o',  'r',  'k',  'e',  'r',  0x01,           /* "worker": 1 */
        0x66, 'p',  'a',  'r',  'a',  'm',  's',  0x62, 'a', 'b', /* "params": "ab" */
        0x66, 'v',  'a',  'l',  'u',  'e',  's',  0xa3,           /* "values": map(3) */
        0x61, 'n',  0x05,                                         /* "n": 5 */
        0x61, 'm',  0x21,                                         /* "m": -2 (major 1, 1) */
        0x61, 'a',  0xd8, 0x28,                                   /* "a": tag(40) */
        0x82, 0x81, 0x02,                                         /* [[2], */
        0xd8, 0x45, 0x44, 0x01, 0x00, 0x02, 0x00,                 /* 69(h'01000200')] */
    };
    /* Regression (fixed): result.c builds integers with cbor_build_uint64 (event, values,
     * array dims), cbor_build_uint32 (worker) and cbor_build_negint64, and
     * libcbor 0.8 serialises those at their fixed width (9 / 5 bytes), not
     * the shortest head result.h promises ("one CBOR map, shortest heads");
     * "event": 3 comes out as 1b 00 00 00 00 00 00 00 03 instead of 03, the
     * worker as 1a 00 00 00 01, the dim 2 as 1b ... 02. Fix: build each
     * integer at the smallest width that holds it (cbor_build_uint8/16/32/64
     * by value), so the bytes match RFC 8949 preferred serialisation. */
    int same = same_bytes(r, want, sizeof want);
    weir_result_free(r);
    weir_array_release(&a);
    weir_buf_unref(pb);
    if (!same) fail_msg("encoded result differs from the hand-derived CBOR");
}

/* Encodes {"v": x} in an event-0 result and compares with the hand bytes;
 * frees r; returns 1 on a match. */
static int value_bytes(weir_result *r, const uint8_t *val, size_t n)
{
    uint8_t want[64] = {0xa4, 0x65, 'e', 'v',  'e',  'n', 't', 0x00, 0x66, 'w', 'o', 'r',
                        'k',  'e',  'r', 0x00, 0x66, 'p', 'a', 'r',  'a',  'm', 's', 0x60,
                        0x66, 'v',  'a', 'l',  'u',  'e', 's', 0xa1, 0x61, 'v'};
    size_t h = 34;
    memcpy(want + h, val, n);
    int same = same_bytes(r, want, h + n);
    weir_result_free(r);
    return same;
}

static void test_wire_scalars(void **state)
{
    (void)state;
    /* Regression (fixed): fails for the same reason as test_wire_bytes (fixed-width integer
     * heads in result.c), already in the common prefix ("event": 0). */
    static const struct {
        int64_t v;
        uint8_t bytes[9];
        size_t n;
    } ints[] = {
        {0, {0x00}, 1},
        {23, {0x17}, 1},
        {24, {0x18, 0x18}, 2},
        {255, {0x18, 0xff}, 2},
        {256, {0x19, 0x01, 0x00}, 3},
        {65536, {0x1a, 0x00, 0x01, 0x00, 0x00}, 5},
        {-1, {0x20}, 1},
        {-24, {0x37}, 1},
        {-25, {0x38, 0x18}, 2},
        {INT64_MAX, {0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9},
        {INT64_MIN, {0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9},
    };
    int mismatches = 0;
    weir_result *r;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        r = weir_result_new(0, 0, "");
        weir_result_set_i64(r, "v", ints[i].v);
        if (!value_bytes(r, ints[i].bytes, ints[i].n)) {
            fprintf(stderr, "  ^ for the value %lld\n", (long long)ints[i].v);
            mismatches++;
        }
    }
    /* float64 as result.h documents (major 7, 27): 1.5 = 3ff8000000000000 */
    r = weir_result_new(0, 0, "");
    weir_result_set_f64(r, "v", 1.5);
    const uint8_t f[] = {0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    mismatches += !value_bytes(r, f, sizeof f);
    /* text and bytes */
    r = weir_result_new(0, 0, "");
    weir_result_set_str(r, "v", "hi");
    const uint8_t t[] = {0x62, 'h', 'i'};
    mismatches += !value_bytes(r, t, sizeof t);
    r = weir_result_new(0, 0, "");
    weir_result_set_bytes(r, "v", "\x01\x02\x03", 3);
    const uint8_t b[] = {0x43, 0x01, 0x02, 0x03};
    mismatches += !value_bytes(r, b, sizeof b);
    assert_int_equal(mismatches, 0);
}

/* ---- decoding bad input ------------------------------------------------- */

static void test_decode_garbage(void **state)
{
    (void)state;
    char err[256];
    weir_result *d = (weir_result *)0x1;
    /* empty, a break byte, a reserved head, random bytes */
    const uint8_t ff[] = {0xff}, resv[] = {0x1c}, junk[] = {0x5b, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(decode_bytes((const uint8_t *)"", 0, &d, err, sizeof err), WEIR_ECBOR);
    assert_null(d);
    assert_int_equal(decode_bytes(ff, 1, &d, err, sizeof err), WEIR_ECBOR);
    assert_int_equal(decode_bytes(resv, 1, &d, err, sizeof err), WEIR_ECBOR);
    assert_int_equal(decode_bytes(junk, sizeof junk, &d, err, sizeof err), WEIR_ECBOR);
    assert_non_null(strstr(err, "malformed CBOR"));
    uint32_t seed = 12345;
    for (int it = 0; it < 2000; it++) {
        uint8_t buf[64];
        size_t n = 1 + (size_t)(it % 63);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        d = NULL;
        int rc = decode_bytes(buf, n, &d, err, sizeof err);
        if (rc == WEIR_OK)
            weir_result_free(d); /* unlikely, but must be a valid result */
        else
            assert_null(d);
    }

    /* every proper prefix of a valid encoding is an error, never a crash */
    weir_result *r = weir_result_new(9, 2, "0123456789abcdef");
    weir_result_set_i64(r, "x", -7);
    weir_result_set_str(r, "s", "text");
    size_t shape[1] = {3};
    weir_array a;
    weir_array_alloc(&a, (weir_dtype){WEIR_DT_F64, WEIR_LITTLE}, 1, shape);
    weir_result_set_array(r, "a", &a);
    weir_array_release(&a);
    weir_buf *b = NULL;
    assert_int_equal(weir_result_encode(r, &b), WEIR_OK);
    for (size_t n = 0; n < weir_buf_size(b); n++) {
        d = NULL;
        int rc = decode_bytes(weir_buf_data(b), n, &d, err, sizeof err);
        if (rc == WEIR_OK) fail_msg("prefix of %zu bytes decoded", n);
        assert_null(d);
    }
    weir_buf_unref(b);
    weir_result_free(r);
}

static void test_decode_bad_maps(void **state)
{
    (void)state;
    char err[256] = "";
    weir_result *d = NULL;
    /* a map without "event": {"worker": 0, "params": "", "values": {}} */
    const uint8_t noevent[] = {0xa3, 0x66, 'w', 'o', 'r', 'k', 'e', 'r',  0x00,
                               0x66, 'p',  'a', 'r', 'a', 'm', 's', 0x60, 0x66,
                               'v',  'a',  'l', 'u', 'e', 's', 0xa0};
    assert_int_equal(decode_bytes(noevent, sizeof noevent, &d, err, sizeof err), WEIR_EFORMAT);
    assert_null(d);
    assert_non_null(strstr(err, "event"));
    /* "event" as text */
    const uint8_t textevent[] = {0xa4, 0x65, 'e',  'v',  'e', 'n',  't',  0x61, '1', 0x66, 'w',
                                 'o',  'r',  'k',  'e',  'r', 0x00, 0x66, 'p',  'a', 'r',  'a',
                                 'm',  's',  0x60, 0x66, 'v', 'a',  'l',  'u',  'e', 's',  0xa0};
    assert_int_equal(decode_bytes(textevent, sizeof textevent, &d, err, sizeof err), WEIR_EFORMAT);
    /* "values" not a map */
    const uint8_t valsarray[] = {0xa4, 0x65, 'e',  'v', 'e',  'n',  't', 0x01, 0x66, 'w', 'o',
                                 'r',  'k',  'e',  'r', 0x00, 0x66, 'p', 'a',  'r',  'a', 'm',
                                 's',  0x60, 0x66, 'v', 'a',  'l',  'u', 'e',  's',  0x80};
    assert_int_equal(decode_bytes(valsarray, sizeof valsarray, &d, err, sizeof err), WEIR_EFORMAT);
    /* the root is an array, an integer, a tag */
    const uint8_t arr[] = {0x82, 0x01, 0x02}, num[] = {0x05}, tag[] = {0xd8, 0x28, 0xa0};
    assert_int_equal(decode_bytes(arr, sizeof arr, &d, err, sizeof err), WEIR_EFORMAT);
    assert_int_equal(decode_bytes(num, sizeof num, &d, err, sizeof err), WEIR_EFORMAT);
    assert_int_equal(decode_bytes(tag, sizeof tag, &d, err, sizeof err), WEIR_EFORMAT);
    /* NULL err is allowed */
    assert_int_equal(decode_bytes(arr, sizeof arr, &d, NULL, 0), WEIR_EFORMAT);
}

/* Decodes a result whose values map is {"a": <val>} and reads "a" as array. */
static int get_array_from(const uint8_t *val, size_t n, weir_array *out, weir_result **keep)
{
    uint8_t buf[128] = {0xa4, 0x65, 'e', 'v',  'e',  'n', 't', 0x00, 0x66, 'w', 'o', 'r',
                        'k',  'e',  'r', 0x00, 0x66, 'p', 'a', 'r',  'a',  'm', 's', 0x60,
                        0x66, 'v',  'a', 'l',  'u',  'e', 's', 0xa1, 0x61, 'a'};
    assert_true(34 + n <= sizeof buf);
    memcpy(buf + 34, val, n);
    char err[256];
    assert_int_equal(decode_bytes(buf, 34 + n, keep, err, sizeof err), WEIR_OK);
    return weir_result_get_array(*keep, "a", out);
}

static void test_decode_bad_arrays(void **state)
{
    (void)state;
    weir_array o;
    weir_result *d = NULL;
    /* sanity: 40([[2], 69(h'01000200')]) is fine */
    const uint8_t good[] = {0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x45, 0x44, 1, 0, 2, 0};
    assert_int_equal(get_array_from(good, sizeof good, &o, &d), WEIR_OK);
    assert_true(weir_array_get_f64(&o, 1) == 2.0);
    weir_result_free(d);
    /* shape [3] but 4 bytes of uint16 */
    const uint8_t short_[] = {0xd8, 0x28, 0x82, 0x81, 0x03, 0xd8, 0x45, 0x44, 1, 0, 2, 0};
    assert_int_equal(get_array_from(short_, sizeof short_, &o, &d), WEIR_ESHAPE);
    weir_result_free(d);
    /* typed-array tag 68 (uint8 clamped) is not one weir knows */
    const uint8_t clamped[] = {0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x44, 0x42, 1, 2};
    assert_int_equal(get_array_from(clamped, sizeof clamped, &o, &d), WEIR_EDTYPE);
    weir_result_free(d);
    /* tag 40 over a non-array, a 3-element array, a negative dim, untagged bytes */
    const uint8_t notarr[] = {0xd8, 0x28, 0x01};
    assert_int_equal(get_array_from(notarr, sizeof notarr, &o, &d), WEIR_EFORMAT);
    weir_result_free(d);
    const uint8_t three[] = {0xd8, 0x28, 0x83, 0x81, 0x01, 0xd8, 0x40, 0x41, 0x07, 0x00};
    assert_int_equal(get_array_from(three, sizeof three, &o, &d), WEIR_EFORMAT);
    weir_result_free(d);
    const uint8_t negdim[] = {0xd8, 0x28, 0x82, 0x81, 0x20, 0xd8, 0x40, 0x41, 0x07};
    assert_int_equal(get_array_from(negdim, sizeof negdim, &o, &d), WEIR_EFORMAT);
    weir_result_free(d);
    const uint8_t untagged[] = {0xd8, 0x28, 0x82, 0x81, 0x01, 0x41, 0x07};
    assert_int_equal(get_array_from(untagged, sizeof untagged, &o, &d), WEIR_EFORMAT);
    weir_result_free(d);
    /* no tag 40 at all */
    const uint8_t plain[] = {0x82, 0x81, 0x01, 0xd8, 0x40, 0x41, 0x07};
    assert_int_equal(get_array_from(plain, sizeof plain, &o, &d), WEIR_EINVAL);
    weir_result_free(d);
    /* 9 dimensions (more than WEIR_MAX_DIMS) */
    const uint8_t nine[] = {0xd8, 0x28, 0x82, 0x89, 1,    1,    1,    1,   1,
                            1,    1,    1,    1,    0xd8, 0x40, 0x41, 0x07};
    assert_int_equal(get_array_from(nine, sizeof nine, &o, &d), WEIR_EFORMAT);
    weir_result_free(d);
}

static void test_decode_array_shape_overflow(void **state)
{
    (void)state;
    /* 40([[2^63, 2], 64(h'')]): 2^63 * 2 elements wrap to 0 mod 2^64, which
     * "matches" the empty byte string. */
    const uint8_t wrap[] = {0xd8, 0x28, 0x82, 0x82, 0x1b, 0x80, 0,    0,   0,
                            0,    0,    0,    0,    0x02, 0xd8, 0x40, 0x40};
    weir_array o;
    weir_result *d = NULL;
    int rc = get_array_from(wrap, sizeof wrap, &o, &d);
    /* Regression (fixed): result.c weir_result_get_array() multiplies the dims without an
     * overflow check (n *= out->shape[d]), so this returns WEIR_OK with an
     * array of shape [2^63, 2] over zero bytes — any reader walking it reads
     * far outside the buffer. Expected WEIR_ESHAPE (or WEIR_EFORMAT). */
    weir_result_free(d);
    assert_int_not_equal(rc, WEIR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_roundtrip),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_event_above_int64),
        cmocka_unit_test(test_arrays_every_dtype),
        cmocka_unit_test(test_array_bool),
        cmocka_unit_test(test_array_big_endian_values),
        cmocka_unit_test(test_array_strided_input),
        cmocka_unit_test(test_array_edge_shapes),
        cmocka_unit_test(test_typed_array_tags),
        cmocka_unit_test(test_wire_bytes),
        cmocka_unit_test(test_wire_scalars),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_bad_maps),
        cmocka_unit_test(test_decode_bad_arrays),
        cmocka_unit_test(test_decode_array_shape_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
