/* bench_live.c — live STINS over loopback TCP, end to end, against a plain
 * libzmq PUSH/PULL pair measured in the same run.
 *
 * A sender thread (PUSH, bind) sends one STINS series: a header, N image
 * messages (JSON part pre-encoded with weir's STINS encoder before timing,
 * pixel part sent zero-copy from one buffer) and a series end. It is the
 * same code for both receivers:
 *   reference: a plain libzmq PULL socket that receives every part and
 *              counts the images;
 *   weir:      the live source (weir/live.h) → 2 worker threads → reducer,
 *              with a built-in worker that emits the frame number and a
 *              built-in reducer that records each result's arrival time.
 * Three measurements: events/s with 10×10 uint16 frames; GB/s with 4 MB
 * frames (1024×2048 uint16); latency p50/p99 at a fixed 10 kHz with 10×10
 * frames (send time to the reducer seeing the result, same clock).
 * Before timing, a checked run sums every pixel in the workers and compares
 * the reducer's total with the total computed here from the pattern.
 * usage: bench_live [small_events=400000] [big_frames=1500] [latency_s=3] */
#include "weir/engine.h"
#include "weir/error.h"
#include "weir/live.h"
#include "weir/log.h"
#include "weir/stins.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_until(double t)
{
    double d;
    while ((d = t - now()) > 0) {
        if (d > 200e-6) {
            struct timespec ts = {0, (long)((d - 100e-6) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
        getsockname(s, (struct sockaddr *)&a, &l)) {
        if (s >= 0) close(s);
        return -1;
    }
    int p = ntohs(a.sin_port);
    close(s);
    return p;
}

/* ---- the series, encoded before timing ---- */

typedef struct {
    uint64_t n;
    size_t h, w;
    uint16_t *pixels; /* one frame, shared by every image */
    char **json;      /* the JSON part of image i */
    size_t *jlen;
    char *head, *end;
    size_t headlen, endlen;
    double rate;     /* images/s; 0 = as fast as possible */
    double *sent_at; /* per image, when rate > 0 */
    int port;
} series;

static char *part_copy(weir_msg *m, size_t i, size_t *len)
{
    *len = weir_buf_size(m->parts[i]);
    char *s = malloc(*len ? *len : 1);
    memcpy(s, weir_buf_data(m->parts[i]), *len);
    return s;
}

static int series_make(series *s, uint64_t n, size_t h, size_t w, double rate)
{
    memset(s, 0, sizeof *s);
    s->n = n, s->h = h, s->w = w, s->rate = rate;
    s->pixels = malloc(h * w * 2);
    for (size_t i = 0; i < h * w; i++)
        s->pixels[i] = (uint16_t)((i * 2654435761u) >> 20);
    s->json = calloc(n, sizeof *s->json);
    s->jlen = calloc(n, sizeof *s->jlen);
    s->sent_at = calloc(n, sizeof *s->sent_at);
    weir_msg m;
    weir_msg_init(&m);
    if (weir_stins_encode_header(&m, 0, "bench", NULL)) return 1;
    s->head = part_copy(&m, 0, &s->headlen);
    weir_msg_clear(&m);
    weir_dtype dt = {WEIR_DT_U16, WEIR_LITTLE};
    size_t shape[2] = {h, w};
    for (uint64_t i = 0; i < n; i++) {
        weir_msg_init(&m);
        if (weir_stins_encode_image(&m, (int64_t)i + 1, (int64_t)i, dt, 2, shape, s->pixels,
                                    WEIR_STINS_COMP_NONE, NULL))
            return 1;
        s->json[i] = part_copy(&m, 0, &s->jlen[i]);
        weir_msg_clear(&m);
    }
    weir_msg_init(&m);
    if (weir_stins_encode_series_end(&m, (int64_t)n + 1)) return 1;
    s->end = part_copy(&m, 0, &s->endlen);
    weir_msg_clear(&m);
    return 0;
}

static void series_free(series *s)
{
    for (uint64_t i = 0; i < s->n; i++)
        free(s->json[i]);
    free(s->json);
    free(s->jlen);
    free(s->sent_at);
    free(s->pixels);
    free(s->head);
    free(s->end);
}

typedef struct {
    series *s;
    void *zctx, *sock;
    int rc;
} sender;

static void *send_main(void *arg)
{
    sender *x = arg;
    series *s = x->s;
    size_t fb = s->h * s->w * 2;
    if (zmq_send(x->sock, s->head, s->headlen, 0) < 0) goto fail;
    double t0 = now() + 0.05;
    for (uint64_t i = 0; i < s->n; i++) {
        if (s->rate > 0) {
            sleep_until(t0 + (double)i / s->rate);
            s->sent_at[i] = now();
        }
        if (zmq_send(x->sock, s->json[i], s->jlen[i], ZMQ_SNDMORE) < 0) goto fail;
        zmq_msg_t px;
        zmq_msg_init_data(&px, s->pixels, fb, NULL, NULL); /* zero-copy, not freed */
        if (zmq_msg_send(&px, x->sock, 0) < 0) {
            zmq_msg_close(&px);
            goto fail;
        }
    }
    if (zmq_send(x->sock, s->end, s->endlen, 0) < 0) goto fail;
    return NULL;
fail:
    fprintf(stderr, "sender: %s\n", zmq_strerror(zmq_errno()));
    x->rc = 1;
    return NULL;
}

static int sender_start(sender *x, series *s, pthread_t *t)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->zctx = zmq_ctx_new();
    x->sock = zmq_socket(x->zctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(x->sock, ZMQ_LINGER, &linger, sizeof linger);
    s->port = free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s->port);
    if (zmq_bind(x->sock, ep)) return 1;
    return pthread_create(t, NULL, send_main, x);
}

static void sender_join(sender *x, pthread_t t)
{
    pthread_join(t, NULL);
    zmq_close(x->sock);
    zmq_ctx_term(x->zctx);
}

/* ---- reference: plain PULL ---- */

static int run_reference(series *s, double *secs, double *recv_at)
{
    sender x;
    pthread_t t;
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    if (sender_start(&x, s, &t)) return 1;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s->port);
    zmq_connect(pull, ep);
    uint64_t images = 0;
    double t0 = 0;
    int done = 0;
    while (!done) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, pull, 0) < 0) break;
        int more = zmq_msg_more(&m);
        if (!t0) t0 = now();
        size_t len = zmq_msg_size(&m);
        const char *d = zmq_msg_data(&m);
        if (more) { /* an image: JSON + pixels */
            zmq_msg_t p;
            zmq_msg_init(&p);
            zmq_msg_recv(&p, pull, 0);
            zmq_msg_close(&p);
            if (recv_at && images < s->n) recv_at[images] = now();
            images++;
        } else if (len == s->endlen && !memcmp(d, s->end, len)) {
            done = 1;
        }
        zmq_msg_close(&m);
    }
    *secs = now() - t0;
    zmq_close(pull);
    zmq_ctx_term(ctx);
    sender_join(&x, t);
    return x.rc || images != s->n;
}

/* ---- weir: live source → workers → reducer, built-in plug-ins ---- */

typedef struct {
    int sum; /* 1: sum the pixels (checked run), 0: emit the frame number only */
} wk;

static int wk_init(weir_pctx *c, void **self)
{
    wk *w = calloc(1, sizeof *w);
    if (!w) return WEIR_ENOMEM;
    w->sum = (int)c->host->param_int(c, "sum");
    *self = w;
    return 0;
}

static int wk_event(weir_pctx *c, void *self, const weir_event *ev)
{
    wk *w = self;
    if (ev->nstreams < 1 || ev->streams[0].msg.nparts != 2) return 0; /* header / end */
    weir_result *r = c->host->result_new(c);
    if (!r) return WEIR_ENOMEM;
    c->host->result_set_i64(r, "frame", (int64_t)ev->number - 1);
    if (w->sum) {
        const weir_u16u *p = (const weir_u16u *)weir_buf_data(ev->streams[0].msg.parts[1]);
        size_t n = weir_buf_size(ev->streams[0].msg.parts[1]) / 2;
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++)
            s += p[i];
        c->host->result_set_f64(r, "sum", (double)s);
    }
    return c->host->emit(c, r);
}

static const weir_param_desc wk_params[] = {{"sum", WEIR_PARAM_INT, "0", "sum the pixels"}};

static const weir_plugin worker = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_WORKER,
    .name = "bench_live_worker",
    .params = wk_params,
    .nparams = 1,
    .init = wk_init,
    .process_event = wk_event,
    .destroy = free,
};

typedef struct {
    double total;
    uint64_t n;
    double *recv_at;
    uint64_t cap;
} red;

/* The reducer's view of the run; one run at a time. */
static red g_red;

static int rd_init(weir_pctx *c, void **self)
{
    *self = &g_red;
    return 0;
}

static int rd_result(weir_pctx *c, void *self, const weir_result *r)
{
    red *d = self;
    int64_t f;
    double v;
    if (c->host->result_get_i64(r, "frame", &f)) return 0;
    if (d->recv_at && f >= 0 && (uint64_t)f < d->cap) d->recv_at[f] = now();
    if (c->host->result_get_f64(r, "sum", &v) == 0) d->total += v;
    d->n++;
    return 0;
}

static void rd_destroy(void *self) {}

static const weir_plugin reducer = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_REDUCER, .name = "bench_live_reducer",
    .init = rd_init,    .process_result = rd_result, .destroy = rd_destroy,
};

static int run_weir(series *s, int sum, int nworkers, double *secs, double *recv_at)
{
    char err[512], ep[64];
    memset(&g_red, 0, sizeof g_red);
    g_red.recv_at = recv_at;
    g_red.cap = s->n;
    weir_params *p = weir_params_new();
    weir_params_set(p, "sum", sum ? "1" : "0", 1, 0, NULL, 0);
    weir_engine_config cfg = {.worker = &worker,
                              .reducer = &reducer,
                              .nworkers = nworkers,
                              .params = p,
                              .worker_queue_depth = 64,
                              .result_queue_depth = 1024};
    sender x;
    pthread_t t;
    if (sender_start(&x, s, &t)) return 1;
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s->port);
    weir_stream_cfg sc = {.name = "det", .protocol = "stins", .endpoint = ep};
    weir_live *l;
    weir_engine *e;
    if (weir_live_open(&sc, 1, 64, &l, err, sizeof err) ||
        weir_engine_new(&cfg, &e, err, sizeof err)) {
        fprintf(stderr, "bench_live: %s\n", err);
        return 1;
    }
    double t0 = now();
    weir_engine_start(e, weir_live_source(l));
    weir_engine_wait(e, -1);
    *secs = now() - t0;
    weir_stats st;
    weir_engine_stats(e, &st);
    int rc = weir_engine_status(e) || st.workers_total.rejected || weir_live_rejected(l) ||
             g_red.n != s->n;
    if (rc) {
        fprintf(stderr, "bench_live: weir run failed (%llu of %llu results)\n",
                (unsigned long long)g_red.n, (unsigned long long)s->n);
        weir_live_report(l, stderr);
    }
    weir_engine_free(e);
    weir_live_close(l);
    weir_params_free(p);
    sender_join(&x, t);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(const double *sent, const double *recv, uint64_t n, double *p50,
                        double *p99)
{
    double *l = malloc(n * sizeof *l);
    for (uint64_t i = 0; i < n; i++)
        l[i] = recv[i] - sent[i];
    qsort(l, n, sizeof *l, cmp_d);
    *p50 = l[n / 2];
    *p99 = l[(n * 99) / 100];
    free(l);
}

int main(int argc, char **argv)
{
    weir_log_set_level(WEIR_LOG_WARNING);
    uint64_t nsmall = argc > 1 ? strtoull(argv[1], NULL, 10) : 400000;
    uint64_t nbig = argc > 2 ? strtoull(argv[2], NULL, 10) : 1500;
    double lat_s = argc > 3 ? atof(argv[3]) : 3;
    const int nw = 2;
    printf("machine: %ld cores; loopback TCP; weir: live STINS source -> %d workers -> reducer\n",
           sysconf(_SC_NPROCESSORS_ONLN), nw);

    /* check first: every pixel summed by the workers, 10x10 and 4 MB frames */
    series s;
    double secs, ref;
    for (int k = 0; k < 2; k++) {
        size_t h = k ? 1024 : 10, w = k ? 2048 : 10;
        uint64_t n = k ? 50 : 2000;
        if (series_make(&s, n, h, w, 0)) return 1;
        uint64_t one = 0;
        for (size_t i = 0; i < h * w; i++)
            one += s.pixels[i];
        if (run_weir(&s, 1, nw, &secs, NULL) || g_red.total != (double)one * (double)n) {
            fprintf(stderr, "CHECK FAILED: %zux%zu: weir total %.0f, expected %.0f\n", h, w,
                    g_red.total, (double)one * (double)n);
            return 1;
        }
        printf("check: %zux%zu x %llu frames: pixel total %.0f == expected\n", h, w,
               (unsigned long long)n, g_red.total);
        series_free(&s);
    }

    /* 1. small frames, events/s */
    if (series_make(&s, nsmall, 10, 10, 0)) return 1;
    double rbest = 1e30, wbest = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        if (run_reference(&s, &ref, NULL)) return 1;
        if (ref < rbest) rbest = ref;
        if (run_weir(&s, 0, nw, &secs, NULL)) return 1;
        if (secs < wbest) wbest = secs;
    }
    printf("%-44s %10.0f events/s\n", "10x10 uint16, plain libzmq PUSH/PULL", nsmall / rbest);
    printf("%-44s %10.0f events/s  (%.2f of reference)\n", "10x10 uint16, weir end to end",
           nsmall / wbest, rbest / wbest);
    series_free(&s);

    /* 2. 4 MB frames, GB/s */
    if (series_make(&s, nbig, 1024, 2048, 0)) return 1;
    double bytes = (double)nbig * 1024 * 2048 * 2;
    rbest = wbest = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        if (run_reference(&s, &ref, NULL)) return 1;
        if (ref < rbest) rbest = ref;
        if (run_weir(&s, 0, nw, &secs, NULL)) return 1;
        if (secs < wbest) wbest = secs;
    }
    printf("%-44s %10.2f GB/s\n", "4 MB frames, plain libzmq PUSH/PULL", bytes / rbest / 1e9);
    printf("%-44s %10.2f GB/s    (%.2f of reference)\n", "4 MB frames, weir end to end",
           bytes / wbest / 1e9, rbest / wbest);
    series_free(&s);

    /* 3. latency at 10 kHz */
    uint64_t nl = (uint64_t)(lat_s * 10000);
    if (series_make(&s, nl, 10, 10, 10000)) return 1;
    double *recv = calloc(nl, sizeof *recv), p50, p99;
    if (run_reference(&s, &ref, recv)) return 1;
    percentiles(s.sent_at, recv, nl, &p50, &p99);
    printf("%-44s p50 %7.1f us  p99 %7.1f us\n", "latency at 10 kHz, plain libzmq PUSH/PULL",
           p50 * 1e6, p99 * 1e6);
    memset(recv, 0, nl * sizeof *recv);
    if (run_weir(&s, 0, nw, &secs, recv)) return 1;
    percentiles(s.sent_at, recv, nl, &p50, &p99);
    printf("%-44s p50 %7.1f us  p99 %7.1f us\n", "latency at 10 kHz, weir to the reducer",
           p50 * 1e6, p99 * 1e6);
    free(recv);
    series_free(&s);
    return 0;
}
