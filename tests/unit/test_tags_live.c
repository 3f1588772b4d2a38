/* test_tags_live.c — `weir tags live`: a time-tag file as the source of a
 * pipeline, its histograms served over HTTP while they grow.
 *
 * Synthetic photons (fixed seed: two Poisson channels plus correlated pairs
 * 1.5 ns apart) are written as a HydraHarp T2 PTU; the correlation the
 * live pipeline publishes at the end must equal a brute-force histogram
 * computed here over every start/stop pair — with clips far smaller than
 * the data (so pending starts cross clip boundaries), and with --follow on
 * a file that is only half written when the run starts (also through
 * `weir tags corr --follow`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/array.h"
#include "weir/npy.h"
#include "weir/tags.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBINS 2000
#define BW 16
#define LO (-(NBINS / 2) * BW)

static weir_tag *synth(size_t *n)
{
    size_t cap = 40000, k = 0;
    weir_tag *ev = calloc(cap + 2, sizeof *ev);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int64_t t = 1000;
    while (k < cap) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += (int64_t)(x % 9000) + 1; /* mean ~4.5 ns between events */
        int pair = (x >> 20) % 5 == 0;
        ev[k++] = (weir_tag){.time = t, .micro = -1, .channel = (int16_t)(1 + (x >> 40) % 2)};
        if (pair && k < cap) { /* a correlated partner 1.5 ns later on the other channel */
            t += 1500;
            ev[k] = ev[k - 1];
            ev[k].time = t;
            ev[k].channel = ev[k - 1].channel == 1 ? 2 : 1;
            k++;
        }
    }
    *n = k;
    return ev;
}

/* Every start (ch 1) with every stop (ch 2): floor bins over [LO, LO + NBINS*BW). */
static void brute(const weir_tag *ev, size_t n, uint64_t *h)
{
    memset(h, 0, NBINS * sizeof *h);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].channel != 1) continue;
        for (size_t j = 0; j < n; j++) {
            if (ev[j].channel != 2) continue;
            int64_t d = ev[j].time - ev[i].time - LO;
            if (d < 0 || d >= (int64_t)NBINS * BW) continue;
            h[d / BW]++;
        }
    }
}

typedef struct {
    char *p;
    size_t n;
} mem;

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    mem *m = ud;
    char *q = realloc(m->p, m->n + sz * nm + 1);
    if (!q) return 0;
    memcpy(q + m->n, d, sz * nm);
    m->p = q;
    m->n += sz * nm;
    m->p[m->n] = 0;
    return sz * nm;
}

/* GET http://127.0.0.1:port/path as parsed JSON (NULL when not 200). */
static cJSON *get_json(int port, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    mem m = {0};
    long code = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    cJSON *j = code == 200 && m.p ? cJSON_Parse(m.p) : NULL;
    free(m.p);
    return j;
}

/* Waits until the pipeline published "final" = 1, then checks g2 against
 * the brute force and the clip count. */
static void check_served(int port, const uint64_t *want, int expect_clips)
{
    int done = 0;
    for (int tries = 0; tries < 600 && !done; tries++) { /* 60 s at most */
        cJSON *f = get_json(port, "/api/v1/results/final");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "value");
        done = cJSON_IsNumber(v) && v->valueint == 1;
        cJSON_Delete(f);
        if (!done) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(done);
    cJSON *g = get_json(port, "/api/v1/results/g2");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(g, "data");
    assert_int_equal(cJSON_GetArraySize(d), NBINS);
    for (int i = 0; i < NBINS; i++)
        if ((uint64_t)cJSON_GetArrayItem(d, i)->valuedouble != want[i])
            fail_msg("bin %d: served %.0f, brute force %llu", i,
                     cJSON_GetArrayItem(d, i)->valuedouble, (unsigned long long)want[i]);
    cJSON_Delete(g);
    cJSON *lo = get_json(port, "/api/v1/results/g2_lo_ps");
    assert_true(cJSON_GetObjectItemCaseSensitive(lo, "value")->valuedouble == LO);
    cJSON_Delete(lo);
    if (expect_clips > 0) {
        cJSON *c = get_json(port, "/api/v1/results/clips");
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(c, "value")->valueint, expect_clips);
        cJSON_Delete(c);
    }
}

/* Ends the kept-alive run (SIGTERM) and checks that it exits within 10 s. */
static void stop_live(const char *dir)
{
    int rc = tu_run(dir, "p=$(cat pid); kill $p; for i in $(seq 100); do kill -0 $p 2>/dev/null "
                         "|| exit 0; sleep 0.1; done; exit 1");
    if (rc) fail_msg("weir tags live did not exit after SIGTERM");
}

static const char *recipe = "{\"instruments\": [{\"kind\": \"corr\", \"name\": \"g2\", \"start\": "
                            "1, \"stop\": 2, \"binwidth\": \"16ps\", \"bins\": 2000}]}";

static void test_live_equals_brute_force(void **state)
{
    size_t n;
    weir_tag *ev = synth(&n);
    uint64_t *want = calloc(NBINS, sizeof *want);
    brute(ev, n, want);
    uint64_t total = 0;
    for (int i = 0; i < NBINS; i++)
        total += want[i];
    assert_true(total > 1000); /* the correlated pairs are there */
    const char *dir = tu_tmpdir("tags-live");
    char path[4200], err[256];
    snprintf(path, sizeof path, "%s/s.ptu", dir);
    weir_tag_encode_opts eo = {.variant = 0x01010204, .resolution_s = 1e-12};
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, &eo, ev, n, path, err, sizeof err), 0);
    tu_write(dir, "recipe.json", recipe);
    int port = tu_free_port();
    /* clips of 777 events: starts wait across clip boundaries */
    int rc = tu_run(dir,
                    "(timeout 60 %s tags live s.ptu recipe.json --clip 777 --port %d --keep-alive"
                    " & echo $! > pid)",
                    tu_build("weir"), port);
    assert_int_equal(rc, 0);
    check_served(port, want, (int)((n + 776) / 777));
    stop_live(dir);

    /* --follow: the file is half written when the run starts */
    weir_tag_reader *r;
    assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
    size_t head = (size_t)weir_tag_reader_info(r)->header_bytes;
    size_t rec = (size_t)weir_tag_reader_info(r)->record_bytes;
    size_t nrec = (size_t)weir_tag_reader_info(r)->nrecords;
    weir_tag_close(r);
    size_t cut = head + rec * (nrec / 2);
    port = tu_free_port();
    rc = tu_run(dir,
                "(head -c %zu s.ptu > g.ptu; timeout 60 %s tags live g.ptu recipe.json --clip 5000 "
                "--follow --timeout 2 --port %d --keep-alive & echo $! > pid; sleep 0.5; "
                "tail -c +%zu s.ptu >> g.ptu)",
                cut, tu_build("weir"), port, cut + 1);
    assert_int_equal(rc, 0);
    check_served(port, want, 0);
    stop_live(dir);

    /* the same growing file through `weir tags corr --follow` */
    rc = tu_run(dir,
                "(head -c %zu s.ptu > f.ptu; timeout 60 %s tags corr f.ptu --start 1 --stop 2 "
                "--binwidth 16ps --bins %d --follow --timeout 2 --npy-dir fnpy & pid=$!; "
                "sleep 0.5; tail -c +%zu s.ptu >> f.ptu; wait $pid)",
                cut, tu_build("weir"), NBINS, cut + 1);
    char *o = tu_output();
    if (rc) fail_msg("tags corr --follow: exit %d:\n%s", rc, o);
    free(o);
    char np[4300];
    snprintf(np, sizeof np, "%s/fnpy/corr.npy", dir);
    weir_array a;
    assert_int_equal(weir_npy_read(np, &a, err, sizeof err), 0);
    assert_int_equal(a.shape[a.ndim - 1], NBINS);
    for (int i = 0; i < NBINS; i++)
        if ((uint64_t)weir_array_get_f64(&a, (size_t)i) != want[i])
            fail_msg("--follow bin %d: %.0f, brute force %llu", i,
                     weir_array_get_f64(&a, (size_t)i), (unsigned long long)want[i]);
    weir_array_release(&a);
    free(want);
    free(ev);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_equals_brute_force),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
