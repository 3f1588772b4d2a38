/* weir/tags.h — photon time tags: one event form for every tagger format.
 *
 * Readers (src/timetag/<format>.c, one file per format, decode + encode)
 * turn PicoQuant PTU and legacy files, Swabian dumps, quTAG binaries,
 * Becker & Hickl SPC FIFO and Eventech files into weir_tag events.
 * Instruments (src/timetag/instr_*.c) consume sorted weir_tag arrays.
 *
 * Time: int64 picoseconds from the start of the measurement. A reader keeps
 * the file's resolution exactly as the rational num/den picoseconds per tick
 * (weir_tag_res) and converts every event on its own (ticks * num / den,
 * rounded to nearest, 128-bit), so no rounding error accumulates over a
 * file — unlike ETA, which truncates the resolution to whole picoseconds.
 * For T3 records, time = sync time + micro * micro resolution, and the raw
 * micro-time (dtime bins) is kept in `micro`.
 *
 * Channels follow ETA's numbering (eta.md §1.3) so recipes port unchanged:
 * HydraHarp/TimeHarp260/MultiHarp T2: sync = 0, input k = k+1; in T3 input
 * k = k; PicoHarp as recorded; quTAG/Swabian as recorded, and Swabian's
 * falling-edge (negative) channels stay negative (ETA wraps them to 255,
 * 254, … as uint8). Markers are events of kind
 * WEIR_TAG_MARKER with channel = lowest set marker bit and `bits` = all bits.
 *
 * Overflow, error and illegal records are not events: they are counted in
 * weir_tag_counts.
 *
 * Ownership: a weir_tag_reader owns its file mapping; weir_tag_info and the
 * header tag list stay valid until weir_tag_close. Readers are not
 * thread-safe; open one reader per thread (sections below). */
#ifndef WEIR_TAGS_H
#define WEIR_TAGS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WEIR_TAG_PHOTON = 0, /* a detector photon (T2 input or T3 photon) */
    WEIR_TAG_SYNC = 1,   /* a T2 sync event (HydraHarp-style T2 files) */
    WEIR_TAG_MARKER = 2, /* an external marker */
} weir_tag_kind;

typedef struct {
    int64_t time;    /* picoseconds */
    int32_t micro;   /* T3 micro-time in micro-resolution units; -1 when none */
    int16_t channel; /* ETA numbering; negative: Swabian falling edges */
    uint8_t kind;    /* weir_tag_kind */
    uint8_t bits;    /* markers: all marker bits of the record; else 0 */
} weir_tag;

/* num/den picoseconds per tick, exact as the file states it. */
typedef struct {
    int64_t num;
    int64_t den;
} weir_tag_res;

typedef enum {
    WEIR_TAGFMT_AUTO = 0,
    WEIR_TAGFMT_PTU,              /* PicoQuant unified (.ptu, ETA's .timeres) */
    WEIR_TAGFMT_PQ_LEGACY,        /* .ht2 .ht3 .pt2 .pt3 .t3r .thd */
    WEIR_TAGFMT_SWABIAN,          /* Swabian 16-byte dump */
    WEIR_TAGFMT_QUTAG,            /* quTAG 10-byte binary (40-byte header) */
    WEIR_TAGFMT_QUTAG_RAW,        /* quTAG raw */
    WEIR_TAGFMT_BH_SPC,           /* Becker & Hickl SPC 4-byte FIFO */
    WEIR_TAGFMT_ET_A033,          /* Eventech ET A033 */
    WEIR_TAGFMT_QUTAG_COMPRESSED, /* quTAG 5-byte compressed (40-byte header, 37-bit time
                                   * unwrapped); never auto-detected: its header is the
                                   * binary one */
} weir_tag_format;

typedef struct {
    uint64_t photons, syncs, markers; /* events produced, by kind */
    uint64_t overflows;               /* overflow records (each may stand for several wraps) */
    uint64_t overflow_wraps;          /* wraps they stand for */
    uint64_t errors;                  /* error / illegal records, counted, never events */
} weir_tag_counts;

/* One header tag (PTU tags; legacy header fields are exposed the same way). */
typedef enum {
    WEIR_TAGV_EMPTY,
    WEIR_TAGV_BOOL,
    WEIR_TAGV_INT,
    WEIR_TAGV_BITSET,
    WEIR_TAGV_COLOR,
    WEIR_TAGV_FLOAT,
    WEIR_TAGV_DATETIME,
    WEIR_TAGV_FLOAT_ARRAY,
    WEIR_TAGV_STRING, /* ANSI or wide (converted to UTF-8) */
    WEIR_TAGV_BLOB,
} weir_tag_value_type;

typedef struct {
    char name[40]; /* "MeasDesc_Resolution" */
    int32_t index; /* -1 when the tag is not indexed */
    weir_tag_value_type type;
    int64_t i;        /* bool, int, bitset, colour */
    double f;         /* float, datetime (days since 1899-12-30) */
    const void *data; /* strings (NUL-terminated UTF-8), float arrays, blobs */
    uint64_t len;     /* bytes of data (strings: without the NUL) */
    uint64_t offset;  /* of the tag in the file */
} weir_tag_header_tag;

typedef struct {
    weir_tag_format format;
    const char *format_name; /* "PicoQuant PTU HydraHarp V2 T2" */
    const char *path;
    int t3;                   /* 1 for T3 (micro-times), 0 for T2 */
    double resolution_s;      /* as the header says (T2 tick, T3 micro bin) */
    double sync_period_s;     /* T3: 1 / sync rate; 0 when not applicable */
    weir_tag_res tick;        /* ps per time tick (T2) or per sync (T3) */
    weir_tag_res micro;       /* T3: ps per micro-time bin; {0,1} otherwise */
    uint64_t header_bytes;    /* offset of the first record */
    uint64_t record_bytes;    /* size of one record */
    uint64_t nrecords;        /* records in the file now (grows with refresh) */
    uint64_t nrecords_header; /* as the header announces; 0 if it does not */
    const weir_tag_header_tag *tags;
    size_t ntags;
} weir_tag_info;

/* Where a reader is: enough to restart decoding exactly there (the
 * accumulated overflow time base and any format state). Plain data: may be
 * copied, saved in a task file and restored. */
typedef struct {
    uint64_t record;   /* index of the next record to decode */
    int64_t tick_base; /* accumulated overflow ticks before `record` */
    int64_t aux[2];    /* format-specific (e.g. quTAG unwrap state) */
} weir_tag_pos;

typedef struct weir_tag_reader weir_tag_reader;

/* Opens a file (format detected from magic/extension when AUTO). On failure
 * returns a WEIR_E* code and writes a message naming the file, the offset
 * and what was expected into err. */
int weir_tag_open(const char *path, weir_tag_format fmt, weir_tag_reader **out, char *err,
                  size_t errlen);
/* Opens bytes in memory (no copy; the caller keeps them alive); `name`
 * appears in messages. Used by tests and the fuzzers. */
int weir_tag_open_mem(const void *data, size_t len, weir_tag_format fmt, const char *name,
                      weir_tag_reader **out, char *err, size_t errlen);
void weir_tag_close(weir_tag_reader *r);

const weir_tag_info *weir_tag_reader_info(const weir_tag_reader *r);
const weir_tag_counts *weir_tag_reader_counts(const weir_tag_reader *r);

/* Decodes records from the current position up to the end limit and
 * appends at most cap events to out. Returns the number of events written
 * (0 when no further complete record is there), or a negative WEIR_E* code
 * with a message in err. Events come out in record order. */
long weir_tag_read(weir_tag_reader *r, weir_tag *out, size_t cap, char *err, size_t errlen);

weir_tag_pos weir_tag_tell(const weir_tag_reader *r);
/* Restores a position saved with weir_tag_tell (or from weir_tag_sections). */
int weir_tag_seek(weir_tag_reader *r, const weir_tag_pos *pos);
/* Seeks to record `index` from the start, decoding the overflow time base
 * on the way (a quick scan). */
int weir_tag_seek_record(weir_tag_reader *r, uint64_t index, char *err, size_t errlen);
/* Decoding stops before this record (UINT64_MAX = no limit). */
void weir_tag_set_end(weir_tag_reader *r, uint64_t end_record);
/* Re-stats a growing file and maps what has been appended; returns the new
 * record count. Complete records only. */
int weir_tag_refresh(weir_tag_reader *r, uint64_t *nrecords, char *err, size_t errlen);

/* Splits records [first, end) into k contiguous sections of about equal
 * size with exact start positions (overflow base included); out has k
 * entries, ends[k] the section ends. */
int weir_tag_sections(weir_tag_reader *r, uint64_t first, uint64_t end, unsigned k,
                      weir_tag_pos *out, uint64_t *ends, char *err, size_t errlen);

/* Encoding, for tests, fuzz seeds and benchmark inputs: writes a complete
 * file of format fmt holding the events (sorted by time). `variant` picks
 * the record type within the format (PTU: the TTResultFormat_TTTRRecType
 * code, e.g. 0x01010204 HydraHarp V2 T2; 0 = the format's default), and the
 * resolutions are written to the header as given. Overflow records are
 * inserted where the time needs them. */
typedef struct {
    uint32_t variant;
    double resolution_s;  /* T2 tick or T3 micro bin */
    double sync_period_s; /* T3 only */
} weir_tag_encode_opts;
int weir_tag_encode(weir_tag_format fmt, const weir_tag_encode_opts *o, const weir_tag *events,
                    size_t n, const char *path, char *err, size_t errlen);

const char *weir_tag_format_name(weir_tag_format f);
/* Parses "ptu", "swabian", "qutag", "qutag-raw", "qutag-compressed", "bh", "et-a033",
 * "legacy", "auto". Returns 0 or WEIR_EINVAL. */
int weir_tag_format_parse(const char *s, weir_tag_format *out);

/* ---- clips (ETA's clip_file / clips / clips_list, src/timetag/clip.c) ----
 *
 * A clip is a record range [first, end) of a reader; the reader is left
 * positioned at `first` (with its exact overflow base) and limited to `end`,
 * so weir_tag_read then returns exactly the clip's events. Counts are in
 * records, as ETA's read_events are. */
typedef struct {
    uint64_t first, end; /* records */
} weir_tag_clip;

typedef struct {
    /* > 0: that many records; 0: the rest of the file; < 0: the rest minus
     * |read_events| (to leave out a pre-allocated tail) */
    int64_t read_events;
    /* >= 0: start at this record; < 0: continue after the previous clip
     * (the reader's current limit, or its position when unlimited) */
    int64_t seek_event;
    /* follow a growing file: wait up to this long for the wanted records,
     * re-stating the file every poll_ms (default 10 ms); when time runs out
     * the clip holds what is there. 0 = no waiting. */
    double wait_timeout_s;
    unsigned poll_ms;
} weir_tag_clip_opts;

/* Sets up the next clip (see above). Returns 0 with *out filled (possibly
 * empty: out->first == out->end when nothing is there even after waiting),
 * or a negative WEIR_E* code with a message. */
int weir_tag_clip_next(weir_tag_reader *r, const weir_tag_clip_opts *o, weir_tag_clip *out,
                       char *err, size_t errlen);

/* Decodes a whole clip into a new array (caller frees *events with free()).
 * Same options; *n events. */
int weir_tag_clip_read(weir_tag_reader *r, const weir_tag_clip_opts *o, weir_tag **events,
                       size_t *n, char *err, size_t errlen);

/* ETA's clips(keep_indexes=…): window i covers records
 * [start + i*read_events, start + (i+1)*read_events) (the last one may be
 * shorter); only the listed windows are produced, in the order given.
 * weir_tag_windows_next positions the reader on the next kept window
 * (seeking with the exact overflow base) and returns 1, or 0 when none is
 * left. */
typedef struct {
    uint64_t start, read_events;
    const uint64_t *keep; /* NULL: every window */
    size_t nkeep;
    size_t next; /* iterator state: start at 0 */
} weir_tag_windows;
int weir_tag_windows_next(weir_tag_reader *r, weir_tag_windows *w, weir_tag_clip *out, char *err,
                          size_t errlen);

/* Keeps only the events whose time lies in one of the half-open time
 * windows [t0[i], t1[i]) (ps), in place; returns the new count. */
size_t weir_tag_keep_time_windows(weir_tag *events, size_t n, const int64_t *t0, const int64_t *t1,
                                  size_t nwin);

#ifdef __cplusplus
}
#endif
#endif
