/* api.c — the control plane's request handlers, free of sockets.
 *
 * http_handle takes a request (method, unescaped path, ?since, the
 * Authorization and Content-Type headers, the body) and fills a reply
 * (status, content type, body). server.c feeds it from libmicrohttpd; the
 * fuzz harness feeds it directly. JSON goes through cJSON, CBOR through
 * libcbor, NPY through weir's encoder — nothing here parses by hand except
 * the URL path, which is split on '/' and checked segment by segment.
 *
 * The engine is only read through thread-safe calls: parameter copies,
 * weir_engine_stats, and results snapshots (immutable, refcounted), so a
 * request never makes the pipeline wait. Requests hold eng_lock for reading
 * while they touch the engine, so detach can wait for them. */
#include "http_internal.h"

#include "weir/error.h"
#include "weir/npy.h"

#include "../core/result.h"

#include <cbor.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JSON_CT "application/json"
#define STATIC_MAX (64u << 20) /* largest static file served */

void http_reply_clear(http_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void reply_take(http_reply *r, int status, const char *ct, char *body)
{
    free(r->body);
    r->status = status;
    r->content_type = ct;
    r->body = body;
    r->len = body ? strlen(body) : 0;
}

static void reply_json(http_reply *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        reply_take(r, 500, "text/plain", strdup("out of memory\n"));
        return;
    }
    reply_take(r, status, JSON_CT, s);
}

static void reply_error(http_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(http_reply *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    if (j) cJSON_AddStringToObject(j, "error", msg);
    reply_json(r, status, j);
}

static void count(weir_http *h, uint64_t *field)
{
    pthread_mutex_lock(&h->mu);
    (*field)++;
    h->ctr.refused++;
    pthread_mutex_unlock(&h->mu);
}

/* ---- token ---- */

int weir_http_token_equal(const char *given, size_t given_len, const char *secret,
                          size_t secret_len)
{
    /* Walk the secret's length whatever was given, folding every difference
     * (and a length mismatch) into one accumulator: no early exit. */
    volatile unsigned char acc = (unsigned char)(given_len != secret_len);
    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return acc == 0;
}

static int authorized(weir_http *h, const char *auth)
{
    if (!h->token) return 1;
    if (!auth || strncasecmp(auth, "Bearer ", 7)) return 0;
    const char *t = auth + 7;
    return weir_http_token_equal(t, strlen(t), h->token, h->token_len);
}

static int json_content_type(const char *ct)
{
    if (!ct) return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n)) return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

int http_precheck(weir_http *h, const http_req *rq, http_reply *out)
{
    if (strcmp(rq->method, "POST")) return 0;
    if (!authorized(h, rq->auth)) {
        count(h, &h->ctr.unauthorized);
        reply_error(out, 401, "a valid bearer token is required for writes");
        return 1;
    }
    if (!json_content_type(rq->content_type)) {
        count(h, &h->ctr.bad_type);
        reply_error(out, 415, "POST bodies must be Content-Type: application/json");
        return 1;
    }
    if (rq->body_too_large || rq->body_len > h->body_limit) {
        count(h, &h->ctr.too_large);
        reply_error(out, 413, "request body over %zu bytes", h->body_limit);
        return 1;
    }
    return 0;
}

/* ---- engine access ---- */

static weir_engine *eng_begin(weir_http *h)
{
    pthread_rwlock_rdlock(&h->eng_lock);
    return h->eng;
}

static void eng_end(weir_http *h)
{
    pthread_rwlock_unlock(&h->eng_lock);
}

/* The parameters now in force (caller frees): the engine's, or the kept
 * copy between runs. */
static weir_params *current_params(weir_http *h)
{
    weir_params *p = NULL;
    weir_engine *e = eng_begin(h);
    if (e) p = weir_engine_params_copy(e);
    eng_end(h);
    if (!e) {
        pthread_mutex_lock(&h->mu);
        if (h->kept_params) p = weir_params_clone(h->kept_params);
        pthread_mutex_unlock(&h->mu);
        if (p) weir_params_hash(p);
    }
    return p;
}

weir_params *weir_http_params(weir_http *h)
{
    return current_params(h);
}

/* ---- parameters ---- */

static const char *type_name(weir_param_type t)
{
    switch (t) {
    case WEIR_PARAM_INT:
        return "int";
    case WEIR_PARAM_FLOAT:
        return "float";
    case WEIR_PARAM_BOOL:
        return "bool";
    case WEIR_PARAM_STRING:
        return "string";
    case WEIR_PARAM_BINARY:
        return "binary";
    }
    return "binary";
}

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f) return 0;
    }
    return 1;
}

/* A typed JSON value from a parameter's text form. */
static cJSON *typed_value(weir_param_type t, const char *s, size_t n)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)(n < 63 ? n : 63), s);
    switch (t) {
    case WEIR_PARAM_INT:
        return cJSON_CreateNumber((double)strtoll(buf, NULL, 10));
    case WEIR_PARAM_FLOAT:
        return cJSON_CreateNumber(strtod(buf, NULL));
    case WEIR_PARAM_BOOL:
        return cJSON_CreateBool(!strcasecmp(buf, "true") || !strcmp(buf, "1"));
    default:
        break;
    }
    if (printable(s, n)) {
        char *c = strndup(s, n);
        cJSON *j = c ? cJSON_CreateString(c) : NULL;
        free(c);
        return j;
    }
    /* binary bytes that are not text: hex, so the JSON stays valid */
    char *hex = malloc(2 * n + 1);
    if (!hex) return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    cJSON *j = cJSON_CreateString(hex);
    free(hex);
    return j;
}

static void get_parameters(weir_http *h, http_reply *out)
{
    weir_params *p = current_params(h);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; p && arr && i < weir_params_count(p); i++) {
        weir_param_info in;
        if (weir_params_info(p, i, &in)) continue;
        const char *data = "";
        size_t len = 0;
        cJSON *val = NULL;
        int64_t iv;
        double fv;
        int bv;
        if (in.type == WEIR_PARAM_INT && !weir_params_get_int(p, in.name, &iv))
            val = cJSON_CreateNumber((double)iv);
        else if (in.type == WEIR_PARAM_FLOAT && !weir_params_get_float(p, in.name, &fv))
            val = cJSON_CreateNumber(fv);
        else if (in.type == WEIR_PARAM_BOOL && !weir_params_get_bool(p, in.name, &bv))
            val = cJSON_CreateBool(bv);
        else if (!weir_params_get_bytes(p, in.name, &data, &len))
            val = typed_value(in.type, data, len);
        else
            val = cJSON_CreateNull();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", in.name);
        cJSON_AddStringToObject(o, "type", type_name(in.type));
        cJSON_AddItemToObject(o, "default",
                              in.default_value
                                  ? typed_value(in.type, in.default_value, strlen(in.default_value))
                                  : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "description",
                              in.description ? cJSON_CreateString(in.description)
                                             : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "value", val);
        if (!printable(data, len)) cJSON_AddStringToObject(o, "encoding", "hex");
        cJSON_AddItemToArray(arr, o);
    }
    weir_params_free(p);
    reply_json(out, 200, arr);
}

/* The text form of a JSON value for parameter `name` of type t; NULL with
 * a message in err when the JSON type does not fit. */
static char *param_text(const char *name, weir_param_type t, const cJSON *v, char *err,
                        size_t errlen)
{
    char buf[64];
    if (cJSON_IsString(v)) {
        if (t == WEIR_PARAM_INT || t == WEIR_PARAM_FLOAT || t == WEIR_PARAM_BOOL ||
            t == WEIR_PARAM_STRING || t == WEIR_PARAM_BINARY)
            return strdup(v->valuestring); /* validated by the parameter set */
    }
    switch (t) {
    case WEIR_PARAM_INT:
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
            v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.0e15) {
            snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
            return strdup(buf);
        }
        snprintf(err, errlen, "parameter '%s': expected an integer", name);
        return NULL;
    case WEIR_PARAM_FLOAT:
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
            return strdup(buf);
        }
        snprintf(err, errlen, "parameter '%s': expected a number", name);
        return NULL;
    case WEIR_PARAM_BOOL:
        if (cJSON_IsBool(v)) return strdup(cJSON_IsTrue(v) ? "True" : "False");
        snprintf(err, errlen, "parameter '%s': expected a boolean", name);
        return NULL;
    default:
        snprintf(err, errlen, "parameter '%s': expected a string", name);
        return NULL;
    }
}

static void post_parameters(weir_http *h, const http_req *rq, http_reply *out)
{
    cJSON *body = cJSON_ParseWithLength(rq->body ? rq->body : "", rq->body_len);
    weir_params *cur = NULL;
    char **names = NULL, **texts = NULL;
    size_t n = 0;
    char err[300] = "";
    if (!cJSON_IsObject(body)) {
        count(h, &h->ctr.bad_request);
        reply_error(out, 400, "the body must be a JSON object {\"name\": value, ...}");
        goto out;
    }
    cur = current_params(h);
    int nitems = cJSON_GetArraySize(body);
    names = calloc((size_t)nitems + 1, sizeof *names);
    texts = calloc((size_t)nitems + 1, sizeof *texts);
    if (!names || !texts) {
        reply_error(out, 500, "out of memory");
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        weir_param_info in = {0};
        size_t k, np = cur ? weir_params_count(cur) : 0;
        for (k = 0; k < np; k++)
            if (!weir_params_info(cur, k, &in) && !strcmp(in.name, it->string)) break;
        if (k == np) {
            count(h, &h->ctr.bad_request);
            reply_error(out, 400, "unknown parameter '%.200s'", it->string);
            goto out;
        }
        names[n] = strdup(it->string);
        texts[n] = param_text(it->string, in.type, it, err, sizeof err);
        n++;
        if (!names[n - 1] || !texts[n - 1]) {
            count(h, &h->ctr.bad_request);
            reply_error(out, 400, "%s", err[0] ? err : "out of memory");
            goto out;
        }
    }
    int rc;
    weir_engine *e = eng_begin(h);
    if (e) {
        rc = weir_engine_set_params(e, n, (const char *const *)names, (const char *const *)texts,
                                    err, sizeof err);
    } else {
        pthread_mutex_lock(&h->mu);
        weir_params *next = h->kept_params ? weir_params_clone(h->kept_params) : NULL;
        rc = next ? WEIR_OK : WEIR_ENOTFOUND;
        if (!next) snprintf(err, sizeof err, "no parameters are known yet");
        for (size_t i = 0; i < n && !rc; i++)
            rc = weir_params_set(next, names[i], texts[i], strlen(texts[i]), 1, err, sizeof err);
        if (!rc) {
            weir_params_free(h->kept_params);
            h->kept_params = next;
            next = NULL;
        }
        weir_params_free(next);
        pthread_mutex_unlock(&h->mu);
    }
    eng_end(h);
    if (rc) {
        count(h, &h->ctr.bad_request);
        reply_error(out, 400, "%s", err);
        goto out;
    }
    weir_params *now = current_params(h);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "params_hash", now ? weir_params_hash(now) : "");
    weir_params_free(now);
    reply_json(out, 200, j);
out:
    for (size_t i = 0; names && i < n; i++) {
        free(names[i]);
        free(texts[i]);
    }
    free(names);
    free(texts);
    weir_params_free(cur);
    cJSON_Delete(body);
}

/* ---- status and progress ---- */

static const char *state_name(weir_http_state s)
{
    switch (s) {
    case WEIR_HTTP_IDLE:
        return "idle";
    case WEIR_HTTP_ARMED:
        return "armed";
    case WEIR_HTTP_RUNNING:
        return "running";
    case WEIR_HTTP_FINISHED:
        return "finished";
    case WEIR_HTTP_ERROR:
        return "error";
    }
    return "idle";
}

static cJSON *stage_json(const weir_stage_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "events_in", (double)s->events_in);
    cJSON_AddNumberToObject(o, "bytes_in", (double)s->bytes_in);
    cJSON_AddNumberToObject(o, "events_out", (double)s->events_out);
    cJSON_AddNumberToObject(o, "bytes_out", (double)s->bytes_out);
    cJSON_AddNumberToObject(o, "results", (double)s->results);
    cJSON_AddNumberToObject(o, "rejected", (double)s->rejected);
    cJSON *rs = cJSON_AddArrayToObject(o, "reasons");
    for (size_t i = 0; rs && i < s->nreasons && i < WEIR_MAX_REASONS; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "reason", s->reasons[i].text);
        cJSON_AddNumberToObject(r, "count", (double)s->reasons[i].count);
        cJSON_AddItemToArray(rs, r);
    }
    cJSON_AddNumberToObject(o, "queue_fill", (double)s->queue_fill);
    cJSON_AddNumberToObject(o, "queue_max", (double)s->queue_max_fill);
    cJSON_AddNumberToObject(o, "queue_capacity", (double)s->queue_capacity);
    cJSON_AddNumberToObject(o, "user_seconds", s->user_seconds);
    cJSON_AddNumberToObject(o, "blocked_seconds", s->blocked_seconds);
    return o;
}

/* Fills st from the engine (1) or the kept counters (1) or nothing (0). */
static int get_stats(weir_http *h, weir_stats *st)
{
    if (h->stats) return h->stats(h->hook_ud, st);
    weir_engine *e = eng_begin(h);
    if (e) weir_engine_stats(e, st);
    eng_end(h);
    if (e) return 1;
    pthread_mutex_lock(&h->mu);
    int have = h->have_last_stats;
    if (have) *st = *h->last_stats;
    pthread_mutex_unlock(&h->mu);
    return have;
}

static cJSON *streams_json(weir_http *h)
{
    cJSON *arr = cJSON_CreateArray();
    weir_engine *e = eng_begin(h); /* the live source is attached with the engine */
    (void)e;
    weir_live *l = h->live;
    weir_live_stream_stats ss[32];
    size_t n = l ? weir_live_stream_stats_get(l, ss, 32) : 0;
    eng_end(h);
    if (!l && h->streams) n = h->streams(h->hook_ud, ss, 32);
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ss[i].name);
        cJSON_AddStringToObject(o, "protocol", ss[i].protocol);
        cJSON_AddNumberToObject(o, "received", (double)ss[i].received);
        cJSON_AddNumberToObject(o, "bytes", (double)ss[i].bytes);
        cJSON_AddNumberToObject(o, "discarded", (double)ss[i].discarded);
        cJSON_AddNumberToObject(o, "malformed", (double)ss[i].malformed);
        cJSON_AddNumberToObject(o, "missing", (double)ss[i].missing);
        cJSON_AddNumberToObject(o, "duplicates", (double)ss[i].duplicates);
        cJSON_AddNumberToObject(o, "out_of_order", (double)ss[i].out_of_order);
        cJSON_AddNumberToObject(o, "series_mismatch", (double)ss[i].series_mismatch);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void add_counters(cJSON *o, const weir_http_counters *c)
{
    cJSON *j = cJSON_AddObjectToObject(o, "http");
    if (!j) return;
    cJSON_AddNumberToObject(j, "requests", (double)c->requests);
    cJSON_AddNumberToObject(j, "refused", (double)c->refused);
    cJSON_AddNumberToObject(j, "unauthorized", (double)c->unauthorized);
    cJSON_AddNumberToObject(j, "too_large", (double)c->too_large);
    cJSON_AddNumberToObject(j, "bad_content_type", (double)c->bad_type);
    cJSON_AddNumberToObject(j, "not_found", (double)c->not_found);
    cJSON_AddNumberToObject(j, "bad_method", (double)c->bad_method);
    cJSON_AddNumberToObject(j, "bad_request", (double)c->bad_request);
    cJSON_AddNumberToObject(j, "sse_clients", (double)c->sse_clients);
    cJSON_AddNumberToObject(j, "sse_dropped", (double)c->sse_dropped);
    cJSON_AddNumberToObject(j, "timeouts", (double)c->timeouts);
}

char *http_status_json(weir_http *h)
{
    weir_stats *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    int have = get_stats(h, st);
    weir_params *p = current_params(h);
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&h->mu);
    weir_http_state s = h->state;
    char error[256];
    snprintf(error, sizeof error, "%s", h->error);
    double eps = h->events_per_s, bps = h->bytes_per_s;
    weir_http_counters c = h->ctr;
    pthread_mutex_unlock(&h->mu);
    if (s != WEIR_HTTP_ERROR && have && st->error) {
        s = WEIR_HTTP_ERROR;
        snprintf(error, sizeof error, "%s", st->error_text);
    }
    cJSON_AddStringToObject(o, "state", state_name(s));
    cJSON_AddStringToObject(o, "error", s == WEIR_HTTP_ERROR ? error : "");
    cJSON_AddStringToObject(o, "params_hash", p ? weir_params_hash(p) : "");
    cJSON_AddNumberToObject(o, "events_per_s", eps);
    cJSON_AddNumberToObject(o, "bytes_per_s", bps);
    cJSON_AddNumberToObject(o, "workers_alive", have ? st->workers_alive : 0);
    cJSON_AddNumberToObject(o, "nworkers", have ? st->nworkers : 0);
    cJSON_AddNumberToObject(o, "wall_seconds", have ? st->wall_seconds : 0);
    cJSON_AddNumberToObject(o, "timer_calls", have ? (double)st->timer_calls : 0);
    cJSON *stages = cJSON_AddObjectToObject(o, "stages");
    if (stages) {
        cJSON_AddItemToObject(stages, "source", stage_json(&st->source));
        cJSON *w = stage_json(&st->workers_total);
        cJSON *per = w ? cJSON_AddArrayToObject(w, "per_worker") : NULL;
        for (int i = 0; per && have && i < st->nworkers && i < 64; i++)
            cJSON_AddItemToArray(per, stage_json(&st->worker[i]));
        cJSON_AddItemToObject(stages, "workers", w);
        cJSON_AddItemToObject(stages, "reducer", stage_json(&st->reducer));
    }
    cJSON_AddItemToObject(o, "streams", streams_json(h));
    cJSON_AddNumberToObject(o, "results_version",
                            h->results ? (double)weir_results_version(h->results) : 0);
    add_counters(o, &c);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    weir_params_free(p);
    free(st);
    return txt;
}

void http_sample_rates(weir_http *h)
{
    weir_stats *st = calloc(1, sizeof *st);
    if (!st) return;
    weir_engine *e = eng_begin(h);
    if (e && !h->stats) weir_engine_stats(e, st);
    eng_end(h);
    if (e && h->stats) h->stats(h->hook_ud, st);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    pthread_mutex_lock(&h->mu);
    if (!e || !st->running) {
        h->events_per_s = h->bytes_per_s = 0;
        h->rate_t = 0;
    } else if (h->rate_t == 0 || st->source.events_in < h->rate_events) {
        h->rate_t = now;
        h->rate_events = st->source.events_in;
        h->rate_bytes = st->source.bytes_in;
    } else if (now - h->rate_t >= 0.5) {
        double dt = now - h->rate_t;
        h->events_per_s = (double)(st->source.events_in - h->rate_events) / dt;
        h->bytes_per_s = (double)(st->source.bytes_in - h->rate_bytes) / dt;
        h->rate_t = now;
        h->rate_events = st->source.events_in;
        h->rate_bytes = st->source.bytes_in;
    }
    pthread_mutex_unlock(&h->mu);
    free(st);
}

static void get_progress(weir_http *h, http_reply *out)
{
    weir_stats *st = calloc(1, sizeof *st);
    if (!st) {
        reply_error(out, 500, "out of memory");
        return;
    }
    int have = get_stats(h, st);
    uint64_t done = 0, total = 0;
    if (h->progress) h->progress(h->hook_ud, &done, &total);
    weir_http_state s = weir_http_get_state(h);
    int finished = s == WEIR_HTTP_FINISHED || s == WEIR_HTTP_ERROR;
    uint64_t read = have ? st->source.events_in : 0;
    uint64_t queued = have ? st->workers_total.queue_fill : 0;
    uint64_t completed = read > queued ? read - queued : 0;
    uint64_t total_events = read;
    if (!finished && done && total > done)
        total_events = (uint64_t)((double)read * (double)total / (double)done + 0.5);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "last_assigned", read ? (double)(read - 1) : 0);
    cJSON_AddNumberToObject(o, "completed_events", (double)(finished ? read : completed));
    cJSON_AddNumberToObject(o, "total_events", (double)total_events);
    cJSON_AddBoolToObject(o, "finished", finished);
    cJSON_AddNumberToObject(o, "completed", (double)done);
    cJSON_AddNumberToObject(o, "total", (double)total);
    free(st);
    reply_json(out, 200, o);
}

/* ---- results ---- */

static const char *dtype_of(const weir_result_value *v)
{
    switch (v->kind) {
    case WEIR_RV_F64:
        return "float64";
    case WEIR_RV_I64:
        return "int64";
    case WEIR_RV_STR:
        return "str";
    case WEIR_RV_ARRAY:
        return weir_dtype_name(v->array.dtype.kind);
    }
    return "?";
}

static cJSON *shape_json(const weir_result_value *v)
{
    cJSON *s = cJSON_CreateArray();
    if (v->kind == WEIR_RV_ARRAY)
        for (int d = 0; s && d < v->array.ndim; d++)
            cJSON_AddItemToArray(s, cJSON_CreateNumber((double)v->array.shape[d]));
    return s;
}

static const char *kind_name(weir_rv_kind k)
{
    return k == WEIR_RV_ARRAY ? "array" : k == WEIR_RV_STR ? "string" : "scalar";
}

/* 1 if ?since=V is given and the version is not newer (→ 304). */
static int not_modified(const char *since, uint64_t version)
{
    if (!since || !*since) return 0;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(since, &end, 10);
    if (*end || errno || *since == '-') return 0;
    return version <= s;
}

static void list_results(weir_http *h, const http_req *rq, http_reply *out)
{
    if (!h->results) {
        reply_json(out, 200, cJSON_CreateArray());
        return;
    }
    weir_results_snap *snap = weir_results_snapshot(h->results);
    if (not_modified(rq->since, weir_results_snap_version(snap))) {
        weir_results_snap_release(snap);
        reply_take(out, 304, JSON_CT, NULL);
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < weir_results_snap_count(snap); i++) {
        const weir_result_value *v = weir_results_snap_at(snap, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", v->name);
        cJSON_AddStringToObject(o, "kind", kind_name(v->kind));
        cJSON_AddStringToObject(o, "dtype", dtype_of(v));
        cJSON_AddItemToObject(o, "shape", shape_json(v));
        cJSON_AddNumberToObject(o, "version", (double)v->version);
        cJSON_AddItemToArray(arr, o);
    }
    weir_results_snap_release(snap);
    reply_json(out, 200, arr);
}

/* A number printed so that it reads back exactly (cJSON's own printing
 * keeps 15 digits whenever they read back "close enough"); NaN and the
 * infinities, which JSON lacks, as null. */
static cJSON *exact_number(double x)
{
    if (!isfinite(x)) return cJSON_CreateNull();
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return cJSON_CreateRaw(buf);
}

static void result_json(const weir_result_value *v, http_reply *out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    switch (v->kind) {
    case WEIR_RV_F64:
        cJSON_AddItemToObject(o, "value", exact_number(v->f64));
        break;
    case WEIR_RV_I64: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->i64); /* exact past 2^53 too */
        cJSON_AddItemToObject(o, "value", cJSON_CreateRaw(buf));
        break;
    }
    case WEIR_RV_STR:
        cJSON_AddStringToObject(o, "value", v->str);
        break;
    case WEIR_RV_ARRAY: {
        cJSON *d = cJSON_AddArrayToObject(o, "data");
        size_t n = weir_array_nelem(&v->array);
        for (size_t i = 0; d && i < n; i++)
            cJSON_AddItemToArray(d, exact_number(weir_array_get_f64(&v->array, i)));
        break;
    }
    }
    cJSON_AddItemToObject(o, "shape", shape_json(v));
    cJSON_AddStringToObject(o, "dtype", dtype_of(v));
    cJSON_AddNumberToObject(o, "version", (double)v->version);
    cJSON_AddStringToObject(o, "params_hash", v->params_hash);
    reply_json(out, 200, o);
}

static void result_npy(const weir_result_value *v, http_reply *out)
{
    weir_array a;
    weir_array scalar = {.ndim = 0};
    if (v->kind == WEIR_RV_ARRAY) {
        a = v->array;
    } else if (v->kind == WEIR_RV_F64 || v->kind == WEIR_RV_I64) {
        scalar.dtype.kind = v->kind == WEIR_RV_F64 ? WEIR_DT_F64 : WEIR_DT_I64;
        scalar.dtype.order = weir_host_order();
        scalar.data = v->kind == WEIR_RV_F64 ? (const uint8_t *)&v->f64 : (const uint8_t *)&v->i64;
        a = scalar;
    } else {
        reply_error(out, 406, "result '%s' is a string: JSON or CBOR only", v->name);
        return;
    }
    a.buf = NULL;
    weir_buf *b = NULL;
    if (weir_npy_encode(&a, &b)) {
        reply_error(out, 500, "cannot encode '%s' as NPY", v->name);
        return;
    }
    size_t n = weir_buf_size(b);
    char *body = malloc(n ? n : 1);
    if (body) memcpy(body, weir_buf_data(b), n);
    weir_buf_unref(b);
    if (!body) {
        reply_error(out, 500, "out of memory");
        return;
    }
    free(out->body);
    out->status = 200;
    out->content_type = "application/octet-stream";
    out->body = body;
    out->len = n;
}

static int cmap_add(cbor_item_t *map, const char *key, cbor_item_t *val)
{
    if (!val) return 0;
    cbor_item_t *k = cbor_build_string(key);
    int ok = k && cbor_map_add(map, (struct cbor_pair){.key = k, .value = val});
    if (k) cbor_decref(&k);
    cbor_decref(&val);
    return ok;
}

static void result_cbor(const weir_result_value *v, http_reply *out)
{
    cbor_item_t *m = cbor_new_indefinite_map();
    int ok = m && cmap_add(m, "name", cbor_build_string(v->name));
    switch (v->kind) {
    case WEIR_RV_F64:
        ok = ok && cmap_add(m, "value", cbor_build_float8(v->f64));
        break;
    case WEIR_RV_I64:
        ok = ok && cmap_add(m, "value",
                            v->i64 >= 0 ? cbor_build_uint64((uint64_t)v->i64)
                                        : cbor_build_negint64((uint64_t)(-(v->i64 + 1))));
        break;
    case WEIR_RV_STR:
        ok = ok && cmap_add(m, "value", cbor_build_string(v->str));
        break;
    case WEIR_RV_ARRAY:
        ok = ok && cmap_add(m, "data", weir_cbor_typed_array(&v->array));
        break;
    }
    cbor_item_t *shape =
        cbor_new_definite_array(v->kind == WEIR_RV_ARRAY ? (size_t)v->array.ndim : 0);
    for (int d = 0; ok && shape && v->kind == WEIR_RV_ARRAY && d < v->array.ndim; d++) {
        cbor_item_t *u = cbor_build_uint64(v->array.shape[d]);
        ok = u && cbor_array_push(shape, u);
        if (u) cbor_decref(&u);
    }
    ok = ok && cmap_add(m, "shape", shape);
    ok = ok && cmap_add(m, "dtype", cbor_build_string(dtype_of(v)));
    ok = ok && cmap_add(m, "version", cbor_build_uint64(v->version));
    ok = ok && cmap_add(m, "params_hash", cbor_build_string(v->params_hash));
    unsigned char *buf = NULL;
    size_t cap = 0, len = ok ? cbor_serialize_alloc(m, &buf, &cap) : 0;
    if (m) cbor_decref(&m);
    if (!len) {
        free(buf);
        reply_error(out, 500, "cannot encode '%s' as CBOR", v->name);
        return;
    }
    free(out->body);
    out->status = 200;
    out->content_type = "application/cbor";
    out->body = (char *)buf;
    out->len = len;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && !strcmp(s + n - m, suf);
}

static void get_result(weir_http *h, const http_req *rq, const char *name, http_reply *out)
{
    if (!h->results) {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "no result '%.200s'", name);
        return;
    }
    weir_results_snap *snap = weir_results_snapshot(h->results);
    const weir_result_value *v = weir_results_snap_find(snap, name);
    int fmt = 0; /* 0 json, 1 npy, 2 cbor */
    if (!v) {
        static const char *const suf[] = {".json", ".npy", ".cbor"};
        for (int f = 0; f < 3 && !v; f++) {
            if (!ends_with(name, suf[f])) continue;
            char base[256];
            snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(suf[f])), name);
            if ((v = weir_results_snap_find(snap, base))) fmt = f;
        }
    }
    if (!v) {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "no result '%.200s'", name);
    } else if (not_modified(rq->since, v->version)) {
        reply_take(out, 304, JSON_CT, NULL);
    } else if (fmt == 1) {
        result_npy(v, out);
    } else if (fmt == 2) {
        result_cbor(v, out);
    } else {
        result_json(v, out);
    }
    weir_results_snap_release(snap);
}

char *http_versions_json(weir_http *h, uint64_t *version)
{
    *version = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON *vs = o ? cJSON_AddObjectToObject(o, "versions") : NULL;
    if (h->results) {
        weir_results_snap *snap = weir_results_snapshot(h->results);
        *version = weir_results_snap_version(snap);
        for (size_t i = 0; vs && i < weir_results_snap_count(snap); i++) {
            const weir_result_value *v = weir_results_snap_at(snap, i);
            cJSON_AddNumberToObject(vs, v->name, (double)v->version);
        }
        weir_results_snap_release(snap);
    }
    if (o) cJSON_AddNumberToObject(o, "version", (double)*version);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- control ---- */

static void post_control(weir_http *h, const char *what, http_reply *out)
{
    weir_http_cmd cmd = !strcmp(what, "start")   ? WEIR_HTTP_START
                        : !strcmp(what, "stop")  ? WEIR_HTTP_STOP
                        : !strcmp(what, "abort") ? WEIR_HTTP_ABORT
                                                 : 0;
    if (!cmd) {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "no control command '%.40s' (start, stop, abort)", what);
        return;
    }
    char err[256] = "";
    int handled = 0, rc = 0;
    weir_engine *e = eng_begin(h);
    if (e && cmd == WEIR_HTTP_STOP) {
        weir_engine_stop(e);
        handled = 1;
    } else if (e && cmd == WEIR_HTTP_ABORT) {
        weir_engine_abort(e);
        handled = 1;
    }
    eng_end(h);
    if (h->control) {
        rc = h->control(h->hook_ud, cmd, err, sizeof err);
        if (!rc) handled = 1;
    }
    if (cmd == WEIR_HTTP_ABORT && handled) weir_http_set_state(h, WEIR_HTTP_ERROR, "aborted");
    if (!handled) {
        count(h, &h->ctr.bad_request);
        reply_error(out, 409, "%s", err[0] ? err : "nothing to control: no acquisition");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_name(weir_http_get_state(h)));
    reply_json(out, 200, o);
}

/* ---- static files ---- */

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *ct;
    } t[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".wasm", "application/wasm"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (ends_with(path, t[i].ext)) return t[i].ct;
    return "application/octet-stream";
}

/* 1 if every '/'-separated segment of rel is a plain name: not empty, not
 * "." or "..", not hidden, no backslash or control characters. */
static int safe_relpath(const char *rel)
{
    if (!*rel || strlen(rel) > 1024) return 0;
    const char *seg = rel;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || seg[0] == '.') return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == '\\' || seg[i] == 0x7f) return 0;
        if (!end) return 1;
        seg = end + 1;
    }
}

static void get_static(weir_http *h, const char *path, http_reply *out)
{
    const char *rel = path[0] == '/' ? path + 1 : path;
    if (!*rel) rel = "index.html";
    char full[PATH_MAX], real[PATH_MAX];
    if (!h->web_real || !safe_relpath(rel) ||
        snprintf(full, sizeof full, "%s/%s", h->web_real, rel) >= (int)sizeof full ||
        !realpath(full, real)) {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "not found");
        return;
    }
    size_t n = strlen(h->web_real);
    /* the resolved file must still lie inside the web directory: a symlink
     * pointing out of it is refused */
    int fd = -1;
    struct stat sb;
    if (strncmp(real, h->web_real, n) || real[n] != '/' ||
        (fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &sb) ||
        !S_ISREG(sb.st_mode) || sb.st_size > (off_t)STATIC_MAX) {
        if (fd >= 0) close(fd);
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "not found");
        return;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    char *body = malloc(len ? len : 1);
    while (body && got < len) {
        ssize_t r = read(fd, body + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!body || got != len) {
        free(body);
        reply_error(out, 500, "cannot read the file");
        return;
    }
    free(out->body);
    out->status = 200;
    out->content_type = content_type_of(real);
    out->body = body;
    out->len = len;
}

/* ---- routing ---- */

static int method_is(const http_req *rq, const char *m)
{
    return !strcmp(rq->method, m) || (!strcmp(m, "GET") && !strcmp(rq->method, "HEAD"));
}

static void bad_method(weir_http *h, http_reply *out, const char *allow)
{
    count(h, &h->ctr.bad_method);
    reply_error(out, 405, "method not allowed (allowed: %s)", allow);
    out->allow = allow;
}

void http_handle(weir_http *h, const http_req *rq, http_reply *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->mu);
    h->ctr.requests++;
    pthread_mutex_unlock(&h->mu);
    if (!rq->method || !rq->path || rq->path[0] != '/') {
        count(h, &h->ctr.bad_request);
        reply_error(out, 400, "bad request");
        return;
    }
    if (http_precheck(h, rq, out)) return;
    const char *p = rq->path;
    if (strncmp(p, "/api/", 5) != 0) {
        if (!method_is(rq, "GET")) {
            bad_method(h, out, "GET, HEAD");
            return;
        }
        get_static(h, p, out);
        return;
    }
    if (strncmp(p, "/api/v1/", 8) != 0) {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "unknown API path (the API is under /api/v1/)");
        return;
    }
    const char *r = p + 8;
    if (!strcmp(r, "parameters")) {
        if (method_is(rq, "GET"))
            get_parameters(h, out);
        else if (method_is(rq, "POST"))
            post_parameters(h, rq, out);
        else
            bad_method(h, out, "GET, HEAD, POST");
    } else if (!strcmp(r, "status")) {
        if (!method_is(rq, "GET")) {
            bad_method(h, out, "GET, HEAD");
            return;
        }
        char *s = http_status_json(h);
        if (s)
            reply_take(out, 200, JSON_CT, s);
        else
            reply_error(out, 500, "out of memory");
    } else if (!strcmp(r, "progress")) {
        if (method_is(rq, "GET"))
            get_progress(h, out);
        else
            bad_method(h, out, "GET, HEAD");
    } else if (!strcmp(r, "results")) {
        if (method_is(rq, "GET"))
            list_results(h, rq, out);
        else
            bad_method(h, out, "GET, HEAD");
    } else if (!strncmp(r, "results/", 8) && r[8]) {
        if (method_is(rq, "GET"))
            get_result(h, rq, r + 8, out);
        else
            bad_method(h, out, "GET, HEAD");
    } else if (!strncmp(r, "control/", 8)) {
        if (method_is(rq, "POST"))
            post_control(h, r + 8, out);
        else
            bad_method(h, out, "POST");
    } else if (!strcmp(r, "events")) {
        if (!method_is(rq, "GET")) {
            bad_method(h, out, "GET");
            return;
        }
        out->status = 200;
        out->content_type = "text/event-stream";
        out->sse = 1;
    } else {
        count(h, &h->ctr.not_found);
        reply_error(out, 404, "unknown API path '%.200s'", p);
    }
}
