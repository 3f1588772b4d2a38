/* weir/message.h — multipart messages and events.
 *
 * A weir_msg is the list of frames of one message from one stream (a ZMQ
 * multipart message, or the frames of one stream in a capture item). An
 * weir_event is an event number plus one packet (typ + message) per stream.
 *
 * Ownership: a weir_msg owns one reference to each of its frame buffers; an
 * event owns its stream names, typ strings and messages. weir_event_free()
 * releases everything. Events are immutable once handed to the runtime and
 * may be read by several worker threads at once (the broadcast first event). */
#ifndef WEIR_MESSAGE_H
#define WEIR_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "weir/buffer.h"

typedef struct {
    size_t nparts;
    size_t cap;
    weir_buf **parts;
} weir_msg;

void weir_msg_init(weir_msg *m);
/* Appends a frame; takes over the caller's reference (transfer full). */
int weir_msg_append(weir_msg *m, weir_buf *part);
void weir_msg_clear(weir_msg *m);
size_t weir_msg_nbytes(const weir_msg *m);

typedef struct {
    char *name; /* stream name, e.g. "xrd" */
    char *typ;  /* dranspose typ, e.g. "STINS" */
    weir_msg msg;
} weir_stream_packet;

typedef struct weir_event {
    uint64_t number;
    size_t nstreams;
    size_t cap;
    weir_stream_packet *streams;
    /* created_at as given by the source (RFC 3339 text) or NULL. */
    char *created_at;
} weir_event;

weir_event *weir_event_new(uint64_t number);
/* Adds a stream; copies name and typ, takes over msg's frames (msg is left
 * empty). WEIR_EDUPLICATE if the stream name is already present. */
int weir_event_add_stream(weir_event *ev, const char *name, const char *typ, weir_msg *msg);
/* Moves all streams of src into dst (src left empty). WEIR_EDUPLICATE if a
 * name occurs in both (dst unchanged for that stream, src keeps it). */
int weir_event_merge(weir_event *dst, weir_event *src);
const weir_stream_packet *weir_event_stream(const weir_event *ev, const char *name);
size_t weir_event_nbytes(const weir_event *ev);
void weir_event_free(weir_event *ev);

#endif
