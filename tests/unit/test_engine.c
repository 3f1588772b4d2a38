/* test_engine.c — the threaded runtime with probe plug-ins
 * (tests/plugins/test_plugins.c) and in-memory sources.
 *
 * Covers: the first event broadcast to every worker and every other event
 * to exactly one; finish once per worker and once on the reducer, after
 * every result; a slow reducer keeps memory bounded (events alive at once,
 * counted through buffer release callbacks) with nothing lost and counters
 * that add up; rejected events counted with their reason; the reducer timer;
 * a parameter change applying from the next event with a new hash; plug-in
 * loading refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/engine.h"
#include "weir/error.h"
#include "weir/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t n, next;
    atomic_long alive, max_alive;
    /* gate: events >= gate_at wait until `open` */
    uint64_t gate_at;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} memsrc;

static void on_release(void *opaque, void *data, size_t size)
{
    memsrc *s = opaque;
    atomic_fetch_sub(&s->alive, 1);
    free(data);
}

static int src_next(void *ud, weir_event **out)
{
    memsrc *s = ud;
    *out = NULL;
    if (s->next >= s->n) return WEIR_OK;
    if (s->gate_at && s->next == s->gate_at) {
        pthread_mutex_lock(&s->mu);
        while (!s->open)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    weir_event *ev = weir_event_new(s->next++);
    char *payload = malloc(64);
    memset(payload, 'x', 64);
    long a = atomic_fetch_add(&s->alive, 1) + 1;
    long m = atomic_load(&s->max_alive);
    while (a > m && !atomic_compare_exchange_weak(&s->max_alive, &m, a))
        ;
    weir_msg msg;
    weir_msg_init(&msg);
    weir_msg_append(&msg, weir_buf_wrap(payload, 64, on_release, s));
    weir_event_add_stream(ev, "s", "TEST", &msg);
    *out = ev;
    return WEIR_OK;
}

static void memsrc_init(memsrc *s, uint64_t n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

typedef struct {
    weir_plugin_handle *wh, *rh;
    const weir_plugin *w, *r;
} plugins;

static void load(plugins *p, const char *wsym, const char *rsym)
{
    char spec[4200], err[512];
    snprintf(spec, sizeof spec, "%s:%s", tu_build("tests/plugins/test_plugins.so"), wsym);
    int rc = weir_plugin_load(spec, WEIR_PLUGIN_WORKER, &p->wh, &p->w, err, sizeof err);
    if (rc) fail_msg("%s", err);
    snprintf(spec, sizeof spec, "%s:%s", tu_build("tests/plugins/test_plugins.so"), rsym);
    rc = weir_plugin_load(spec, WEIR_PLUGIN_REDUCER, &p->rh, &p->r, err, sizeof err);
    if (rc) fail_msg("%s", err);
}

static void unload(plugins *p)
{
    weir_plugin_unload(p->wh);
    weir_plugin_unload(p->rh);
}

typedef struct {
    long results, finishes;
    long per_event[4096];
    long bcast_workers[64];
    long reducer_results, timers;
    int reducer_finish_last;
    long scale_of[4096];
    char hash_of[4096][20];
} report;

static void read_report(const char *path, report *rep)
{
    memset(rep, 0, sizeof *rep);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int last_is_finish = 0;
    while (fgets(line, sizeof line, f)) {
        char kind[32], hash[32] = "";
        long long n, w, scale;
        int rw;
        last_is_finish = 0;
        if (sscanf(line, "reducer_finish %ld %ld", &rep->reducer_results, &rep->timers) == 2) {
            last_is_finish = 1;
            continue;
        }
        assert_int_equal(
            sscanf(line, "%31s %lld %lld %lld %d %31s", kind, &n, &w, &scale, &rw, hash), 6);
        if (!strcmp(kind, "finish")) {
            rep->finishes++;
            continue;
        }
        rep->results++;
        assert_true(n >= 0 && n < 4096);
        rep->per_event[n]++;
        rep->scale_of[n] = scale;
        snprintf(rep->hash_of[n], sizeof rep->hash_of[n], "%s", hash);
        if (n == 0) rep->bcast_workers[w]++;
        assert_int_equal(w, rw); /* worker index in the payload == envelope's */
    }
    rep->reducer_finish_last = last_is_finish;
    fclose(f);
}

static weir_engine *make(plugins *p, int nworkers, size_t depth, size_t rdepth,
                         const char *report_path, long delay_us)
{
    weir_params *par = weir_params_new();
    char d[32], err[512];
    snprintf(d, sizeof d, "%ld", delay_us);
    weir_params_set(par, "report", report_path, strlen(report_path), 0, NULL, 0);
    weir_params_set(par, "delay_us", d, strlen(d), 0, NULL, 0);
    weir_engine_config cfg = {.worker = p->w,
                              .reducer = p->r,
                              .nworkers = nworkers,
                              .worker_queue_depth = depth,
                              .result_queue_depth = rdepth,
                              .params = par};
    weir_engine *e = NULL;
    int rc = weir_engine_new(&cfg, &e, err, sizeof err);
    weir_params_free(par);
    if (rc) fail_msg("%s", err);
    return e;
}

static void test_broadcast_and_finish(void **state)
{
    plugins p;
    load(&p, "echo_worker", "slow_reducer");
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/report.txt", tu_tmpdir("bcast"));
    const int nw = 3;
    const uint64_t n = 200;
    weir_engine *e = make(&p, nw, 4, 16, rp, 0);
    memsrc s;
    memsrc_init(&s, n);
    assert_int_equal(weir_engine_start(e, (weir_source){src_next, NULL, &s}), 0);
    weir_engine_wait(e, -1);
    assert_int_equal(weir_engine_status(e), 0);
    weir_stats st;
    weir_engine_stats(e, &st);
    weir_engine_free(e);
    report rep;
    read_report(rp, &rep);
    /* event 0 went to every worker exactly once; every other event once */
    assert_int_equal(rep.per_event[0], nw);
    for (int w = 0; w < nw; w++)
        assert_int_equal(rep.bcast_workers[w], 1);
    for (uint64_t i = 1; i < n; i++)
        assert_int_equal(rep.per_event[i], 1);
    assert_int_equal(rep.finishes, nw);
    assert_true(rep.reducer_finish_last);
    long expected = (long)(n - 1) + nw + nw; /* events, extra broadcast copies, finish results */
    assert_int_equal(rep.reducer_results, expected);
    /* the counters add up */
    assert_int_equal(st.source.events_in, n);
    assert_int_equal(st.source.events_out, n - 1 + nw);
    assert_int_equal(st.workers_total.events_in, n - 1 + nw);
    assert_int_equal(st.workers_total.results, expected);
    assert_int_equal(st.reducer.events_in, expected);
    assert_int_equal(st.reducer.results, expected);
    assert_int_equal(st.workers_total.rejected + st.reducer.rejected, 0);
    assert_int_equal(atomic_load(&s.alive), 0);
    unload(&p);
}

static void test_slow_reducer_bounded(void **state)
{
    plugins p;
    load(&p, "echo_worker", "slow_reducer");
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/report.txt", tu_tmpdir("slow"));
    const int nw = 2;
    const size_t depth = 4, rdepth = 8;
    const uint64_t n = 300;
    weir_engine *e = make(&p, nw, depth, rdepth, rp, 1000);
    memsrc s;
    memsrc_init(&s, n);
    assert_int_equal(weir_engine_start(e, (weir_source){src_next, NULL, &s}), 0);
    weir_engine_wait(e, -1);
    weir_stats st;
    weir_engine_stats(e, &st);
    weir_engine_free(e);
    report rep;
    read_report(rp, &rep);
    /* Nothing lost. */
    for (uint64_t i = 1; i < n; i++)
        assert_int_equal(rep.per_event[i], 1);
    assert_int_equal(rep.reducer_results, (long)(n - 1) + 2 * nw);
    /* Bounded: events alive at once never exceed what the queues hold plus
     * one in each worker's hands plus the one the source is placing. */
    long bound = (long)(nw * depth) + nw + 1;
    assert_true(atomic_load(&s.max_alive) <= bound);
    assert_int_equal(atomic_load(&s.alive), 0);
    assert_true(st.reducer.queue_max_fill <= rdepth);
    for (int w = 0; w < nw; w++)
        assert_true(st.worker[w].queue_max_fill <= depth);
    /* The reducer was the bottleneck, so the source had to wait. */
    assert_true(st.source.blocked_seconds > 0);
    assert_true(st.workers_total.blocked_seconds > 0);
    /* The timer ran while the slow reducer worked (period 10 ms, run > 0.3 s). */
    assert_true(rep.timers >= 1);
    assert_int_equal((long)st.timer_calls, rep.timers);
    unload(&p);
}

static void test_rejections_counted(void **state)
{
    plugins p;
    load(&p, "failing_worker", "slow_reducer");
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/report.txt", tu_tmpdir("reject"));
    weir_engine *e = make(&p, 2, 4, 16, rp, 0);
    memsrc s;
    memsrc_init(&s, 101); /* events 0..100: 50 odd ones */
    weir_engine_start(e, (weir_source){src_next, NULL, &s});
    weir_engine_wait(e, -1);
    weir_stats st;
    weir_engine_stats(e, &st);
    weir_engine_free(e);
    assert_int_equal(st.workers_total.rejected, 50);
    assert_int_equal(st.workers_total.nreasons, 1);
    assert_non_null(strstr(st.workers_total.reasons[0].text, "WEIR_EFORMAT"));
    assert_int_equal(st.workers_total.reasons[0].count, 50);
    report rep;
    read_report(rp, &rep);
    assert_int_equal(rep.per_event[1], 0);
    assert_int_equal(rep.per_event[2], 1);
    unload(&p);
}

static void test_param_change_applies_next_event(void **state)
{
    plugins p;
    load(&p, "echo_worker", "slow_reducer");
    char rp[4200], err[256];
    snprintf(rp, sizeof rp, "%s/report.txt", tu_tmpdir("param"));
    const int nw = 2;
    weir_engine *e = make(&p, nw, 4, 16, rp, 0);
    memsrc s;
    memsrc_init(&s, 40);
    s.gate_at = 20;
    weir_engine_start(e, (weir_source){src_next, NULL, &s});
    /* wait until all results of events 0..19 reached the reducer */
    weir_stats st;
    do {
        weir_engine_wait(e, 5);
        weir_engine_stats(e, &st);
    } while (st.reducer.results < (uint64_t)(19 + nw));
    assert_int_equal(weir_engine_set_param(e, "scale", "abc", 3, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "scale"));
    assert_non_null(strstr(err, "int"));
    assert_int_equal(weir_engine_set_param(e, "nope", "1", 1, err, sizeof err), WEIR_ENOTFOUND);
    assert_int_equal(weir_engine_set_param(e, "scale", "5", 1, err, sizeof err), 0);
    pthread_mutex_lock(&s.mu);
    s.open = 1;
    pthread_cond_signal(&s.cv);
    pthread_mutex_unlock(&s.mu);
    weir_engine_wait(e, -1);
    weir_engine_free(e);
    report rep;
    read_report(rp, &rep);
    for (int i = 1; i < 20; i++) {
        assert_int_equal(rep.scale_of[i], 1);
        assert_string_equal(rep.hash_of[i], rep.hash_of[1]);
    }
    for (int i = 20; i < 40; i++) {
        assert_int_equal(rep.scale_of[i], 5);
        assert_string_equal(rep.hash_of[i], rep.hash_of[20]);
    }
    assert_string_not_equal(rep.hash_of[1], rep.hash_of[20]);
    assert_int_equal(strlen(rep.hash_of[1]), 16);
    unload(&p);
}

/* Runs the memsrc through echo_worker/slow_reducer with a distribution mode
 * and returns, per event, the worker that processed it (-1: none). */
static void run_mode(weir_dist_mode mode, uint64_t group, int nw, uint64_t n, int *worker_of)
{
    plugins p;
    load(&p, "echo_worker", "slow_reducer");
    char rp[4200], err[256];
    snprintf(rp, sizeof rp, "%s/report.txt", tu_tmpdir("mode"));
    weir_params *par = weir_params_new();
    weir_params_set(par, "report", rp, strlen(rp), 0, NULL, 0);
    weir_engine_config cfg = {.worker = p.w,
                              .reducer = p.r,
                              .nworkers = nw,
                              .dist = mode,
                              .affinity_group = group,
                              .params = par};
    weir_engine *e;
    if (weir_engine_new(&cfg, &e, err, sizeof err)) fail_msg("%s", err);
    weir_params_free(par);
    memsrc s;
    memsrc_init(&s, n);
    weir_engine_start(e, (weir_source){src_next, NULL, &s});
    weir_engine_wait(e, -1);
    weir_engine_free(e);
    for (uint64_t i = 0; i < n; i++)
        worker_of[i] = -1;
    FILE *f = fopen(rp, "r");
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long long ev, w;
        if (sscanf(line, "result %lld %lld", &ev, &w) == 2 && ev > 0) {
            assert_int_equal(worker_of[ev], -1); /* exactly once */
            worker_of[ev] = (int)w;
        }
    }
    fclose(f);
    unload(&p);
}

static void test_round_robin_and_affinity(void **state)
{
    int w[64];
    run_mode(WEIR_DIST_ROUND_ROBIN, 0, 3, 40, w);
    for (int ev = 1; ev < 40; ev++) /* event 0 is broadcast; event k is the (k-1)th */
        assert_int_equal(w[ev], (ev - 1) % 3);
    run_mode(WEIR_DIST_AFFINITY, 4, 3, 40, w);
    for (int ev = 1; ev < 40; ev++)
        assert_int_equal(w[ev], (ev / 4) % 3);
    assert_int_equal(weir_dist_parse("affinity"), WEIR_DIST_AFFINITY);
    assert_int_equal(weir_dist_parse("split"), WEIR_DIST_SPLIT);
    assert_int_equal(weir_dist_parse("random"), -1);
}

static void test_plugin_refusals(void **state)
{
    weir_plugin_handle *h = NULL;
    const weir_plugin *pl = NULL;
    char err[512];
    assert_int_equal(weir_plugin_load(tu_build("tests/plugins/bad_abi.so"), WEIR_PLUGIN_WORKER, &h,
                                      &pl, err, sizeof err),
                     WEIR_EABI);
    assert_non_null(strstr(err, "99.0"));
    assert_null(h);
    assert_int_equal(weir_plugin_load(tu_build("tests/plugins/no_symbol.so"), WEIR_PLUGIN_WORKER,
                                      &h, &pl, err, sizeof err),
                     WEIR_EPLUGIN);
    assert_non_null(strstr(err, "weir_plugin_descriptor"));
    char spec[4200];
    snprintf(spec, sizeof spec, "%s:missing_sym", tu_build("tests/plugins/test_plugins.so"));
    assert_int_equal(weir_plugin_load(spec, WEIR_PLUGIN_WORKER, &h, &pl, err, sizeof err),
                     WEIR_EPLUGIN);
    assert_non_null(strstr(err, "missing_sym"));
    snprintf(spec, sizeof spec, "%s:slow_reducer", tu_build("tests/plugins/test_plugins.so"));
    assert_int_equal(weir_plugin_load(spec, WEIR_PLUGIN_WORKER, &h, &pl, err, sizeof err),
                     WEIR_EPLUGIN);
    assert_non_null(strstr(err, "is a reducer, expected a worker"));
    assert_int_equal(
        weir_plugin_load("/nonexistent/x.so", WEIR_PLUGIN_WORKER, &h, &pl, err, sizeof err),
        WEIR_EPLUGIN);
    assert_non_null(strstr(err, "/nonexistent/x.so"));
    /* the default symbol */
    assert_int_equal(weir_plugin_load(tu_build("tests/plugins/test_plugins.so"), WEIR_PLUGIN_WORKER,
                                      &h, &pl, err, sizeof err),
                     0);
    assert_string_equal(pl->name, "echo");
    weir_plugin_unload(h);
}

int main(void)
{
    weir_log_set_level(WEIR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_and_finish),
        cmocka_unit_test(test_slow_reducer_bounded),
        cmocka_unit_test(test_rejections_counted),
        cmocka_unit_test(test_param_change_applies_next_event),
        cmocka_unit_test(test_round_robin_and_affinity),
        cmocka_unit_test(test_plugin_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
