/* weir/dectris.h — DECTRIS detector streams, stream v1 ("legacy", ZMQ
 * multipart JSON + binary) and stream v2 (one CBOR map per ZMQ message),
 * decode and encode (reference/dranspose.md §3.2-3.4, libertem.md §1b).
 *
 * Stream v1 messages (frame 0 is JSON with "htype"):
 *  - dheader-1.0: header_detail "none" (1 part), "basic" (2: + detector
 *    config JSON) or "all" (8: + flatfield, pixel mask and countrate table,
 *    each a JSON descriptor and a blob); every level may carry one more part,
 *    the header appendix.
 *  - dimage-1.0: 4 parts (dimage, dimage_d, data, dconfig) or 5 (+ image
 *    appendix; dranspose insists on 5). The encoding grammar is
 *    [bs<BITS>][[-]lz4][<|>]: "bs8/16/32-lz4<" bitshuffle-LZ4 with the 12-byte
 *    HDF5-filter header, "lz4<" one raw LZ4 block of the whole frame, "<" (and,
 *    leniently, "none") uncompressed; ">" means big-endian pixels. DECTRIS
 *    `shape` is [x, y]: the array is (y, x) in numpy order.
 *  - dseries_end-1.0: 1 part.
 * Stream v2 messages: an optionally 55799-tagged map with "type" "start",
 * "image" or "end"; images carry {channel: tag 40 [dims, typed array]}
 * (tag 1040 column-major is accepted too), where the typed array's byte
 * string may be tag 56500 ["bslz4", elem_size, bytes] or ["lz4", 0, bytes]
 * (both HDF5-filter framing).
 *
 * One packet type serves both versions. Its JSON view (read with
 * weir_dectris_get_* using dotted paths) is, for v1, frame 0's object with
 * the other JSON parts added as members: "config" (header basic/all),
 * "flatfield" / "pixel_mask" / "countrate_table" (the descriptors of "all"),
 * "dimage_d" and "dconfig" (images) and "appendix" (when it is JSON). For v2
 * it is the whole map converted to JSON, where byte strings become
 * {"bytes": n} and multi-dimensional arrays {"shape": [...], "dtype": "...",
 * "compression": "..."}.
 *
 * Ownership: a parsed packet holds references to the message's frames (v1)
 * or to the decoded CBOR (v2; byte strings are zero-copy views into it) and
 * newly allocated decompressed buffers; weir_dectris_clear() releases them.
 * The arrays handed out stay valid after clear (they hold buffer references).
 * All functions are thread-safe for distinct packets; a parsed packet may be
 * read from several threads at once. */
#ifndef WEIR_DECTRIS_H
#define WEIR_DECTRIS_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/message.h"

typedef enum {
    WEIR_DECTRIS_START = 1, /* v1 dheader-1.0, v2 "start" */
    WEIR_DECTRIS_IMAGE = 2, /* v1 dimage-1.0, v2 "image" */
    WEIR_DECTRIS_END = 3    /* v1 dseries_end-1.0, v2 "end" */
} weir_dectris_kind;

typedef enum {
    WEIR_DECTRIS_ENC_NONE = 0,
    WEIR_DECTRIS_ENC_BSLZ4 = 1, /* v1 "bs<N>-lz4<", v2 56500 "bslz4" */
    WEIR_DECTRIS_ENC_LZ4 = 2    /* v1 "lz4<" (raw LZ4 block), v2 56500 "lz4" (HDF5 framing) */
} weir_dectris_encoding;

/* Decoded output allowed per message by weir_dectris_v*_parse (sum over
 * channels); larger declared sizes are WEIR_ERANGE. A 16M detector frame of
 * uint32 with three channels is about 220 MB. */
#define WEIR_DECTRIS_DEFAULT_MAX_BYTES ((size_t)1 << 30)

/* One image channel (v1 has one, named "image"; v2 one per "data" entry)
 * or one auxiliary array (v1 "flatfield", "pixel_mask", "countrate_table";
 * v2 start "pixel_mask/<channel>", "flatfield/<channel>",
 * "countrate_correction_lookup_table"). */
typedef struct {
    char *name;
    weir_dectris_encoding encoding;
    size_t elem_size; /* bitshuffle element size (bslz4), else the dtype size */
    weir_dtype dtype; /* byte order as on the wire */
    int ndim;
    size_t shape[WEIR_MAX_DIMS]; /* numpy order: v1 [x, y] becomes (y, x) */
    int fortran;                 /* v2 tag 1040: column-major strides */
    int64_t declared_size;       /* v1 dimage_d "size" (payload bytes), else -1 */
    weir_buf *raw;               /* payload as received, compressed or not (ref) */
    weir_array data;             /* decoded; empty unless decoded (see parse) */
} weir_dectris_channel;

typedef struct {
    int version; /* 1 or 2 */
    weir_dectris_kind kind;
    int64_t series; /* v1 "series", v2 "series_id"; -1 when absent */
    int64_t frame;  /* v1 "frame", v2 "image_id"; -1 for start and end */
    /* start only, -1 / "" when the message does not say: */
    char header_detail[8];      /* v1: "all", "basic", "none" */
    char trigger_mode[8];       /* "ints", "exte", ... */
    int64_t nimages, ntrigger;  /* v2: number_of_images, ntrigger */
    int64_t x_pixels, y_pixels; /* v1 *_pixels_in_detector, v2 image_size_x/y */
    int64_t bit_depth;          /* bit_depth_image, or v2 image_dtype's bits */
    size_t nchannels;
    weir_dectris_channel *channels; /* images */
    size_t naux;
    weir_dectris_channel *aux; /* start: auxiliary arrays, never decoded by parse */
    weir_buf *appendix;        /* v1: the appendix part as received (ref), or NULL */
    void *json_;               /* internal: the JSON view */
    void *cbor_;               /* internal: v2 keeps the CBOR alive for views */
} weir_dectris_packet;

/* Parses a v1 multipart message. With decode != 0 every image channel is
 * decompressed (or viewed, when uncompressed) into channel.data; with decode
 * == 0 only uncompressed images get their (zero-copy) data. Returns 0 or a
 * WEIR_E* code with a message in err naming the message, frame and what was
 * expected (err may be NULL); on error the packet is left empty. A payload
 * shorter than dimage_d's "size" fails to decode with WEIR_ETRUNCATED; a
 * compressed payload too small to expand to its shape (LZ4 expands at most
 * 255-fold) is WEIR_ECODEC before anything is allocated. */
int weir_dectris_v1_parse(const weir_msg *msg, int decode, weir_dectris_packet *p, char *err,
                          size_t errlen);
/* Parses one v2 CBOR message (the whole ZMQ frame: trailing bytes are an
 * error). The input is borrowed: nothing refers to it afterwards. */
int weir_dectris_v2_parse(const uint8_t *cbor, size_t len, int decode, weir_dectris_packet *p,
                          char *err, size_t errlen);
/* The same with an explicit cap on decoded bytes per message (0 = default). */
int weir_dectris_v1_parse_ex(const weir_msg *msg, int decode, size_t max_bytes,
                             weir_dectris_packet *p, char *err, size_t errlen);
int weir_dectris_v2_parse_ex(const uint8_t *cbor, size_t len, int decode, size_t max_bytes,
                             weir_dectris_packet *p, char *err, size_t errlen);
void weir_dectris_clear(weir_dectris_packet *p);

/* Channel by name (v1's only channel is "image"); NULL if absent. Borrowed. */
const weir_dectris_channel *weir_dectris_channel_find(const weir_dectris_packet *p,
                                                      const char *name);
/* Decodes an auxiliary array (or any channel) by name into out (a new
 * reference the caller releases with weir_array_release). Returns 0,
 * WEIR_ENOTFOUND, or the decode error (WEIR_ESHAPE for a blob whose size
 * disagrees with its shape, as in captures with truncated blobs; WEIR_ERANGE
 * above WEIR_DECTRIS_DEFAULT_MAX_BYTES). */
int weir_dectris_aux(const weir_dectris_packet *p, const char *name, weir_array *out, char *err,
                     size_t errlen);
/* Frames the series will have, as LiberTEM-live counts them: ntrigger for
 * trigger modes exte/inte, nimages * ntrigger otherwise (a missing count is
 * 1); v2: number_of_images. -1 when the packet gives neither count. */
int64_t weir_dectris_num_frames(const weir_dectris_packet *p);

/* JSON view lookups by dotted path ("config.nimages", "dconfig.real_time",
 * "threshold_energy.threshold_1"): 0, WEIR_ENOTFOUND, or WEIR_EINVAL for a
 * value of another type. get_i64 requires an integral number in range. */
int weir_dectris_get_f64(const weir_dectris_packet *p, const char *path, double *out);
int weir_dectris_get_i64(const weir_dectris_packet *p, const char *path, int64_t *out);
int weir_dectris_get_str(const weir_dectris_packet *p, const char *path, const char **out);
/* The whole JSON view printed (caller frees with free()); NULL on OOM. */
char *weir_dectris_json(const weir_dectris_packet *p);

/* Series description shared by the v1 header and v2 start encoders. */
typedef struct {
    int64_t series;
    const char *series_unique_id; /* v2; NULL writes "" */
    const char *header_detail;    /* v1: "all", "basic" (NULL) or "none" */
    const char *trigger_mode;     /* NULL writes "ints" (v1) / nothing (v2) */
    int64_t nimages, ntrigger;
    size_t x_pixels, y_pixels;
    int bit_depth; /* 8, 16 or 32 */
    size_t nchannels;
    const char *const *channels; /* v2 channel names; NULL/0 writes ["threshold_1"] */
    const char *extra_json;      /* v1: members added to the config JSON; NULL */
    const char *appendix;        /* v1: header appendix part text; NULL = no part */
} weir_dectris_series;

/* Times for an image (v1 dconfig in ns; v2 rationals over time_base). */
typedef struct {
    uint64_t start, stop, real;
    uint64_t time_base; /* v2 denominator; 0 writes 50000000 as DECTRIS does */
} weir_dectris_times;

/* v1 encoders append the parts of one multipart message to out. "all"
 * adds a flatfield of 1.0f, a zero pixel mask (both [x, y]) and a
 * [2, 1001] countrate table of zeros. Returns 0, WEIR_EINVAL, WEIR_EJSON
 * (bad extra_json) or WEIR_ENOMEM; out may hold some parts on error. */
int weir_dectris_v1_encode_header(weir_msg *out, const weir_dectris_series *s);
/* img: 2-D array (y, x) of uint8/16/32 in either byte order (it sets the
 * encoding suffix), any strides. The data part's MD5 goes into "hash", as a
 * DCU does. appendix NULL writes 4 parts, else 5. times may be NULL. */
int weir_dectris_v1_encode_image(weir_msg *out, int64_t series, int64_t frame,
                                 const weir_array *img, weir_dectris_encoding enc,
                                 const weir_dectris_times *times, const char *appendix);
int weir_dectris_v1_encode_end(weir_msg *out, int64_t series);

/* v2 encoders append one frame (a 55799-tagged CBOR map) to out. */
int weir_dectris_v2_encode_start(weir_msg *out, const weir_dectris_series *s);
/* imgs[i] is channel names[i]: any dimensionality, integer or float dtype of
 * either byte order (RFC 8746 tags 64-86), any strides. */
int weir_dectris_v2_encode_image(weir_msg *out, int64_t series, const char *series_unique_id,
                                 int64_t image_id, size_t nchannels, const char *const *names,
                                 const weir_array *imgs, weir_dectris_encoding enc,
                                 const weir_dectris_times *times);
int weir_dectris_v2_encode_end(weir_msg *out, int64_t series, const char *series_unique_id);

/* Lower-case hex MD5 of data (33 bytes with NUL), as in dimage "hash". */
void weir_dectris_md5_hex(const void *data, size_t len, char out[33]);

#endif
