/* chan.h (internal) — how role code sends and receives messages.
 *
 * The source, worker and reducer loops only see this interface: a bounded
 * channel of envelopes with blocking send (back-pressure), receive with a
 * timeout, and close. The thread transport (chan_queue.c) implements it with
 * a ring buffer; an MPI transport can implement the same operations over
 * ranks without touching the role code. */
#ifndef WEIR_RUNTIME_CHAN_H
#define WEIR_RUNTIME_CHAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/buffer.h"
#include "weir/message.h"

typedef enum {
    ENV_EVENT = 1,   /* source → worker: an event */
    ENV_END,         /* source → worker: no more events */
    ENV_RESULT,      /* worker → reducer: an encoded result */
    ENV_WORKER_DONE, /* worker → reducer: this worker has finished */
} env_kind;

/* An event shared by one or more workers (the broadcast first event). */
typedef struct {
    weir_event *ev;
    atomic_int refs;
    size_t nbytes;
} shared_event;

shared_event *shared_event_new(weir_event *ev, int refs);
void shared_event_unref(shared_event *s);

typedef struct {
    env_kind kind;
    int worker;
    shared_event *sev; /* ENV_EVENT */
    weir_buf *result;  /* ENV_RESULT */
} envelope;

/* Drops what an envelope holds. */
void envelope_clear(envelope *e);

typedef struct chan chan;

typedef struct {
    /* Blocks while full; adds the time blocked to *blocked_s. WEIR_ECLOSED if
     * the channel was closed (the envelope is then still the caller's). */
    int (*send)(chan *c, envelope *e, double *blocked_s);
    /* Waits up to timeout_ms (-1 forever): 0 with *e, WEIR_ECLOSED when closed
     * and empty, 1 on timeout. */
    int (*recv)(chan *c, envelope *e, int timeout_ms);
    size_t (*fill)(chan *c, size_t *max_fill, size_t *capacity);
    void (*close)(chan *c);
    void (*destroy)(chan *c);
} chan_ops;

struct chan {
    const chan_ops *ops;
};

/* The in-process transport: a bounded ring buffer. */
chan *chan_queue_new(size_t capacity);

#endif
