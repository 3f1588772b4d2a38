/* zmq_source.c — live ZeroMQ streams as an event source (weir/live.h).
 *
 * One socket per stream, all read by the engine's source thread. next()
 * reads one message per stream (zmq_poll with a short timeout so a stop
 * request is seen), classifies it with its protocol's parser (STINS, DECTRIS
 * stream v1 or v2; headers only, no pixel decoding: that is the workers'
 * job), and joins the streams by
 * position. Frames are wrapped zero-copy: the zmq_msg_t lives on the heap
 * and is closed by the buffer's release callback. */
#include "weir/live.h"

#include "weir/error.h"
#include "weir/log.h"
#include "weir/beamline.h"
#include "weir/concert.h"
#include "weir/dectris.h"
#include "weir/merlin.h"
#include "weir/stins.h"
#include "weir/tpx3.h"

#include "sardana_http.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define COMP "live"

#define MAX_AHEAD 256 /* frames held per stream while waiting for an earlier one */

typedef struct {
    int64_t frame;
    weir_msg msg;
} held;

/* A protocol: how to tell a series start, an image (and its frame number)
 * and a series end apart, and the typ events carry for the workers. */
typedef int (*classify_fn)(const weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                           int64_t *series, char *err, size_t errlen);

static int classify_stins(const weir_msg *m, weir_stins_kind *kind, int64_t *frame, int64_t *series,
                          char *err, size_t errlen)
{
    weir_stins_packet p;
    int rc = weir_stins_parse(m, 0, &p, err, errlen);
    if (rc) return rc;
    *kind = p.kind;
    *frame = p.frame;
    weir_stins_clear(&p);
    return WEIR_OK;
}

static int from_dectris(int rc, weir_dectris_packet *p, weir_stins_kind *kind, int64_t *frame,
                        int64_t *series)
{
    if (rc) return rc;
    *series = p->series;
    *kind = p->kind == WEIR_DECTRIS_START   ? WEIR_STINS_HEADER
            : p->kind == WEIR_DECTRIS_IMAGE ? WEIR_STINS_IMAGE
                                            : WEIR_STINS_SERIES_END;
    *frame = p->frame;
    weir_dectris_clear(p);
    return WEIR_OK;
}

static int classify_dectris1(const weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                             int64_t *series, char *err, size_t errlen)
{
    weir_dectris_packet p;
    return from_dectris(weir_dectris_v1_parse(m, 0, &p, err, errlen), &p, kind, frame, series);
}

static int classify_dectris2(const weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                             int64_t *series, char *err, size_t errlen)
{
    if (m->nparts != 1) {
        snprintf(err, errlen, "DECTRIS stream v2: expected one CBOR frame, got %zu", m->nparts);
        return WEIR_EFORMAT;
    }
    weir_dectris_packet p;
    return from_dectris(weir_dectris_v2_parse(weir_buf_data(m->parts[0]),
                                              weir_buf_size(m->parts[0]), 0, &p, err, errlen),
                        &p, kind, frame, series);
}

/* Merlin: the payload of one MPX message (the prefix is stripped). */
static int classify_merlin(const weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                           int64_t *series, char *err, size_t errlen)
{
    if (m->nparts != 1) return WEIR_EFORMAT;
    const uint8_t *d = weir_buf_data(m->parts[0]);
    size_t n = weir_buf_size(m->parts[0]);
    if (n >= 4 && !memcmp(d, "HDR,", 4)) {
        *kind = WEIR_STINS_HEADER;
        *frame = -1;
        return WEIR_OK;
    }
    weir_merlin_frame_header h;
    int rc = weir_merlin_frame_parse(d, n, &h, err, errlen);
    if (rc) return rc;
    *kind = WEIR_STINS_IMAGE;
    *frame = (int64_t)h.sequence - 1; /* Merlin counts from 1 */
    return WEIR_OK;
}

/* Concert: no start message; frames by "frame-number" when ucad sends it,
 * else by position (the frame is returned as -1 and numbered by the caller). */
static int classify_concert(const weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                            int64_t *series, char *err, size_t errlen)
{
    weir_concert_packet p;
    int rc = weir_concert_parse(m, 0, &p, err, errlen);
    if (rc) return rc;
    *kind = p.end ? WEIR_STINS_SERIES_END : WEIR_STINS_IMAGE;
    *frame = p.frame;
    weir_concert_clear(&p);
    return WEIR_OK;
}

/* ASI TPX3: messages cut by the framer (one per frame; see weir/tpx3.h). */
static int classify_tpx3(const weir_msg *m, weir_stins_kind *kind, int64_t *frame, int64_t *series,
                         char *err, size_t errlen)
{
    return weir_tpx3_classify(m, kind, frame, err, errlen);
}

/* The beamline streams of dranspose's captures (weir/beamline.h), after
 * the per-stream assembler has regrouped their messages. */
#define BEAMLINE(fn, proto)                                                                        \
    static int fn(const weir_msg *m, weir_stins_kind *kind, int64_t *frame, int64_t *series,       \
                  char *err, size_t errlen)                                                        \
    {                                                                                              \
        return weir_beamline_classify(proto, m, kind, frame, err, errlen);                         \
    }
BEAMLINE(classify_xspress3, "xspress3")
BEAMLINE(classify_contrast, "contrast")
BEAMLINE(classify_pcap, "pcap")
BEAMLINE(classify_pcap_raw, "pcap-raw")
BEAMLINE(classify_lecroy, "lecroy")
BEAMLINE(classify_albaem, "albaem")
BEAMLINE(classify_sardana, "sardana")

static const struct {
    const char *name, *typ;
    classify_fn classify;
} protocols[] = {
    {"stins", "STINS", classify_stins},
    {"dectris1", "EIGER_LEGACY", classify_dectris1}, /* dranspose's typ for stream v1 */
    {"dectris2", "DECTRIS_STREAM2", classify_dectris2},
    {"merlin", "MERLIN", classify_merlin},    /* raw TCP, MPX framing; no end message */
    {"concert", "CONCERT", classify_concert}, /* no start message */
    {"asi_tpx3", "ASI_TPX3", classify_tpx3},  /* raw TCP, sparse CSR chunks */
    /* beamline streams, typ as dranspose names them */
    {"xspress3", "xspress", classify_xspress3},
    {"contrast", "contrast", classify_contrast},
    {"pcap", "PCAP", classify_pcap},
    {"pcap-raw", "PCAP_RAW", classify_pcap_raw}, /* raw TCP to the PandA's data port */
    {"lecroy", "lecroy_9fwdWp6Rq7", classify_lecroy},
    {"albaem", "albaem", classify_albaem},
    {"sardana", "sardana", classify_sardana}, /* HTTP POSTs from Sardana's recorder */
};

typedef struct {
    char *name;
    const char *typ;
    classify_fn classify;
    void *sock;
    int started, ended;
    /* raw TCP streams (Merlin): bytes as they came, split into MPX messages */
    int tcp;
    weir_tpx3_framer *tpx3;  /* TPX3: the framer holds the bytes instead of acc */
    int tpx3_lost;           /* framing lost: ignore bytes until the peer reconnects */
    weir_beamline_asm *bl;   /* beamline streams: regroups messages (pcap-raw: frames bytes) */
    uint64_t skipped;        /* messages that carry no frame (heartbeats, the PandA's OK) */
    weir_sardana_http *http; /* Sardana: the HTTP server feeding the socket */
    uint8_t *acc;
    size_t acc_len, acc_cap;
    uint64_t expect_frames; /* announced by the header; 0 = until stopped */
    int headerless;         /* Concert: the series starts with its first image */
    int64_t position;       /* images so far, for frames without a number */
    held ahead[MAX_AHEAD];  /* frames that came before the one expected */
    int nahead;
    int64_t max_seen;
    weir_msg end_msg; /* the series_end, kept for the last event */
    int policy;       /* WEIR_POLICY_* for events missing this stream; DEFAULT = the global one */
    int reorder_ms;   /* -1: the global one */
    int timeout_ms;   /* -1: wait for this stream for ever while the others have a frame */
    int64_t series;   /* the series id of its header; -1 when the protocol has none */
    uint64_t received, discarded, malformed, bytes;
    uint64_t gaps, duplicates, reordered, late_headers, wrong_series, timeouts;
    char last_error[200];
} stream;

struct weir_live {
    /* per-stream counters as of the last event built, for other threads
     * (weir_live_stream_stats_get); the live counters belong to the source
     * thread alone */
    pthread_mutex_t pub_mu;
    weir_live_stream_stats *pub;
    void *zctx;
    stream *s;
    size_t n;
    volatile sig_atomic_t stop;
    uint64_t next_event;
    int64_t expect; /* next image frame number */
    int in_acq, in_series;
    int partial;    /* emit events with the streams that have the frame */
    int reorder_ms; /* how long a missing frame is waited for once later ones came */
    uint64_t dropped_events, partial_events;
    int unfinished;    /* series stopped before their end */
    weir_acq_info acq; /* of the current acquisition */
    int (*on_acq)(void *ud, const weir_acq_info *a, char *err, size_t errlen);
    void *on_acq_ud;
};

static void release_zmsg(void *opaque, void *data, size_t size)
{
    zmq_msg_t *m = opaque;
    zmq_msg_close(m);
    free(m);
}

int weir_live_open(const weir_stream_cfg *cfg, size_t n, int rcvhwm, weir_live **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    weir_live *l = calloc(1, sizeof *l);
    if (!l) return WEIR_ENOMEM;
    pthread_mutex_init(&l->pub_mu, NULL);
    l->zctx = zmq_ctx_new();
    l->s = calloc(n, sizeof *l->s);
    l->pub = calloc(n ? n : 1, sizeof *l->pub);
    l->n = n;
    int rc = WEIR_ENOMEM;
    if (!l->zctx || !l->s || !l->pub) goto fail;
    for (size_t i = 0; i < n; i++) {
        stream *s = &l->s[i];
        for (size_t k = 0; cfg[i].protocol && k < sizeof protocols / sizeof protocols[0]; k++)
            if (!strcmp(cfg[i].protocol, protocols[k].name)) {
                s->typ = protocols[k].typ;
                s->classify = protocols[k].classify;
            }
        if (!cfg[i].name || !cfg[i].endpoint || !s->classify) {
            snprintf(err, errlen,
                     "stream %zu: need a name, an endpoint and a protocol: stins, dectris1 "
                     "(DECTRIS stream v1), dectris2 (stream v2), merlin, concert, asi_tpx3, "
                     "xspress3, contrast, pcap, pcap-raw, lecroy, albaem or sardana",
                     i);
            rc = WEIR_EUNSUPPORTED;
            goto fail;
        }
        s->name = strdup(cfg[i].name);
        s->policy = cfg[i].policy;
        s->reorder_ms = cfg[i].reorder_ms > 0 ? cfg[i].reorder_ms : -1;
        s->timeout_ms = cfg[i].timeout_ms > 0 ? cfg[i].timeout_ms : -1;
        s->series = -1;
        s->tcp = s->classify == classify_merlin || s->classify == classify_tpx3 ||
                 s->classify == classify_pcap_raw;
        if (weir_beamline_known(cfg[i].protocol) && weir_beamline_asm_new(cfg[i].protocol, &s->bl))
            goto fail;
        if (s->classify == classify_tpx3 && weir_tpx3_framer_new(NULL, &s->tpx3)) goto fail;
        s->headerless = s->classify == classify_concert;
        /* a ZMQ_STREAM socket speaks plain TCP: Merlin's data port */
        s->sock = zmq_socket(l->zctx, s->tcp ? ZMQ_STREAM : cfg[i].sub ? ZMQ_SUB : ZMQ_PULL);
        if (!s->name || !s->sock) goto fail;
        int hwm = rcvhwm > 0 ? rcvhwm : 16, linger = 0;
        zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
        if (cfg[i].sub) zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "", 0);
        int z;
        if (s->classify == classify_sardana) {
            /* an HTTP server forwards the recorder's POSTs to this socket */
            char inproc[96];
            snprintf(inproc, sizeof inproc, "inproc://weir-sardana-%zu-%p", i, (void *)s);
            z = zmq_bind(s->sock, inproc);
            if (!z && (rc = weir_sardana_http_start(l->zctx, cfg[i].endpoint, inproc, &s->http, err,
                                                    errlen)))
                goto fail;
        } else {
            z = cfg[i].bind ? zmq_bind(s->sock, cfg[i].endpoint)
                            : zmq_connect(s->sock, cfg[i].endpoint);
        }
        if (z != 0) {
            snprintf(err, errlen, "stream '%s': cannot %s %s: %s", cfg[i].name,
                     cfg[i].bind ? "bind" : "connect to", cfg[i].endpoint,
                     zmq_strerror(zmq_errno()));
            rc = WEIR_EIO;
            goto fail;
        }
    }
    l->reorder_ms = 1000;
    *out = l;
    return WEIR_OK;
fail:
    if (rc == WEIR_ENOMEM && err) snprintf(err, errlen, "out of memory opening the streams");
    weir_live_close(l);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Pops one complete MPX message from the byte buffer of a TCP stream into
 * m (its payload, copied); 0, or WEIR_ETRUNCATED when more bytes are needed,
 * or WEIR_EFORMAT when the bytes are not MPX (the buffer is then dropped,
 * since the framing is lost). */
static int pop_tpx3(stream *s, weir_msg *m)
{
    char err[200];
    int rc = weir_tpx3_framer_next(s->tpx3, m, err, sizeof err);
    if (rc == WEIR_ETRUNCATED || rc == WEIR_ENOMEM) return rc;
    if (rc) {
        s->malformed++;
        snprintf(s->last_error, sizeof s->last_error, "%s", err);
        WEIR_LOGW(COMP, "stream '%s': %s", s->name, err);
        if (weir_tpx3_framer_broken(s->tpx3)) {
            /* no way to find the next message boundary: drop what is left
             * until the detector reconnects */
            WEIR_LOGW(COMP, "stream '%s': framing lost; bytes dropped until a reconnect", s->name);
            weir_tpx3_framer_reset(s->tpx3);
            s->tpx3_lost = 1;
        }
        return WEIR_ETRUNCATED;
    }
    s->received++;
    return WEIR_OK;
}

static int pop_mpx(stream *s, weir_msg *m)
{
    if (s->tpx3) return pop_tpx3(s, m);
    if (s->bl) {
        if (weir_beamline_asm_pop(s->bl, m) != 1) return WEIR_ETRUNCATED;
        s->received++;
        return WEIR_OK;
    }
    weir_merlin_mpx x;
    char err[160];
    int rc = weir_merlin_mpx_split(s->acc, s->acc_len, &x, err, sizeof err);
    if (rc == WEIR_ETRUNCATED) return rc;
    if (rc) {
        s->malformed++;
        snprintf(s->last_error, sizeof s->last_error, "%s", err);
        WEIR_LOGW(COMP, "stream '%s': %s; %zu bytes dropped", s->name, err, s->acc_len);
        s->acc_len = 0;
        return WEIR_ETRUNCATED;
    }
    weir_buf *b = weir_buf_copy(s->acc + x.payload_off, x.payload_len);
    if (!b) return WEIR_ENOMEM;
    memmove(s->acc, s->acc + x.total, s->acc_len - x.total);
    s->acc_len -= x.total;
    s->received++;
    return weir_msg_append(m, b);
}

/* Reads what a ZMQ_STREAM socket has ([peer id, bytes]) into the buffer. */
static int read_tcp(stream *s)
{
    zmq_msg_t id, data;
    zmq_msg_init(&id);
    zmq_msg_init(&data);
    int rc = WEIR_OK;
    if (zmq_msg_recv(&id, s->sock, 0) < 0 || zmq_msg_recv(&data, s->sock, 0) < 0) {
        rc = WEIR_EIO;
        goto out;
    }
    size_t n = zmq_msg_size(&data); /* 0: a connect or disconnect notice */
    if (n == 0) {
        if (s->tpx3) { /* a new connection starts a new byte stream */
            weir_tpx3_framer_reset(s->tpx3);
            s->tpx3_lost = 0;
        }
        if (s->bl) { /* the PandA: a fresh framer, and the newline that starts the data */
            weir_beamline_asm *fresh = NULL;
            if (weir_beamline_asm_new("pcap-raw", &fresh) == 0) {
                weir_beamline_asm_free(s->bl);
                s->bl = fresh;
            }
            zmq_send(s->sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(s->sock, "\n", 1, 0);
        }
        goto out;
    }
    if (s->bl) {
        char err[200];
        s->bytes += n;
        if (weir_beamline_asm_feed_bytes(s->bl, zmq_msg_data(&data), n, err, sizeof err)) {
            s->malformed++;
            snprintf(s->last_error, sizeof s->last_error, "%s", err);
            WEIR_LOGW(COMP, "stream '%s': %s", s->name, err);
        }
        goto out;
    }
    if (s->tpx3) {
        s->bytes += n;
        if (!s->tpx3_lost) rc = weir_tpx3_framer_feed(s->tpx3, zmq_msg_data(&data), n);
        goto out;
    }
    if (s->acc_len + n > s->acc_cap) {
        size_t cap = s->acc_cap ? s->acc_cap : 1 << 20;
        while (cap < s->acc_len + n)
            cap *= 2;
        uint8_t *a = realloc(s->acc, cap);
        if (!a) {
            rc = WEIR_ENOMEM;
            goto out;
        }
        s->acc = a;
        s->acc_cap = cap;
    }
    memcpy(s->acc + s->acc_len, zmq_msg_data(&data), n);
    s->acc_len += n;
    s->bytes += n;
out:
    zmq_msg_close(&id);
    zmq_msg_close(&data);
    return rc;
}

/* Receives one multipart message from s into m: 0, 1 when stopped, 2 when
 * timeout_ms (>= 0) passed with nothing to read. */
static int recv_multipart(weir_live *l, stream *s, weir_msg *m, int timeout_ms)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    while (s->tcp) {
        int rc = pop_mpx(s, m);
        if (rc != WEIR_ETRUNCATED) return rc;
        int slice = l->stop ? 0 : 200;
        if (timeout_ms >= 0) {
            double left = deadline - now_s();
            if (left <= 0) return 2;
            if (left * 1000 < slice) slice = (int)(left * 1000) + 1;
        }
        zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, slice);
        if (r < 0 && zmq_errno() != EINTR) return WEIR_EIO;
        if (r > 0 && (rc = read_tcp(s))) return rc;
        if (r <= 0 && l->stop) return 1;
    }
    for (;;) {
        /* a stop takes effect once nothing is waiting: what has arrived is
         * still processed */
        int slice = l->stop ? 0 : 200;
        if (timeout_ms >= 0) {
            double left = deadline - now_s();
            if (left <= 0) return 2;
            if (left * 1000 < slice) slice = (int)(left * 1000) + 1;
        }
        zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, slice);
        if (r < 0 && zmq_errno() != EINTR) return WEIR_EIO;
        if (r > 0) break;
        if (l->stop) return 1;
    }
    int more = 1;
    while (more) {
        zmq_msg_t *zm = malloc(sizeof *zm);
        if (!zm) return WEIR_ENOMEM;
        zmq_msg_init(zm);
        if (zmq_msg_recv(zm, s->sock, 0) < 0) {
            zmq_msg_close(zm);
            free(zm);
            return WEIR_EIO;
        }
        more = zmq_msg_more(zm);
        s->bytes += zmq_msg_size(zm);
        weir_buf *b = weir_buf_wrap(zmq_msg_data(zm), zmq_msg_size(zm), release_zmsg, zm);
        if (!b) {
            zmq_msg_close(zm);
            free(zm);
            return WEIR_ENOMEM;
        }
        int rc = weir_msg_append(m, b);
        if (rc) return rc;
    }
    s->received++;
    return WEIR_OK;
}

/* Reads one STINS message of s (timeout as recv_multipart); classifies it.
 * Malformed messages are counted and skipped; before the series start only
 * a header is taken. */
static int read_packet(weir_live *l, stream *s, weir_msg *m, weir_stins_kind *kind, int64_t *frame,
                       int64_t *series, int timeout_ms)
{
    for (;;) {
        weir_msg_init(m);
        char err[200];
        int rc;
        if (s->bl && !s->tcp && weir_beamline_asm_pop(s->bl, m) == 1) {
            /* a message the assembler had ready */
        } else {
            rc = recv_multipart(l, s, m, timeout_ms);
            if (rc) {
                weir_msg_clear(m);
                return rc;
            }
            if (s->bl && !s->tcp) { /* regroup (dranspose's ingester does the same) */
                rc = weir_beamline_asm_push(s->bl, m, err, sizeof err);
                weir_msg_clear(m);
                if (rc) {
                    s->malformed++;
                    snprintf(s->last_error, sizeof s->last_error, "%s", err);
                    WEIR_LOGW(COMP, "stream '%s': message %" PRIu64 " rejected: %s", s->name,
                              s->received, err);
                    continue;
                }
                if (weir_beamline_asm_pop(s->bl, m) != 1) continue;
            }
        }
        *series = -1;
        rc = s->classify(m, kind, frame, series, err, sizeof err);
        if (rc == WEIR_ENOTFOUND && s->bl) { /* a heartbeat, an OK: no frame in it */
            s->skipped++;
            weir_msg_clear(m);
            continue;
        }
        if (rc) {
            s->malformed++;
            snprintf(s->last_error, sizeof s->last_error, "%s", err);
            WEIR_LOGW(COMP, "stream '%s': message %" PRIu64 " rejected: %s", s->name, s->received,
                      err);
            weir_msg_clear(m);
            continue;
        }
        if (*kind == WEIR_STINS_IMAGE && *frame < 0) *frame = s->position;
        if (*kind == WEIR_STINS_IMAGE) s->position++;
        if (!s->started && *kind != WEIR_STINS_HEADER) {
            s->discarded++;
            weir_msg_clear(m);
            continue;
        }
        /* an image or end of another series than the one started (a sender
         * that restarted, frames left from an earlier series) */
        if (s->started && *kind != WEIR_STINS_HEADER && *series >= 0 && s->series >= 0 &&
            *series != s->series) {
            s->wrong_series++;
            WEIR_LOGW(COMP,
                      "stream '%s': message %" PRIu64 " belongs to series %" PRId64
                      ", not to the current series %" PRId64 ": dropped",
                      s->name, s->received, *series, s->series);
            weir_msg_clear(m);
            continue;
        }
        return WEIR_OK;
    }
}

static int find_ahead(stream *s, int64_t f)
{
    for (int i = 0; i < s->nahead; i++)
        if (s->ahead[i].frame == f) return i;
    return -1;
}

static void take_ahead(stream *s, int i, weir_msg *out)
{
    *out = s->ahead[i].msg;
    s->ahead[i] = s->ahead[--s->nahead];
}

/* Makes frame `e` of s available in its ahead list if it comes: reads until
 * it arrives, the series ends, or (once a later frame showed that e is late)
 * the reorder wait runs out. 1 when stopped. */
static int fill_stream(weir_live *l, stream *s, int64_t e, int others_have)
{
    double late_since = 0, wait_since = now_s();
    int reorder = s->reorder_ms >= 0 ? s->reorder_ms : l->reorder_ms;
    while (!s->ended && find_ahead(s, e) < 0) {
        int timeout = -1;
        if (s->max_seen > e && !s->ended) { /* a later frame is here: e is late or lost */
            if (!late_since) late_since = now_s();
            timeout = reorder - (int)((now_s() - late_since) * 1000);
            if (timeout <= 0) return 0;
        }
        if (others_have && s->timeout_ms >= 0) { /* the others have e: wait this long for it */
            int left = s->timeout_ms - (int)((now_s() - wait_since) * 1000);
            if (left <= 0) {
                s->timeouts++;
                WEIR_LOGW(COMP, "stream '%s': frame %" PRId64 " not here after %d ms", s->name, e,
                          s->timeout_ms);
                return 0;
            }
            if (timeout < 0 || left < timeout) timeout = left;
        }
        weir_msg m;
        weir_stins_kind kind;
        int64_t f = -1, series;
        int rc = read_packet(l, s, &m, &kind, &f, &series, timeout);
        if (rc == 2) continue; /* the loop head decides: reorder wait or timeout over */
        if (rc) return rc;
        if (kind == WEIR_STINS_HEADER) {
            s->late_headers++;
            WEIR_LOGW(COMP, "stream '%s': a header in the middle of a series, ignored", s->name);
            weir_msg_clear(&m);
        } else if (kind == WEIR_STINS_SERIES_END) {
            s->ended = 1;
            s->end_msg = m;
        } else if (f < e || find_ahead(s, f) >= 0) {
            s->duplicates++;
            WEIR_LOGW(COMP, "stream '%s': frame %" PRId64 " again: duplicate dropped", s->name, f);
            weir_msg_clear(&m);
        } else if (s->nahead == MAX_AHEAD) {
            s->gaps++;
            WEIR_LOGW(COMP,
                      "stream '%s': too many frames ahead of %" PRId64 "; frame %" PRId64
                      " dropped",
                      s->name, e, f);
            weir_msg_clear(&m);
        } else {
            if (f > s->max_seen) s->max_seen = f;
            s->ahead[s->nahead].frame = f;
            s->ahead[s->nahead++].msg = m;
            /* Merlin: the last announced frame ends the series (TCP keeps order) */
            if (s->expect_frames && (uint64_t)f + 1 >= s->expect_frames) s->ended = 1;
        }
    }
    return 0;
}

/* The frame count and scan (ntrigger x nimages) a DECTRIS header announces. */
static void dectris_acq(weir_live *l, stream *s, const weir_msg *m)
{
    weir_dectris_packet p;
    int rc = s->classify == classify_dectris1
                 ? weir_dectris_v1_parse(m, 0, &p, NULL, 0)
                 : weir_dectris_v2_parse(weir_buf_data(m->parts[0]), weir_buf_size(m->parts[0]), 0,
                                         &p, NULL, 0);
    if (rc) return;
    int64_t n = weir_dectris_num_frames(&p);
    if (n > 0 && !l->acq.frames) l->acq.frames = (uint64_t)n;
    if (p.ntrigger > 1 && p.nimages > 1 && !l->acq.ndet) {
        l->acq.det[0] = p.ntrigger;
        l->acq.det[1] = p.nimages;
        l->acq.ndet = 2;
    }
    weir_dectris_clear(&p);
}

static int header_event(weir_live *l, weir_event *ev)
{
    for (size_t i = 0; i < l->n; i++) {
        stream *s = &l->s[i];
        weir_msg m;
        weir_stins_kind kind;
        int64_t f, series = -1;
        int rc;
        weir_msg_init(&m);
        if (s->headerless) {
            /* no start message (Concert): event 0 carries an empty packet and
             * the series starts with the first image */
            (void)kind;
            (void)f;
        } else {
            do {
                rc = read_packet(l, s, &m, &kind, &f, &series, -1);
                if (rc) return rc;
                if (kind != WEIR_STINS_HEADER) weir_msg_clear(&m); /* cannot happen: filtered */
            } while (kind != WEIR_STINS_HEADER);
        }
        s->position = 0;
        s->series = series;
        s->started = 1;
        s->ended = 0;
        s->max_seen = -1;
        s->expect_frames = 0;
        if (s->classify == classify_merlin) { /* Merlin announces the frame count; no end message */
            weir_merlin_acq a;
            char err[160];
            if (weir_merlin_acq_parse(weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]), &a, err,
                                      sizeof err) == 0) {
                s->expect_frames = a.frames_in_acquisition;
                if (!l->acq.frames) l->acq.frames = a.frames_in_acquisition;
                if (a.has_scan && !l->acq.ndet) {
                    l->acq.det[0] = (int64_t)a.scan_y;
                    l->acq.det[1] = (int64_t)a.scan_x;
                    l->acq.ndet = 2;
                }
                weir_merlin_acq_clear(&a);
            } else {
                WEIR_LOGW(COMP, "stream '%s': acquisition header: %s", s->name, err);
            }
        }
        if (m.nparts && (s->classify == classify_dectris1 || s->classify == classify_dectris2))
            dectris_acq(l, s, &m);
        rc = weir_event_add_stream(ev, s->name, s->typ, &m);
        weir_msg_clear(&m);
        if (rc) return rc;
    }
    return WEIR_OK;
}

static void end_series(weir_live *l)
{
    /* a series still open here was cut short (stopped before its end) */
    for (size_t i = 0; i < l->n; i++)
        if (l->s[i].started && !l->s[i].ended && l->in_series) l->unfinished++;
    for (size_t i = 0; i < l->n; i++) {
        stream *s = &l->s[i];
        for (int k = 0; k < s->nahead; k++)
            weir_msg_clear(&s->ahead[k].msg);
        s->nahead = 0;
        weir_msg_clear(&s->end_msg);
        s->started = 0;
    }
    l->in_series = 0;
    l->in_acq = 0;
}

static void publish_stats(weir_live *l)
{
    pthread_mutex_lock(&l->pub_mu);
    for (size_t i = 0; l->pub && i < l->n; i++) {
        const stream *s = &l->s[i];
        weir_live_stream_stats *p = &l->pub[i];
        snprintf(p->name, sizeof p->name, "%s", s->name);
        snprintf(p->protocol, sizeof p->protocol, "%s", s->typ ? s->typ : "");
        p->received = s->received;
        p->bytes = s->bytes;
        p->discarded = s->discarded;
        p->malformed = s->malformed;
        p->missing = s->gaps;
        p->duplicates = s->duplicates;
        p->out_of_order = s->reordered;
        p->series_mismatch = s->wrong_series;
        p->stray_headers = s->late_headers;
        p->timeouts = s->timeouts;
    }
    pthread_mutex_unlock(&l->pub_mu);
}

size_t weir_live_stream_stats_get(weir_live *l, weir_live_stream_stats *out, size_t cap)
{
    pthread_mutex_lock(&l->pub_mu);
    size_t n = l->n < cap ? l->n : cap;
    if (l->pub) memcpy(out, l->pub, n * sizeof *out);
    pthread_mutex_unlock(&l->pub_mu);
    return l->pub ? n : 0;
}

static int next_event(void *ud, weir_event **out);

static int next(void *ud, weir_event **out)
{
    int rc = next_event(ud, out);
    publish_stats(ud);
    return rc;
}

static int next_event(void *ud, weir_event **out)
{
    weir_live *l = ud;
    *out = NULL;
    if (!l->in_acq) return WEIR_OK; /* the acquisition ended */
    weir_event *ev = NULL;
    int rc = WEIR_OK;
    if (!l->in_series) {
        memset(&l->acq, 0, sizeof l->acq);
        ev = weir_event_new(0);
        if (!ev) return WEIR_ENOMEM;
        rc = header_event(l, ev);
        if (rc == 1) goto stopped;
        if (rc) goto fail;
        if (l->on_acq) {
            char err[300] = "";
            rc = l->on_acq(l->on_acq_ud, &l->acq, err, sizeof err);
            if (rc) {
                WEIR_LOGE(COMP, "acquisition: %s", err);
                goto fail;
            }
        }
        l->in_series = 1;
        l->expect = 0;
        l->next_event = 1;
        *out = ev;
        return WEIR_OK;
    }
    for (;;) {
        int64_t e = l->expect;
        size_t have = 0, ended = 0, future = 0;
        /* streams without a timeout first; a stream with one is then waited
         * for at most that long once another stream has the frame (if every
         * stream has one, the first is waited for without limit) */
        size_t anchor = l->n;
        for (size_t i = 0; i < l->n && anchor == l->n; i++)
            if (l->s[i].timeout_ms < 0) anchor = i;
        if (anchor == l->n) anchor = 0;
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < l->n; i++) {
                stream *s = &l->s[i];
                int first = s->timeout_ms < 0 || i == anchor;
                if (first != (pass == 0)) continue;
                rc = fill_stream(l, s, e, have > 0);
                if (rc == 1) goto stopped;
                if (rc) goto fail;
                if (find_ahead(s, e) >= 0) have++;
                if (s->ended) ended++;
                for (int k = 0; k < s->nahead; k++)
                    if (s->ahead[k].frame > e) future = 1;
            }
        if (have == 0 && ended == l->n && !future) {
            /* every stream ended: the series_end event closes the acquisition */
            ev = weir_event_new(l->next_event++);
            if (!ev) return WEIR_ENOMEM;
            for (size_t i = 0; i < l->n && !rc; i++)
                rc = weir_event_add_stream(ev, l->s[i].name, l->s[i].typ, &l->s[i].end_msg);
            if (rc) goto fail;
            end_series(l);
            *out = ev;
            return WEIR_OK;
        }
        l->expect++;
        if (have < l->n) {
            for (size_t i = 0; i < l->n; i++)
                if (find_ahead(&l->s[i], e) < 0) {
                    l->s[i].gaps++;
                    WEIR_LOGW(COMP, "stream '%s': frame %" PRId64 " missing", l->s[i].name, e);
                }
            /* partial only if every stream that lacks e allows it */
            int allow = 1;
            for (size_t i = 0; i < l->n; i++)
                if (find_ahead(&l->s[i], e) < 0) {
                    int pol = l->s[i].policy ? l->s[i].policy
                              : l->partial   ? WEIR_POLICY_PARTIAL
                                             : WEIR_POLICY_WAIT;
                    if (pol != WEIR_POLICY_PARTIAL) allow = 0;
                }
            if (have == 0 || !allow) {
                l->dropped_events += have > 0;
                for (size_t i = 0; i < l->n; i++) {
                    int k = find_ahead(&l->s[i], e);
                    if (k >= 0) {
                        weir_msg m;
                        take_ahead(&l->s[i], k, &m);
                        weir_msg_clear(&m);
                    }
                }
                continue; /* frame e is incomplete everywhere or we wait for whole events */
            }
            l->partial_events++;
        }
        ev = weir_event_new((uint64_t)e + 1);
        if (!ev) return WEIR_ENOMEM;
        for (size_t i = 0; i < l->n && !rc; i++) {
            stream *s = &l->s[i];
            int k = find_ahead(s, e);
            if (k < 0) continue;
            if (s->max_seen > e) s->reordered++; /* later frames came before this one */
            weir_msg m;
            take_ahead(s, k, &m);
            rc = weir_event_add_stream(ev, s->name, s->typ, &m);
            weir_msg_clear(&m);
        }
        if (rc) goto fail;
        l->next_event = (uint64_t)e + 2;
        *out = ev;
        return WEIR_OK;
    }
stopped:
    weir_event_free(ev);
    if (l->in_series) {
        for (size_t i = 0; i < l->n; i++)
            if (l->s[i].started && !l->s[i].ended)
                WEIR_LOGW(COMP,
                          "stream '%s': stopped before the series ended (frame %" PRId64
                          " expected next)",
                          l->s[i].name, l->expect);
        end_series(l);
    }
    l->in_acq = 0;
    return WEIR_OK;
fail:
    weir_event_free(ev);
    return rc;
}

void weir_live_on_acquisition(weir_live *l,
                              int (*fn)(void *ud, const weir_acq_info *a, char *err, size_t errlen),
                              void *ud)
{
    l->on_acq = fn;
    l->on_acq_ud = ud;
}

void weir_live_set_policy(weir_live *l, int partial, int reorder_ms)
{
    l->partial = partial;
    if (reorder_ms >= 0) l->reorder_ms = reorder_ms;
}

weir_source weir_live_source(weir_live *l)
{
    l->in_acq = !l->stop;
    l->next_event = 0;
    return (weir_source){.next = next, .progress = NULL, .ud = l};
}

int weir_live_stopped(const weir_live *l)
{
    return l->stop != 0;
}

void weir_live_stop(weir_live *l)
{
    l->stop = 1;
}

uint64_t weir_live_rejected(const weir_live *l)
{
    uint64_t n = l->dropped_events + (uint64_t)l->unfinished;
    for (size_t i = 0; i < l->n; i++)
        n += l->s[i].malformed + l->s[i].gaps + l->s[i].duplicates + l->s[i].late_headers +
             l->s[i].wrong_series;
    return n;
}

void weir_live_report(const weir_live *l, FILE *f)
{
    for (size_t i = 0; i < l->n; i++) {
        const stream *s = &l->s[i];
        fprintf(f,
                "  stream %-12s %" PRIu64 " messages, %" PRIu64 " bytes, %" PRIu64
                " discarded before a header, %" PRIu64 " malformed, %" PRIu64
                " missing frames, %" PRIu64 " duplicates, %" PRIu64 " out of order, %" PRIu64
                " stray headers%s\n",
                s->name, s->received, s->bytes, s->discarded, s->malformed, s->gaps, s->duplicates,
                s->reordered, s->late_headers, s->started ? " (series not ended)" : "");
        if (s->wrong_series || s->timeouts || s->series >= 0)
            fprintf(f,
                    "    series %" PRId64 ": %" PRIu64
                    " messages of another series dropped, %" PRIu64
                    " frames given up after the stream's timeout\n",
                    s->series, s->wrong_series, s->timeouts);
        if (s->http && weir_sardana_http_refused(s->http))
            fprintf(f, "    %lu HTTP requests refused (wrong path or method, too large)\n",
                    weir_sardana_http_refused(s->http));
        if (s->skipped)
            fprintf(f, "    %" PRIu64 " messages without a frame (heartbeats, acknowledgements)\n",
                    s->skipped);
        if (s->malformed) fprintf(f, "    last malformed: %s\n", s->last_error);
    }
    if (l->unfinished)
        fprintf(f, "  %d stream series stopped before their end (sender gone or stopped)\n",
                l->unfinished);
    if (l->dropped_events || l->partial_events)
        fprintf(f, "  events missing a stream: %" PRIu64 " dropped, %" PRIu64 " emitted partial\n",
                l->dropped_events, l->partial_events);
}

void weir_live_close(weir_live *l)
{
    if (!l) return;
    free(l->pub);
    pthread_mutex_destroy(&l->pub_mu);
    if (l->s) end_series(l);
    for (size_t i = 0; l->s && i < l->n; i++) {
        weir_sardana_http_stop(l->s[i].http);
        if (l->s[i].sock) zmq_close(l->s[i].sock);
        free(l->s[i].name);
        free(l->s[i].acc);
        weir_tpx3_framer_free(l->s[i].tpx3);
        weir_beamline_asm_free(l->s[i].bl);
    }
    free(l->s);
    if (l->zctx) zmq_ctx_term(l->zctx);
    free(l);
}
