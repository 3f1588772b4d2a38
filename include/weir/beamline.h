/* weir/beamline.h — the other beamline streams in dranspose's captures:
 * Xspress3 (old three-message and new multipart forms), Contrast, PandA
 * position capture over ZeroMQ ("PCAP") and over raw TCP ("PCAP_RAW"),
 * Sardana, the LeCroy oscilloscope and the AlbaEM electrometer
 * (reference/dranspose.md §3.5–3.11). Decode and encode.
 *
 * Every packet says what it is (series start, data with a frame number,
 * series end, or something else such as a heartbeat), owns the parsed JSON
 * of its control part (a cJSON tree, freed by the packet's clear function),
 * and holds the data parts as zero-copy weir_buf references. Python pickles
 * (Contrast messages, Xspress3 "meta", LeCroy timestamps) are never
 * unpickled: they are kept as opaque bytes; weir_pickle_scan() only walks
 * their opcodes (it executes nothing) to check their structure and to read
 * plain text or number values of the top-level dict, which is how a
 * Contrast message's "status" is found.
 *
 * Ownership: parse functions fill a caller-provided packet that takes new
 * references to the message's parts (the message may be cleared afterwards);
 * the matching clear function releases everything and is safe on a zeroed
 * or already cleared packet. On error the packet is left empty and err
 * (may be NULL) names the stream part, the byte offset and what was
 * expected. Encoders append parts to out (transfer full). Nothing here keeps
 * global state: all functions are thread-safe on distinct objects. */
#ifndef WEIR_BEAMLINE_H
#define WEIR_BEAMLINE_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/message.h"
#include "weir/stins.h"

struct cJSON; /* <cjson/cJSON.h>; read with cJSON_GetObjectItemCaseSensitive() etc. */

/* The first three values equal weir_stins_kind's, so a classifier can hand
 * them to the live source unchanged. */
typedef enum {
    WEIR_BL_START = 1, /* series start: xspress3 header, contrast "started", ... */
    WEIR_BL_DATA = 2,  /* one frame (or one LeCroy sequence, one PandA sample) */
    WEIR_BL_END = 3,   /* series end */
    WEIR_BL_OTHER = 4  /* heartbeats, handshakes, pieces that must be assembled first */
} weir_bl_kind;

const char *weir_bl_kind_name(weir_bl_kind k); /* "start", "data", "end", "other" */

/* ---- uniform classifier (for the live source's protocol table) ----------- */

/* Protocol names: "xspress3", "contrast", "pcap", "pcap-raw", "sardana",
 * "lecroy", "albaem". Classifies one message: *kind is a weir_stins_kind
 * (START → HEADER, DATA → IMAGE, END → SERIES_END); *frame is the 0-based
 * frame number, or -1 when only the position can number the frame. Messages
 * that are neither (heartbeats, a PandA "OK", a lone LeCroy trace or an
 * unassembled old-format Xspress3 part) return WEIR_ENOTFOUND with err saying
 * why: they are to be skipped, not counted as malformed. Malformed messages
 * give another WEIR_E* code. WEIR_EINVAL for an unknown protocol. */
int weir_beamline_classify(const char *protocol, const weir_msg *m, weir_stins_kind *kind,
                           int64_t *frame, char *err, size_t errlen);
/* dranspose's typ string ("xspress", "contrast", "PCAP", "PCAP_RAW",
 * "sardana", "lecroy_9fwdWp6Rq7", "albaem"); NULL for an unknown protocol.
 * Static string. */
const char *weir_beamline_typ(const char *protocol);
/* 1 if protocol is one of the names above, else 0. */
int weir_beamline_known(const char *protocol);

/* ---- assembler: received messages → the messages classify expects -------
 *
 * Some streams need several received messages per frame, or give several
 * frames per message; dranspose's ingesters do this regrouping and so does
 * the assembler:
 *  - xspress3: an old-format single-part image JSON takes the next two
 *    messages (data, pickled meta) into one 3-part message;
 *  - pcap: a vectorised data message becomes one data message per element
 *    (frame_number + i, every list replaced by its i-th value);
 *  - lecroy: traces are collected from SEQSTART to SEQEND into one message
 *    [SeqStart, (meta, data, timestamps) × n, SeqEnd]; in continuous mode
 *    (ntriggers -1) the first SEQSTART is repeated for every sequence;
 *  - pcap-raw: bytes from TCP go through the PandA framer (feed_bytes);
 *  - the others pass messages through unchanged.
 * Not thread-safe; one per stream. */
typedef struct weir_beamline_asm weir_beamline_asm;

int weir_beamline_asm_new(const char *protocol, weir_beamline_asm **out);
/* Takes over in's parts (in is left empty). Errors (a malformed message) are
 * returned with err set; the assembler stays usable. */
int weir_beamline_asm_push(weir_beamline_asm *a, weir_msg *in, char *err, size_t errlen);
/* pcap-raw only: bytes as they came from TCP, in any pieces (copied). */
int weir_beamline_asm_feed_bytes(weir_beamline_asm *a, const uint8_t *data, size_t n, char *err,
                                 size_t errlen);
/* Moves the next complete message into out (which must be empty): 1, or 0
 * when none is ready. */
int weir_beamline_asm_pop(weir_beamline_asm *a, weir_msg *out);
void weir_beamline_asm_free(weir_beamline_asm *a);

/* ---- pickles: opaque, but checked --------------------------------------- */

typedef enum {
    WEIR_PICKLE_NONE = 0, /* key absent, or a value that is not text or a number */
    WEIR_PICKLE_STR = 1,
    WEIR_PICKLE_INT = 2,
    WEIR_PICKLE_FLOAT = 3
} weir_pickle_type;

typedef struct {
    weir_pickle_type type;
    const uint8_t *str; /* points into the pickle (not NUL-terminated) */
    size_t len;
    int64_t i;
    double f;
} weir_pickle_value;

/* Walks the opcodes of a pickle (protocols 0–5) without executing them.
 * Returns 0 when the bytes are exactly one well-formed pickle ending in
 * STOP, with *protocol (0 when there is no PROTO opcode); with key != NULL
 * and the top-level object a dict, *val is the text or number stored under
 * key (type NONE otherwise). WEIR_EFORMAT with the offset of the bad opcode. */
int weir_pickle_scan(const uint8_t *d, size_t n, int *protocol, const char *key,
                     weir_pickle_value *val, char *err, size_t errlen);

/* ---- Xspress3 (typ "xspress") -------------------------------------------- */

typedef struct {
    weir_bl_kind kind;
    int64_t frame;        /* image: "frame"; else -1 */
    struct cJSON *json;   /* part 1, owned */
    const char *filename; /* header: "filename" (into json) or NULL */
    double exptime;       /* image */
    weir_array data;      /* image with decode: [channels, bins] view of part 2 */
    weir_buf *raw;        /* image: part 2 as received (ref) */
    weir_buf *meta;       /* image: part 3, the pickled list of arrays (ref, opaque) */
    int meta_protocol;    /* its pickle protocol */
} weir_xspress3_packet;

/* Parses a header, a 3-part image (new form, or old form after assembly)
 * or a series_end. */
int weir_xspress3_parse(const weir_msg *m, int decode, weir_xspress3_packet *p, char *err,
                        size_t errlen);
void weir_xspress3_clear(weir_xspress3_packet *p);
int weir_xspress3_encode_header(weir_msg *out, const char *filename);
/* A 3-part image: pixels are [channels, bins] little-endian of dt; meta is
 * the pickle to send (NULL: an empty pickled list). */
int weir_xspress3_encode_image(weir_msg *out, int64_t frame, double exptime, weir_dtype_kind dt,
                               size_t channels, size_t bins, const void *pixels, const void *meta,
                               size_t metalen);
int weir_xspress3_encode_end(weir_msg *out);
/* The old form of an image: out[0..2] receive one part each (new refs). */
int weir_xspress3_split_old(const weir_msg *image, weir_msg out[3]);

/* ---- Contrast (typ "contrast") ------------------------------------------- */

typedef struct {
    weir_bl_kind kind; /* started → START, running → DATA, finished → END, heartbeat → OTHER */
    int64_t frame;     /* always -1: Contrast numbers nothing */
    struct cJSON *json; /* always NULL: the message is a pickle */
    char status[16];    /* "started", "running", "finished", "heartbeat" */
    int64_t scannr;     /* "scannr" when it is an integer, else -1 */
    weir_buf *pickle;   /* the whole message (ref, opaque) */
    int pickle_protocol;
} weir_contrast_packet;

int weir_contrast_parse(const weir_msg *m, weir_contrast_packet *p, char *err, size_t errlen);
void weir_contrast_clear(weir_contrast_packet *p);
/* A pickled dict {"status": status[, "scannr": scannr (>= 0)][, "dt": dt
 * (running, dt >= 0)]}: protocol 4 for heartbeats, 2 for the others, as
 * Contrast sends them. */
int weir_contrast_encode(weir_msg *out, const char *status, int64_t scannr, double dt);

/* ---- PCAP over ZeroMQ (typ "PCAP") --------------------------------------- */

typedef struct {
    weir_bl_kind kind;
    int64_t frame;      /* data: "frame_number" (of the first element); else -1 */
    struct cJSON *json; /* owned */
    int64_t message_id;
    const char *arm_time; /* series-start (into json) or NULL */
    size_t nvalues;       /* data: length of every list (1 for scalars) */
    size_t nfields;       /* data: captured fields (members other than the envelope) */
} weir_pcap_packet;

int weir_pcap_parse(const weir_msg *m, weir_pcap_packet *p, char *err, size_t errlen);
void weir_pcap_clear(weir_pcap_packet *p);
/* Element i of a data packet as its own data message, as dranspose's
 * ingester yields it: frame_number + i and every list replaced by its i-th
 * value. */
int weir_pcap_split(const weir_pcap_packet *p, size_t i, weir_msg *out);
int weir_pcap_encode_start(weir_msg *out, int64_t message_id, const char *arm_time);
/* values[f * n + i]: field f, element i. */
int weir_pcap_encode_data(weir_msg *out, int64_t message_id, int64_t frame_number, size_t nfields,
                          const char *const *names, const double *values, size_t n);
int weir_pcap_encode_end(weir_msg *out, int64_t message_id);

/* ---- PandA position capture over raw TCP (typ "PCAP_RAW") ----------------
 *
 * The framer turns the TCP byte stream into one message per packet, each a
 * single part holding the packet's bytes exactly as sent: the "OK" status
 * line, the header block up to and including its empty line, one ASCII
 * data line, one binary sample (in the FRAMED form: "BIN " + uint32 LE
 * length including those 8 bytes + the sample; FRAMED blocks of any size
 * are re-cut into samples), and the "END <n> <reason>" line. Bytes may
 * arrive in arbitrary pieces. Formats: ASCII and Framed (Base64 and
 * Unframed give WEIR_EUNSUPPORTED). */

typedef enum { WEIR_PANDA_ASCII = 0, WEIR_PANDA_FRAMED = 1 } weir_panda_format;
typedef enum {
    WEIR_PANDA_UINT32 = 0,
    WEIR_PANDA_INT32 = 1,
    WEIR_PANDA_INT64 = 2,
    WEIR_PANDA_DOUBLE = 3
} weir_panda_type;

typedef struct {
    char *name;    /* "INENC1.VAL" */
    char *capture; /* "Mean" */
    weir_panda_type type;
    int scaled; /* scale/offset/units given */
    double scale, offset;
    char *units;
} weir_panda_field;

typedef struct {
    char *arm_time, *start_time, *process; /* NULL when absent */
    uint64_t missed;
    weir_panda_format format;
    size_t sample_bytes; /* binary formats: bytes per sample (sum of field sizes) */
    size_t nfields;
    weir_panda_field *fields;
} weir_panda_header;

typedef struct {
    int is_int;
    int64_t i;
    double d; /* also set for integers */
} weir_panda_value;

typedef struct {
    weir_bl_kind kind;        /* header → START, sample → DATA, END → END, "OK" → OTHER */
    int64_t frame;            /* always -1: numbered by position */
    weir_panda_header header; /* START */
    size_t nvalues;           /* DATA parsed with a header */
    weir_panda_value *values;
    uint64_t end_samples; /* END */
    char end_reason[32];
    weir_buf *raw; /* the packet's bytes (ref) */
} weir_panda_packet;

/* hdr (may be NULL) is the series' header, needed to read a sample's values
 * (field count and types); without it a sample is only classified. */
int weir_panda_parse(const weir_msg *m, const weir_panda_header *hdr, weir_panda_packet *p,
                     char *err, size_t errlen);
void weir_panda_clear(weir_panda_packet *p);
void weir_panda_header_clear(weir_panda_header *h);
/* Deep copy (for keeping a START packet's header for the samples). */
int weir_panda_header_copy(weir_panda_header *dst, const weir_panda_header *src);

typedef struct weir_panda_framer weir_panda_framer;
int weir_panda_framer_new(weir_panda_framer **out);
/* Appends bytes (copied). */
int weir_panda_framer_feed(weir_panda_framer *f, const uint8_t *data, size_t n);
/* Next packet into out (empty): 1, 0 when more bytes are needed, or a
 * negative code when the stream cannot be framed (the framer then refuses
 * further packets until weir_panda_framer_reset). */
int weir_panda_framer_next(weir_panda_framer *f, weir_msg *out, char *err, size_t errlen);
void weir_panda_framer_reset(weir_panda_framer *f);
/* Bytes consumed so far (for error offsets). */
uint64_t weir_panda_framer_offset(const weir_panda_framer *f);
void weir_panda_framer_free(weir_panda_framer *f);

/* Encoders give one message per packet; the bytes of the parts back to back
 * are the TCP stream a PandA sends. */
int weir_panda_encode_ok(weir_msg *out);
int weir_panda_encode_header(weir_msg *out, const weir_panda_header *h);
/* values[h->nfields]; integers are written as integers. */
int weir_panda_encode_sample(weir_msg *out, const weir_panda_header *h, const double *values);
int weir_panda_encode_end(weir_msg *out, uint64_t samples, const char *reason);

/* ---- Sardana (typ "sardana") --------------------------------------------- */

typedef struct {
    weir_bl_kind kind;  /* DataDescription → START, RecordData → DATA, RecordEnd → END */
    int64_t frame;      /* RecordData: "point_nb"; else -1 */
    struct cJSON *json; /* owned */
    const char *type;   /* "type" (into json) */
    int64_t serialno;   /* DataDescription, else -1 */
} weir_sardana_packet;

int weir_sardana_parse(const weir_msg *m, weir_sardana_packet *p, char *err, size_t errlen);
void weir_sardana_clear(weir_sardana_packet *p);
/* columns: names of the recorded channels (besides point_nb). */
int weir_sardana_encode_desc(weir_msg *out, int64_t serialno, const char *title, size_t ncolumns,
                             const char *const *columns);
int weir_sardana_encode_record(weir_msg *out, int64_t point_nb, double timestamp, size_t ncolumns,
                               const char *const *columns, const double *values);
int weir_sardana_encode_end(weir_msg *out);

/* ---- LeCroy oscilloscope (typ "lecroy_9fwdWp6Rq7") ----------------------- */

typedef enum {
    WEIR_LECROY_PREPARE = 0,
    WEIR_LECROY_SEQSTART = 1,
    WEIR_LECROY_SEQEND = 2,
    WEIR_LECROY_STOP = 3,
    WEIR_LECROY_TRACES = 4,  /* not a "what": a trace message */
    WEIR_LECROY_SEQUENCE = 5 /* an assembled sequence */
} weir_lecroy_what;

typedef struct {
    struct cJSON *json; /* the trace's JSON (owned) */
    int ch;
    int64_t frame;
    weir_array data; /* with decode: "shape" of "dtype", view of the data part */
    weir_buf *raw;   /* the data part (ref) */
    weir_buf *ts;    /* pickled list of float timestamps (ref, opaque) */
} weir_lecroy_trace;

typedef struct {
    weir_bl_kind kind; /* PREPARE → START, SEQUENCE → DATA, STOP → END, others → OTHER */
    int64_t frame;     /* always -1: sequences are numbered by position */
    weir_lecroy_what what;
    struct cJSON *json;    /* the control JSON (SeqStart for a sequence), owned */
    struct cJSON *seq_end; /* sequence: the SeqEnd JSON, owned */
    size_t ntraces;
    weir_lecroy_trace *traces;
} weir_lecroy_packet;

int weir_lecroy_parse(const weir_msg *m, int decode, weir_lecroy_packet *p, char *err,
                      size_t errlen);
void weir_lecroy_clear(weir_lecroy_packet *p);
/* A control message; extra_json (may be NULL) is an object text whose
 * members are added (e.g. "{\"ntriggers\": -1, \"seqno\": 0, \"channels\": [2, 4]}"). */
int weir_lecroy_encode_msg(weir_msg *out, weir_lecroy_what what, int64_t frame,
                           const char *extra_json);
/* A 3-part trace: samples are [rows, cols] float64; timestamps[nts] are
 * pickled as a list of floats. */
int weir_lecroy_encode_trace(weir_msg *out, int ch, int64_t frame, double ts, size_t rows,
                             size_t cols, const double *samples, const double *timestamps,
                             size_t nts);

/* ---- AlbaEM electrometer (typ "albaem") ---------------------------------- */

typedef struct {
    weir_bl_kind kind;
    int64_t frame;      /* data: "frame_number"; else -1 */
    struct cJSON *json; /* owned */
    int64_t message_id;
    double timestamp;              /* data, s */
    int64_t acquisition_timestamp; /* data, ns */
    double channel[4];             /* data: channel1..channel4, A */
} weir_albaem_packet;

int weir_albaem_parse(const weir_msg *m, weir_albaem_packet *p, char *err, size_t errlen);
void weir_albaem_clear(weir_albaem_packet *p);
int weir_albaem_encode_start(weir_msg *out, int64_t message_id);
int weir_albaem_encode_data(weir_msg *out, int64_t message_id, int64_t frame_number,
                            double timestamp, int64_t acquisition_timestamp,
                            const double channel[4]);
int weir_albaem_encode_end(weir_msg *out, int64_t message_id);

#endif
