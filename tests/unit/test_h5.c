/* test_h5.c — HDF5 output helpers (src/io/h5.c).
 *
 * Files are written through weir_h5_* and read back with the raw HDF5 C API
 * only, so a bug in our helper cannot hide itself: types, dataspaces, fill
 * values, string encodings and attributes are checked the way h5py would see
 * them. Expected values are the ones the test wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/h5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *path_in(const char *dir, const char *rel)
{
    static char buf[4][4200];
    static int i;
    char *s = buf[i++ % 4];
    snprintf(s, 4200, "%s/%s", dir, rel);
    return s;
}

static hid_t open_ro(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* Rank, dims and maxdims of a dataset. */
static int ds_dims(hid_t d, hsize_t *dims, hsize_t *maxd)
{
    hid_t s = H5Dget_space(d);
    assert_true(s >= 0);
    int r = H5Sget_simple_extent_ndims(s);
    assert_true(H5Sget_simple_extent_dims(s, dims, maxd) >= 0);
    H5Sclose(s);
    return r;
}

static void test_rows_out_of_order(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("h5-rows");
    const char *path = path_in(dir, "deep/er/out.h5"); /* parents do not exist yet */
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);
    assert_string_equal(weir_h5_path(h), path);
    assert_int_equal(weir_h5_create_rows(h, "a/b/f32", WEIR_DT_F32, 0, NULL), 0);
    uint64_t n = 99;
    assert_int_equal(weir_h5_rows(h, "a/b/f32", &n), 0);
    assert_int_equal(n, 0);
    const uint64_t idx[4] = {5, 2, 0, 9};
    for (int i = 0; i < 4; i++) {
        float v = (float)idx[i] + 0.5f;
        assert_int_equal(weir_h5_write_row(h, "a/b/f32", idx[i], &v), 0);
    }
    assert_int_equal(weir_h5_rows(h, "a/b/f32", &n), 0);
    assert_int_equal(n, 10);
    /* rewriting a row replaces it and does not grow the dataset */
    float v2 = -1.25f;
    assert_int_equal(weir_h5_write_row(h, "a/b/f32", 2, &v2), 0);
    assert_int_equal(weir_h5_close(h), 0);

    hid_t f = open_ro(path);
    hid_t d = H5Dopen2(f, "/a/b/f32", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_IEEE_F32LE) > 0);
    H5Tclose(t);
    hsize_t dims[4], maxd[4];
    assert_int_equal(ds_dims(d, dims, maxd), 1);
    assert_int_equal(dims[0], 10);
    assert_true(maxd[0] == H5S_UNLIMITED);
    hid_t dcpl = H5Dget_create_plist(d);
    assert_int_equal(H5Pget_layout(dcpl), H5D_CHUNKED);
    H5Pclose(dcpl);
    float got[10];
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
    for (int i = 0; i < 10; i++) {
        if (i == 5 || i == 0 || i == 9)
            assert_true(got[i] == (float)i + 0.5f);
        else if (i == 2)
            assert_true(got[i] == -1.25f);
        else
            assert_true(isnan(got[i]));
    }
    H5Dclose(d);
    H5Fclose(f);
}

static void test_rows_2d(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("h5-rows2d");
    const char *path = path_in(dir, "img.h5");
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);
    const size_t shape[2] = {4, 3};
    assert_int_equal(weir_h5_create_rows(h, "images", WEIR_DT_U16, 2, shape), 0);
    assert_int_equal(weir_h5_create_rows(h, "sums", WEIR_DT_F64, 0, NULL), 0);
    assert_int_equal(weir_h5_create_rows(h, "flags", WEIR_DT_BOOL, 0, NULL), 0);
    assert_int_equal(weir_h5_create_rows(h, "counts", WEIR_DT_I32, 1, (size_t[]){2}), 0);
    const int order[3] = {3, 0, 1};
    for (int k = 0; k < 3; k++) {
        uint16_t img[12];
        int r = order[k];
        for (int i = 0; i < 12; i++)
            img[i] = (uint16_t)(1000 * r + i);
        assert_int_equal(weir_h5_write_row(h, "images", (uint64_t)r, img), 0);
        double s = 0.25 * r;
        assert_int_equal(weir_h5_write_row(h, "sums", (uint64_t)r, &s), 0);
        uint8_t fl = (uint8_t)(r & 1);
        assert_int_equal(weir_h5_write_row(h, "flags", (uint64_t)r, &fl), 0);
    }
    int32_t c[2] = {-7, 7};
    assert_int_equal(weir_h5_write_row(h, "counts", 2, c), 0);
    assert_int_equal(weir_h5_close(h), 0);

    hid_t f = open_ro(path);
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_STD_U16LE) > 0);
    H5Tclose(t);
    hsize_t dims[4], maxd[4];
    assert_int_equal(ds_dims(d, dims, maxd), 3);
    assert_int_equal(dims[0], 4);
    assert_int_equal(dims[1], 4);
    assert_int_equal(dims[2], 3);
    assert_true(maxd[0] == H5S_UNLIMITED);
    assert_int_equal(maxd[1], 4);
    uint16_t all[4][12];
    assert_true(H5Dread(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 12; i++)
            assert_int_equal(all[r][i], r == 2 ? 0 : 1000 * r + i); /* row 2: int fill 0 */
    H5Dclose(d);

    d = H5Dopen2(f, "sums", H5P_DEFAULT);
    double s[4];
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0);
    assert_true(s[0] == 0.0 && s[1] == 0.25 && s[3] == 0.75 && isnan(s[2]));
    H5Dclose(d);

    /* bool rows are h5py's enum so numpy reads them as bool */
    d = H5Dopen2(f, "flags", H5P_DEFAULT);
    t = H5Dget_type(d);
    assert_int_equal(H5Tget_class(t), H5T_ENUM);
    assert_int_equal(H5Tget_size(t), 1);
    char name[16];
    int8_t one = 1;
    assert_true(H5Tenum_nameof(t, &one, name, sizeof name) >= 0);
    assert_string_equal(name, "TRUE");
    H5Tclose(t);
    uint8_t fl[4];
    hid_t mt = H5Dget_type(d);
    assert_true(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fl) >= 0);
    H5Tclose(mt);
    assert_true(fl[0] == 0 && fl[1] == 1 && fl[2] == 0 && fl[3] == 1);
    H5Dclose(d);

    d = H5Dopen2(f, "counts", H5P_DEFAULT);
    int32_t cc[3][2];
    assert_int_equal(ds_dims(d, dims, maxd), 2);
    assert_int_equal(dims[0], 3);
    assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, cc) >= 0);
    assert_true(cc[0][0] == 0 && cc[1][1] == 0 && cc[2][0] == -7 && cc[2][1] == 7);
    H5Dclose(d);
    H5Fclose(f);
}

/* Reads a scalar variable-length UTF-8 string dataset or attribute. */
static void check_vlen_str(hid_t t, const char *want, herr_t (*rd)(hid_t, hid_t, void *), hid_t obj)
{
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    assert_true(H5Tis_variable_str(t) > 0);
    assert_int_equal(H5Tget_cset(t), H5T_CSET_UTF8);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *s = NULL;
    assert_true(rd(obj, mt, &s) >= 0);
    assert_non_null(s);
    assert_string_equal(s, want);
    H5free_memory(s);
    H5Tclose(mt);
}

static herr_t rd_dset(hid_t d, hid_t mt, void *buf)
{
    return H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

static herr_t rd_attr(hid_t a, hid_t mt, void *buf)
{
    return H5Aread(a, mt, buf);
}

static herr_t count_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc;
    (void)name;
    (void)info;
    (*(hsize_t *)data)++;
    return 0;
}

static void test_scalars_and_attrs(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("h5-scalars");
    const char *path = path_in(dir, "s.h5");
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);
    assert_int_equal(weir_h5_write_i64(h, "meta/n", -1234567890123LL), 0);
    assert_int_equal(weir_h5_write_f64(h, "meta/x", 2.5e-12), 0);
    const char *utf8 = "détecteur \xe2\x86\x92 stream";
    assert_int_equal(weir_h5_write_str(h, "meta/deep/name", utf8), 0);
    assert_int_equal(weir_h5_attr_str(h, "/", "creator", "weir"), 0);
    assert_int_equal(weir_h5_attr_str(h, "/", "creator", "weir 2"), 0); /* replaced */
    assert_int_equal(weir_h5_attr_i64(h, "/", "version", 3), 0);
    assert_int_equal(weir_h5_attr_f64(h, "meta/x", "scale", 0.5), 0);
    assert_int_equal(weir_h5_attr_i64(h, "meta", "count", 42), 0);
    assert_int_equal(weir_h5_close(h), 0);

    hid_t f = open_ro(path);
    hid_t d = H5Dopen2(f, "meta/n", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_STD_I64LE) > 0);
    H5Tclose(t);
    hid_t sp = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_type(sp), H5S_SCALAR);
    H5Sclose(sp);
    int64_t iv;
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &iv) >= 0);
    assert_true(iv == -1234567890123LL);
    H5Dclose(d);

    d = H5Dopen2(f, "meta/x", H5P_DEFAULT);
    t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_IEEE_F64LE) > 0);
    H5Tclose(t);
    double dv;
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &dv) >= 0);
    assert_true(dv == 2.5e-12);
    hid_t a = H5Aopen(d, "scale", H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &dv) >= 0);
    assert_true(dv == 0.5);
    H5Aclose(a);
    H5Dclose(d);

    d = H5Dopen2(f, "meta/deep/name", H5P_DEFAULT);
    t = H5Dget_type(d);
    check_vlen_str(t, utf8, rd_dset, d);
    H5Tclose(t);
    H5Dclose(d);

    a = H5Aopen(f, "creator", H5P_DEFAULT);
    t = H5Aget_type(a);
    check_vlen_str(t, "weir 2", rd_attr, a);
    H5Tclose(t);
    H5Aclose(a);
    hsize_t nattr = 0;
    assert_true(H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, count_attr, &nattr) >= 0);
    assert_int_equal(nattr, 2); /* creator was replaced, not added twice */

    a = H5Aopen(f, "version", H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_INT64, &iv) >= 0);
    assert_true(iv == 3);
    H5Aclose(a);
    hid_t g = H5Gopen2(f, "meta", H5P_DEFAULT);
    a = H5Aopen(g, "count", H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_INT64, &iv) >= 0);
    assert_true(iv == 42);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(f);
}

static void test_write_array(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("h5-array");
    const char *path = path_in(dir, "a.h5");
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);

    /* big-endian uint16 2x3, bytes built by hand: value 256*i + 1 */
    uint8_t be[12];
    for (int i = 0; i < 6; i++) {
        be[2 * i] = (uint8_t)i;
        be[2 * i + 1] = 1;
    }
    weir_buf *b = weir_buf_copy(be, sizeof be);
    weir_array a;
    const size_t shape[2] = {2, 3};
    assert_int_equal(weir_array_init(&a, (weir_dtype){WEIR_DT_U16, WEIR_BIG}, 2, shape, b, 0), 0);
    assert_int_equal(weir_h5_write_array(h, "be/u16", &a), 0);

    /* transposed view (3x2, strides 2, 6) */
    weir_array tv;
    weir_array_copy_view(&tv, &a);
    tv.shape[0] = 3;
    tv.shape[1] = 2;
    tv.strides[0] = 2;
    tv.strides[1] = 6;
    assert_int_equal(weir_h5_write_array(h, "be/u16_T", &tv), 0);
    weir_array_release(&tv);
    weir_array_release(&a);
    weir_buf_unref(b);

    /* host-order float32, 0-d float64, bool, empty */
    weir_array f32, z, bl, em;
    assert_int_equal(weir_array_alloc(&f32, (weir_dtype){WEIR_DT_F32, weir_host_order()}, 2, shape),
                     0);
    for (int i = 0; i < 6; i++) {
        float v = 0.5f * (float)i;
        memcpy(weir_buf_mutable(f32.buf) + 4 * i, &v, 4);
    }
    assert_int_equal(weir_h5_write_array(h, "f32", &f32), 0);
    assert_int_equal(
        weir_array_alloc(&z, (weir_dtype){WEIR_DT_F64, weir_host_order()}, 0, (size_t[]){0}), 0);
    double pi = 3.25;
    memcpy(weir_buf_mutable(z.buf), &pi, 8);
    assert_int_equal(weir_h5_write_array(h, "zero_d", &z), 0);
    size_t three = 3, zero = 0;
    assert_int_equal(
        weir_array_alloc(&bl, (weir_dtype){WEIR_DT_BOOL, weir_host_order()}, 1, &three), 0);
    weir_buf_mutable(bl.buf)[1] = 1;
    assert_int_equal(weir_h5_write_array(h, "bool", &bl), 0);
    assert_int_equal(weir_array_alloc(&em, (weir_dtype){WEIR_DT_I16, weir_host_order()}, 1, &zero),
                     0);
    assert_int_equal(weir_h5_write_array(h, "empty", &em), 0);
    weir_array_release(&f32);
    weir_array_release(&z);
    weir_array_release(&bl);
    weir_array_release(&em);
    assert_int_equal(weir_h5_close(h), 0);

    hid_t f = open_ro(path);
    hid_t d = H5Dopen2(f, "be/u16", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_STD_U16BE) > 0); /* byte order kept, as h5py does */
    H5Tclose(t);
    uint16_t v[6];
    assert_true(H5Dread(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(v[i], 256 * i + 1);
    H5Dclose(d);
    d = H5Dopen2(f, "be/u16_T", H5P_DEFAULT);
    hsize_t dims[4], maxd[4];
    assert_int_equal(ds_dims(d, dims, maxd), 2);
    assert_true(dims[0] == 3 && dims[1] == 2 && maxd[0] == 3);
    assert_true(H5Dread(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 2; c++)
            assert_int_equal(v[r * 2 + c], 256 * (c * 3 + r) + 1);
    H5Dclose(d);

    d = H5Dopen2(f, "f32", H5P_DEFAULT);
    float fv[6];
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, fv) >= 0);
    for (int i = 0; i < 6; i++)
        assert_true(fv[i] == 0.5f * (float)i);
    H5Dclose(d);

    d = H5Dopen2(f, "zero_d", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_type(sp), H5S_SCALAR);
    H5Sclose(sp);
    double dv;
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &dv) >= 0);
    assert_true(dv == 3.25);
    H5Dclose(d);

    d = H5Dopen2(f, "bool", H5P_DEFAULT);
    t = H5Dget_type(d);
    assert_int_equal(H5Tget_class(t), H5T_ENUM);
    uint8_t bv[3];
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, bv) >= 0);
    assert_true(bv[0] == 0 && bv[1] == 1 && bv[2] == 0);
    H5Tclose(t);
    H5Dclose(d);

    d = H5Dopen2(f, "empty", H5P_DEFAULT);
    assert_int_equal(ds_dims(d, dims, maxd), 1);
    assert_int_equal(dims[0], 0);
    H5Dclose(d);
    H5Fclose(f);
}

/* Counts calls of an application's HDF5 error handler. */
static herr_t count_handler(hid_t stack, void *data)
{
    (void)stack;
    (*(int *)data)++;
    return 0;
}

static void test_errors(void **state)
{
    (void)state;
    weir_h5 *h = (weir_h5 *)1;
    char err[1024];
    /* an application's own handler must neither fire nor be lost */
    int calls = 0;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, count_handler, &calls);

    int rc = weir_h5_create_ex("/proc/weir-no/such/x.h5", &h, err, sizeof err);
    assert_int_equal(rc, WEIR_EIO);
    assert_null(h);
    assert_non_null(strstr(err, "/proc/weir-no/such/x.h5"));
    assert_non_null(strstr(err, "cannot create directory '/proc/weir-no'"));

    rc = weir_h5_create_ex("/proc/weir-test.h5", &h, err, sizeof err);
    assert_int_equal(rc, WEIR_EHDF5);
    assert_null(h);
    assert_non_null(strstr(err, "/proc/weir-test.h5: cannot create HDF5 file"));
    print_message("error message: %s\n", err);
    assert_int_equal(weir_h5_create("/proc/weir-test.h5", &h), WEIR_EHDF5);

    /* a regular file in the way of a directory */
    const char *dir = tu_tmpdir("h5-errors");
    const char *blocker = path_in(dir, "file");
    FILE *fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);
    rc = weir_h5_create_ex(path_in(dir, "file/x.h5"), &h, err, sizeof err);
    assert_int_equal(rc, WEIR_EIO);
    assert_non_null(strstr(err, "not a directory"));

    const char *path = path_in(dir, "e.h5");
    assert_int_equal(weir_h5_create(path, &h), 0);
    float x = 1;
    assert_int_equal(weir_h5_write_row(h, "nope", 0, &x), WEIR_ENOTFOUND);
    assert_non_null(strstr(weir_h5_error(h), path));
    assert_non_null(strstr(weir_h5_error(h), "'nope'"));
    assert_int_equal(weir_h5_create_rows(h, "r", WEIR_DT_F32, 0, NULL), 0);
    assert_int_equal(weir_h5_create_rows(h, "r", WEIR_DT_F32, 0, NULL), WEIR_EDUPLICATE);
    assert_non_null(strstr(weir_h5_error(h), "'r' already exists"));
    assert_int_equal(weir_h5_write_i64(h, "r", 1), WEIR_EDUPLICATE);
    /* "r" is a dataset: nothing can live below it */
    rc = weir_h5_write_i64(h, "r/sub", 1);
    assert_int_equal(rc, WEIR_EHDF5);
    assert_non_null(strstr(weir_h5_error(h), "'r/sub'"));
    print_message("error message: %s\n", weir_h5_error(h));
    assert_int_equal(weir_h5_attr_i64(h, "missing/obj", "a", 1), WEIR_ENOTFOUND);
    assert_non_null(strstr(weir_h5_error(h), "'missing/obj'"));
    assert_int_equal(weir_h5_write_row(h, "r", UINT64_MAX, &x), WEIR_ERANGE);
    assert_int_equal(weir_h5_write_row(h, "r", 0, NULL), WEIR_EINVAL);
    assert_int_equal(weir_h5_create_rows(h, "bad", WEIR_DT_INVALID, 0, NULL), WEIR_EINVAL);
    assert_int_equal(weir_h5_create_rows(h, "bad", WEIR_DT_U8, 1, (size_t[]){0}), WEIR_EINVAL);
    assert_int_equal(weir_h5_create_rows(h, "", WEIR_DT_U8, 0, NULL), WEIR_EINVAL);
    weir_array inval;
    memset(&inval, 0, sizeof inval);
    assert_int_equal(weir_h5_write_array(h, "inval", &inval), WEIR_EINVAL);
    assert_int_equal(weir_h5_close(h), 0);
    assert_int_equal(weir_h5_close(NULL), 0);

    assert_int_equal(calls, 0);
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    assert_true(fn == count_handler && data == &calls);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
}

static void test_create_truncates(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("h5-trunc");
    const char *path = path_in(dir, "t.h5");
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);
    assert_int_equal(weir_h5_write_i64(h, "old", 1), 0);
    assert_int_equal(weir_h5_close(h), 0);
    assert_int_equal(weir_h5_create(path, &h), 0);
    assert_int_equal(weir_h5_write_i64(h, "new", 2), 0);
    assert_int_equal(weir_h5_close(h), 0);
    hid_t f = open_ro(path);
    assert_int_equal(H5Lexists(f, "old", H5P_DEFAULT), 0);
    assert_true(H5Lexists(f, "new", H5P_DEFAULT) > 0);
    H5Fclose(f);
}

static void test_many_rows(void **state)
{
    (void)state;
    /* several chunks, random order, every row checked */
    const char *dir = tu_tmpdir("h5-many");
    const char *path = path_in(dir, "m.h5");
    weir_h5 *h;
    assert_int_equal(weir_h5_create(path, &h), 0);
    assert_int_equal(weir_h5_create_rows(h, "v", WEIR_DT_I64, 1, (size_t[]){3}), 0);
    enum { N = 20000 };
    uint32_t s = 12345;
    static unsigned char written[N];
    memset(written, 0, sizeof written);
    for (int k = 0; k < N / 2; k++) {
        s = s * 1103515245u + 12345u;
        uint64_t r = (s >> 8) % N;
        int64_t row[3] = {(int64_t)r, -(int64_t)r, 7};
        assert_int_equal(weir_h5_write_row(h, "v", r, row), 0);
        written[r] = 1;
    }
    uint64_t n;
    assert_int_equal(weir_h5_rows(h, "v", &n), 0);
    assert_int_equal(weir_h5_close(h), 0);

    hid_t f = open_ro(path);
    hid_t d = H5Dopen2(f, "v", H5P_DEFAULT);
    hsize_t dims[4], maxd[4];
    ds_dims(d, dims, maxd);
    assert_int_equal(dims[0], n);
    int64_t *all = malloc(n * 3 * sizeof *all);
    assert_non_null(all);
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0);
    for (uint64_t r = 0; r < n; r++) {
        if (written[r]) {
            assert_true(all[3 * r] == (int64_t)r && all[3 * r + 1] == -(int64_t)r &&
                        all[3 * r + 2] == 7);
        } else {
            assert_true(all[3 * r] == 0 && all[3 * r + 1] == 0 && all[3 * r + 2] == 0);
        }
    }
    assert_true(written[n - 1]);
    free(all);
    H5Dclose(d);
    H5Fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_out_of_order),
        cmocka_unit_test(test_rows_2d),
        cmocka_unit_test(test_scalars_and_attrs),
        cmocka_unit_test(test_write_array),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_create_truncates),
        cmocka_unit_test(test_many_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
