/* test_cbors.c — the .cbors reader and writer against dranspose's real files.
 *
 * Ground truth comes from reference/dranspose.md §4/§5 (hex dump of
 * dump_xrd.cbors, per-file message counts), from hand-assembled CBOR bytes,
 * and, where the doc gives no number, from counts taken by hand with python3
 * cbor2 while writing this test (each such constant says so). Round trips are
 * compared with memcmp against the original files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/cbors.h"
#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

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

static weir_cbors_reader *open_bytes(const uint8_t *p, size_t n, const char *name)
{
    char err[512];
    weir_cbors_reader *r = NULL;
    weir_buf *b = weir_buf_copy(p, n);
    assert_non_null(b);
    int rc = weir_cbors_open_buf(b, name, &r, err, sizeof err);
    weir_buf_unref(b);
    if (rc) fail_msg("open_buf %s: %s (%s)", name, err, weir_err_name(rc));
    return r;
}

/* Reads all events; fails the test on any error. Returns the count. */
static size_t read_events(weir_cbors_reader *r, weir_event **evs, size_t max)
{
    size_t n = 0;
    for (;;) {
        weir_event *ev = NULL;
        int rc = weir_cbors_next_event(r, &ev);
        if (rc) fail_msg("%s (%s)", weir_cbors_error(r), weir_err_name(rc));
        if (!ev) break;
        assert_true(n < max);
        evs[n++] = ev;
    }
    return n;
}

static void free_events(weir_event **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        weir_event_free(evs[i]);
}

/* Offset of the k-th (0-based) occurrence of the self-describe tag d9 d9 f7. */
static size_t nth_marker(const uint8_t *p, size_t n, int k)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (p[i] == 0xd9 && p[i + 1] == 0xd9 && p[i + 2] == 0xf7 && k-- == 0) return i;
    fail_msg("marker %d not found", k);
    return 0;
}

static uint8_t *gunzip_file(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    assert_non_null(g);
    size_t cap = 1 << 20, n = 0;
    uint8_t *p = malloc(cap);
    assert_non_null(p);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap);
            assert_non_null(p);
        }
        int got = gzread(g, p + n, (unsigned)(cap - n));
        assert_true(got >= 0);
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(g);
    *len = n;
    return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The first row of image 0 (event 1), from the hex dump in §4.3. */
static const uint16_t xrd_row0[10] = {1, 18, 0, 7, 17, 19, 17, 6, 0, 18};
static const char xrd_header[] =
    "{\"htype\": \"header\", \"filename\": \"output/xrd.h5\", \"msg_number\": 0}";

/* ---- dump_xrd.cbors ----------------------------------------------------- */

static void test_xrd_events(void **state)
{
    (void)state;
    const char *path = tu_shared("dranspose/dump_xrd.cbors");
    weir_cbors_reader *r = open_ok(path);
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_DUMP);
    assert_int_equal(weir_cbors_size(r), 3173);

    for (uint64_t i = 0; i < 11; i++) {
        if (i == 1) assert_int_equal(weir_cbors_offset(r), 91);    /* §4.3 item 1 */
        if (i == 10) assert_int_equal(weir_cbors_offset(r), 3106); /* §4.3 last item */
        weir_event *ev = NULL;
        assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
        assert_non_null(ev);
        assert_int_equal(ev->number, i);
        assert_null(ev->created_at);
        assert_int_equal(ev->nstreams, 1);
        assert_string_equal(ev->streams[0].name, "xrd");
        assert_string_equal(ev->streams[0].typ, "STINS");
        const weir_msg *m = &ev->streams[0].msg;
        assert_int_equal(m->nparts, (i == 0 || i == 10) ? 1 : 2);
        if (i == 0) {
            assert_int_equal(weir_buf_size(m->parts[0]), 65);
            assert_memory_equal(weir_buf_data(m->parts[0]), xrd_header, 65);
        }
        if (i >= 1 && i <= 9) {
            assert_int_equal(weir_buf_size(m->parts[0]), 107);
            assert_int_equal(weir_buf_size(m->parts[1]), 200);
        }
        if (i == 1) {
            const uint8_t *px = weir_buf_data(m->parts[1]);
            for (int k = 0; k < 10; k++)
                assert_int_equal(px[2 * k] | px[2 * k + 1] << 8, xrd_row0[k]);
            assert_memory_equal(weir_buf_data(m->parts[0]), "{\"htype\": \"image\", \"frame\": 0",
                                28);
        }
        if (i == 10) {
            const char *end = "{\"htype\": \"series_end\", \"msg_number\": 10}";
            assert_int_equal(weir_buf_size(m->parts[0]), strlen(end));
            assert_memory_equal(weir_buf_data(m->parts[0]), end, strlen(end));
        }
        weir_event_free(ev);
    }
    weir_event *ev = (weir_event *)1;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_null(ev);
    assert_int_equal(weir_cbors_items(r), 11);
    assert_int_equal(weir_cbors_offset(r), 3173);
    /* Still a clean end when asked again. */
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_null(ev);
    weir_cbors_close(r);
}

static void test_xrd_zero_copy(void **state)
{
    (void)state;
    weir_buf *file = NULL;
    assert_int_equal(weir_buf_map_file(tu_shared("dranspose/dump_xrd.cbors"), &file), WEIR_OK);
    const uint8_t *base = weir_buf_data(file);
    weir_cbors_reader *r = NULL;
    char err[256];
    assert_int_equal(weir_cbors_open_buf(file, "dump_xrd.cbors", &r, err, sizeof err), WEIR_OK);
    weir_event *e0 = NULL, *e1 = NULL;
    assert_int_equal(weir_cbors_next_event(r, &e0), WEIR_OK);
    assert_int_equal(weir_cbors_next_event(r, &e1), WEIR_OK);
    /* §4.3: header payload at 26 (head 58 41 at 24), image payload at 226. */
    assert_ptr_equal(weir_buf_data(e0->streams[0].msg.parts[0]), base + 26);
    assert_ptr_equal(weir_buf_data(e1->streams[0].msg.parts[0]), base + 117);
    assert_ptr_equal(weir_buf_data(e1->streams[0].msg.parts[1]), base + 226);
    /* Frames keep the file alive after the reader is gone. */
    weir_cbors_close(r);
    long refs = weir_buf_refcount(file);
    assert_true(refs >= 4); /* ours + 3 frame views */
    weir_buf_unref(file);
    assert_memory_equal(weir_buf_data(e0->streams[0].msg.parts[0]), xrd_header, 65);
    weir_event_free(e0);
    weir_event_free(e1);

    /* Opening by path maps the file too: two frames of one item lie 109 bytes
     * apart (107 payload bytes + the 2-byte head 58 c8). */
    r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    assert_int_equal(weir_cbors_next_event(r, &e0), WEIR_OK);
    assert_int_equal(weir_cbors_next_event(r, &e1), WEIR_OK);
    const weir_msg *m = &e1->streams[0].msg;
    assert_ptr_equal(weir_buf_data(m->parts[1]), weir_buf_data(m->parts[0]) + 109);
    weir_event_free(e0);
    weir_event_free(e1);
    weir_cbors_close(r);
}

static void test_xrd_roundtrip(void **state)
{
    (void)state;
    const char *path = tu_shared("dranspose/dump_xrd.cbors");
    size_t orig_len;
    uint8_t *orig = tu_read_file(path, &orig_len);
    weir_cbors_reader *r = open_ok(path);
    weir_event *evs[16];
    size_t n = read_events(r, evs, 16);
    assert_int_equal(n, 11);

    /* In-memory encoder: concatenated items equal the file. */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *enc = NULL;
        size_t len = 0;
        assert_int_equal(weir_cbors_encode_event(evs[i], NULL, &enc, &len), WEIR_OK);
        assert_true(off + len <= orig_len);
        assert_memory_equal(enc, orig + off, len);
        off += len;
        free(enc);
    }
    assert_int_equal(off, orig_len);

    /* File writer. */
    char out[4300];
    snprintf(out, sizeof out, "%s/xrd.cbors", tu_tmpdir("cbors_xrd_rt"));
    weir_cbors_writer *w = NULL;
    assert_int_equal(weir_cbors_writer_open(out, 0, &w), WEIR_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weir_cbors_write_event(w, evs[i], NULL), WEIR_OK);
    assert_int_equal(weir_cbors_writer_close(w), WEIR_OK);
    size_t got_len;
    uint8_t *got = tu_read_file(out, &got_len);
    assert_int_equal(got_len, orig_len);
    assert_int_equal(memcmp(got, orig, orig_len), 0);

    free(got);
    free_events(evs, n);
    weir_cbors_close(r);
    free(orig);
}

/* ---- created_at --------------------------------------------------------- */

static void test_created_at_example(void **state)
{
    (void)state;
    const char *path = tu_shared("dranspose/synthetic_created_at_example.cbors");
    size_t orig_len;
    uint8_t *orig = tu_read_file(path, &orig_len);
    assert_int_equal(orig_len, 97); /* §4.1 */
    weir_cbors_reader *r = open_ok(path);
    weir_event *ev = NULL;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_non_null(ev);
    assert_int_equal(ev->number, 10);
    assert_string_equal(ev->created_at, "2025-10-27T19:55:11.123456Z");
    assert_string_equal(ev->streams[0].name, "xrd");
    assert_string_equal(ev->streams[0].typ, "STINS");
    assert_int_equal(ev->streams[0].msg.nparts, 1);
    assert_int_equal(weir_buf_size(ev->streams[0].msg.parts[0]), 41);

    uint8_t *enc = NULL;
    size_t len = 0;
    assert_int_equal(weir_cbors_encode_event(ev, ev->created_at, &enc, &len), WEIR_OK);
    assert_int_equal(len, orig_len);
    assert_int_equal(memcmp(enc, orig, len), 0);
    free(enc);
    weir_event_free(ev);
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_null(ev);
    weir_cbors_close(r);
    free(orig);
}

/* Tag 1 epoch values become the same text cbor2 would write. Expected strings
 * from python3: datetime.fromtimestamp(v, timezone.utc).isoformat(). */
static void test_created_at_epoch(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[16];
        size_t len;
        const char *text;
    } cases[] = {
        /* d9a77d 83 00 a0 c1 00 */
        {{0xd9, 0xa7, 0x7d, 0x83, 0x00, 0xa0, 0xc1, 0x00}, 8, "1970-01-01T00:00:00Z"},
        /* c1 1a 6553f100 = 1700000000 */
        {{0xd9, 0xa7, 0x7d, 0x83, 0x00, 0xa0, 0xc1, 0x1a, 0x65, 0x53, 0xf1, 0x00},
         12,
         "2023-11-14T22:13:20Z"},
        /* c1 fb 3ff8000000000000 = 1.5 */
        {{0xd9, 0xa7, 0x7d, 0x83, 0x00, 0xa0, 0xc1, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
         16,
         "1970-01-01T00:00:01.500000Z"},
        /* c1 20 = -1 */
        {{0xd9, 0xa7, 0x7d, 0x83, 0x00, 0xa0, 0xc1, 0x20}, 8, "1969-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weir_cbors_reader *r = open_bytes(cases[i].bytes, cases[i].len, "epoch");
        weir_event *ev = NULL;
        int rc = weir_cbors_next_event(r, &ev);
        if (rc) fail_msg("case %zu: %s", i, weir_cbors_error(r));
        assert_non_null(ev);
        assert_int_equal(ev->nstreams, 0);
        assert_string_equal(ev->created_at, cases[i].text);
        weir_event_free(ev);
        weir_cbors_close(r);
    }
}

static void test_now_format(void **state)
{
    (void)state;
    char buf[32];
    /* time() may read a coarser clock than CLOCK_REALTIME and lag it by a
     * tick, so bracket with the same clock weir_cbors_now uses. */
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_REALTIME, &ts0);
    const char *s = weir_cbors_now(buf, sizeof buf);
    clock_gettime(CLOCK_REALTIME, &ts1);
    time_t before = ts0.tv_sec, after = ts1.tv_sec;
    assert_non_null(s);
    size_t n = strlen(s);
    assert_true(n == 20 || n == 27);
    assert_int_equal(s[4], '-');
    assert_int_equal(s[10], 'T');
    assert_int_equal(s[n - 1], 'Z');
    if (n == 27) assert_int_equal(s[19], '.');
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    assert_true(t >= before && t <= after);
    assert_null(weir_cbors_now(buf, 8));
}

/* ---- danmax dumps ------------------------------------------------------- */

static void test_danmax(void **state)
{
    (void)state;
    /* Counts from python3 cbor2 by hand: cbor2.load() in a loop, then
     * len(items), sum(len(frames)), sum(len(frame bytes)). */
    static const struct {
        const char *file;
        const char *stream, *typ;
        size_t events, frames, bytes;
        int tagged; /* starts with d9d9f7 (§4.1/§5: the pcap_rotRAW files do not) */
    } files[] = {
        {"dumporca-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors", "orca", "STINS", 13, 25,
         13405, 1},
        {"dumppcap_rotRAW-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors", "pcap_rot",
         "PCAP_RAW", 13, 13, 992, 0},
        {"dumpsardana-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors", "sardana", "sardana",
         13, 13, 11083, 1},
        {"mesh2dworkpcap_rotRAW-ingester-9c93f54e-2ca7-495d-85d2-7aba6cdc99a9.cbors", "pcap_rot",
         "PCAP_RAW", 60, 60, 4663, 0},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "dranspose/danmax/%s", files[f].file);
        const char *path = tu_shared(rel);
        size_t orig_len;
        uint8_t *orig = tu_read_file(path, &orig_len);
        assert_int_equal(orig[0] == 0xd9 && orig[1] == 0xd9 && orig[2] == 0xf7, files[f].tagged);

        weir_cbors_reader *r = open_ok(path);
        assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_DUMP);
        weir_event *evs[64];
        size_t n = read_events(r, evs, 64);
        assert_int_equal(n, files[f].events);
        size_t frames = 0, bytes = 0, off = 0;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(evs[i]->number, i);
            assert_int_equal(evs[i]->nstreams, 1);
            assert_string_equal(evs[i]->streams[0].name, files[f].stream);
            assert_string_equal(evs[i]->streams[0].typ, files[f].typ);
            frames += evs[i]->streams[0].msg.nparts;
            bytes += weir_msg_nbytes(&evs[i]->streams[0].msg);
            /* Re-encoding gives the original item; the writer always adds the
             * 3-byte self-describe tag, so untagged files differ only there. */
            uint8_t *enc;
            size_t len;
            assert_int_equal(weir_cbors_encode_event(evs[i], NULL, &enc, &len), WEIR_OK);
            size_t skip = files[f].tagged ? 0 : 3;
            assert_true(off + len - skip <= orig_len);
            assert_memory_equal(enc + skip, orig + off, len - skip);
            off += len - skip;
            free(enc);
        }
        assert_int_equal(off, orig_len);
        assert_int_equal(frames, files[f].frames);
        assert_int_equal(bytes, files[f].bytes);
        if (f == 0) {
            /* §5: the orca STINS header has 2 parts; the series_end has one. */
            assert_int_equal(evs[0]->streams[0].msg.nparts, 2);
            assert_memory_equal(weir_buf_data(evs[0]->streams[0].msg.parts[0]),
                                "{\"htype\": \"header\"", 18);
            assert_int_equal(evs[n - 1]->streams[0].msg.nparts, 1);
        }
        free_events(evs, n);
        weir_cbors_close(r);
        free(orig);
    }
}

/* ---- raw captures ------------------------------------------------------- */

struct raw_file {
    const char *file;
    size_t messages; /* dranspose.md §5 */
    size_t frames;   /* python3 cbor2 by hand: sum(len(item)) */
    size_t bytes;    /* python3 cbor2 by hand: sum of frame lengths */
};

static const struct raw_file raw_files[] = {
    {"albaem-dump.cbors", 6, 6, 1350},
    {"contrast-dump.cbors", 26, 26, 52403},
    {"eiger-small.cbors", 5, 25, 110922},
    {"pcap-zmq.cbors", 102, 102, 88048},
    {"xspress3-multipart.cbors", 7, 17, 331954},
    {"xspress3mini-dump20.cbors", 68, 68, 734809},
    {"maui-02-continuous-3.cbor.gz", 9, 17, 257152},
};

static void check_raw(const struct raw_file *rf, size_t *parts_out, size_t max_parts)
{
    char rel[256];
    snprintf(rel, sizeof rel, "dranspose/%s", rf->file);
    const char *path = tu_shared(rel);
    int gz = strstr(rf->file, ".gz") != NULL;
    size_t orig_len;
    uint8_t *orig = gz ? gunzip_file(path, &orig_len) : tu_read_file(path, &orig_len);

    weir_cbors_reader *r = open_ok(path);
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_RAW);
    assert_int_equal(weir_cbors_size(r), orig_len);
    size_t n = 0, frames = 0, bytes = 0, off = 0;
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int eof = 0;
        int rc = weir_cbors_next_raw(r, &m, &eof);
        if (rc) fail_msg("%s: %s", rf->file, weir_cbors_error(r));
        if (eof) break;
        if (n < max_parts) parts_out[n] = m.nparts;
        n++;
        frames += m.nparts;
        bytes += weir_msg_nbytes(&m);
        uint8_t *enc;
        size_t len;
        assert_int_equal(weir_cbors_encode_raw(&m, &enc, &len), WEIR_OK);
        assert_true(off + len <= orig_len);
        assert_memory_equal(enc, orig + off, len);
        off += len;
        free(enc);
        weir_msg_clear(&m);
    }
    assert_int_equal(n, rf->messages);
    assert_int_equal(frames, rf->frames);
    assert_int_equal(bytes, rf->bytes);
    assert_int_equal(off, orig_len); /* the raw round trip reproduces the file */
    assert_int_equal(weir_cbors_items(r), rf->messages);

    /* A dump reader call on a raw capture says what the file is. */
    weir_event *ev = NULL;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_EFORMAT);
    assert_non_null(strstr(weir_cbors_error(r), "raw capture"));
    weir_cbors_close(r);
    free(orig);
}

static void test_raw_captures(void **state)
{
    (void)state;
    size_t parts[128];
    for (size_t i = 0; i < sizeof raw_files / sizeof raw_files[0]; i++) {
        check_raw(&raw_files[i], parts, 128);
        if (strcmp(raw_files[i].file, "eiger-small.cbors") == 0) {
            /* §5 / brief: dheader 9 parts, 3x dimage 5 parts, dseries_end 1. */
            static const size_t want[5] = {9, 5, 5, 5, 1};
            for (int k = 0; k < 5; k++)
                assert_int_equal(parts[k], want[k]);
        }
        if (strcmp(raw_files[i].file, "xspress3-multipart.cbors") == 0) {
            /* §5: header, 5x 3-part image, series_end. */
            static const size_t want[7] = {1, 3, 3, 3, 3, 3, 1};
            for (int k = 0; k < 7; k++)
                assert_int_equal(parts[k], want[k]);
        }
    }
}

static void test_raw_writer(void **state)
{
    (void)state;
    const char *path = tu_shared("dranspose/eiger-small.cbors");
    size_t orig_len;
    uint8_t *orig = tu_read_file(path, &orig_len);
    char out[4300];
    snprintf(out, sizeof out, "%s/eiger.cbors", tu_tmpdir("cbors_raw_writer"));
    weir_cbors_reader *r = open_ok(path);
    weir_cbors_writer *w = NULL;
    assert_int_equal(weir_cbors_writer_open(out, 0, &w), WEIR_OK);
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int eof = 0;
        assert_int_equal(weir_cbors_next_raw(r, &m, &eof), WEIR_OK);
        if (eof) break;
        assert_int_equal(weir_cbors_write_raw(w, &m), WEIR_OK);
        weir_msg_clear(&m);
    }
    assert_int_equal(weir_cbors_writer_close(w), WEIR_OK);
    weir_cbors_close(r);
    size_t got_len;
    uint8_t *got = tu_read_file(out, &got_len);
    assert_int_equal(got_len, orig_len);
    assert_int_equal(memcmp(got, orig, orig_len), 0);
    free(got);
    free(orig);
}

static void test_dump_on_raw_reader(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    weir_msg m;
    weir_msg_init(&m);
    int eof = 0;
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), WEIR_EFORMAT);
    assert_non_null(strstr(weir_cbors_error(r), "ingester dump"));
    assert_non_null(strstr(weir_cbors_error(r), "dump_xrd.cbors"));
    /* The wrong call does not spoil the reader. */
    weir_event *ev = NULL;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_int_equal(ev->number, 0);
    weir_event_free(ev);
    weir_cbors_close(r);
}

/* ---- gzip and append ---------------------------------------------------- */

static void test_gz_write_read(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    weir_event *evs[16];
    size_t n = read_events(r, evs, 16);
    assert_int_equal(n, 11);
    char out[4300];
    snprintf(out, sizeof out, "%s/xrd.cbors.gz", tu_tmpdir("cbors_gz"));
    weir_cbors_writer *w = NULL;
    assert_int_equal(weir_cbors_writer_open(out, 0, &w), WEIR_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weir_cbors_write_event(w, evs[i], NULL), WEIR_OK);
    assert_int_equal(weir_cbors_writer_close(w), WEIR_OK);

    size_t zlen;
    uint8_t *z = tu_read_file(out, &zlen);
    assert_true(zlen > 2 && z[0] == 0x1f && z[1] == 0x8b); /* really gzip */
    free(z);
    /* Independent check of the content: zlib's gzread gives the plain file. */
    size_t plain_len;
    uint8_t *plain = gunzip_file(out, &plain_len);
    size_t orig_len;
    uint8_t *orig = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &orig_len);
    assert_int_equal(plain_len, orig_len);
    assert_int_equal(memcmp(plain, orig, orig_len), 0);
    free(plain);
    free(orig);

    weir_cbors_reader *g = open_ok(out);
    assert_int_equal(weir_cbors_kind_of(g), WEIR_CBORS_DUMP);
    assert_int_equal(weir_cbors_size(g), 3173);
    weir_event *back[16];
    size_t m = read_events(g, back, 16);
    assert_int_equal(m, 11);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(back[i]->number, i);
        const weir_msg *a = &back[i]->streams[0].msg, *b = &evs[i]->streams[0].msg;
        assert_int_equal(a->nparts, b->nparts);
        for (size_t k = 0; k < a->nparts; k++) {
            assert_int_equal(weir_buf_size(a->parts[k]), weir_buf_size(b->parts[k]));
            assert_memory_equal(weir_buf_data(a->parts[k]), weir_buf_data(b->parts[k]),
                                weir_buf_size(a->parts[k]));
        }
    }
    free_events(back, m);
    weir_cbors_close(g);
    free_events(evs, n);
    weir_cbors_close(r);
}

static void append_and_check(const char *out)
{
    weir_cbors_reader *r = open_ok(tu_shared("dranspose/dump_xrd.cbors"));
    weir_event *evs[16];
    size_t n = read_events(r, evs, 16);
    weir_cbors_close(r);
    assert_int_equal(n, 11);
    /* Two scans appended to one file, as the dumper does ("ba" mode). */
    for (int scan = 0; scan < 2; scan++) {
        weir_cbors_writer *w = NULL;
        assert_int_equal(weir_cbors_writer_open(out, scan, &w), WEIR_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(
                weir_cbors_write_event(w, evs[i], scan ? "2025-01-01T00:00:00Z" : NULL), WEIR_OK);
        assert_int_equal(weir_cbors_writer_close(w), WEIR_OK);
    }
    r = open_ok(out);
    weir_event *back[32];
    size_t m = read_events(r, back, 32);
    assert_int_equal(m, 22);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(back[i]->number, i % 11);
        if (i < 11)
            assert_null(back[i]->created_at);
        else
            assert_string_equal(back[i]->created_at, "2025-01-01T00:00:00Z");
        assert_int_equal(back[i]->streams[0].msg.nparts, evs[i % 11]->streams[0].msg.nparts);
    }
    free_events(back, m);
    weir_cbors_close(r);
    free_events(evs, n);
}

static void test_append(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cbors_append");
    char out[4300];
    snprintf(out, sizeof out, "%s/scans.cbors", dir);
    append_and_check(out);
    /* The first scan alone is the original file: append did not rewrite it. */
    size_t len, orig_len;
    uint8_t *got = tu_read_file(out, &len);
    uint8_t *orig = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &orig_len);
    assert_true(len > orig_len);
    assert_int_equal(memcmp(got, orig, orig_len), 0);
    /* The second scan is 3-element: c0 74 "2025-01-01T00:00:00Z" (22 bytes) more per item. */
    assert_int_equal(len, 2 * orig_len + 11 * (2 + 20));
    free(got);
    free(orig);
    /* Appending to a .gz makes a multi-member gzip file. */
    snprintf(out, sizeof out, "%s/scans.cbors.gz", dir);
    append_and_check(out);
}

/* ---- bad input ---------------------------------------------------------- */

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *p = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &len);
    /* Item 5 starts at the 6th self-describe tag; it is followed by the
     * 42877 tag and [5, ...]. */
    size_t item5 = nth_marker(p, len, 5);
    assert_memory_equal(p + item5, "\xd9\xd9\xf7\xd9\xa7\x7d\x82\x05", 8);
    size_t cut = item5 + 150;
    weir_cbors_reader *r = open_bytes(p, cut, "dump.cbors");
    for (uint64_t i = 0; i < 5; i++) {
        weir_event *ev = NULL;
        assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
        assert_non_null(ev);
        assert_int_equal(ev->number, i);
        weir_event_free(ev);
    }
    weir_event *ev = NULL;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_ETRUNCATED);
    assert_null(ev);
    char want[128];
    snprintf(want, sizeof want, "dump.cbors: truncated item at offset %zu (file ends at %zu)",
             item5, cut);
    assert_string_equal(weir_cbors_error(r), want);
    /* Sticky: the reader stays on the bad item. */
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_ETRUNCATED);
    assert_int_equal(weir_cbors_offset(r), item5);
    assert_int_equal(weir_cbors_items(r), 5);
    weir_cbors_close(r);

    /* Cut inside a head too (the 2-byte tag head after d9d9f7 of item 5). */
    r = open_bytes(p, item5 + 4, "dump.cbors");
    size_t k = 0;
    while (weir_cbors_next_event(r, &ev) == WEIR_OK && ev) {
        weir_event_free(ev);
        k++;
    }
    assert_int_equal(k, 5);
    assert_non_null(strstr(weir_cbors_error(r), "truncated item"));
    weir_cbors_close(r);
    free(p);
}

/* Injects bytes at offset off of a copy of dump_xrd and checks that item 0 is
 * delivered and item 1 fails with code and a message containing needle. */
static void corrupt_case(size_t off, const uint8_t *bytes, size_t nbytes, int code,
                         const char *needle)
{
    size_t len;
    uint8_t *p = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &len);
    memcpy(p + off, bytes, nbytes);
    weir_cbors_reader *r = open_bytes(p, len, "dump.cbors");
    weir_event *ev = NULL;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_int_equal(ev->number, 0);
    weir_event_free(ev);
    int rc = weir_cbors_next_event(r, &ev);
    if (rc != code || !strstr(weir_cbors_error(r), needle))
        fail_msg("got %s \"%s\", want %s containing \"%s\"", weir_err_name(rc), weir_cbors_error(r),
                 weir_err_name(code), needle);
    assert_null(ev);
    weir_cbors_close(r);
    free(p);
}

static void test_corrupt(void **state)
{
    (void)state;
    /* §4.3 item 1: 91 d9d9f7, 94 d9a77d, 97 82, 98 01, 99 a1, 100 63 'xrd',
     * 104 d9a77e, 107 82, 108 65 'STINS', 114 82, 115 58 6b ... */
    corrupt_case(98, (const uint8_t *)"\x1c", 1, WEIR_ECBOR, "offset 98: malformed CBOR");
    corrupt_case(98, (const uint8_t *)"\xff", 1, WEIR_ECBOR, "offset 98: malformed CBOR");
    corrupt_case(91, (const uint8_t *)"\xff", 1, WEIR_ECBOR, "offset 91");
    corrupt_case(94, (const uint8_t *)"\xd9\xa7\x7f", 3, WEIR_EFORMAT,
                 "offset 94: expected tag 42877 (InternalWorkerMessage), found tag 42879");
    corrupt_case(104, (const uint8_t *)"\xd9\x00\x2a", 3, WEIR_EFORMAT,
                 "offset 104: expected tag 42878 (StreamData) for stream 'xrd', found tag 42");
    /* The [typ, frames] array becomes a map head. */
    corrupt_case(107, (const uint8_t *)"\xa2", 1, WEIR_EFORMAT,
                 "offset 107: expected array [typ, frames] of 2 elements for stream 'xrd'");
    /* The first frame's bstr head becomes a text head of the same length. */
    corrupt_case(115, (const uint8_t *)"\x78", 1, WEIR_EFORMAT,
                 "offset 115: expected byte string (frame 0 of stream 'xrd'), found text string");
    /* Event number becomes negative. */
    corrupt_case(98, (const uint8_t *)"\x20", 1, WEIR_EFORMAT,
                 "offset 98: expected unsigned integer (event_number), found negative integer");
}

/* Hand-assembled items (no 55799 tag, which is optional on read). */
static void bad_bytes(const uint8_t *p, size_t n, int code, const char *needle)
{
    weir_cbors_reader *r = open_bytes(p, n, "dump.cbors");
    weir_event *ev = NULL;
    int rc = weir_cbors_next_event(r, &ev);
    if (rc != code || !strstr(weir_cbors_error(r), needle))
        fail_msg("got %s \"%s\", want %s containing \"%s\"", weir_err_name(rc), weir_cbors_error(r),
                 weir_err_name(code), needle);
    assert_null(ev);
    weir_cbors_close(r);
}

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void test_bad_structure(void **state)
{
    (void)state;
    /* #6.42877([0, {"xrd": "STINS"}]) : tag 42878 missing */
    bad_bytes(
        B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa1, 0x63, 'x', 'r', 'd', 0x65, 'S', 'T', 'I', 'N', 'S'),
        WEIR_EFORMAT,
        "dump.cbors: offset 10: expected tag 42878 (StreamData) for stream 'xrd', found "
        "text string");
    /* #6.42877([0, {"xrd": #6.42878("STINS")}]) : stream value not an array */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa1, 0x63, 'x', 'r', 'd', 0xd9, 0xa7, 0x7e, 0x65,
                'S', 'T', 'I', 'N', 'S'),
              WEIR_EFORMAT, "offset 13: expected array [typ, frames]");
    /* frames array holds a text string */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa1, 0x61, 'a', 0xd9, 0xa7, 0x7e, 0x82, 0x61, 'T',
                0x81, 0x62, 'h', 'i'),
              WEIR_EFORMAT, "offset 15: expected byte string (frame 0 of stream 'a'), found text");
    /* frames is not an array */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa1, 0x61, 'a', 0xd9, 0xa7, 0x7e, 0x82, 0x61, 'T',
                0x41, 0x00),
              WEIR_EFORMAT, "offset 14: expected array of byte strings (frames) for stream 'a'");
    /* duplicate stream name "a" */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa2, 0x61, 'a', 0xd9, 0xa7, 0x7e, 0x82, 0x61, 'T',
                0x80, 0x61, 'a', 0xd9, 0xa7, 0x7e, 0x82, 0x61, 'T', 0x80),
              WEIR_EDUPLICATE, "offset 15: stream 'a' occurs twice");
    /* 4-element item */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x84, 0x00, 0xa0, 0xc0, 0x60, 0x00), WEIR_EFORMAT,
              "offset 3: expected array [event_number, streams, ?created_at] of 2 or 3 elements, "
              "found array of 4 elements");
    /* created_at under the wrong tag */
    bad_bytes(B(0xd9, 0xa7, 0x7d, 0x83, 0x00, 0xa0, 0xc2, 0x40), WEIR_EFORMAT,
              "offset 6: expected created_at");
    /* the map key is bytes */
    bad_bytes(
        B(0xd9, 0xa7, 0x7d, 0x82, 0x00, 0xa1, 0x41, 'a', 0xd9, 0xa7, 0x7e, 0x82, 0x61, 'T', 0x80),
        WEIR_EFORMAT, "offset 6: expected text string (stream name), found byte string");
}

static void test_second_item_bad(void **state)
{
    (void)state;
    /* A good raw message [h'01'] then a map: the first is delivered. */
    const uint8_t p[] = {0x81, 0x41, 0x01, 0xa0};
    weir_cbors_reader *r = open_bytes(p, sizeof p, "raw.cbors");
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_RAW);
    weir_msg m;
    weir_msg_init(&m);
    int eof = 0;
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), WEIR_OK);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(weir_buf_data(m.parts[0])[0], 1);
    weir_msg_clear(&m);
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), WEIR_EFORMAT);
    assert_string_equal(weir_cbors_error(r), "raw.cbors: offset 3: expected array of byte strings "
                                             "(raw capture message), found map of 0 entries");
    assert_int_equal(m.nparts, 0);
    weir_cbors_close(r);
}

static void test_indefinite(void **state)
{
    (void)state;
    /* #6.42877([_ 7, {_ "ab"(_ "a", "b"): #6.42878([_ "T", [_ (_ h'0102', h'03'), h'04']])}]) */
    const uint8_t p[] = {0xd9, 0xa7, 0x7d, 0x9f, 0x07, 0xbf, 0x7f, 0x61, 'a',  0x61, 'b',
                         0xff, 0xd9, 0xa7, 0x7e, 0x9f, 0x61, 'T',  0x9f, 0x5f, 0x42, 0x01,
                         0x02, 0x41, 0x03, 0xff, 0x41, 0x04, 0xff, 0xff, 0xff, 0xff};
    weir_cbors_reader *r = open_bytes(p, sizeof p, "indef");
    weir_event *ev = NULL;
    int rc = weir_cbors_next_event(r, &ev);
    if (rc) fail_msg("%s", weir_cbors_error(r));
    assert_int_equal(ev->number, 7);
    assert_null(ev->created_at);
    assert_string_equal(ev->streams[0].name, "ab");
    assert_string_equal(ev->streams[0].typ, "T");
    const weir_msg *m = &ev->streams[0].msg;
    assert_int_equal(m->nparts, 2);
    assert_int_equal(weir_buf_size(m->parts[0]), 3);
    assert_memory_equal(weir_buf_data(m->parts[0]), "\x01\x02\x03", 3);
    assert_int_equal(weir_buf_size(m->parts[1]), 1);
    assert_int_equal(weir_buf_data(m->parts[1])[0], 4);
    weir_event_free(ev);
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_null(ev);
    weir_cbors_close(r);
}

static void test_gz_garbage(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cbors_gzbad");
    char path[4300];
    char err[512];
    weir_cbors_reader *r = (weir_cbors_reader *)1;

    /* A gzip header followed by garbage. */
    snprintf(path, sizeof path, "%s/bad.cbors.gz", dir);
    const uint8_t junk[] = {0x1f, 0x8b, 0x08, 0x00, 0,    0,    0,    0,    0,    0x03, 0xde,
                            0xad, 0xbe, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xff, 0xff};
    write_file(path, junk, sizeof junk);
    assert_int_equal(weir_cbors_open(path, &r, err, sizeof err), WEIR_EZLIB);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "gzip"));

    /* Not gzip at all, but named .gz. */
    snprintf(path, sizeof path, "%s/plain.cbors.gz", dir);
    write_file(path, "hello world", 11);
    r = (weir_cbors_reader *)1;
    assert_int_equal(weir_cbors_open(path, &r, err, sizeof err), WEIR_EZLIB);
    assert_null(r);

    /* A gzip stream cut short. */
    size_t zlen;
    uint8_t *z = tu_read_file(tu_shared("dranspose/maui-02-continuous-3.cbor.gz"), &zlen);
    snprintf(path, sizeof path, "%s/short.cbor.gz", dir);
    write_file(path, z, zlen / 2);
    free(z);
    r = (weir_cbors_reader *)1;
    assert_int_equal(weir_cbors_open(path, &r, err, sizeof err), WEIR_EZLIB);
    assert_non_null(strstr(err, "ends early"));

    /* Missing file. */
    snprintf(path, sizeof path, "%s/none.cbors", dir);
    assert_int_equal(weir_cbors_open(path, &r, err, sizeof err), WEIR_ENOENT);
    assert_non_null(strstr(err, path));
}

static void test_empty_and_unknown(void **state)
{
    (void)state;
    weir_cbors_reader *r = open_bytes((const uint8_t *)"", 0, "empty");
    assert_int_equal(weir_cbors_kind_of(r), WEIR_CBORS_UNKNOWN);
    weir_event *ev = (weir_event *)1;
    assert_int_equal(weir_cbors_next_event(r, &ev), WEIR_OK);
    assert_null(ev);
    weir_msg m;
    weir_msg_init(&m);
    int eof = 0;
    assert_int_equal(weir_cbors_next_raw(r, &m, &eof), WEIR_OK);
    assert_int_equal(eof, 1);
    weir_cbors_close(r);

    /* A first item that is neither kind: open refuses with a message. */
    char err[512];
    weir_buf *b = weir_buf_copy("\x01", 1);
    r = (weir_cbors_reader *)1;
    assert_int_equal(weir_cbors_open_buf(b, "x.cbors", &r, err, sizeof err), WEIR_EFORMAT);
    assert_null(r);
    assert_non_null(strstr(err, "x.cbors: offset 0: expected tag 42877"));
    weir_buf_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xrd_events),
        cmocka_unit_test(test_xrd_zero_copy),
        cmocka_unit_test(test_xrd_roundtrip),
        cmocka_unit_test(test_created_at_example),
        cmocka_unit_test(test_created_at_epoch),
        cmocka_unit_test(test_now_format),
        cmocka_unit_test(test_danmax),
        cmocka_unit_test(test_raw_captures),
        cmocka_unit_test(test_raw_writer),
        cmocka_unit_test(test_dump_on_raw_reader),
        cmocka_unit_test(test_gz_write_read),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_second_item_bad),
        cmocka_unit_test(test_indefinite),
        cmocka_unit_test(test_gz_garbage),
        cmocka_unit_test(test_empty_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
