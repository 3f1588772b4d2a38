/* array.c — dtypes and n-d array views (include/weir/array.h).
 *
 * Parses numpy dtype names and typestrings, builds contiguous views over
 * buffers with an exact size check (a shape that does not match its buffer is
 * an error, never a silent over-read), and offers slow generic element access
 * used by tests, NPY/HDF5 writers and inspectors. Hot loops in workers read
 * the typed data pointer directly. */
#include "weir/array.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    char kind; /* numpy kind letter */
    size_t size;
} dtype_info[WEIR_DT_COUNT_] = {
    [WEIR_DT_INVALID] = {"invalid", '?', 0}, [WEIR_DT_U8] = {"uint8", 'u', 1},
    [WEIR_DT_U16] = {"uint16", 'u', 2},      [WEIR_DT_U32] = {"uint32", 'u', 4},
    [WEIR_DT_U64] = {"uint64", 'u', 8},      [WEIR_DT_I8] = {"int8", 'i', 1},
    [WEIR_DT_I16] = {"int16", 'i', 2},       [WEIR_DT_I32] = {"int32", 'i', 4},
    [WEIR_DT_I64] = {"int64", 'i', 8},       [WEIR_DT_F32] = {"float32", 'f', 4},
    [WEIR_DT_F64] = {"float64", 'f', 8},     [WEIR_DT_BOOL] = {"bool", 'b', 1},
};

size_t weir_dtype_size(weir_dtype_kind k)
{
    return (k > WEIR_DT_INVALID && k < WEIR_DT_COUNT_) ? dtype_info[k].size : 0;
}

const char *weir_dtype_name(weir_dtype_kind k)
{
    return (k > WEIR_DT_INVALID && k < WEIR_DT_COUNT_) ? dtype_info[k].name : "invalid";
}

weir_byteorder weir_host_order(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one ? WEIR_LITTLE : WEIR_BIG;
}

int weir_dtype_parse(const char *name, weir_dtype *out)
{
    if (!name || !out) return WEIR_EINVAL;
    out->order = weir_host_order();
    for (int k = 1; k < WEIR_DT_COUNT_; k++) {
        if (strcmp(name, dtype_info[k].name) == 0) {
            out->kind = (weir_dtype_kind)k;
            return WEIR_OK;
        }
    }
    /* typestring: [<>|=]?<kind><size> */
    const char *p = name;
    weir_byteorder order = weir_host_order();
    if (*p == '<')
        order = WEIR_LITTLE, p++;
    else if (*p == '>')
        order = WEIR_BIG, p++;
    else if (*p == '|' || *p == '=')
        p++;
    if (!p[0] || !p[1]) return WEIR_EDTYPE;
    char kind = p[0];
    if (p[1] < '0' || p[1] > '9') return WEIR_EDTYPE; /* strtol would skip spaces and signs */
    char *end;
    long size = strtol(p + 1, &end, 10);
    if (*end || size <= 0) return WEIR_EDTYPE;
    if (kind == 'b' && size == 1) kind = 'b';
    for (int k = 1; k < WEIR_DT_COUNT_; k++) {
        if (dtype_info[k].kind == kind && dtype_info[k].size == (size_t)size) {
            out->kind = (weir_dtype_kind)k;
            out->order = size == 1 ? weir_host_order() : order;
            return WEIR_OK;
        }
    }
    return WEIR_EDTYPE;
}

void weir_dtype_typestr(weir_dtype dt, char out[8])
{
    size_t sz = weir_dtype_size(dt.kind);
    char ord = sz <= 1 ? '|' : (dt.order == WEIR_BIG ? '>' : '<');
    char kind = dt.kind > 0 && dt.kind < WEIR_DT_COUNT_ ? dtype_info[dt.kind].kind : '?';
    out[0] = ord;
    out[1] = kind;
    out[2] = (char)('0' + (sz % 10));
    out[3] = 0;
}

size_t weir_array_nelem(const weir_array *a)
{
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    return n;
}

size_t weir_array_nbytes(const weir_array *a)
{
    return weir_array_nelem(a) * weir_dtype_size(a->dtype.kind);
}

/* Product of shape with overflow check; returns 0 on success. The product
 * of the non-zero dimensions must also fit the byte strides (ptrdiff_t),
 * even when a zero dimension makes the array empty. */
static int checked_nelem(int ndim, const size_t *shape, size_t itemsize, size_t *nbytes)
{
    size_t n = itemsize, nz = itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && nz > (size_t)PTRDIFF_MAX / shape[i]) return WEIR_ESHAPE;
        if (shape[i]) nz *= shape[i];
        n *= shape[i];
    }
    *nbytes = n;
    return WEIR_OK;
}

static void set_c_strides(weir_array *a)
{
    ptrdiff_t s = (ptrdiff_t)weir_dtype_size(a->dtype.kind);
    for (int i = a->ndim - 1; i >= 0; i--) {
        a->strides[i] = s;
        s *= (ptrdiff_t)a->shape[i];
    }
}

int weir_array_init(weir_array *a, weir_dtype dt, int ndim, const size_t *shape, weir_buf *buf,
                    size_t offset)
{
    memset(a, 0, sizeof *a);
    size_t isz = weir_dtype_size(dt.kind);
    if (!isz) return WEIR_EDTYPE;
    if (ndim < 0 || ndim > WEIR_MAX_DIMS || !buf) return WEIR_EINVAL;
    size_t nbytes;
    if (checked_nelem(ndim, shape, isz, &nbytes)) return WEIR_ESHAPE;
    if (offset > weir_buf_size(buf) || weir_buf_size(buf) - offset != nbytes) return WEIR_ESHAPE;
    a->dtype = dt;
    a->ndim = ndim;
    if (ndim) memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
    set_c_strides(a);
    a->buf = weir_buf_ref(buf);
    a->data = weir_buf_data(buf) + offset;
    return WEIR_OK;
}

int weir_array_alloc(weir_array *a, weir_dtype dt, int ndim, const size_t *shape)
{
    memset(a, 0, sizeof *a);
    size_t isz = weir_dtype_size(dt.kind), nbytes;
    if (!isz) return WEIR_EDTYPE;
    if (ndim < 0 || ndim > WEIR_MAX_DIMS) return WEIR_EINVAL;
    if (checked_nelem(ndim, shape, isz, &nbytes)) return WEIR_ESHAPE;
    weir_buf *b = weir_buf_new(nbytes);
    if (!b) return WEIR_ENOMEM;
    memset(weir_buf_mutable(b), 0, nbytes);
    int rc = weir_array_init(a, dt, ndim, shape, b, 0);
    weir_buf_unref(b);
    return rc;
}

int weir_array_is_contiguous(const weir_array *a)
{
    ptrdiff_t s = (ptrdiff_t)weir_dtype_size(a->dtype.kind);
    for (int i = a->ndim - 1; i >= 0; i--) {
        if (a->shape[i] != 1 && a->strides[i] != s) return 0;
        s *= (ptrdiff_t)a->shape[i];
    }
    return 1;
}

void weir_array_copy_view(weir_array *dst, const weir_array *src)
{
    *dst = *src;
    weir_buf_ref(dst->buf);
}

void weir_array_release(weir_array *a)
{
    if (!a) return;
    weir_buf_unref(a->buf);
    memset(a, 0, sizeof *a);
}

void weir_array_pack(const weir_array *a, void *dst)
{
    size_t isz = weir_dtype_size(a->dtype.kind);
    size_t nelem = weir_array_nelem(a);
    uint8_t *d = dst;
    if (!nelem) return;
    if (weir_array_is_contiguous(a)) {
        memcpy(d, a->data, nelem * isz);
        return;
    }
    size_t idx[WEIR_MAX_DIMS] = {0};
    const uint8_t *p = a->data;
    for (size_t e = 0; e < nelem; e++) {
        memcpy(d + e * isz, p, isz);
        /* odometer over the dims, last fastest */
        for (int i = a->ndim - 1; i >= 0; i--) {
            p += a->strides[i];
            if (++idx[i] < a->shape[i]) break;
            p -= a->strides[i] * (ptrdiff_t)a->shape[i];
            idx[i] = 0;
        }
    }
}

static const uint8_t *elem_ptr(const weir_array *a, size_t flat)
{
    const uint8_t *p = a->data;
    for (int i = a->ndim - 1; i >= 0; i--) {
        size_t idx = flat % a->shape[i];
        flat /= a->shape[i];
        p += (ptrdiff_t)idx * a->strides[i];
    }
    return p;
}

double weir_array_get_f64(const weir_array *a, size_t flat)
{
    const uint8_t *p = elem_ptr(a, flat);
    size_t sz = weir_dtype_size(a->dtype.kind);
    uint8_t tmp[8];
    if (sz > 1 && a->dtype.order != weir_host_order()) {
        for (size_t i = 0; i < sz; i++)
            tmp[i] = p[sz - 1 - i];
    } else {
        memcpy(tmp, p, sz);
    }
    switch (a->dtype.kind) {
    case WEIR_DT_U8:
    case WEIR_DT_BOOL:
        return tmp[0];
    case WEIR_DT_I8:
        return (int8_t)tmp[0];
#define GET_(T)                                                                                    \
    do {                                                                                           \
        T v;                                                                                       \
        memcpy(&v, tmp, sizeof v);                                                                 \
        return (double)v;                                                                          \
    } while (0)
    case WEIR_DT_U16:
        GET_(uint16_t);
    case WEIR_DT_U32:
        GET_(uint32_t);
    case WEIR_DT_U64:
        GET_(uint64_t);
    case WEIR_DT_I16:
        GET_(int16_t);
    case WEIR_DT_I32:
        GET_(int32_t);
    case WEIR_DT_I64:
        GET_(int64_t);
    case WEIR_DT_F32:
        GET_(float);
    case WEIR_DT_F64:
        GET_(double);
#undef GET_
    default:
        return 0.0;
    }
}

double weir_array_sum_f64(const weir_array *a)
{
    size_t n = weir_array_nelem(a);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += weir_array_get_f64(a, i);
    return s;
}
