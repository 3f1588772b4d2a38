/* tags_live.c — `weir tags live FILE RECIPE.json`: a time-tag file (or a
 * file still being written) as the source of a weir pipeline, so the live
 * page shows the histograms growing.
 *
 * The source cuts the file into clips of --clip events; each clip is one
 * event (typ "TIMETAGS": a JSON part {"htype": "timetags", "clip", "events",
 * "first_record"} and the weir_tag array as bytes), after a header event
 * describing the file and before an end event. A built-in worker keeps the
 * recipe's instruments (weir/tag_instr.h) and feeds them clip after clip —
 * one worker, so the clips arrive in order and the instruments carry their
 * state (pending starts, delays) across clip boundaries exactly as in one
 * pass — and emits every histogram after each clip; a built-in reducer
 * publishes them (weir/http.h) as NAME (counts) with NAME_lo_ps and
 * NAME_bin_ps. With --follow a growing file is re-checked until it has been
 * idle for --timeout seconds. */
#include "cli.h"

#include "weir/engine.h"
#include "weir/error.h"
#include "weir/http.h"
#include "weir/log.h"
#include "weir/results.h"
#include "weir/tag_instr.h"
#include "weir/tags.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TYP "TIMETAGS"

/* ---- the source ---- */

typedef struct {
    weir_tag_reader *r;
    size_t clip;
    int follow;
    double timeout_s, rate; /* clips per second; 0: as fast as possible */
    uint64_t clips;
    int state;       /* 0: header next, 1: clips, 2: end sent */
    atomic_int stop; /* set by the main thread on SIGINT/SIGTERM */
} tsrc;

static int json_part(weir_msg *m, cJSON *j)
{
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return WEIR_ENOMEM;
    weir_buf *b = weir_buf_copy(t, strlen(t));
    free(t);
    return b ? weir_msg_append(m, b) : WEIR_ENOMEM;
}

static int one_part_event(uint64_t number, cJSON *j, weir_event **out)
{
    weir_msg m;
    weir_msg_init(&m);
    weir_event *ev = weir_event_new(number);
    int rc = ev ? json_part(&m, j) : (cJSON_Delete(j), WEIR_ENOMEM);
    if (!rc) rc = weir_event_add_stream(ev, "tags", TYP, &m);
    weir_msg_clear(&m);
    if (rc) {
        weir_event_free(ev);
        return rc;
    }
    *out = ev;
    return WEIR_OK;
}

static void free_events(void *opaque, void *data, size_t size)
{
    free(data);
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int src_next(void *ud, weir_event **out)
{
    tsrc *s = ud;
    char err[512];
    *out = NULL;
    if (s->state == 2) return WEIR_OK;
    if (s->state == 0) {
        const weir_tag_info *in = weir_tag_reader_info(s->r);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "htype", "timetags-header");
        cJSON_AddStringToObject(j, "file", in->path ? in->path : "");
        cJSON_AddStringToObject(j, "format", in->format_name ? in->format_name : "");
        cJSON_AddNumberToObject(j, "records", (double)in->nrecords);
        s->state = 1;
        return one_part_event(0, j, out);
    }
    weir_tag *ev = malloc(s->clip * sizeof *ev);
    if (!ev) return WEIR_ENOMEM;
    uint64_t first = weir_tag_tell(s->r).record;
    long n = 0;
    double idle = 0;
    for (;;) {
        n = weir_tag_read(s->r, ev, s->clip, err, sizeof err);
        if (n < 0) {
            WEIR_LOGE("tags", "%s", err);
            free(ev);
            return (int)n;
        }
        if (n > 0 || !s->follow || atomic_load(&s->stop)) break;
        /* nothing decodable right now: the file may still grow */
        uint64_t before = weir_tag_tell(s->r).record, now = 0;
        if (weir_tag_refresh(s->r, &now, err, sizeof err)) break;
        if (now > before) {
            idle = 0;
            continue;
        }
        if (idle >= s->timeout_s) break;
        nap(0.1);
        idle += 0.1;
    }
    if (n == 0) { /* the end */
        free(ev);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "htype", "series_end");
        cJSON_AddNumberToObject(j, "clips", (double)s->clips);
        s->state = 2;
        return one_part_event(s->clips + 1, j, out);
    }
    if (s->rate > 0) nap(1.0 / s->rate);
    weir_msg m;
    weir_msg_init(&m);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "htype", "timetags");
    cJSON_AddNumberToObject(j, "clip", (double)s->clips);
    cJSON_AddNumberToObject(j, "events", (double)n);
    cJSON_AddNumberToObject(j, "first_record", (double)first);
    int rc = json_part(&m, j);
    weir_buf *b = rc ? NULL : weir_buf_wrap(ev, (size_t)n * sizeof *ev, free_events, NULL);
    if (!rc && !b) rc = WEIR_ENOMEM;
    if (b) { /* the buffer owns the events from here on */
        ev = NULL;
        rc = weir_msg_append(&m, b);
    }
    free(ev);
    weir_event *e = rc ? NULL : weir_event_new(++s->clips);
    if (!rc && !e) rc = WEIR_ENOMEM;
    if (!rc) rc = weir_event_add_stream(e, "tags", TYP, &m);
    weir_msg_clear(&m);
    if (rc) {
        weir_event_free(e);
        return rc;
    }
    *out = e;
    return WEIR_OK;
}

static void src_progress(void *ud, uint64_t *done, uint64_t *total)
{
    tsrc *s = ud;
    *done = weir_tag_tell(s->r).record;
    *total = weir_tag_reader_info(s->r)->nrecords;
}

/* ---- the built-in worker: the recipe's instruments, clip after clip ---- */

typedef struct {
    weir_tinstr **in;
    size_t n;
} tworker;

static const weir_param_desc worker_params[] = {
    {"recipe", WEIR_PARAM_STRING, "", "the instruments as a JSON recipe (weir tags recipe)"},
};

static void tw_destroy(void *self)
{
    tworker *w = self;
    if (!w) return;
    for (size_t i = 0; i < w->n; i++)
        weir_tinstr_free(w->in[i]);
    free(w->in);
    free(w);
}

static int tw_init(weir_pctx *ctx, void **self)
{
    const char *recipe = ctx->host->param_bytes(ctx, "recipe", NULL);
    weir_tinstr_config *cfg = NULL;
    size_t n = 0;
    char err[512];
    tworker *w = calloc(1, sizeof *w);
    if (!w) return WEIR_ENOMEM;
    int rc = weir_tinstr_recipe_parse(recipe, &cfg, &n, err, sizeof err);
    if (!rc && !(w->in = calloc(n, sizeof *w->in))) rc = WEIR_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++, w->n++)
        rc = weir_tinstr_create(&cfg[i], &w->in[i], err, sizeof err);
    free(cfg);
    if (rc) {
        ctx->host->log(ctx, WEIR_LOG_ERROR, "recipe: %s", err);
        tw_destroy(w);
        return rc;
    }
    *self = w;
    return WEIR_OK;
}

/* Every histogram as a result: NAME (uint64 counts, rows x bins or bins),
 * NAME_lo_ps, NAME_bin_ps; "final" 1 after finish. */
static int tw_emit(weir_pctx *ctx, tworker *w, uint64_t clip_events, int final)
{
    const weir_host *h = ctx->host;
    weir_result *r = h->result_new(ctx);
    if (!r) return WEIR_ENOMEM;
    int rc = h->result_set_i64(r, "clip_events", (int64_t)clip_events);
    if (!rc && final) rc = h->result_set_i64(r, "final", 1);
    for (size_t i = 0; !rc && i < w->n; i++) {
        weir_tinstr_result res;
        weir_tinstr_get_result(w->in[i], &res);
        size_t shape[2] = {res.rows, res.nbins};
        int two = res.rows > 1;
        weir_array a = {.dtype = {WEIR_DT_U64, weir_host_order()},
                        .ndim = two ? 2 : 1,
                        .data = (const uint8_t *)res.counts};
        a.shape[0] = two ? shape[0] : shape[1];
        a.shape[1] = shape[1];
        a.strides[1] = 8;
        a.strides[0] = two ? (ptrdiff_t)(8 * shape[1]) : 8;
        char key[96];
        rc = h->result_set_array(r, res.name, &a);
        snprintf(key, sizeof key, "%s_lo_ps", res.name);
        if (!rc) rc = h->result_set_f64(r, key, (double)res.lo * res.unit_ps);
        snprintf(key, sizeof key, "%s_bin_ps", res.name);
        if (!rc) rc = h->result_set_f64(r, key, (double)res.bin * res.unit_ps);
    }
    if (rc) {
        h->result_free(r);
        return rc;
    }
    return h->emit(ctx, r);
}

static int tw_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    tworker *w = self;
    const weir_stream_packet *s = ev->nstreams ? &ev->streams[0] : NULL;
    if (!s || strcmp(s->typ, TYP) || s->msg.nparts != 2) return WEIR_OK; /* header, end */
    const weir_tag *tags = (const weir_tag *)weir_buf_data(s->msg.parts[1]);
    size_t n = weir_buf_size(s->msg.parts[1]) / sizeof(weir_tag);
    for (size_t i = 0; i < w->n; i++) {
        int rc = weir_tinstr_feed(w->in[i], tags, n);
        if (rc) return rc;
    }
    return tw_emit(ctx, w, n, 0);
}

static int tw_finish(weir_pctx *ctx, void *self)
{
    tworker *w = self;
    for (size_t i = 0; i < w->n; i++) {
        int rc = weir_tinstr_finish(w->in[i]);
        if (rc) return rc;
    }
    return tw_emit(ctx, w, 0, 1);
}

static const weir_plugin tags_worker = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_WORKER,
    .name = "tags_instruments",
    .description = "time-tag instruments fed clip after clip",
    .params = worker_params,
    .nparams = 1,
    .init = tw_init,
    .process_event = tw_event,
    .finish = tw_finish,
    .destroy = tw_destroy,
};

/* ---- the built-in reducer: publishes the latest histograms ---- */

typedef struct {
    uint64_t clips, events;
    int final;
    weir_tinstr_config *cfg; /* the recipe, for the names of the histograms */
    size_t n;
} treducer;

static void tr_destroy(void *self)
{
    treducer *t = self;
    if (!t) return;
    free(t->cfg);
    free(t);
}

static int tr_init(weir_pctx *ctx, void **self)
{
    treducer *t = calloc(1, sizeof *t);
    if (!t) return WEIR_ENOMEM;
    char err[512];
    int rc = weir_tinstr_recipe_parse(ctx->host->param_bytes(ctx, "recipe", NULL), &t->cfg, &t->n,
                                      err, sizeof err);
    if (rc) {
        ctx->host->log(ctx, WEIR_LOG_ERROR, "recipe: %s", err);
        tr_destroy(t);
        return rc;
    }
    *self = t;
    return WEIR_OK;
}

static int tr_result(weir_pctx *ctx, void *self, const weir_result *r)
{
    treducer *t = self;
    const weir_host *h = ctx->host;
    int64_t ce = 0, fin = 0;
    h->result_get_i64(r, "clip_events", &ce);
    h->result_get_i64(r, "final", &fin);
    if (!fin) t->clips++;
    t->events += (uint64_t)ce;
    t->final |= fin != 0;
    int rc = WEIR_OK;
    for (size_t i = 0; !rc && i < t->n; i++) {
        const char *name = t->cfg[i].name;
        char key[96];
        weir_array a;
        double v;
        if (h->result_get_array(r, name, &a) == 0) {
            rc = h->publish_array(ctx, name, &a);
            h->array_release(&a);
        }
        snprintf(key, sizeof key, "%s_lo_ps", name);
        if (!rc && h->result_get_f64(r, key, &v) == 0) rc = h->publish_f64(ctx, key, v);
        snprintf(key, sizeof key, "%s_bin_ps", name);
        if (!rc && h->result_get_f64(r, key, &v) == 0) rc = h->publish_f64(ctx, key, v);
    }
    if (!rc) rc = h->publish_i64(ctx, "clips", (int64_t)t->clips);
    if (!rc) rc = h->publish_i64(ctx, "events", (int64_t)t->events);
    if (!rc) rc = h->publish_i64(ctx, "final", t->final);
    return rc ? rc : h->publish_commit(ctx);
}

static const weir_plugin tags_reducer = {
    WEIR_PLUGIN_HEADER,       .kind = WEIR_PLUGIN_REDUCER,
    .name = "tags_publisher", .description = "publishes the time-tag histograms for the live page",
    .init = tr_init,          .process_result = tr_result,
    .destroy = tr_destroy,
};

/* ---- the verb ---- */

/* 1 when SIGINT or SIGTERM came within ms (they are blocked in every
 * thread and taken here, as in weir replay: no handler, no global). */
static int signalled(const sigset_t *sigs, long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    return sigtimedwait(sigs, NULL, &ts) > 0;
}

static void live_help(FILE *f)
{
    fprintf(
        f, "usage: weir tags live FILE RECIPE.json [--clip N] [--follow [--timeout S]]\n"
           "                      [--rate CLIPS_PER_S] [--format F] [--port N | --http ADDR:PORT]\n"
           "                      [--keep-alive] [--token T] [--web-dir DIR]\n\n"
           "Runs the recipe's instruments (see weir tags recipe) as a weir pipeline: the file\n"
           "is cut into clips of N events (default 1000000), each clip one event, so the\n"
           "live page (--port) shows the histograms grow. --follow keeps reading a file that\n"
           "is still being written until it has been idle for S seconds (default 10).\n");
}

int cli_tags_live(int argc, char **argv)
{
    const char *file = NULL, *recipe = NULL;
    weir_tag_format fmt = WEIR_TAGFMT_AUTO;
    tsrc s = {.clip = 1000000, .timeout_s = 10};
    cli_http_opts ho = {0};
    int keep_alive = 0, hrc, rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            live_help(stdout);
            return 0;
        } else if (!strcmp(a, "--follow")) {
            s.follow = 1;
        } else if (!strcmp(a, "--keep-alive")) {
            keep_alive = 1;
        } else if ((hrc = cli_http_option(argc, argv, &i, &ho)) != 0) {
            if (hrc < 0) return 2;
        } else if (v && !strcmp(a, "--clip")) {
            if (cli_parse_u64(a, v, &u) || !u || u > (1u << 26)) return 2;
            s.clip = (size_t)u;
            i++;
        } else if (v && (!strcmp(a, "--timeout") || !strcmp(a, "--rate"))) {
            char *end;
            double d = strtod(v, &end);
            if (*end || d < 0) {
                fprintf(stderr, "weir tags live: %s expects a number >= 0\n", a);
                return 2;
            }
            *(!strcmp(a, "--rate") ? &s.rate : &s.timeout_s) = d;
            i++;
        } else if (v && !strcmp(a, "--format")) {
            if (weir_tag_format_parse(v, &fmt)) {
                fprintf(stderr, "weir tags live: unknown format '%s'\n", v);
                return 2;
            }
            i++;
        } else if (a[0] != '-' && !file) {
            file = a;
        } else if (a[0] != '-' && !recipe) {
            recipe = a;
        } else {
            fprintf(stderr, "weir tags live: unexpected argument '%s'\n\n", a);
            live_help(stderr);
            return 2;
        }
    }
    if (!file || !recipe) {
        live_help(stderr);
        return 2;
    }
    if (keep_alive && !ho.enabled) {
        fprintf(stderr, "weir tags live: --keep-alive needs --port or --http\n");
        return 2;
    }
    char err[1024];
    size_t rlen = 0;
    char *rtext = NULL;
    FILE *rf = fopen(recipe, "rb");
    if (rf) {
        fseek(rf, 0, SEEK_END);
        long l = ftell(rf);
        fseek(rf, 0, SEEK_SET);
        rtext = l >= 0 ? malloc((size_t)l + 1) : NULL;
        if (rtext) {
            rlen = fread(rtext, 1, (size_t)l, rf);
            rtext[rlen] = 0;
        }
        fclose(rf);
    }
    if (!rtext) {
        fprintf(stderr, "weir tags live: cannot read the recipe %s\n", recipe);
        return 1;
    }
    rc = 1;
    /* before any thread starts, so every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    weir_params *params = weir_params_new();
    weir_results *results = NULL;
    weir_http *http = NULL;
    weir_engine *eng = NULL;
    if (!params || weir_params_set(params, "recipe", rtext, rlen, 0, err, sizeof err)) goto out;
    if (weir_tag_open(file, fmt, &s.r, err, sizeof err)) {
        fprintf(stderr, "weir tags live: %s\n", err);
        goto out;
    }
    weir_engine_config cfg = {.worker = &tags_worker,
                              .reducer = &tags_reducer,
                              .nworkers = 1, /* clips in order: instruments keep their state */
                              .params = params};
    if (ho.enabled) {
        results = weir_results_new();
        weir_http_config hc = {0};
        if (!results || cli_http_start(&ho, "tags live", &hc, &http)) goto out;
        cfg.results = results;
    }
    if (weir_engine_new(&cfg, &eng, err, sizeof err)) {
        fprintf(stderr, "weir tags live: %s\n", err);
        goto out;
    }
    if (http) {
        weir_http_attach(http, eng, results);
        weir_http_set_state(http, WEIR_HTTP_RUNNING, NULL);
    }
    weir_engine_start(eng, (weir_source){src_next, src_progress, &s});
    while (!weir_engine_wait(eng, 0))
        if (signalled(&sigs, 200)) {
            atomic_store(&s.stop, 1);
            weir_engine_stop(eng);
        }
    weir_stats st;
    weir_engine_stats(eng, &st);
    if (http) {
        weir_http_detach(http);
        weir_http_set_state(http, st.error ? WEIR_HTTP_ERROR : WEIR_HTTP_FINISHED,
                            st.error ? st.error_text : NULL);
    }
    const weir_tag_counts *c = weir_tag_reader_counts(s.r);
    fprintf(stderr,
            "weir tags live: %" PRIu64 " clips; %" PRIu64 " photons, %" PRIu64 " syncs, %" PRIu64
            " markers, %" PRIu64 " overflow records, %" PRIu64 " error records\n",
            s.clips, c->photons, c->syncs, c->markers, c->overflows, c->errors);
    if (st.error) {
        fprintf(stderr, "weir tags live: FAILED: %s\n", st.error_text);
        goto out;
    }
    if (http && keep_alive) {
        fprintf(stderr, "weir tags live: still serving http://%s:%d/ (Ctrl-C to end)\n", ho.addr,
                weir_http_port(http));
        while (!atomic_load(&s.stop) && !signalled(&sigs, 1000))
            ;
    }
    rc = 0;
out:
    weir_http_stop(http);
    weir_engine_free(eng);
    weir_results_free(results);
    weir_tag_close(s.r);
    weir_params_free(params);
    free(rtext);
    return rc;
}
