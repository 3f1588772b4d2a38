/* weir/params.h — typed parameters.
 *
 * Plug-ins declare parameters in a table of weir_param_desc (name, type,
 * default as text, description). The engine keeps the current values in a
 * weir_params set, parses user values as dranspose does (int "3", float
 * "0.5", bool "True"/"False", string and binary as bytes) but refuses bad
 * values with an error naming the parameter and the expected type, and
 * computes a hash of the values so every result records which parameter
 * version produced it.
 *
 * A weir_params set is not thread-safe for writes; the runtime gives every
 * worker an immutable snapshot (weir_params_clone). */
#ifndef WEIR_PARAMS_H
#define WEIR_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WEIR_PARAM_INT = 1,
    WEIR_PARAM_FLOAT,
    WEIR_PARAM_BOOL,
    WEIR_PARAM_STRING,
    WEIR_PARAM_BINARY
} weir_param_type;

typedef struct {
    const char *name;
    weir_param_type type;
    const char *default_value; /* text form as dranspose's to_bytes; NULL = type default */
    const char *description;
} weir_param_desc;

typedef struct weir_params weir_params;

weir_params *weir_params_new(void);
void weir_params_free(weir_params *p);
/* Deep copy. NULL on OOM. */
weir_params *weir_params_clone(const weir_params *p);
/* Declares a parameter and sets its default. Declaring the same name twice is
 * fine when the type agrees (worker and reducer may share one); WEIR_EPARAM
 * otherwise, with a message in err. */
int weir_params_declare(weir_params *p, const weir_param_desc *d, char *err, size_t errlen);
/* Sets a value from its byte form. Unknown names are kept as undeclared
 * binary values (dranspose keeps them too) unless strict is set. WEIR_EPARAM
 * with "parameter 'x': expected int, got 'abc'" in err on a bad value. */
int weir_params_set(weir_params *p, const char *name, const void *data, size_t len, int strict,
                    char *err, size_t errlen);
/* Loads dranspose's parameter file: JSON list [{"name":..,"data":".."}] or
 * the CBOR list of {"name": tstr, "data": bstr|tstr}. */
int weir_params_load_file(weir_params *p, const char *path, char *err, size_t errlen);
int weir_params_load_json(weir_params *p, const char *text, size_t len, char *err, size_t errlen);
int weir_params_load_cbor(weir_params *p, const uint8_t *data, size_t len, char *err,
                          size_t errlen);

size_t weir_params_count(const weir_params *p);
const char *weir_params_name(const weir_params *p, size_t i);
/* What is known about the i-th parameter; strings borrowed from p (valid
 * while p lives and is unchanged). default_value and description are NULL
 * for values nobody declared. WEIR_ENOTFOUND past the end. */
typedef struct {
    const char *name;
    weir_param_type type;
    int declared;
    const char *description;
    const char *default_value;
} weir_param_info;
int weir_params_info(const weir_params *p, size_t i, weir_param_info *out);
/* Lookups; WEIR_ENOTFOUND if absent, WEIR_EPARAM if of another type. */
int weir_params_get_int(const weir_params *p, const char *name, int64_t *out);
int weir_params_get_float(const weir_params *p, const char *name, double *out);
int weir_params_get_bool(const weir_params *p, const char *name, int *out);
/* String and binary: borrowed pointer valid while p lives and is unchanged. */
int weir_params_get_bytes(const weir_params *p, const char *name, const char **data, size_t *len);
/* Value as text (for logs and status); returns a static-per-call-site-free
 * string written into buf. */
const char *weir_params_format(const weir_params *p, const char *name, char *buf, size_t len);
/* 16 hex digits: FNV-1a 64 over the sorted (name, type, value) triples. */
const char *weir_params_hash(const weir_params *p);
const char *weir_param_type_name(weir_param_type t);

#endif
