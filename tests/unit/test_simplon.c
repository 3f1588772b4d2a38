/* test_simplon.c — weir's SIMPLON REST client against weir's SIMPLON stub
 * over loopback (config round trips, type errors as HTTP 400 with their
 * message, arm -> increasing sequence ids, callbacks in order, the state
 * machine, 404 and 413), and the stub alone through libcurl used directly
 * in the test (raw requests: paths, status codes, JSON bodies), so the
 * stub is not only checked by the client written with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/simplon.h"
#include "weir/simplon_stub.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- fixture */

typedef struct {
    pthread_mutex_t lock;
    char events[32][64];
    int nevents;
    int refuse_arm;
    int64_t armed_nimages; /* from the config handed to on_arm */
    weir_simplon_stub *stub;
} recorder;

static void record(recorder *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(recorder *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->lock);
    if (r->nevents < 32) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->events[r->nevents++], 64, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&r->lock);
}

static int on_arm(void *u, int64_t series, const cJSON *config)
{
    recorder *r = u;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(config, "nimages");
    r->armed_nimages = cJSON_IsNumber(n) ? (int64_t)n->valuedouble : -1;
    record(r, "arm %lld", (long long)series);
    return r->refuse_arm;
}

static void on_trigger(void *u, int64_t series, int64_t trigger)
{
    recorder *r = u;
    record(r, "trigger %lld %lld", (long long)series, (long long)trigger);
    /* a callback may use the stub (no lock is held): finish at once */
    weir_simplon_stub_trigger_done(r->stub);
}

static void on_disarm(void *u, int64_t series, const char *cmd)
{
    record(u, "%s %lld", cmd, (long long)series);
}

typedef struct {
    recorder rec;
    weir_simplon_stub *stub;
    weir_simplon *cl;
    char base[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->rec.lock, NULL);
    weir_simplon_stub_config sc = {0};
    sc.max_body = 4096;
    sc.cb = (weir_simplon_stub_callbacks){&f->rec, on_arm, on_trigger, on_disarm};
    char err[256] = "";
    if (weir_simplon_stub_new(&sc, &f->stub)) return -1;
    f->rec.stub = f->stub;
    if (weir_simplon_stub_start(f->stub, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int port = weir_simplon_stub_port(f->stub);
    if (port <= 0) return -1;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", port);
    weir_simplon_config cc = {.host = "127.0.0.1", .port = port, .timeout_ms = 5000};
    if (weir_simplon_new(&cc, &f->cl, err, sizeof err)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    weir_simplon_free(f->cl);
    weir_simplon_stub_free(f->stub);
    pthread_mutex_destroy(&f->rec.lock);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ client */

static void test_config_round_trips(void **state)
{
    fixture *f = *state;
    weir_simplon *c = f->cl;
    char err[512] = "", s[64];
    assert_int_equal(weir_simplon_version(c, s, sizeof s, err, sizeof err), 0);
    assert_string_equal(s, "1.8.0");
    int64_t i = 0;
    double d = 0;
    /* the defaults a DCU starts with in the stub */
    assert_int_equal(weir_simplon_config_get_int(c, "nimages", &i, err, sizeof err), 0);
    assert_int_equal(i, 1);
    assert_int_equal(weir_simplon_config_set_int(c, "nimages", 16384, err, sizeof err), 0);
    assert_int_equal(weir_simplon_config_get_int(c, "nimages", &i, err, sizeof err), 0);
    assert_int_equal(i, 16384);
    assert_int_equal(weir_simplon_config_set_int(c, "ntrigger", 3, err, sizeof err), 0);
    assert_int_equal(weir_simplon_config_set_string(c, "trigger_mode", "exte", err, sizeof err), 0);
    assert_int_equal(
        weir_simplon_config_get_string(c, "trigger_mode", s, sizeof s, err, sizeof err), 0);
    assert_string_equal(s, "exte");
    /* count_time above frame_time drags frame_time along: both reported */
    cJSON *v = cJSON_CreateNumber(0.25), *changed = NULL;
    assert_int_equal(weir_simplon_config_set(c, "count_time", v, &changed, err, sizeof err), 0);
    cJSON_Delete(v);
    assert_true(cJSON_IsArray(changed));
    assert_int_equal(cJSON_GetArraySize(changed), 2);
    assert_string_equal(cJSON_GetArrayItem(changed, 0)->valuestring, "count_time");
    assert_string_equal(cJSON_GetArrayItem(changed, 1)->valuestring, "frame_time");
    cJSON_Delete(changed);
    assert_int_equal(weir_simplon_config_get_double(c, "frame_time", &d, err, sizeof err), 0);
    assert_true(d == 0.25);
    assert_int_equal(weir_simplon_config_get_double(c, "count_time", &d, err, sizeof err), 0);
    assert_true(d == 0.25);
    /* a smaller count_time changes nothing else */
    v = cJSON_CreateNumber(0.125);
    assert_int_equal(weir_simplon_config_set(c, "count_time", v, &changed, err, sizeof err), 0);
    cJSON_Delete(v);
    assert_int_equal(cJSON_GetArraySize(changed), 1);
    cJSON_Delete(changed);
    assert_int_equal(weir_simplon_config_set_bool(c, "mask_to_zero", 1, err, sizeof err), 0);
    cJSON *b = NULL;
    assert_int_equal(weir_simplon_config_get(c, "mask_to_zero", &b, err, sizeof err), 0);
    assert_true(cJSON_IsTrue(b));
    cJSON_Delete(b);
    assert_int_equal(weir_simplon_config_set_string(c, "compression", "lz4", err, sizeof err), 0);
    /* LiberTEM's frame count: exte -> ntrigger */
    uint64_t frames = 0;
    assert_int_equal(weir_simplon_frame_count(c, &frames, err, sizeof err), 0);
    assert_int_equal(frames, 3);
    assert_int_equal(weir_simplon_config_set_string(c, "trigger_mode", "ints", err, sizeof err), 0);
    assert_int_equal(weir_simplon_frame_count(c, &frames, err, sizeof err), 0);
    assert_int_equal(frames, 16384 * 3);
    /* the owner sets read-only geometry; the client reads it */
    cJSON *x = cJSON_CreateNumber(192);
    assert_int_equal(weir_simplon_stub_set(f->stub, NULL, "x_pixels_in_detector", x), 0);
    cJSON_Delete(x);
    assert_int_equal(weir_simplon_config_get_int(c, "x_pixels_in_detector", &i, err, sizeof err),
                     0);
    assert_int_equal(i, 192);
    /* the whole reply: value_type and access mode */
    cJSON *full = NULL, *val = NULL;
    assert_int_equal(weir_simplon_get(c, "detector", "config", "x_pixels_in_detector", &val, &full,
                                      err, sizeof err),
                     0);
    assert_string_equal(cJSON_GetObjectItem(full, "access_mode")->valuestring, "r");
    assert_string_equal(cJSON_GetObjectItem(full, "value_type")->valuestring, "uint");
    cJSON_Delete(val);
    cJSON_Delete(full);
    /* stream settings */
    assert_int_equal(weir_simplon_stream_set_enabled(c, 1, err, sizeof err), 0);
    assert_int_equal(weir_simplon_stream_set_header_detail(c, "all", err, sizeof err), 0);
    cJSON *hd = weir_simplon_stub_get(f->stub, "stream", "header_detail");
    assert_string_equal(hd->valuestring, "all");
    cJSON_Delete(hd);
    assert_int_equal(weir_simplon_stream_set_header_detail(c, "most", err, sizeof err),
                     WEIR_EINVAL);
    assert_int_equal(weir_simplon_stream_set_enabled(c, 0, err, sizeof err), 0);
    assert_int_equal(weir_simplon_status_state(c, "stream", s, sizeof s, err, sizeof err), 0);
    assert_string_equal(s, "disabled");
}

static void test_types_rejected(void **state)
{
    fixture *f = *state;
    weir_simplon *c = f->cl;
    char err[512] = "", want[256];
    assert_int_equal(weir_simplon_config_set_string(c, "nimages", "10", err, sizeof err),
                     WEIR_EPARAM);
    snprintf(want, sizeof want, "PUT %s/detector/api/1.8.0/config/nimages: HTTP 400: ", f->base);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "nimages: expected an unsigned integer, got a string"));
    assert_int_equal(weir_simplon_config_set_double(c, "nimages", 1.5, err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(strstr(err, "expected an unsigned integer, got 1.5"));
    assert_int_equal(weir_simplon_config_set_int(c, "nimages", 0, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(weir_simplon_config_set_string(c, "trigger_mode", "soon", err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(
        strstr(err, "\"soon\" is not one of the allowed values (exte, exts, inte, ints)"));
    assert_int_equal(weir_simplon_config_set_bool(c, "count_time", 1, err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(strstr(err, "count_time: expected a number, got a bool"));
    assert_int_equal(weir_simplon_config_set_int(c, "mask_to_zero", 1, err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(strstr(err, "expected a bool"));
    assert_int_equal(weir_simplon_config_set_int(c, "x_pixels_in_detector", 10, err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(strstr(err, "x_pixels_in_detector is read-only"));
    assert_int_equal(weir_simplon_config_set_int(c, "bit_depth_image", 12, err, sizeof err),
                     WEIR_EPARAM);
    /* nothing changed */
    int64_t i = 0;
    assert_int_equal(weir_simplon_config_get_int(c, "nimages", &i, err, sizeof err), 0);
    assert_int_equal(i, 1);
    /* the owner is type-checked too */
    cJSON *sv = cJSON_CreateString("wide");
    assert_int_equal(weir_simplon_stub_set(f->stub, NULL, "x_pixels_in_detector", sv), WEIR_EPARAM);
    assert_int_equal(weir_simplon_stub_set(f->stub, NULL, "no_such", sv), WEIR_ENOTFOUND);
    cJSON_Delete(sv);
    /* the client refuses names that would leave the path */
    assert_int_equal(weir_simplon_config_set_int(c, "../command/arm", 1, err, sizeof err),
                     WEIR_EINVAL);
}

static void test_arm_trigger_disarm(void **state)
{
    fixture *f = *state;
    weir_simplon *c = f->cl;
    char err[512] = "", st[32];
    assert_int_equal(weir_simplon_config_set_int(c, "ntrigger", 2, err, sizeof err), 0);
    assert_int_equal(weir_simplon_config_set_int(c, "nimages", 7, err, sizeof err), 0);
    assert_int_equal(weir_simplon_status_state(c, NULL, st, sizeof st, err, sizeof err), 0);
    assert_string_equal(st, "idle");
    /* trigger before arm */
    assert_int_equal(weir_simplon_trigger(c, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "not armed"));
    int64_t seq = 0, seq2 = 0;
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(f->rec.armed_nimages, 7);
    assert_int_equal(weir_simplon_status_state(c, NULL, st, sizeof st, err, sizeof err), 0);
    assert_string_equal(st, "ready");
    assert_int_equal(weir_simplon_arm(c, &seq2, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "not idle"));
    assert_int_equal(weir_simplon_trigger(c, err, sizeof err), 0);
    assert_int_equal(weir_simplon_status_state(c, NULL, st, sizeof st, err, sizeof err), 0);
    assert_string_equal(st, "ready"); /* the callback finished the first of 2 triggers */
    assert_int_equal(weir_simplon_trigger(c, err, sizeof err), 0);
    assert_int_equal(weir_simplon_status_state(c, NULL, st, sizeof st, err, sizeof err), 0);
    assert_string_equal(st, "idle"); /* after the last trigger, as a DCU */
    assert_int_equal(weir_simplon_trigger(c, err, sizeof err), WEIR_EPARAM);
    assert_int_equal(weir_simplon_disarm(c, &seq2, err, sizeof err), 0);
    assert_int_equal(seq2, 1);
    /* sequence ids increase */
    for (int64_t k = 2; k <= 4; k++) {
        assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), 0);
        assert_int_equal(seq, k);
        assert_int_equal(weir_simplon_disarm(c, NULL, err, sizeof err), 0);
    }
    assert_int_equal(weir_simplon_stub_series(f->stub), 4);
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), 0);
    /* exte: no REST trigger; the owner ends the series itself */
    weir_simplon_stub_series_done(f->stub);
    assert_int_equal(weir_simplon_status_state(c, NULL, st, sizeof st, err, sizeof err), 0);
    assert_string_equal(st, "idle");
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), 0);
    assert_int_equal(weir_simplon_abort(c, err, sizeof err), 0);
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), 0);
    assert_int_equal(weir_simplon_cancel(c, err, sizeof err), 0);
    /* the owner refuses an arm: HTTP 500, still idle */
    f->rec.refuse_arm = 7;
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), WEIR_EIO);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_int_equal(weir_simplon_stub_state(f->stub), WEIR_SIMPLON_IDLE);
    f->rec.refuse_arm = 0;
    const char *want[] = {"arm 1", "trigger 1 0", "trigger 1 1", "arm 2",    "disarm 2",
                          "arm 3", "disarm 3",    "arm 4",       "disarm 4", "arm 5",
                          "arm 6", "abort 6",     "arm 7",       "cancel 7", "arm 8"};
    int nwant = (int)(sizeof want / sizeof want[0]);
    assert_int_equal(f->rec.nevents, nwant);
    for (int k = 0; k < nwant; k++)
        assert_string_equal(f->rec.events[k], want[k]);
    /* the disarm after the last trigger found the detector idle: no callback */
}

static void test_not_found_and_too_large(void **state)
{
    fixture *f = *state;
    weir_simplon *c = f->cl;
    char err[512] = "", want[256];
    cJSON *v = NULL;
    assert_int_equal(weir_simplon_config_get(c, "no_such_param", &v, err, sizeof err),
                     WEIR_ENOTFOUND);
    snprintf(want, sizeof want,
             "GET %s/detector/api/1.8.0/config/no_such_param: HTTP 404: ", f->base);
    assert_non_null(strstr(err, want));
    assert_int_equal(weir_simplon_get(c, "monitor", "config", "mode", &v, NULL, err, sizeof err),
                     WEIR_ENOTFOUND);
    assert_int_equal(
        weir_simplon_put(c, "detector", "command", "selfdestruct", NULL, NULL, err, sizeof err),
        WEIR_ENOTFOUND);
    /* a body over the stub's 4096 bytes */
    char *big = malloc(100001);
    memset(big, 'a', 100000);
    big[100000] = 0;
    assert_int_equal(weir_simplon_config_set_string(c, "description", big, err, sizeof err),
                     WEIR_EIO);
    assert_non_null(strstr(err, "HTTP 413"));
    /* under the limit but too long for a string parameter: 400 */
    big[3000] = 0;
    cJSON *s = cJSON_CreateString(big);
    assert_int_equal(
        weir_simplon_put(c, "filewriter", "config", "name_pattern", s, NULL, err, sizeof err),
        WEIR_EPARAM);
    cJSON_Delete(s);
    free(big);
    /* the server still answers */
    int64_t i;
    assert_int_equal(weir_simplon_config_get_int(c, "nimages", &i, err, sizeof err), 0);
    /* an API version the stub does not serve */
    weir_simplon *old = NULL;
    weir_simplon_config cc = {
        .host = "127.0.0.1", .port = weir_simplon_stub_port(f->stub), .api_version = "1.6.0"};
    assert_int_equal(weir_simplon_new(&cc, &old, err, sizeof err), 0);
    assert_int_equal(weir_simplon_config_get_int(old, "nimages", &i, err, sizeof err),
                     WEIR_ENOTFOUND);
    assert_non_null(strstr(err, "1.6.0"));
    weir_simplon_free(old);
}

static void test_unreachable(void **state)
{
    weir_simplon *c = NULL;
    char err[512] = "", want[128];
    int port = tu_free_port(); /* nobody listens there */
    weir_simplon_config cc = {.host = "127.0.0.1", .port = port, .timeout_ms = 2000};
    assert_int_equal(weir_simplon_new(&cc, &c, err, sizeof err), 0);
    int64_t seq;
    assert_int_equal(weir_simplon_arm(c, &seq, err, sizeof err), WEIR_EIO);
    snprintf(want, sizeof want, "PUT http://127.0.0.1:%d/detector/api/1.8.0/command/arm: ", port);
    assert_non_null(strstr(err, want));
    weir_simplon_free(c);
}

/* ------------------------------------------------- raw libcurl, no client */

typedef struct {
    long status;
    char ctype[128];
    char body[8192];
    size_t len;
} raw_reply;

static size_t raw_write(char *p, size_t sz, size_t n, void *arg)
{
    raw_reply *r = arg;
    size_t k = sz * n;
    if (k > sizeof r->body - 1 - r->len) k = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = 0;
    return sz * n;
}

typedef struct {
    const char *data;
    size_t len, pos;
} raw_src;

static size_t raw_read(char *p, size_t sz, size_t n, void *arg)
{
    raw_src *s = arg;
    size_t k = sz * n;
    if (k > s->len - s->pos) k = s->len - s->pos;
    memcpy(p, s->data + s->pos, k);
    s->pos += k;
    return k;
}

/* body NULL: none; chunked: sent without Content-Length. */
static raw_reply *raw(const char *base, const char *method, const char *path, const char *body,
                      int chunked)
{
    raw_reply *r = calloc(1, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    raw_src src = {body, body ? strlen(body) : 0, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (chunked) {
        hd = curl_slist_append(hd, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, raw_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) fail_msg("%s %s: %s", method, url, curl_easy_strerror(cc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return r;
}

static cJSON *json_of(const raw_reply *r)
{
    assert_non_null(strstr(r->ctype, "application/json"));
    cJSON *j = cJSON_Parse(r->body);
    if (!j) fail_msg("not JSON: %s", r->body);
    return j;
}

static void test_stub_raw_http(void **state)
{
    fixture *f = *state;
    const char *b = f->base;
    raw_reply *r = raw(b, "GET", "/detector/api/version/", NULL, 0);
    assert_int_equal(r->status, 200);
    cJSON *j = json_of(r);
    assert_string_equal(cJSON_GetObjectItem(j, "value")->valuestring, "1.8.0");
    assert_string_equal(cJSON_GetObjectItem(j, "value_type")->valuestring, "string");
    cJSON_Delete(j);
    free(r);

    r = raw(b, "GET", "/detector/api/1.8.0/config/trigger_mode", NULL, 0);
    assert_int_equal(r->status, 200);
    j = json_of(r);
    assert_string_equal(cJSON_GetObjectItem(j, "value")->valuestring, "ints");
    assert_string_equal(cJSON_GetObjectItem(j, "access_mode")->valuestring, "rw");
    cJSON *allowed = cJSON_GetObjectItem(j, "allowed_values");
    assert_int_equal(cJSON_GetArraySize(allowed), 4);
    assert_string_equal(cJSON_GetArrayItem(allowed, 0)->valuestring, "exte");
    cJSON_Delete(j);
    free(r);

    r = raw(b, "GET", "/detector/api/1.8.0/config/count_time", NULL, 0);
    j = json_of(r);
    assert_string_equal(cJSON_GetObjectItem(j, "unit")->valuestring, "s");
    assert_string_equal(cJSON_GetObjectItem(j, "value_type")->valuestring, "float");
    assert_true(cJSON_GetObjectItem(j, "value")->valuedouble == 0.001);
    cJSON_Delete(j);
    free(r);

    /* PUT {"value": 5}: the reply is the list of changed parameters */
    r = raw(b, "PUT", "/detector/api/1.8.0/config/ntrigger", "{\"value\": 5}", 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "[\"ntrigger\"]");
    free(r);
    r = raw(b, "GET", "/detector/api/1.8.0/config/ntrigger", NULL, 0);
    j = json_of(r);
    assert_int_equal(cJSON_GetObjectItem(j, "value")->valueint, 5);
    cJSON_Delete(j);
    free(r);
    r = raw(b, "PUT", "/detector/api/1.8.0/config/photon_energy", "{\"value\": 12000}", 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "[\"photon_energy\",\"threshold_energy\"]");
    free(r);

    /* malformed bodies and wrong types: 400 with a message */
    const char *bad[][2] = {
        {"/detector/api/1.8.0/config/ntrigger", "{bad"},
        {"/detector/api/1.8.0/config/ntrigger", "{\"val\": 5}"},
        {"/detector/api/1.8.0/config/ntrigger", "[5]"},
        {"/detector/api/1.8.0/config/ntrigger", "{\"value\": \"5\"}"},
        {"/detector/api/1.8.0/config/ntrigger", "{\"value\": -1}"},
        {"/detector/api/1.8.0/config/ntrigger", "{\"value\": null}"},
        {"/stream/api/1.8.0/config/header_detail", "{\"value\": \"some\"}"},
        {"/stream/api/1.8.0/config/mode", "{\"value\": true}"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        r = raw(b, "PUT", bad[k][0], bad[k][1], 0);
        if (r->status != 400) fail_msg("%s %s: %ld", bad[k][0], bad[k][1], r->status);
        assert_true(r->len > 0);
        free(r);
    }
    r = raw(b, "PUT", "/detector/api/1.8.0/config/ntrigger", "{\"value\": \"5\"}", 0);
    assert_string_equal(r->body, "ntrigger: expected an unsigned integer, got a string");
    free(r);

    /* commands */
    r = raw(b, "PUT", "/detector/api/1.8.0/command/arm", NULL, 0);
    assert_int_equal(r->status, 200);
    j = json_of(r);
    assert_int_equal(cJSON_GetObjectItem(j, "sequence id")->valueint, 1);
    cJSON_Delete(j);
    free(r);
    r = raw(b, "GET", "/detector/api/1.8.0/status/state", NULL, 0);
    j = json_of(r);
    assert_string_equal(cJSON_GetObjectItem(j, "value")->valuestring, "ready");
    cJSON_Delete(j);
    free(r);
    r = raw(b, "PUT", "/detector/api/1.8.0/command/disarm", "", 0);
    assert_int_equal(r->status, 200);
    free(r);
    r = raw(b, "PUT", "/detector/api/1.8.0/command/arm", NULL, 0);
    j = json_of(r);
    assert_int_equal(cJSON_GetObjectItem(j, "sequence id")->valueint, 2);
    cJSON_Delete(j);
    free(r);

    /* paths and methods */
    const char *missing[] = {"/",
                             "/nothing",
                             "/detector/api/1.8.0/config/",
                             "/detector/api/1.8.0/config/nimages/extra",
                             "/detector/api/1.7.0/config/nimages",
                             "/detector/api/1.8.0/confug/nimages",
                             "/stream/api/1.8.0/command/arm",
                             "/detector/api/1.8.0/status/temperature",
                             "/monitor/api/1.8.0/config/mode",
                             "/detector/xpi/1.8.0/config/nimages"};
    for (size_t k = 0; k < sizeof missing / sizeof missing[0]; k++) {
        r = raw(b, "GET", missing[k], NULL, 0);
        if (r->status != 404) fail_msg("GET %s: %ld", missing[k], r->status);
        free(r);
    }
    r = raw(b, "GET", "/detector/api/1.8.0/command/arm", NULL, 0);
    assert_int_equal(r->status, 405);
    free(r);
    r = raw(b, "POST", "/detector/api/1.8.0/config/nimages", "{\"value\": 1}", 0);
    assert_int_equal(r->status, 405);
    free(r);
    r = raw(b, "DELETE", "/detector/api/version/", NULL, 0);
    assert_int_equal(r->status, 405);
    free(r);

    /* too large: with Content-Length, and chunked without it */
    char *big = malloc(20001);
    memset(big, ' ', 20000);
    big[20000] = 0;
    memcpy(big, "{\"value\": 1", 11);
    big[19999] = '}';
    r = raw(b, "PUT", "/detector/api/1.8.0/config/nimages", big, 0);
    assert_int_equal(r->status, 413);
    free(r);
    r = raw(b, "PUT", "/detector/api/1.8.0/config/nimages", big, 1);
    assert_int_equal(r->status, 413);
    free(r);
    /* the same shape under the limit is fine, chunked too */
    big[4000] = 0;
    big[3999] = '}';
    r = raw(b, "PUT", "/detector/api/1.8.0/config/nimages", big, 1);
    assert_int_equal(r->status, 200);
    free(r);
    free(big);
}

static void test_stub_handle(void **state)
{
    weir_simplon_stub *s = NULL;
    assert_int_equal(weir_simplon_stub_new(NULL, &s), 0);
    assert_int_equal(weir_simplon_stub_port(s), 0);
    int status;
    char *body = NULL;
    assert_int_equal(weir_simplon_stub_handle(s, "PUT", "/detector/api/1.8.0/command/arm", NULL, 0,
                                              &status, &body),
                     0);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{\"sequence id\":1}");
    free(body);
    assert_int_equal(weir_simplon_stub_state(s), WEIR_SIMPLON_READY);
    const char *put = "{\"value\": 100}";
    assert_int_equal(weir_simplon_stub_handle(s, "PUT", "/detector/api/1.8.0/config/nimages?x=1",
                                              put, strlen(put), &status, &body),
                     0);
    assert_int_equal(status, 200);
    free(body);
    cJSON *v = weir_simplon_stub_get(s, NULL, "nimages");
    assert_int_equal(v->valueint, 100);
    cJSON_Delete(v);
    assert_int_equal(weir_simplon_stub_handle(s, "GET", "relative/path", NULL, 0, &status, &body),
                     0);
    assert_int_equal(status, 404);
    free(body);
    weir_simplon_stub_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_types_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arm_trigger_disarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_too_large, setup, teardown),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test_setup_teardown(test_stub_raw_http, setup, teardown),
        cmocka_unit_test(test_stub_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
