/* weir/h5.h — HDF5 output helpers for reducers.
 *
 * A small layer over libhdf5 for what reducers write: extendible datasets
 * indexed by event number (rows may arrive in any order; the dataset grows
 * to the highest row written, unwritten rows hold the fill value: NaN for
 * floats, 0 for integers), scalar datasets and attributes. Names may contain
 * '/', intermediate groups are created.
 *
 * A weir_h5 handle is not thread-safe; the reducer owns it. HDF5 errors are
 * turned into WEIR_EHDF5 with a message (weir_h5_error) naming the file and
 * object. */
#ifndef WEIR_H5_H
#define WEIR_H5_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"

typedef struct weir_h5 weir_h5;

/* Creates (truncates) path; creates the parent directories. Returns 0,
 * WEIR_EIO (a directory could not be made) or WEIR_EHDF5. */
int weir_h5_create(const char *path, weir_h5 **out);
/* Same, and on failure writes a message naming the path and the cause into
 * err (there is no handle yet for weir_h5_error). */
int weir_h5_create_ex(const char *path, weir_h5 **out, char *err, size_t errlen);
/* Closes everything and frees h (NULL is fine); WEIR_EHDF5 if the final
 * flush failed. */
int weir_h5_close(weir_h5 *h);
/* Message of the last failure on h (static per handle, never free). */
const char *weir_h5_error(const weir_h5 *h);
const char *weir_h5_path(const weir_h5 *h);

/* Extendible dataset of rows; each row has row_ndim dims row_shape (row_ndim
 * 0 = scalar rows). Chunked; initial size 0. */
int weir_h5_create_rows(weir_h5 *h, const char *name, weir_dtype_kind dt, int row_ndim,
                        const size_t *row_shape);
/* Writes row `index` (C-contiguous host-order data of the dataset's dtype),
 * extending the dataset if index >= current length. */
int weir_h5_write_row(weir_h5 *h, const char *name, uint64_t index, const void *data);
/* Current number of rows. */
int weir_h5_rows(weir_h5 *h, const char *name, uint64_t *n);

int weir_h5_write_i64(weir_h5 *h, const char *name, int64_t v);
int weir_h5_write_f64(weir_h5 *h, const char *name, double v);
int weir_h5_write_str(weir_h5 *h, const char *name, const char *v);
/* Writes a whole array (any strides, any byte order) as a fixed dataset. */
int weir_h5_write_array(weir_h5 *h, const char *name, const weir_array *a);

/* Attributes on an object ("/" for the file root). */
int weir_h5_attr_str(weir_h5 *h, const char *obj, const char *attr, const char *v);
int weir_h5_attr_i64(weir_h5 *h, const char *obj, const char *attr, int64_t v);
int weir_h5_attr_f64(weir_h5 *h, const char *obj, const char *attr, double v);

#endif
