/* test_stins.c — the STINS ("stream1") protocol (include/weir/stins.h) on
 * dranspose's real captures and on weir's own encoder.
 *
 * Ground truth: the header fields, frame numbers and the first pixel row of
 * dump_xrd.cbors from reference/dranspose.md §3.1 and §4.3; per-frame pixel
 * sums of dump_xrd and of the DanMAX Orca dump, and the DanMAX header and
 * timestamps, were read by hand with a small independent CBOR decoder in
 * python3 while writing this test (each such constant says so). Round trips
 * go through the encoder (none and bslz4) for several dtypes; bad inputs are
 * hand-written messages, each checked for its error code and for a message
 * that names the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/bslz4.h"
#include "weir/cbors.h"
#include "weir/error.h"
#include "weir/stins.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static weir_cbors_reader *open_ok(const char *path)
{
    char err[512];
    weir_cbors_reader *r = NULL;
    int rc = weir_cbors_open(path, &r, err, sizeof err);
    if (rc) fail_msg("open %s: %s (%s)", path, err, weir_err_name(rc));
    assert_non_null(r);
    return r;
}

static weir_event *next_ok(weir_cbors_reader *r)
{
    weir_event *ev = NULL;
    int rc = weir_cbors_next_event(r, &ev);
    if (rc) fail_msg("%s (%s)", weir_cbors_error(r), weir_err_name(rc));
    return ev;
}

static void parse_ok(const weir_msg *m, int decode, weir_stins_packet *p)
{
    char err[512] = "";
    int rc = weir_stins_parse(m, decode, p, err, sizeof err);
    if (rc) fail_msg("parse: %s (%s)", err, weir_err_name(rc));
}

/* A message of literal frames: JSON text and optional raw pixel bytes. */
static weir_msg make_msg(const char *json, const void *px, size_t pxlen, int with_px)
{
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_msg_append(&m, weir_buf_copy(json, strlen(json))), WEIR_OK);
    if (with_px) assert_int_equal(weir_msg_append(&m, weir_buf_copy(px, pxlen)), WEIR_OK);
    return m;
}

/* Parses m, expects code rc and every needle in the message. */
static void expect_fail(weir_msg *m, int decode, int want, const char *n1, const char *n2)
{
    char err[512] = "";
    weir_stins_packet p;
    int rc = weir_stins_parse(m, decode, &p, err, sizeof err);
    if (rc != want)
        fail_msg("got %s (\"%s\"), expected %s", weir_err_name(rc), err, weir_err_name(want));
    if (n1 && !strstr(err, n1)) fail_msg("message \"%s\" lacks \"%s\"", err, n1);
    if (n2 && !strstr(err, n2)) fail_msg("message \"%s\" lacks \"%s\"", err, n2);
    /* a failed parse leaves nothing to release */
    assert_null(p.json_);
    assert_null(p.raw);
    assert_null(p.data.buf);
    assert_null(p.filename);
    weir_stins_clear(&p); /* and clearing it again is harmless */
    /* NULL err is allowed */
    assert_int_equal(weir_stins_parse(m, decode, &p, NULL, 0), want);
    weir_msg_clear(m);
}

/* ---- dump_xrd.cbors ----------------------------------------------------- */

static void test_xrd_dump(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    /* per-frame pixel sums, read with python3 (own CBOR decoder) by hand */
    static const double sums[9] = {991, 1001, 1041, 1076, 1166, 1268, 1363, 1422, 1481};
    /* first row of frame 0, from the hex dump in reference §4.3 */
    static const uint16_t row0[10] = {1, 18, 0, 7, 17, 19, 17, 6, 0, 18};
    size_t n = 0;
    weir_event *ev;
    while ((ev = next_ok(r)) != NULL) {
        assert_int_equal(ev->number, n);
        const weir_stream_packet *s = weir_event_stream(ev, "xrd");
        assert_non_null(s);
        assert_string_equal(s->typ, "STINS");
        weir_stins_packet p;
        parse_ok(&s->msg, 1, &p);
        assert_int_equal(p.msg_number, (int64_t)n);
        if (n == 0) {
            assert_int_equal(p.kind, WEIR_STINS_HEADER);
            assert_string_equal(p.filename, "output/xrd.h5");
            assert_int_equal(p.nextra, 0);
            assert_int_equal(p.frame, -1);
            assert_null(p.raw);
        } else if (n <= 9) {
            assert_int_equal(p.kind, WEIR_STINS_IMAGE);
            assert_int_equal(p.frame, (int64_t)n - 1);
            assert_null(p.filename);
            assert_int_equal(p.compression, WEIR_STINS_COMP_NONE);
            assert_int_equal(p.data.dtype.kind, WEIR_DT_U16);
            assert_int_equal(p.data.dtype.order, WEIR_LITTLE); /* numpy name: little-endian */
            assert_int_equal(p.data.ndim, 2);
            assert_int_equal(p.data.shape[0], 10);
            assert_int_equal(p.data.shape[1], 10);
            assert_int_equal(p.data.strides[0], 20);
            assert_int_equal(p.data.strides[1], 2);
            /* zero copy: the pixels are frame 1 itself */
            assert_ptr_equal(p.raw, s->msg.parts[1]);
            assert_ptr_equal(p.data.data, weir_buf_data(s->msg.parts[1]));
            assert_true(weir_array_sum_f64(&p.data) == sums[n - 1]);
            if (n == 1)
                for (size_t k = 0; k < 10; k++)
                    assert_true(weir_array_get_f64(&p.data, k) == row0[k]);
            /* decode=0 also gives the view for uncompressed frames */
            weir_stins_packet q;
            parse_ok(&s->msg, 0, &q);
            assert_ptr_equal(q.data.data, p.data.data);
            weir_stins_clear(&q);
        } else {
            assert_int_equal(p.kind, WEIR_STINS_SERIES_END);
            assert_int_equal(p.frame, -1);
        }
        weir_stins_clear(&p);
        assert_null(p.json_);
        weir_event_free(ev);
        n++;
    }
    assert_int_equal(n, 11);
    weir_cbors_close(r);
}

static void test_xrd_packet_outlives_event(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    weir_event *ev0 = next_ok(r), *ev1 = next_ok(r);
    assert_non_null(ev1);
    weir_stins_packet p;
    parse_ok(&weir_event_stream(ev1, "xrd")->msg, 1, &p);
    /* the packet holds its own references: free the event and the reader */
    weir_event_free(ev1);
    weir_event_free(ev0);
    weir_cbors_close(r);
    assert_true(weir_array_get_f64(&p.data, 0) == 1.0);
    assert_true(weir_array_get_f64(&p.data, 9) == 18.0);
    assert_true(weir_array_sum_f64(&p.data) == 991.0);
    weir_stins_clear(&p);
}

/* ---- DanMAX Orca dump --------------------------------------------------- */

static const char *danmax_path(void)
{
    return tu_shared("dranspose/danmax/"
                     "dumporca-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors");
}

static void test_danmax_orca(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_ok(danmax_path());
    /* read by hand with python3 (own CBOR decoder) while writing this test */
    static const char meta[] = "{\"label\": \"\", \"nproj\": 1, \"save_raw\": true, "
                               "\"expected_data\": {\"shape\": [4, 128], \"type\": \"uint16\", "
                               "\"compression\": \"none\"}}";
    static const double sums[11] = {103760, 103540, 104538, 104231, 102986, 104380,
                                    103836, 103656, 104553, 103937, 103468};
    static const uint16_t first4[4] = {195, 203, 198, 195}; /* frame 1, row 0 */
    size_t n = 0;
    weir_event *ev;
    while ((ev = next_ok(r)) != NULL) {
        const weir_stream_packet *s = weir_event_stream(ev, "orca");
        assert_non_null(s);
        assert_string_equal(s->typ, "STINS");
        weir_stins_packet p;
        parse_ok(&s->msg, 1, &p);
        assert_int_equal(p.msg_number, 210 + (int64_t)n);
        if (n == 0) {
            assert_int_equal(p.kind, WEIR_STINS_HEADER);
            assert_string_equal(p.filename, "/data/visitors/danmax/20240915/2024102608/raw/"
                                            "test_scan/scan-2536_orca.h5");
            /* the 2nd part is passed through untouched, as a reference */
            assert_int_equal(p.nextra, 1);
            assert_ptr_equal(p.extra[0], s->msg.parts[1]);
            assert_int_equal(weir_buf_size(p.extra[0]), sizeof meta - 1);
            assert_memory_equal(weir_buf_data(p.extra[0]), meta, sizeof meta - 1);
        } else if (n <= 11) {
            assert_int_equal(p.kind, WEIR_STINS_IMAGE);
            assert_int_equal(p.frame, (int64_t)n);
            assert_int_equal(p.data.dtype.kind, WEIR_DT_U16);
            assert_int_equal(p.data.ndim, 2);
            assert_int_equal(p.data.shape[0], 4);
            assert_int_equal(p.data.shape[1], 128);
            assert_ptr_equal(p.data.data, weir_buf_data(s->msg.parts[1]));
            assert_true(weir_array_sum_f64(&p.data) == sums[n - 1]);
            /* "timestamps" is an object: not a number, not a string, but in
             * the re-printed JSON */
            double f;
            const char *str;
            assert_int_equal(weir_stins_get_f64(&p, "timestamps", &f), WEIR_EINVAL);
            assert_int_equal(weir_stins_get_str(&p, "timestamps", &str), WEIR_EINVAL);
            assert_int_equal(weir_stins_get_str(&p, "type", &str), WEIR_OK);
            assert_string_equal(str, "uint16");
            assert_int_equal(weir_stins_get_f64(&p, "frame", &f), WEIR_OK);
            assert_true(f == (double)n);
            assert_int_equal(weir_stins_get_f64(&p, "no_such_key", &f), WEIR_ENOTFOUND);
            assert_int_equal(weir_stins_get_str(&p, "no_such_key", &str), WEIR_ENOTFOUND);
            char *js = weir_stins_json(&p);
            assert_non_null(js);
            cJSON *j = cJSON_Parse(js);
            assert_non_null(j);
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamps");
            const cJSON *dcu = cJSON_GetObjectItemCaseSensitive(ts, "dcu");
            assert_true(cJSON_IsString(dcu));
            assert_int_equal(strncmp(dcu->valuestring, "2024-10-28T14:02:", 17), 0);
            if (n == 1) {
                assert_string_equal(dcu->valuestring, "2024-10-28T14:02:38.534415+00:00");
                for (size_t k = 0; k < 4; k++)
                    assert_true(weir_array_get_f64(&p.data, k) == first4[k]);
            }
            if (n == 11) assert_string_equal(dcu->valuestring, "2024-10-28T14:02:39.864756+00:00");
            cJSON_Delete(j);
            free(js);
        } else {
            assert_int_equal(p.kind, WEIR_STINS_SERIES_END);
        }
        weir_stins_clear(&p);
        weir_event_free(ev);
        n++;
    }
    assert_int_equal(n, 13);
    weir_cbors_close(r);
}

/* ---- encoder round trips ------------------------------------------------ */

static void test_roundtrip_header_end(void **state)
{
    (void)state;
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_stins_encode_header(&m, 5, "out/x.h5",
                                              "{\"det\": \"eiger\", \"nproj\": 3, "
                                              "\"meta\": {\"a\": [1, 2]}}"),
                     WEIR_OK);
    assert_int_equal(m.nparts, 1);
    /* the wire form, read with cJSON independently of the parser */
    cJSON *j =
        cJSON_ParseWithLength((const char *)weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]));
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "htype")->valuestring, "header");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "msg_number")->valuedouble == 5.0);
    cJSON_Delete(j);
    weir_stins_packet p;
    parse_ok(&m, 1, &p);
    assert_int_equal(p.kind, WEIR_STINS_HEADER);
    assert_int_equal(p.msg_number, 5);
    assert_string_equal(p.filename, "out/x.h5");
    const char *s;
    double f;
    assert_int_equal(weir_stins_get_str(&p, "det", &s), WEIR_OK);
    assert_string_equal(s, "eiger");
    assert_int_equal(weir_stins_get_f64(&p, "nproj", &f), WEIR_OK);
    assert_true(f == 3.0);
    char *js = weir_stins_json(&p);
    assert_non_null(strstr(js, "\"meta\":{\"a\":[1,2]}"));
    free(js);
    weir_stins_clear(&p);
    weir_msg_clear(&m);

    /* no filename: "" (live view) */
    assert_int_equal(weir_stins_encode_header(&m, 0, NULL, NULL), WEIR_OK);
    parse_ok(&m, 1, &p);
    assert_string_equal(p.filename, "");
    weir_stins_clear(&p);
    weir_msg_clear(&m);

    /* a bad extra_json is refused */
    assert_int_equal(weir_stins_encode_header(&m, 0, "x", "[1, 2]"), WEIR_EJSON);
    weir_msg_clear(&m);
    assert_int_equal(weir_stins_encode_header(&m, 0, "x", "{oops"), WEIR_EJSON);
    weir_msg_clear(&m);

    assert_int_equal(weir_stins_encode_series_end(&m, 12), WEIR_OK);
    assert_int_equal(m.nparts, 1);
    parse_ok(&m, 1, &p);
    assert_int_equal(p.kind, WEIR_STINS_SERIES_END);
    assert_int_equal(p.msg_number, 12);
    weir_stins_clear(&p);
    weir_msg_clear(&m);
}

/* Deterministic pixels: a smooth ramp with noise, so bslz4 has something to
 * compress but the data is not trivial. */
static void fill_pixels(uint8_t *px, size_t nbytes, size_t isz, uint32_t seed)
{
    for (size_t i = 0; i < nbytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        size_t elem = i / isz, byte = i % isz;
        px[i] = byte == 0 ? (uint8_t)(elem / 7 + (seed >> 29))
                          : (byte == 1 ? (uint8_t)(elem >> 10) : 0);
    }
}

static void roundtrip_image(weir_dtype dt, int ndim, const size_t *shape,
                            weir_stins_compression comp)
{
    size_t isz = weir_dtype_size(dt.kind), n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    size_t nb = n * isz;
    uint8_t *px = malloc(nb ? nb : 1);
    fill_pixels(px, nb, isz, (uint32_t)(nb + dt.kind));
    weir_msg m;
    weir_msg_init(&m);
    int rc = weir_stins_encode_image(&m, 77, 6, dt, ndim, shape, px, comp,
                                     "{\"exposure_time\": 2.0, \"timestamps\": {\"dcu\": \"t\"}}");
    if (rc) fail_msg("encode %s: %s", weir_dtype_name(dt.kind), weir_err_name(rc));
    assert_int_equal(m.nparts, 2);

    /* the wire JSON, read independently */
    cJSON *j =
        cJSON_ParseWithLength((const char *)weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]));
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "htype")->valuestring, "image");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "compression")->valuestring,
                        comp == WEIR_STINS_COMP_BSLZ4 ? "bslz4" : "none");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    assert_int_equal(cJSON_GetArraySize(sh), ndim);
    for (int i = 0; i < ndim; i++)
        assert_true(cJSON_GetArrayItem(sh, i)->valuedouble == (double)shape[i]);
    const char *type = cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring;
    if (dt.order == WEIR_LITTLE || isz == 1) assert_string_equal(type, weir_dtype_name(dt.kind));
    cJSON_Delete(j);

    if (comp == WEIR_STINS_COMP_BSLZ4) {
        /* the frame starts with the bslz4 header: u64 BE size, u32 BE block */
        const uint8_t *b = weir_buf_data(m.parts[1]);
        assert_true(weir_buf_size(m.parts[1]) >= 12);
        uint64_t declared = 0;
        for (int i = 0; i < 8; i++)
            declared = declared << 8 | b[i];
        assert_true(declared == nb);
    } else {
        assert_int_equal(weir_buf_size(m.parts[1]), nb);
    }

    weir_stins_packet p;
    parse_ok(&m, 1, &p);
    assert_int_equal(p.kind, WEIR_STINS_IMAGE);
    assert_int_equal(p.msg_number, 77);
    assert_int_equal(p.frame, 6);
    assert_int_equal(p.compression, comp);
    assert_int_equal(p.data.dtype.kind, dt.kind);
    if (isz > 1) assert_int_equal(p.data.dtype.order, dt.order);
    assert_int_equal(p.data.ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(p.data.shape[i], shape[i]);
    assert_true(weir_array_is_contiguous(&p.data));
    assert_int_equal(weir_array_nbytes(&p.data), nb);
    if (nb) assert_memory_equal(p.data.data, px, nb);
    assert_ptr_equal(p.raw, m.parts[1]);
    if (comp == WEIR_STINS_COMP_NONE)
        assert_ptr_equal(p.data.data, weir_buf_data(m.parts[1]));
    else
        assert_ptr_not_equal(p.data.data, weir_buf_data(m.parts[1]));
    double f;
    assert_int_equal(weir_stins_get_f64(&p, "exposure_time", &f), WEIR_OK);
    assert_true(f == 2.0);
    char *js = weir_stins_json(&p);
    assert_non_null(strstr(js, "\"timestamps\":{\"dcu\":\"t\"}"));
    free(js);
    weir_stins_clear(&p);

    /* decode=0: bslz4 leaves the data empty but keeps the raw frame */
    parse_ok(&m, 0, &p);
    assert_ptr_equal(p.raw, m.parts[1]);
    if (comp == WEIR_STINS_COMP_BSLZ4) {
        assert_null(p.data.buf);
        assert_null(p.data.data);
    } else {
        assert_ptr_equal(p.data.data, weir_buf_data(m.parts[1]));
    }
    weir_stins_clear(&p);
    weir_msg_clear(&m);
    free(px);
}

static void test_roundtrip_images(void **state)
{
    (void)state;
    static const weir_dtype_kind kinds[] = {WEIR_DT_U8,  WEIR_DT_U16, WEIR_DT_U32, WEIR_DT_U64,
                                            WEIR_DT_I8,  WEIR_DT_I16, WEIR_DT_I32, WEIR_DT_I64,
                                            WEIR_DT_F32, WEIR_DT_F64};
    /* 15 elements (tail of 7 raw elements), a 2-D frame of several bslz4
     * blocks plus a partial block, and 3-D */
    const size_t s1[2] = {3, 5}, s2[2] = {64, 100}, s3[3] = {2, 3, 8};
    for (int comp = 0; comp < 2; comp++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            weir_dtype dt = {kinds[k], WEIR_LITTLE};
            roundtrip_image(dt, 2, s1, (weir_stins_compression)comp);
            roundtrip_image(dt, 2, s2, (weir_stins_compression)comp);
            roundtrip_image(dt, 3, s3, (weir_stins_compression)comp);
        }
        /* big-endian pixels travel as a typestring */
        roundtrip_image((weir_dtype){WEIR_DT_U16, WEIR_BIG}, 2, s1, (weir_stins_compression)comp);
        roundtrip_image((weir_dtype){WEIR_DT_F64, WEIR_BIG}, 2, s2, (weir_stins_compression)comp);
    }
}

static void test_big_endian_wire(void **state)
{
    (void)state;
    /* hand-written big-endian image: ">u2" [2] = 258, 65534 */
    const uint8_t px[4] = {0x01, 0x02, 0xff, 0xfe};
    weir_msg m = make_msg("{\"htype\": \"image\", \"frame\": 0, \"shape\": [2], \"type\": \">u2\","
                          " \"compression\": \"none\", \"msg_number\": 1}",
                          px, 4, 1);
    weir_stins_packet p;
    parse_ok(&m, 1, &p);
    assert_int_equal(p.data.dtype.order, WEIR_BIG);
    assert_true(weir_array_get_f64(&p.data, 0) == 258.0);
    assert_true(weir_array_get_f64(&p.data, 1) == 65534.0);
    weir_stins_clear(&p);
    weir_msg_clear(&m);
    /* no "compression" field means none (dranspose's default) */
    m = make_msg("{\"htype\": \"image\", \"frame\": 0, \"shape\": [2], \"type\": \"uint16\","
                 " \"msg_number\": 1}",
                 px, 4, 1);
    parse_ok(&m, 1, &p);
    assert_int_equal(p.compression, WEIR_STINS_COMP_NONE);
    assert_true(weir_array_get_f64(&p.data, 0) == 513.0);
    weir_stins_clear(&p);
    weir_msg_clear(&m);
}

/* ---- bad inputs --------------------------------------------------------- */

#define IMG(shape, type, comp)                                                                     \
    "{\"htype\": \"image\", \"frame\": 3, \"shape\": " shape ", \"type\": " type                   \
    ", \"compression\": " comp ", \"msg_number\": 4}"

static void test_bad_inputs(void **state)
{
    (void)state;
    uint8_t px[200];
    memset(px, 7, sizeof px);
    weir_msg m;

    /* empty message */
    weir_msg_init(&m);
    expect_fail(&m, 1, WEIR_EFORMAT, "empty", NULL);
    /* frame 0 not JSON, or JSON but not an object */
    m = make_msg("this is not JSON", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EJSON, "not a JSON object", NULL);
    m = make_msg("[1, 2]", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EJSON, "not a JSON object", NULL);
    weir_msg_init(&m);
    weir_msg_append(&m, weir_buf_new(0));
    expect_fail(&m, 1, WEIR_EJSON, "0 bytes", NULL);
    /* missing htype, unknown htype, missing msg_number */
    m = make_msg("{\"msg_number\": 1, \"filename\": \"x\"}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "htype", NULL);
    m = make_msg("{\"htype\": 5, \"msg_number\": 1}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "htype", NULL);
    m = make_msg("{\"htype\": \"picture\", \"msg_number\": 1}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "unknown htype", "picture");
    m = make_msg("{\"htype\": \"header\", \"filename\": \"x\"}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "msg_number", NULL);
    m = make_msg("{\"htype\": \"header\", \"msg_number\": 1.5}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "msg_number", NULL);
    m = make_msg("{\"htype\": \"header\", \"msg_number\": \"1\"}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "msg_number", NULL);
    /* series_end with 2 frames */
    m = make_msg("{\"htype\": \"series_end\", \"msg_number\": 1}", px, 1, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "series_end", "2");

    /* an image with 1 frame, or 3 */
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "\"none\""), NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "expected 2 frames", "got 1");
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "\"none\""), px, 200, 1);
    weir_msg_append(&m, weir_buf_copy(px, 1));
    expect_fail(&m, 1, WEIR_EFORMAT, "expected 2 frames", "got 3");
    /* frame missing or not an integer */
    m = make_msg("{\"htype\": \"image\", \"shape\": [1], \"type\": \"uint8\", \"msg_number\": 4}",
                 px, 1, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "frame", NULL);
    /* shape: missing, not a list, negative, fractional, too many dims */
    m = make_msg("{\"htype\": \"image\", \"frame\": 3, \"type\": \"uint8\", \"msg_number\": 4}", px,
                 1, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "shape", NULL);
    m = make_msg(IMG("100", "\"uint16\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "shape", NULL);
    m = make_msg(IMG("[-10, -10]", "\"uint16\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "shape[0]", NULL);
    m = make_msg(IMG("[10, 10.5]", "\"uint16\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "shape[1]", NULL);
    m = make_msg(IMG("[1, 1, 1, 1, 1, 1, 1, 1, 1]", "\"uint8\"", "\"none\""), px, 1, 1);
    expect_fail(&m, 1, WEIR_EFORMAT, "shape", NULL);
    /* unknown dtype */
    m = make_msg(IMG("[10, 10]", "\"uint7\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EDTYPE, "uint7", "dtype");
    m = make_msg(IMG("[10, 10]", "\"<c16\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EDTYPE, "<c16", NULL);
    m = make_msg("{\"htype\": \"image\", \"frame\": 3, \"shape\": [1], \"msg_number\": 4}", px, 1,
                 1);
    expect_fail(&m, 1, WEIR_EDTYPE, "missing", NULL);
    /* shape not matching the pixel frame: both sizes in the message */
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "\"none\""), px, 150, 1);
    expect_fail(&m, 1, WEIR_ESHAPE, "200", "150");
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "\"none\""), px, 150, 1);
    expect_fail(&m, 0, WEIR_ESHAPE, "200", "150"); /* checked without decode too */
    m = make_msg(IMG("[10, 10]", "\"uint8\"", "\"none\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_ESHAPE, "100", "200");
    /* a shape whose byte size overflows size_t */
    m = make_msg(IMG("[1000000000000000, 1000000000000000, 1000]", "\"uint64\"", "\"none\""), px, 8,
                 1);
    expect_fail(&m, 1, WEIR_ESHAPE, "overflow", NULL);
    /* unsupported compression */
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "\"zstd\""), px, 200, 1);
    expect_fail(&m, 1, WEIR_EUNSUPPORTED, "zstd", "not supported");
    m = make_msg(IMG("[10, 10]", "\"uint16\"", "3"), px, 200, 1);
    expect_fail(&m, 1, WEIR_EUNSUPPORTED, "compression", NULL);
}

static void test_bad_bslz4(void **state)
{
    (void)state;
    /* a real bslz4 frame of 4 x 4 uint16 (32 bytes) from the encoder */
    uint16_t px[16];
    for (int i = 0; i < 16; i++)
        px[i] = (uint16_t)(i * 1000 + 3);
    weir_msg enc;
    weir_msg_init(&enc);
    const size_t shape[2] = {4, 4};
    assert_int_equal(weir_stins_encode_image(&enc, 1, 0, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2,
                                             shape, px, WEIR_STINS_COMP_BSLZ4, NULL),
                     WEIR_OK);
    const uint8_t *z = weir_buf_data(enc.parts[1]);
    size_t zlen = weir_buf_size(enc.parts[1]);
    assert_true(zlen >= 12);

    /* the JSON says [4, 5] (40 bytes), the bslz4 header says 32 */
    weir_msg m = make_msg(IMG("[4, 5]", "\"uint16\"", "\"bslz4\""), z, zlen, 1);
    expect_fail(&m, 1, WEIR_ESHAPE, "40", "32");
    /* not checked without decode */
    m = make_msg(IMG("[4, 5]", "\"uint16\"", "\"bslz4\""), z, zlen, 1);
    weir_stins_packet p;
    parse_ok(&m, 0, &p);
    weir_stins_clear(&p);
    weir_msg_clear(&m);
    /* uint32 [4, 4] = 64 bytes, header 32 */
    m = make_msg(IMG("[4, 4]", "\"uint32\"", "\"bslz4\""), z, zlen, 1);
    expect_fail(&m, 1, WEIR_ESHAPE, "64", "32");

    /* a frame too short for the 12-byte header */
    m = make_msg(IMG("[4, 4]", "\"uint16\"", "\"bslz4\""), z, 11, 1);
    char err[512] = "";
    int rc = weir_stins_parse(&m, 1, &p, err, sizeof err);
    assert_int_not_equal(rc, WEIR_OK);
    assert_non_null(strstr(err, "header"));
    weir_msg_clear(&m);

    /* truncated or corrupt compressed data */
    m = make_msg(IMG("[4, 4]", "\"uint16\"", "\"bslz4\""), z, zlen - 1, 1);
    rc = weir_stins_parse(&m, 1, &p, err, sizeof err);
    assert_int_not_equal(rc, WEIR_OK);
    assert_non_null(strstr(err, "bslz4"));
    weir_msg_clear(&m);
    uint8_t *bad = malloc(zlen + 4);
    memcpy(bad, z, zlen);
    memset(bad + zlen, 0xab, 4); /* trailing bytes */
    m = make_msg(IMG("[4, 4]", "\"uint16\"", "\"bslz4\""), bad, zlen + 4, 1);
    rc = weir_stins_parse(&m, 1, &p, err, sizeof err);
    assert_int_not_equal(rc, WEIR_OK);
    weir_msg_clear(&m);
    memcpy(bad, z, zlen);
    for (size_t i = 12; i < zlen; i++)
        bad[i] = 0xff; /* block lengths and LZ4 data destroyed */
    m = make_msg(IMG("[4, 4]", "\"uint16\"", "\"bslz4\""), bad, zlen, 1);
    rc = weir_stins_parse(&m, 1, &p, err, sizeof err);
    assert_int_not_equal(rc, WEIR_OK);
    assert_non_null(strstr(err, "image 3"));
    weir_msg_clear(&m);
    free(bad);

    /* and the good one decodes to the input */
    m = make_msg(IMG("[4, 4]", "\"uint16\"", "\"bslz4\""), z, zlen, 1);
    parse_ok(&m, 1, &p);
    for (size_t i = 0; i < 16; i++)
        assert_true(weir_array_get_f64(&p.data, i) == (double)(i * 1000 + 3));
    weir_stins_clear(&p);
    weir_msg_clear(&m);
    weir_msg_clear(&enc);
}

static void test_huge_msg_number(void **state)
{
    (void)state;
    /* Numbers outside int64 must be refused. Regression (fixed): stins.c get_int() (line
     * 37) tests v->valuedouble != (double)(int64_t)v->valuedouble, and the
     * cast of a double outside the int64 range (1e300, -1e19, 2^63) is
     * undefined behaviour: clang's UBSan (float-cast-overflow, on in the
     * build-*-fuzz configuration) aborts with "1e+300 is outside the range of
     * representable values of type 'long'"; gcc builds happen to return
     * WEIR_EFORMAT. Fix: range-check first (v >= -0x1p63 && v < 0x1p63)
     * before casting. The same pattern is in params.c
     * weir_params_load_json() (JSON number "data"). */
    weir_msg m = make_msg("{\"htype\": \"header\", \"msg_number\": 1e300}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "msg_number", NULL);
    m = make_msg("{\"htype\": \"series_end\", \"msg_number\": -1e19}", NULL, 0, 0);
    expect_fail(&m, 1, WEIR_EFORMAT, "msg_number", NULL);
}

static void test_encode_errors(void **state)
{
    (void)state;
    weir_msg m;
    weir_msg_init(&m);
    const size_t shape[1] = {4};
    const uint8_t px[4] = {0};
    assert_int_equal(weir_stins_encode_image(&m, 0, 0, (weir_dtype){WEIR_DT_INVALID, WEIR_LITTLE},
                                             1, shape, px, WEIR_STINS_COMP_NONE, NULL),
                     WEIR_EINVAL);
    assert_int_equal(weir_stins_encode_image(&m, 0, 0, (weir_dtype){WEIR_DT_U8, WEIR_LITTLE}, 9,
                                             shape, px, WEIR_STINS_COMP_NONE, NULL),
                     WEIR_EINVAL);
    assert_int_equal(m.nparts, 0);
    assert_int_equal(weir_stins_encode_image(&m, 0, 0, (weir_dtype){WEIR_DT_U8, WEIR_LITTLE}, 1,
                                             shape, px, WEIR_STINS_COMP_NONE, "\"text\""),
                     WEIR_EJSON);
    weir_msg_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xrd_dump),
        cmocka_unit_test(test_xrd_packet_outlives_event),
        cmocka_unit_test(test_danmax_orca),
        cmocka_unit_test(test_roundtrip_header_end),
        cmocka_unit_test(test_roundtrip_images),
        cmocka_unit_test(test_big_endian_wire),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_bslz4),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_huge_msg_number), /* last: aborts under clang UBSan */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
