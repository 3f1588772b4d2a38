/* zmq_source.c — live ZeroMQ streams as an event source (weir/live.h).
 *
 * One socket per stream, all read by the engine's source thread. next()
 * reads one message per stream (zmq_poll with a short timeout so a stop
 * request is seen), classifies it with the STINS parser (JSON only, no
 * pixel decoding: that is the workers' job), and joins the streams by
 * position. Frames are wrapped zero-copy: the zmq_msg_t lives on the heap
 * and is closed by the buffer's release callback. */
#include "weir/live.h"

#include "weir/error.h"
#include "weir/log.h"
#include "weir/stins.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define COMP "live"

typedef struct {
    char *name;
    void *sock;
    int started, ended;
    uint64_t received, discarded, malformed, bytes;
    char last_error[200];
} stream;

struct weir_live {
    void *zctx;
    stream *s;
    size_t n;
    volatile sig_atomic_t stop;
    uint64_t next_event;
    int in_acq;
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
    l->zctx = zmq_ctx_new();
    l->s = calloc(n, sizeof *l->s);
    l->n = n;
    int rc = WEIR_ENOMEM;
    if (!l->zctx || !l->s) goto fail;
    for (size_t i = 0; i < n; i++) {
        stream *s = &l->s[i];
        if (!cfg[i].name || !cfg[i].endpoint || !cfg[i].protocol ||
            strcmp(cfg[i].protocol, "stins") != 0) {
            snprintf(err, errlen,
                     "stream %zu: need name, endpoint and protocol \"stins\" (the "
                     "only live protocol in this build)",
                     i);
            rc = WEIR_EUNSUPPORTED;
            goto fail;
        }
        s->name = strdup(cfg[i].name);
        s->sock = zmq_socket(l->zctx, cfg[i].sub ? ZMQ_SUB : ZMQ_PULL);
        if (!s->name || !s->sock) goto fail;
        int hwm = rcvhwm > 0 ? rcvhwm : 16, linger = 0;
        zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
        if (cfg[i].sub) zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "", 0);
        int z = cfg[i].bind ? zmq_bind(s->sock, cfg[i].endpoint)
                            : zmq_connect(s->sock, cfg[i].endpoint);
        if (z != 0) {
            snprintf(err, errlen, "stream '%s': cannot %s %s: %s", cfg[i].name,
                     cfg[i].bind ? "bind" : "connect to", cfg[i].endpoint,
                     zmq_strerror(zmq_errno()));
            rc = WEIR_EIO;
            goto fail;
        }
    }
    *out = l;
    return WEIR_OK;
fail:
    if (rc == WEIR_ENOMEM && err) snprintf(err, errlen, "out of memory opening the streams");
    weir_live_close(l);
    return rc;
}

/* Receives one multipart message from s into m; 1 when stopped. */
static int recv_multipart(weir_live *l, stream *s, weir_msg *m)
{
    for (;;) {
        if (l->stop) return 1;
        zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, 200);
        if (r < 0 && zmq_errno() != EINTR) return WEIR_EIO;
        if (r > 0) break;
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

/* The next STINS message of s that fits the state: before the start only a
 * header is taken. Returns its kind in *kind. */
static int next_packet(weir_live *l, stream *s, weir_msg *m, weir_stins_kind *kind)
{
    for (;;) {
        weir_msg_init(m);
        int rc = recv_multipart(l, s, m);
        if (rc) {
            weir_msg_clear(m);
            return rc;
        }
        weir_stins_packet p;
        char err[200];
        rc = weir_stins_parse(m, 0, &p, err, sizeof err);
        if (rc) {
            s->malformed++;
            snprintf(s->last_error, sizeof s->last_error, "%s", err);
            WEIR_LOGW(COMP, "stream '%s': message %" PRIu64 " rejected: %s", s->name, s->received,
                      err);
            weir_msg_clear(m);
            continue;
        }
        *kind = p.kind;
        weir_stins_clear(&p);
        if (!s->started && *kind != WEIR_STINS_HEADER) {
            s->discarded++;
            weir_msg_clear(m);
            continue;
        }
        return WEIR_OK;
    }
}

static int next(void *ud, weir_event **out)
{
    weir_live *l = ud;
    *out = NULL;
    if (!l->in_acq) return WEIR_OK; /* the acquisition ended */
    weir_event *ev = weir_event_new(l->next_event);
    if (!ev) return WEIR_ENOMEM;
    int ended = 0;
    for (size_t i = 0; i < l->n; i++) {
        stream *s = &l->s[i];
        weir_msg m;
        weir_stins_kind kind;
        int rc = next_packet(l, s, &m, &kind);
        if (rc == 1) { /* stopped: end the acquisition here */
            weir_event_free(ev);
            l->in_acq = 0;
            return WEIR_OK;
        }
        if (rc) {
            weir_event_free(ev);
            return rc;
        }
        if (kind == WEIR_STINS_HEADER) {
            if (s->started && l->next_event)
                WEIR_LOGW(COMP, "stream '%s': a new header in the middle of a series", s->name);
            s->started = 1;
        }
        if (kind == WEIR_STINS_SERIES_END) {
            s->started = 0;
            ended++;
        }
        rc = weir_event_add_stream(ev, s->name, "STINS", &m);
        weir_msg_clear(&m);
        if (rc) {
            weir_event_free(ev);
            return rc;
        }
    }
    if (ended) {
        if ((size_t)ended != l->n)
            WEIR_LOGW(COMP, "event %" PRIu64 ": %d of %zu streams ended the series here",
                      l->next_event, ended, l->n);
        l->in_acq = 0;
    }
    l->next_event++;
    *out = ev;
    return WEIR_OK;
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
    uint64_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->s[i].malformed;
    return n;
}

void weir_live_report(const weir_live *l, FILE *f)
{
    for (size_t i = 0; i < l->n; i++) {
        const stream *s = &l->s[i];
        fprintf(f,
                "  stream %-12s %" PRIu64 " messages, %" PRIu64 " bytes, %" PRIu64
                " discarded before a header, %" PRIu64 " malformed%s%s\n",
                s->name, s->received, s->bytes, s->discarded, s->malformed,
                s->malformed ? " (last: " : "", s->malformed ? s->last_error : "");
        if (s->malformed) fprintf(f, ")\n");
    }
}

void weir_live_close(weir_live *l)
{
    if (!l) return;
    for (size_t i = 0; l->s && i < l->n; i++) {
        if (l->s[i].sock) zmq_close(l->s[i].sock);
        free(l->s[i].name);
    }
    free(l->s);
    if (l->zctx) zmq_ctx_term(l->zctx);
    free(l);
}
