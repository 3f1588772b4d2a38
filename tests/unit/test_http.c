/* test_http.c — the HTTP control plane over loopback with a real client
 * (libcurl), against the engine in-process and against `weir replay`.
 *
 * Values are checked against numbers computed here: the ROI means come
 * from the raw CBOR of dump_xrd.cbors (walked with libcbor, as
 * test_replay_e2e does), the NPY header is read by hand in the test and
 * the CBOR answer is decoded with libcbor. Abuse: missing or wrong tokens,
 * 413/415/404/405, path traversal (../, %2e%2e, absolute, a symlink out of
 * the web directory), 50 concurrent clients, a client reading 1 byte/s,
 * garbage on a raw socket. The snapshot store is hammered by a publisher
 * thread while readers check they never see a mix of two commits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/engine.h"
#include "weir/http.h"
#include "weir/replay.h"
#include "weir/results.h"

#include <arpa/inet.h>
#include <cbor.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

#include "testhttp.h"

/* ---- weir as a child process ---- */

static pid_t spawn_weir(const char *dir, const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = tu_build("weir");
    for (; *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir)) _exit(126);
        int fd = open("weir.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("LOG_LEVEL", "WARNING", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Exit status of pid once it ends (deadline s), -1 if killed. */
static int wait_exit(pid_t pid, double s)
{
    double end = now_s() + s;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("weir did not end within %.0f s", s);
        }
        nap_ms(10);
    }
}

/* ---- unit: token comparison ---- */

static void test_token_equal(void **state)
{
    assert_true(weir_http_token_equal("secret", 6, "secret", 6));
    assert_false(weir_http_token_equal("secreT", 6, "secret", 6));
    assert_false(weir_http_token_equal("secre", 5, "secret", 6));
    assert_false(weir_http_token_equal("secrets", 7, "secret", 6));
    assert_false(weir_http_token_equal("", 0, "secret", 6));
    assert_true(weir_http_token_equal("", 0, "", 0));
    /* a prefix of the secret followed by a NUL is not the secret */
    assert_false(weir_http_token_equal("sec\0et", 6, "secret", 6));
}

/* ---- unit: snapshot consistency under a hammering publisher ---- */

typedef struct {
    weir_results *s;
    atomic_int stop;
    uint64_t commits;
} hammer;

static void *publisher(void *arg)
{
    hammer *h = arg;
    double row[64];
    weir_array a = {.dtype = {WEIR_DT_F64, WEIR_LITTLE}, .ndim = 1};
    a.shape[0] = 64;
    a.strides[0] = sizeof(double);
    a.data = (const uint8_t *)row;
    for (int64_t i = 1; !atomic_load(&h->stop); i++) {
        for (int k = 0; k < 64; k++)
            row[k] = (double)i;
        assert_int_equal(weir_results_stage_i64(h->s, "a", i, NULL), 0);
        assert_int_equal(weir_results_stage_f64(h->s, "b", (double)i, NULL), 0);
        assert_int_equal(weir_results_stage_array(h->s, "arr", &a, NULL), 0);
        char txt[32];
        snprintf(txt, sizeof txt, "%lld", (long long)i);
        assert_int_equal(weir_results_stage_str(h->s, "c", txt, NULL), 0);
        assert_int_equal(weir_results_commit(h->s), 0);
        h->commits++;
    }
    return NULL;
}

static void test_snapshot_consistency(void **state)
{
    hammer h = {.s = weir_results_new()};
    assert_non_null(h.s);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publisher, &h), 0);
    uint64_t checked = 0, last_version = 0;
    double end = now_s() + 1.0;
    while (now_s() < end) {
        weir_results_snap *snap = weir_results_snapshot(h.s);
        uint64_t v = weir_results_snap_version(snap);
        assert_true(v >= last_version); /* versions never go back */
        last_version = v;
        if (weir_results_snap_count(snap) == 4) {
            const weir_result_value *a = weir_results_snap_find(snap, "a");
            const weir_result_value *b = weir_results_snap_find(snap, "b");
            const weir_result_value *c = weir_results_snap_find(snap, "c");
            const weir_result_value *arr = weir_results_snap_find(snap, "arr");
            assert_non_null(a);
            assert_non_null(arr);
            assert_true(b->f64 == (double)a->i64);
            assert_int_equal(atoll(c->str), a->i64);
            for (size_t k = 0; k < 64; k++)
                assert_true(weir_array_get_f64(&arr->array, k) == (double)a->i64);
            assert_int_equal(a->version, v);
            checked++;
        }
        weir_results_snap_release(snap);
    }
    atomic_store(&h.stop, 1);
    pthread_join(t, NULL);
    assert_true(checked > 100);
    assert_true(h.commits > 100);
    /* a commit without staged values makes no new version; clear does */
    uint64_t v = weir_results_version(h.s);
    assert_int_equal(weir_results_commit(h.s), 0);
    assert_int_equal(weir_results_version(h.s), v);
    assert_int_equal(weir_results_clear(h.s), 0);
    assert_int_equal(weir_results_version(h.s), v + 1);
    weir_results_snap *snap = weir_results_snapshot(h.s);
    assert_int_equal(weir_results_snap_count(snap), 0);
    weir_results_snap_release(snap);
    assert_int_equal(weir_results_stage_f64(h.s, "", 1, NULL), WEIR_EINVAL);
    weir_results_free(h.s);
}

/* ---- in-process: engine + server + gated replay ---- */

/* A replay whose source stops before event `gate` until released. */
typedef struct {
    weir_source inner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gate;
    int open, stop;
    uint64_t n;
} gated;

static int gated_next(void *ud, weir_event **ev)
{
    gated *g = ud;
    *ev = NULL;
    pthread_mutex_lock(&g->mu);
    while (g->n >= g->gate && !g->open && !g->stop)
        pthread_cond_wait(&g->cv, &g->mu);
    int stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    if (stop) return 0;
    g->n++;
    return g->inner.next(g->inner.ud, ev);
}

static void gate_open(gated *g, int stop)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    g->stop = stop;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gated_control(void *ud, weir_http_cmd cmd, char *err, size_t errlen)
{
    if (cmd == WEIR_HTTP_START) {
        snprintf(err, errlen, "no start in this test");
        return WEIR_EINVAL;
    }
    gate_open(ud, 1);
    return 0;
}

typedef struct {
    weir_plugin_handle *wh, *rh;
    const weir_plugin *w, *r;
    weir_params *params;
    weir_results *results;
    weir_replay *rp;
    weir_engine *eng;
    weir_http *http;
    gated g;
    int port;
} fixture;

static void fixture_open(fixture *f, uint64_t gate, const char *outdir)
{
    memset(f, 0, sizeof *f);
    char err[512];
    assert_int_equal(weir_plugin_load(tu_build("examples/roi_mean_worker.so"), WEIR_PLUGIN_WORKER,
                                      &f->wh, &f->w, err, sizeof err),
                     0);
    assert_int_equal(weir_plugin_load(tu_build("examples/tutorial_reducer.so"), WEIR_PLUGIN_REDUCER,
                                      &f->rh, &f->r, err, sizeof err),
                     0);
    f->params = weir_params_new();
    assert_int_equal(weir_params_set(f->params, "till_x", "3", 1, 0, err, sizeof err), 0);
    assert_int_equal(weir_params_set(f->params, "from_y", "7", 1, 0, err, sizeof err), 0);
    f->results = weir_results_new();
    weir_engine_config cfg = {.worker = f->w,
                              .reducer = f->r,
                              .nworkers = 2,
                              .params = f->params,
                              .output_dir = outdir,
                              .results = f->results};
    assert_int_equal(weir_engine_new(&cfg, &f->eng, err, sizeof err), 0);
    const char *files[] = {tu_shared("dranspose/dump_xrd.cbors")};
    assert_int_equal(weir_replay_open(files, 1, 0, &f->rp, err, sizeof err), 0);
    pthread_mutex_init(&f->g.mu, NULL);
    pthread_cond_init(&f->g.cv, NULL);
    f->g.inner = weir_replay_source(f->rp);
    f->g.gate = gate;
    weir_http_config hc = {.port = 0,
                           .sse_period_ms = 100,
                           .control = gated_control,
                           .hook_ud = &f->g,
                           .web_dir = outdir};
    assert_int_equal(weir_http_start(&hc, &f->http, err, sizeof err), 0);
    f->port = weir_http_port(f->http);
    assert_true(f->port > 0);
    weir_http_attach(f->http, f->eng, f->results);
    weir_http_set_state(f->http, WEIR_HTTP_RUNNING, NULL);
    assert_int_equal(weir_engine_start(f->eng, (weir_source){gated_next, NULL, &f->g}), 0);
}

static void fixture_finish(fixture *f)
{
    gate_open(&f->g, 0);
    assert_true(weir_engine_wait(f->eng, 20000));
    weir_http_detach(f->http);
    weir_http_set_state(f->http, WEIR_HTTP_FINISHED, NULL);
}

static void fixture_close(fixture *f)
{
    gate_open(&f->g, 1);
    weir_http_stop(f->http);
    weir_engine_free(f->eng);
    weir_replay_close(f->rp);
    weir_results_free(f->results);
    weir_params_free(f->params);
    weir_plugin_unload(f->wh);
    weir_plugin_unload(f->rh);
    pthread_mutex_destroy(&f->g.mu);
    pthread_cond_destroy(&f->g.cv);
}

/* Polls /results/events until it reaches n. */
static void wait_events(int port, int n)
{
    double end = now_s() + 20;
    for (;;) {
        resp r = http_get(port, "/api/v1/results/events");
        int v = -1;
        if (r.code == 200) {
            cJSON *j = cJSON_Parse(r.body);
            v = (int)jnum(j, "value");
            cJSON_Delete(j);
        }
        resp_free(&r);
        if (v >= n) return;
        if (now_s() > end) fail_msg("never saw %d events (last %d)", n, v);
        nap_ms(10);
    }
}

static cJSON *roi_mean(int port)
{
    return get_json(port, "/api/v1/results/roi_mean");
}

static void test_api_in_process(void **state)
{
    const char *dir = tu_tmpdir("http-inproc");
    double m1[11], m2[11];
    for (int i = 0; i < 11; i++)
        m1[i] = m2[i] = NAN;
    assert_int_equal(tu_xrd_roi_means(m1, 3, 7), 9);
    tu_xrd_roi_means(m2, 5, 2);
    fixture f;
    /* events 0..5 first: the header and images 1..5 */
    fixture_open(&f, 6, dir);
    wait_events(f.port, 5);

    /* parameters: list with types, defaults, descriptions, values */
    cJSON *ps = get_json(f.port, "/api/v1/parameters");
    int seen = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, ps)
    {
        if (!strcmp(jstr(p, "name"), "till_x")) {
            assert_string_equal(jstr(p, "type"), "int");
            assert_int_equal((int)jnum(p, "default"), 2);
            assert_int_equal((int)jnum(p, "value"), 3);
            assert_non_null(strstr(jstr(p, "description"), "till_x"));
            seen++;
        } else if (!strcmp(jstr(p, "name"), "stream")) {
            assert_string_equal(jstr(p, "type"), "string");
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    cJSON_Delete(ps);

    /* the first results: means over frame[:3, 7:], with the first hash */
    cJSON *st = get_json(f.port, "/api/v1/status");
    char h1[32];
    snprintf(h1, sizeof h1, "%s", jstr(st, "params_hash"));
    assert_string_equal(jstr(st, "state"), "running");
    assert_int_equal((int)jnum(st, "workers_alive"), 2);
    cJSON_Delete(st);
    cJSON *rm = roi_mean(f.port);
    assert_string_equal(jstr(rm, "params_hash"), h1);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    assert_int_equal(cJSON_GetArraySize(data), 6);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(data, 0))); /* the header: no value (NaN) */
    for (int ev = 1; ev <= 5; ev++)
        assert_float_equal(cJSON_GetArrayItem(data, ev)->valuedouble, m1[ev], 1e-12);
    cJSON_Delete(rm);

    /* validation errors name the parameter and the expected type */
    resp r = post_json(f.port, "/api/v1/parameters", "{\"till_x\": 1.5}", NULL);
    assert_int_equal(r.code, 400);
    assert_non_null(strstr(r.body, "parameter 'till_x': expected an integer"));
    resp_free(&r);
    r = post_json(f.port, "/api/v1/parameters", "{\"from_y\": true}", NULL);
    assert_int_equal(r.code, 400);
    assert_non_null(strstr(r.body, "parameter 'from_y': expected an integer"));
    resp_free(&r);
    r = post_json(f.port, "/api/v1/parameters", "{\"stream\": 3}", NULL);
    assert_int_equal(r.code, 400);
    assert_non_null(strstr(r.body, "parameter 'stream': expected a string"));
    resp_free(&r);
    r = post_json(f.port, "/api/v1/parameters", "{\"nope\": 3}", NULL);
    assert_int_equal(r.code, 400);
    assert_non_null(strstr(r.body, "unknown parameter 'nope'"));
    resp_free(&r);
    r = post_json(f.port, "/api/v1/parameters", "[1, 2]", NULL);
    assert_int_equal(r.code, 400);
    resp_free(&r);
    r = post_json(f.port, "/api/v1/parameters", "{\"till_x\": ", NULL);
    assert_int_equal(r.code, 400);
    resp_free(&r);
    /* atomic: one bad value changes nothing */
    r = post_json(f.port, "/api/v1/parameters", "{\"till_x\": 5, \"from_y\": \"x\"}", NULL);
    assert_int_equal(r.code, 400);
    resp_free(&r);
    st = get_json(f.port, "/api/v1/status");
    assert_string_equal(jstr(st, "params_hash"), h1);
    cJSON_Delete(st);

    /* a change of both applies from the next event */
    r = post_json(f.port, "/api/v1/parameters", "{\"till_x\": 5, \"from_y\": 2}", NULL);
    assert_int_equal(r.code, 200);
    cJSON *ok = cJSON_Parse(r.body);
    char h2[32];
    snprintf(h2, sizeof h2, "%s", jstr(ok, "params_hash"));
    cJSON_Delete(ok);
    resp_free(&r);
    assert_string_not_equal(h1, h2);
    ps = get_json(f.port, "/api/v1/parameters");
    cJSON_ArrayForEach(p, ps)
    {
        if (!strcmp(jstr(p, "name"), "till_x")) assert_int_equal((int)jnum(p, "value"), 5);
    }
    cJSON_Delete(ps);

    /* ?since: unchanged → 304 */
    rm = roi_mean(f.port);
    char since[64];
    snprintf(since, sizeof since, "/api/v1/results/roi_mean?since=%.0f", jnum(rm, "version"));
    cJSON_Delete(rm);
    r = http_get(f.port, since);
    assert_int_equal(r.code, 304);
    resp_free(&r);

    fixture_finish(&f);
    /* later results: computed with the new parameters, carrying the new hash */
    rm = roi_mean(f.port);
    assert_string_equal(jstr(rm, "params_hash"), h2);
    data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    assert_int_equal(cJSON_GetArraySize(data), 10);
    for (int ev = 1; ev <= 9; ev++)
        assert_float_equal(cJSON_GetArrayItem(data, ev)->valuedouble, ev <= 5 ? m1[ev] : m2[ev],
                           1e-12);
    double version = jnum(rm, "version");
    cJSON_Delete(rm);
    r = http_get(f.port, since);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    /* the value of whichever result came last (workers finish in any order) */
    cJSON *last = get_json(f.port, "/api/v1/results/last_roi_mean");
    int found = 0;
    for (int ev = 6; ev <= 9; ev++)
        found |= fabs(jnum(last, "value") - m2[ev]) < 1e-12;
    assert_true(found);
    cJSON_Delete(last);
    cJSON *evs = get_json(f.port, "/api/v1/results/events");
    assert_int_equal((int)jnum(evs, "value"), 9);
    cJSON_Delete(evs);

    /* the listing */
    cJSON *list = get_json(f.port, "/api/v1/results");
    assert_int_equal(cJSON_GetArraySize(list), 3);
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (!strcmp(jstr(it, "name"), "roi_mean")) {
            assert_string_equal(jstr(it, "kind"), "array");
            assert_string_equal(jstr(it, "dtype"), "float64");
            assert_int_equal(
                (int)cJSON_GetArrayItem(cJSON_GetObjectItem(it, "shape"), 0)->valuedouble, 10);
            assert_true(jnum(it, "version") == version);
        } else if (!strcmp(jstr(it, "name"), "events")) {
            assert_string_equal(jstr(it, "kind"), "scalar");
            assert_string_equal(jstr(it, "dtype"), "int64");
        }
    }
    cJSON_Delete(list);

    /* NPY, CBOR and JSON of the same result agree */
    r = http_get(f.port, "/api/v1/results/roi_mean.npy");
    assert_int_equal(r.code, 200);
    assert_string_equal(r.ctype, "application/octet-stream");
    assert_memory_equal(r.body, "\x93NUMPY\x01\x00", 8);
    size_t hl = (size_t)(unsigned char)r.body[8] | ((size_t)(unsigned char)r.body[9] << 8);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "%.*s", (int)hl, r.body + 10);
    assert_non_null(strstr(hdr, "'descr': '<f8'"));
    assert_non_null(strstr(hdr, "'shape': (10,)"));
    assert_int_equal(r.len, 10 + hl + 10 * 8);
    double npy[10];
    memcpy(npy, r.body + 10 + hl, sizeof npy);
    resp_free(&r);
    r = http_get(f.port, "/api/v1/results/roi_mean.cbor");
    assert_int_equal(r.code, 200);
    assert_string_equal(r.ctype, "application/cbor");
    struct cbor_load_result lr;
    cbor_item_t *cb = cbor_load((const unsigned char *)r.body, r.len, &lr);
    assert_non_null(cb);
    assert_true(cbor_isa_map(cb));
    const double *cbd = NULL;
    double cbver = -1;
    for (size_t i = 0; i < cbor_map_size(cb); i++) {
        struct cbor_pair pr = cbor_map_handle(cb)[i];
        size_t kl = cbor_string_length(pr.key);
        const char *k = (const char *)cbor_string_handle(pr.key);
        if (kl == 4 && !memcmp(k, "data", 4)) {
            assert_int_equal(cbor_tag_value(pr.value), 40);
            cbor_item_t *pair = cbor_tag_item(pr.value);
            cbor_item_t *dims = cbor_array_handle(pair)[0];
            assert_int_equal(cbor_array_size(dims), 1);
            assert_int_equal(cbor_get_int(cbor_array_handle(dims)[0]), 10);
            cbor_item_t *typed = cbor_array_handle(pair)[1];
            assert_int_equal(cbor_tag_value(typed), 86); /* float64 little endian */
            cbor_item_t *bs = cbor_tag_item(typed);
            assert_int_equal(cbor_bytestring_length(bs), 80);
            cbd = (const double *)cbor_bytestring_handle(bs);
            cbor_decref(&bs);
            cbor_decref(&pair);
        } else if (kl == 7 && !memcmp(k, "version", 7)) {
            cbver = (double)cbor_get_int(pr.value);
        }
    }
    assert_non_null(cbd);
    assert_true(cbver == version);
    rm = roi_mean(f.port);
    data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    for (int i = 0; i < 10; i++) {
        double cv;
        memcpy(&cv, &cbd[i], sizeof cv);
        if (i == 0) {
            assert_true(isnan(npy[0]) && isnan(cv));
            continue;
        }
        assert_true(npy[i] == cv);
        assert_true(npy[i] == cJSON_GetArrayItem(data, i)->valuedouble);
    }
    cJSON_Delete(rm);
    cbor_decref(&cb);
    resp_free(&r);
    r = http_get(f.port, "/api/v1/results/events.npy");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.body + 10, "'descr': '<i8'"));
    resp_free(&r);

    /* progress and status after the end */
    cJSON *pg = get_json(f.port, "/api/v1/progress");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(pg, "finished")));
    assert_int_equal((int)jnum(pg, "completed_events"), 11);
    assert_int_equal((int)jnum(pg, "total_events"), 11);
    cJSON_Delete(pg);
    st = get_json(f.port, "/api/v1/status");
    assert_string_equal(jstr(st, "state"), "finished");
    assert_int_equal(
        (int)jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stages"), "source"), "events_in"),
        11);
    assert_int_equal(
        (int)jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stages"), "reducer"), "results"),
        11);
    /* every refused request above was counted */
    assert_true(jnum(cJSON_GetObjectItem(st, "http"), "bad_request") >= 7);
    cJSON_Delete(st);
    /* between runs the parameters stay settable (for the next run) */
    r = post_json(f.port, "/api/v1/parameters", "{\"till_x\": 4}", NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    weir_params *kept = weir_http_params(f.http);
    int64_t tx = 0;
    assert_int_equal(weir_params_get_int(kept, "till_x", &tx), 0);
    assert_int_equal(tx, 4);
    weir_params_free(kept);
    fixture_close(&f);
}

/* ---- SSE: events arrive, rate limited; control stop ---- */

typedef struct {
    membuf m;
    double until;
} sse_sink;

static size_t sse_data(char *p, size_t sz, size_t n, void *ud)
{
    sse_sink *s = ud;
    on_data(p, sz, n, &s->m);
    return sz * n;
}

static int sse_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    sse_sink *s = ud;
    return now_s() > s->until; /* nonzero aborts the transfer */
}

static int count_str(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void *hammer_results(void *arg)
{
    hammer *h = arg;
    for (int64_t i = 1; !atomic_load(&h->stop); i++) {
        weir_results_stage_i64(h->s, "n", i, NULL);
        weir_results_commit(h->s);
        h->commits++;
        if (i % 64 == 0) nap_ms(1);
    }
    return NULL;
}

static void test_sse_and_stop(void **state)
{
    const char *dir = tu_tmpdir("http-sse");
    fixture f;
    fixture_open(&f, 3, dir);
    wait_events(f.port, 2);
    /* a publisher far faster than the SSE period */
    hammer h = {.s = f.results};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hammer_results, &h), 0);
    sse_sink s = {.until = now_s() + 1.0};
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/events", f.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
    double t0 = now_s();
    CURLcode cc = curl_easy_perform(c);
    double dt = now_s() - t0;
    assert_int_equal(cc, CURLE_ABORTED_BY_CALLBACK);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/event-stream"));
    curl_easy_cleanup(c);
    atomic_store(&h.stop, 1);
    pthread_join(t, NULL);
    int nres = count_str(s.m.data, "event: results\n");
    int nstat = count_str(s.m.data, "event: status\n");
    /* thousands of commits, but at most one results event per 100 ms */
    assert_true(h.commits > 100);
    assert_true(nres >= 3);
    assert_true(nres <= (int)(dt / 0.1) + 2);
    assert_true(nstat >= 1);
    assert_true(nstat <= (int)(dt / 0.1) + 2);
    assert_non_null(strstr(s.m.data, "data: {\"versions\":{"));
    assert_non_null(strstr(s.m.data, "\"state\":\"running\""));
    free(s.m.data);

    /* control: stop ends the acquisition gracefully (queued events done) */
    resp r = post_json(f.port, "/api/v1/control/stop", NULL, NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    assert_true(weir_engine_wait(f.eng, 20000));
    assert_int_equal(weir_engine_status(f.eng), 0);
    weir_stats st;
    weir_engine_stats(f.eng, &st);
    assert_int_equal(st.source.events_in, 3);
    r = post_json(f.port, "/api/v1/control/start", NULL, NULL);
    assert_int_equal(r.code, 409);
    resp_free(&r);
    r = request(f.port, "GET", "/api/v1/control/stop", NULL, NULL, 0, NULL);
    assert_int_equal(r.code, 405);
    resp_free(&r);
    weir_http_detach(f.http);
    fixture_close(&f);
}

static void test_abort_in_process(void **state)
{
    const char *dir = tu_tmpdir("http-abort");
    fixture f;
    fixture_open(&f, 4, dir);
    wait_events(f.port, 3);
    resp r = post_json(f.port, "/api/v1/control/abort", NULL, NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    assert_true(weir_engine_wait(f.eng, 20000));
    assert_int_equal(weir_engine_status(f.eng), WEIR_EABORTED);
    cJSON *st = get_json(f.port, "/api/v1/status");
    assert_string_equal(jstr(st, "state"), "error");
    assert_string_equal(jstr(st, "error"), "aborted");
    cJSON_Delete(st);
    weir_http_detach(f.http);
    fixture_close(&f);
}

/* ---- weir replay with the server: paused, keep-alive, rerun, token ---- */

static void test_replay_cli(void **state)
{
    const char *dir = tu_tmpdir("http-cli");
    tu_write(dir, "params.json",
             "[{\"name\": \"till_x\", \"data\": \"3\"}, {\"name\": \"from_y\", \"data\": \"7\"}]");
    double m1[11], m2[11];
    for (int i = 0; i < 11; i++)
        m1[i] = m2[i] = NAN;
    tu_xrd_roi_means(m1, 3, 7);
    tu_xrd_roi_means(m2, 2, 1);
    int port = tu_free_port();
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", port);
    char w[4096], rd[4096], data[4096];
    snprintf(w, sizeof w, "%s", tu_build("examples/roi_mean_worker.so"));
    snprintf(rd, sizeof rd, "%s", tu_build("examples/tutorial_reducer.so"));
    snprintf(data, sizeof data, "%s", tu_shared("dranspose/dump_xrd.cbors"));
    const char *args[] = {
        "replay", "-w",           w,        "-r",     rd,         "-f",           data,
        "-p",     "params.json",  "--port", portarg,  "--paused", "--keep-alive", "--token",
        "s3cret", "--output-dir", ".",      "--rate", "200",      "--quiet",      NULL};
    pid_t pid = spawn_weir(dir, args);
    wait_up(port, 20);
    wait_state(port, "armed", 10);
    /* writes need the token; reads do not */
    resp r = post_json(port, "/api/v1/control/start", NULL, NULL);
    assert_int_equal(r.code, 401);
    resp_free(&r);
    r = post_json(port, "/api/v1/control/start", NULL, "Bearer wrong!");
    assert_int_equal(r.code, 401);
    resp_free(&r);
    r = post_json(port, "/api/v1/parameters", "{\"till_x\": 1}", "Basic s3cret");
    assert_int_equal(r.code, 401);
    resp_free(&r);
    cJSON *pg = get_json(port, "/api/v1/progress");
    assert_int_equal((int)jnum(pg, "completed_events"), 0);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(pg, "finished")));
    cJSON_Delete(pg);
    r = post_json(port, "/api/v1/control/start", NULL, "Bearer s3cret");
    assert_int_equal(r.code, 200);
    resp_free(&r);
    wait_state(port, "finished", 20);
    cJSON *rm = get_json(port, "/api/v1/results/roi_mean");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(rm, "data");
    assert_int_equal(cJSON_GetArraySize(d), 10);
    for (int ev = 1; ev <= 9; ev++)
        assert_float_equal(cJSON_GetArrayItem(d, ev)->valuedouble, m1[ev], 1e-12);
    double v1 = jnum(rm, "version");
    cJSON_Delete(rm);
    pg = get_json(port, "/api/v1/progress");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(pg, "finished")));
    assert_int_equal((int)jnum(pg, "completed_events"), 11);
    assert_true(jnum(pg, "completed") == jnum(pg, "total"));
    assert_true(jnum(pg, "total") > 0);
    cJSON_Delete(pg);
    /* keep-alive: change the parameters and replay again */
    r = post_json(port, "/api/v1/parameters", "{\"till_x\": 2, \"from_y\": 1}", "Bearer s3cret");
    assert_int_equal(r.code, 200);
    resp_free(&r);
    r = post_json(port, "/api/v1/control/start", NULL, "Bearer s3cret");
    assert_int_equal(r.code, 200);
    resp_free(&r);
    double end = now_s() + 20;
    for (;;) {
        /* the new run starts from an empty store: 404 until it publishes */
        resp g = http_get(port, "/api/v1/results/roi_mean");
        rm = g.code == 200 ? cJSON_Parse(g.body) : cJSON_CreateObject();
        resp_free(&g);
        if (!cJSON_GetObjectItem(rm, "version")) {
            cJSON_Delete(rm);
            if (now_s() > end) fail_msg("the second replay never published");
            nap_ms(20);
            continue;
        }
        d = cJSON_GetObjectItemCaseSensitive(rm, "data");
        int done = jnum(rm, "version") > v1 && cJSON_GetArraySize(d) == 10;
        if (done) {
            for (int ev = 1; ev <= 9; ev++)
                assert_float_equal(cJSON_GetArrayItem(d, ev)->valuedouble, m2[ev], 1e-12);
        }
        cJSON_Delete(rm);
        if (done) break;
        if (now_s() > end) fail_msg("the second replay never finished");
        nap_ms(20);
    }
    wait_state(port, "finished", 20);
    /* Ctrl-C ends the keep-alive */
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid, 20), 0);
}

/* weir run --continuous with "http" in the config: the server stays up
 * between acquisitions (armed), shows the stream counters, and a parameter
 * changed between scans applies to the next one. */
static void test_run_cli(void **state)
{
    const char *dir = tu_tmpdir("http-run");
    int port = tu_free_port(), zport = tu_free_port();
    char cfg[8192];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"xrd\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": true}], \"worker\": \"%s\", "
             "\"reducer\": \"%s\", \"parameters\": {\"till_x\": \"3\", \"from_y\": \"7\"}, "
             "\"output_dir\": \".\", \"http\": \"127.0.0.1:%d\"}",
             zport, tu_build("examples/roi_mean_worker.so"),
             tu_build("examples/tutorial_reducer.so"), port);
    tu_write(dir, "run.json", cfg);
    double m1[11], m2[11];
    for (int i = 0; i < 11; i++)
        m1[i] = m2[i] = NAN;
    tu_xrd_roi_means(m1, 3, 7);
    tu_xrd_roi_means(m2, 6, 4);
    const char *args[] = {"run", "run.json", "--continuous", "--quiet", NULL};
    pid_t pid = spawn_weir(dir, args);
    wait_up(port, 20);
    wait_state(port, "armed", 10);
    for (int scan = 0; scan < 2; scan++) {
        assert_int_equal(tu_run(dir, "%s sim stins --endpoint tcp://127.0.0.1:%d --from %s",
                                tu_build("weir"), zport, tu_shared("dranspose/dump_xrd.cbors")),
                         0);
        double end = now_s() + 20;
        cJSON *st;
        for (;;) {
            st = get_json(port, "/api/v1/status");
            const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "streams"), 0);
            if (!strcmp(jstr(st, "state"), "armed") && ss &&
                (int)jnum(ss, "received") == 11 * (scan + 1))
                break;
            cJSON_Delete(st);
            if (now_s() > end) fail_msg("scan %d never ended", scan);
            nap_ms(20);
        }
        const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "streams"), 0);
        assert_string_equal(jstr(ss, "name"), "xrd");
        assert_int_equal((int)jnum(ss, "missing"), 0);
        assert_int_equal((int)jnum(ss, "duplicates"), 0);
        cJSON_Delete(st);
        cJSON *rm = get_json(port, "/api/v1/results/roi_mean");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(rm, "data");
        assert_int_equal(cJSON_GetArraySize(d), 10);
        for (int ev = 1; ev <= 9; ev++)
            assert_float_equal(cJSON_GetArrayItem(d, ev)->valuedouble, scan ? m2[ev] : m1[ev],
                               1e-12);
        cJSON_Delete(rm);
        if (!scan) {
            resp r = post_json(port, "/api/v1/parameters", "{\"till_x\": 6, \"from_y\": 4}", NULL);
            assert_int_equal(r.code, 200);
            resp_free(&r);
        }
    }
    resp r = post_json(port, "/api/v1/control/start", NULL, NULL);
    assert_int_equal(r.code, 409);
    resp_free(&r);
    r = post_json(port, "/api/v1/control/stop", NULL, NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    assert_int_equal(wait_exit(pid, 20), 0);
}

/* A longer synthetic capture for stop/abort/slow-client runs. */
static const char *synth_capture(const char *dir, int frames)
{
    assert_int_equal(tu_run(dir,
                            "%s synth -o cap.cbors --frames %d --shape 16x16 --compression none "
                            "--seed 3",
                            tu_build("weir"), frames),
                     0);
    return "cap.cbors";
}

static pid_t start_replay(const char *dir, int port, const char *rate, const char *extra)
{
    static char w[4096], rd[4096], portarg[16];
    snprintf(w, sizeof w, "%s", tu_build("examples/roi_mean_worker.so"));
    snprintf(rd, sizeof rd, "%s", tu_build("examples/tutorial_reducer.so"));
    snprintf(portarg, sizeof portarg, "%d", port);
    const char *args[] = {"replay",    "-w",      w,       "-r",     rd,   "-f",
                          "cap.cbors", "--port",  portarg, "--rate", rate, "--output-dir",
                          ".",         "--quiet", extra,   NULL};
    return spawn_weir(dir, args);
}

static void test_replay_stop_abort(void **state)
{
    const char *dir = tu_tmpdir("http-stop");
    synth_capture(dir, 400);
    int port = tu_free_port();
    pid_t pid = start_replay(dir, port, "100", NULL);
    wait_up(port, 20);
    wait_events(port, 5);
    resp r = post_json(port, "/api/v1/control/stop", NULL, NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    assert_int_equal(wait_exit(pid, 20), 0); /* a graceful stop is a clean end */

    port = tu_free_port();
    pid = start_replay(dir, port, "100", NULL);
    wait_up(port, 20);
    wait_events(port, 5);
    r = post_json(port, "/api/v1/control/abort", NULL, NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    assert_int_equal(wait_exit(pid, 20), 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/weir.log", dir);
    size_t len;
    char *log = (char *)tu_read_file(path, &len);
    log[len] = 0;
    assert_non_null(strstr(log, "FAILED: aborted"));
    free(log);
}

/* ---- abuse ---- */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends raw bytes, returns the status code of the answer (0 if none). */
static int raw_request(int port, const char *req, size_t len)
{
    int fd = raw_connect(port);
    assert_true(send(fd, req, len, MSG_NOSIGNAL) >= 0);
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) return 0;
    return code;
}

typedef struct {
    int port, ok, fail;
} client_arg;

static void *client_main(void *arg)
{
    client_arg *c = arg;
    static const char *const paths[] = {"/api/v1/status", "/api/v1/results/roi_mean",
                                        "/api/v1/parameters", "/api/v1/progress",
                                        "/api/v1/results"};
    for (int i = 0; i < 20; i++) {
        CURL *h = curl_easy_init();
        char url[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", c->port, paths[i % 5]);
        membuf m = {0};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
        long code = 0;
        /* a connection the server turns away at its connection limit (closed
         * connections still being reaped count against it under load) is
         * tried again, as a browser would; every request must get an answer */
        for (int tries = 0; tries < 20 && code == 0; tries++) {
            if (tries) nap_ms(50);
            if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        }
        /* roi_mean is 404 until the reducer's first commit: an answer too */
        if (code == 200 || (code == 404 && i % 5 == 1))
            c->ok++;
        else
            c->fail++;
        free(m.data);
        curl_easy_cleanup(h);
    }
    return NULL;
}

typedef struct {
    int port;
    int bytes;
    atomic_int stop;
} slow_arg;

/* Opens the event stream and reads it one byte per second. */
static void *slow_main(void *arg)
{
    slow_arg *s = arg;
    int fd = raw_connect(s->port);
    int small = 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *req = "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) > 0);
    while (!atomic_load(&s->stop)) {
        char c;
        if (recv(fd, &c, 1, 0) == 1) s->bytes++;
        for (int i = 0; i < 10 && !atomic_load(&s->stop); i++)
            nap_ms(100);
    }
    close(fd);
    return NULL;
}

static void test_abuse(void **state)
{
    const char *dir = tu_tmpdir("http-abuse");
    /* a web directory with a page, a secret beside it and a symlink out */
    char web[4200], path[4300];
    snprintf(web, sizeof web, "%s/web", dir);
    assert_int_equal(mkdir(web, 0755), 0);
    tu_write(web, "index.html", "<!doctype html><title>t</title>");
    tu_write(web, "app.js", "console.log(1)");
    tu_write(dir, "secret.txt", "do not serve");
    snprintf(path, sizeof path, "%s/link.txt", web);
    char target[4300];
    snprintf(target, sizeof target, "%s/secret.txt", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/.hidden", web);
    tu_write(web, ".hidden", "hidden");

    synth_capture(dir, 2000);
    char err[256];
    weir_http *h;
    weir_results *res = weir_results_new();
    weir_http_config hc = {.port = 0, .web_dir = web, .conn_timeout_s = 3};
    assert_int_equal(weir_http_start(&hc, &h, err, sizeof err), 0);
    int port = weir_http_port(h);

    /* static files: content types, traversal refused */
    resp r = http_get(port, "/");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "text/html"));
    assert_non_null(strstr(r.body, "<title>t</title>"));
    resp_free(&r);
    r = http_get(port, "/app.js");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "text/javascript"));
    resp_free(&r);
    static const char *const bad[] = {
        "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",  "/..%2fsecret.txt",
        "/link.txt",      "/.hidden",           "//etc/passwd",          "/etc/passwd",
        "/nope.html",     "/./index.html",      "/web/../../secret.txt",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = http_get(port, bad[i]);
        if (r.code != 404 && r.code != 400) fail_msg("%s answered %ld", bad[i], r.code);
        assert_null(strstr(r.body, "do not serve"));
        resp_free(&r);
    }
    char absreq[4400];
    snprintf(absreq, sizeof absreq, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    int code = raw_request(port, absreq, strlen(absreq));
    assert_true(code == 404 || code == 400);
    /* 404, 405, 415, 413 */
    r = http_get(port, "/api/v1/nothing");
    assert_int_equal(r.code, 404);
    resp_free(&r);
    r = http_get(port, "/api/v2/status");
    assert_int_equal(r.code, 404);
    resp_free(&r);
    r = http_get(port, "/api/v1/results/nothing.npy");
    assert_int_equal(r.code, 404);
    resp_free(&r);
    r = request(port, "DELETE", "/api/v1/parameters", NULL, NULL, 0, NULL);
    assert_int_equal(r.code, 405);
    resp_free(&r);
    r = request(port, "PUT", "/index.html", NULL, NULL, 0, NULL);
    assert_int_equal(r.code, 405);
    resp_free(&r);
    r = request(port, "POST", "/api/v1/parameters", "text/plain", "{}", 2, NULL);
    assert_int_equal(r.code, 415);
    resp_free(&r);
    r = request(port, "POST", "/api/v1/parameters", NULL, "{}", 2, NULL);
    assert_int_equal(r.code, 415);
    resp_free(&r);
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = 0;
    r = request(port, "POST", "/api/v1/parameters", "application/json", huge, big, NULL);
    assert_int_equal(r.code, 413);
    resp_free(&r);
    /* chunked, so no Content-Length announces it: still 413 */
    char chunked[256];
    snprintf(chunked, sizeof chunked,
             "POST /api/v1/parameters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
             big);
    int fd = raw_connect(port);
    assert_true(send(fd, chunked, strlen(chunked), MSG_NOSIGNAL) > 0);
    assert_true(send(fd, huge, big, MSG_NOSIGNAL) > 0);
    assert_true(send(fd, "\r\n0\r\n\r\n", 7, MSG_NOSIGNAL) > 0);
    char ans[256];
    ssize_t n = recv(fd, ans, sizeof ans - 1, 0);
    assert_true(n > 12);
    ans[n] = 0;
    assert_non_null(strstr(ans, " 413 "));
    close(fd);
    free(huge);
    /* no parameters known yet: 400, not a crash */
    r = post_json(port, "/api/v1/parameters", "{\"a\": 1}", NULL);
    assert_int_equal(r.code, 400);
    resp_free(&r);
    /* CORS is off: no Access-Control-* header */
    fd = raw_connect(port);
    const char *oreq = "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\n"
                       "Connection: close\r\n\r\n";
    assert_true(send(fd, oreq, strlen(oreq), MSG_NOSIGNAL) > 0);
    membuf all = {0};
    char chunk[4096];
    while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0)
        on_data(chunk, 1, (size_t)n, &all);
    close(fd);
    assert_non_null(all.data);
    assert_null(strcasestr(all.data, "Access-Control-"));
    free(all.data);

    /* garbage on a raw socket: refused or closed, and the server goes on */
    unsigned seed = 7;
    for (int k = 0; k < 20; k++) {
        char g[600];
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (char)(rand_r(&seed) & 0xff);
        if (k % 2) memcpy(g + 580, "\r\n\r\n", 4);
        fd = raw_connect(port);
        send(fd, g, sizeof g, MSG_NOSIGNAL);
        recv(fd, chunk, sizeof chunk, 0);
        close(fd);
    }
    code = raw_request(port, "GARBAGE / HTTP/9.9\r\n\r\n", 22);
    assert_true(code == 0 || (code >= 400 && code < 600));
    code = raw_request(port, "GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 40);
    assert_int_equal(code, 200);

    /* a replay running while a slow client holds an SSE stream and 50
     * clients ask at once: the pipeline never waits for them */
    char errb[512];
    weir_plugin_handle *wh, *rh;
    const weir_plugin *wp, *rp;
    assert_int_equal(weir_plugin_load(tu_build("examples/roi_mean_worker.so"), WEIR_PLUGIN_WORKER,
                                      &wh, &wp, errb, sizeof errb),
                     0);
    assert_int_equal(weir_plugin_load(tu_build("examples/tutorial_reducer.so"), WEIR_PLUGIN_REDUCER,
                                      &rh, &rp, errb, sizeof errb),
                     0);
    weir_engine_config cfg = {
        .worker = wp, .reducer = rp, .nworkers = 2, .output_dir = dir, .results = res};
    weir_engine *eng;
    assert_int_equal(weir_engine_new(&cfg, &eng, errb, sizeof errb), 0);
    char cap[4300];
    snprintf(cap, sizeof cap, "%s/cap.cbors", dir);
    const char *files[] = {cap};
    weir_replay *rpl;
    assert_int_equal(weir_replay_open(files, 1, 0, &rpl, errb, sizeof errb), 0);
    weir_http_attach(h, eng, res);
    weir_http_set_state(h, WEIR_HTTP_RUNNING, NULL);
    slow_arg sa = {.port = port};
    pthread_t slow;
    assert_int_equal(pthread_create(&slow, NULL, slow_main, &sa), 0);
    nap_ms(200); /* let the slow client connect before the run starts */
    double t0 = now_s();
    assert_int_equal(weir_engine_start(eng, weir_replay_source(rpl)), 0);
    client_arg ca[50];
    pthread_t ct[50];
    for (int i = 0; i < 50; i++) {
        ca[i] = (client_arg){.port = port};
        assert_int_equal(pthread_create(&ct[i], NULL, client_main, &ca[i]), 0);
    }
    assert_true(weir_engine_wait(eng, 30000));
    double run_s = now_s() - t0;
    for (int i = 0; i < 50; i++) {
        pthread_join(ct[i], NULL);
        assert_int_equal(ca[i].fail, 0);
        assert_int_equal(ca[i].ok, 20);
    }
    weir_stats st;
    weir_engine_stats(eng, &st);
    assert_int_equal(st.source.events_in, 2002);
    assert_int_equal(st.reducer.results, 2002);
    /* the slow client has read a handful of bytes; the run did not wait */
    assert_true(sa.bytes < 10);
    assert_true(run_s < 20);
    weir_http_detach(h);
    cJSON *evs = get_json(port, "/api/v1/results/events");
    assert_int_equal((int)jnum(evs, "value"), 2000);
    cJSON_Delete(evs);
    atomic_store(&sa.stop, 1);
    pthread_join(slow, NULL);
    weir_http_counters hcnt;
    weir_http_counters_get(h, &hcnt);
    assert_true(hcnt.refused >= 15);
    assert_true(hcnt.not_found >= 12);
    assert_true(hcnt.too_large >= 2);
    assert_true(hcnt.bad_type >= 2);
    assert_true(hcnt.bad_method >= 2);
    weir_http_stop(h);
    weir_engine_free(eng);
    weir_replay_close(rpl);
    weir_results_free(res);
    weir_plugin_unload(wh);
    weir_plugin_unload(rh);
}

static void test_bind_and_options(void **state)
{
    char err[256];
    weir_http *h = NULL;
    weir_http_config bad = {.addr = "not-an-ip", .port = 0};
    assert_int_not_equal(weir_http_start(&bad, &h, err, sizeof err), 0);
    assert_non_null(strstr(err, "not-an-ip"));
    int port = tu_free_port();
    weir_http_config a = {.port = port, .cors_origin = "http://viewer:8080"};
    assert_int_equal(weir_http_start(&a, &h, err, sizeof err), 0);
    /* the same port twice: a clear error, not a crash */
    weir_http *h2 = NULL;
    assert_int_not_equal(weir_http_start(&a, &h2, err, sizeof err), 0);
    /* with --cors the allowed origin is announced */
    int fd = raw_connect(port);
    const char *req = "GET /api/v1/results HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) > 0);
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "Access-Control-Allow-Origin: http://viewer:8080"));
    close(fd);
    /* no engine and no store: empty lists, idle state */
    cJSON *st = get_json(port, "/api/v1/status");
    assert_string_equal(jstr(st, "state"), "idle");
    cJSON_Delete(st);
    cJSON *l = get_json(port, "/api/v1/results");
    assert_int_equal(cJSON_GetArraySize(l), 0);
    cJSON_Delete(l);
    l = get_json(port, "/api/v1/parameters");
    assert_int_equal(cJSON_GetArraySize(l), 0);
    cJSON_Delete(l);
    weir_http_stop(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),      cmocka_unit_test(test_snapshot_consistency),
        cmocka_unit_test(test_bind_and_options), cmocka_unit_test(test_api_in_process),
        cmocka_unit_test(test_sse_and_stop),     cmocka_unit_test(test_abort_in_process),
        cmocka_unit_test(test_replay_cli),       cmocka_unit_test(test_replay_stop_abort),
        cmocka_unit_test(test_run_cli),          cmocka_unit_test(test_abuse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
