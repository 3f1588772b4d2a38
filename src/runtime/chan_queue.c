/* chan_queue.c — the in-process transport: a bounded multi-producer,
 * multi-consumer ring buffer of envelopes with a mutex and two condition
 * variables. A full queue blocks the sender, which is how back-pressure
 * travels from a slow reducer through the workers to the source.
 *
 * Wake-ups are batched, because on a small machine a thread switch per event
 * costs more than the event: a blocked sender is woken only once the queue
 * has drained to half, and a waiting receiver only once a quarter of the
 * queue is filled — unless the receiver has already been idle for
 * IDLE_WAKE_S (20 us): then events are trickling in and each is handed over at
 * once, so a slow stream sees tens of microseconds of added latency, not a
 * batch's worth. Receivers also wait in slices of at most WAIT_SLICE_MS and
 * look again, so nothing can be stranded. */
#include "chan.h"

#include "weir/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define WAIT_SLICE_MS 2
#define IDLE_WAKE_S 20e-6

typedef struct {
    chan base;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    envelope *ring;
    size_t cap, head, count, max_fill;
    size_t wake_receiver_at, wake_sender_at;
    int receivers_waiting, senders_waiting;
    double idle_since; /* when the first receiver began waiting on the empty queue */
    int closed;
} queue;

shared_event *shared_event_new(weir_event *ev, int refs)
{
    shared_event *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->ev = ev;
    s->nbytes = weir_event_nbytes(ev);
    atomic_init(&s->refs, refs);
    return s;
}

void shared_event_unref(shared_event *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        weir_event_free(s->ev);
        free(s);
    }
}

void envelope_clear(envelope *e)
{
    shared_event_unref(e->sev);
    weir_buf_unref(e->result);
    e->sev = NULL;
    e->result = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int q_send(chan *c, envelope *e, double *blocked_s)
{
    queue *q = (queue *)c;
    pthread_mutex_lock(&q->mu);
    if (q->count == q->cap && !q->closed) {
        double t0 = now_s();
        q->senders_waiting++;
        while (q->count == q->cap && !q->closed)
            pthread_cond_wait(&q->not_full, &q->mu);
        q->senders_waiting--;
        if (blocked_s) *blocked_s += now_s() - t0;
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return WEIR_ECLOSED;
    }
    q->ring[(q->head + q->count) % q->cap] = *e;
    q->count++;
    if (q->count > q->max_fill) q->max_fill = q->count;
    if (q->receivers_waiting &&
        (q->count >= q->wake_receiver_at || now_s() - q->idle_since >= IDLE_WAKE_S))
        pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return WEIR_OK;
}

static void add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) t->tv_sec++, t->tv_nsec -= 1000000000L;
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int q_recv(chan *c, envelope *e, int timeout_ms)
{
    queue *q = (queue *)c;
    struct timespec dl, slice;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        add_ms(&dl, timeout_ms);
    }
    pthread_mutex_lock(&q->mu);
    if (q->count == 0 && !q->closed && !q->receivers_waiting) q->idle_since = now_s();
    while (q->count == 0 && !q->closed) {
        clock_gettime(CLOCK_MONOTONIC, &slice);
        add_ms(&slice, WAIT_SLICE_MS);
        if (timeout_ms >= 0 && before(&dl, &slice)) slice = dl;
        q->receivers_waiting++;
        int w = pthread_cond_timedwait(&q->not_empty, &q->mu, &slice);
        q->receivers_waiting--;
        if (w == ETIMEDOUT && q->count == 0 && timeout_ms >= 0) {
            struct timespec nowt;
            clock_gettime(CLOCK_MONOTONIC, &nowt);
            if (!before(&nowt, &dl)) {
                pthread_mutex_unlock(&q->mu);
                return 1;
            }
        }
    }
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return WEIR_ECLOSED;
    }
    *e = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    if (q->senders_waiting && q->count <= q->wake_sender_at) pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return WEIR_OK;
}

static size_t q_fill(chan *c, size_t *max_fill, size_t *capacity)
{
    queue *q = (queue *)c;
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    if (max_fill) *max_fill = q->max_fill;
    if (capacity) *capacity = q->cap;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void q_close(chan *c)
{
    queue *q = (queue *)c;
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

static void q_destroy(chan *c)
{
    queue *q = (queue *)c;
    if (!q) return;
    for (size_t i = 0; i < q->count; i++)
        envelope_clear(&q->ring[(q->head + i) % q->cap]);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->ring);
    free(q);
}

static const chan_ops queue_ops = {q_send, q_recv, q_fill, q_close, q_destroy};

chan *chan_queue_new(size_t capacity)
{
    queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->cap = capacity ? capacity : 1;
    q->wake_receiver_at = q->cap >= 4 ? q->cap / 4 : 1;
    q->wake_sender_at = q->cap / 2;
    q->ring = calloc(q->cap, sizeof *q->ring);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!q->ring || pthread_mutex_init(&q->mu, NULL) || pthread_cond_init(&q->not_empty, &ca) ||
        pthread_cond_init(&q->not_full, &ca)) {
        pthread_condattr_destroy(&ca);
        free(q->ring);
        free(q);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    q->base.ops = &queue_ops;
    return &q->base;
}
