/* test_params.c — typed parameters (include/weir/params.h) as dranspose
 * defines them (reference/dranspose.md §1.13): declarations with defaults,
 * values of each type set from their byte form (valid and invalid, with the
 * exact error text naming the parameter and the expected type), dranspose's
 * "True"/"False" bools, parameter files in the JSON and the CBOR form (the
 * CBOR bytes are built here with libcbor), unknown names in non-strict and
 * strict mode, values set before their declaration, the parameter hash and
 * deep copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/params.h"

#include <cbor.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static void declare_ok(weir_params *p, const char *name, weir_param_type t, const char *def)
{
    char err[256] = "";
    weir_param_desc d = {name, t, def, "a test parameter"};
    int rc = weir_params_declare(p, &d, err, sizeof err);
    if (rc) fail_msg("declare %s: %s (%s)", name, err, weir_err_name(rc));
}

static int set_str(weir_params *p, const char *name, const char *v, int strict, char *err,
                   size_t errlen)
{
    return weir_params_set(p, name, v, strlen(v), strict, err, errlen);
}

static void set_ok(weir_params *p, const char *name, const char *v)
{
    char err[256] = "";
    int rc = set_str(p, name, v, 1, err, sizeof err);
    if (rc) fail_msg("set %s=%s: %s (%s)", name, v, err, weir_err_name(rc));
}

/* Sets an invalid value and checks the code and the exact message. */
static void set_bad(weir_params *p, const char *name, const char *v, const char *want_err)
{
    char err[256] = "";
    int rc = set_str(p, name, v, 0, err, sizeof err);
    if (rc != WEIR_EPARAM)
        fail_msg("set %s=\"%s\": %s, expected WEIR_EPARAM", name, v, weir_err_name(rc));
    assert_string_equal(err, want_err);
}

static weir_params *standard_set(void)
{
    weir_params *p = weir_params_new();
    assert_non_null(p);
    declare_ok(p, "n", WEIR_PARAM_INT, "3");
    declare_ok(p, "thr", WEIR_PARAM_FLOAT, "0.5");
    declare_ok(p, "flag", WEIR_PARAM_BOOL, "True");
    declare_ok(p, "label", WEIR_PARAM_STRING, "abc");
    declare_ok(p, "blob", WEIR_PARAM_BINARY, NULL);
    return p;
}

static int is_hex16(const char *h)
{
    if (!h || strlen(h) != 16) return 0;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i])) return 0;
    return 1;
}

/* ---- declarations ------------------------------------------------------- */

static void test_declare_defaults(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    assert_int_equal(weir_params_count(p), 5);
    int64_t i = 0;
    double f = 0;
    int b = 0;
    const char *s;
    size_t len;
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 3);
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == 0.5);
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 1);
    assert_int_equal(weir_params_get_bytes(p, "label", &s, &len), WEIR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "abc", 3);
    assert_int_equal(weir_params_get_bytes(p, "blob", &s, &len), WEIR_OK);
    assert_int_equal(len, 0);
    /* the byte form of every value is kept: "n" is the text "3" */
    assert_int_equal(weir_params_get_bytes(p, "n", &s, &len), WEIR_OK);
    assert_int_equal(len, 1);
    assert_memory_equal(s, "3", 1);

    /* type defaults when none is given (dranspose: 0, 0.0, False, "", b"") */
    declare_ok(p, "i0", WEIR_PARAM_INT, NULL);
    declare_ok(p, "f0", WEIR_PARAM_FLOAT, NULL);
    declare_ok(p, "b0", WEIR_PARAM_BOOL, NULL);
    declare_ok(p, "s0", WEIR_PARAM_STRING, NULL);
    i = 99, f = 99, b = 99;
    assert_int_equal(weir_params_get_int(p, "i0", &i), WEIR_OK);
    assert_int_equal(i, 0);
    assert_int_equal(weir_params_get_float(p, "f0", &f), WEIR_OK);
    assert_true(f == 0.0);
    assert_int_equal(weir_params_get_bool(p, "b0", &b), WEIR_OK);
    assert_int_equal(b, 0);
    assert_int_equal(weir_params_get_bytes(p, "s0", &s, &len), WEIR_OK);
    assert_int_equal(len, 0);

    /* the names, in declaration order */
    const char *names[] = {"n", "thr", "flag", "label", "blob", "i0", "f0", "b0", "s0"};
    assert_int_equal(weir_params_count(p), 9);
    for (size_t k = 0; k < 9; k++)
        assert_string_equal(weir_params_name(p, k), names[k]);
    assert_null(weir_params_name(p, 9));

    /* lookups of the wrong type or of absent names */
    assert_int_equal(weir_params_get_int(p, "thr", &i), WEIR_EPARAM);
    assert_int_equal(weir_params_get_float(p, "n", &f), WEIR_EPARAM);
    assert_int_equal(weir_params_get_bool(p, "label", &b), WEIR_EPARAM);
    assert_int_equal(weir_params_get_int(p, "absent", &i), WEIR_ENOTFOUND);
    assert_int_equal(weir_params_get_bytes(p, "absent", &s, &len), WEIR_ENOTFOUND);
    weir_params_free(p);
}

static void test_declare_errors(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[256] = "";
    /* the same name and type twice is fine (worker and reducer share it) and
     * keeps the current value */
    set_ok(p, "n", "17");
    declare_ok(p, "n", WEIR_PARAM_INT, "3");
    int64_t i = 0;
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 17);
    /* another type is refused */
    weir_param_desc d = {"n", WEIR_PARAM_FLOAT, NULL, NULL};
    assert_int_equal(weir_params_declare(p, &d, err, sizeof err), WEIR_EPARAM);
    assert_string_equal(err, "parameter 'n' declared twice with types int and float");
    /* a default that does not parse */
    weir_param_desc bad = {"bad", WEIR_PARAM_INT, "x", NULL};
    assert_int_equal(weir_params_declare(p, &bad, err, sizeof err), WEIR_EPARAM);
    assert_string_equal(err, "parameter 'bad': default 'x' is not a valid int");
    assert_int_equal(weir_params_get_int(p, "bad", &i), WEIR_ENOTFOUND);
    weir_param_desc badb = {"badb", WEIR_PARAM_BOOL, "maybe", NULL};
    assert_int_equal(weir_params_declare(p, &badb, err, sizeof err), WEIR_EPARAM);
    assert_string_equal(err, "parameter 'badb': default 'maybe' is not a valid bool");
    /* unknown type, empty name */
    weir_param_desc badt = {"t", (weir_param_type)42, NULL, NULL};
    assert_int_equal(weir_params_declare(p, &badt, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "'t'"));
    weir_param_desc noname = {"", WEIR_PARAM_INT, NULL, NULL};
    assert_int_equal(weir_params_declare(p, &noname, err, sizeof err), WEIR_EINVAL);
    assert_int_equal(weir_params_declare(p, NULL, err, sizeof err), WEIR_EINVAL);
    /* NULL err buffer is allowed */
    assert_int_equal(weir_params_declare(p, &bad, NULL, 0), WEIR_EPARAM);
    assert_int_equal(weir_params_count(p), 5);
    weir_params_free(p);
}

/* ---- setting values ----------------------------------------------------- */

static void test_set_int(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    int64_t i = 0;
    set_ok(p, "n", "-42");
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, -42);
    set_ok(p, "n", "9223372036854775807");
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_true(i == INT64_MAX);
    set_ok(p, "n", "-9223372036854775808");
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_true(i == INT64_MIN);
    set_ok(p, "n", "12\n"); /* echo 12 > file: Python's int() strips it too */
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 12);

    set_bad(p, "n", "abc", "parameter 'n': expected int, got 'abc'");
    set_bad(p, "n", "3.5", "parameter 'n': expected int, got '3.5'");
    set_bad(p, "n", "", "parameter 'n': expected int, got ''");
    set_bad(p, "n", "12abc", "parameter 'n': expected int, got '12abc'");
    set_bad(p, "n", "9223372036854775808",
            "parameter 'n': expected int, got '9223372036854775808'");
    /* a failed set keeps the previous value */
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 12);

    /* long values are cut to 60 characters in the message */
    char longv[100];
    memset(longv, 'z', 99);
    longv[99] = 0;
    char want[200];
    snprintf(want, sizeof want, "parameter 'n': expected int, got '%.60s'", longv);
    set_bad(p, "n", longv, want);
    weir_params_free(p);
}

static void test_set_int_embedded_nul(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[256] = "";
    /* Regression (fixed): params.c parse_value() copies the bytes into a NUL-terminated
     * buffer and lets strtoll stop at the first NUL, so the 3-byte value
     * "1\0x" is accepted as 1 and the trailing bytes are silently ignored
     * (Python's int(b"1\x00x") raises). Expected WEIR_EPARAM. */
    int rc = weir_params_set(p, "n", "1\0x", 3, 0, err, sizeof err);
    weir_params_free(p);
    assert_int_equal(rc, WEIR_EPARAM);
}

static void test_set_float(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    double f = 0;
    set_ok(p, "thr", "1e-3");
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == 0.001);
    set_ok(p, "thr", "-2.25");
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == -2.25);
    set_ok(p, "thr", "7"); /* Python float(b"7") == 7.0 */
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == 7.0);
    set_bad(p, "thr", "abc", "parameter 'thr': expected float, got 'abc'");
    set_bad(p, "thr", "0.5x", "parameter 'thr': expected float, got '0.5x'");
    set_bad(p, "thr", "1e999", "parameter 'thr': expected float, got '1e999'");
    set_bad(p, "thr", "", "parameter 'thr': expected float, got ''");
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == 7.0);
    weir_params_free(p);
}

static void test_set_bool(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    int b = -1;
    /* dranspose's to_bytes writes exactly "True" / "False" */
    set_ok(p, "flag", "False");
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 0);
    set_ok(p, "flag", "True");
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 1);
    set_bad(p, "flag", "yes", "parameter 'flag': expected bool, got 'yes'");
    set_bad(p, "flag", "TRUE!", "parameter 'flag': expected bool, got 'TRUE!'");
    set_bad(p, "flag", "", "parameter 'flag': expected bool, got ''");
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 1);
    char buf[32];
    assert_string_equal(weir_params_format(p, "flag", buf, sizeof buf), "True");
    weir_params_free(p);
}

static void test_set_string_binary(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    const char *s;
    size_t len;
    set_ok(p, "label", "hello world");
    assert_int_equal(weir_params_get_bytes(p, "label", &s, &len), WEIR_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(s, "hello world", 11);
    assert_int_equal(s[11], 0); /* terminated for convenience */
    /* binary keeps embedded NULs and every byte value */
    const uint8_t bin[5] = {0x00, 0xff, 0x10, 0x00, 0x80};
    char err[128];
    assert_int_equal(weir_params_set(p, "blob", bin, sizeof bin, 1, err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_get_bytes(p, "blob", &s, &len), WEIR_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(s, bin, 5);
    /* empty values */
    assert_int_equal(weir_params_set(p, "label", "", 0, 1, err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_get_bytes(p, "label", &s, &len), WEIR_OK);
    assert_int_equal(len, 0);

    char buf[64];
    assert_string_equal(weir_params_format(p, "blob", buf, sizeof buf), "<5 bytes>");
    assert_string_equal(weir_params_format(p, "n", buf, sizeof buf), "3");
    assert_string_equal(weir_params_format(p, "nope", buf, sizeof buf), "<unset>");
    assert_string_equal(weir_param_type_name(WEIR_PARAM_INT), "int");
    assert_string_equal(weir_param_type_name(WEIR_PARAM_FLOAT), "float");
    assert_string_equal(weir_param_type_name(WEIR_PARAM_BOOL), "bool");
    assert_string_equal(weir_param_type_name(WEIR_PARAM_STRING), "str");
    assert_string_equal(weir_param_type_name(WEIR_PARAM_BINARY), "binary");
    weir_params_free(p);
}

static void test_unknown_names(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[256] = "";
    /* non-strict: kept as undeclared binary values, as dranspose does */
    assert_int_equal(set_str(p, "other", "xyz", 0, err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_count(p), 6);
    const char *s;
    size_t len;
    assert_int_equal(weir_params_get_bytes(p, "other", &s, &len), WEIR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "xyz", 3);
    int64_t i;
    assert_int_equal(weir_params_get_int(p, "other", &i), WEIR_EPARAM);
    /* setting it again replaces the value */
    assert_int_equal(set_str(p, "other", "12345", 0, err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_get_bytes(p, "other", &s, &len), WEIR_OK);
    assert_int_equal(len, 5);
    assert_int_equal(weir_params_count(p), 6);
    /* strict: refused, nothing added */
    assert_int_equal(set_str(p, "other2", "1", 1, err, sizeof err), WEIR_ENOTFOUND);
    assert_string_equal(err, "unknown parameter 'other2'");
    assert_int_equal(weir_params_count(p), 6);
    assert_int_equal(weir_params_get_bytes(p, "other2", &s, &len), WEIR_ENOTFOUND);
    weir_params_free(p);
}

static void test_set_before_declare(void **state)
{
    (void)state;
    weir_params *p = weir_params_new();
    char err[256] = "";
    /* values read from a file before the plug-in declares them */
    assert_int_equal(set_str(p, "late", "12", 0, err, sizeof err), WEIR_OK);
    assert_int_equal(set_str(p, "lateb", "False", 0, err, sizeof err), WEIR_OK);
    assert_int_equal(set_str(p, "latebad", "abc", 0, err, sizeof err), WEIR_OK);
    int64_t i = 0;
    assert_int_equal(weir_params_get_int(p, "late", &i), WEIR_EPARAM); /* still binary */
    declare_ok(p, "late", WEIR_PARAM_INT, "5");
    assert_int_equal(weir_params_get_int(p, "late", &i), WEIR_OK);
    assert_int_equal(i, 12); /* the value, not the default */
    declare_ok(p, "lateb", WEIR_PARAM_BOOL, "True");
    int b = -1;
    assert_int_equal(weir_params_get_bool(p, "lateb", &b), WEIR_OK);
    assert_int_equal(b, 0);
    weir_param_desc d = {"latebad", WEIR_PARAM_INT, "5", NULL};
    assert_int_equal(weir_params_declare(p, &d, err, sizeof err), WEIR_EPARAM);
    assert_string_equal(err, "parameter 'latebad': expected int, got 'abc'");
    /* once declared, values are checked on set */
    set_bad(p, "late", "x", "parameter 'late': expected int, got 'x'");
    assert_int_equal(weir_params_count(p), 3);
    weir_params_free(p);
}

/* ---- parameter files ---------------------------------------------------- */

static void test_load_json(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[512] = "";
    const char *js =
        "[{\"name\": \"n\", \"data\": \"7\"}, {\"name\": \"flag\", \"data\": \"False\"},"
        " {\"name\": \"thr\", \"data\": \"0.25\"}, {\"name\": \"extra\", \"data\": "
        "\"kept\"}]";
    assert_int_equal(weir_params_load_json(p, js, strlen(js), err, sizeof err), WEIR_OK);
    int64_t i = 0;
    int b = -1;
    double f = 0;
    const char *s;
    size_t len;
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 7);
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 0);
    assert_int_equal(weir_params_get_float(p, "thr", &f), WEIR_OK);
    assert_true(f == 0.25);
    assert_int_equal(weir_params_get_bytes(p, "extra", &s, &len), WEIR_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "kept", 4);

    /* JSON numbers and bools are accepted as their Python str() */
    const char *js2 = "[{\"name\": \"n\", \"data\": 8}, {\"name\": \"flag\", \"data\": true}]";
    assert_int_equal(weir_params_load_json(p, js2, strlen(js2), err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 8);
    assert_int_equal(weir_params_get_bool(p, "flag", &b), WEIR_OK);
    assert_int_equal(b, 1);

    /* malformed */
    const char *notjson = "[{\"name\": ";
    assert_int_equal(weir_params_load_json(p, notjson, strlen(notjson), err, sizeof err),
                     WEIR_EJSON);
    assert_non_null(strstr(err, "not valid JSON"));
    const char *notlist = "{\"name\": \"n\", \"data\": \"1\"}";
    assert_int_equal(weir_params_load_json(p, notlist, strlen(notlist), err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "list"));
    const char *nodata = "[{\"name\": \"n\", \"data\": \"1\"}, {\"name\": \"n\"}]";
    assert_int_equal(weir_params_load_json(p, nodata, strlen(nodata), err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "entry 1"));
    const char *badval = "[{\"name\": \"n\", \"data\": \"seven\"}]";
    assert_int_equal(weir_params_load_json(p, badval, strlen(badval), err, sizeof err),
                     WEIR_EPARAM);
    assert_string_equal(err, "parameter 'n': expected int, got 'seven'");
    weir_params_free(p);
}

/* Builds dranspose's CBOR parameter list [{"name": tstr, "data": bstr}]. */
static uint8_t *cbor_params(const char *const *names, const char *const *vals, size_t n,
                            int text_data, size_t *len)
{
    cbor_item_t *list = cbor_new_definite_array(n);
    assert_non_null(list);
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *m = cbor_new_definite_map(2);
        cbor_item_t *kn = cbor_build_string("name"), *vn = cbor_build_string(names[i]);
        cbor_item_t *kd = cbor_build_string("data");
        cbor_item_t *vd =
            text_data ? cbor_build_string(vals[i])
                      : cbor_build_bytestring((const unsigned char *)vals[i], strlen(vals[i]));
        assert_true(cbor_map_add(m, (struct cbor_pair){.key = kn, .value = vn}));
        assert_true(cbor_map_add(m, (struct cbor_pair){.key = kd, .value = vd}));
        assert_true(cbor_array_push(list, m));
        cbor_decref(&kn);
        cbor_decref(&vn);
        cbor_decref(&kd);
        cbor_decref(&vd);
        cbor_decref(&m);
    }
    unsigned char *buf = NULL;
    size_t cap = 0;
    *len = cbor_serialize_alloc(list, &buf, &cap);
    assert_true(*len > 0);
    cbor_decref(&list);
    return buf;
}

static void test_load_cbor(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[512] = "";
    const char *names[] = {"n", "label", "blob", "newone"};
    const char *vals[] = {"-5", "text value", "\x01\x02", "zz"};
    size_t len;
    uint8_t *cb = cbor_params(names, vals, 4, 0, &len);
    /* hand check of the first bytes: array(4), map(2), text(4) "name" */
    assert_int_equal(cb[0], 0x84);
    assert_int_equal(cb[1], 0xa2);
    assert_int_equal(cb[2], 0x64);
    assert_int_equal(weir_params_load_cbor(p, cb, len, err, sizeof err), WEIR_OK);
    int64_t i = 0;
    const char *s;
    size_t n;
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, -5);
    assert_int_equal(weir_params_get_bytes(p, "label", &s, &n), WEIR_OK);
    assert_int_equal(n, 10);
    assert_memory_equal(s, "text value", 10);
    assert_int_equal(weir_params_get_bytes(p, "blob", &s, &n), WEIR_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(s, "\x01\x02", 2);
    assert_int_equal(weir_params_get_bytes(p, "newone", &s, &n), WEIR_OK);
    assert_int_equal(weir_params_count(p), 6);

    /* the same list written to a file goes through load_file */
    const char *dir = tu_tmpdir("params-cbor");
    char path[4200];
    snprintf(path, sizeof path, "%s/params.cbor", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(cb, 1, len, f), len);
    fclose(f);
    free(cb);
    weir_params *q = standard_set();
    assert_int_equal(weir_params_load_file(q, path, err, sizeof err), WEIR_OK);
    assert_int_equal(weir_params_get_int(q, "n", &i), WEIR_OK);
    assert_int_equal(i, -5);
    assert_string_equal(weir_params_hash(q), weir_params_hash(p));
    weir_params_free(q);

    /* "data" as text is accepted too */
    const char *tn[] = {"thr"}, *tv[] = {"1.5"};
    cb = cbor_params(tn, tv, 1, 1, &len);
    assert_int_equal(weir_params_load_cbor(p, cb, len, err, sizeof err), WEIR_OK);
    free(cb);
    double fl = 0;
    assert_int_equal(weir_params_get_float(p, "thr", &fl), WEIR_OK);
    assert_true(fl == 1.5);

    /* a bad value names the parameter */
    const char *bn[] = {"n"}, *bv[] = {"x1"};
    cb = cbor_params(bn, bv, 1, 0, &len);
    assert_int_equal(weir_params_load_cbor(p, cb, len, err, sizeof err), WEIR_EPARAM);
    assert_string_equal(err, "parameter 'n': expected int, got 'x1'");
    /* truncated CBOR */
    assert_int_equal(weir_params_load_cbor(p, cb, len - 1, err, sizeof err), WEIR_ECBOR);
    assert_non_null(strstr(err, "not valid CBOR"));
    free(cb);
    /* not a list; an entry without "data" (hand-assembled bytes) */
    const uint8_t map0[] = {0xa0};
    assert_int_equal(weir_params_load_cbor(p, map0, sizeof map0, err, sizeof err), WEIR_EFORMAT);
    const uint8_t nodata[] = {0x81, 0xa1, 0x64, 'n', 'a', 'm', 'e', 0x61, 'n'};
    assert_int_equal(weir_params_load_cbor(p, nodata, sizeof nodata, err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "entry 0"));
    weir_params_free(p);
}

static void test_load_file(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("params-file");
    char path[4200], err[1024] = "";
    snprintf(path, sizeof path, "%s/params.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("\n  [{\"name\": \"n\", \"data\": \"21\"}, {\"name\": \"label\", \"data\": \"q\"}]\n", f);
    fclose(f);
    weir_params *p = standard_set();
    assert_int_equal(weir_params_load_file(p, path, err, sizeof err), WEIR_OK);
    int64_t i = 0;
    assert_int_equal(weir_params_get_int(p, "n", &i), WEIR_OK);
    assert_int_equal(i, 21);

    /* missing file */
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    assert_int_equal(weir_params_load_file(p, missing, err, sizeof err), WEIR_ENOENT);
    assert_non_null(strstr(err, "nope.json"));

    /* neither JSON list nor CBOR list */
    char other[4200];
    snprintf(other, sizeof other, "%s/other.txt", dir);
    f = fopen(other, "wb");
    fputs("n=3\n", f);
    fclose(f);
    assert_int_equal(weir_params_load_file(p, other, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "other.txt"));
    weir_params_free(p);
}

static void test_load_file_pickle(void **state)
{
    (void)state;
    /* dranspose also accepts pickled parameter files; weir says it does not
     * (params.c). A pickle (protocol 2+) starts with 0x80 <proto>: the start
     * of the pickle of [] is 80 04 95 ... here a hand-made protocol-4 prefix. */
    const char *dir = tu_tmpdir("params-pickle");
    char path[4200], err[1024] = "";
    snprintf(path, sizeof path, "%s/params.pkl", dir);
    const uint8_t pkl[] = {0x80, 0x04, 0x95, 0x05, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x5d, 0x94, 0x2e};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(pkl, 1, sizeof pkl, f), sizeof pkl);
    fclose(f);
    weir_params *p = standard_set();
    /* Regression (fixed): params.c weir_params_load_file() sends every file whose first
     * byte is 0x80..0x9f to weir_params_load_cbor(), and load_cbor() calls
     * cbor_load() without checking that it consumed the whole input. 0x80 is
     * the empty CBOR array, so a pickle file (and any CBOR list followed by
     * garbage) "loads" successfully as zero parameters. Expected: an error
     * (WEIR_EFORMAT or WEIR_ECBOR, e.g. "trailing bytes after the list" or
     * "pickle parameter files are not supported"). */
    int rc = weir_params_load_file(p, path, err, sizeof err);
    weir_params_free(p);
    assert_int_not_equal(rc, WEIR_OK);
}

/* ---- hash and clone ----------------------------------------------------- */

static void test_hash(void **state)
{
    (void)state;
    /* FNV-1a 64 over nothing is its offset basis (FNV spec): the empty set */
    weir_params *e = weir_params_new();
    assert_string_equal(weir_params_hash(e), "cbf29ce484222325");
    weir_params_free(e);

    weir_params *a = standard_set();
    char h0[17];
    snprintf(h0, sizeof h0, "%s", weir_params_hash(a));
    assert_true(is_hex16(h0));
    assert_string_equal(weir_params_hash(a), h0); /* stable */

    /* the same declarations in another order give the same hash */
    weir_params *b = weir_params_new();
    declare_ok(b, "blob", WEIR_PARAM_BINARY, NULL);
    declare_ok(b, "label", WEIR_PARAM_STRING, "abc");
    declare_ok(b, "flag", WEIR_PARAM_BOOL, "True");
    declare_ok(b, "thr", WEIR_PARAM_FLOAT, "0.5");
    declare_ok(b, "n", WEIR_PARAM_INT, "3");
    assert_string_equal(weir_params_hash(b), h0);

    /* any value change changes it; restoring the value restores it */
    const char *names[] = {"n", "thr", "flag", "label", "blob"};
    const char *other[] = {"4", "0.75", "False", "abd", "\x01"};
    const char *orig[] = {"3", "0.5", "True", "abc", ""};
    char seen[6][17];
    snprintf(seen[0], 17, "%s", h0);
    for (size_t k = 0; k < 5; k++) {
        set_ok(a, names[k], other[k]);
        const char *h = weir_params_hash(a);
        assert_true(is_hex16(h));
        for (size_t j = 0; j <= k; j++)
            assert_string_not_equal(h, seen[j]);
        snprintf(seen[k + 1], 17, "%s", h);
        set_ok(a, names[k], orig[k]);
        assert_string_equal(weir_params_hash(a), h0);
    }
    /* a value that only differs in its byte form still changes the hash
     * (dranspose hashes the stored bytes too, via their uuids) */
    set_ok(a, "thr", "0.50");
    assert_string_not_equal(weir_params_hash(a), h0);
    set_ok(a, "thr", "0.5");
    /* an undeclared extra value changes it */
    char err[64];
    assert_int_equal(set_str(a, "zzz", "1", 0, err, sizeof err), WEIR_OK);
    assert_string_not_equal(weir_params_hash(a), h0);
    /* the boundary between name and value matters: ("ab","c") != ("a","bc") */
    weir_params *x = weir_params_new(), *y = weir_params_new();
    assert_int_equal(set_str(x, "ab", "c", 0, err, sizeof err), WEIR_OK);
    assert_int_equal(set_str(y, "a", "bc", 0, err, sizeof err), WEIR_OK);
    assert_string_not_equal(weir_params_hash(x), weir_params_hash(y));
    weir_params_free(x);
    weir_params_free(y);
    weir_params_free(a);
    weir_params_free(b);
}

static void test_clone(void **state)
{
    (void)state;
    weir_params *a = standard_set();
    set_ok(a, "label", "original");
    char h[17];
    snprintf(h, sizeof h, "%s", weir_params_hash(a));
    weir_params *c = weir_params_clone(a);
    assert_non_null(c);
    assert_int_equal(weir_params_count(c), weir_params_count(a));
    assert_string_equal(weir_params_hash(c), h);

    /* changing the original leaves the clone alone, and back */
    set_ok(a, "n", "100");
    set_ok(a, "label", "changed");
    int64_t i = 0;
    const char *s;
    size_t len;
    assert_int_equal(weir_params_get_int(c, "n", &i), WEIR_OK);
    assert_int_equal(i, 3);
    assert_int_equal(weir_params_get_bytes(c, "label", &s, &len), WEIR_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(s, "original", 8);
    assert_string_equal(weir_params_hash(c), h);
    assert_string_not_equal(weir_params_hash(a), h);
    set_ok(c, "thr", "9.5");
    double f = 0;
    assert_int_equal(weir_params_get_float(a, "thr", &f), WEIR_OK);
    assert_true(f == 0.5);
    /* the clone keeps the declarations: typed checks still apply */
    set_bad(c, "n", "x", "parameter 'n': expected int, got 'x'");

    /* the clone outlives the original */
    weir_params_free(a);
    assert_int_equal(weir_params_get_bytes(c, "label", &s, &len), WEIR_OK);
    assert_memory_equal(s, "original", 8);
    weir_params_free(c);

    /* clone of an empty set */
    weir_params *e = weir_params_new();
    weir_params *ec = weir_params_clone(e);
    assert_non_null(ec);
    assert_int_equal(weir_params_count(ec), 0);
    weir_params_free(ec);
    weir_params_free(e);
    weir_params_free(NULL);
}

static void test_load_json_huge_number(void **state)
{
    (void)state;
    weir_params *p = standard_set();
    char err[256] = "";
    /* Regression (fixed): params.c weir_params_load_json() tests d->valuedouble ==
     * (double)(int64_t)d->valuedouble; for a JSON number outside the int64
     * range the cast is undefined behaviour (clang UBSan float-cast-overflow
     * aborts here in build-*-fuzz). Expected: no UB; "n" is an int, so the
     * value (printed with %.17g) is refused with WEIR_EPARAM. */
    const char *js = "[{\"name\": \"n\", \"data\": 1e300}]";
    int rc = weir_params_load_json(p, js, strlen(js), err, sizeof err);
    weir_params_free(p);
    assert_int_equal(rc, WEIR_EPARAM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declare_defaults),
        cmocka_unit_test(test_declare_errors),
        cmocka_unit_test(test_set_int),
        cmocka_unit_test(test_set_int_embedded_nul),
        cmocka_unit_test(test_set_float),
        cmocka_unit_test(test_set_bool),
        cmocka_unit_test(test_set_string_binary),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_set_before_declare),
        cmocka_unit_test(test_load_json),
        cmocka_unit_test(test_load_cbor),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_pickle),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_load_json_huge_number), /* last: aborts under clang UBSan */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
