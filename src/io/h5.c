/* h5.c — HDF5 output helpers for reducers (include/weir/h5.h).
 *
 * A thin layer over libhdf5 (serial) that writes files the way h5py would:
 * event-indexed datasets are chunked with an unlimited first dimension and
 * grow to the highest row written, so rows may arrive in any order and the
 * gaps read back as the fill value (NaN for floats, 0 for integers); scalars
 * and attributes use plain scalar dataspaces, strings are variable-length
 * UTF-8, booleans are h5py's int8 enum {FALSE, TRUE}. Element types keep the
 * data's byte order (big-endian arrays become big-endian HDF5 types), so no
 * conversion happens unless the caller's data needs it.
 *
 * Row datasets stay open in a small per-handle table so writing one row
 * costs one extent check, one hyperslab selection and one H5Dwrite rather
 * than an open/close per event.
 *
 * HDF5 prints its error stack to stderr by default; a library must not, so
 * every entry point switches the automatic printing off for its duration and
 * restores whatever the application had. On failure the innermost message of
 * HDF5's stack is folded into weir_h5_error() together with the file and the
 * object, and the function returns WEIR_EHDF5. */
#include "weir/h5.h"

#include "weir/error.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Target chunk size of row datasets: small enough for sparse writes, large
 * enough to keep the chunk index short. */
#define ROW_CHUNK_BYTES (64 * 1024)
#define ERR_CAP 1024

typedef struct {
    char *name;
    hid_t dset;
    hid_t mtype; /* memory type of one element (host order) */
    int rank;    /* 1 + row_ndim */
    hsize_t dims[WEIR_MAX_DIMS + 1];
} rowset;

struct weir_h5 {
    hid_t file;
    char *path;
    rowset *sets;
    size_t nsets, cap;
    char err[ERR_CAP];
};

/* HDF5's automatic error printing, saved and restored around each call. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} quiet_state;

static void quiet_on(quiet_state *q)
{
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Eclear2(H5E_DEFAULT);
}

static void quiet_off(const quiet_state *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct {
    char *out;
    size_t cap;
} walk_ctx;

/* Keeps the innermost entry: it names the real cause ("errno = 13, error
 * message = 'Permission denied'"), the outer ones only repeat "unable to". */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *opaque)
{
    walk_ctx *w = opaque;
    if (n == 0 && e)
        snprintf(w->out, w->cap, "%s: %s", e->func_name ? e->func_name : "?",
                 e->desc ? e->desc : "?");
    return 0;
}

/* Formats "<path>: <what>[: <hdf5 detail>]" into dst. */
__attribute__((format(printf, 5, 6))) static void
format_err(char *dst, size_t cap, const char *path, int with_stack, const char *fmt, ...)
{
    if (!dst || !cap) return;
    int n = snprintf(dst, cap, "%s: ", path ? path : "?");
    if (n < 0 || (size_t)n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)(n + k) >= cap || !with_stack) return;
    char detail[512] = "";
    walk_ctx w = {detail, sizeof detail};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    if (detail[0]) snprintf(dst + n + k, cap - (size_t)(n + k), " (%s)", detail);
}

#define H5_FAIL(h, ...) (format_err((h)->err, ERR_CAP, (h)->path, 1, __VA_ARGS__), WEIR_EHDF5)

/* ---- types ---------------------------------------------------------------- */

/* A new HDF5 type for dt in dt's byte order (caller closes). */
static hid_t make_type(weir_dtype dt)
{
    int be = dt.order == WEIR_BIG;
    hid_t base;
    switch (dt.kind) {
    case WEIR_DT_U8:
        base = be ? H5T_STD_U8BE : H5T_STD_U8LE;
        break;
    case WEIR_DT_U16:
        base = be ? H5T_STD_U16BE : H5T_STD_U16LE;
        break;
    case WEIR_DT_U32:
        base = be ? H5T_STD_U32BE : H5T_STD_U32LE;
        break;
    case WEIR_DT_U64:
        base = be ? H5T_STD_U64BE : H5T_STD_U64LE;
        break;
    case WEIR_DT_I8:
        base = be ? H5T_STD_I8BE : H5T_STD_I8LE;
        break;
    case WEIR_DT_I16:
        base = be ? H5T_STD_I16BE : H5T_STD_I16LE;
        break;
    case WEIR_DT_I32:
        base = be ? H5T_STD_I32BE : H5T_STD_I32LE;
        break;
    case WEIR_DT_I64:
        base = be ? H5T_STD_I64BE : H5T_STD_I64LE;
        break;
    case WEIR_DT_F32:
        base = be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE;
        break;
    case WEIR_DT_F64:
        base = be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE;
        break;
    case WEIR_DT_BOOL: {
        /* h5py's bool: an int8 enum, so numpy reads it back as bool */
        hid_t t = H5Tenum_create(H5T_STD_I8LE);
        int8_t f = 0, tr = 1;
        if (t < 0) return H5I_INVALID_HID;
        if (H5Tenum_insert(t, "FALSE", &f) < 0 || H5Tenum_insert(t, "TRUE", &tr) < 0) {
            H5Tclose(t);
            return H5I_INVALID_HID;
        }
        return t;
    }
    default:
        return H5I_INVALID_HID;
    }
    return H5Tcopy(base);
}

static hid_t make_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---- helpers -------------------------------------------------------------- */

/* mkdir -p of everything before the last '/' of path. */
static int make_parents(const char *path, char *err, size_t errlen)
{
    int rc = WEIR_OK;
    char *p = strdup(path);
    if (!p) return WEIR_ENOMEM;
    char *last = strrchr(p, '/');
    if (!last || last == p) goto free_p;
    *last = 0;
    for (char *s = p + 1;; s++) {
        int end = *s == 0;
        if (*s != '/' && !end) continue;
        *s = 0;
        if (mkdir(p, 0777) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                char buf[128];
                format_err(err, errlen, path, 0, "cannot create directory '%s': %s", p,
                           e == EEXIST ? "exists and is not a directory"
                                       : strerror_r(e, buf, sizeof buf));
                rc = WEIR_EIO;
                goto free_p;
            }
        }
        if (end) break;
        *s = '/';
    }
free_p:
    free(p);
    return rc;
}

/* 1 if every component of name exists as a link, 0 if one is missing, <0 on
 * error (a component is not a group). H5Lexists needs the parents to exist. */
static int link_exists(hid_t file, const char *name)
{
    char buf[1024];
    size_t n = strlen(name);
    if (n >= sizeof buf) return -1;
    memcpy(buf, name, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/') continue;
        char c = buf[i];
        buf[i] = 0;
        htri_t ex = H5Lexists(file, buf, H5P_DEFAULT);
        buf[i] = c;
        if (ex <= 0) return ex < 0 ? -1 : 0;
    }
    return 1;
}

static int check_name(weir_h5 *h, const char *name)
{
    if (!name || !name[0] || strlen(name) >= 1024 || !strcmp(name, "/")) {
        format_err(h->err, ERR_CAP, h->path, 0, "bad object name '%s'", name ? name : "(null)");
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}

/* Fails with WEIR_EDUPLICATE when name already exists. */
static int check_new(weir_h5 *h, const char *name)
{
    int rc = check_name(h, name);
    if (rc) return rc;
    int ex = link_exists(h->file, name);
    if (ex < 0) return H5_FAIL(h, "cannot create '%s': a parent is not a group", name);
    if (ex > 0) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s' already exists", name);
        return WEIR_EDUPLICATE;
    }
    return WEIR_OK;
}

/* Link creation list that makes intermediate groups for "a/b/c". */
static hid_t make_lcpl(void)
{
    hid_t l = H5Pcreate(H5P_LINK_CREATE);
    if (l < 0) return l;
    if (H5Pset_create_intermediate_group(l, 1) < 0 || H5Pset_char_encoding(l, H5T_CSET_UTF8) < 0) {
        H5Pclose(l);
        return H5I_INVALID_HID;
    }
    return l;
}

/* Dataset creation list; no timestamps so identical data gives identical
 * files (h5py does the same). */
static hid_t make_dcpl(void)
{
    hid_t d = H5Pcreate(H5P_DATASET_CREATE);
    if (d < 0) return d;
    if (H5Pset_obj_track_times(d, 0) < 0) {
        H5Pclose(d);
        return H5I_INVALID_HID;
    }
    return d;
}

/* ---- file ----------------------------------------------------------------- */

int weir_h5_create_ex(const char *path, weir_h5 **out, char *err, size_t errlen)
{
    quiet_state q;
    int rc = WEIR_OK;
    hid_t fapl = H5I_INVALID_HID;
    if (err && errlen) err[0] = 0;
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    if (!path || !path[0]) {
        format_err(err, errlen, path, 0, "empty path");
        return WEIR_EINVAL;
    }
    weir_h5 *h = calloc(1, sizeof *h);
    if (!h) return WEIR_ENOMEM;
    h->file = H5I_INVALID_HID;
    h->path = strdup(path);
    if (!h->path) {
        rc = WEIR_ENOMEM;
        goto free_h;
    }
    rc = make_parents(path, err, errlen);
    if (rc) goto free_h;
    quiet_on(&q);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* STRONG: closing the file closes anything still open in it, so the file
     * is complete on disk once weir_h5_close returns */
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        format_err(err, errlen, path, 1, "cannot set up file access properties");
        rc = WEIR_EHDF5;
        goto quiet;
    }
    h->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (h->file < 0) {
        format_err(err, errlen, path, 1, "cannot create HDF5 file");
        rc = WEIR_EHDF5;
        goto quiet;
    }
quiet:
    if (fapl >= 0) H5Pclose(fapl);
    quiet_off(&q);
    if (rc) goto free_h;
    *out = h;
    return WEIR_OK;
free_h:
    free(h->path);
    free(h);
    return rc;
}

int weir_h5_create(const char *path, weir_h5 **out)
{
    return weir_h5_create_ex(path, out, NULL, 0);
}

int weir_h5_close(weir_h5 *h)
{
    if (!h) return WEIR_OK;
    quiet_state q;
    int rc = WEIR_OK;
    quiet_on(&q);
    for (size_t i = 0; i < h->nsets; i++) {
        H5Dclose(h->sets[i].dset);
        H5Tclose(h->sets[i].mtype);
        free(h->sets[i].name);
    }
    free(h->sets);
    /* the flush happens here: report it, it is where a full disk shows */
    if (h->file >= 0 && H5Fclose(h->file) < 0) rc = WEIR_EHDF5;
    quiet_off(&q);
    free(h->path);
    free(h);
    return rc;
}

const char *weir_h5_error(const weir_h5 *h)
{
    return h ? h->err : "no HDF5 handle";
}

const char *weir_h5_path(const weir_h5 *h)
{
    return h ? h->path : NULL;
}

/* ---- row datasets --------------------------------------------------------- */

static rowset *find_set(weir_h5 *h, const char *name)
{
    for (size_t i = 0; i < h->nsets; i++)
        if (!strcmp(h->sets[i].name, name)) return &h->sets[i];
    return NULL;
}

/* Takes over dset and mtype (closes them on failure). */
static int add_set(weir_h5 *h, const char *name, hid_t dset, hid_t mtype, int rank,
                   const hsize_t *dims, rowset **out)
{
    int rc = WEIR_ENOMEM;
    if (h->nsets == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        rowset *s = realloc(h->sets, cap * sizeof *s);
        if (!s) goto close;
        h->sets = s;
        h->cap = cap;
    }
    rowset *r = &h->sets[h->nsets];
    r->name = strdup(name);
    if (!r->name) goto close;
    r->dset = dset;
    r->mtype = mtype;
    r->rank = rank;
    memcpy(r->dims, dims, (size_t)rank * sizeof *dims);
    h->nsets++;
    *out = r;
    return WEIR_OK;
close:
    H5Dclose(dset);
    H5Tclose(mtype);
    return rc;
}

/* Finds name in the table or opens an existing extendible dataset. */
static int get_set(weir_h5 *h, const char *name, rowset **out)
{
    int rc = check_name(h, name);
    if (rc) return rc;
    *out = find_set(h, name);
    if (*out) return WEIR_OK;
    int ex = link_exists(h->file, name);
    if (ex <= 0) {
        format_err(h->err, ERR_CAP, h->path, 0, "no row dataset '%s'", name);
        return WEIR_ENOTFOUND;
    }
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK], maxd[H5S_MAX_RANK];
    d = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (d < 0) {
        rc = H5_FAIL(h, "cannot open dataset '%s'", name);
        goto close;
    }
    sp = H5Dget_space(d);
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (rank < 1 || rank > WEIR_MAX_DIMS + 1 || H5Sget_simple_extent_dims(sp, dims, maxd) < 0 ||
        maxd[0] != H5S_UNLIMITED) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s' is not an extendible row dataset", name);
        rc = WEIR_EFORMAT;
        goto close;
    }
    ft = H5Dget_type(d);
    mt = ft < 0 ? H5I_INVALID_HID : H5Tget_native_type(ft, H5T_DIR_ASCEND);
    if (mt < 0) {
        rc = H5_FAIL(h, "cannot get the type of '%s'", name);
        goto close;
    }
    rc = add_set(h, name, d, mt, rank, dims, out);
    d = mt = H5I_INVALID_HID; /* owned by the table (or closed) now */
close:
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (mt >= 0) H5Tclose(mt);
    if (d >= 0) H5Dclose(d);
    return rc;
}

int weir_h5_create_rows(weir_h5 *h, const char *name, weir_dtype_kind dt, int row_ndim,
                        const size_t *row_shape)
{
    if (!h) return WEIR_EINVAL;
    size_t isz = weir_dtype_size(dt);
    if (!isz || row_ndim < 0 || row_ndim > WEIR_MAX_DIMS || (row_ndim && !row_shape)) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s': bad dtype or row shape",
                   name ? name : "(null)");
        return WEIR_EINVAL;
    }
    int rank = row_ndim + 1;
    hsize_t dims[WEIR_MAX_DIMS + 1], maxd[WEIR_MAX_DIMS + 1], chunk[WEIR_MAX_DIMS + 1];
    size_t rowbytes = isz;
    for (int i = 0; i < row_ndim; i++) {
        /* HDF5 chunks cannot have zero-sized dimensions */
        if (!row_shape[i] || rowbytes > UINT32_MAX / row_shape[i]) {
            format_err(h->err, ERR_CAP, h->path, 0,
                       "'%s': row dimension %d (%zu) is empty or rows exceed 4 GiB", name, i,
                       row_shape[i]);
            return WEIR_EINVAL;
        }
        rowbytes *= row_shape[i];
        dims[i + 1] = maxd[i + 1] = chunk[i + 1] = row_shape[i];
    }
    dims[0] = 0;
    maxd[0] = H5S_UNLIMITED;
    chunk[0] = rowbytes >= ROW_CHUNK_BYTES ? 1 : ROW_CHUNK_BYTES / rowbytes;

    quiet_state q;
    quiet_on(&q);
    hid_t sp = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hid_t ty = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int rc = check_new(h, name);
    if (rc) goto quiet;
    ty = make_type((weir_dtype){dt, weir_host_order()});
    sp = H5Screate_simple(rank, dims, maxd);
    lcpl = make_lcpl();
    dcpl = make_dcpl();
    if (ty < 0 || sp < 0 || lcpl < 0 || dcpl < 0 || H5Pset_chunk(dcpl, rank, chunk) < 0) {
        rc = H5_FAIL(h, "cannot set up dataset '%s'", name);
        goto close;
    }
    /* the fill value is what rows never written read back as */
    uint8_t fill[8] = {0};
    if (dt == WEIR_DT_F32) {
        float f = NAN;
        memcpy(fill, &f, sizeof f);
    } else if (dt == WEIR_DT_F64) {
        double f = NAN;
        memcpy(fill, &f, sizeof f);
    }
    /* written when a chunk is allocated, as h5py does with fillvalue= */
    if (H5Pset_fill_value(dcpl, ty, fill) < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC) < 0) {
        rc = H5_FAIL(h, "cannot set the fill value of '%s'", name);
        goto close;
    }
    d = H5Dcreate2(h->file, name, ty, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = H5_FAIL(h, "cannot create dataset '%s'", name);
        goto close;
    }
    rowset *r;
    rc = add_set(h, name, d, ty, rank, dims, &r);
    d = ty = H5I_INVALID_HID;
close:
    if (d >= 0) H5Dclose(d);
    if (ty >= 0) H5Tclose(ty);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (sp >= 0) H5Sclose(sp);
quiet:
    quiet_off(&q);
    return rc;
}

int weir_h5_write_row(weir_h5 *h, const char *name, uint64_t index, const void *data)
{
    if (!h) return WEIR_EINVAL;
    if (!data) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s': no row data", name ? name : "(null)");
        return WEIR_EINVAL;
    }
    quiet_state q;
    quiet_on(&q);
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    rowset *r;
    int rc = get_set(h, name, &r);
    if (rc) goto quiet;
    /* H5S_UNLIMITED is the all-ones hsize_t, so index + 1 must stay below */
    if (index >= (uint64_t)H5S_UNLIMITED - 1) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s': row %llu out of range", name,
                   (unsigned long long)index);
        rc = WEIR_ERANGE;
        goto quiet;
    }
    if (index >= r->dims[0]) {
        hsize_t nd[WEIR_MAX_DIMS + 1];
        memcpy(nd, r->dims, sizeof nd);
        nd[0] = index + 1;
        if (H5Dset_extent(r->dset, nd) < 0) {
            rc = H5_FAIL(h, "cannot extend '%s' to %llu rows", name, (unsigned long long)nd[0]);
            goto quiet;
        }
        r->dims[0] = nd[0];
    }
    hsize_t start[WEIR_MAX_DIMS + 1] = {0}, count[WEIR_MAX_DIMS + 1];
    memcpy(count, r->dims, sizeof count);
    start[0] = index;
    count[0] = 1;
    fs = H5Dget_space(r->dset);
    ms = H5Screate_simple(r->rank, count, NULL);
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        rc = H5_FAIL(h, "cannot select row %llu of '%s'", (unsigned long long)index, name);
        goto close;
    }
    if (H5Dwrite(r->dset, r->mtype, ms, fs, H5P_DEFAULT, data) < 0) {
        rc = H5_FAIL(h, "cannot write row %llu of '%s'", (unsigned long long)index, name);
        goto close;
    }
close:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
quiet:
    quiet_off(&q);
    return rc;
}

int weir_h5_rows(weir_h5 *h, const char *name, uint64_t *n)
{
    if (!h || !n) return WEIR_EINVAL;
    *n = 0;
    quiet_state q;
    quiet_on(&q);
    rowset *r;
    int rc = get_set(h, name, &r);
    if (!rc) *n = r->dims[0];
    quiet_off(&q);
    return rc;
}

/* ---- fixed datasets ------------------------------------------------------- */

/* Creates name with type ty over space sp and writes buf (NULL: nothing). */
static int create_write(weir_h5 *h, const char *name, hid_t ty, hid_t sp, const void *buf)
{
    hid_t lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int rc = check_new(h, name);
    if (rc) return rc;
    lcpl = make_lcpl();
    dcpl = make_dcpl();
    if (ty < 0 || sp < 0 || lcpl < 0 || dcpl < 0) {
        rc = H5_FAIL(h, "cannot set up dataset '%s'", name);
        goto close;
    }
    d = H5Dcreate2(h->file, name, ty, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = H5_FAIL(h, "cannot create dataset '%s'", name);
        goto close;
    }
    if (buf && H5Dwrite(d, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        rc = H5_FAIL(h, "cannot write dataset '%s'", name);
        goto close;
    }
close:
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

/* A new type for a scalar of kind k in host order, or a UTF-8 string type
 * for WEIR_DT_INVALID. */
static hid_t scalar_type(weir_dtype_kind k)
{
    return k == WEIR_DT_INVALID ? make_str_type() : make_type((weir_dtype){k, weir_host_order()});
}

static int write_scalar(weir_h5 *h, const char *name, weir_dtype_kind k, const void *buf)
{
    quiet_state q;
    quiet_on(&q);
    hid_t ty = scalar_type(k);
    hid_t sp = H5Screate(H5S_SCALAR);
    int rc = create_write(h, name, ty, sp, buf);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    quiet_off(&q);
    return rc;
}

int weir_h5_write_i64(weir_h5 *h, const char *name, int64_t v)
{
    if (!h) return WEIR_EINVAL;
    return write_scalar(h, name, WEIR_DT_I64, &v);
}

int weir_h5_write_f64(weir_h5 *h, const char *name, double v)
{
    if (!h) return WEIR_EINVAL;
    return write_scalar(h, name, WEIR_DT_F64, &v);
}

int weir_h5_write_str(weir_h5 *h, const char *name, const char *v)
{
    if (!h || !v) return WEIR_EINVAL;
    return write_scalar(h, name, WEIR_DT_INVALID, &v);
}

int weir_h5_write_array(weir_h5 *h, const char *name, const weir_array *a)
{
    if (!h) return WEIR_EINVAL;
    size_t isz = a ? weir_dtype_size(a->dtype.kind) : 0;
    if (!isz || a->ndim < 0 || a->ndim > WEIR_MAX_DIMS) {
        format_err(h->err, ERR_CAP, h->path, 0, "'%s': bad array", name ? name : "(null)");
        return WEIR_EINVAL;
    }
    size_t nelem = 1;
    hsize_t dims[WEIR_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && nelem > SIZE_MAX / isz / a->shape[i]) return WEIR_ESHAPE;
        nelem *= a->shape[i];
        dims[i] = a->shape[i];
    }
    if (nelem && !a->data) return WEIR_EINVAL;
    const void *src = nelem ? a->data : NULL;
    uint8_t *tmp = NULL;
    if (nelem && !weir_array_is_contiguous(a)) {
        tmp = malloc(nelem * isz);
        if (!tmp) return WEIR_ENOMEM;
        weir_array_pack(a, tmp);
        src = tmp;
    }
    quiet_state q;
    quiet_on(&q);
    /* the file type keeps the array's byte order, as h5py does */
    hid_t ty = make_type(a->dtype);
    hid_t sp = a->ndim ? H5Screate_simple(a->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    int rc = create_write(h, name, ty, sp, src);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    quiet_off(&q);
    free(tmp);
    return rc;
}

/* ---- attributes ----------------------------------------------------------- */

/* Writes (replacing) a scalar attribute of kind k (see scalar_type). */
static int write_attr(weir_h5 *h, const char *obj, const char *attr, weir_dtype_kind k,
                      const void *buf)
{
    quiet_state q;
    quiet_on(&q);
    hid_t ty = scalar_type(k);
    hid_t o = H5I_INVALID_HID, sp = H5I_INVALID_HID, at = H5I_INVALID_HID;
    int rc = WEIR_OK;
    if (!obj || !obj[0] || !attr || !attr[0]) {
        format_err(h->err, ERR_CAP, h->path, 0, "bad attribute or object name");
        rc = WEIR_EINVAL;
        goto close;
    }
    if (strcmp(obj, "/") != 0) {
        int ex = link_exists(h->file, obj);
        if (ex <= 0) {
            format_err(h->err, ERR_CAP, h->path, 0, "no object '%s' for attribute '%s'", obj, attr);
            rc = WEIR_ENOTFOUND;
            goto close;
        }
    }
    o = H5Oopen(h->file, obj, H5P_DEFAULT);
    sp = H5Screate(H5S_SCALAR);
    if (o < 0 || sp < 0 || ty < 0) {
        rc = H5_FAIL(h, "cannot open '%s' for attribute '%s'", obj, attr);
        goto close;
    }
    htri_t ex = H5Aexists(o, attr);
    if (ex < 0 || (ex > 0 && H5Adelete(o, attr) < 0)) {
        rc = H5_FAIL(h, "cannot replace attribute '%s' of '%s'", attr, obj);
        goto close;
    }
    at = H5Acreate2(o, attr, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, ty, buf) < 0) {
        rc = H5_FAIL(h, "cannot write attribute '%s' of '%s'", attr, obj);
        goto close;
    }
close:
    if (at >= 0) H5Aclose(at);
    if (sp >= 0) H5Sclose(sp);
    if (o >= 0) H5Oclose(o);
    if (ty >= 0) H5Tclose(ty);
    quiet_off(&q);
    return rc;
}

int weir_h5_attr_str(weir_h5 *h, const char *obj, const char *attr, const char *v)
{
    if (!h || !v) return WEIR_EINVAL;
    return write_attr(h, obj, attr, WEIR_DT_INVALID, &v);
}

int weir_h5_attr_i64(weir_h5 *h, const char *obj, const char *attr, int64_t v)
{
    if (!h) return WEIR_EINVAL;
    return write_attr(h, obj, attr, WEIR_DT_I64, &v);
}

int weir_h5_attr_f64(weir_h5 *h, const char *obj, const char *attr, double v)
{
    if (!h) return WEIR_EINVAL;
    return write_attr(h, obj, attr, WEIR_DT_F64, &v);
}
