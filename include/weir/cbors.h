/* weir/cbors.h — dranspose .cbors captures, read and write.
 *
 * Two formats share the extension (reference/dranspose.md §4):
 *  - ingester dumps: a CBOR sequence of
 *      ?#6.55799(#6.42877([event_number, {stream: #6.42878([typ, [*bstr]])}, ?#6.0(created_at)]))
 *  - raw captures: a CBOR sequence of untagged arrays of byte strings, one per
 *    ZMQ multipart message.
 * Files ending in ".gz" are inflated with zlib first.
 *
 * The reader maps the file and hands out frames as zero-copy views into it
 * (or into the inflated buffer). It walks items with libcbor's streaming
 * decoder, so a malformed item is reported with its byte offset and what was
 * expected, and every item before it has already been delivered.
 *
 * The writer emits exactly what dranspose's dumper (cbor2) writes: shortest
 * heads, definite lengths, tag 55799 on every item, created_at as tag 0 text
 * ("YYYY-MM-DDTHH:MM:SS[.ffffff]Z"). */
#ifndef WEIR_CBORS_H
#define WEIR_CBORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/buffer.h"
#include "weir/message.h"

typedef enum {
    WEIR_CBORS_UNKNOWN = 0, /* empty file */
    WEIR_CBORS_DUMP = 1,
    WEIR_CBORS_RAW = 2
} weir_cbors_kind;

typedef struct weir_cbors_reader weir_cbors_reader;

/* Opens a file (".gz" inflated). The kind is detected from the first item.
 * On error *out is NULL and err holds "<path>: <what went wrong>". */
int weir_cbors_open(const char *path, weir_cbors_reader **out, char *err, size_t errlen);
/* Reads from a buffer (takes a reference); name is used in messages. A buffer
 * starting with the gzip magic 1f 8b is inflated first (0x1f cannot start a
 * CBOR item). An empty input has kind WEIR_CBORS_UNKNOWN and reads as a clean
 * end of file from both next functions. */
int weir_cbors_open_buf(weir_buf *buf, const char *name, weir_cbors_reader **out, char *err,
                        size_t errlen);
void weir_cbors_close(weir_cbors_reader *r);
weir_cbors_kind weir_cbors_kind_of(const weir_cbors_reader *r);
const char *weir_cbors_name(const weir_cbors_reader *r);
/* Byte offset of the next item (in the inflated stream for .gz). */
uint64_t weir_cbors_offset(const weir_cbors_reader *r);
uint64_t weir_cbors_size(const weir_cbors_reader *r);
/* Number of items read so far. */
uint64_t weir_cbors_items(const weir_cbors_reader *r);

/* Next ingester-dump item. Returns 0 with *ev set, 0 with *ev == NULL at a
 * clean end of file, or a negative code with a message (file name, offset,
 * what was expected) retrievable with weir_cbors_error(); after an error the
 * reader stays at the bad item and further calls return the same error. */
int weir_cbors_next_event(weir_cbors_reader *r, weir_event **ev);
/* Next raw-capture item into m (m must be empty; frames are views).
 * Returns 0 and sets *eof to 1 at a clean end of file. */
int weir_cbors_next_raw(weir_cbors_reader *r, weir_msg *m, int *eof);
const char *weir_cbors_error(const weir_cbors_reader *r);

typedef struct weir_cbors_writer weir_cbors_writer;

/* Opens path for writing (append != 0 appends, as dranspose's dumper does).
 * A ".gz" path writes gzip. */
int weir_cbors_writer_open(const char *path, int append, weir_cbors_writer **out);
/* Writes one dump item. created_at: NULL writes the 2-element form (as
 * pre-2024-11 dranspose); otherwise the text after tag 0. Use
 * weir_cbors_now() for the current time. */
int weir_cbors_write_event(weir_cbors_writer *w, const weir_event *ev, const char *created_at);
int weir_cbors_write_raw(weir_cbors_writer *w, const weir_msg *m);
int weir_cbors_writer_close(weir_cbors_writer *w);

/* In-memory encoders: a malloc'd buffer the caller frees. */
int weir_cbors_encode_event(const weir_event *ev, const char *created_at, uint8_t **out,
                            size_t *len);
int weir_cbors_encode_raw(const weir_msg *m, uint8_t **out, size_t *len);
/* Current UTC time as cbor2 formats it: "2025-10-27T19:55:11.123456Z", or
 * without fraction when the microseconds are 0. buf >= 32 bytes. */
const char *weir_cbors_now(char *buf, size_t len);

#endif
