/* fuzz_simplon.c — libFuzzer harness for the SIMPLON stub's request
 * handling (src/io/simplon_stub.c): routing of paths and the JSON bodies of
 * config PUTs, through weir_simplon_stub_handle (the function the HTTP
 * server calls once libmicrohttpd has the method, path and body).
 *
 * The input is up to 8 requests separated by NUL bytes, each
 * "<m><path>\n<body>" where the first byte picks the method (G GET, P PUT,
 * anything else POST), so sequences such as arm / trigger / disarm reach the
 * state machine. Every request must get a known status and a body. */
#include "weir/error.h"
#include "weir/simplon_stub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(weir_simplon_stub *s, const uint8_t *d, size_t n)
{
    if (n < 2) return;
    const char *method = d[0] == 'G' ? "GET" : d[0] == 'P' ? "PUT" : "POST";
    const uint8_t *nl = memchr(d + 1, '\n', n - 1);
    size_t pl = nl ? (size_t)(nl - (d + 1)) : n - 1;
    char *path = malloc(pl + 1);
    if (!path) return;
    memcpy(path, d + 1, pl);
    path[pl] = 0;
    size_t bl = nl ? n - 1 - pl - 1 : 0;
    /* an exact-size heap copy of the body so ASan sees over-reads */
    char *body = bl ? malloc(bl) : NULL;
    if (bl && !body) goto free_path;
    if (bl) memcpy(body, nl + 1, bl);
    int status = 0;
    char *reply = NULL;
    int rc = weir_simplon_stub_handle(s, method, path, body, bl, &status, &reply);
    if (rc == 0) {
        if (!reply) abort();
        if (status != 200 && status != 400 && status != 404 && status != 405 && status != 500)
            abort();
        if (strlen(reply) > (1u << 20)) abort();
        free(reply);
    } else if (rc != WEIR_ENOMEM) {
        abort();
    }
    free(body);
free_path:
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_simplon_stub *s;
    if (weir_simplon_stub_new(NULL, &s)) return 0;
    size_t pos = 0;
    for (int k = 0; k < 8 && pos < size; k++) {
        const uint8_t *z = memchr(data + pos, 0, size - pos);
        size_t n = z ? (size_t)(z - (data + pos)) : size - pos;
        one(s, data + pos, n);
        pos += n + 1;
    }
    weir_simplon_stub_free(s);
    return 0;
}
