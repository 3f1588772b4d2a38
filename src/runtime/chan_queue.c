/* chan_queue.c — the in-process transport: a bounded multi-producer,
 * multi-consumer ring buffer of envelopes with a mutex and two condition
 * variables. A full queue blocks the sender, which is how back-pressure
 * travels from a slow reducer through the workers to the source. */
#include "chan.h"

#include "weir/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    chan base;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    envelope *ring;
    size_t cap, head, count, max_fill;
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
        while (q->count == q->cap && !q->closed)
            pthread_cond_wait(&q->not_full, &q->mu);
        if (blocked_s) *blocked_s += now_s() - t0;
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return WEIR_ECLOSED;
    }
    q->ring[(q->head + q->count) % q->cap] = *e;
    q->count++;
    if (q->count > q->max_fill) q->max_fill = q->count;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return WEIR_OK;
}

static int q_recv(chan *c, envelope *e, int timeout_ms)
{
    queue *q = (queue *)c;
    struct timespec dl;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->not_empty, &q->mu);
        } else if (pthread_cond_timedwait(&q->not_empty, &q->mu, &dl) == ETIMEDOUT) {
            if (q->count == 0) {
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
    pthread_cond_signal(&q->not_full);
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
