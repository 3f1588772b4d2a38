/* weir/npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0), read and write.
 *
 * Reading maps the file and returns an array view into it (zero copy) with the
 * file's dtype and byte order; Fortran-order files get Fortran strides.
 * Writing emits version 1.0 (2.0 when the header needs it), C order. */
#ifndef WEIR_NPY_H
#define WEIR_NPY_H

#include <stddef.h>

#include "weir/array.h"

/* Parses an in-memory .npy. The array takes its own reference to buf (the
 * caller keeps theirs) and points into it. Errors: WEIR_EFORMAT (bad magic or
 * header), WEIR_ETRUNCATED, WEIR_EDTYPE (not a weir dtype), WEIR_ESHAPE (data
 * length != nelem * itemsize), WEIR_EUNSUPPORTED (version, > 8 dims); err
 * then names the file ("<buffer>" here), the byte offset and what was
 * expected. The data is only as aligned as the header length makes it
 * (numpy pads to 64 bytes; read elements with memcpy if unsure). */
int weir_npy_parse(weir_buf *buf, weir_array *out, char *err, size_t errlen);
/* Maps path read-only and parses it as above (zero copy); err names path. */
int weir_npy_read(const char *path, weir_array *out, char *err, size_t errlen);
/* Writes any array (any strides, any byte order: kept as is) in C order;
 * the header is byte-identical to numpy's np.save (version 1.0). */
int weir_npy_write(const char *path, const weir_array *a);
/* Encodes into a new heap buffer (caller unrefs). */
int weir_npy_encode(const weir_array *a, weir_buf **out);

#endif
