/* weir/tpx3.h — the ASI CheeTah TPX3 sparse stream, decode and encode.
 *
 * ASI's Accos software serves a plain TCP byte stream (default port 8283)
 * of fixed 32-byte little-endian headers, some followed by a payload:
 *
 *   AcquisitionStart  version, format, nav/sig shape, indptr/indices dtypes
 *   ScanStart         + metadata_length bytes (JSON; LiberTEM's sim sends 0)
 *   ArrayChunk        + a CSR chunk: nframes rows of the flattened signal
 *   ScanEnd, AcquisitionEnd
 *
 * in the order AcquisitionStart (ScanStart ArrayChunk* ScanEnd)*
 * AcquisitionEnd; an AcquisitionEnd inside a scan cancels it. A CSR chunk
 * holds indptr (nframes + 1 entries at offset 0, starting at 0), indices
 * (nnz flat pixel indices at indices_offset) and values (nnz counts at
 * values_offset), with padding allowed between the parts; its dtypes are
 * indptr/indices from the AcquisitionStart and values from the chunk
 * header, so a chunk cannot even be sized without its AcquisitionStart.
 *
 * Messages (weir_msg) as the framer and reader deliver them, one series
 * per scan (frame numbers restart at 0 with every ScanStart, as LiberTEM
 * numbers them):
 *
 *   start  [AcquisitionStart 32 B, ScanStart 32 B (, metadata)]
 *   image  [ArrayChunk 32 B, CSR payload, AcquisitionStart 32 B, range 16 B]
 *   end    [ScanEnd 32 B] or [AcquisitionEnd 32 B] (a cancelled scan)
 *
 * All header and payload parts are the bytes as received; "range" is
 * weir's own 16 bytes (little-endian u64 first frame of the scan covered,
 * u32 first row of the chunk, u32 number of rows), so every image message
 * is self-contained and zero-copy: with frames_per_msg = 1 a chunk of N
 * frames becomes N messages sharing one payload buffer.
 *
 * Errors: 0 or a negative WEIR_E* code; functions with err/errlen write a
 * message naming the byte offset and what was expected. Nothing prints.
 * All functions are reentrant; a framer or reader is used by one thread at
 * a time. */
#ifndef WEIR_TPX3_H
#define WEIR_TPX3_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/array.h"
#include "weir/buffer.h"
#include "weir/message.h"
#include "weir/stins.h"

#define WEIR_TPX3_HEADER_SIZE 32
#define WEIR_TPX3_RANGE_SIZE 16
/* The AcquisitionStart version weir reads and writes (LiberTEM's sim: 7). */
#define WEIR_TPX3_VERSION 7
#define WEIR_TPX3_DEFAULT_PORT 8283
/* weir_tpx3_framer_opts.frames_per_msg: one message per chunk. */
#define WEIR_TPX3_WHOLE_CHUNKS UINT32_MAX

typedef enum {
    WEIR_TPX3_ACQ_START = 0,
    WEIR_TPX3_SCAN_START = 1,
    WEIR_TPX3_ARRAY_CHUNK = 2,
    WEIR_TPX3_SCAN_END = 3,
    WEIR_TPX3_ACQ_END = 4
} weir_tpx3_tag;

/* Wire dtype codes. U1 and U4 exist in the format but have no defined
 * packing (LiberTEM-rs leaves them unimplemented): refused as WEIR_EUNSUPPORTED. */
typedef enum {
    WEIR_TPX3_U1 = 0,
    WEIR_TPX3_U4 = 1,
    WEIR_TPX3_U8 = 2,
    WEIR_TPX3_U16 = 3,
    WEIR_TPX3_U32 = 4,
    WEIR_TPX3_U64 = 5
} weir_tpx3_dtype;

typedef enum {
    WEIR_TPX3_FORMAT_CSR = 0, /* sorted CSR, values are counts */
    WEIR_TPX3_FORMAT_TOT = 1  /* sorted CSR, values are time over threshold */
} weir_tpx3_format;

/* Byte offsets of the fields (bincode, fixint, little-endian) are given in
 * tpx3.c; every header keeps its reserved bytes so it re-encodes bit for bit. */
typedef struct {
    uint8_t version;
    uint8_t format_type; /* weir_tpx3_format */
    uint16_t nav_shape[2];
    uint8_t indptr_dtype; /* weir_tpx3_dtype */
    uint16_t sig_shape[2];
    uint8_t indices_dtype; /* weir_tpx3_dtype */
    uint32_t sequence;
    uint8_t reserved[15];
} weir_tpx3_acq_start;

typedef struct {
    uint32_t sequence;
    uint64_t metadata_length;
    uint8_t reserved[19];
} weir_tpx3_scan_start;

typedef struct {
    uint8_t value_dtype; /* weir_tpx3_dtype */
    uint32_t nframes;
    uint32_t length; /* nnz */
    uint32_t indices_offset;
    uint32_t values_offset;
    uint8_t reserved[14];
} weir_tpx3_array_chunk;

/* ScanEnd and AcquisitionEnd. */
typedef struct {
    uint32_t sequence;
    uint8_t reserved[27];
} weir_tpx3_end;

typedef struct {
    weir_tpx3_tag tag;
    union {
        weir_tpx3_acq_start acq_start;
        weir_tpx3_scan_start scan_start;
        weir_tpx3_array_chunk chunk;
        weir_tpx3_end end; /* ScanEnd, AcquisitionEnd */
    } u;
} weir_tpx3_header;

/* Element size of a wire dtype: 1, 2, 4, 8; 0 for U1, U4 and unknown codes. */
size_t weir_tpx3_dtype_size(unsigned code);
/* "uint8" ... ; "u1", "u4", "?" for the others. Static string. */
const char *weir_tpx3_dtype_name(unsigned code);
/* Printable name of a tag ("AcquisitionStart", ...; "unknown"). Static. */
const char *weir_tpx3_tag_name(unsigned tag);

/* Decodes the 32-byte header at data[0..len). Checks: len >= 32
 * (WEIR_ETRUNCATED), a known tag (WEIR_EFORMAT), AcquisitionStart version
 * == WEIR_TPX3_VERSION (WEIR_EUNSUPPORTED), format 0/1, dtype codes 0..5
 * (WEIR_EFORMAT) and 2..5 (WEIR_EUNSUPPORTED), both signal dimensions > 0
 * (WEIR_ESHAPE). Reserved bytes are kept, not checked. */
int weir_tpx3_header_decode(const uint8_t *data, size_t len, weir_tpx3_header *h, char *err,
                            size_t errlen);
/* Writes h as 32 bytes (no checks beyond the tag: WEIR_EINVAL). */
int weir_tpx3_header_encode(const weir_tpx3_header *h, uint8_t out[WEIR_TPX3_HEADER_SIZE]);
/* Fills an AcquisitionStart (version WEIR_TPX3_VERSION, reserved zero). */
void weir_tpx3_acq_start_init(weir_tpx3_header *h, weir_tpx3_format format, uint16_t nav_h,
                              uint16_t nav_w, weir_tpx3_dtype indptr_dtype, uint16_t sig_h,
                              uint16_t sig_w, weir_tpx3_dtype indices_dtype, uint32_t sequence);
/* ScanStart, ScanEnd, AcquisitionEnd with reserved bytes zero. */
void weir_tpx3_scan_start_init(weir_tpx3_header *h, uint32_t sequence, uint64_t metadata_length);
void weir_tpx3_end_init(weir_tpx3_header *h, weir_tpx3_tag tag, uint32_t sequence);

/* Payload bytes that follow an ArrayChunk header (values_offset + nnz x
 * value size), after checking the offsets against the part sizes (indices
 * start at or after the end of indptr, values at or after the end of the
 * indices): WEIR_EFORMAT naming both numbers otherwise. err names offset
 * `at` (the header's position in the stream). */
int weir_tpx3_chunk_size(const weir_tpx3_acq_start *acq, const weir_tpx3_array_chunk *c, size_t at,
                         uint64_t *size, char *err, size_t errlen);

/* ------------------------------------------------------------ CSR chunks */

/* A CSR chunk over payload bytes (zero-copy). Rows are frames; indices are
 * flat pixel indices into sig_shape (row-major). */
typedef struct {
    weir_tpx3_acq_start acq;
    weir_tpx3_array_chunk hdr;
    weir_buf *buf; /* one reference to the payload */
    const uint8_t *indptr, *indices, *values;
    size_t indptr_size, indices_size, value_size; /* element sizes */
    size_t npixels;                               /* sig_shape[0] x sig_shape[1] */
} weir_tpx3_chunk;

/* Views payload (exactly weir_tpx3_chunk_size bytes: WEIR_ETRUNCATED if
 * shorter, WEIR_EFORMAT if longer) as a chunk; takes its own reference.
 * With validate != 0 the contents are checked too: indptr[0] == 0,
 * non-decreasing, indptr[nframes] == nnz (WEIR_EFORMAT), every index <
 * npixels (WEIR_ERANGE), each naming the row / element. Release with
 * weir_tpx3_chunk_clear. */
int weir_tpx3_chunk_view(const weir_tpx3_acq_start *acq, const weir_tpx3_array_chunk *hdr,
                         weir_buf *payload, int validate, weir_tpx3_chunk *out, char *err,
                         size_t errlen);
void weir_tpx3_chunk_clear(weir_tpx3_chunk *c);
/* Element access (little-endian, any dtype); no bounds checks. */
uint64_t weir_tpx3_chunk_indptr(const weir_tpx3_chunk *c, size_t i);
uint64_t weir_tpx3_chunk_index(const weir_tpx3_chunk *c, size_t k);
uint64_t weir_tpx3_chunk_value(const weir_tpx3_chunk *c, size_t k);

/* Row `row` as a new dense (sig_h, sig_w) host-order array of kind (an
 * unsigned integer, WEIR_DT_F32 or WEIR_DT_F64); repeated indices add up,
 * as scipy's todense does. Checks the row's indptr and indices itself, so
 * it is safe on an unvalidated chunk (WEIR_EFORMAT / WEIR_ERANGE); an
 * integer sum that does not fit kind is WEIR_ERANGE. Release out with
 * weir_array_release. */
int weir_tpx3_chunk_dense(const weir_tpx3_chunk *c, size_t row, weir_dtype_kind kind,
                          weir_array *out, char *err, size_t errlen);
/* Adds rows [row0, row0 + nrows) into acc (npixels doubles): a sum
 * worker's inner loop without a dense copy. Same checks as _dense. */
int weir_tpx3_chunk_add_f64(const weir_tpx3_chunk *c, size_t row0, size_t nrows, double *acc,
                            char *err, size_t errlen);

/* Encodes one ArrayChunk message: the 32-byte header and the CSR payload
 * (indptr of nframes + 1 entries, indices and values of indptr[nframes]
 * entries, all given as uint64_t and written in the dtypes of acq and
 * value_dtype). align > 1 rounds indices_offset and values_offset up to a
 * multiple of align (padding bytes are zero). WEIR_ERANGE if a number does
 * not fit its dtype or an offset does not fit u32; WEIR_EFORMAT if indptr
 * is not a valid CSR row pointer. *out is a new buffer (caller unrefs). */
int weir_tpx3_chunk_encode(const weir_tpx3_acq_start *acq, weir_tpx3_dtype value_dtype,
                           uint32_t nframes, const uint64_t *indptr, const uint64_t *indices,
                           const uint64_t *values, size_t align, weir_buf **out, char *err,
                           size_t errlen);
/* A control message: the header (+ metadata for a ScanStart, whose
 * metadata_length must equal metadata_len: WEIR_EINVAL). New buffer. */
int weir_tpx3_control_encode(const weir_tpx3_header *h, const void *metadata, size_t metadata_len,
                             weir_buf **out);

/* -------------------------------------------------------------- messages */

typedef enum {
    WEIR_TPX3_MSG_START = 1, /* AcquisitionStart + ScanStart */
    WEIR_TPX3_MSG_IMAGE = 2, /* rows of a chunk */
    WEIR_TPX3_MSG_END = 3    /* ScanEnd, or AcquisitionEnd inside a scan */
} weir_tpx3_msg_kind;

typedef struct {
    weir_tpx3_msg_kind kind;
    weir_tpx3_header head;     /* part 0 */
    weir_tpx3_acq_start acq;   /* start, image */
    weir_tpx3_scan_start scan; /* start */
    const uint8_t *metadata;   /* start: borrowed from the message, or NULL */
    size_t metadata_len;
    weir_tpx3_chunk chunk; /* image (whole chunk; holds a payload reference) */
    uint64_t first_frame;  /* image: scan frame number of row0 */
    uint32_t row0, nrows;  /* image: the rows of chunk this message covers */
} weir_tpx3_packet;

/* Parses a message of the layout above. validate != 0 also checks the CSR
 * contents (weir_tpx3_chunk_view). Clear with weir_tpx3_packet_clear. */
int weir_tpx3_packet_parse(const weir_msg *m, int validate, weir_tpx3_packet *p, char *err,
                           size_t errlen);
void weir_tpx3_packet_clear(weir_tpx3_packet *p);

/* The live source's classify function: start -> WEIR_STINS_HEADER (frame
 * -1), image -> WEIR_STINS_IMAGE with *frame = its first frame, end ->
 * WEIR_STINS_SERIES_END (frame -1). Headers only (the CSR arrays are not
 * read). Errors as weir_tpx3_packet_parse. */
int weir_tpx3_classify(const weir_msg *m, weir_stins_kind *kind, int64_t *frame, char *err,
                       size_t errlen);
/* First frame and number of frames of an image message (0 / 0 otherwise). */
int weir_tpx3_msg_frames(const weir_msg *m, uint64_t *first, uint32_t *n);

/* ---------------------------------------------------------------- framer */

typedef struct {
    /* Frames per image message: 1 (also when 0) splits every chunk into
     * one message per frame, N > 1 into runs of at most N frames, and
     * WEIR_TPX3_WHOLE_CHUNKS keeps every chunk as one message. */
    uint32_t frames_per_msg;
    /* Largest ArrayChunk payload or ScanStart metadata accepted, in bytes
     * (0: 1 GiB); larger announces are refused before any allocation. */
    uint64_t max_payload;
} weir_tpx3_framer_opts;

typedef struct {
    uint64_t bytes;        /* fed */
    uint64_t wire_msgs;    /* headers read */
    uint64_t chunks;       /* ArrayChunk messages */
    uint64_t frames;       /* frames in them */
    uint64_t scans;        /* ScanStart messages that opened a scan */
    uint64_t skipped;      /* wire messages outside their place, dropped */
    uint64_t seq_mismatch; /* ScanEnd / AcquisitionEnd with another sequence */
} weir_tpx3_framer_stats;

typedef struct weir_tpx3_framer weir_tpx3_framer;

/* opts may be NULL (frames_per_msg 1, max_payload 1 GiB). */
int weir_tpx3_framer_new(const weir_tpx3_framer_opts *opts, weir_tpx3_framer **out);
void weir_tpx3_framer_free(weir_tpx3_framer *f);
/* Forgets all bytes and state (after a reconnect). */
void weir_tpx3_framer_reset(weir_tpx3_framer *f);
/* Takes the next len bytes of the stream (copied: header bytes into the
 * framer, payload bytes straight into the buffer of their message). Never
 * fails except WEIR_ENOMEM; errors show in _next. */
int weir_tpx3_framer_feed(weir_tpx3_framer *f, const void *data, size_t len);
/* Bytes fed but not yet consumed by _next (bounded by one header plus a
 * little: payload bytes are moved out as they come). */
size_t weir_tpx3_framer_pending(const weir_tpx3_framer *f);
/* The next complete message into out (which must be empty; transfer
 * full): 0; WEIR_ETRUNCATED when more bytes are needed (not an error);
 * or an error about the next wire message, naming its stream offset:
 *   - recoverable (the message is skipped, framing intact; call again):
 *     a message out of place (ArrayChunk outside a scan, ScanStart before
 *     AcquisitionStart, ...), WEIR_EFORMAT;
 *   - fatal (weir_tpx3_framer_broken() != 0, every further call returns the
 *     same error until _reset): an unknown tag, a bad version or dtype, an
 *     ArrayChunk before any AcquisitionStart (it cannot be sized),
 *     inconsistent offsets, a payload larger than max_payload. */
int weir_tpx3_framer_next(weir_tpx3_framer *f, weir_msg *out, char *err, size_t errlen);
/* Non-zero once _next has returned the fatal error (so it tells whether
 * the error just returned was fatal, however far feeding has gone). */
int weir_tpx3_framer_broken(const weir_tpx3_framer *f);
/* Within an acquisition / a scan right now. */
int weir_tpx3_framer_in_scan(const weir_tpx3_framer *f);
const weir_tpx3_framer_stats *weir_tpx3_framer_stats_get(const weir_tpx3_framer *f);

/* ---------------------------------------------------- recorded streams */

/* A recorded stream file is the raw byte stream exactly as the detector
 * (and weir sim) sends it: wire messages back to back. */

/* One wire message of a recording. */
typedef struct {
    weir_tpx3_header hdr;
    size_t offset;  /* of the header in the file */
    size_t size;    /* header + payload bytes */
    weir_buf *wire; /* view of [offset, offset + size): what to send */
    uint64_t index; /* 0-based wire message number */
} weir_tpx3_item;

void weir_tpx3_item_clear(weir_tpx3_item *it);

typedef struct weir_tpx3_reader weir_tpx3_reader;

/* Maps path read-only (err names it). */
int weir_tpx3_reader_open(const char *path, weir_tpx3_reader **out, char *err, size_t errlen);
/* The same over memory (own reference; name copied, NULL: "<buffer>"). */
int weir_tpx3_reader_new(weir_buf *buf, const char *name, weir_tpx3_reader **out);
/* Next wire message: 0 with *it filled (clear it), or 0 with *eof = 1 at a
 * clean end. Each header is decoded and each ArrayChunk sized against the
 * last AcquisitionStart (and with validate != 0 its CSR checked). On error
 * the reader stays at the bad message: WEIR_ETRUNCATED for a message cut
 * short, the codes of weir_tpx3_header_decode / _chunk_size / _chunk_view,
 * WEIR_EFORMAT for an ArrayChunk before any AcquisitionStart. */
int weir_tpx3_reader_next(weir_tpx3_reader *r, int validate, weir_tpx3_item *it, int *eof,
                          char *err, size_t errlen);
/* Back to the first message. */
void weir_tpx3_reader_rewind(weir_tpx3_reader *r);
void weir_tpx3_reader_free(weir_tpx3_reader *r);

/* Appends wire messages to a file. */
typedef struct weir_tpx3_writer weir_tpx3_writer;
int weir_tpx3_writer_open(const char *path, weir_tpx3_writer **out, char *err, size_t errlen);
/* Writes the bytes of one wire message (or any part of the stream). */
int weir_tpx3_writer_write(weir_tpx3_writer *w, const void *data, size_t len);
/* Encodes and writes a control header (+ ScanStart metadata). */
int weir_tpx3_writer_control(weir_tpx3_writer *w, const weir_tpx3_header *h, const void *metadata,
                             size_t metadata_len);
/* Flushes and closes (0 or WEIR_EIO); frees w in any case. */
int weir_tpx3_writer_close(weir_tpx3_writer *w);

/* -------------------------------------------------------------- synthetic */

/* A whole synthetic stream for tests and `weir sim` without a recording:
 * AcquisitionStart, one ScanStart, nframes frames of random hits
 * (0..max_hits per frame, values 1..max_value, sorted unique indices) in
 * chunks of frames_per_chunk, ScanEnd, AcquisitionEnd; nav_shape (1,
 * nframes) unless nav_h x nav_w == nframes. Fixed seed: same bytes. */
typedef struct {
    uint32_t nframes, frames_per_chunk;
    uint16_t nav_h, nav_w, sig_h, sig_w;
    uint32_t max_hits, max_value;
    weir_tpx3_dtype indptr_dtype, indices_dtype, value_dtype;
    size_t align;
    uint64_t seed;
} weir_tpx3_synth_opts;

int weir_tpx3_synth(const weir_tpx3_synth_opts *o, weir_buf **out, char *err, size_t errlen);

#endif
