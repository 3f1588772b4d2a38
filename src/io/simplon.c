/* simplon.c — DECTRIS SIMPLON REST client (weir/simplon.h).
 *
 * One libcurl easy handle per client, reused so the TCP connection to the
 * DCU stays open between requests, and a mutex around it because a handle
 * is not reentrant. Every request goes through request(): it builds the
 * URL from checked path parts (letters, digits, '_' and '.' only, so a
 * parameter name cannot reach another path), sends the JSON body with
 * SIMPLON's content type, collects the reply up to a size limit, and turns
 * anything but 2xx into an error that names the method, the URL, the HTTP
 * status and the body. JSON is built and read with cJSON only. */
#include "weir/simplon.h"

#include "weir/error.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pixel mask of a 4M detector is ~22 MB of base64; stay well above. */
#define MAX_REPLY (256u << 20)
#define MAX_URL 512

struct weir_simplon {
    CURL *curl;
    struct curl_slist *headers;
    pthread_mutex_t lock;
    char base[300];
    char version[32];
    long timeout_ms, connect_timeout_ms;
};

typedef struct {
    char *data;
    size_t len, cap;
    int too_big;
} body;

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t add = size * n;
    if (add > MAX_REPLY - b->len) {
        b->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

static int part_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 100) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return 0;
    return 1;
}

int weir_simplon_new(const weir_simplon_config *cfg, weir_simplon **out, char *err, size_t errlen)
{
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    if (!cfg || !cfg->host || !*cfg->host || strlen(cfg->host) > 255 || cfg->port < 0 ||
        cfg->port > 65535)
        return fail(err, errlen, WEIR_EINVAL, "SIMPLON client: host and a port 0..65535 needed");
    const char *ver = cfg->api_version ? cfg->api_version : WEIR_SIMPLON_API_VERSION;
    if (!part_ok(ver) || strlen(ver) >= 32)
        return fail(err, errlen, WEIR_EINVAL, "SIMPLON client: bad API version \"%s\"", ver);
    int rc = WEIR_ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail(err, errlen, WEIR_EIO, "SIMPLON client: libcurl initialisation failed");
    weir_simplon *c = calloc(1, sizeof *c);
    if (!c) goto cleanup_global;
    if (pthread_mutex_init(&c->lock, NULL)) {
        rc = WEIR_ETHREAD;
        goto free_c;
    }
    c->curl = curl_easy_init();
    if (!c->curl) goto destroy_lock;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    if (!h) goto cleanup_curl;
    c->headers = h;
    h = curl_slist_append(c->headers, "Accept: application/json; charset=utf-8");
    if (!h) goto free_headers;
    c->headers = h;
    /* an IPv6 literal needs brackets in a URL */
    int v6 = strchr(cfg->host, ':') != NULL;
    snprintf(c->base, sizeof c->base, "http://%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
             cfg->port ? cfg->port : 80);
    snprintf(c->version, sizeof c->version, "%s", ver);
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
    *out = c;
    return WEIR_OK;
free_headers:
    curl_slist_free_all(c->headers);
cleanup_curl:
    curl_easy_cleanup(c->curl);
destroy_lock:
    pthread_mutex_destroy(&c->lock);
free_c:
    free(c);
cleanup_global:
    curl_global_cleanup();
    return fail(err, errlen, rc, "SIMPLON client: %s", weir_strerror(rc));
}

void weir_simplon_free(weir_simplon *c)
{
    if (!c) return;
    curl_slist_free_all(c->headers);
    curl_easy_cleanup(c->curl);
    pthread_mutex_destroy(&c->lock);
    free(c);
    curl_global_cleanup();
}

const char *weir_simplon_base_url(const weir_simplon *c)
{
    return c ? c->base : NULL;
}

/* The reply body, shortened for a message. */
static const char *shown(const body *b)
{
    return b->len ? b->data : "(empty body)";
}

/* One request. path: everything after the base URL. send: body or NULL.
 * On 2xx *reply gets the parsed body (NULL when empty). */
static int request(weir_simplon *c, const char *method, const char *path, const char *send,
                   cJSON **reply, char *err, size_t errlen)
{
    char url[MAX_URL];
    body b = {0};
    int rc = WEIR_OK;
    if (reply) *reply = NULL;
    snprintf(url, sizeof url, "%s%s", c->base, path);
    pthread_mutex_lock(&c->lock);
    CURL *h = c->curl;
    curl_easy_reset(h);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(method, "PUT")) {
        /* POSTFIELDS with a custom method: a PUT with a Content-Length body */
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, send ? send : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(send ? strlen(send) : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    pthread_mutex_unlock(&c->lock);
    if (b.too_big) {
        rc = fail(err, errlen, WEIR_EIO, "%s %s: reply longer than %u bytes", method, url,
                  MAX_REPLY);
        goto free_body;
    }
    if (cc != CURLE_OK) {
        rc = fail(err, errlen, WEIR_EIO, "%s %s: %s", method, url,
                  cerr[0] ? cerr : curl_easy_strerror(cc));
        goto free_body;
    }
    if (status < 200 || status > 299) {
        rc = status == 404 ? WEIR_ENOTFOUND : status == 400 ? WEIR_EPARAM : WEIR_EIO;
        fail(err, errlen, rc, "%s %s: HTTP %ld: %.400s", method, url, status, shown(&b));
        goto free_body;
    }
    if (reply && b.len) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(b.data, b.len, &end, 0);
        if (!j) {
            rc = fail(err, errlen, WEIR_EJSON, "%s %s: HTTP %ld but the body is not JSON: %.200s",
                      method, url, status, b.data);
            goto free_body;
        }
        *reply = j;
    }
free_body:
    free(b.data);
    return rc;
}

static int make_path(const weir_simplon *c, const char *module, const char *task, const char *name,
                     char *path, size_t len, char *err, size_t errlen)
{
    if (!part_ok(module) || !part_ok(task) || !part_ok(name))
        return fail(err, errlen, WEIR_EINVAL,
                    "SIMPLON: bad path part (module \"%s\", task \"%s\", name \"%s\"): letters, "
                    "digits, '_' and '.' only",
                    module ? module : "", task ? task : "", name ? name : "");
    snprintf(path, len, "/%s/api/%s/%s/%s", module, c->version, task, name);
    return WEIR_OK;
}

int weir_simplon_get(weir_simplon *c, const char *module, const char *task, const char *name,
                     cJSON **value, cJSON **full, char *err, size_t errlen)
{
    char path[MAX_URL];
    if (value) *value = NULL;
    if (full) *full = NULL;
    if (!c) return WEIR_EINVAL;
    int rc = make_path(c, module, task, name, path, sizeof path, err, errlen);
    if (rc) return rc;
    cJSON *r = NULL;
    rc = request(c, "GET", path, NULL, &r, err, errlen);
    if (rc) return rc;
    if (!cJSON_IsObject(r) || !cJSON_GetObjectItemCaseSensitive(r, "value")) {
        cJSON_Delete(r);
        return fail(err, errlen, WEIR_EJSON, "GET %s%s: the reply has no \"value\"", c->base, path);
    }
    if (value) *value = cJSON_DetachItemFromObjectCaseSensitive(r, "value");
    if (full)
        *full = r;
    else
        cJSON_Delete(r);
    return WEIR_OK;
}

int weir_simplon_put(weir_simplon *c, const char *module, const char *task, const char *name,
                     const cJSON *value, cJSON **reply, char *err, size_t errlen)
{
    char path[MAX_URL];
    if (reply) *reply = NULL;
    if (!c) return WEIR_EINVAL;
    int rc = make_path(c, module, task, name, path, sizeof path, err, errlen);
    if (rc) return rc;
    char *send = NULL;
    if (value) {
        cJSON *o = cJSON_CreateObject();
        cJSON *v = cJSON_Duplicate(value, 1);
        if (!o || !v || !cJSON_AddItemToObject(o, "value", v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return WEIR_ENOMEM;
        }
        send = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!send) return WEIR_ENOMEM;
    }
    rc = request(c, "PUT", path, send, reply, err, errlen);
    cJSON_free(send);
    return rc;
}

int weir_simplon_version(weir_simplon *c, char *version, size_t len, char *err, size_t errlen)
{
    if (!c || !version) return WEIR_EINVAL;
    cJSON *r = NULL;
    int rc = request(c, "GET", "/detector/api/version/", NULL, &r, err, errlen);
    if (rc) return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "value");
    if (!cJSON_IsString(v))
        rc = fail(err, errlen, WEIR_EJSON, "GET %s/detector/api/version/: no \"value\" string",
                  c->base);
    else if (strlen(v->valuestring) >= len)
        rc = WEIR_ERANGE;
    else
        memcpy(version, v->valuestring, strlen(v->valuestring) + 1);
    cJSON_Delete(r);
    return rc;
}

int weir_simplon_config_get(weir_simplon *c, const char *name, cJSON **value, char *err,
                            size_t errlen)
{
    return weir_simplon_get(c, "detector", "config", name, value, NULL, err, errlen);
}

int weir_simplon_config_set(weir_simplon *c, const char *name, const cJSON *value, cJSON **changed,
                            char *err, size_t errlen)
{
    if (changed) *changed = NULL;
    if (!value) return WEIR_EINVAL;
    cJSON *r = NULL;
    int rc = weir_simplon_put(c, "detector", "config", name, value, &r, err, errlen);
    if (rc) return rc;
    if (r && !cJSON_IsArray(r)) {
        cJSON_Delete(r);
        return fail(err, errlen, WEIR_EJSON,
                    "PUT %s/detector/api/%s/config/%s: the reply is not a list of changed "
                    "parameters",
                    c->base, c->version, name);
    }
    if (!r) r = cJSON_CreateArray();
    if (!r) return WEIR_ENOMEM;
    if (changed)
        *changed = r;
    else
        cJSON_Delete(r);
    return WEIR_OK;
}

int weir_simplon_config_get_double(weir_simplon *c, const char *name, double *v, char *err,
                                   size_t errlen)
{
    cJSON *j = NULL;
    int rc = weir_simplon_config_get(c, name, &j, err, errlen);
    if (rc) return rc;
    if (!cJSON_IsNumber(j))
        rc = fail(err, errlen, WEIR_EJSON, "SIMPLON config %s: not a number", name);
    else
        *v = j->valuedouble;
    cJSON_Delete(j);
    return rc;
}

int weir_simplon_config_get_int(weir_simplon *c, const char *name, int64_t *v, char *err,
                                size_t errlen)
{
    double d;
    int rc = weir_simplon_config_get_double(c, name, &d, err, errlen);
    if (rc) return rc;
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return fail(err, errlen, WEIR_EJSON, "SIMPLON config %s: %g is not an integer", name, d);
    *v = (int64_t)d;
    return WEIR_OK;
}

int weir_simplon_config_get_string(weir_simplon *c, const char *name, char *buf, size_t len,
                                   char *err, size_t errlen)
{
    cJSON *j = NULL;
    int rc = weir_simplon_config_get(c, name, &j, err, errlen);
    if (rc) return rc;
    if (!cJSON_IsString(j))
        rc = fail(err, errlen, WEIR_EJSON, "SIMPLON config %s: not a string", name);
    else if (strlen(j->valuestring) >= len)
        rc = fail(err, errlen, WEIR_ERANGE, "SIMPLON config %s: value too long", name);
    else
        memcpy(buf, j->valuestring, strlen(j->valuestring) + 1);
    cJSON_Delete(j);
    return rc;
}

static int set_owned(weir_simplon *c, const char *name, cJSON *v, char *err, size_t errlen)
{
    if (!v) return WEIR_ENOMEM;
    int rc = weir_simplon_config_set(c, name, v, NULL, err, errlen);
    cJSON_Delete(v);
    return rc;
}

int weir_simplon_config_set_int(weir_simplon *c, const char *name, int64_t v, char *err,
                                size_t errlen)
{
    return set_owned(c, name, cJSON_CreateNumber((double)v), err, errlen);
}

int weir_simplon_config_set_double(weir_simplon *c, const char *name, double v, char *err,
                                   size_t errlen)
{
    return set_owned(c, name, cJSON_CreateNumber(v), err, errlen);
}

int weir_simplon_config_set_string(weir_simplon *c, const char *name, const char *v, char *err,
                                   size_t errlen)
{
    if (!v) return WEIR_EINVAL;
    return set_owned(c, name, cJSON_CreateString(v), err, errlen);
}

int weir_simplon_config_set_bool(weir_simplon *c, const char *name, int v, char *err, size_t errlen)
{
    return set_owned(c, name, cJSON_CreateBool(v), err, errlen);
}

/* A command; *seq gets "sequence id" when asked for (required then). */
static int command(weir_simplon *c, const char *name, int64_t *seq, int need_seq, char *err,
                   size_t errlen)
{
    cJSON *r = NULL;
    int rc = weir_simplon_put(c, "detector", "command", name, NULL, &r, err, errlen);
    if (rc) return rc;
    if (seq) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "sequence id");
        if (cJSON_IsNumber(s) && s->valuedouble == floor(s->valuedouble))
            *seq = (int64_t)s->valuedouble;
        else if (need_seq)
            rc = fail(err, errlen, WEIR_EJSON,
                      "PUT %s/detector/api/%s/command/%s: no \"sequence id\" in the reply", c->base,
                      c->version, name);
        else
            *seq = -1;
    }
    cJSON_Delete(r);
    return rc;
}

int weir_simplon_arm(weir_simplon *c, int64_t *sequence_id, char *err, size_t errlen)
{
    int64_t s;
    int rc = command(c, "arm", &s, 1, err, errlen);
    if (!rc && sequence_id) *sequence_id = s;
    return rc;
}

int weir_simplon_trigger(weir_simplon *c, char *err, size_t errlen)
{
    return command(c, "trigger", NULL, 0, err, errlen);
}

int weir_simplon_disarm(weir_simplon *c, int64_t *sequence_id, char *err, size_t errlen)
{
    return command(c, "disarm", sequence_id, 0, err, errlen);
}

int weir_simplon_cancel(weir_simplon *c, char *err, size_t errlen)
{
    return command(c, "cancel", NULL, 0, err, errlen);
}

int weir_simplon_abort(weir_simplon *c, char *err, size_t errlen)
{
    return command(c, "abort", NULL, 0, err, errlen);
}

int weir_simplon_initialize(weir_simplon *c, char *err, size_t errlen)
{
    return command(c, "initialize", NULL, 0, err, errlen);
}

static int stream_set(weir_simplon *c, const char *name, const char *v, char *err, size_t errlen)
{
    cJSON *j = cJSON_CreateString(v);
    if (!j) return WEIR_ENOMEM;
    int rc = weir_simplon_put(c, "stream", "config", name, j, NULL, err, errlen);
    cJSON_Delete(j);
    return rc;
}

int weir_simplon_stream_set_enabled(weir_simplon *c, int enabled, char *err, size_t errlen)
{
    return stream_set(c, "mode", enabled ? "enabled" : "disabled", err, errlen);
}

int weir_simplon_stream_set_header_detail(weir_simplon *c, const char *detail, char *err,
                                          size_t errlen)
{
    if (!detail || (strcmp(detail, "none") && strcmp(detail, "basic") && strcmp(detail, "all")))
        return fail(err, errlen, WEIR_EINVAL,
                    "SIMPLON stream header_detail \"%s\": expected none, basic or all",
                    detail ? detail : "(null)");
    return stream_set(c, "header_detail", detail, err, errlen);
}

int weir_simplon_status_state(weir_simplon *c, const char *module, char *buf, size_t len, char *err,
                              size_t errlen)
{
    cJSON *j = NULL;
    int rc =
        weir_simplon_get(c, module ? module : "detector", "status", "state", &j, NULL, err, errlen);
    if (rc) return rc;
    if (!cJSON_IsString(j))
        rc = fail(err, errlen, WEIR_EJSON, "SIMPLON status state: not a string");
    else if (!buf || strlen(j->valuestring) >= len)
        rc = WEIR_ERANGE;
    else
        memcpy(buf, j->valuestring, strlen(j->valuestring) + 1);
    cJSON_Delete(j);
    return rc;
}

int weir_simplon_frame_count(weir_simplon *c, uint64_t *frames, char *err, size_t errlen)
{
    int64_t nimages, ntrigger;
    char mode[16];
    int rc = weir_simplon_config_get_int(c, "nimages", &nimages, err, errlen);
    if (!rc) rc = weir_simplon_config_get_int(c, "ntrigger", &ntrigger, err, errlen);
    if (!rc) rc = weir_simplon_config_get_string(c, "trigger_mode", mode, sizeof mode, err, errlen);
    if (rc) return rc;
    if (nimages < 0 || ntrigger < 0)
        return fail(err, errlen, WEIR_EFORMAT, "SIMPLON: negative nimages or ntrigger");
    if (!strcmp(mode, "exte") || !strcmp(mode, "inte"))
        *frames = (uint64_t)ntrigger;
    else if (!strcmp(mode, "exts") || !strcmp(mode, "ints"))
        *frames = (uint64_t)nimages * (uint64_t)ntrigger;
    else
        return fail(err, errlen, WEIR_EFORMAT, "SIMPLON: unknown trigger_mode \"%s\"", mode);
    return WEIR_OK;
}
