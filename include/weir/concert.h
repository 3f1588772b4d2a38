/* weir/concert.h — Concert's image protocol (concert/networking, and the
 * ucad daemon), decode and encode.
 *
 * One image is a two-part ZeroMQ message: UTF-8 JSON metadata with "dtype"
 * (numpy name) and "shape" [rows, cols] plus anything else ("mirror",
 * "rotate", ucad's "frame-number" and "timestamp" as strings), then the raw
 * C-order pixels. The end of a stream is a one-part message {"end": true}.
 * There is no start message. */
#ifndef WEIR_CONCERT_H
#define WEIR_CONCERT_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/message.h"

typedef struct {
    int end;       /* the {"end": true} marker */
    int64_t frame; /* "frame-number" (ucad sends it as a string); -1 when absent */
    int mirror, rotate;
    weir_array data; /* image: zero-copy view of part 2 (host-order dtype name) */
    void *json_;     /* internal */
} weir_concert_packet;

/* Parses msg; with decode != 0 the pixels are viewed as an array (checked
 * against dtype and shape). Errors name what was expected. */
int weir_concert_parse(const weir_msg *msg, int decode, weir_concert_packet *p, char *err,
                       size_t errlen);
void weir_concert_clear(weir_concert_packet *p);
/* An image message (pixels C-contiguous host order; uint8/uint16 as
 * Concert sends, any dtype accepted); frame < 0 writes no frame number. */
int weir_concert_encode_image(weir_msg *out, weir_dtype_kind dt, size_t rows, size_t cols,
                              const void *pixels, int64_t frame);
int weir_concert_encode_end(weir_msg *out);

#endif
