/* bl_internal.h — helpers shared by the beamline stream formats
 * (xspress3.c, contrast.c, panda.c, sardana.c, lecroy.c, albaem.c,
 * beamline.c). Not installed; not part of the public API. */
#ifndef WEIR_BL_INTERNAL_H
#define WEIR_BL_INTERNAL_H

#include "weir/beamline.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* snprintf into err when err is not NULL. */
void bl_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Part i of m parsed as a JSON object; NULL with err naming who, the part
 * (1-based), the byte offset of the error and what was expected. */
cJSON *bl_json_part(const weir_msg *m, size_t i, const char *who, char *err, size_t errlen);

/* An integral number member: 0, WEIR_ENOTFOUND, or WEIR_EINVAL (not an
 * integer that fits int64). */
int bl_get_i64(const cJSON *j, const char *key, int64_t *out);
/* A number member: 0, WEIR_ENOTFOUND, or WEIR_EINVAL. */
int bl_get_f64(const cJSON *j, const char *key, double *out);
/* A string member or NULL. */
const char *bl_get_str(const cJSON *j, const char *key);

/* cJSON holds numbers as doubles, so integers above 2^53 (AlbaEM's
 * nanosecond timestamps) lose digits. This reads the integer written after
 * "key": in the JSON text of part itself. Only used on text cJSON has
 * already accepted; 0 or WEIR_ENOTFOUND. */
int bl_exact_i64(const weir_buf *part, const char *key, int64_t *out);

/* Appends j printed compactly as a new part (takes j, even on failure). */
int bl_emit_json(weir_msg *out, cJSON *j);
/* Appends a copy of the bytes as a new part. */
int bl_emit_bytes(weir_msg *out, const void *data, size_t n);
/* Adds the members of an object text to j (NULL text: nothing). */
int bl_merge_json(cJSON *j, const char *extra_json);

/* A growable byte string for the encoders. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} bl_bytes;

void bl_put(bl_bytes *b, const void *data, size_t n);
void bl_putc(bl_bytes *b, uint8_t c);
void bl_printf(bl_bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the bytes as a part and frees them; WEIR_ENOMEM if any put failed. */
int bl_emit_built(weir_msg *out, bl_bytes *b);

/* A pickle with nothing but an empty list (protocol 4), as a default meta. */
extern const uint8_t bl_empty_pickle[];
extern const size_t bl_empty_pickle_len;

#endif
