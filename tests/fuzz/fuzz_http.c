/* fuzz_http.c — the control plane's request handling without a socket:
 * URL path routing and static-file path checks, ?since, the token and
 * content-type checks, and JSON bodies through the parameter and control
 * handlers (api.c's http_handle, the entry point server.c feeds).
 *
 * Input: byte 0 picks the method and the headers (content type, token),
 * then the path up to the first '\n' (?since= after a '?'), then the body.
 * The server has parameters of every type and a results store with a
 * scalar, a string and arrays, so every encoder (JSON, NPY, CBOR) is
 * reached. Each reply must be a valid status with a body length that
 * matches. */
#include "http/http_internal.h"

#include "weir/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static weir_http *srv;
static weir_results *res;

static const weir_param_desc decl[] = {
    {"till_x", WEIR_PARAM_INT, "2", "rows"},   {"gain", WEIR_PARAM_FLOAT, "1.5", "gain"},
    {"on", WEIR_PARAM_BOOL, "False", NULL},    {"name", WEIR_PARAM_STRING, "", NULL},
    {"blob", WEIR_PARAM_BINARY, "\x01", NULL},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/fuzz_http_web_XXXXXX";
    if (!mkdtemp(dir)) abort();
    char path[256];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("<!doctype html>", f);
        fclose(f);
    }
    char err[256];
    weir_http_config cfg = {.web_dir = dir, .token = "tok", .body_limit = 4096};
    if (http_create(&cfg, &srv, err, sizeof err)) abort();
    weir_params *p = weir_params_new();
    for (size_t i = 0; i < sizeof decl / sizeof decl[0]; i++)
        weir_params_declare(p, &decl[i], err, sizeof err);
    srv->kept_params = p;
    res = weir_results_new();
    double v[6] = {1, 2, 3, 4, 5, 6};
    weir_array a = {.dtype = {WEIR_DT_F64, WEIR_LITTLE}, .ndim = 2, .data = (const uint8_t *)v};
    a.shape[0] = 2, a.shape[1] = 3, a.strides[0] = 24, a.strides[1] = 8;
    weir_results_stage_array(res, "img", &a, "0123456789abcdef");
    uint16_t u[3] = {1, 2, 65535};
    weir_array b = {.dtype = {WEIR_DT_U16, WEIR_BIG}, .ndim = 1, .data = (const uint8_t *)u};
    b.shape[0] = 3, b.strides[0] = 2;
    weir_results_stage_array(res, "trace.x", &b, NULL);
    weir_results_stage_f64(res, "mean", 0.5, NULL);
    weir_results_stage_i64(res, "events", -7, NULL);
    weir_results_stage_str(res, "label", "a\"b", NULL);
    weir_results_commit(res);
    srv->results = res;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char *const methods[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"};
    uint8_t sel = data[0];
    const char *nl = memchr(data + 1, '\n', size - 1);
    size_t plen = nl ? (size_t)(nl - (const char *)data - 1) : size - 1;
    char *path = malloc(plen + 1);
    if (!path) return 0;
    memcpy(path, data + 1, plen);
    path[plen] = 0;
    char *q = strchr(path, '?');
    const char *since = NULL;
    if (q) {
        *q = 0;
        if (!strncmp(q + 1, "since=", 6)) since = q + 7;
    }
    const char *body = nl ? nl + 1 : NULL;
    size_t blen = nl ? size - plen - 2 : 0;
    http_req rq = {
        .method = methods[sel % 6],
        .path = path,
        .since = since,
        .auth = (sel & 0x40) ? "Bearer tok" : ((sel & 0x80) ? "Bearer tox" : NULL),
        .content_type =
            (sel & 0x10) ? "application/json; charset=utf-8" : ((sel & 0x20) ? "text/plain" : NULL),
        .body = body,
        .body_len = blen,
        .body_too_large = 0,
    };
    http_reply rep;
    http_handle(srv, &rq, &rep);
    if (rep.status < 200 || rep.status > 599) abort();
    if (rep.len && !rep.body) abort();
    http_reply_clear(&rep);
    free(path);
    return 0;
}
