/* test_beamline.c — the beamline streams of weir/beamline.h (Xspress3,
 * Contrast, PCAP over ZeroMQ and raw TCP, Sardana, LeCroy, AlbaEM) on
 * dranspose's real captures and on weir's own encoders.
 *
 * Ground truth: every expected value below was computed while writing this
 * test by a separate Python 3 (stdlib only) reading of the same files — a
 * 40-line CBOR item reader, json, struct for the little-endian spectra and
 * traces, and pickle.Unpickler with find_class mapping numpy to a dummy
 * class (OrderedDict allowed) for the Contrast statuses — never from
 * weir's output. Raw captures (reference/dranspose.md §4.2): albaem-dump,
 * contrast-dump, xspress3-multipart, xspress3mini-dump20, pcap-zmq and
 * maui-02-continuous-3 (gzip). Ingester dumps (§4.1): the DanMAX
 * dumpsardana, dumppcap_rotRAW and mesh2dworkpcap_rotRAW files, whose
 * PCAP_RAW frames, put back to back after "OK\n", are exactly the PandA's
 * TCP byte stream: the framer must give the same frames back whether fed at
 * once or byte by byte. Bad inputs are hand-made and checked for their code
 * and for a message naming the part, the offset or what was expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/beamline.h"
#include "weir/cbors.h"
#include "weir/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    weir_msg *m;
    size_t n;
} msgs;

static void msgs_free(msgs *l)
{
    for (size_t k = 0; k < l->n; k++)
        weir_msg_clear(&l->m[k]);
    free(l->m);
    l->m = NULL;
    l->n = 0;
}

static void msgs_add(msgs *l, weir_msg *m)
{
    l->m = realloc(l->m, (l->n + 1) * sizeof *l->m);
    assert_non_null(l->m);
    l->m[l->n++] = *m;
    weir_msg_init(m);
}

/* All messages of a raw capture. */
static msgs read_raw(const char *rel)
{
    weir_cbors_reader *r;
    char err[256];
    int rc = weir_cbors_open(tu_shared(rel), &r, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_RAW);
    msgs l = {0};
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int eof = 0;
        rc = weir_cbors_next_raw(r, &m, &eof);
        if (rc) fail_msg("%s", weir_cbors_error(r));
        if (eof) break;
        msgs_add(&l, &m);
    }
    weir_cbors_close(r);
    return l;
}

/* The frames of one stream in every event of an ingester dump, as messages;
 * typ of each is checked. */
static msgs read_dump(const char *rel, const char *stream, const char *typ)
{
    weir_cbors_reader *r;
    char err[256];
    int rc = weir_cbors_open(tu_shared(rel), &r, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_DUMP);
    msgs l = {0};
    for (uint64_t k = 0;; k++) {
        weir_event *ev;
        rc = weir_cbors_next_event(r, &ev);
        if (rc) fail_msg("%s", weir_cbors_error(r));
        if (!ev) break;
        assert_int_equal(ev->number, k);
        const weir_stream_packet *sp = weir_event_stream(ev, stream);
        assert_non_null(sp);
        assert_string_equal(sp->typ, typ);
        weir_msg m;
        weir_msg_init(&m);
        for (size_t p = 0; p < sp->msg.nparts; p++)
            weir_msg_append(&m, weir_buf_ref(sp->msg.parts[p]));
        msgs_add(&l, &m);
        weir_event_free(ev);
    }
    weir_cbors_close(r);
    return l;
}

/* Runs every message through an assembler and returns what comes out. */
static msgs assemble(const char *proto, const msgs *in)
{
    weir_beamline_asm *a;
    assert_int_equal(weir_beamline_asm_new(proto, &a), 0);
    msgs out = {0};
    char err[256];
    for (size_t k = 0; k < in->n; k++) {
        weir_msg m;
        weir_msg_init(&m);
        for (size_t p = 0; p < in->m[k].nparts; p++)
            weir_msg_append(&m, weir_buf_ref(in->m[k].parts[p]));
        int rc = weir_beamline_asm_push(a, &m, err, sizeof err);
        if (rc) fail_msg("%s message %zu: %s", proto, k, err);
        assert_int_equal(m.nparts, 0);
        weir_msg o;
        weir_msg_init(&o);
        while (weir_beamline_asm_pop(a, &o) == 1)
            msgs_add(&out, &o);
    }
    weir_beamline_asm_free(a);
    return out;
}

static int classify(const char *proto, const weir_msg *m, weir_stins_kind *kind, int64_t *frame)
{
    char err[256] = "";
    *kind = 0;
    *frame = -2;
    return weir_beamline_classify(proto, m, kind, frame, err, sizeof err);
}

static weir_msg one_part(const void *d, size_t n)
{
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_msg_append(&m, weir_buf_copy(d, n)), 0);
    return m;
}

static weir_msg text_msg(const char *s)
{
    return one_part(s, strlen(s));
}

static uint64_t le_u32_sum(const weir_array *a)
{
    uint64_t s = 0;
    size_t n = weir_array_nelem(a);
    for (size_t i = 0; i < n; i++)
        s += (uint64_t)a->data[4 * i] | (uint64_t)a->data[4 * i + 1] << 8 |
             (uint64_t)a->data[4 * i + 2] << 16 | (uint64_t)a->data[4 * i + 3] << 24;
    return s;
}

static double f64_sum(const weir_array *a, double *first)
{
    double s = 0;
    size_t n = weir_array_nelem(a);
    for (size_t i = 0; i < n; i++) {
        double v;
        memcpy(&v, a->data + 8 * i, 8);
        if (i == 0) *first = v;
        s += v;
    }
    return s;
}

/* A minimal pickle: an empty list, protocol 4. */
static const uint8_t bl_pickle_ok[] = {0x80, 4, ']', 0x94, '.'};

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* ---- AlbaEM ------------------------------------------------------------- */

static void test_albaem_capture(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/albaem-dump.cbors");
    assert_int_equal(l.n, 6);
    static const int64_t acq[4] = {1704807770443944912LL, 1704807773579624912LL,
                                   1704807777563304912LL, 1704807783385064912LL};
    static const double ch1[4] = {-2.8302592615927417e-11, -2.399567634828629e-11,
                                  -2.2149855090725806e-11, -9.84438004032258e-12};
    static const double ts[4] = {7.72645192, 10.86213192, 14.84581192, 20.66757192};
    for (size_t k = 0; k < l.n; k++) {
        weir_albaem_packet p;
        char err[256];
        int rc = weir_albaem_parse(&l.m[k], &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_int_equal(p.message_id, (int64_t)k + 1);
        weir_bl_kind want = k == 0 ? WEIR_BL_START : k == 5 ? WEIR_BL_END : WEIR_BL_DATA;
        assert_int_equal(p.kind, want);
        if (want == WEIR_BL_DATA) {
            assert_int_equal(p.frame, (int64_t)k - 1);
            assert_true(p.acquisition_timestamp == acq[k - 1]); /* exact, above 2^53 */
            assert_true(p.channel[0] == ch1[k - 1]);
            assert_true(p.timestamp == ts[k - 1]);
        } else {
            assert_int_equal(p.frame, -1);
        }
        if (want == WEIR_BL_END) {
            const cJSON *ds = cJSON_GetObjectItemCaseSensitive(p.json, "detector_specific");
            assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(ds, "read_overflow")));
        }
        weir_stins_kind kind;
        int64_t f;
        assert_int_equal(classify("albaem", &l.m[k], &kind, &f), 0);
        assert_int_equal(kind, (int)want);
        assert_int_equal(f, want == WEIR_BL_DATA ? (int64_t)k - 1 : -1);
        weir_albaem_clear(&p);
    }
    msgs_free(&l);
}

/* ---- Contrast ----------------------------------------------------------- */

static void test_contrast_capture(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/contrast-dump.cbors");
    assert_int_equal(l.n, 26);
    size_t counts[5] = {0};
    for (size_t k = 0; k < l.n; k++) {
        weir_contrast_packet p;
        char err[256];
        int rc = weir_contrast_parse(&l.m[k], &p, err, sizeof err);
        if (rc) fail_msg("message %zu: %s", k, err);
        counts[p.kind]++;
        int hb = k == 0 || k == 13 || k == 24 || k == 25;
        if (hb) {
            assert_string_equal(p.status, "heartbeat");
            assert_int_equal(p.pickle_protocol, 4);
            assert_int_equal(weir_buf_size(p.pickle), 36);
        } else {
            assert_int_equal(p.pickle_protocol, 2);
        }
        if (k == 1) {
            assert_string_equal(p.status, "started");
            assert_int_equal(p.scannr, 2);
            assert_int_equal(weir_buf_size(p.pickle), 2398);
        }
        if (k == 23) {
            assert_string_equal(p.status, "finished");
            assert_int_equal(p.scannr, 2);
            assert_int_equal(weir_buf_size(p.pickle), 2399);
        }
        if (k >= 2 && k <= 22 && k != 13) {
            assert_string_equal(p.status, "running");
            assert_int_equal(p.scannr, -1); /* running messages carry no scannr */
        }
        assert_null(p.json);
        assert_int_equal(p.frame, -1);
        /* the pickle is passed through untouched, zero-copy */
        assert_ptr_equal(weir_buf_data(p.pickle), weir_buf_data(l.m[k].parts[0]));
        weir_stins_kind kind;
        int64_t f;
        rc = classify("contrast", &l.m[k], &kind, &f);
        assert_int_equal(rc, hb ? WEIR_ENOTFOUND : 0);
        weir_contrast_clear(&p);
    }
    assert_int_equal(counts[WEIR_BL_START], 1);
    assert_int_equal(counts[WEIR_BL_DATA], 20);
    assert_int_equal(counts[WEIR_BL_END], 1);
    assert_int_equal(counts[WEIR_BL_OTHER], 4);
    msgs_free(&l);
}

/* ---- Xspress3 ----------------------------------------------------------- */

static void test_xspress3_multipart(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/xspress3-multipart.cbors");
    assert_int_equal(l.n, 7);
    static const uint64_t sums01[2] = {12303, 14079};
    uint64_t total = 0;
    for (size_t k = 0; k < l.n; k++) {
        weir_xspress3_packet p;
        char err[256];
        int rc = weir_xspress3_parse(&l.m[k], 1, &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        if (k == 0) {
            assert_int_equal(p.kind, WEIR_BL_START);
            assert_string_equal(p.filename, "/data/staff/nanomax/commissioning_2024-2/"
                                            "20241101_diff_livexrf_tests/raw/0001_setup/"
                                            "scan_000004_xspress3.hdf5");
            const cJSON *lim = cJSON_GetObjectItemCaseSensitive(p.json, "limits");
            assert_int_equal(cJSON_GetArraySize(lim), 2);
            assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(lim, 0)), 4);
        } else if (k == 6) {
            assert_int_equal(p.kind, WEIR_BL_END);
        } else {
            assert_int_equal(p.kind, WEIR_BL_DATA);
            assert_int_equal(p.frame, (int64_t)k - 1);
            assert_true(p.exptime == 0.049999875);
            assert_int_equal(p.data.ndim, 2);
            assert_int_equal(p.data.shape[0], 4);
            assert_int_equal(p.data.shape[1], 4096);
            assert_int_equal(p.data.dtype.kind, WEIR_DT_U32);
            assert_int_equal(weir_buf_size(p.meta), 653);
            assert_int_equal(p.meta_protocol, 4);
            uint64_t s = le_u32_sum(&p.data);
            if (k <= 2) assert_int_equal(s, sums01[k - 1]);
            if (k == 5) assert_int_equal(s, 6717);
            total += s;
            assert_ptr_equal(p.data.data, weir_buf_data(l.m[k].parts[1])); /* zero-copy */
        }
        weir_stins_kind kind;
        int64_t f;
        assert_int_equal(classify("xspress3", &l.m[k], &kind, &f), 0);
        assert_int_equal(kind, (int)p.kind);
        assert_int_equal(f, p.frame);
        weir_xspress3_clear(&p);
    }
    assert_int_equal(total, 54008);
    /* the multipart form passes through the assembler unchanged */
    msgs a = assemble("xspress3", &l);
    assert_int_equal(a.n, 7);
    for (size_t k = 0; k < a.n; k++)
        assert_int_equal(a.m[k].nparts, l.m[k].nparts);
    msgs_free(&a);
    msgs_free(&l);
}

static void test_xspress3_old_format(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/xspress3mini-dump20.cbors");
    assert_int_equal(l.n, 68);
    /* unassembled: the image JSON is a piece, its data is not JSON */
    weir_stins_kind kind;
    int64_t f;
    assert_int_equal(classify("xspress3", &l.m[1], &kind, &f), WEIR_ENOTFOUND);
    assert_int_equal(classify("xspress3", &l.m[2], &kind, &f), WEIR_EJSON);
    msgs a = assemble("xspress3", &l);
    assert_int_equal(a.n, 24);
    uint64_t total = 0;
    size_t images = 0;
    for (size_t k = 0; k < a.n; k++) {
        weir_xspress3_packet p;
        char err[256];
        int rc = weir_xspress3_parse(&a.m[k], 1, &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_int_equal(classify("xspress3", &a.m[k], &kind, &f), 0);
        if (k == 0) {
            assert_int_equal(p.kind, WEIR_BL_START);
            assert_string_equal(p.filename, "/data/visitors/nanomax/20211244/2023120608/raw/"
                                            "0003_Au250Ag100/scan_000145_x3mini.hdf5");
        } else if (k == 23) {
            assert_int_equal(p.kind, WEIR_BL_END);
        } else {
            assert_int_equal(p.kind, WEIR_BL_DATA);
            /* the capture holds frames 0..10 twice */
            assert_int_equal(p.frame, (int64_t)((k - 1) % 11));
            assert_int_equal(f, p.frame);
            assert_int_equal(p.data.shape[0], 2);
            assert_int_equal(p.data.shape[1], 4096);
            assert_int_equal(weir_buf_size(p.raw), 32768);
            assert_int_equal(weir_buf_size(p.meta), 515);
            uint64_t s = le_u32_sum(&p.data);
            if (k == 1) assert_int_equal(s, 12138);
            if (k == 2) assert_int_equal(s, 11844);
            if (k == 22) assert_int_equal(s, 12101);
            total += s;
            images++;
        }
        weir_xspress3_clear(&p);
    }
    assert_int_equal(images, 22);
    assert_int_equal(total, 267434);
    msgs_free(&a);
    msgs_free(&l);
}

/* ---- PCAP over ZeroMQ --------------------------------------------------- */

static void test_pcap_zmq_capture(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/pcap-zmq.cbors");
    assert_int_equal(l.n, 102);
    size_t ndata = 0, ntrig = 0;
    for (size_t k = 0; k < l.n; k++) {
        weir_pcap_packet p;
        char err[256];
        int rc = weir_pcap_parse(&l.m[k], &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_int_equal(p.message_id, (int64_t)k + 1);
        if (k == 0) {
            assert_int_equal(p.kind, WEIR_BL_START);
            assert_string_equal(p.arm_time, "2024-10-07T08:49:10.627Z");
        } else if (k == 101) {
            assert_int_equal(p.kind, WEIR_BL_END);
        } else {
            assert_int_equal(p.kind, WEIR_BL_DATA);
            assert_int_equal(p.nfields, 5);
            if (k == 1) {
                assert_int_equal(p.frame, 0);
                assert_int_equal(p.nvalues, 15);
            }
            if (k == 2) assert_int_equal(p.frame, 15);
            if (k == 100) {
                assert_int_equal(p.frame, 1485);
                assert_int_equal(p.nvalues, 15);
            }
            ndata++;
            ntrig += p.nvalues;
        }
        weir_pcap_clear(&p);
    }
    assert_int_equal(ndata, 100);
    assert_int_equal(ntrig, 1500);
    /* split as dranspose's ingester: one data message per trigger */
    msgs a = assemble("pcap", &l);
    assert_int_equal(a.n, 1502);
    double trig_sum = 0;
    for (size_t k = 0; k < a.n; k++) {
        weir_stins_kind kind;
        int64_t f;
        assert_int_equal(classify("pcap", &a.m[k], &kind, &f), 0);
        if (k == 0 || k == 1501) {
            assert_int_equal(kind, k ? WEIR_STINS_SERIES_END : WEIR_STINS_HEADER);
            continue;
        }
        assert_int_equal(kind, WEIR_STINS_IMAGE);
        assert_int_equal(f, (int64_t)k - 1); /* consecutive 0..1499 */
        weir_pcap_packet p;
        assert_int_equal(weir_pcap_parse(&a.m[k], &p, NULL, 0), 0);
        assert_int_equal(p.nvalues, 1);
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(p.json, "triggernumber");
        assert_true(cJSON_IsNumber(tn));
        trig_sum += tn->valuedouble;
        if (k == 1) {
            double e;
            assert_int_equal(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p.json, "energy")), 1);
            e = cJSON_GetObjectItemCaseSensitive(p.json, "energy")->valuedouble;
            assert_true(e == 8879.101048716273);
        }
        if (k == 2)
            assert_true(cJSON_GetObjectItemCaseSensitive(p.json, "INENC3.VAL.Mean")->valuedouble ==
                        0.0);
        if (k == 1500) assert_true(tn->valuedouble == 1500.0);
        weir_pcap_clear(&p);
    }
    assert_true(trig_sum == 1125750.0);
    msgs_free(&a);
    msgs_free(&l);
}

/* ---- LeCroy ------------------------------------------------------------- */

static void test_lecroy_capture(void **state)
{
    (void)state;
    msgs l = read_raw("dranspose/maui-02-continuous-3.cbor.gz");
    assert_int_equal(l.n, 9);
    /* unassembled pieces */
    weir_stins_kind kind;
    int64_t f;
    assert_int_equal(classify("lecroy", &l.m[0], &kind, &f), 0);
    assert_int_equal(kind, WEIR_STINS_HEADER);
    assert_int_equal(classify("lecroy", &l.m[1], &kind, &f), WEIR_ENOTFOUND);
    assert_int_equal(classify("lecroy", &l.m[2], &kind, &f), WEIR_ENOTFOUND);
    assert_int_equal(classify("lecroy", &l.m[8], &kind, &f), 0);
    assert_int_equal(kind, WEIR_STINS_SERIES_END);
    weir_lecroy_packet p;
    char err[256];
    assert_int_equal(weir_lecroy_parse(&l.m[8], 0, &p, err, sizeof err), 0);
    assert_int_equal(p.what, WEIR_LECROY_STOP);
    int64_t frames;
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p.json, "frames")));
    frames = (int64_t)cJSON_GetObjectItemCaseSensitive(p.json, "frames")->valuedouble;
    assert_int_equal(frames, 4);
    weir_lecroy_clear(&p);

    msgs a = assemble("lecroy", &l);
    assert_int_equal(a.n, 4); /* PREPARE, 2 sequences, STOP */
    static const int ch[4] = {2, 4, 2, 4};
    static const int64_t tframe[4] = {0, 1, 2, 3};
    static const double sum[4] = {-4.612455387273258, 2.2956097908208903, -1.4742626325778474,
                                  9.381238144704184};
    static const double first[4] = {-0.00458128725313145, 0.005284421413307427,
                                    0.0066137528210674645, 0.009769038504600758};
    static const int64_t seqend_frame[2] = {2, 4};
    for (size_t s = 1; s <= 2; s++) {
        assert_int_equal(a.m[s].nparts, 1 + 3 * 2 + 1);
        assert_int_equal(classify("lecroy", &a.m[s], &kind, &f), 0);
        assert_int_equal(kind, WEIR_STINS_IMAGE);
        assert_int_equal(f, -1);
        int rc = weir_lecroy_parse(&a.m[s], 1, &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_int_equal(p.kind, WEIR_BL_DATA);
        assert_int_equal(p.ntraces, 2);
        /* continuous mode: the first SEQSTART heads both sequences */
        assert_int_equal(
            (int64_t)cJSON_GetObjectItemCaseSensitive(p.json, "ntriggers")->valuedouble, -1);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p.json, "channels")),
                         2);
        assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(p.seq_end, "frame")->valuedouble,
                         seqend_frame[s - 1]);
        for (size_t t = 0; t < 2; t++) {
            size_t i = 2 * (s - 1) + t;
            const weir_lecroy_trace *tr = &p.traces[t];
            assert_int_equal(tr->ch, ch[i]);
            assert_int_equal(tr->frame, tframe[i]);
            assert_int_equal(tr->data.ndim, 2);
            assert_int_equal(tr->data.shape[0], 1);
            assert_int_equal(tr->data.shape[1], 8002);
            assert_int_equal(tr->data.dtype.kind, WEIR_DT_F64);
            assert_int_equal(weir_buf_size(tr->ts), 24);
            double f0 = 0, sm = f64_sum(&tr->data, &f0);
            assert_true(f0 == first[i]);
            assert_true(fabs(sm - sum[i]) < 1e-12);
        }
        weir_lecroy_clear(&p);
    }
    msgs_free(&a);
    msgs_free(&l);
}

/* ---- Sardana ------------------------------------------------------------ */

#define DANMAX "dranspose/danmax/"
#define UUID1 "70b3ce40-6e3e-4931-8dbc-245334e26eae"

static void test_sardana_dump(void **state)
{
    (void)state;
    msgs l = read_dump(DANMAX "dumpsardana-ingester-" UUID1 ".cbors", "sardana", "sardana");
    assert_int_equal(l.n, 13);
    for (size_t k = 0; k < l.n; k++) {
        weir_sardana_packet p;
        char err[256];
        int rc = weir_sardana_parse(&l.m[k], &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        weir_stins_kind kind;
        int64_t f;
        assert_int_equal(classify("sardana", &l.m[k], &kind, &f), 0);
        if (k == 0) {
            assert_int_equal(p.kind, WEIR_BL_START);
            assert_int_equal(p.serialno, 2536);
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(p.json, "title")->valuestring,
                                "ascanct tom_ry 0.0 180.0 10 0.1 0.0");
        } else if (k == 12) {
            assert_int_equal(p.kind, WEIR_BL_END);
            assert_true(cJSON_GetObjectItemCaseSensitive(p.json, "deadtime")->valuedouble ==
                        4.783541679382324);
        } else {
            assert_int_equal(p.kind, WEIR_BL_DATA);
            assert_int_equal(p.frame, (int64_t)k - 1);
            assert_int_equal(f, (int64_t)k - 1);
            if (k == 1)
                assert_true(cJSON_GetObjectItemCaseSensitive(p.json, "timestamp")->valuedouble ==
                            0.3939120583636108);
        }
        weir_sardana_clear(&p);
    }
    msgs_free(&l);
}

/* ---- PandA raw TCP ------------------------------------------------------ */

/* The framer on the stream "OK\n" + all frames, fed in pieces of `step`
 * bytes (0: at once); returns the packets. */
static msgs frame_stream(const uint8_t *s, size_t n, size_t step)
{
    weir_panda_framer *fr;
    assert_int_equal(weir_panda_framer_new(&fr), 0);
    msgs out = {0};
    char err[256];
    size_t pos = 0;
    while (pos < n) {
        size_t k = step ? (n - pos < step ? n - pos : step) : n;
        assert_int_equal(weir_panda_framer_feed(fr, s + pos, k), 0);
        pos += k;
        for (;;) {
            weir_msg m;
            weir_msg_init(&m);
            int rc = weir_panda_framer_next(fr, &m, err, sizeof err);
            if (rc < 0) fail_msg("framer: %s", err);
            if (rc == 0) break;
            msgs_add(&out, &m);
        }
    }
    assert_int_equal(weir_panda_framer_offset(fr), n);
    weir_panda_framer_free(fr);
    return out;
}

static void check_framer_on(const msgs *l)
{
    size_t n = 3;
    for (size_t k = 0; k < l->n; k++)
        n += weir_buf_size(l->m[k].parts[0]);
    uint8_t *s = malloc(n), *p = s;
    assert_non_null(s);
    memcpy(p, "OK\n", 3);
    p += 3;
    for (size_t k = 0; k < l->n; k++) {
        memcpy(p, weir_buf_data(l->m[k].parts[0]), weir_buf_size(l->m[k].parts[0]));
        p += weir_buf_size(l->m[k].parts[0]);
    }
    msgs whole = frame_stream(s, n, 0), bytes = frame_stream(s, n, 1), odd = frame_stream(s, n, 7);
    assert_int_equal(whole.n, l->n + 1);
    assert_int_equal(bytes.n, whole.n);
    assert_int_equal(odd.n, whole.n);
    assert_int_equal(weir_buf_size(whole.m[0].parts[0]), 3);
    for (size_t k = 0; k < whole.n; k++) {
        size_t len = weir_buf_size(whole.m[k].parts[0]);
        assert_int_equal(weir_buf_size(bytes.m[k].parts[0]), len);
        assert_memory_equal(weir_buf_data(bytes.m[k].parts[0]), weir_buf_data(whole.m[k].parts[0]),
                            len);
        assert_memory_equal(weir_buf_data(odd.m[k].parts[0]), weir_buf_data(whole.m[k].parts[0]),
                            len);
        if (k) {
            assert_int_equal(len, weir_buf_size(l->m[k - 1].parts[0]));
            assert_memory_equal(weir_buf_data(whole.m[k].parts[0]),
                                weir_buf_data(l->m[k - 1].parts[0]), len);
        }
    }
    /* and through the assembler, the way the live source would use it */
    weir_beamline_asm *a;
    assert_int_equal(weir_beamline_asm_new("pcap-raw", &a), 0);
    char err[200];
    for (size_t k = 0; k < n; k += 5)
        assert_int_equal(
            weir_beamline_asm_feed_bytes(a, s + k, n - k < 5 ? n - k : 5, err, sizeof err), 0);
    weir_msg m;
    weir_msg_init(&m);
    size_t got = 0;
    while (weir_beamline_asm_pop(a, &m) == 1) {
        weir_msg_clear(&m);
        got++;
    }
    assert_int_equal(got, whole.n);
    weir_beamline_asm_free(a);
    msgs_free(&whole);
    msgs_free(&bytes);
    msgs_free(&odd);
    free(s);
}

static void test_pcap_raw_dump(void **state)
{
    (void)state;
    msgs l = read_dump(DANMAX "dumppcap_rotRAW-ingester-" UUID1 ".cbors", "pcap_rot", "PCAP_RAW");
    assert_int_equal(l.n, 13);
    weir_panda_packet h;
    char err[256];
    int rc = weir_panda_parse(&l.m[0], NULL, &h, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(h.kind, WEIR_BL_START);
    assert_string_equal(h.header.arm_time, "1970-01-14T06:36:37.093Z");
    assert_string_equal(h.header.start_time, "1970-01-14T06:36:37.093Z");
    assert_string_equal(h.header.process, "Scaled");
    assert_int_equal(h.header.missed, 0);
    assert_int_equal(h.header.format, WEIR_PANDA_ASCII);
    assert_int_equal(h.header.nfields, 6);
    static const char *names[6] = {"PCAP.BITS0",   "INENC2.VAL", "INENC2.VAL",
                                   "PCAP.TS_TRIG", "INENC2.VAL", "SFP3_SYNC_IN.POS1"};
    static const char *caps[6] = {"Value", "Min", "Max", "Value", "Mean", "Mean"};
    for (int k = 0; k < 6; k++) {
        assert_string_equal(h.header.fields[k].name, names[k]);
        assert_string_equal(h.header.fields[k].capture, caps[k]);
        assert_int_equal(h.header.fields[k].type, k == 0 ? WEIR_PANDA_UINT32 : WEIR_PANDA_DOUBLE);
    }
    assert_true(h.header.fields[3].scale == 8e-09);
    assert_string_equal(h.header.fields[3].units, "s");
    assert_string_equal(h.header.fields[1].units, "");
    assert_int_equal(h.header.fields[0].scaled, 0);
    /* samples, read with the header */
    weir_panda_packet d;
    assert_int_equal(weir_panda_parse(&l.m[1], &h.header, &d, err, sizeof err), 0);
    assert_int_equal(d.kind, WEIR_BL_DATA);
    assert_int_equal(d.nvalues, 6);
    assert_true(d.values[0].is_int && d.values[0].i == 64806368);
    assert_true(d.values[1].d == 35005 && d.values[3].d == 0.614804288 &&
                d.values[5].d == 701422573.3);
    weir_panda_clear(&d);
    assert_int_equal(weir_panda_parse(&l.m[11], &h.header, &d, err, sizeof err), 0);
    assert_true(d.values[3].d == 1.944629568 && d.values[5].d == -1446088113);
    weir_panda_clear(&d);
    assert_int_equal(weir_panda_parse(&l.m[12], &h.header, &d, err, sizeof err), 0);
    assert_int_equal(d.kind, WEIR_BL_END);
    assert_int_equal(d.end_samples, 11);
    assert_string_equal(d.end_reason, "Disarmed");
    weir_panda_clear(&d);
    for (size_t k = 0; k < l.n; k++) {
        weir_stins_kind kind;
        int64_t f;
        assert_int_equal(classify("pcap-raw", &l.m[k], &kind, &f), 0);
        assert_int_equal(kind, k == 0    ? WEIR_STINS_HEADER
                               : k == 12 ? WEIR_STINS_SERIES_END
                                         : WEIR_STINS_IMAGE);
        assert_int_equal(f, -1);
    }
    weir_panda_clear(&h);
    check_framer_on(&l);
    msgs_free(&l);

    /* five arms of ten samples each */
    l = read_dump(DANMAX
                  "mesh2dworkpcap_rotRAW-ingester-9c93f54e-2ca7-495d-85d2-7aba6cdc99a9.cbors",
                  "pcap_rot", "PCAP_RAW");
    assert_int_equal(l.n, 60);
    size_t starts = 0, ends = 0, data = 0;
    for (size_t k = 0; k < l.n; k++) {
        assert_int_equal(weir_panda_parse(&l.m[k], NULL, &d, err, sizeof err), 0);
        starts += d.kind == WEIR_BL_START;
        ends += d.kind == WEIR_BL_END;
        data += d.kind == WEIR_BL_DATA;
        if (d.kind == WEIR_BL_END) assert_int_equal(d.end_samples, 10);
        if (k == 24) assert_string_equal(d.header.arm_time, "2024-08-21T13:59:56.829Z");
        weir_panda_clear(&d);
    }
    assert_int_equal(starts, 5);
    assert_int_equal(ends, 5);
    assert_int_equal(data, 50);
    check_framer_on(&l);
    msgs_free(&l);
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip_xspress3(void **state)
{
    (void)state;
    uint32_t px[3 * 5];
    for (int i = 0; i < 15; i++)
        px[i] = (uint32_t)(i * 1000003u);
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_xspress3_encode_image(&m, 7, 0.25, WEIR_DT_U32, 3, 5, px, NULL, 0), 0);
    weir_xspress3_packet p;
    char err[256];
    assert_int_equal(weir_xspress3_parse(&m, 1, &p, err, sizeof err), 0);
    assert_int_equal(p.kind, WEIR_BL_DATA);
    assert_int_equal(p.frame, 7);
    assert_true(p.exptime == 0.25);
    assert_int_equal(p.data.shape[0], 3);
    assert_int_equal(p.data.shape[1], 5);
    assert_memory_equal(p.data.data, px, sizeof px);
    weir_xspress3_clear(&p);
    /* the old three-message form reassembles to the same */
    weir_msg three[3];
    for (int k = 0; k < 3; k++)
        weir_msg_init(&three[k]);
    assert_int_equal(weir_xspress3_split_old(&m, three), 0);
    msgs in = {0};
    weir_msg h;
    weir_msg_init(&h);
    assert_int_equal(weir_xspress3_encode_header(&h, "f.h5"), 0);
    msgs_add(&in, &h);
    for (int k = 0; k < 3; k++)
        msgs_add(&in, &three[k]);
    assert_int_equal(weir_xspress3_encode_end(&h), 0);
    msgs_add(&in, &h);
    msgs a = assemble("xspress3", &in);
    assert_int_equal(a.n, 3);
    assert_int_equal(weir_xspress3_parse(&a.m[0], 0, &p, err, sizeof err), 0);
    assert_string_equal(p.filename, "f.h5");
    weir_xspress3_clear(&p);
    assert_int_equal(weir_xspress3_parse(&a.m[1], 1, &p, err, sizeof err), 0);
    assert_memory_equal(p.data.data, px, sizeof px);
    assert_int_equal(p.meta_protocol, 4);
    weir_xspress3_clear(&p);
    assert_int_equal(weir_xspress3_parse(&a.m[2], 0, &p, err, sizeof err), 0);
    assert_int_equal(p.kind, WEIR_BL_END);
    weir_xspress3_clear(&p);
    msgs_free(&a);
    msgs_free(&in);
    weir_msg_clear(&m);
}

static void test_roundtrip_contrast(void **state)
{
    (void)state;
    static const char *st[4] = {"started", "running", "finished", "heartbeat"};
    for (int k = 0; k < 4; k++) {
        weir_msg m;
        weir_msg_init(&m);
        assert_int_equal(weir_contrast_encode(&m, st[k], k == 3 ? -1 : 41, 0.5), 0);
        weir_contrast_packet p;
        char err[256];
        int rc = weir_contrast_parse(&m, &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_string_equal(p.status, st[k]);
        assert_int_equal(p.kind, (int)(k + 1));
        assert_int_equal(p.scannr, k == 3 ? -1 : 41);
        assert_int_equal(p.pickle_protocol, k == 3 ? 4 : 2);
        weir_pickle_value v;
        assert_int_equal(weir_pickle_scan(weir_buf_data(m.parts[0]), weir_buf_size(m.parts[0]),
                                          NULL, "dt", &v, err, sizeof err),
                         0);
        if (k == 1)
            assert_true(v.type == WEIR_PICKLE_FLOAT && v.f == 0.5);
        else
            assert_int_equal(v.type, WEIR_PICKLE_NONE);
        weir_contrast_clear(&p);
        weir_msg_clear(&m);
    }
}

static void test_roundtrip_pcap(void **state)
{
    (void)state;
    const char *names[2] = {"a.Value", "b.Mean"};
    double vals[2 * 3] = {1, 2, 3, 0.5, -1.25, 1e300};
    msgs in = {0};
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_pcap_encode_start(&m, 1, "2024-01-01T00:00:00.000Z"), 0);
    msgs_add(&in, &m);
    assert_int_equal(weir_pcap_encode_data(&m, 2, 0, 2, names, vals, 3), 0);
    msgs_add(&in, &m);
    assert_int_equal(weir_pcap_encode_data(&m, 3, 3, 2, names, vals, 3), 0);
    msgs_add(&in, &m);
    assert_int_equal(weir_pcap_encode_end(&m, 4), 0);
    msgs_add(&in, &m);
    msgs a = assemble("pcap", &in);
    assert_int_equal(a.n, 8);
    for (size_t k = 1; k <= 6; k++) {
        weir_pcap_packet p;
        assert_int_equal(weir_pcap_parse(&a.m[k], &p, NULL, 0), 0);
        assert_int_equal(p.frame, (int64_t)k - 1);
        size_t i = (k - 1) % 3;
        assert_true(cJSON_GetObjectItemCaseSensitive(p.json, "a.Value")->valuedouble == vals[i]);
        assert_true(cJSON_GetObjectItemCaseSensitive(p.json, "b.Mean")->valuedouble == vals[3 + i]);
        weir_pcap_clear(&p);
    }
    weir_pcap_packet p;
    assert_int_equal(weir_pcap_parse(&a.m[0], &p, NULL, 0), 0);
    assert_string_equal(p.arm_time, "2024-01-01T00:00:00.000Z");
    weir_pcap_clear(&p);
    msgs_free(&a);
    msgs_free(&in);
}

static void roundtrip_panda(weir_panda_format fmt)
{
    weir_panda_field fields[4] = {
        {.name = "PCAP.BITS0", .capture = "Value", .type = WEIR_PANDA_UINT32},
        {.name = "INENC1.VAL", .capture = "Min", .type = WEIR_PANDA_INT32},
        {.name = "ADC.OUT", .capture = "Sum", .type = WEIR_PANDA_INT64},
        {.name = "PCAP.TS_TRIG",
         .capture = "Value",
         .type = WEIR_PANDA_DOUBLE,
         .scaled = 1,
         .scale = 8e-09,
         .offset = 0,
         .units = "s"},
    };
    weir_panda_header h = {.arm_time = "2025-01-01T00:00:00.000Z",
                           .process = "Scaled",
                           .format = fmt,
                           .nfields = 4,
                           .fields = fields};
    msgs pk = {0};
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_panda_encode_ok(&m), 0);
    msgs_add(&pk, &m);
    assert_int_equal(weir_panda_encode_header(&m, &h), 0);
    msgs_add(&pk, &m);
    double rows[3][4] = {{4294967295.0, -5, 1099511627776.0, 0.1},
                         {0, 2147483647, -7, 1.0 / 3},
                         {17, -2147483647, 0, -2.5e-300}};
    for (int r = 0; r < 3; r++) {
        assert_int_equal(weir_panda_encode_sample(&m, &h, rows[r]), 0);
        msgs_add(&pk, &m);
    }
    assert_int_equal(weir_panda_encode_end(&m, 3, "Ok"), 0);
    msgs_add(&pk, &m);
    /* the stream, framed back byte by byte (for Framed: in blocks re-cut) */
    size_t n = 0;
    for (size_t k = 0; k < pk.n; k++)
        n += weir_buf_size(pk.m[k].parts[0]);
    uint8_t *s = malloc(n + 64), *p = s;
    for (size_t k = 0; k < pk.n; k++) {
        memcpy(p, weir_buf_data(pk.m[k].parts[0]), weir_buf_size(pk.m[k].parts[0]));
        p += weir_buf_size(pk.m[k].parts[0]);
    }
    msgs got = frame_stream(s, n, 1);
    assert_int_equal(got.n, pk.n);
    weir_panda_packet hp, d;
    char err[256];
    assert_int_equal(weir_panda_parse(&got.m[1], NULL, &hp, err, sizeof err), 0);
    assert_int_equal(hp.header.nfields, 4);
    assert_int_equal(hp.header.format, fmt);
    assert_int_equal(hp.header.sample_bytes, 24);
    assert_true(hp.header.fields[3].scale == 8e-09);
    for (int r = 0; r < 3; r++) {
        int rc = weir_panda_parse(&got.m[2 + r], &hp.header, &d, err, sizeof err);
        if (rc) fail_msg("%s", err);
        for (int c = 0; c < 4; c++)
            assert_true(d.values[c].d == rows[r][c]);
        assert_true(d.values[2].is_int && d.values[2].i == (int64_t)rows[r][2]);
        weir_panda_clear(&d);
    }
    weir_panda_clear(&hp);
    msgs_free(&got);
    if (fmt == WEIR_PANDA_FRAMED) {
        /* one BIN block holding all three samples, then one split mid-sample */
        size_t hdr_len = 3 + weir_buf_size(pk.m[1].parts[0]);
        uint8_t *q = s + hdr_len;
        uint8_t samples[72];
        for (int r = 0; r < 3; r++)
            memcpy(samples + 24 * r, weir_buf_data(pk.m[2 + r].parts[0]) + 8, 24);
        uint32_t l1 = 8 + 30, l2 = 8 + 42;
        uint8_t b1[8] = {'B', 'I', 'N', ' ', (uint8_t)l1, 0, 0, 0};
        uint8_t b2[8] = {'B', 'I', 'N', ' ', (uint8_t)l2, 0, 0, 0};
        memcpy(q, b1, 8);
        memcpy(q + 8, samples, 30);
        memcpy(q + 38, b2, 8);
        memcpy(q + 46, samples + 30, 42);
        memcpy(q + 88, "END 3 Ok\n", 9);
        size_t n2 = hdr_len + 97;
        msgs g2 = frame_stream(s, n2, 0), g3 = frame_stream(s, n2, 1);
        assert_int_equal(g2.n, pk.n);
        assert_int_equal(g3.n, pk.n);
        for (size_t k = 0; k < pk.n; k++) {
            assert_int_equal(weir_buf_size(g2.m[k].parts[0]), weir_buf_size(pk.m[k].parts[0]));
            assert_memory_equal(weir_buf_data(g2.m[k].parts[0]), weir_buf_data(pk.m[k].parts[0]),
                                weir_buf_size(pk.m[k].parts[0]));
            assert_memory_equal(weir_buf_data(g3.m[k].parts[0]), weir_buf_data(pk.m[k].parts[0]),
                                weir_buf_size(pk.m[k].parts[0]));
        }
        msgs_free(&g2);
        msgs_free(&g3);
    }
    free(s);
    msgs_free(&pk);
}

static void test_roundtrip_panda(void **state)
{
    (void)state;
    roundtrip_panda(WEIR_PANDA_ASCII);
    roundtrip_panda(WEIR_PANDA_FRAMED);
}

static void test_roundtrip_sardana_albaem(void **state)
{
    (void)state;
    const char *cols[2] = {"tango://x/ch1", "mot"};
    double v[2] = {2.5e-8, -3};
    weir_msg m;
    weir_msg_init(&m);
    weir_sardana_packet s;
    assert_int_equal(weir_sardana_encode_desc(&m, 99, "ascan mot 0 1 5 0.1", 2, cols), 0);
    assert_int_equal(weir_sardana_parse(&m, &s, NULL, 0), 0);
    assert_int_equal(s.kind, WEIR_BL_START);
    assert_int_equal(s.serialno, 99);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s.json, "column_desc")),
                     3);
    weir_sardana_clear(&s);
    weir_msg_clear(&m);
    assert_int_equal(weir_sardana_encode_record(&m, 4, 1.5, 2, cols, v), 0);
    assert_int_equal(weir_sardana_parse(&m, &s, NULL, 0), 0);
    assert_int_equal(s.frame, 4);
    assert_true(cJSON_GetObjectItemCaseSensitive(s.json, "tango://x/ch1")->valuedouble == 2.5e-8);
    weir_sardana_clear(&s);
    weir_msg_clear(&m);
    assert_int_equal(weir_sardana_encode_end(&m), 0);
    assert_int_equal(weir_sardana_parse(&m, &s, NULL, 0), 0);
    assert_int_equal(s.kind, WEIR_BL_END);
    weir_sardana_clear(&s);
    weir_msg_clear(&m);

    weir_albaem_packet a;
    double ch[4] = {-2.8302592615927417e-11, 1, -0.0, 1e-300};
    assert_int_equal(weir_albaem_encode_data(&m, 2, 0, 7.72645192, 1704807770443944913LL, ch), 0);
    assert_int_equal(weir_albaem_parse(&m, &a, NULL, 0), 0);
    assert_true(a.acquisition_timestamp == 1704807770443944913LL);
    for (int c = 0; c < 4; c++)
        assert_true(a.channel[c] == ch[c]);
    assert_true(a.timestamp == 7.72645192);
    weir_albaem_clear(&a);
    weir_msg_clear(&m);
    assert_int_equal(weir_albaem_encode_start(&m, 1), 0);
    assert_int_equal(weir_albaem_parse(&m, &a, NULL, 0), 0);
    assert_int_equal(a.kind, WEIR_BL_START);
    weir_albaem_clear(&a);
    weir_msg_clear(&m);
    assert_int_equal(weir_albaem_encode_end(&m, 3), 0);
    assert_int_equal(weir_albaem_parse(&m, &a, NULL, 0), 0);
    assert_int_equal(a.kind, WEIR_BL_END);
    assert_int_equal(a.message_id, 3);
    weir_albaem_clear(&a);
    weir_msg_clear(&m);
}

static void test_roundtrip_lecroy(void **state)
{
    (void)state;
    double tr[2][6];
    for (int i = 0; i < 12; i++)
        tr[i / 6][i % 6] = i * 0.125 - 1;
    double ts[2] = {1740563664.870739, 1740563665.5};
    msgs in = {0};
    weir_msg m;
    weir_msg_init(&m);
    assert_int_equal(weir_lecroy_encode_msg(&m, WEIR_LECROY_PREPARE, 0, NULL), 0);
    msgs_add(&in, &m);
    /* sequential mode: a SEQSTART per sequence */
    for (int s = 0; s < 2; s++) {
        assert_int_equal(
            weir_lecroy_encode_msg(&m, WEIR_LECROY_SEQSTART, 0,
                                   "{\"ntriggers\": 2, \"seqno\": 0, \"channels\": [1, 3]}"),
            0);
        msgs_add(&in, &m);
        for (int c = 0; c < 2; c++) {
            assert_int_equal(
                weir_lecroy_encode_trace(&m, 1 + 2 * c, 2 * s + c, ts[0], 2, 3, tr[c], ts, 2), 0);
            msgs_add(&in, &m);
        }
        assert_int_equal(weir_lecroy_encode_msg(&m, WEIR_LECROY_SEQEND, 2 * s + 2, NULL), 0);
        msgs_add(&in, &m);
    }
    assert_int_equal(weir_lecroy_encode_msg(&m, WEIR_LECROY_STOP, 4, "{\"frames\": 4}"), 0);
    msgs_add(&in, &m);
    msgs a = assemble("lecroy", &in);
    assert_int_equal(a.n, 4);
    weir_lecroy_packet p;
    char err[256];
    for (int s = 1; s <= 2; s++) {
        int rc = weir_lecroy_parse(&a.m[s], 1, &p, err, sizeof err);
        if (rc) fail_msg("%s", err);
        assert_int_equal(p.ntraces, 2);
        for (int c = 0; c < 2; c++) {
            assert_int_equal(p.traces[c].ch, 1 + 2 * c);
            assert_int_equal(p.traces[c].data.shape[0], 2);
            assert_memory_equal(p.traces[c].data.data, tr[c], sizeof tr[c]);
            weir_pickle_value v;
            int proto;
            assert_int_equal(weir_pickle_scan(weir_buf_data(p.traces[c].ts),
                                              weir_buf_size(p.traces[c].ts), &proto, NULL, &v, err,
                                              sizeof err),
                             0);
            assert_int_equal(proto, 4);
        }
        weir_lecroy_clear(&p);
    }
    msgs_free(&a);
    msgs_free(&in);
}

/* ---- pickles ------------------------------------------------------------ */

static void test_pickle_scan(void **state)
{
    (void)state;
    weir_pickle_value v;
    char err[256];
    int proto;
    /* protocol 0 dict {'status': 'running', 'n': 3} */
    const char p0[] = "(dp0\nVstatus\np1\nVrunning\np2\nsVn\np3\nI3\ns.";
    assert_int_equal(
        weir_pickle_scan((const uint8_t *)p0, sizeof p0 - 1, &proto, "status", &v, err, sizeof err),
        0);
    assert_int_equal(proto, 0);
    assert_int_equal(v.type, WEIR_PICKLE_STR);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.str, "running", 7);
    assert_int_equal(
        weir_pickle_scan((const uint8_t *)p0, sizeof p0 - 1, NULL, "n", &v, err, sizeof err), 0);
    assert_true(v.type == WEIR_PICKLE_INT && v.i == 3);
    /* a nested dict's "status" is not the top-level one:
     * {'inner': {'status': 'x'}} in protocol 2 */
    const uint8_t nested[] = {0x80, 2,   '}', 'q', 0, 'X', 5, 0, 0,   0,   'i', 'n', 'n',
                              'e',  'r', '}', 'q', 1, 'X', 6, 0, 0,   0,   's', 't', 'a',
                              't',  'u', 's', 'X', 1, 0,   0, 0, 'x', 's', 's', '.'};
    assert_int_equal(weir_pickle_scan(nested, sizeof nested, &proto, "status", &v, err, sizeof err),
                     0);
    assert_int_equal(proto, 2);
    assert_int_equal(v.type, WEIR_PICKLE_NONE);
    /* truncated, trailing bytes, unknown opcode, bad memo */
    assert_int_equal(weir_pickle_scan(nested, sizeof nested - 1, NULL, NULL, NULL, err, sizeof err),
                     WEIR_EFORMAT);
    assert_true(contains(err, "STOP"));
    const uint8_t trunc[] = {0x80, 4, 'X', 9, 0, 0, 0, 'a'};
    assert_int_equal(weir_pickle_scan(trunc, sizeof trunc, NULL, NULL, NULL, err, sizeof err),
                     WEIR_EFORMAT);
    assert_true(contains(err, "offset 2"));
    const uint8_t unk[] = {0x80, 4, 0xff, '.'};
    assert_int_equal(weir_pickle_scan(unk, sizeof unk, NULL, NULL, NULL, err, sizeof err),
                     WEIR_EFORMAT);
    assert_true(contains(err, "offset 2") && contains(err, "unknown opcode"));
    const uint8_t memo[] = {0x80, 4, 'h', 5, '.'};
    assert_int_equal(weir_pickle_scan(memo, sizeof memo, NULL, NULL, NULL, err, sizeof err),
                     WEIR_EFORMAT);
    assert_true(contains(err, "memo"));
    const uint8_t after[] = {0x80, 4, 'N', '.', 'N'};
    assert_int_equal(weir_pickle_scan(after, sizeof after, NULL, NULL, NULL, err, sizeof err),
                     WEIR_EFORMAT);
    assert_true(contains(err, "after STOP"));
}

/* ---- malformed inputs --------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    char err[256];
    weir_msg m;
    weir_stins_kind kind;
    int64_t f;

    /* JSON errors name the part and the offset */
    m = text_msg("{\"htype\": \"header\", ");
    weir_xspress3_packet x;
    assert_int_equal(weir_xspress3_parse(&m, 0, &x, err, sizeof err), WEIR_EJSON);
    assert_true(contains(err, "xspress3: part 1") && contains(err, "offset"));
    assert_null(x.json);
    weir_msg_clear(&m);
    /* image with a short data part */
    m = text_msg(
        "{\"htype\": \"image\", \"frame\": 0, \"shape\": [4, 4096], \"type\": \"uint32\"}");
    weir_msg_append(&m, weir_buf_copy("abcd", 4));
    weir_msg_append(&m, weir_buf_copy(bl_pickle_ok, sizeof bl_pickle_ok));
    assert_int_equal(weir_xspress3_parse(&m, 1, &x, err, sizeof err), WEIR_ESHAPE);
    assert_true(contains(err, "part 2") && contains(err, "65536"));
    weir_msg_clear(&m);
    /* image whose meta is not a pickle */
    m = text_msg("{\"htype\": \"image\", \"frame\": 0, \"shape\": [1, 1], \"type\": \"uint32\"}");
    weir_msg_append(&m, weir_buf_copy("abcd", 4));
    weir_msg_append(&m, weir_buf_copy("nope", 4));
    assert_int_equal(weir_xspress3_parse(&m, 1, &x, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "part 3") && contains(err, "pickle"));
    weir_msg_clear(&m);
    m = text_msg("{\"htype\": \"imagex\"}");
    assert_int_equal(weir_xspress3_parse(&m, 0, &x, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "htype"));
    weir_msg_clear(&m);

    /* contrast: not a pickle, a pickle without status, an unknown status */
    m = text_msg("{\"status\": \"running\"}");
    weir_contrast_packet c;
    assert_int_equal(weir_contrast_parse(&m, &c, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "contrast: part 1: pickle: offset 0"));
    weir_msg_clear(&m);
    const uint8_t nostatus[] = {0x80, 4, '}', '.'};
    m = one_part(nostatus, sizeof nostatus);
    assert_int_equal(weir_contrast_parse(&m, &c, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "status"));
    weir_msg_clear(&m);
    weir_msg_init(&m);
    assert_int_equal(weir_contrast_encode(&m, "paused", 1, 0), 0);
    assert_int_equal(weir_contrast_parse(&m, &c, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "paused"));
    assert_null(c.pickle);
    weir_msg_clear(&m);

    /* pcap: lists of different lengths, bad type, a number as frame */
    m = text_msg("{\"message_type\": \"data\", \"frame_number\": 0, \"a\": [1, 2], \"b\": [1]}");
    weir_pcap_packet pc;
    assert_int_equal(weir_pcap_parse(&m, &pc, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "\"b\" has 1 values, expected 2"));
    weir_msg_clear(&m);
    m = text_msg("{\"message_type\": \"data\", \"frame_number\": 1.5}");
    assert_int_equal(weir_pcap_parse(&m, &pc, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "frame_number"));
    weir_msg_clear(&m);
    m = text_msg("[1, 2]");
    assert_int_equal(weir_pcap_parse(&m, &pc, err, sizeof err), WEIR_EJSON);
    assert_true(contains(err, "expected a JSON object"));
    weir_msg_clear(&m);

    /* albaem, sardana */
    m = text_msg("{\"message_type\": \"data\", \"frame_number\": 0, \"channel1\": 1}");
    weir_albaem_packet al;
    assert_int_equal(weir_albaem_parse(&m, &al, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "channel2"));
    weir_msg_clear(&m);
    m = text_msg("{\"type\": \"RecordData\"}");
    weir_sardana_packet sa;
    assert_int_equal(weir_sardana_parse(&m, &sa, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "point_nb"));
    weir_msg_clear(&m);

    /* lecroy: a sequence without its SeqEnd, a trace of the wrong size */
    m = text_msg("{\"htype\": \"msg\", \"what\": 1, \"frame\": 0}");
    weir_msg_append(&m, weir_buf_copy("{\"htype\": \"msg\", \"what\": 3, \"frame\": 0}", 40));
    weir_lecroy_packet lp;
    assert_int_equal(weir_lecroy_parse(&m, 0, &lp, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "SeqEnd"));
    weir_msg_clear(&m);
    m = text_msg("{\"htype\": \"traces\", \"ch\": 2, \"frame\": 0, \"shape\": [1, 2], \"dtype\": "
                 "\"float64\"}");
    weir_msg_append(&m, weir_buf_copy("12345678", 8));
    weir_msg_append(&m, weir_buf_copy(bl_pickle_ok, sizeof bl_pickle_ok));
    assert_int_equal(weir_lecroy_parse(&m, 1, &lp, err, sizeof err), WEIR_ESHAPE);
    assert_true(contains(err, "part 2") && contains(err, "expected 16"));
    weir_msg_clear(&m);

    /* panda packets */
    weir_panda_packet pp;
    m = text_msg("END x Ok\n");
    assert_int_equal(weir_panda_parse(&m, NULL, &pp, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "END <samples>"));
    weir_msg_clear(&m);
    m = text_msg("missed: 0\nformat: ASCII\nfields:\n A.B float Value\n\n");
    assert_int_equal(weir_panda_parse(&m, NULL, &pp, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "header, offset 32") && contains(err, "float"));
    weir_msg_clear(&m);
    m = text_msg("missed: 0\nformat: Base64\nfields:\n A.B double Value\n\n");
    assert_int_equal(weir_panda_parse(&m, NULL, &pp, err, sizeof err), WEIR_EUNSUPPORTED);
    weir_msg_clear(&m);
    m = text_msg("missed: 0\nfields:\n A.B double Value\n A.C uint32 Value\n\n");
    assert_int_equal(weir_panda_parse(&m, NULL, &pp, err, sizeof err), 0);
    weir_panda_packet dp;
    weir_msg line = text_msg(" 1.5 x\n");
    assert_int_equal(weir_panda_parse(&line, &pp.header, &dp, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "offset 5") && contains(err, "uint32"));
    weir_msg_clear(&line);
    line = text_msg(" 1.5\n");
    assert_int_equal(weir_panda_parse(&line, &pp.header, &dp, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "1 values, expected 2"));
    weir_msg_clear(&line);
    weir_panda_clear(&pp);
    weir_msg_clear(&m);

    /* the framer: garbage where data lines should be, the PandA's ERR */
    weir_panda_framer *fr;
    assert_int_equal(weir_panda_framer_new(&fr), 0);
    const char *bad = "OK\nmissed: 0\nfields:\n A double Value\n\n 1\nxyz\n";
    assert_int_equal(weir_panda_framer_feed(fr, (const uint8_t *)bad, strlen(bad)), 0);
    int got = 0, rc;
    while ((rc = weir_panda_framer_next(fr, &m, err, sizeof err)) == 1) {
        weir_msg_clear(&m);
        got++;
    }
    assert_int_equal(got, 3);
    assert_int_equal(rc, WEIR_EFORMAT);
    assert_true(contains(err, "offset 41") && contains(err, "data line"));
    assert_int_equal(weir_panda_framer_next(fr, &m, err, sizeof err), WEIR_EFORMAT); /* sticky */
    weir_panda_framer_reset(fr);
    assert_int_equal(weir_panda_framer_feed(fr, (const uint8_t *)"ERR bad option\n", 15), 0);
    assert_int_equal(weir_panda_framer_next(fr, &m, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "ERR bad option"));
    weir_panda_framer_free(fr);

    /* classify: unknown protocol, messages to skip */
    m = text_msg("{}");
    assert_int_equal(weir_beamline_classify("nope", &m, &kind, &f, err, sizeof err), WEIR_EINVAL);
    assert_true(contains(err, "nope"));
    weir_msg_clear(&m);
    m = text_msg("OK\n");
    assert_int_equal(weir_beamline_classify("pcap-raw", &m, &kind, &f, err, sizeof err),
                     WEIR_ENOTFOUND);
    weir_msg_clear(&m);
    weir_msg_init(&m);
    assert_int_equal(weir_contrast_encode(&m, "heartbeat", -1, 0), 0);
    assert_int_equal(weir_beamline_classify("contrast", &m, &kind, &f, err, sizeof err),
                     WEIR_ENOTFOUND);
    assert_true(contains(err, "heartbeat"));
    weir_msg_clear(&m);

    /* assembler: a lecroy trace before any SEQSTART */
    weir_beamline_asm *a;
    assert_int_equal(weir_beamline_asm_new("lecroy", &a), 0);
    weir_msg_init(&m);
    double z[1] = {0};
    assert_int_equal(weir_lecroy_encode_trace(&m, 1, 0, 0, 1, 1, z, NULL, 0), 0);
    assert_int_equal(weir_beamline_asm_push(a, &m, err, sizeof err), WEIR_EFORMAT);
    assert_true(contains(err, "outside a sequence"));
    assert_int_equal(m.nparts, 0);
    assert_int_equal(weir_beamline_asm_pop(a, &m), 0);
    weir_beamline_asm_free(a);
    assert_int_equal(weir_beamline_asm_new("nope", &a), WEIR_EINVAL);
}

static void test_table(void **state)
{
    (void)state;
    static const char *names[7] = {"xspress3", "contrast", "pcap",  "pcap-raw",
                                   "sardana",  "lecroy",   "albaem"};
    static const char *typs[7] = {"xspress", "contrast",          "PCAP",  "PCAP_RAW",
                                  "sardana", "lecroy_9fwdWp6Rq7", "albaem"};
    for (int k = 0; k < 7; k++) {
        assert_true(weir_beamline_known(names[k]));
        assert_string_equal(weir_beamline_typ(names[k]), typs[k]);
    }
    assert_false(weir_beamline_known("stins"));
    assert_null(weir_beamline_typ("xspress"));
    assert_string_equal(weir_bl_kind_name(WEIR_BL_OTHER), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_albaem_capture),
        cmocka_unit_test(test_contrast_capture),
        cmocka_unit_test(test_xspress3_multipart),
        cmocka_unit_test(test_xspress3_old_format),
        cmocka_unit_test(test_pcap_zmq_capture),
        cmocka_unit_test(test_lecroy_capture),
        cmocka_unit_test(test_sardana_dump),
        cmocka_unit_test(test_pcap_raw_dump),
        cmocka_unit_test(test_roundtrip_xspress3),
        cmocka_unit_test(test_roundtrip_contrast),
        cmocka_unit_test(test_roundtrip_pcap),
        cmocka_unit_test(test_roundtrip_panda),
        cmocka_unit_test(test_roundtrip_sardana_albaem),
        cmocka_unit_test(test_roundtrip_lecroy),
        cmocka_unit_test(test_pickle_scan),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
