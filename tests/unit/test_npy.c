/* test_npy.c — NumPy .npy reader and writer (src/formats/npy.c).
 *
 * Expected values never come from the code under test: element bytes are
 * built by hand in the wanted byte order, reference files are byte literals
 * of what numpy 1.24's np.save writes, and the real numpy-written files in
 * ../shared/data are cross-checked against their own header text (parsed
 * here with sscanf) and against values decoded from the raw bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* numpy 1.24 np.save output (python: np.save(b, np.arange(6, dtype='<u2').reshape(2, 3))) */
static const char ref_u2_2x3[] = "\x93NUMPY\x01\x00\x76\x00"
                                 "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }"
                                 "                                                          \n"
                                 "\x00\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00";

/* np.array([1.5, -2.0], dtype='>f8') */
static const char ref_f8be[] = "\x93NUMPY\x01\x00\x76\x00"
                               "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }"
                               "                                                            \n"
                               "\x3f\xf8\x00\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00";

/* np.array(7, dtype='<i4') */
static const char ref_i4_scalar[] =
    "\x93NUMPY\x01\x00\x76\x00"
    "{'descr': '<i4', 'fortran_order': False, 'shape': (), }"
    "                                                              \n"
    "\x07\x00\x00\x00";

/* np.array([True, False, True]) */
static const char ref_bool[] = "\x93NUMPY\x01\x00\x76\x00"
                               "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"
                               "                                                            \n"
                               "\x01\x00\x01";

/* np.zeros((0,), dtype='<f4') */
static const char ref_empty[] = "\x93NUMPY\x01\x00\x76\x00"
                                "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }"
                                "                                                            \n";

/* np.arange(6, dtype='<u2').reshape(3, 2, order='F') saved as is */
static const char ref_fortran[] = "\x93NUMPY\x01\x00\x76\x00"
                                  "{'descr': '<u2', 'fortran_order': True, 'shape': (3, 2), }"
                                  "                                                           \n"
                                  "\x00\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00";

static weir_buf *lit(const char *s, size_t n_with_nul)
{
    weir_buf *b = weir_buf_copy(s, n_with_nul - 1);
    assert_non_null(b);
    return b;
}
#define LIT(x) lit((x), sizeof(x))

/* Builds a .npy by hand: given version and dict text, pads like numpy. */
static weir_buf *make_npy(int major, const char *dict, const void *data, size_t n)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t hlen = dl + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    weir_buf *b = weir_buf_new(pre + hlen + n);
    assert_non_null(b);
    uint8_t *p = weir_buf_mutable(b);
    memcpy(p, "\x93NUMPY", 6);
    p[6] = (uint8_t)major;
    p[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        p[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(p + pre, dict, dl);
    memset(p + pre + dl, ' ', hlen - dl - 1);
    p[pre + hlen - 1] = '\n';
    if (n) memcpy(p + pre + hlen, data, n);
    return b;
}

static int parse_text(const char *dict, const void *data, size_t n, weir_array *a, char *err,
                      size_t errlen)
{
    weir_buf *b = make_npy(1, dict, data, n);
    int rc = weir_npy_parse(b, a, err, errlen);
    weir_buf_unref(b);
    return rc;
}

/* ---- round trips ---------------------------------------------------------- */

struct dt_case {
    weir_dtype_kind kind;
    char letter;
    int size;
    int is_float, is_signed;
};

static const struct dt_case dt_cases[] = {
    {WEIR_DT_U8, 'u', 1, 0, 0},  {WEIR_DT_U16, 'u', 2, 0, 0},  {WEIR_DT_U32, 'u', 4, 0, 0},
    {WEIR_DT_U64, 'u', 8, 0, 0}, {WEIR_DT_I8, 'i', 1, 0, 1},   {WEIR_DT_I16, 'i', 2, 0, 1},
    {WEIR_DT_I32, 'i', 4, 0, 1}, {WEIR_DT_I64, 'i', 8, 0, 1},  {WEIR_DT_F32, 'f', 4, 1, 1},
    {WEIR_DT_F64, 'f', 8, 1, 1}, {WEIR_DT_BOOL, 'b', 1, 0, 0},
};

/* The value of element i for a dtype, representable exactly in it. */
static double value_for(const struct dt_case *c, size_t i)
{
    if (c->kind == WEIR_DT_BOOL) return (double)(i % 3 == 1);
    if (c->is_float) return (double)i * 1.25 - 3.5;
    if (c->is_signed) return (double)((int)i - 5) * (c->size == 1 ? 7 : 1000);
    return (double)(i * (c->size == 1 ? 13 : 4099));
}

/* Stores v as a c-typed element in the given byte order, by hand. */
static void store(const struct dt_case *c, weir_byteorder order, double v, uint8_t *out)
{
    uint64_t bits;
    if (c->kind == WEIR_DT_F32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        bits = u;
    } else if (c->kind == WEIR_DT_F64) {
        memcpy(&bits, &v, 8);
    } else {
        bits = (uint64_t)(int64_t)v;
    }
    for (int i = 0; i < c->size; i++) {
        int shift = order == WEIR_LITTLE ? i : c->size - 1 - i;
        out[i] = (uint8_t)(bits >> (8 * shift));
    }
}

static void test_roundtrip_all_dtypes(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("npy-roundtrip");
    for (size_t ci = 0; ci < sizeof dt_cases / sizeof dt_cases[0]; ci++) {
        const struct dt_case *c = &dt_cases[ci];
        for (int ord = 0; ord < 2; ord++) {
            weir_byteorder order = ord ? WEIR_BIG : WEIR_LITTLE;
            size_t shape[2] = {3, 4}, n = 12;
            weir_buf *data = weir_buf_new(n * (size_t)c->size);
            assert_non_null(data);
            for (size_t i = 0; i < n; i++)
                store(c, order, value_for(c, i), weir_buf_mutable(data) + i * (size_t)c->size);
            weir_array a;
            assert_int_equal(weir_array_init(&a, (weir_dtype){c->kind, order}, 2, shape, data, 0),
                             0);

            /* the header text carries the typestring numpy would use */
            char want[64];
            snprintf(want, sizeof want,
                     "{'descr': '%c%c%d', 'fortran_order': False, 'shape': (3, 4), }",
                     c->size == 1 ? '|' : (order == WEIR_BIG ? '>' : '<'), c->letter, c->size);
            weir_buf *enc;
            assert_int_equal(weir_npy_encode(&a, &enc), 0);
            const uint8_t *e = weir_buf_data(enc);
            assert_int_equal(weir_buf_size(enc), 128 + n * (size_t)c->size);
            assert_memory_equal(e + 10, want, strlen(want));
            assert_int_equal(e[127], '\n');
            assert_memory_equal(e + 128, weir_buf_data(data), n * (size_t)c->size);

            /* in memory */
            weir_array b;
            char err[256];
            assert_int_equal(weir_npy_parse(enc, &b, err, sizeof err), 0);
            assert_int_equal(b.dtype.kind, c->kind);
            if (c->size > 1) assert_int_equal(b.dtype.order, order);
            assert_int_equal(b.ndim, 2);
            assert_int_equal(b.shape[0], 3);
            assert_int_equal(b.shape[1], 4);
            assert_int_equal(b.strides[0], 4 * c->size);
            assert_int_equal(b.strides[1], c->size);
            assert_ptr_equal(b.data, e + 128); /* zero copy */
            for (size_t i = 0; i < n; i++)
                assert_true(weir_array_get_f64(&b, i) == value_for(c, i));
            weir_array_release(&b);

            /* through a file */
            char path[4200];
            snprintf(path, sizeof path, "%s/%s-%d.npy", dir, weir_dtype_name(c->kind), ord);
            assert_int_equal(weir_npy_write(path, &a), 0);
            size_t flen;
            uint8_t *file = tu_read_file(path, &flen);
            assert_int_equal(flen, weir_buf_size(enc));
            assert_memory_equal(file, e, flen);
            free(file);
            assert_int_equal(weir_npy_read(path, &b, err, sizeof err), 0);
            assert_int_equal(b.dtype.kind, c->kind);
            for (size_t i = 0; i < n; i++)
                assert_true(weir_array_get_f64(&b, i) == value_for(c, i));
            weir_array_release(&b);

            weir_buf_unref(enc);
            weir_array_release(&a);
            weir_buf_unref(data);
        }
    }
}

/* ---- byte-exact against numpy --------------------------------------------- */

static void check_encode_equals(const weir_array *a, const char *ref, size_t reflen)
{
    weir_buf *enc;
    assert_int_equal(weir_npy_encode(a, &enc), 0);
    assert_int_equal(weir_buf_size(enc), reflen);
    assert_memory_equal(weir_buf_data(enc), ref, reflen);
    weir_buf_unref(enc);
}

static void test_writer_matches_numpy(void **state)
{
    (void)state;
    weir_array a;
    size_t shape[2] = {2, 3};
    assert_int_equal(weir_array_alloc(&a, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, shape), 0);
    for (int i = 0; i < 6; i++) {
        uint16_t v = (uint16_t)i;
        memcpy(weir_buf_mutable(a.buf) + 2 * i, &v, 2); /* host is little-endian in CI */
    }
    assert_int_equal(weir_host_order(), WEIR_LITTLE);
    check_encode_equals(&a, ref_u2_2x3, sizeof ref_u2_2x3 - 1);
    weir_array_release(&a);

    /* big-endian f8: the bytes are kept as they are */
    weir_buf *b = weir_buf_copy("\x3f\xf8\0\0\0\0\0\0\xc0\0\0\0\0\0\0\0", 16);
    size_t two = 2;
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_F64, WEIR_BIG}, 1, &two, b, 0), 0);
    check_encode_equals(&a, ref_f8be, sizeof ref_f8be - 1);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* 0-d */
    b = weir_buf_copy("\x07\0\0\0", 4);
    assert_int_equal(
        weir_array_init(&a, (weir_dtype){WEIR_DT_I32, WEIR_LITTLE}, 0, (size_t[]){0}, b, 0),
        0); /* non-NULL: array.c memcpy()s shape even for ndim 0 */
    check_encode_equals(&a, ref_i4_scalar, sizeof ref_i4_scalar - 1);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* bool */
    b = weir_buf_copy("\x01\x00\x01", 3);
    size_t three = 3;
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_BOOL, WEIR_LITTLE}, 1, &three, b, 0),
                     0);
    check_encode_equals(&a, ref_bool, sizeof ref_bool - 1);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* empty */
    size_t zero = 0;
    assert_int_equal(weir_array_alloc(&a, (weir_dtype){WEIR_DT_F32, WEIR_LITTLE}, 1, &zero), 0);
    check_encode_equals(&a, ref_empty, sizeof ref_empty - 1);
    weir_array_release(&a);
}

/* ---- reading numpy's own files -------------------------------------------- */

static void test_read_numpy_literals(void **state)
{
    (void)state;
    weir_array a;
    char err[256];
    weir_buf *b = LIT(ref_u2_2x3);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(weir_buf_refcount(b), 2); /* the array holds its own reference */
    assert_int_equal(a.dtype.kind, WEIR_DT_U16);
    assert_int_equal(a.dtype.order, WEIR_LITTLE);
    for (size_t i = 0; i < 6; i++)
        assert_true(weir_array_get_f64(&a, i) == (double)i);
    weir_array_release(&a);
    assert_int_equal(weir_buf_refcount(b), 1);
    weir_buf_unref(b);

    b = LIT(ref_f8be);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(a.dtype.kind, WEIR_DT_F64);
    assert_int_equal(a.dtype.order, WEIR_BIG);
    assert_true(weir_array_get_f64(&a, 0) == 1.5);
    assert_true(weir_array_get_f64(&a, 1) == -2.0);
    weir_array_release(&a);
    weir_buf_unref(b);

    b = LIT(ref_i4_scalar);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(weir_array_nelem(&a), 1);
    assert_true(weir_array_get_f64(&a, 0) == 7.0);
    weir_array_release(&a);
    weir_buf_unref(b);

    b = LIT(ref_bool);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(a.dtype.kind, WEIR_DT_BOOL);
    assert_true(weir_array_get_f64(&a, 0) == 1.0 && weir_array_get_f64(&a, 1) == 0.0);
    weir_array_release(&a);
    weir_buf_unref(b);

    b = LIT(ref_empty);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 0);
    assert_int_equal(weir_array_nelem(&a), 0);
    weir_array_release(&a);
    weir_buf_unref(b);
}

static void test_fortran_order(void **state)
{
    (void)state;
    weir_array a, c;
    char err[256];
    weir_buf *b = LIT(ref_fortran);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 2);
    assert_int_equal(a.strides[0], 2);
    assert_int_equal(a.strides[1], 6);
    /* np.arange(6).reshape(3, 2, order='F')[i, j] == i + 3 * j */
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 2; j++)
            assert_true(weir_array_get_f64(&a, i * 2 + j) == (double)(i + 3 * j));

    /* written back in C order: the same values, C-order bytes */
    weir_buf *enc;
    assert_int_equal(weir_npy_encode(&a, &enc), 0);
    const uint8_t *e = weir_buf_data(enc);
    assert_non_null(memmem(e, 128, "'fortran_order': False, 'shape': (3, 2), }", 42));
    const uint16_t want[6] = {0, 3, 1, 4, 2, 5};
    assert_memory_equal(e + 128, want, sizeof want);
    assert_int_equal(weir_npy_parse(enc, &c, err, sizeof err), 0);
    for (size_t i = 0; i < 6; i++)
        assert_true(weir_array_get_f64(&c, i) == weir_array_get_f64(&a, i));
    weir_array_release(&c);
    weir_buf_unref(enc);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* 3-d Fortran strides */
    uint8_t d[24];
    for (int i = 0; i < 24; i++)
        d[i] = (uint8_t)i;
    assert_int_equal(parse_text("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 4), }", d,
                                24, &a, err, sizeof err),
                     0);
    assert_int_equal(a.strides[0], 1);
    assert_int_equal(a.strides[1], 2);
    assert_int_equal(a.strides[2], 6);
    assert_true(weir_array_get_f64(&a, 1 * 12 + 2 * 4 + 3) == 1 + 2 * 2 + 3 * 6);
    weir_array_release(&a);
}

static void test_noncontiguous_write(void **state)
{
    (void)state;
    /* every other column of a 3x4 int32 array, and its transpose */
    weir_array full, view;
    size_t shape[2] = {3, 4};
    assert_int_equal(
        weir_array_alloc(&full, (weir_dtype){WEIR_DT_I32, weir_host_order()}, 2, shape), 0);
    for (int i = 0; i < 12; i++) {
        int32_t v = 100 + i;
        memcpy(weir_buf_mutable(full.buf) + 4 * i, &v, 4);
    }
    weir_array_copy_view(&view, &full);
    view.shape[1] = 2;
    view.strides[1] = 8;
    weir_buf *enc;
    weir_array back;
    char err[256];
    assert_int_equal(weir_npy_encode(&view, &enc), 0);
    assert_int_equal(weir_npy_parse(enc, &back, err, sizeof err), 0);
    assert_int_equal(back.shape[0], 3);
    assert_int_equal(back.shape[1], 2);
    for (size_t r = 0; r < 3; r++)
        for (size_t k = 0; k < 2; k++)
            assert_true(weir_array_get_f64(&back, r * 2 + k) == 100.0 + (double)(r * 4 + 2 * k));
    weir_array_release(&back);
    weir_buf_unref(enc);

    /* transpose: shape (4, 3), strides (4, 16) */
    view.shape[0] = 4;
    view.shape[1] = 3;
    view.strides[0] = 4;
    view.strides[1] = 16;
    assert_int_equal(weir_npy_encode(&view, &enc), 0);
    assert_int_equal(weir_npy_parse(enc, &back, err, sizeof err), 0);
    for (size_t r = 0; r < 4; r++)
        for (size_t k = 0; k < 3; k++)
            assert_true(weir_array_get_f64(&back, r * 3 + k) == 100.0 + (double)(k * 4 + r));
    weir_array_release(&back);
    weir_buf_unref(enc);

    /* negative stride (reversed rows) */
    view.shape[0] = 3;
    view.shape[1] = 4;
    view.strides[0] = -16;
    view.strides[1] = 4;
    view.data = full.data + 32;
    assert_int_equal(weir_npy_encode(&view, &enc), 0);
    assert_int_equal(weir_npy_parse(enc, &back, err, sizeof err), 0);
    for (size_t r = 0; r < 3; r++)
        for (size_t k = 0; k < 4; k++)
            assert_true(weir_array_get_f64(&back, r * 4 + k) == 100.0 + (double)((2 - r) * 4 + k));
    weir_array_release(&back);
    weir_buf_unref(enc);
    weir_array_release(&view);
    weir_array_release(&full);
}

static void test_versions_and_grammar(void **state)
{
    (void)state;
    weir_array a;
    char err[256];
    const uint8_t d6[12] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0};
    const char *dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }";
    for (int major = 1; major <= 3; major++) {
        weir_buf *b = make_npy(major, dict, d6, 12);
        assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), 0);
        assert_int_equal(a.shape[0], 2);
        assert_true(weir_array_get_f64(&a, 5) == 6.0);
        weir_array_release(&a);
        weir_buf_unref(b);
    }
    /* what literal_eval would also accept and numpy-era writers produced */
    static const char *ok[] = {
        "{'descr':'<u2','fortran_order':False,'shape':(2,3)}",
        "{\"shape\": (2, 3,), \"fortran_order\": False, \"descr\": \"<u2\"}",
        "{ 'descr' : '<u2' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 ) , }",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (2L, 3L), }", /* Python 2 */
        "{'descr': '=u2', 'fortran_order': False, 'shape': (2, 3), }",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = parse_text(ok[i], d6, 12, &a, err, sizeof err);
        if (rc) fail_msg("%s: %s (%s)", ok[i], weir_err_name(rc), err);
        assert_int_equal(a.ndim, 2);
        assert_int_equal(a.shape[1], 3);
        weir_array_release(&a);
    }
    /* (n,) is 1-d */
    assert_int_equal(parse_text("{'descr': '<u2', 'fortran_order': False, 'shape': (6,), }", d6, 12,
                                &a, err, sizeof err),
                     0);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 6);
    weir_array_release(&a);
    /* 'L' is not valid in version 3.0 headers */
    weir_buf *b3 =
        make_npy(3, "{'descr': '<u2', 'fortran_order': False, 'shape': (6L,), }", d6, 12);
    assert_int_equal(weir_npy_parse(b3, &a, err, sizeof err), WEIR_EFORMAT);
    weir_buf_unref(b3);
}

/* ---- errors --------------------------------------------------------------- */

static void expect_error(const char *dict, const void *data, size_t n, int code, const char *msg)
{
    weir_array a;
    char err[256] = "";
    int rc = parse_text(dict, data, n, &a, err, sizeof err);
    if (rc != code)
        fail_msg("%s: got %s, want %s (%s)", dict, weir_err_name(rc), weir_err_name(code), err);
    assert_non_null(strstr(err, "<buffer>: byte "));
    if (msg && !strstr(err, msg)) fail_msg("%s: message '%s' lacks '%s'", dict, err, msg);
    assert_null(a.buf);
}

static void test_bad_headers(void **state)
{
    (void)state;
    const uint8_t d[64] = {0};
    expect_error("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", d, 32, WEIR_EDTYPE,
                 "'<c16'");
    expect_error("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", d, 16, WEIR_EDTYPE,
                 "'|O'");
    expect_error("{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }", d, 40, WEIR_EDTYPE,
                 NULL);
    expect_error("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", d, 4, WEIR_EDTYPE,
                 NULL);
    expect_error("{'descr': '|u2', 'fortran_order': False, 'shape': (2,), }", d, 4, WEIR_EDTYPE,
                 NULL);
    expect_error("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", d, 16,
                 WEIR_EDTYPE, NULL);
    expect_error("{'descr': [('a', '<u2'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                 d, 12, WEIR_EDTYPE, "structured");
    expect_error("{'descr': '<u2', 'fortran_order': False}", d, 4, WEIR_EFORMAT, "'shape'");
    expect_error("{'descr': '<u2', 'shape': (2,)}", d, 4, WEIR_EFORMAT, "'fortran_order'");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), 'x': 1}", d, 4,
                 WEIR_EFORMAT, "unexpected key 'x'");
    expect_error("{'descr': '<u2', 'descr': '<u2', 'fortran_order': False, 'shape': (2,)}", d, 4,
                 WEIR_EFORMAT, "duplicate");
    expect_error("{'descr': '<u2', 'fortran_order': false, 'shape': (2,), }", d, 4, WEIR_EFORMAT,
                 "True or False");
    expect_error("{'descr': '<u2', 'fortran_order': Falsey, 'shape': (2,), }", d, 4, WEIR_EFORMAT,
                 NULL);
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2), }", d, 4, WEIR_EFORMAT,
                 "','");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (-2,), }", d, 4, WEIR_EFORMAT,
                 "non-negative integer");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (02,), }", d, 4, WEIR_EFORMAT,
                 "leading zeros");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': [2], }", d, 4, WEIR_EFORMAT,
                 "'('");
    expect_error("{descr: '<u2', 'fortran_order': False, 'shape': (2,), }", d, 4, WEIR_EFORMAT,
                 "quoted string");
    expect_error("{'descr': '<u\\x32', 'fortran_order': False, 'shape': (2,), }", d, 4,
                 WEIR_EFORMAT, "escape");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), } x", d, 4, WEIR_EFORMAT,
                 "padding");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), ", d, 4, WEIR_EFORMAT,
                 "end of header");
    expect_error("['descr']", d, 4, WEIR_EFORMAT, "'{'");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }",
                 d, 2, WEIR_EUNSUPPORTED, "dimensions");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (99999999999999999999,), }", d,
                 2, WEIR_ESHAPE, NULL);
    expect_error("{'descr': '<u8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", d,
                 2, WEIR_ESHAPE, "overflow");
    /* empty, but the other dimensions overflow the strides (found by fuzzing) */
    expect_error("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 2666666666666666666, 2, "
                 "266666666, 2, 22, 2,), }",
                 d, 0, WEIR_ESHAPE, "too large");
    /* exact size check: one byte short, one byte long */
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", d, 11, WEIR_ESHAPE,
                 "expected 12 data bytes");
    expect_error("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", d, 13, WEIR_ESHAPE,
                 "found 13");
}

static void test_bad_framing(void **state)
{
    (void)state;
    weir_array a;
    char err[256];
    size_t full = sizeof ref_u2_2x3 - 1;
    /* every truncation of a valid file fails; never reads past the end */
    for (size_t n = 0; n < full; n++) {
        weir_buf *b = weir_buf_copy(ref_u2_2x3, n);
        assert_non_null(b);
        int rc = weir_npy_parse(b, &a, err, sizeof err);
        assert_true(rc == WEIR_ETRUNCATED || rc == WEIR_ESHAPE);
        assert_non_null(strstr(err, "<buffer>"));
        weir_buf_unref(b);
    }
    char bad[sizeof ref_u2_2x3];
    memcpy(bad, ref_u2_2x3, sizeof bad);
    bad[1] = 'n';
    weir_buf *b = weir_buf_copy(bad, full);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "<buffer>: byte 0: expected the magic"));
    weir_buf_unref(b);

    b = weir_buf_copy("PK\x03\x04", 4); /* an .npz, not an .npy */
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), WEIR_EFORMAT);
    weir_buf_unref(b);

    memcpy(bad, ref_u2_2x3, sizeof bad);
    bad[6] = 4;
    b = weir_buf_copy(bad, full);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), WEIR_EUNSUPPORTED);
    assert_non_null(strstr(err, "byte 6: expected version"));
    weir_buf_unref(b);

    /* header length pointing past the end */
    memcpy(bad, ref_u2_2x3, sizeof bad);
    bad[9] = 0x10;
    b = weir_buf_copy(bad, full);
    assert_int_equal(weir_npy_parse(b, &a, err, sizeof err), WEIR_ETRUNCATED);
    weir_buf_unref(b);

    /* a file: the message names it */
    const char *dir = tu_tmpdir("npy-bad");
    char path[4200];
    snprintf(path, sizeof path, "%s/short.npy", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(ref_u2_2x3, 1, full - 1, f);
    fclose(f);
    assert_int_equal(weir_npy_read(path, &a, err, sizeof err), WEIR_ESHAPE);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "byte 128"));
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    assert_int_equal(weir_npy_read(path, &a, err, sizeof err), WEIR_ENOENT);
    assert_non_null(strstr(err, path));
    snprintf(path, sizeof path, "%s/no/such/dir/x.npy", dir);
    weir_array z;
    size_t one = 1;
    assert_int_equal(weir_array_alloc(&z, (weir_dtype){WEIR_DT_U8, WEIR_LITTLE}, 1, &one), 0);
    assert_int_equal(weir_npy_write(path, &z), WEIR_ENOENT);
    weir_array_release(&z);
}

/* ---- the real files from ../shared/data ----------------------------------- */

/* Parses the header text by hand: descr and the 1-d shape. */
static void header_by_hand(const uint8_t *f, size_t flen, char descr[8], size_t *n,
                           size_t *data_off)
{
    assert_true(flen >= 10);
    assert_memory_equal(f, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)f[8] | ((size_t)f[9] << 8);
    *data_off = 10 + hlen;
    char hdr[512];
    assert_true(hlen < sizeof hdr);
    memcpy(hdr, f + 10, hlen);
    hdr[hlen] = 0;
    const char *p = strstr(hdr, "'descr': '");
    assert_non_null(p);
    assert_int_equal(sscanf(p + 10, "%3s", descr), 1);
    p = strstr(hdr, "'shape': (");
    assert_non_null(p);
    unsigned long long v;
    assert_int_equal(sscanf(p + 10, "%llu,)", &v), 1);
    *n = (size_t)v;
}

/* Little-endian signed integer of size bytes, decoded by hand. */
static int64_t le_int(const uint8_t *p, int size)
{
    uint64_t u = 0;
    for (int i = size - 1; i >= 0; i--)
        u = (u << 8) | p[i];
    if (size < 8 && (u >> (8 * size - 1))) u |= ~(uint64_t)0 << (8 * size);
    return (int64_t)u;
}

static void check_real_file(const char *rel, weir_dtype_kind want_kind, int *monotonic,
                            int64_t *minv, int64_t *maxv)
{
    const char *path = tu_shared(rel);
    size_t flen, n, off;
    uint8_t *f = tu_read_file(path, &flen);
    char descr[8];
    header_by_hand(f, flen, descr, &n, &off);
    int size = descr[2] - '0';
    assert_true(descr[0] == '<' || descr[0] == '|');
    assert_int_equal(descr[1], 'i');

    weir_array a;
    char err[512];
    int rc = weir_npy_read(path, &a, err, sizeof err);
    if (rc) fail_msg("%s: %s", rel, err);
    assert_int_equal(a.dtype.kind, want_kind);
    assert_int_equal((int)weir_dtype_size(a.dtype.kind), size);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], n);
    assert_int_equal(a.strides[0], size);
    assert_int_equal(off + n * (size_t)size, flen);
    *monotonic = 1;
    *minv = INT64_MAX;
    *maxv = INT64_MIN;
    int64_t prev = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t v = le_int(f + off + i * (size_t)size, size);
        /* every element: the raw bytes at the same place, and via get_f64 */
        assert_memory_equal(a.data + i * (size_t)size, f + off + i * (size_t)size, (size_t)size);
        if (i % 97 == 0) assert_true(weir_array_get_f64(&a, i) == (double)v);
        if (v <= prev) *monotonic = 0;
        prev = v;
        if (v < *minv) *minv = v;
        if (v > *maxv) *maxv = v;
    }
    weir_array_release(&a);
    free(f);
}

static void test_real_eta_reference(void **state)
{
    (void)state;
    static const char *dirs[] = {
        "timetag/eta/reference/200204_HH400_T2_320MHz_HBT.timeres",
        "timetag/eta/reference/200204_HH400_T3_320MHz_HBT.timeres",
        "timetag/eta/reference/200213_HH400_T3_80MHz_HBT.timeres",
    };
    for (size_t i = 0; i < 3; i++) {
        char rel[256];
        int mono;
        int64_t lo, hi;
        snprintf(rel, sizeof rel, "%s/record_index.npy", dirs[i]);
        check_real_file(rel, WEIR_DT_I64, &mono, &lo, &hi);
        assert_true(mono); /* record indices strictly increase */
        assert_true(lo >= 0);
        snprintf(rel, sizeof rel, "%s/kind.npy", dirs[i]);
        check_real_file(rel, WEIR_DT_I8, &mono, &lo, &hi);
        snprintf(rel, sizeof rel, "%s/channel.npy", dirs[i]);
        check_real_file(rel, WEIR_DT_I16, &mono, &lo, &hi);
        assert_true(lo >= 0 && hi < 64); /* HydraHarp 400: a few channels */
        snprintf(rel, sizeof rel, "%s/dtime.npy", dirs[i]);
        check_real_file(rel, WEIR_DT_I32, &mono, &lo, &hi);
        assert_true(lo >= 0);
        snprintf(rel, sizeof rel, "%s/time_units.npy", dirs[i]);
        check_real_file(rel, WEIR_DT_I64, &mono, &lo, &hi);
        assert_true(lo >= 0);
    }
}

static void test_real_eta_results(void **state)
{
    (void)state;
    static const char *files[] = {
        "timetag/eta/results/200204_HH400_T3_320MHz_HBT_g2/hist1.npy",
        "timetag/eta/results/200204_HH400_T3_320MHz_HBT_g2/hist2.npy",
        "timetag/eta/results/200204_HH400_T3_320MHz_HBT_lifetime/hist1.npy",
        "timetag/eta/results/200204_HH400_T2_320MHz_HBT_g2/hist1.npy",
        "timetag/eta/results/200213_HH400_T3_80MHz_HBT/hist1.npy",
        "timetag/eta/results/200213_HH400_T3_80MHz_lifetime/hist1.npy",
        "timetag/eta/results/19_qutag_80MHz_HBT_sync_filtered/hist2.npy",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int mono;
        int64_t lo, hi;
        check_real_file(files[i], WEIR_DT_I64, &mono, &lo, &hi);
        assert_true(lo >= 0); /* histograms count */
        assert_true(hi > 0);

        /* our writer reproduces numpy's file byte for byte */
        weir_array a;
        char err[512];
        assert_int_equal(weir_npy_read(tu_shared(files[i]), &a, err, sizeof err), 0);
        weir_buf *enc;
        assert_int_equal(weir_npy_encode(&a, &enc), 0);
        size_t flen;
        uint8_t *f = tu_read_file(tu_shared(files[i]), &flen);
        assert_int_equal(weir_buf_size(enc), flen);
        assert_memory_equal(weir_buf_data(enc), f, flen);
        free(f);
        weir_buf_unref(enc);
        weir_array_release(&a);
    }
}

static void test_bad_args(void **state)
{
    (void)state;
    weir_array a;
    weir_buf *out;
    assert_int_equal(weir_npy_parse(NULL, &a, NULL, 0), WEIR_EINVAL);
    assert_int_equal(weir_npy_encode(NULL, &out), WEIR_EINVAL);
    memset(&a, 0, sizeof a);
    assert_int_equal(weir_npy_encode(&a, &out), WEIR_EINVAL); /* invalid dtype */
    /* no err buffer is fine */
    weir_buf *b = weir_buf_copy("xx", 2);
    assert_int_equal(weir_npy_parse(b, &a, NULL, 0), WEIR_EFORMAT);
    weir_buf_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_dtypes),
        cmocka_unit_test(test_writer_matches_numpy),
        cmocka_unit_test(test_read_numpy_literals),
        cmocka_unit_test(test_fortran_order),
        cmocka_unit_test(test_noncontiguous_write),
        cmocka_unit_test(test_versions_and_grammar),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_framing),
        cmocka_unit_test(test_real_eta_reference),
        cmocka_unit_test(test_real_eta_results),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
