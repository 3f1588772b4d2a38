/* test_core.c — the core value types: reference-counted buffers (views keep
 * their parents alive, wrapped memory is released exactly once, mapped files
 * including missing and empty ones), dtypes (numpy names and typestrings, and
 * the ones numpy has but weir refuses), arrays (exact-size init, element access
 * for big-endian and strided layouts, checked against values worked out by
 * hand), multipart messages and events (ownership transfer, duplicates,
 * merge), and the error table (every code named and described). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/array.h"
#include "weir/buffer.h"
#include "weir/error.h"
#include "weir/message.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------ */

static void test_buf_refcount(void **state)
{
    (void)state;
    weir_buf *b = weir_buf_new(100);
    assert_non_null(b);
    assert_int_equal(weir_buf_refcount(b), 1);
    assert_int_equal(weir_buf_size(b), 100);
    /* 64-byte aligned for the SIMD codecs (buffer.h) */
    assert_int_equal((uintptr_t)weir_buf_data(b) % 64, 0);
    assert_ptr_equal(weir_buf_mutable(b), weir_buf_data(b));
    assert_ptr_equal(weir_buf_ref(b), b);
    assert_int_equal(weir_buf_refcount(b), 2);
    weir_buf_unref(b);
    assert_int_equal(weir_buf_refcount(b), 1);
    weir_buf_unref(b);
    weir_buf_unref(NULL); /* harmless */
    assert_null(weir_buf_ref(NULL));

    weir_buf *z = weir_buf_new(0);
    assert_non_null(z);
    assert_int_equal(weir_buf_size(z), 0);
    weir_buf_unref(z);
}

static void test_buf_copy(void **state)
{
    (void)state;
    const char src[] = "hello, weir";
    weir_buf *b = weir_buf_copy(src, sizeof src);
    assert_non_null(b);
    assert_int_equal(weir_buf_size(b), sizeof src);
    assert_memory_equal(weir_buf_data(b), src, sizeof src);
    assert_ptr_not_equal(weir_buf_data(b), src);
    weir_buf_unref(b);
    weir_buf *e = weir_buf_copy(NULL, 0);
    assert_non_null(e);
    assert_int_equal(weir_buf_size(e), 0);
    weir_buf_unref(e);
}

static void test_buf_view_keeps_parent(void **state)
{
    (void)state;
    weir_buf *p = weir_buf_new(16);
    assert_non_null(p);
    for (int i = 0; i < 16; i++)
        weir_buf_mutable(p)[i] = (uint8_t)(i * 3);
    weir_buf *v = weir_buf_view(p, 4, 8);
    assert_non_null(v);
    assert_int_equal(weir_buf_refcount(p), 2);
    assert_int_equal(weir_buf_size(v), 8);
    assert_ptr_equal(weir_buf_data(v), weir_buf_data(p) + 4);
    /* views are not writable */
    assert_null(weir_buf_mutable(v));
    /* a view of a view */
    weir_buf *vv = weir_buf_view(v, 2, 3);
    assert_non_null(vv);
    assert_int_equal(weir_buf_refcount(v), 2);
    /* drop the caller's references to the parents: the view keeps them alive
     * (ASan catches a use after free here) */
    weir_buf_unref(p);
    weir_buf_unref(v);
    assert_int_equal(weir_buf_size(vv), 3);
    assert_int_equal(weir_buf_data(vv)[0], 6 * 3);
    assert_int_equal(weir_buf_data(vv)[1], 7 * 3);
    assert_int_equal(weir_buf_data(vv)[2], 8 * 3);
    weir_buf_unref(vv);

    /* ranges outside the parent */
    weir_buf *q = weir_buf_new(10);
    assert_non_null(q);
    assert_null(weir_buf_view(q, 11, 0));
    assert_null(weir_buf_view(q, 5, 6));
    assert_null(weir_buf_view(q, 1, SIZE_MAX)); /* off + len wraps */
    assert_null(weir_buf_view(NULL, 0, 0));
    weir_buf *whole = weir_buf_view(q, 0, 10);
    weir_buf *empty = weir_buf_view(q, 10, 0);
    assert_non_null(whole);
    assert_non_null(empty);
    assert_int_equal(weir_buf_refcount(q), 3);
    weir_buf_unref(whole);
    weir_buf_unref(empty);
    assert_int_equal(weir_buf_refcount(q), 1);
    weir_buf_unref(q);
}

struct release_log {
    int calls;
    void *data;
    size_t size;
};

static void log_release(void *opaque, void *data, size_t size)
{
    struct release_log *l = opaque;
    l->calls++;
    l->data = data;
    l->size = size;
}

static void test_buf_wrap_release(void **state)
{
    (void)state;
    static uint8_t mem[32];
    struct release_log log = {0};
    weir_buf *w = weir_buf_wrap(mem, sizeof mem, log_release, &log);
    assert_non_null(w);
    assert_ptr_equal(weir_buf_data(w), mem);
    assert_null(weir_buf_mutable(w)); /* foreign memory is never writable */
    weir_buf *v = weir_buf_view(w, 8, 8);
    assert_non_null(v);
    weir_buf_unref(w);
    assert_int_equal(log.calls, 0); /* still referenced by the view */
    weir_buf_unref(v);
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.data, mem);
    assert_int_equal(log.size, sizeof mem);

    /* NULL release for static memory */
    weir_buf *s = weir_buf_wrap(mem, sizeof mem, NULL, NULL);
    assert_non_null(s);
    weir_buf_unref(s);
}

static void test_buf_map_file(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("core-map");
    char path[4200];
    snprintf(path, sizeof path, "%s/data.bin", dir);
    uint8_t content[5000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i * 7 + 1);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, sizeof content, f), sizeof content);
    fclose(f);

    weir_buf *b = (weir_buf *)0x1;
    assert_int_equal(weir_buf_map_file(path, &b), WEIR_OK);
    assert_non_null(b);
    assert_int_equal(weir_buf_size(b), sizeof content);
    assert_memory_equal(weir_buf_data(b), content, sizeof content);
    assert_null(weir_buf_mutable(b));
    /* a view into the mapping outlives the caller's reference */
    weir_buf *v = weir_buf_view(b, 4990, 10);
    weir_buf_unref(b);
    assert_memory_equal(weir_buf_data(v), content + 4990, 10);
    weir_buf_unref(v);

    /* missing file */
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-file.bin", dir);
    b = (weir_buf *)0x1;
    assert_int_equal(weir_buf_map_file(missing, &b), WEIR_ENOENT);
    assert_null(b);

    /* empty file: an empty buffer, not an error */
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/empty.bin", dir);
    f = fopen(empty, "wb");
    assert_non_null(f);
    fclose(f);
    b = NULL;
    assert_int_equal(weir_buf_map_file(empty, &b), WEIR_OK);
    assert_non_null(b);
    assert_int_equal(weir_buf_size(b), 0);
    weir_buf_unref(b);

    /* a directory is not a regular file */
    b = (weir_buf *)0x1;
    assert_int_equal(weir_buf_map_file(dir, &b), WEIR_EIO);
    assert_null(b);
}

static void test_buf_map_shared(void **state)
{
    (void)state;
    /* the real capture: 3173 bytes, first bytes d9 d9 f7 (reference §4.3) */
    weir_buf *b = NULL;
    assert_int_equal(weir_buf_map_file(tu_shared("dranspose/dump_xrd.cbors"), &b), WEIR_OK);
    assert_int_equal(weir_buf_size(b), 3173);
    const uint8_t head[] = {0xd9, 0xd9, 0xf7, 0xd9, 0xa7, 0x7d, 0x82, 0x00};
    assert_memory_equal(weir_buf_data(b), head, sizeof head);
    weir_buf_unref(b);
}

/* ---- dtypes ------------------------------------------------------------- */

static void expect_dtype(const char *s, weir_dtype_kind k, weir_byteorder o)
{
    weir_dtype dt = {WEIR_DT_INVALID, WEIR_LITTLE};
    int rc = weir_dtype_parse(s, &dt);
    if (rc) fail_msg("dtype \"%s\": %s", s, weir_err_name(rc));
    if (dt.kind != k) fail_msg("dtype \"%s\": kind %d, expected %d", s, dt.kind, k);
    if (dt.order != o) fail_msg("dtype \"%s\": order %d, expected %d", s, dt.order, o);
}

static void test_dtype_parse(void **state)
{
    (void)state;
    const weir_byteorder host = weir_host_order();
    /* numpy names: host order */
    expect_dtype("uint8", WEIR_DT_U8, host);
    expect_dtype("uint16", WEIR_DT_U16, host);
    expect_dtype("uint32", WEIR_DT_U32, host);
    expect_dtype("uint64", WEIR_DT_U64, host);
    expect_dtype("int8", WEIR_DT_I8, host);
    expect_dtype("int16", WEIR_DT_I16, host);
    expect_dtype("int32", WEIR_DT_I32, host);
    expect_dtype("int64", WEIR_DT_I64, host);
    expect_dtype("float32", WEIR_DT_F32, host);
    expect_dtype("float64", WEIR_DT_F64, host);
    expect_dtype("bool", WEIR_DT_BOOL, host);
    /* typestrings */
    expect_dtype("<u2", WEIR_DT_U16, WEIR_LITTLE);
    expect_dtype(">u2", WEIR_DT_U16, WEIR_BIG);
    expect_dtype(">f8", WEIR_DT_F64, WEIR_BIG);
    expect_dtype("<f4", WEIR_DT_F32, WEIR_LITTLE);
    expect_dtype("<i8", WEIR_DT_I64, WEIR_LITTLE);
    expect_dtype(">i4", WEIR_DT_I32, WEIR_BIG);
    expect_dtype("<u4", WEIR_DT_U32, WEIR_LITTLE);
    expect_dtype(">u8", WEIR_DT_U64, WEIR_BIG);
    expect_dtype("|u1", WEIR_DT_U8, host);
    expect_dtype("|i1", WEIR_DT_I8, host);
    expect_dtype("|b1", WEIR_DT_BOOL, host);
    expect_dtype("=i4", WEIR_DT_I32, host);
    expect_dtype("u2", WEIR_DT_U16, host);

    /* refused */
    const char *bad[] = {"<c16",      "O",    "uint7", "",       "<u3",    "<f2",
                         "u",         "<",    "<u2x",  "<u0",    "<u-2",   "float16",
                         "complex64", "|S10", "<M8",   "Uint16", "uint16 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        weir_dtype dt;
        int rc = weir_dtype_parse(bad[i], &dt);
        if (rc != WEIR_EDTYPE)
            fail_msg("dtype \"%s\": got %s, expected WEIR_EDTYPE", bad[i], weir_err_name(rc));
    }
    weir_dtype dt;
    assert_int_equal(weir_dtype_parse(NULL, &dt), WEIR_EINVAL);
    assert_int_equal(weir_dtype_parse("uint8", NULL), WEIR_EINVAL);
}

static void test_dtype_sizes_names(void **state)
{
    (void)state;
    static const struct {
        weir_dtype_kind k;
        size_t size;
        const char *name;
        const char *le, *be; /* typestrings */
    } t[] = {
        {WEIR_DT_U8, 1, "uint8", "|u1", "|u1"},    {WEIR_DT_U16, 2, "uint16", "<u2", ">u2"},
        {WEIR_DT_U32, 4, "uint32", "<u4", ">u4"},  {WEIR_DT_U64, 8, "uint64", "<u8", ">u8"},
        {WEIR_DT_I8, 1, "int8", "|i1", "|i1"},     {WEIR_DT_I16, 2, "int16", "<i2", ">i2"},
        {WEIR_DT_I32, 4, "int32", "<i4", ">i4"},   {WEIR_DT_I64, 8, "int64", "<i8", ">i8"},
        {WEIR_DT_F32, 4, "float32", "<f4", ">f4"}, {WEIR_DT_F64, 8, "float64", "<f8", ">f8"},
        {WEIR_DT_BOOL, 1, "bool", "|b1", "|b1"},
    };
    assert_int_equal(sizeof t / sizeof t[0], WEIR_DT_COUNT_ - 1);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(weir_dtype_size(t[i].k), t[i].size);
        assert_int_equal(weir_dtype_itemsize(t[i].k), t[i].size);
        assert_string_equal(weir_dtype_name(t[i].k), t[i].name);
        char ts[8];
        weir_dtype_typestr((weir_dtype){t[i].k, WEIR_LITTLE}, ts);
        assert_string_equal(ts, t[i].le);
        weir_dtype_typestr((weir_dtype){t[i].k, WEIR_BIG}, ts);
        assert_string_equal(ts, t[i].be);
        /* the typestring parses back to the same kind */
        weir_dtype back;
        assert_int_equal(weir_dtype_parse(t[i].be, &back), WEIR_OK);
        assert_int_equal(back.kind, t[i].k);
        if (t[i].size > 1) assert_int_equal(back.order, WEIR_BIG);
    }
    assert_int_equal(weir_dtype_size(WEIR_DT_INVALID), 0);
    assert_int_equal(weir_dtype_size(WEIR_DT_COUNT_), 0);
    assert_int_equal(weir_dtype_itemsize(WEIR_DT_COUNT_), 0);
    assert_string_equal(weir_dtype_name(WEIR_DT_INVALID), "invalid");
    const uint16_t one = 1;
    assert_int_equal(weir_host_order(), *(const uint8_t *)&one ? WEIR_LITTLE : WEIR_BIG);
}

/* ---- arrays ------------------------------------------------------------- */

static void test_array_init_exact(void **state)
{
    (void)state;
    weir_dtype u16 = {WEIR_DT_U16, WEIR_LITTLE};
    weir_buf *b = weir_buf_new(26);
    assert_non_null(b);
    memset(weir_buf_mutable(b), 0, 26);
    weir_array a;

    /* 3 x 4 uint16 = 24 bytes; 26-byte buffer only fits with offset 2 */
    size_t shape[2] = {3, 4};
    assert_int_equal(weir_array_init(&a, u16, 2, shape, b, 0), WEIR_ESHAPE);
    assert_int_equal(weir_array_init(&a, u16, 2, shape, b, 1), WEIR_ESHAPE);
    assert_int_equal(weir_array_init(&a, u16, 2, shape, b, 3), WEIR_ESHAPE);
    assert_int_equal(weir_array_init(&a, u16, 2, shape, b, 27), WEIR_ESHAPE);
    assert_int_equal(weir_buf_refcount(b), 1); /* failures take no reference */
    assert_int_equal(weir_array_init(&a, u16, 2, shape, b, 2), WEIR_OK);
    assert_int_equal(weir_buf_refcount(b), 2);
    assert_ptr_equal(a.data, weir_buf_data(b) + 2);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 4);
    assert_int_equal(a.strides[0], 8);
    assert_int_equal(a.strides[1], 2);
    assert_int_equal(weir_array_nelem(&a), 12);
    assert_int_equal(weir_array_nbytes(&a), 24);
    assert_true(weir_array_is_contiguous(&a));

    weir_array c;
    weir_array_copy_view(&c, &a);
    assert_int_equal(weir_buf_refcount(b), 3);
    weir_array_release(&c);
    weir_array_release(&a);
    assert_int_equal(weir_buf_refcount(b), 1);
    assert_null(a.buf);
    weir_array_release(NULL);

    /* wrong dtype, too many dims, no buffer, overflowing shape */
    assert_int_equal(
        weir_array_init(&a, (weir_dtype){WEIR_DT_INVALID, WEIR_LITTLE}, 2, shape, b, 2),
        WEIR_EDTYPE);
    size_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 26};
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_U8, WEIR_LITTLE}, 9, nine, b, 0),
                     WEIR_EINVAL);
    assert_int_equal(weir_array_init(&a, u16, 2, shape, NULL, 0), WEIR_EINVAL);
    size_t huge[2] = {SIZE_MAX / 2 + 1, 4}; /* product wraps to 0 bytes mod 2^64 */
    weir_buf *e = weir_buf_new(0);
    assert_int_equal(weir_array_init(&a, u16, 2, huge, e, 0), WEIR_ESHAPE);
    weir_buf_unref(e);

    /* 0-d: one element */
    weir_buf *one = weir_buf_new(8);
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_F64, WEIR_LITTLE}, 0, NULL, one, 0),
                     WEIR_OK);
    assert_int_equal(weir_array_nelem(&a), 1);
    weir_array_release(&a);
    weir_buf_unref(one);
    weir_buf_unref(b);
}

static void test_array_alloc(void **state)
{
    (void)state;
    weir_array a;
    size_t shape[3] = {2, 3, 5};
    assert_int_equal(weir_array_alloc(&a, (weir_dtype){WEIR_DT_I32, weir_host_order()}, 3, shape),
                     WEIR_OK);
    assert_int_equal(weir_array_nbytes(&a), 2 * 3 * 5 * 4);
    assert_int_equal(a.strides[0], 60);
    assert_int_equal(a.strides[1], 20);
    assert_int_equal(a.strides[2], 4);
    assert_int_equal(weir_buf_refcount(a.buf), 1); /* the array holds the only reference */
    for (size_t i = 0; i < 30; i++)
        assert_true(a.data[i * 4] == 0 && weir_array_get_f64(&a, i) == 0.0);
    weir_array_release(&a);
    assert_int_equal(weir_array_alloc(&a, (weir_dtype){WEIR_DT_INVALID, WEIR_LITTLE}, 3, shape),
                     WEIR_EDTYPE);
}

/* A borrowed array (buf NULL) over a stack buffer. */
static weir_array borrowed(weir_dtype dt, const void *data, int ndim, const size_t *shape,
                           const ptrdiff_t *strides)
{
    weir_array a;
    memset(&a, 0, sizeof a);
    a.dtype = dt;
    a.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        a.shape[i] = shape[i];
        a.strides[i] = strides[i];
    }
    a.data = data;
    return a;
}

static void test_array_get_big_endian(void **state)
{
    (void)state;
    size_t two[1] = {2}, one[1] = {1};
    ptrdiff_t s2[1] = {2}, s4[1] = {4}, s8[1] = {8};
    const uint8_t be16[] = {0x01, 0x02, 0xff, 0xfe};
    weir_array a = borrowed((weir_dtype){WEIR_DT_U16, WEIR_BIG}, be16, 1, two, s2);
    assert_true(weir_array_get_f64(&a, 0) == 258.0);   /* 0x0102 */
    assert_true(weir_array_get_f64(&a, 1) == 65534.0); /* 0xfffe */
    a.dtype.kind = WEIR_DT_I16;
    assert_true(weir_array_get_f64(&a, 1) == -2.0);
    a.dtype = (weir_dtype){WEIR_DT_U16, WEIR_LITTLE};
    assert_true(weir_array_get_f64(&a, 0) == 513.0);   /* 0x0201 */
    assert_true(weir_array_get_f64(&a, 1) == 65279.0); /* 0xfeff */

    const uint8_t be32[] = {0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0xfe};
    a = borrowed((weir_dtype){WEIR_DT_U32, WEIR_BIG}, be32, 1, two, s4);
    assert_true(weir_array_get_f64(&a, 0) == 305419896.0); /* 0x12345678 */
    assert_true(weir_array_get_f64(&a, 1) == 4294967294.0);
    a.dtype.kind = WEIR_DT_I32;
    assert_true(weir_array_get_f64(&a, 1) == -2.0);
    a.dtype = (weir_dtype){WEIR_DT_U32, WEIR_LITTLE};
    assert_true(weir_array_get_f64(&a, 0) == 2018915346.0); /* 0x78563412 */

    /* IEEE 754: 1.5 = 0x3FF8000000000000, -2.0f = 0xC0000000 */
    const uint8_t bef64[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    a = borrowed((weir_dtype){WEIR_DT_F64, WEIR_BIG}, bef64, 1, one, s8);
    assert_true(weir_array_get_f64(&a, 0) == 1.5);
    const uint8_t lef64[] = {0, 0, 0, 0, 0, 0, 0xf8, 0x3f};
    a = borrowed((weir_dtype){WEIR_DT_F64, WEIR_LITTLE}, lef64, 1, one, s8);
    assert_true(weir_array_get_f64(&a, 0) == 1.5);
    const uint8_t bef32[] = {0xc0, 0, 0, 0};
    a = borrowed((weir_dtype){WEIR_DT_F32, WEIR_BIG}, bef32, 1, one, s4);
    assert_true(weir_array_get_f64(&a, 0) == -2.0);

    const uint8_t bei64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x85}; /* -123 */
    a = borrowed((weir_dtype){WEIR_DT_I64, WEIR_BIG}, bei64, 1, one, s8);
    assert_true(weir_array_get_f64(&a, 0) == -123.0);
    const uint8_t beu64[] = {0, 0, 0, 1, 0, 0, 0, 0}; /* 2^32 */
    a = borrowed((weir_dtype){WEIR_DT_U64, WEIR_BIG}, beu64, 1, one, s8);
    assert_true(weir_array_get_f64(&a, 0) == 4294967296.0);

    /* one-byte kinds ignore byte order */
    const uint8_t bytes[] = {0xff, 0x01};
    size_t s1shape[1] = {2};
    ptrdiff_t s1[1] = {1};
    a = borrowed((weir_dtype){WEIR_DT_I8, WEIR_BIG}, bytes, 1, s1shape, s1);
    assert_true(weir_array_get_f64(&a, 0) == -1.0);
    a.dtype.kind = WEIR_DT_U8;
    assert_true(weir_array_get_f64(&a, 0) == 255.0);
    a.dtype.kind = WEIR_DT_BOOL;
    assert_true(weir_array_get_f64(&a, 1) == 1.0);
}

static void test_array_get_strided(void **state)
{
    (void)state;
    /* 4 x 4 little-endian uint16 with v[i][j] = 10 i + j, rows of 8 bytes */
    uint8_t mem[32];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            mem[(i * 4 + j) * 2] = (uint8_t)(10 * i + j);
            mem[(i * 4 + j) * 2 + 1] = 0;
        }
    weir_dtype u16 = {WEIR_DT_U16, WEIR_LITTLE};

    /* every other row and column starting at [1][1]: 11 13 31 33 */
    size_t sh[2] = {2, 2};
    ptrdiff_t st[2] = {16, 4};
    weir_array a = borrowed(u16, mem + 10, 2, sh, st);
    assert_false(weir_array_is_contiguous(&a));
    const double want[4] = {11, 13, 31, 33};
    for (size_t k = 0; k < 4; k++)
        assert_true(weir_array_get_f64(&a, k) == want[k]);
    assert_true(weir_array_sum_f64(&a) == 88.0);

    /* transposed: t[i][j] = v[j][i] = 10 j + i */
    size_t sh4[2] = {4, 4};
    ptrdiff_t tr[2] = {2, 8};
    a = borrowed(u16, mem, 2, sh4, tr);
    assert_false(weir_array_is_contiguous(&a));
    for (size_t k = 0; k < 16; k++) {
        size_t i = k / 4, j = k % 4;
        assert_true(weir_array_get_f64(&a, k) == (double)(10 * j + i));
    }
    /* sum over all: 4 * (10 * (0+1+2+3)) + 4 * (0+1+2+3) = 264 */
    assert_true(weir_array_sum_f64(&a) == 264.0);

    /* negative stride: row 2 reversed = 23 22 21 20 */
    size_t sh1[1] = {4};
    ptrdiff_t neg[1] = {-2};
    a = borrowed(u16, mem + (2 * 4 + 3) * 2, 1, sh1, neg);
    for (size_t k = 0; k < 4; k++)
        assert_true(weir_array_get_f64(&a, k) == (double)(23 - k));

    /* a big-endian strided column: bytes 0x00 0x0A at stride 4 => 10 each */
    const uint8_t col[] = {0x00, 0x0a, 0xee, 0xee, 0x01, 0x00, 0xee, 0xee};
    size_t sh2[1] = {2};
    ptrdiff_t s4[1] = {4};
    a = borrowed((weir_dtype){WEIR_DT_U16, WEIR_BIG}, col, 1, sh2, s4);
    assert_true(weir_array_get_f64(&a, 0) == 10.0);
    assert_true(weir_array_get_f64(&a, 1) == 256.0);

    /* dims of length 1 do not break contiguity whatever their stride */
    size_t sh3[2] = {1, 4};
    ptrdiff_t odd[2] = {999, 2};
    a = borrowed(u16, mem, 2, sh3, odd);
    assert_true(weir_array_is_contiguous(&a));
}

/* ---- messages and events ------------------------------------------------ */

static weir_msg msg_of(const char *a, const char *b)
{
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_msg_append(&m, weir_buf_copy(a, strlen(a))), WEIR_OK);
    if (b) assert_int_equal(weir_msg_append(&m, weir_buf_copy(b, strlen(b))), WEIR_OK);
    return m;
}

static void test_msg(void **state)
{
    (void)state;
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(m.nparts, 0);
    assert_int_equal(weir_msg_nbytes(&m), 0);
    weir_buf *keep[10];
    for (int i = 0; i < 10; i++) { /* grows past the first capacity */
        weir_buf *b = weir_buf_new((size_t)i + 1);
        keep[i] = weir_buf_ref(b);
        assert_int_equal(weir_msg_append(&m, b), WEIR_OK);
    }
    assert_int_equal(m.nparts, 10);
    assert_int_equal(weir_msg_nbytes(&m), 55);
    for (int i = 0; i < 10; i++) {
        assert_ptr_equal(m.parts[i], keep[i]);
        assert_int_equal(weir_buf_refcount(keep[i]), 2);
    }
    assert_int_equal(weir_msg_append(&m, NULL), WEIR_EINVAL);
    weir_msg_clear(&m);
    assert_int_equal(m.nparts, 0);
    assert_null(m.parts);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(weir_buf_refcount(keep[i]), 1);
        weir_buf_unref(keep[i]);
    }
    weir_msg_clear(&m); /* clearing twice is fine */
}

static void test_event_streams(void **state)
{
    (void)state;
    weir_event *ev = weir_event_new(42);
    assert_non_null(ev);
    assert_int_equal(ev->number, 42);
    assert_int_equal(ev->nstreams, 0);
    assert_null(ev->created_at);

    weir_msg m = msg_of("abc", "defgh");
    weir_buf *f1 = m.parts[1];
    assert_int_equal(weir_event_add_stream(ev, "xrd", "STINS", &m), WEIR_OK);
    assert_int_equal(m.nparts, 0); /* frames were taken over */
    assert_null(m.parts);
    const weir_stream_packet *s = weir_event_stream(ev, "xrd");
    assert_non_null(s);
    assert_string_equal(s->name, "xrd");
    assert_string_equal(s->typ, "STINS");
    assert_int_equal(s->msg.nparts, 2);
    assert_ptr_equal(s->msg.parts[1], f1);
    assert_int_equal(weir_buf_refcount(f1), 1);

    weir_msg m2 = msg_of("x", NULL);
    assert_int_equal(weir_event_add_stream(ev, "pcap", NULL, &m2), WEIR_OK);
    assert_string_equal(weir_event_stream(ev, "pcap")->typ, "");
    assert_int_equal(weir_event_nbytes(ev), 3 + 5 + 1);

    /* a duplicate is refused and leaves the message with the caller */
    weir_msg dup = msg_of("zz", NULL);
    assert_int_equal(weir_event_add_stream(ev, "xrd", "STINS", &dup), WEIR_EDUPLICATE);
    assert_int_equal(dup.nparts, 1);
    assert_int_equal(ev->nstreams, 2);
    assert_int_equal(weir_event_stream(ev, "xrd")->msg.nparts, 2);
    weir_msg_clear(&dup);

    assert_null(weir_event_stream(ev, "nope"));
    /* order of addition is kept */
    assert_string_equal(ev->streams[0].name, "xrd");
    assert_string_equal(ev->streams[1].name, "pcap");
    /* many streams (grows) */
    for (int i = 0; i < 9; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        weir_msg mm = msg_of(name, NULL);
        assert_int_equal(weir_event_add_stream(ev, name, "raw", &mm), WEIR_OK);
    }
    assert_int_equal(ev->nstreams, 11);
    assert_string_equal(ev->streams[10].name, "s8");
    weir_event_free(ev);
    weir_event_free(NULL);
}

static void test_event_merge(void **state)
{
    (void)state;
    weir_event *dst = weir_event_new(7), *src = weir_event_new(7);
    weir_msg a = msg_of("a-dst", NULL), b = msg_of("b-src", NULL), a2 = msg_of("a-src!", NULL),
             c = msg_of("c", NULL);
    assert_int_equal(weir_event_add_stream(dst, "a", "T", &a), WEIR_OK);
    assert_int_equal(weir_event_add_stream(src, "b", "T", &b), WEIR_OK);
    assert_int_equal(weir_event_add_stream(src, "a", "T", &a2), WEIR_OK);
    assert_int_equal(weir_event_add_stream(src, "c", "U", &c), WEIR_OK);

    assert_int_equal(weir_event_merge(dst, src), WEIR_EDUPLICATE);
    /* dst: a (its own), b, c; src keeps only its conflicting a */
    assert_int_equal(dst->nstreams, 3);
    assert_int_equal(src->nstreams, 1);
    assert_string_equal(src->streams[0].name, "a");
    assert_int_equal(weir_buf_size(src->streams[0].msg.parts[0]), 6);
    assert_int_equal(weir_buf_size(weir_event_stream(dst, "a")->msg.parts[0]), 5);
    assert_non_null(weir_event_stream(dst, "b"));
    assert_string_equal(weir_event_stream(dst, "c")->typ, "U");
    assert_int_equal(weir_event_nbytes(dst), 5 + 5 + 1);

    /* merging a disjoint event empties it */
    weir_event *more = weir_event_new(7);
    weir_msg d = msg_of("dd", NULL);
    assert_int_equal(weir_event_add_stream(more, "d", "T", &d), WEIR_OK);
    assert_int_equal(weir_event_merge(dst, more), WEIR_OK);
    assert_int_equal(more->nstreams, 0);
    assert_int_equal(dst->nstreams, 4);
    /* merging an empty event is a no-op */
    assert_int_equal(weir_event_merge(dst, more), WEIR_OK);
    assert_int_equal(dst->nstreams, 4);

    weir_event_free(more);
    weir_event_free(src);
    weir_event_free(dst);
}

/* ---- error table -------------------------------------------------------- */

static void test_error_table(void **state)
{
    (void)state;
    /* The codes, taken from the table itself; their names and messages are
     * checked for completeness and distinctness below, and a few by hand. */
    static const int codes[] = {
#define X_(name, val, msg) WEIR_E##name,
        WEIR_ERRNO_MAP(X_)
#undef X_
    };
    static const char *const expect_names[] = {
#define X_(name, val, msg) "WEIR_E" #name,
        WEIR_ERRNO_MAP(X_)
#undef X_
    };
    const size_t n = sizeof codes / sizeof codes[0];
    assert_true(n >= 23);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        const char *name = weir_err_name(codes[i]);
        const char *msg = weir_strerror(codes[i]);
        assert_non_null(name);
        assert_non_null(msg);
        assert_string_equal(name, expect_names[i]);
        assert_true(strlen(msg) > 3);
        assert_string_not_equal(msg, "unknown error");
        assert_string_not_equal(msg, "success");
        for (size_t j = 0; j < i; j++) {
            if (codes[i] == codes[j]) fail_msg("code %d used twice", codes[i]);
            assert_string_not_equal(name, weir_err_name(codes[j]));
            assert_string_not_equal(msg, weir_strerror(codes[j]));
        }
    }
    /* hand-checked values from error.h */
    assert_int_equal(WEIR_ENOMEM, -1);
    assert_int_equal(WEIR_EDUPLICATE, -23);
    assert_string_equal(weir_err_name(WEIR_EDUPLICATE), "WEIR_EDUPLICATE");
    assert_string_equal(weir_err_name(WEIR_ESHAPE), "WEIR_ESHAPE");
    assert_string_equal(weir_strerror(WEIR_ENOENT), "no such file");
    assert_string_equal(weir_strerror(WEIR_OK), "success");
    assert_string_equal(weir_err_name(WEIR_OK), "WEIR_OK");
    /* unknown codes */
    assert_string_equal(weir_strerror(-999), "unknown error");
    assert_string_equal(weir_strerror(5), "unknown error");
    assert_string_equal(weir_strerror(-(int)n - 1), "unknown error");
    assert_string_equal(weir_err_name(-999), "WEIR_E?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_refcount),
        cmocka_unit_test(test_buf_copy),
        cmocka_unit_test(test_buf_view_keeps_parent),
        cmocka_unit_test(test_buf_wrap_release),
        cmocka_unit_test(test_buf_map_file),
        cmocka_unit_test(test_buf_map_shared),
        cmocka_unit_test(test_dtype_parse),
        cmocka_unit_test(test_dtype_sizes_names),
        cmocka_unit_test(test_array_init_exact),
        cmocka_unit_test(test_array_alloc),
        cmocka_unit_test(test_array_get_big_endian),
        cmocka_unit_test(test_array_get_strided),
        cmocka_unit_test(test_msg),
        cmocka_unit_test(test_event_streams),
        cmocka_unit_test(test_event_merge),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
