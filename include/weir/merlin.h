/* weir/merlin.h — Quantum Detectors Merlin (Medipix3) frames, decode and encode.
 *
 * Three things travel in Merlin data: the acquisition header ("HDR", the
 * .hdr file, also the first message on the data socket), frames (an ASCII
 * "MQ1,..." header NUL-padded to its data offset, then the pixels), and on
 * TCP the "MPX," framing around both ("MPX," + 10 decimal digits + "," +
 * payload, the number being the payload length + 1). A .mib file is frames
 * back to back without MPX framing.
 *
 * Pixels: U08/U16/U32/U64 frames are big-endian images and decode to a
 * zero-copy view with a WEIR_BIG dtype (read elements with weir_u16u & co.
 * and swap). R64 ("raw") frames are unpacked into a new native-order array:
 * counter depth 1 and 6 -> uint8, 12 -> uint16, 24 -> uint32, with the chip
 * rows of a 2x2 quad put in place (2x2G: 2-pixel gaps, left at 0).
 *
 * Errors: every function returns 0 or a negative WEIR_E* code; functions
 * with err/errlen also write a message naming the input ("<buffer>" or the
 * file), the byte offset and what was expected. No function prints. All
 * functions are reentrant; a reader is used by one thread at a time. */
#ifndef WEIR_MERLIN_H
#define WEIR_MERLIN_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/buffer.h"

/* "MPX," + 10 digits + ",": the bytes before every TCP payload. */
#define WEIR_MERLIN_MPX_PREFIX 15
#define WEIR_MERLIN_NTHRESHOLDS 8
#define WEIR_MERLIN_NDACS 27
/* DAC values are kept for this many chips (more are checked, not kept). */
#define WEIR_MERLIN_MAX_DAC_CHIPS 8

typedef enum {
    WEIR_MERLIN_U01 = 1, /* one byte per pixel, as U08 (LiberTEM-rs does the same) */
    WEIR_MERLIN_U08,
    WEIR_MERLIN_U16,
    WEIR_MERLIN_U32,
    WEIR_MERLIN_U64,
    WEIR_MERLIN_R64 /* raw: packing given by the MQ1A counter depth */
} weir_merlin_pixel;

/* Sensor layout "NxM" with optional "G" (2-pixel gaps between chips):
 * "1x1" -> {1, 1, 0}, "2x2G" -> {2, 2, 1}. */
typedef struct {
    unsigned nx, ny;
    int gap;
} weir_merlin_layout;

/* One MQ1 frame header. Fields in header order; the last block is derived. */
typedef struct {
    uint64_t sequence;  /* 1-based in Merlin's own data */
    size_t data_offset; /* header size in bytes = where the pixels start */
    unsigned nchips;    /* 1..99 */
    unsigned width;     /* as written (R64: the undecoded row layout) */
    unsigned height;    /* as written */
    weir_merlin_pixel pixel;
    weir_merlin_layout layout;
    uint32_t chip_select; /* hex in the header: 0x01, 0x0F */
    char timestamp[32];   /* "YYYY-MM-DD HH:MM:SS.ffffff" */
    double shutter_s;     /* acquisition (shutter) time in seconds */
    unsigned counter, colour_mode, gain;
    int nthresholds; /* 8, or 0 when the header has an empty field instead */
    double thresholds[WEIR_MERLIN_NTHRESHOLDS]; /* keV */
    unsigned ndac_blocks;                       /* 0 or nchips */
    char chip_type[8];                          /* "3RX": marker of the first DAC block */
    uint16_t dacs[WEIR_MERLIN_MAX_DAC_CHIPS][WEIR_MERLIN_NDACS];
    int has_ext;             /* the "MQ1A" extension is present */
    char ext_timestamp[40];  /* "YYYY-MM-DDTHH:MM:SS.fffffffffZ" */
    uint64_t ext_shutter_ns; /* shutter time in ns */
    unsigned counter_depth;  /* 1, 6, 12, 24 (MQ1A); 0 without the extension */
    /* derived */
    size_t payload_bytes; /* pixel bytes after data_offset */
    weir_dtype dtype;     /* of the decoded array */
    size_t shape[2];      /* decoded (rows, cols) */
} weir_merlin_frame_header;

/* Parses and validates the MQ1 header at data[0..len) (len may include the
 * pixels and more). Every field is checked; derived fields are filled.
 * Errors: WEIR_EFORMAT (a field is not as expected, wrong number of fields),
 * WEIR_EDTYPE (unknown pixel depth), WEIR_ETRUNCATED (data offset past len),
 * WEIR_EUNSUPPORTED (raw layouts other than 1x1 and 2x2, raw quad 24-bit,
 * raw without MQ1A). The pixels themselves need not be present. */
int weir_merlin_frame_parse(const uint8_t *data, size_t len, weir_merlin_frame_header *h, char *err,
                            size_t errlen);

/* Decodes the frame starting at byte off of buf (header h, from
 * weir_merlin_frame_parse of the same bytes) into out. U* formats: a
 * zero-copy view (holds a reference to buf); R64: a new native array.
 * WEIR_ETRUNCATED if buf ends before the last pixel. Release out with
 * weir_array_release(). */
int weir_merlin_decode(weir_buf *buf, size_t off, const weir_merlin_frame_header *h,
                       weir_array *out, char *err, size_t errlen);

/* Fills h with the values of a real Merlin header (timestamps of 1970,
 * thresholds and DACs of the rosettasciio sample data, MQ1A present) for the
 * given pixel format, layout ("1x1", "2x2", "2x2G", "4x1", ...) and counter
 * depth. WEIR_EINVAL for a bad layout or depth. */
int weir_merlin_frame_header_init(weir_merlin_frame_header *h, weir_merlin_pixel pixel,
                                  const char *layout, unsigned counter_depth);

/* Encodes one frame: the MQ1 header from h (sequence, pixel, layout, nchips,
 * chip select, timestamps, thresholds, DACs, MQ1A; width, height and the
 * payload size come from the array) padded with NULs to h->data_offset (0:
 * the smallest multiple of 384 that holds the text, as Merlin does), then
 * the pixels; with mpx != 0 the MPX prefix first. pixels: a 2-D array of
 * any integer dtype, byte order and strides, shape (rows, cols) as decoded
 * (R64 quad: (2R, 512) or (2R+2, 514) for 2x2G; gap pixels are ignored).
 * WEIR_ERANGE (with the pixel index) if a value does not fit the format or
 * counter depth; WEIR_ESHAPE for a shape the layout cannot hold.
 * *out is a new buffer (caller unrefs). */
int weir_merlin_encode_frame(const weir_merlin_frame_header *h, const weir_array *pixels, int mpx,
                             weir_buf **out, char *err, size_t errlen);

/* ------------------------------------------------------------------ HDR */

/* The acquisition header. text is an owned, NUL-terminated copy of the
 * input (latin-1 text; NUL bytes in values are not refused, so use
 * text_len). Numbers are those of the named keys; weir_merlin_acq_get reads
 * any other key. */
typedef struct {
    char *text;
    size_t text_len;
    uint64_t frames_in_acquisition; /* "Frames in Acquisition (Number)"; 0: continuous */
    uint64_t frames_per_trigger;    /* "Frames per Trigger (Number)" */
    unsigned counter_depth;         /* "Counter Depth (number)"; 0 when absent */
    int has_layout;                 /* "Assembly Size (NX1, 2X2)" present */
    weir_merlin_layout layout;
    int has_scan; /* both ScanX and ScanY present */
    uint64_t scan_x, scan_y;
} weir_merlin_acq;

/* Parses a header: "HDR," line, then "Key:<tab>Value" lines (\r\n or \n),
 * then a line "End" followed only by whitespace or NUL padding. Frames in
 * Acquisition and Frames per Trigger are required; Counter Depth, Assembly
 * Size, ScanX and ScanY are checked when present. data may be the .hdr file
 * or the payload of an MPX "HDR," message. Clear with weir_merlin_acq_clear. */
int weir_merlin_acq_parse(const uint8_t *data, size_t len, weir_merlin_acq *a, char *err,
                          size_t errlen);
/* Reads and parses a .hdr file (err names the path). */
int weir_merlin_acq_read(const char *path, weir_merlin_acq *a, char *err, size_t errlen);
/* Value of key (exact match, without the ':'), trimmed; points into a->text,
 * not NUL-terminated at *len. WEIR_ENOTFOUND if absent. */
int weir_merlin_acq_get(const weir_merlin_acq *a, const char *key, const char **val, size_t *len);
void weir_merlin_acq_clear(weir_merlin_acq *a);
/* Writes a header as Merlin does (\r\n lines, "End\t", space padding to 2048
 * bytes) from the numeric fields of a (text is ignored; layout and scan only
 * when has_layout / has_scan); with mpx != 0 as an MPX message. */
int weir_merlin_acq_encode(const weir_merlin_acq *a, int mpx, weir_buf **out);

/* ------------------------------------------------------------------ MPX */

typedef enum {
    WEIR_MERLIN_MSG_OTHER = 0, /* e.g. a control-socket reply */
    WEIR_MERLIN_MSG_HDR = 1,   /* payload starts with "HDR," */
    WEIR_MERLIN_MSG_FRAME = 2  /* payload starts with "MQ1," */
} weir_merlin_msg_kind;

typedef struct {
    size_t payload_off; /* = WEIR_MERLIN_MPX_PREFIX */
    size_t payload_len;
    size_t total; /* bytes of the whole message; when incomplete: bytes needed so far known */
    weir_merlin_msg_kind kind;
} weir_merlin_mpx;

/* Splits the MPX message at the start of data[0..len): 0 when it is
 * complete (m filled; the next message starts at data + m->total);
 * WEIR_ETRUNCATED when more bytes are needed (m->total is then the size of
 * the whole message once the 15-byte prefix is in, else 15: read at least
 * that much); WEIR_EFORMAT when the bytes are not an MPX prefix (bad magic,
 * length not 10 decimal digits or 0, missing comma). Stateless: a TCP client
 * keeps its own buffer and calls this again after each read. */
int weir_merlin_mpx_split(const uint8_t *data, size_t len, weir_merlin_mpx *m, char *err,
                          size_t errlen);
/* Writes the 15-byte prefix for a payload of payload_len bytes plus a NUL
 * into out. WEIR_ERANGE if the length needs more than 10 digits. */
int weir_merlin_mpx_prefix(size_t payload_len, char out[WEIR_MERLIN_MPX_PREFIX + 1]);

/* --------------------------------------------------------------- reader */

/* One frame of a .mib file or MPX capture: its header and where it lies. */
typedef struct {
    weir_merlin_frame_header hdr;
    weir_buf *buf;  /* one reference to the whole input; weir_merlin_frame_clear drops it */
    size_t offset;  /* of the MQ1 header in buf */
    uint64_t index; /* 0-based position in the input */
} weir_merlin_frame;

void weir_merlin_frame_clear(weir_merlin_frame *f);

typedef struct weir_merlin_reader weir_merlin_reader;

/* Maps path read-only. The input is a .mib file (starts with "MQ1,") or a
 * recorded data-socket stream (starts with "MPX,": HDR messages are parsed
 * and kept, frame messages must hold exactly one frame). */
int weir_merlin_reader_open(const char *path, weir_merlin_reader **out, char *err, size_t errlen);
/* The same over memory; takes its own reference to buf. name is used in
 * messages (copied; NULL: "<buffer>"). */
int weir_merlin_reader_new(weir_buf *buf, const char *name, weir_merlin_reader **out);
/* Next frame: 0 with *fr filled (clear it after use), or 0 with *eof = 1 at
 * a clean end. On error the reader stays at the bad item (calling again
 * returns the same error): WEIR_ETRUNCATED for a frame cut short, or the
 * codes of weir_merlin_frame_parse / weir_merlin_mpx_split. */
int weir_merlin_reader_next(weir_merlin_reader *r, weir_merlin_frame *fr, int *eof, char *err,
                            size_t errlen);
/* The last HDR message seen in an MPX stream, else NULL. Borrowed. */
const weir_merlin_acq *weir_merlin_reader_acq(const weir_merlin_reader *r);
void weir_merlin_reader_free(weir_merlin_reader *r);

#endif
