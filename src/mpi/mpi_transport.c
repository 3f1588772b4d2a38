/* mpi_transport.c — the engine's channels over MPI, and the rank layout.
 *
 * Rank 0 runs the source, rank N-1 the reducer, ranks 1..N-2 the workers
 * (T threads each: worker slot g lives on rank 1 + g / T). The engine's role
 * loops are unchanged; this file only provides chan implementations:
 *
 *   ev_send   (rank 0, one per slot)   event → header message, then each
 *                                      frame as a message sent from where it
 *                                      lies; waits for a credit when `window`
 *                                      events are in flight
 *   ev_recv   (worker rank, per slot)  the reverse; a credit goes back as soon
 *                                      as the worker thread has the event
 *   res_send  (worker rank, shared)    result CBOR bytes / worker-done, with
 *                                      a window of its own
 *   res_recv  (reducer rank)           results from any rank; answers credits;
 *                                      watches heartbeats and slot deaths
 *
 * Waiting is done by polling MPI_Iprobe with a short, growing sleep: blocking
 * receives spin in Open MPI and would starve the other threads and ranks
 * on an oversubscribed machine.
 *
 * A slot that returns no credit for rank_timeout_s while the source has an
 * event for it is declared dead: the run aborts with the rank and the events
 * in flight named, or (continue_without) the slot is skipped, its events are
 * counted lost and the reducer is told not to wait for it. Worker ranks send
 * heartbeats to the reducer, which catches a rank that stops after the source
 * is done with it. */
#include "mpi_internal.h"

#include "../runtime/engine_internal.h"
#include "weir/error.h"
#include "weir/log.h"

#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMP "mpi"
#define TAG_RES 10
#define TAG_RES_CREDIT 11
#define TAG_HEARTBEAT 12
#define TAG_DONE 13
#define TAG_SLOT_DEAD 14
#define TAG_STATS 15
#define TAG_EV_BASE 100
#define TAG_EV_HDR(slot) (TAG_EV_BASE + 3 * (slot))
#define TAG_EV_PAY(slot) (TAG_EV_BASE + 3 * (slot) + 1)
#define TAG_EV_CREDIT(slot) (TAG_EV_BASE + 3 * (slot) + 2)
#define KIND_EVENT 1u
#define KIND_END 2u
#define MAGIC 0x31564557u /* "WEV1" */

int weir_mpi_compiled(void)
{
    return 1;
}

int weir_mpi_launched(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s) s = getenv("PMI_SIZE");
    return s && atoi(s) > 1;
}

int weir_mpi_init(int *argc, char ***argv, int *rank, int *size, char *err, size_t errlen)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        snprintf(err, errlen, "MPI_Init_thread failed");
        return WEIR_EIO;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    if (provided < MPI_THREAD_MULTIPLE) {
        snprintf(err, errlen, "this MPI does not provide MPI_THREAD_MULTIPLE (got level %d)",
                 provided);
        return WEIR_EUNSUPPORTED;
    }
    return WEIR_OK;
}

void weir_mpi_finalize(void)
{
    MPI_Finalize();
}

void weir_mpi_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}

/* ---- shared state of one run on one rank --------------------------------- */

typedef struct {
    MPI_Comm comm;
    int rank, size, T, nslots, reducer;
    weir_mpi_opts o;
    weir_engine *e;
    pthread_mutex_t mu; /* guards lost */
    uint64_t lost;
    char lost_text[200];
    unsigned char *dead;    /* per slot, source side */
    int must_abort;         /* rank 0: a rank is stuck; finalising would hang */
    struct ev_send **sends; /* rank 0: per slot */
} mrun;

static int slot_rank(const mrun *m, int slot)
{
    return 1 + slot / m->T;
}

/* Waiting by polling: for the first 0.5 ms only yield the CPU (a large
 * message is moved in steps, each needing a poll on both sides, so sleeping
 * there would cap the bandwidth), then sleep 20 µs growing to 1 ms. */
typedef struct {
    double t0;
    long ns;
} poller;

static poller poll_start(void)
{
    return (poller){engine_now(), 20000};
}

static void poll_wait(poller *p)
{
    if (engine_now() - p->t0 < 0.0005) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, p->ns};
    nanosleep(&ts, NULL);
    if (p->ns < 1000000) p->ns *= 2;
}

/* A send that gives up after the rank timeout: a blocking MPI_Send to a rank
 * whose receiving thread is stuck blocks forever once the transport's
 * buffers are full. Returns 0, or 1 on timeout (the request is then left
 * pending and its buffer must stay alive: the caller leaks it, and the job
 * ends with MPI_Abort). */
static int send_timed(const void *buf, int count, MPI_Datatype t, int peer, int tag, mrun *m)
{
    MPI_Request req;
    MPI_Isend(buf, count, t, peer, tag, m->comm, &req);
    double t0 = engine_now();
    poller pw = poll_start();
    for (;;) {
        int done = 0;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return 0;
        if (engine_now() - t0 > m->o.rank_timeout_s) return 1;
        poll_wait(&pw);
    }
}

static void note_lost(mrun *m, uint64_t ev)
{
    pthread_mutex_lock(&m->mu);
    m->lost++;
    size_t l = strlen(m->lost_text);
    if (l < sizeof m->lost_text - 24)
        snprintf(m->lost_text + l, sizeof m->lost_text - l, "%s%llu", l ? ", " : "",
                 (unsigned long long)ev);
    else if (l < sizeof m->lost_text - 4)
        strcat(m->lost_text, ", …");
    pthread_mutex_unlock(&m->mu);
}

/* ---- event header -------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} wbuf;

static int put(wbuf *w, const void *d, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *np = realloc(w->p, cap);
        if (!np) return WEIR_ENOMEM;
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
    return WEIR_OK;
}

static int put_str(wbuf *w, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    int rc = put(w, &n, 4);
    return rc ? rc : put(w, s ? s : "", n);
}

static int encode_header(const weir_event *ev, uint32_t kind, uint32_t seq, wbuf *w,
                         size_t *payload)
{
    uint32_t magic = MAGIC, ns = ev ? (uint32_t)ev->nstreams : 0;
    uint64_t num = ev ? ev->number : 0;
    int rc = put(w, &magic, 4);
    if (!rc) rc = put(w, &kind, 4);
    if (!rc) rc = put(w, &seq, 4); /* the parameter set the event travels under */
    if (!rc) rc = put(w, &num, 8);
    if (!rc) rc = put(w, &ns, 4);
    *payload = 0;
    for (uint32_t s = 0; !rc && s < ns; s++) {
        const weir_stream_packet *sp = &ev->streams[s];
        uint32_t np = (uint32_t)sp->msg.nparts;
        rc = put_str(w, sp->name);
        if (!rc) rc = put_str(w, sp->typ);
        if (!rc) rc = put(w, &np, 4);
        for (uint32_t i = 0; !rc && i < np; i++) {
            uint64_t sz = weir_buf_size(sp->msg.parts[i]);
            rc = put(w, &sz, 8);
            *payload += sz;
        }
    }
    if (!rc) rc = put_str(w, ev ? ev->created_at : NULL);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t len, off;
} rbuf;

static int get(rbuf *r, void *d, size_t n)
{
    if (r->len - r->off < n) return WEIR_ETRUNCATED;
    memcpy(d, r->p + r->off, n);
    r->off += n;
    return WEIR_OK;
}

static int get_str(rbuf *r, char **s)
{
    uint32_t n;
    if (get(r, &n, 4) || r->len - r->off < n) return WEIR_ETRUNCATED;
    *s = strndup((const char *)r->p + r->off, n);
    r->off += n;
    return *s ? WEIR_OK : WEIR_ENOMEM;
}

/* ---- ev_send: rank 0 → one worker slot ------------------------------------ */

typedef struct ev_send {
    chan base;
    mrun *m;
    int slot, peer, in_flight, dead;
    uint64_t *ring; /* event numbers in flight, oldest first */
    int head;
} ev_send;

static void drain_credits(ev_send *c)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(c->peer, TAG_EV_CREDIT(c->slot), c->m->comm, &flag, &st);
        if (!flag) return;
        int n;
        MPI_Recv(&n, 1, MPI_INT, c->peer, TAG_EV_CREDIT(c->slot), c->m->comm, MPI_STATUS_IGNORE);
        c->in_flight -= n;
        c->head = (c->head + n) % c->m->o.window;
    }
}

static void declare_dead(ev_send *c, double waited)
{
    mrun *m = c->m;
    char evs[160] = "";
    size_t l = 0;
    for (int i = 0; i < c->in_flight && l < sizeof evs - 24; i++)
        l += (size_t)snprintf(evs + l, sizeof evs - l, "%s%llu", i ? ", " : "",
                              (unsigned long long)c->ring[(c->head + i) % m->o.window]);
    WEIR_LOGE(COMP,
              "worker rank %d (slot %d) took no event for %.1f s: dead or hung; %d event(s) "
              "sent to it are lost: %s",
              c->peer, c->slot, waited, c->in_flight, evs);
    for (int i = 0; i < c->in_flight; i++)
        note_lost(m, c->ring[(c->head + i) % m->o.window]);
    c->dead = 1;
    m->dead[c->slot] = 1;
    if (!m->o.continue_without) {
        fprintf(stderr,
                "weir: FAILED: worker rank %d stopped taking events (timeout %.1f s); lost "
                "events: %s\n",
                c->peer, m->o.rank_timeout_s, evs);
        weir_mpi_abort(4);
    }
    /* the reducer must not wait for this slot's worker-done */
    int slot = c->slot;
    MPI_Send(&slot, 1, MPI_INT, m->reducer, TAG_SLOT_DEAD, m->comm);
}

static int es_send(chan *ch, envelope *env, double *blocked_s)
{
    ev_send *c = (ev_send *)ch;
    mrun *m = c->m;
    if (c->dead) {
        if (env->kind == ENV_EVENT) note_lost(m, env->sev->ev->number);
        return WEIR_ECLOSED;
    }
    uint32_t kind = env->kind == ENV_END ? KIND_END : KIND_EVENT;
    if (kind == KIND_EVENT) {
        drain_credits(c);
        double t0 = engine_now();
        poller pw = poll_start();
        while (c->in_flight >= m->o.window) {
            poll_wait(&pw);
            drain_credits(c);
            double waited = engine_now() - t0;
            if (c->in_flight >= m->o.window && waited > m->o.rank_timeout_s) {
                declare_dead(c, waited);
                note_lost(m, env->sev->ev->number);
                return WEIR_ECLOSED;
            }
        }
        if (blocked_s) *blocked_s += engine_now() - t0;
    }
    const weir_event *ev = kind == KIND_EVENT ? env->sev->ev : NULL;
    wbuf w = {0};
    size_t payload = 0;
    uint32_t seq = kind == KIND_EVENT ? cp_event_seq(m->o.cp) : 0;
    int rc = encode_header(ev, kind, seq, &w, &payload);
    if (!rc && payload > (size_t)INT32_MAX) rc = WEIR_ERANGE;
    int stuck = 0;
    if (!rc) stuck = send_timed(w.p, (int)w.len, MPI_BYTE, c->peer, TAG_EV_HDR(c->slot), m);
    /* Each frame goes as its own contiguous message straight from where it
     * lies (a contiguous buffer lets Open MPI use its single-copy path;
     * a derived datatype over all frames would be packed through bounce
     * buffers). MPI keeps their order on the tag. */
    for (size_t st = 0; !rc && !stuck && ev && st < ev->nstreams; st++)
        for (size_t i = 0; !stuck && i < ev->streams[st].msg.nparts; i++) {
            weir_buf *b = ev->streams[st].msg.parts[i];
            if (weir_buf_size(b))
                stuck = send_timed(weir_buf_data(b), (int)weir_buf_size(b), MPI_BYTE, c->peer,
                                   TAG_EV_PAY(c->slot), m);
        }
    if (stuck) {
        /* the peer stopped receiving: its pending request still points at
         * w.p and the frames, so both are deliberately not freed */
        shared_event *keep = env->sev;
        env->sev = NULL;
        (void)keep;
        if (kind == KIND_EVENT) note_lost(m, ev->number);
        declare_dead(c, m->o.rank_timeout_s);
        return WEIR_ECLOSED;
    }
    free(w.p);
    if (rc) return rc;
    if (kind == KIND_EVENT) {
        c->ring[(c->head + c->in_flight) % m->o.window] = ev->number;
        c->in_flight++;
    }
    envelope_clear(env);
    return WEIR_OK;
}

static size_t es_fill(chan *ch, size_t *max_fill, size_t *cap)
{
    ev_send *c = (ev_send *)ch;
    if (!c->dead) drain_credits(c);
    if (max_fill) *max_fill = (size_t)c->m->o.window;
    if (cap) *cap = (size_t)c->m->o.window;
    return c->dead ? SIZE_MAX / 2 : (size_t)c->in_flight;
}

static int no_recv(chan *c, envelope *e, int t)
{
    return WEIR_EINVAL;
}

static int no_send(chan *c, envelope *e, double *b)
{
    return WEIR_EINVAL;
}

static void nop_close(chan *c) {}

static void es_destroy(chan *ch)
{
    ev_send *c = (ev_send *)ch;
    free(c->ring);
    free(c);
}

static const chan_ops ev_send_ops = {es_send, no_recv, es_fill, nop_close, es_destroy};

/* ---- ev_recv: a worker slot's input ---------------------------------------- */

typedef struct {
    chan base;
    mrun *m;
    int slot;
    int ended;
    int owe_credit; /* the previous event is finished once we are asked again */
} ev_recv;

static int er_recv(chan *ch, envelope *env, int timeout_ms)
{
    ev_recv *c = (ev_recv *)ch;
    mrun *m = c->m;
    if (c->owe_credit) {
        /* the worker thread asks for more: the previous event is done. A
         * credit per finished event is the pull: an idle slot asks for work,
         * and the source knows exactly which events a dead slot held. */
        int one = 1;
        MPI_Send(&one, 1, MPI_INT, 0, TAG_EV_CREDIT(c->slot), m->comm);
        c->owe_credit = 0;
    }
    if (c->ended) return WEIR_ECLOSED;
    MPI_Status st;
    int flag = 0;
    poller pw = poll_start();
    for (;;) {
        MPI_Iprobe(0, TAG_EV_HDR(c->slot), m->comm, &flag, &st);
        if (flag) break;
        poll_wait(&pw);
    }
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    uint8_t *hdr = malloc(n ? (size_t)n : 1);
    if (!hdr) return WEIR_ENOMEM;
    MPI_Recv(hdr, n, MPI_BYTE, 0, TAG_EV_HDR(c->slot), m->comm, MPI_STATUS_IGNORE);
    rbuf r = {hdr, (size_t)n, 0};
    uint32_t magic = 0, kind = 0, ns_ = 0, seq = 0;
    uint64_t num = 0;
    int rc = get(&r, &magic, 4);
    if (!rc) rc = get(&r, &kind, 4);
    if (!rc) rc = get(&r, &seq, 4);
    if (!rc) rc = get(&r, &num, 8);
    if (!rc) rc = get(&r, &ns_, 4);
    if (!rc && magic != MAGIC) rc = WEIR_EFORMAT;
    if (!rc && kind == KIND_END) {
        free(hdr);
        c->ended = 1;
        return WEIR_ECLOSED;
    }
    weir_event *ev = rc ? NULL : weir_event_new(num);
    if (!rc && !ev) rc = WEIR_ENOMEM;
    /* names and frame sizes first; the frames follow as messages of their own */
    char **names = calloc(ns_ + 1, sizeof *names), **typs = calloc(ns_ + 1, sizeof *typs);
    uint32_t *nps = calloc(ns_ + 1, sizeof *nps);
    uint64_t **sizes = calloc(ns_ + 1, sizeof *sizes);
    size_t total = 0;
    if (!names || !typs || !nps || !sizes) rc = WEIR_ENOMEM;
    for (uint32_t s = 0; !rc && s < ns_; s++) {
        rc = get_str(&r, &names[s]);
        if (!rc) rc = get_str(&r, &typs[s]);
        if (!rc) rc = get(&r, &nps[s], 4);
        if (!rc && nps[s] > (r.len - r.off) / 8) rc = WEIR_EFORMAT;
        if (!rc && !(sizes[s] = calloc(nps[s] + 1, 8))) rc = WEIR_ENOMEM;
        for (uint32_t i = 0; !rc && i < nps[s]; i++) {
            rc = get(&r, &sizes[s][i], 8);
            total += sizes[s][i];
        }
    }
    if (!rc) rc = get_str(&r, &ev->created_at);
    if (!rc && ev->created_at && !*ev->created_at) {
        free(ev->created_at);
        ev->created_at = NULL;
    }
    weir_buf *pay = NULL;
    if (!rc && total) {
        pay = weir_buf_new(total);
        if (!pay) rc = WEIR_ENOMEM;
        /* one message per frame, in order, into one buffer */
        size_t at = 0;
        for (uint32_t s = 0; !rc && s < ns_; s++)
            for (uint32_t i = 0; i < nps[s]; i++) {
                if (sizes[s][i])
                    MPI_Recv(weir_buf_mutable(pay) + at, (int)sizes[s][i], MPI_BYTE, 0,
                             TAG_EV_PAY(c->slot), m->comm, MPI_STATUS_IGNORE);
                at += sizes[s][i];
            }
    }
    size_t off = 0;
    for (uint32_t s = 0; !rc && s < ns_; s++) {
        weir_msg msg;
        weir_msg_init(&msg);
        for (uint32_t i = 0; !rc && i < nps[s]; i++) {
            weir_buf *v = sizes[s][i] ? weir_buf_view(pay, off, sizes[s][i]) : weir_buf_new(0);
            off += sizes[s][i];
            rc = v ? weir_msg_append(&msg, v) : WEIR_ENOMEM;
        }
        if (!rc) rc = weir_event_add_stream(ev, names[s], typs[s], &msg);
        weir_msg_clear(&msg);
    }
    weir_buf_unref(pay);
    for (uint32_t s = 0; s < ns_ && names; s++) {
        free(names[s]);
        if (typs) free(typs[s]);
        if (sizes) free(sizes[s]);
    }
    free(names);
    free(typs);
    free(nps);
    free(sizes);
    free(hdr);
    c->owe_credit = 1;
    if (rc) {
        weir_event_free(ev);
        WEIR_LOGE(COMP, "slot %d: malformed event message from rank 0: %s", c->slot,
                  weir_strerror(rc));
        return rc;
    }
    /* a parameter change sent before this event applies from it on */
    cp_wait_seq(m->o.cp, seq);
    shared_event *se = shared_event_new(ev, 1);
    if (!se) {
        weir_event_free(ev);
        return WEIR_ENOMEM;
    }
    *env = (envelope){.kind = ENV_EVENT, .worker = c->slot, .sev = se};
    return WEIR_OK;
}

static size_t zero_fill(chan *c, size_t *max_fill, size_t *cap)
{
    if (max_fill) *max_fill = 0;
    if (cap) *cap = 0;
    return 0;
}

static void free_chan(chan *c)
{
    free(c);
}

static const chan_ops ev_recv_ops = {no_send, er_recv, zero_fill, nop_close, free_chan};

/* ---- res_send: worker rank → reducer --------------------------------------- */

typedef struct {
    chan base;
    mrun *m;
    pthread_mutex_t mu;
    int in_flight, window;
} res_send;

static int rs_send(chan *ch, envelope *env, double *blocked_s)
{
    res_send *c = (res_send *)ch;
    mrun *m = c->m;
    pthread_mutex_lock(&c->mu);
    double t0 = engine_now();
    poller pw = poll_start();
    for (;;) {
        int flag = 1;
        while (flag) {
            MPI_Iprobe(m->reducer, TAG_RES_CREDIT, m->comm, &flag, MPI_STATUS_IGNORE);
            if (flag) {
                int n;
                MPI_Recv(&n, 1, MPI_INT, m->reducer, TAG_RES_CREDIT, m->comm, MPI_STATUS_IGNORE);
                c->in_flight -= n;
            }
        }
        if (env->kind != ENV_RESULT || c->in_flight < c->window) break;
        poll_wait(&pw);
    }
    if (blocked_s) *blocked_s += engine_now() - t0;
    if (env->kind == ENV_RESULT) {
        MPI_Send(weir_buf_data(env->result), (int)weir_buf_size(env->result), MPI_BYTE, m->reducer,
                 TAG_RES, m->comm);
        c->in_flight++;
    } else {
        int slot = env->worker;
        MPI_Send(&slot, 1, MPI_INT, m->reducer, TAG_DONE, m->comm);
    }
    pthread_mutex_unlock(&c->mu);
    envelope_clear(env);
    return WEIR_OK;
}

static void rs_destroy(chan *ch)
{
    res_send *c = (res_send *)ch;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const chan_ops res_send_ops = {rs_send, no_recv, zero_fill, nop_close, rs_destroy};

/* ---- res_recv: the reducer's input ------------------------------------------- */

typedef struct {
    chan base;
    mrun *m;
    double *last_beat;          /* per rank */
    int *busy_ms;               /* per rank: from its last heartbeat */
    unsigned char *done, *gone; /* per slot: worker-done seen; per rank: declared gone */
    envelope *pending;          /* worker-done envelopes owed for gone ranks */
    int npending;
} res_recv;

static void rank_gone(res_recv *c, int rank, const char *why)
{
    mrun *m = c->m;
    c->gone[rank] = 1;
    WEIR_LOGE(COMP, "worker rank %d: %s", rank, why);
    if (!m->o.continue_without) {
        fprintf(stderr, "weir: FAILED: worker rank %d: %s; its unfinished events are lost\n", rank,
                why);
        weir_mpi_abort(4);
    }
    for (int s = 0; s < m->nslots; s++)
        if (slot_rank(m, s) == rank && !c->done[s]) {
            c->done[s] = 1;
            c->pending[c->npending++] = (envelope){.kind = ENV_WORKER_DONE, .worker = s};
        }
}

static int rr_recv(chan *ch, envelope *env, int timeout_ms)
{
    res_recv *c = (res_recv *)ch;
    mrun *m = c->m;
    double deadline = timeout_ms >= 0 ? engine_now() + timeout_ms / 1000.0 : 0;
    poller pw = poll_start();
    for (;;) {
        if (c->npending) {
            *env = c->pending[--c->npending];
            return WEIR_OK;
        }
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, m->comm, &flag, &st);
        if (flag) {
            int src = st.MPI_SOURCE, n;
            MPI_Get_count(&st, MPI_BYTE, &n);
            c->last_beat[src] = engine_now();
            if (st.MPI_TAG == TAG_RES) {
                weir_buf *b = weir_buf_new((size_t)n);
                if (!b) return WEIR_ENOMEM;
                MPI_Recv(weir_buf_mutable(b), n, MPI_BYTE, src, TAG_RES, m->comm,
                         MPI_STATUS_IGNORE);
                int one = 1;
                MPI_Send(&one, 1, MPI_INT, src, TAG_RES_CREDIT, m->comm);
                *env = (envelope){.kind = ENV_RESULT, .worker = -1, .result = b};
                return WEIR_OK;
            }
            int v = 0;
            MPI_Recv(&v, n >= 4 ? 1 : 0, MPI_INT, src, st.MPI_TAG, m->comm, MPI_STATUS_IGNORE);
            if (st.MPI_TAG == TAG_DONE && v >= 0 && v < m->nslots && !c->done[v]) {
                c->done[v] = 1;
                *env = (envelope){.kind = ENV_WORKER_DONE, .worker = v};
                return WEIR_OK;
            }
            if (st.MPI_TAG == TAG_SLOT_DEAD && v >= 0 && v < m->nslots && !c->done[v]) {
                c->done[v] = 1;
                *env = (envelope){.kind = ENV_WORKER_DONE, .worker = v};
                return WEIR_OK;
            }
            if (st.MPI_TAG == TAG_HEARTBEAT) c->busy_ms[src] = v;
            continue;
        }
        /* heartbeats: a rank with unfinished slots that went quiet */
        double now = engine_now();
        for (int r = 1; r < m->reducer; r++) {
            int silent = now - c->last_beat[r] > m->o.rank_timeout_s;
            int stuck = c->busy_ms[r] > (int)(m->o.rank_timeout_s * 1000);
            if (c->gone[r] || (!silent && !stuck)) continue;
            int open = 0;
            for (int s = 0; s < m->nslots; s++)
                if (slot_rank(m, s) == r && !c->done[s]) open = 1;
            if (open) {
                char why[120];
                if (silent)
                    snprintf(why, sizeof why, "no heartbeat for %.1f s (dead or hung)",
                             now - c->last_beat[r]);
                else
                    snprintf(why, sizeof why,
                             "a worker has been inside one plug-in call for %.1f s (hung)",
                             c->busy_ms[r] / 1000.0);
                rank_gone(c, r, why);
            }
        }
        if (c->npending) continue;
        if (timeout_ms >= 0 && engine_now() >= deadline) return 1;
        poll_wait(&pw);
    }
}

static void rr_destroy(chan *ch)
{
    res_recv *c = (res_recv *)ch;
    free(c->last_beat);
    free(c->busy_ms);
    free(c->done);
    free(c->gone);
    free(c->pending);
    free(c);
}

static const chan_ops res_recv_ops = {no_send, rr_recv, zero_fill, nop_close, rr_destroy};

/* ---- heartbeats ------------------------------------------------------------------- */

typedef struct {
    mrun *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} beat;

static void *beat_main(void *arg)
{
    beat *b = arg;
    double period = b->m->o.rank_timeout_s / 4;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mu);
        /* the beat carries how long (ms) the longest-running callback has been
         * busy, so the reducer can tell a hung plug-in from an idle rank */
        int busy_ms = (int)(engine_longest_busy(b->m->e) * 1000.0);
        MPI_Send(&busy_ms, 1, MPI_INT, b->m->reducer, TAG_HEARTBEAT, b->m->comm);
        pthread_mutex_lock(&b->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        double t = dl.tv_sec + dl.tv_nsec * 1e-9 + period;
        dl.tv_sec = (time_t)t;
        dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
        if (!b->stop) pthread_cond_timedwait(&b->cv, &b->mu, &dl);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- the run ------------------------------------------------------------------------ */

void mpi_merge_stats(weir_stats *dst, const weir_stats *src, int nslots)
{
    const weir_stage_stats *a[] = {&src->source, &src->reducer};
    weir_stage_stats *b[] = {&dst->source, &dst->reducer};
    for (int k = 0; k < 2; k++)
        if (a[k]->events_in || a[k]->rejected || a[k]->events_out) *b[k] = *a[k];
    for (int i = 0; i < nslots && i < 64; i++)
        if (src->worker[i].events_in || src->worker[i].rejected) dst->worker[i] = src->worker[i];
    if (src->timer_calls) dst->timer_calls = src->timer_calls;
    if (src->wall_seconds > dst->wall_seconds) dst->wall_seconds = src->wall_seconds;
    if (src->error && !dst->error) {
        dst->error = src->error;
        memcpy(dst->error_text, src->error_text, sizeof dst->error_text);
    }
}

void mpi_sum_workers(weir_stats *s)
{
    memset(&s->workers_total, 0, sizeof s->workers_total);
    for (int i = 0; i < s->nworkers && i < 64; i++) {
        const weir_stage_stats *w = &s->worker[i];
        weir_stage_stats *t = &s->workers_total;
        t->events_in += w->events_in;
        t->bytes_in += w->bytes_in;
        t->events_out += w->events_out;
        t->bytes_out += w->bytes_out;
        t->results += w->results;
        t->rejected += w->rejected;
        t->user_seconds += w->user_seconds;
        t->blocked_seconds += w->blocked_seconds;
    }
}

int weir_mpi_run(const weir_engine_config *cfg0, const weir_mpi_opts *o, weir_source *src,
                 weir_stats *stats, uint64_t *lost, char *err, size_t errlen)
{
    mrun m;
    memset(&m, 0, sizeof m);
    MPI_Comm_rank(MPI_COMM_WORLD, &m.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m.size);
    if (m.size < 3) {
        snprintf(err, errlen, "MPI mode needs at least 3 ranks (source, worker, reducer); got %d",
                 m.size);
        return WEIR_EINVAL;
    }
    m.o = *o;
    if (m.o.threads_per_rank < 1) m.o.threads_per_rank = 1;
    if (m.o.window < 1) m.o.window = 4;
    if (m.o.rank_timeout_s <= 0) m.o.rank_timeout_s = 30;
    m.T = m.o.threads_per_rank;
    m.nslots = (m.size - 2) * m.T;
    m.reducer = m.size - 1;
    pthread_mutex_init(&m.mu, NULL);
    MPI_Comm_dup(MPI_COMM_WORLD, &m.comm);
    weir_engine_config cfg = *cfg0;
    cfg.nworkers = m.nslots;
    /* the reducer publishes straight into the server's store when it serves */
    if (m.rank == m.reducer && cp_local_results(m.o.cp)) cfg.results = cp_local_results(m.o.cp);
    int rc = weir_engine_new(&cfg, &m.e, err, errlen);
    unsigned char *local = calloc((size_t)m.nslots, 1);
    m.dead = calloc((size_t)m.nslots, 1);
    m.sends = calloc((size_t)m.nslots, sizeof *m.sends);
    beat hb = {.m = &m};
    pthread_t hb_thread;
    int hb_started = 0;
    if (!rc && (!local || !m.dead || !m.sends)) rc = WEIR_ENOMEM;
    if (rc) goto sync;
    int is_source = m.rank == 0, is_reducer = m.rank == m.reducer;
    for (int s = 0; s < m.nslots; s++)
        local[s] = (unsigned char)(slot_rank(&m, s) == m.rank);
    engine_set_roles(m.e, is_source, is_reducer, local);
    for (int s = 0; s < m.nslots && !rc; s++) {
        if (is_source) {
            ev_send *c = calloc(1, sizeof *c);
            if (c) c->ring = calloc((size_t)m.o.window, sizeof *c->ring);
            if (!c || !c->ring) {
                free(c);
                rc = WEIR_ENOMEM;
                break;
            }
            c->base.ops = &ev_send_ops;
            c->m = &m;
            c->slot = s;
            c->peer = slot_rank(&m, s);
            m.sends[s] = c;
            engine_replace_chan(m.e, s, &c->base);
        } else if (local[s]) {
            ev_recv *c = calloc(1, sizeof *c);
            if (!c) {
                rc = WEIR_ENOMEM;
                break;
            }
            c->base.ops = &ev_recv_ops;
            c->m = &m;
            c->slot = s;
            engine_replace_chan(m.e, s, &c->base);
        }
    }
    if (!rc && is_reducer) {
        res_recv *c = calloc(1, sizeof *c);
        if (c) {
            c->last_beat = calloc((size_t)m.size, sizeof *c->last_beat);
            c->busy_ms = calloc((size_t)m.size, sizeof *c->busy_ms);
            c->done = calloc((size_t)m.nslots, 1);
            c->gone = calloc((size_t)m.size, 1);
            c->pending = calloc((size_t)m.nslots, sizeof *c->pending);
        }
        if (!c || !c->last_beat || !c->busy_ms || !c->done || !c->gone || !c->pending) {
            if (c) rr_destroy(&c->base);
            rc = WEIR_ENOMEM;
        } else {
            c->base.ops = &res_recv_ops;
            c->m = &m;
            double now = engine_now();
            for (int r = 0; r < m.size; r++)
                c->last_beat[r] = now;
            engine_replace_chan(m.e, -1, &c->base);
        }
    } else if (!rc && !is_source) {
        res_send *c = calloc(1, sizeof *c);
        if (!c)
            rc = WEIR_ENOMEM;
        else {
            c->base.ops = &res_send_ops;
            c->m = &m;
            c->window = 64;
            pthread_mutex_init(&c->mu, NULL);
            engine_replace_chan(m.e, -1, &c->base);
            pthread_mutex_init(&hb.mu, NULL);
            pthread_cond_init(&hb.cv, NULL);
            hb_started = pthread_create(&hb_thread, NULL, beat_main, &hb) == 0;
        }
    }
sync:;
    /* every rank must be ready before events flow */
    int ok = rc == 0, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, m.comm);
    if (!all_ok) {
        if (!rc) snprintf(err, errlen, "another rank failed to set up");
        rc = rc ? rc : WEIR_EINVAL;
        goto out;
    }
    if (m.o.cp) cp_run_begin(m.o.cp, m.e, m.nslots, m.T, m.o.rank_timeout_s);
    rc = weir_engine_start(m.e, m.rank == 0 && src ? *src : (weir_source){0});
    if (!rc) weir_engine_wait(m.e, -1);
    if (!rc) rc = weir_engine_status(m.e);
    if (hb_started) {
        pthread_mutex_lock(&hb.mu);
        hb.stop = 1;
        pthread_cond_signal(&hb.cv);
        pthread_mutex_unlock(&hb.mu);
        pthread_join(hb_thread, NULL);
        hb_started = 0;
    }
    /* Rank 0: every event must come back as a credit (finished); what a slot
     * still holds after the timeout was lost with it. */
    if (m.rank == 0 && !rc) {
        double t0 = engine_now();
        poller pw = poll_start();
        for (;;) {
            int open = 0;
            for (int sl = 0; sl < m.nslots; sl++) {
                ev_send *c = m.sends[sl];
                if (!c || c->dead) continue;
                drain_credits(c);
                open += c->in_flight;
            }
            if (!open) break;
            if (engine_now() - t0 > m.o.rank_timeout_s) {
                for (int sl = 0; sl < m.nslots; sl++) {
                    ev_send *c = m.sends[sl];
                    if (c && !c->dead && c->in_flight) declare_dead(c, engine_now() - t0);
                }
                break;
            }
            poll_wait(&pw);
        }
    }
    /* Everyone's counters to rank 0, point to point: a collective would hang
     * on a rank that is stuck (continue_without). Ranks that do not report
     * within the timeout are named, and the job must then be aborted. */
    weir_stats mine;
    weir_engine_stats(m.e, &mine);
    if (m.rank != 0) {
        MPI_Send(&mine, (int)sizeof mine, MPI_BYTE, 0, TAG_STATS, m.comm);
    } else {
        weir_stats *got = calloc((size_t)m.size, sizeof *got);
        unsigned char *have = calloc((size_t)m.size, 1);
        int missing = m.size - 1;
        double t0 = engine_now();
        poller pw = poll_start();
        while (got && have && missing > 0 && engine_now() - t0 < m.o.rank_timeout_s) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, TAG_STATS, m.comm, &flag, &st);
            if (!flag) {
                poll_wait(&pw);
                continue;
            }
            MPI_Recv(&got[st.MPI_SOURCE], (int)sizeof mine, MPI_BYTE, st.MPI_SOURCE, TAG_STATS,
                     m.comm, MPI_STATUS_IGNORE);
            if (!have[st.MPI_SOURCE]) missing--;
            have[st.MPI_SOURCE] = 1;
        }
        if (stats) {
            memset(stats, 0, sizeof *stats);
            stats->nworkers = m.nslots;
            mpi_merge_stats(stats, &mine, m.nslots);
            for (int r = 1; got && have && r < m.size; r++)
                if (have[r]) mpi_merge_stats(stats, &got[r], m.nslots);
            mpi_sum_workers(stats);
        }
        for (int r = 1; have && r < m.size; r++)
            if (!have[r]) {
                fprintf(stderr, "weir: rank %d did not report at the end (dead or hung)\n", r);
                m.must_abort = 1;
            }
        free(got);
        free(have);
    }
    /* final results and counters to the serving rank */
    if (m.o.cp) cp_run_end(m.o.cp);
    if (lost) *lost = m.lost;
    if (m.must_abort && !rc) rc = WEIR_ECLOSED;
    if (m.lost && m.rank == 0)
        fprintf(stderr, "weir: %llu event(s) lost to dead or hung worker ranks: %s\n",
                (unsigned long long)m.lost, m.lost_text);
    if (rc && !err[0]) snprintf(err, errlen, "%s", weir_strerror(rc));
out:
    if (hb_started) {
        pthread_mutex_lock(&hb.mu);
        hb.stop = 1;
        pthread_cond_signal(&hb.cv);
        pthread_mutex_unlock(&hb.mu);
        pthread_join(hb_thread, NULL);
    }
    weir_engine_free(m.e);
    MPI_Comm_free(&m.comm);
    free(local);
    free(m.dead);
    free(m.sends);
    pthread_mutex_destroy(&m.mu);
    return rc;
}
