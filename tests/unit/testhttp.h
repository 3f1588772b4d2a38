/* testhttp.h — the HTTP client helpers the control-plane tests share
 * (test_http.c, test_mpi.c): libcurl requests, JSON answers, the ROI means
 * of dump_xrd.cbors computed independently from the raw capture, and
 * polling the state. Functions are static and marked unused: each test
 * uses some of them. */
#ifndef WEIR_TESTHTTP_H
#define WEIR_TESTHTTP_H

/* include after <cmocka.h> and testutil.h (fail_msg, tu_shared) */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __attribute__((unused)) double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static __attribute__((unused)) void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    char *data;
    size_t len;
} membuf;

static __attribute__((unused)) size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    membuf *m = ud;
    char *d = realloc(m->data, m->len + sz * n + 1);
    if (!d) return 0;
    memcpy(d + m->len, p, sz * n);
    m->data = d;
    m->len += sz * n;
    m->data[m->len] = 0;
    return sz * n;
}

typedef struct {
    long code;
    char *body;
    size_t len;
    char ctype[128];
} resp;

static __attribute__((unused)) void resp_free(resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request. method NULL = GET; body sent with content type ct. */
static __attribute__((unused)) resp request(int port, const char *method, const char *path,
                                            const char *ct, const char *body, size_t blen,
                                            const char *auth)
{
    resp r = {0};
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    membuf m = {0};
    struct curl_slist *hd = NULL;
    char line[512];
    if (ct) {
        snprintf(line, sizeof line, "Content-Type: %s", ct);
        hd = curl_slist_append(hd, line);
    } else if (body) {
        hd = curl_slist_append(hd, "Content-Type:");
    }
    if (auth) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        hd = curl_slist_append(hd, line);
    }
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    } else if (method && !strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method ? method : "GET", path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    char *ctp = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctp);
    if (ctp) snprintf(r.ctype, sizeof r.ctype, "%s", ctp);
    r.body = m.data ? m.data : calloc(1, 1);
    r.len = m.len;
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    return r;
}

static __attribute__((unused)) resp http_get(int port, const char *path)
{
    return request(port, NULL, path, NULL, NULL, 0, NULL);
}

static __attribute__((unused)) resp post_json(int port, const char *path, const char *json,
                                              const char *auth)
{
    return request(port, "POST", path, "application/json", json, json ? strlen(json) : 0, auth);
}

static __attribute__((unused)) cJSON *get_json(int port, const char *path)
{
    resp r = http_get(port, path);
    if (r.code != 200) fail_msg("GET %s: %ld %s", path, r.code, r.body);
    cJSON *j = cJSON_Parse(r.body);
    if (!j) fail_msg("GET %s: not JSON: %s", path, r.body);
    resp_free(&r);
    return j;
}

static __attribute__((unused)) double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", k);
    return v->valuedouble;
}

static __attribute__((unused)) const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) fail_msg("no string '%s'", k);
    return v->valuestring;
}

/* Waits until the server on port answers /api/v1/status (deadline s seconds). */
static __attribute__((unused)) void wait_up(int port, double s)
{
    double end = now_s() + s;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/status", port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
    while (curl_easy_perform(c) != CURLE_OK) {
        if (now_s() > end) fail_msg("server on port %d did not come up", port);
        nap_ms(20);
    }
    curl_easy_cleanup(c);
}

/* Polls /status until its state is `state` (deadline s seconds). */
static __attribute__((unused)) void wait_state(int port, const char *state, double s)
{
    double end = now_s() + s;
    for (;;) {
        cJSON *j = get_json(port, "/api/v1/status");
        int ok = !strcmp(jstr(j, "state"), state);
        cJSON_Delete(j);
        if (ok) return;
        if (now_s() > end) fail_msg("state never became '%s'", state);
        nap_ms(20);
    }
}

#endif
