/* weir/npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0), read and write.
 *
 * Reading maps the file and returns an array view into it (zero copy) with the
 * file's dtype and byte order; Fortran-order files get Fortran strides.
 * Writing emits version 1.0 (2.0 when the header needs it), C order. */
#ifndef WEIR_NPY_H
#define WEIR_NPY_H

#include <stddef.h>

#include "weir/array.h"

/* Parses an in-memory .npy (buf ref is taken by the array). err names the
 * offset and what was expected. */
int weir_npy_parse(weir_buf *buf, weir_array *out, char *err, size_t errlen);
int weir_npy_read(const char *path, weir_array *out, char *err, size_t errlen);
/* Writes any array (any strides, any byte order: kept as is). */
int weir_npy_write(const char *path, const weir_array *a);
/* Encodes into a new heap buffer (caller unrefs). */
int weir_npy_encode(const weir_array *a, weir_buf **out);

#endif
