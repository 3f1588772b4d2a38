/* weir/array.h — n-dimensional array views with dtypes.
 *
 * A weir_array describes typed, strided memory: dtype, byte order, shape and
 * strides (in bytes), over a weir_buf it holds one reference to. Arrays are
 * value structs: weir_array_release() drops the buffer reference; copying the
 * struct requires weir_array_copy_view() to keep the counts right. */
#ifndef WEIR_ARRAY_H
#define WEIR_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weir/buffer.h"

#define WEIR_MAX_DIMS 8

typedef enum {
    WEIR_DT_INVALID = 0,
    WEIR_DT_U8,
    WEIR_DT_U16,
    WEIR_DT_U32,
    WEIR_DT_U64,
    WEIR_DT_I8,
    WEIR_DT_I16,
    WEIR_DT_I32,
    WEIR_DT_I64,
    WEIR_DT_F32,
    WEIR_DT_F64,
    WEIR_DT_BOOL,
    WEIR_DT_COUNT_
} weir_dtype_kind;

typedef enum { WEIR_LITTLE = 0, WEIR_BIG = 1 } weir_byteorder;

typedef struct {
    weir_dtype_kind kind;
    weir_byteorder order;
} weir_dtype;

/* Element types for reading array data. Zero-copy views point into the
 * received bytes (a capture file, a ZMQ frame), so `data` is only guaranteed
 * to be byte-aligned: read multi-byte elements through these types (GCC and
 * Clang give them 1-byte alignment and still vectorise loops over them),
 * never through plain uint16_t* etc. */
typedef uint16_t __attribute__((aligned(1), may_alias)) weir_u16u;
typedef uint32_t __attribute__((aligned(1), may_alias)) weir_u32u;
typedef uint64_t __attribute__((aligned(1), may_alias)) weir_u64u;
typedef int16_t __attribute__((aligned(1), may_alias)) weir_i16u;
typedef int32_t __attribute__((aligned(1), may_alias)) weir_i32u;
typedef int64_t __attribute__((aligned(1), may_alias)) weir_i64u;
typedef float __attribute__((aligned(1), may_alias)) weir_f32u;
typedef double __attribute__((aligned(1), may_alias)) weir_f64u;

typedef struct {
    weir_dtype dtype;
    int ndim;
    size_t shape[WEIR_MAX_DIMS];
    ptrdiff_t strides[WEIR_MAX_DIMS]; /* bytes */
    const uint8_t *data;              /* first element; byte-aligned only (see above) */
    weir_buf *buf;                    /* owning reference, may be NULL for borrowed memory */
} weir_array;

/* Bytes per element (0 for invalid). */
size_t weir_dtype_size(weir_dtype_kind k);
/* The same as an inline function, for plug-ins (which do not link libweir). */
static inline size_t weir_dtype_itemsize(weir_dtype_kind k)
{
    static const unsigned char sz[WEIR_DT_COUNT_] = {0, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 1};
    return (k > WEIR_DT_INVALID && k < WEIR_DT_COUNT_) ? sz[k] : 0;
}
/* Parses a numpy dtype name: "uint16", "float32", "int8", "bool", and
 * typestrings "<u2", ">f8", "|u1", "=i4". Returns 0 or WEIR_EDTYPE. */
int weir_dtype_parse(const char *name, weir_dtype *out);
/* numpy name of a kind ("uint16"); static string. */
const char *weir_dtype_name(weir_dtype_kind k);
/* numpy typestring ("<u2", ">f4", "|u1"); writes at most 4 bytes + NUL. */
void weir_dtype_typestr(weir_dtype dt, char out[8]);
/* Host byte order. */
weir_byteorder weir_host_order(void);

/* Number of elements = product of shape (1 for ndim == 0). */
size_t weir_array_nelem(const weir_array *a);
size_t weir_array_nbytes(const weir_array *a);
/* Fills a C-contiguous view of buf (takes a new reference). Checks that
 * nelem*itemsize == weir_buf_size(buf) - offset exactly: WEIR_ESHAPE otherwise. */
int weir_array_init(weir_array *a, weir_dtype dt, int ndim, const size_t *shape, weir_buf *buf,
                    size_t offset);
/* Allocates a new C-contiguous host-order array. */
int weir_array_alloc(weir_array *a, weir_dtype dt, int ndim, const size_t *shape);
int weir_array_is_contiguous(const weir_array *a);
/* Sets a to a view of src (new buffer reference). */
void weir_array_copy_view(weir_array *dst, const weir_array *src);
void weir_array_release(weir_array *a);
/* Copies the elements (any strides) into dst in C order, byte order kept;
 * dst holds weir_array_nbytes(a) bytes. */
void weir_array_pack(const weir_array *a, void *dst);
/* Element at a flat C-order index converted to double / int64 (any dtype,
 * any byte order, any strides). For tests and slow paths. */
double weir_array_get_f64(const weir_array *a, size_t flat_index);
/* Sum of all elements as double / int64-safe unsigned sum into *u (ints only). */
double weir_array_sum_f64(const weir_array *a);

#endif
