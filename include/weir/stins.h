/* weir/stins.h — the STINS ("stream1") protocol, decode and encode.
 *
 * A STINS message is a multipart message whose frame 0 is JSON with "htype":
 * "header" (1 frame, or more: extra frames are passed through untouched),
 * "image" (2 frames: JSON + pixels; "compression" "none" or "bslz4"), or
 * "series_end" (1 frame). Unknown JSON fields are kept and can be read with
 * weir_stins_get_*.
 *
 * Ownership: a parsed packet holds references to the message's frames and,
 * for bslz4, a newly allocated decompressed buffer; weir_stins_clear()
 * releases them. */
#ifndef WEIR_STINS_H
#define WEIR_STINS_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/message.h"

typedef enum {
    WEIR_STINS_HEADER = 1,
    WEIR_STINS_IMAGE = 2,
    WEIR_STINS_SERIES_END = 3
} weir_stins_kind;

typedef enum { WEIR_STINS_COMP_NONE = 0, WEIR_STINS_COMP_BSLZ4 = 1 } weir_stins_compression;

typedef struct {
    weir_stins_kind kind;
    int64_t msg_number;
    int64_t frame;  /* image only, else -1 */
    char *filename; /* header only; "" means live view; NULL when absent */
    weir_stins_compression compression;
    weir_array data;  /* image: decoded (decompressed) pixels, C-order */
    weir_buf *raw;    /* image: frame 1 as received (ref) */
    size_t nextra;    /* header: frames after the JSON frame */
    weir_buf **extra; /* refs */
    void *json_;      /* parsed frame 0 (internal; use weir_stins_get_*) */
} weir_stins_packet;

/* Parses msg into p. With decode != 0 an image is decompressed and checked
 * against its shape; with decode == 0 only the JSON is parsed (p->data is then
 * left empty for bslz4). On error returns a WEIR_E* code and writes a message
 * naming what was expected into err (may be NULL). */
int weir_stins_parse(const weir_msg *msg, int decode, weir_stins_packet *p, char *err,
                     size_t errlen);
void weir_stins_clear(weir_stins_packet *p);

/* Extra JSON fields: 0, WEIR_ENOTFOUND, or WEIR_EINVAL for a wrong type. */
int weir_stins_get_f64(const weir_stins_packet *p, const char *key, double *out);
int weir_stins_get_str(const weir_stins_packet *p, const char *key, const char **out);
/* Whole JSON of frame 0 re-printed (caller frees with free()). */
char *weir_stins_json(const weir_stins_packet *p);

/* Encoders append frames to out (which should be empty). extra_json is an
 * optional JSON object text whose members are added to frame 0. */
int weir_stins_encode_header(weir_msg *out, int64_t msg_number, const char *filename,
                             const char *extra_json);
/* pixels must be C-contiguous host-order data of the dtype. With
 * compression bslz4 the pixels are compressed with the bitshuffle-LZ4 codec. */
int weir_stins_encode_image(weir_msg *out, int64_t msg_number, int64_t frame, weir_dtype dt,
                            int ndim, const size_t *shape, const void *pixels,
                            weir_stins_compression comp, const char *extra_json);
int weir_stins_encode_series_end(weir_msg *out, int64_t msg_number);
/* Rows [r0, r1) of a decoded image as a STINS image message of its own:
 * frame 0 is the original JSON with "shape" narrowed, "compression" "none"
 * and "slice": {"start": r0, "stop": r1, "full_shape": [...]} added; frame 1
 * is a zero-copy view of the rows. */
int weir_stins_encode_slice(weir_msg *out, const weir_stins_packet *p, size_t r0, size_t r1);

#endif
