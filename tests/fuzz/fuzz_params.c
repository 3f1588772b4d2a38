/* fuzz_params.c — dranspose parameter files (JSON list or CBOR list) and
 * parameter values, as `weir replay -p` and later the HTTP API take them.
 * The first byte picks the path; values that load must re-parse as their
 * declared types and the hash must stay computable. */
#include "weir/error.h"
#include "weir/params.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const weir_param_desc decl[] = {
    {"till_x", WEIR_PARAM_INT, "2", NULL},  {"gain", WEIR_PARAM_FLOAT, "1.5", NULL},
    {"on", WEIR_PARAM_BOOL, "False", NULL}, {"name", WEIR_PARAM_STRING, "", NULL},
    {"blob", WEIR_PARAM_BINARY, "", NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    weir_params *p = weir_params_new();
    if (!p) return 0;
    char err[256];
    for (size_t i = 0; i < sizeof decl / sizeof decl[0]; i++)
        weir_params_declare(p, &decl[i], err, sizeof err);
    switch (data[0] % 3) {
    case 0:
        weir_params_load_json(p, (const char *)data + 1, size - 1, err, sizeof err);
        break;
    case 1:
        weir_params_load_cbor(p, data + 1, size - 1, err, sizeof err);
        break;
    default:
        weir_params_set(p, decl[data[0] / 3 % 5].name, data + 1, size - 1, 1, err, sizeof err);
        break;
    }
    int64_t i;
    double f;
    int b;
    weir_params_get_int(p, "till_x", &i);
    weir_params_get_float(p, "gain", &f);
    weir_params_get_bool(p, "on", &b);
    if (strlen(weir_params_hash(p)) != 16) abort();
    weir_params *c = weir_params_clone(p);
    if (c && strcmp(weir_params_hash(c), weir_params_hash(p)) != 0) abort();
    weir_params_free(c);
    weir_params_free(p);
    return 0;
}
