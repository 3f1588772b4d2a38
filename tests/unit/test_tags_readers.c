/* test_tags_readers.c — the time-tag readers, encoders and clips
 * (src/timetag/, weir/tags.h).
 *
 * Ground truth never comes from the code under test:
 * - PTU files: the independent PicoQuant-demo decodes in
 *   timetag/eta/reference/ and timetag/picoquant/reference/ (record index,
 *   channel, dtime, overflow-corrected time units, resolutions in
 *   meta.json), record for record; times are checked against
 *   time_units × GlobalRes + dtime × Res computed here in long double.
 * - quTAG: ETA's decode in timetag/eta/decoded_by_eta/.
 * - Becker & Hickl: the .asc export beside test_noise.spc (macro, micro),
 *   with the units from the .set values (9.5 ns clock in the header frame;
 *   SP_TAC_R 5.0033574e-08 s / SP_TAC_G 5 / 4096).
 * - legacy files: header values read from the header bytes by hand (python
 *   struct, offsets of PicoQuant's structs), which also satisfy header +
 *   4 × NumberOfRecords = file size where the files are complete.
 * - round trips: synthetic events with known values, including overflow
 *   crossings, through every encoder and record type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/npy.h"
#include "weir/tags.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

static weir_tag_reader *open_ok(const char *path, weir_tag_format f)
{
    weir_tag_reader *r = NULL;
    char err[512];
    int rc = weir_tag_open(path, f, &r, err, sizeof err);
    if (rc) fail_msg("open %s: %s", path, err);
    return r;
}

/* every event plus the index of its record (read one at a time) */
static size_t decode_indexed(weir_tag_reader *r, weir_tag **ev, uint64_t **idx)
{
    const weir_tag_info *in = weir_tag_reader_info(r);
    size_t cap = in->nrecords + 1, n = 0;
    *ev = malloc(cap * sizeof **ev);
    *idx = malloc(cap * sizeof **idx);
    assert_non_null(*ev);
    assert_non_null(*idx);
    char err[256];
    for (;;) {
        long k = weir_tag_read(r, *ev + n, 1, err, sizeof err);
        assert_true(k >= 0);
        if (!k) break;
        (*idx)[n] = weir_tag_tell(r).record - 1;
        n++;
        assert_true(n < cap);
    }
    return n;
}

static size_t decode_all(weir_tag_reader *r, weir_tag **ev)
{
    const weir_tag_info *in = weir_tag_reader_info(r);
    size_t cap = in->nrecords + 1, n = 0;
    *ev = malloc(cap * sizeof **ev);
    assert_non_null(*ev);
    char err[256];
    for (;;) {
        long k = weir_tag_read(r, *ev + n, 1000, err, sizeof err);
        assert_true(k >= 0);
        if (!k) break;
        n += (size_t)k;
    }
    return n;
}

static weir_array npy(const char *dir, const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", dir, name);
    weir_array a;
    char err[256];
    if (weir_npy_read(tu_shared(rel), &a, err, sizeof err)) fail_msg("%s", err);
    return a;
}

static int64_t geti(const weir_array *a, size_t i)
{
    return (int64_t)weir_array_get_f64(a, i); /* exact below 2^53 */
}

static int64_t geti64(const weir_array *a, size_t i)
{
    int64_t v;
    memcpy(&v, a->data + i * 8, 8);
    return v;
}

/* ---- PTU against the independent decodes ---- */

static void check_ptu_reference(const char *file, const char *refdir)
{
    weir_tag_reader *r = open_ok(tu_shared(file), WEIR_TAGFMT_AUTO);
    const weir_tag_info *in = weir_tag_reader_info(r);
    assert_int_equal(in->format, WEIR_TAGFMT_PTU);

    char rel[512];
    snprintf(rel, sizeof rel, "%s/meta.json", refdir);
    size_t mlen;
    uint8_t *mtext = tu_read_file(tu_shared(rel), &mlen);
    cJSON *meta = cJSON_ParseWithLength((const char *)mtext, mlen);
    assert_non_null(meta);
    double gres = cJSON_GetObjectItem(meta, "global_resolution_s")->valuedouble;
    double res = cJSON_GetObjectItem(meta, "resolution_s")->valuedouble;
    int64_t hdr = (int64_t)cJSON_GetObjectItem(meta, "header_bytes")->valuedouble;
    int64_t rtype = (int64_t)cJSON_GetObjectItem(meta, "record_type")->valuedouble;
    assert_int_equal(in->header_bytes, hdr);
    const weir_tag_header_tag *t = NULL;
    for (size_t i = 0; i < in->ntags; i++)
        if (!strcmp(in->tags[i].name, "TTResultFormat_TTTRRecType")) t = &in->tags[i];
    assert_non_null(t);
    assert_int_equal(t->i, rtype);
    int t3 = ((rtype >> 8) & 0xFF) == 3;
    assert_int_equal(in->t3, t3);
    if (t3) {
        assert_true(in->sync_period_s == gres);
        assert_true(in->resolution_s == res);
    } else {
        assert_true(in->resolution_s == gres);
    }

    weir_array ri = npy(refdir, "record_index.npy"), ch = npy(refdir, "channel.npy"),
               dt = npy(refdir, "dtime.npy"), tu = npy(refdir, "time_units.npy"),
               kd = npy(refdir, "kind.npy");
    size_t nref = weir_array_nelem(&ri);

    weir_tag *ev;
    uint64_t *idx;
    size_t n = decode_indexed(r, &ev, &idx);
    size_t j = 0;
    long double gps = (long double)gres * 1e12L, rps = (long double)res * 1e12L;
    long double maxdev = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind != WEIR_TAG_PHOTON) continue;
        if (j >= nref) fail_msg("%s: more photons than the reference (%zu)", file, nref);
        if ((int64_t)idx[i] != geti64(&ri, j) || ev[i].channel != geti(&ch, j) || geti(&kd, j) != 0)
            fail_msg("%s: photon %zu: record %llu channel %d, reference record %lld channel %lld",
                     file, j, (unsigned long long)idx[i], ev[i].channel, (long long)geti64(&ri, j),
                     (long long)geti(&ch, j));
        int64_t d = geti(&dt, j);
        if (t3)
            assert_int_equal(ev[i].micro, d);
        else
            assert_int_equal(ev[i].micro, -1);
        long double x = (long double)geti64(&tu, j) * gps + (long double)d * rps;
        long double dev = fabsl((long double)ev[i].time - x);
        if (dev > maxdev) maxdev = dev;
        if (dev > 0.5L + 1e-3L)
            fail_msg("%s: photon %zu: time %lld ps, reference %.3Lf ps", file, j,
                     (long long)ev[i].time, x);
        j++;
    }
    assert_int_equal(j, nref);
    assert_int_equal(weir_tag_reader_counts(r)->photons, nref);
    assert_int_equal(weir_tag_reader_counts(r)->errors, 0);
    /* every record is accounted for */
    const weir_tag_counts *c = weir_tag_reader_counts(r);
    assert_int_equal(c->photons + c->syncs + c->markers + c->overflows + c->errors, in->nrecords);
    free(ev);
    free(idx);
    weir_array_release(&ri), weir_array_release(&ch), weir_array_release(&dt);
    weir_array_release(&tu), weir_array_release(&kd);
    cJSON_Delete(meta);
    free(mtext);
    weir_tag_close(r);
}

static void test_ptu_eta_t2(void **s)
{
    check_ptu_reference("timetag/eta/200204_HH400_T2_320MHz_HBT.timeres",
                        "timetag/eta/reference/200204_HH400_T2_320MHz_HBT.timeres");
}
static void test_ptu_eta_t3_320(void **s)
{
    check_ptu_reference("timetag/eta/200204_HH400_T3_320MHz_HBT.timeres",
                        "timetag/eta/reference/200204_HH400_T3_320MHz_HBT.timeres");
}
static void test_ptu_eta_t3_80(void **s)
{
    check_ptu_reference("timetag/eta/200213_HH400_T3_80MHz_HBT.timeres",
                        "timetag/eta/reference/200213_HH400_T3_80MHz_HBT.timeres");
}
static void test_ptu_pq_v30_t2(void **s)
{
    check_ptu_reference("timetag/picoquant/hydraharp_v30_t2.ptu",
                        "timetag/picoquant/reference/hydraharp_v30_t2.ptu");
}
static void test_ptu_pq_v10_t3(void **s)
{
    check_ptu_reference("timetag/picoquant/hydraharp_v10_t3.ptu",
                        "timetag/picoquant/reference/hydraharp_v10_t3.ptu");
}

/* The exact resolution: 127.99999948853724 ps, not ETA's 127 */
static void test_ptu_exact_resolution(void **s)
{
    weir_tag_reader *r = open_ok(tu_shared("timetag/picoquant/hydraharp_v10_t3.ptu"), 0);
    const weir_tag_info *in = weir_tag_reader_info(r);
    assert_true(in->micro.den > 1);
    assert_true(fabs((double)in->micro.num / (double)in->micro.den - 127.99999948853724) < 1e-9);
    assert_int_equal(in->tick.num / in->tick.den, 400000); /* 400 ns */
    assert_int_equal(in->tick.num % in->tick.den, 0);
    assert_int_equal(in->nrecords_header, 167801); /* TTResult_NumberOfRecords, by hand */
    assert_int_equal(in->nrecords, (677004 - 5800) / 4);
    /* header tags of several types, read by hand with python struct */
    int seen = 0;
    for (size_t i = 0; i < in->ntags; i++) {
        const weir_tag_header_tag *t = &in->tags[i];
        if (!strcmp(t->name, "CreatorSW_Name")) {
            assert_int_equal(t->type, WEIR_TAGV_STRING);
            assert_string_equal((const char *)t->data, "SymPhoTime 64");
            seen++;
        } else if (!strcmp(t->name, "UsrHeadName") && t->index == 3) {
            assert_string_equal((const char *)t->data, "485.0nm (DC485)");
            seen++;
        } else if (!strcmp(t->name, "File_CreatingTime")) {
            assert_int_equal(t->type, WEIR_TAGV_DATETIME);
            assert_true(fabs(t->f - 44876.528504525464) < 1e-9);
            seen++;
        } else if (!strcmp(t->name, "HWSync_Offset")) {
            assert_int_equal(t->i, -10000);
            seen++;
        } else if (!strcmp(t->name, "Sep2_SOM_100_InvSyncMask")) {
            assert_int_equal(t->type, WEIR_TAGV_BOOL);
            assert_int_equal(t->i, 1);
            seen++;
        }
    }
    assert_int_equal(seen, 5);
    weir_tag_close(r);
}

/* ---- quTAG against ETA's decode ---- */

static void check_qutag(const char *file, const char *refdir)
{
    weir_tag_reader *r = open_ok(tu_shared(file), WEIR_TAGFMT_AUTO);
    const weir_tag_info *in = weir_tag_reader_info(r);
    assert_int_equal(in->format, WEIR_TAGFMT_QUTAG);
    assert_int_equal(in->header_bytes, 40);
    assert_int_equal(in->record_bytes, 10);
    weir_tag *ev;
    size_t n = decode_all(r, &ev);
    assert_int_equal(n, in->nrecords);
    weir_array tp = npy(refdir, "time_ps.npy"), ch = npy(refdir, "channel.npy");
    size_t nref = weir_array_nelem(&tp);
    assert_true(nref <= n);
    for (size_t i = 0; i < nref; i++) {
        if (ev[i].time != geti64(&tp, i) || ev[i].channel != geti64(&ch, i))
            fail_msg("%s: event %zu: (%lld, %d), ETA (%lld, %lld)", file, i, (long long)ev[i].time,
                     ev[i].channel, (long long)geti64(&tp, i), (long long)geti64(&ch, i));
    }
    free(ev);
    weir_array_release(&tp), weir_array_release(&ch);
    weir_tag_close(r);
}

static void test_qutag_eta(void **s)
{
    check_qutag("timetag/eta/19_qutag_80MHz_HBT_sync_filtered.qutag",
                "timetag/eta/decoded_by_eta/19_qutag_80MHz_HBT_sync_filtered.qutag");
    check_qutag("timetag/eta/200204_qutag_320MHz_HBT_sync_filtered.qutag",
                "timetag/eta/decoded_by_eta/200204_qutag_320MHz_HBT_sync_filtered.qutag");
}

/* ---- Becker & Hickl against the .asc ---- */

static void test_bh_asc(void **s)
{
    weir_tag_reader *r = open_ok(tu_shared("timetag/bh/test_noise.spc"), WEIR_TAGFMT_AUTO);
    const weir_tag_info *in = weir_tag_reader_info(r);
    assert_int_equal(in->format, WEIR_TAGFMT_BH_SPC);
    assert_int_equal(in->tick.num, 9500); /* 0x5F × 0.1 ns */
    assert_int_equal(in->tick.den, 1);
    weir_tag *ev;
    size_t n = decode_all(r, &ev);
    size_t alen;
    char *asc = (char *)tu_read_file(tu_shared("timetag/bh/test_noise.asc"), &alen);
    char *txt = malloc(alen + 1);
    memcpy(txt, asc, alen);
    txt[alen] = 0;
    long double mres = 5.0033574e-08L / 5 / 4096 * 1e12L;
    size_t j = 0, k = 0;
    char *p = txt;
    long long macro, micro;
    int used;
    while (sscanf(p, "%lld %lld%n", &macro, &micro, &used) == 2) {
        p += used;
        while (k < n && ev[k].kind != WEIR_TAG_PHOTON)
            k++;
        if (k >= n) fail_msg("fewer photons than the .asc (%zu)", j);
        assert_int_equal(ev[k].micro, micro);
        long double x = (long double)macro * 9500 + (long double)micro * mres;
        if (fabsl((long double)ev[k].time - x) > 0.5L + 1e-6L)
            fail_msg("photon %zu: %lld ps, .asc gives %.3Lf", j, (long long)ev[k].time, x);
        j++, k++;
    }
    assert_int_equal(j, 6114);
    while (k < n && ev[k].kind != WEIR_TAG_PHOTON)
        k++;
    assert_int_equal(k, n);
    assert_int_equal(weir_tag_reader_counts(r)->photons, 6114);
    /* 18,910 multiple-overflow records (eta.md §3.4) */
    assert_int_equal(weir_tag_reader_counts(r)->overflows, 18910);
    free(txt);
    free(asc);
    free(ev);
    weir_tag_close(r);
}

/* ---- legacy PicoQuant ---- */

static void test_legacy(void **s)
{
    static const struct {
        const char *file;
        uint64_t header, nrec_hdr, nrec;
        int t3;
        double res_s, sync_s;
        int64_t stop_ms; /* StopAfter: the last event lies within 1 ms before it */
    } L[] = {
        /* values from the header bytes by hand (python struct) */
        {"timetag/legacy/hydraharp_v20.ht3", 800, 53606, 53606, 1, 16e-12, 1.0 / 998898, 10000},
        {"timetag/legacy/hydraharp_v10.ht3", 800, 72463591, (5000 - 800) / 4, 1, 4e-12,
         1.0 / 10004460, 0},
        {"timetag/legacy/hydraharp_v10.ht2", 800, 52378636, 25, 0, 1e-12, 0, 0},
        {"timetag/legacy/hydraharp_v20.ht2", 800, 10431577, 25, 0, 1e-12, 0, 0},
        {"timetag/legacy/timeharp_v50.t3r", 592, 86997, 86997, 1, 0.07023705542087555e-9, 100e-9,
         9344},
        {"timetag/legacy/RotatingPolarizer.t3r", 640, 394162, 394162, 1, 0.0364583e-9, 100e-9,
         10000},
        {"timetag/legacy/IRF.thd", 640, 0, 0, 0, 0.0364616e-9, 0, 0},
        {"timetag/legacy/Nile_Blue_Glycerol.thd", 640, 0, 0, 0, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
        weir_tag_reader *r = open_ok(tu_shared(L[i].file), WEIR_TAGFMT_AUTO);
        const weir_tag_info *in = weir_tag_reader_info(r);
        assert_int_equal(in->format, WEIR_TAGFMT_PQ_LEGACY);
        assert_int_equal(in->header_bytes, L[i].header);
        assert_int_equal(in->nrecords_header, L[i].nrec_hdr);
        assert_int_equal(in->nrecords, L[i].nrec);
        assert_int_equal(in->t3, L[i].t3);
        if (L[i].res_s > 0 && fabs(in->resolution_s / L[i].res_s - 1) > 1e-6)
            fail_msg("%s: resolution %g s, header says %g", L[i].file, in->resolution_s,
                     L[i].res_s);
        if (L[i].sync_s > 0) assert_true(fabs(in->sync_period_s / L[i].sync_s - 1) < 1e-12);
        weir_tag *ev;
        size_t n = decode_all(r, &ev);
        const weir_tag_counts *c = weir_tag_reader_counts(r);
        assert_int_equal(c->photons + c->syncs + c->markers + c->overflows + c->errors,
                         in->nrecords);
        assert_int_equal(n, c->photons + c->syncs + c->markers);
        if (L[i].stop_ms) {
            assert_true(n > 0);
            int64_t last = ev[n - 1].time, stop = L[i].stop_ms * 1000000000LL;
            if (last > stop || last < stop - 1000000000LL)
                fail_msg("%s: last event at %lld ps, the run stopped at %lld ms", L[i].file,
                         (long long)last, (long long)L[i].stop_ms);
        }
        if (in->t3) {
            for (size_t k = 0; k < n; k++)
                if (ev[k].kind == WEIR_TAG_PHOTON) assert_true(ev[k].micro >= 0);
        }
        free(ev);
        weir_tag_close(r);
    }
}

/* ---- round trips ---- */

static const char *tmpfile_path(const char *name)
{
    static char p[4][4096];
    static int slot;
    char *s = p[slot];
    slot = (slot + 1) % 4;
    snprintf(s, 4096, "%s/%s", tu_tmpdir("tags"), name);
    return s;
}

static void roundtrip(weir_tag_format f, const weir_tag_encode_opts *o, const weir_tag *ev,
                      size_t n, uint64_t want_wraps_min)
{
    const char *path = tmpfile_path("rt.bin");
    char err[512];
    int rc = weir_tag_encode(f, o, ev, n, path, err, sizeof err);
    if (rc) fail_msg("encode %s: %s", weir_tag_format_name(f), err);
    weir_tag_reader *r = open_ok(path, f);
    weir_tag *got;
    size_t m = decode_all(r, &got);
    if (m != n)
        fail_msg("%s variant 0x%x: %zu events back, %zu written", weir_tag_format_name(f),
                 o ? o->variant : 0, m, n);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ev[i], sizeof ev[i]) != 0)
            fail_msg("%s variant 0x%x: event %zu: (%lld, %d, %d, %u, %u) != (%lld, %d, %d, %u, %u)",
                     weir_tag_format_name(f), o ? o->variant : 0, i, (long long)got[i].time,
                     got[i].micro, got[i].channel, got[i].kind, got[i].bits, (long long)ev[i].time,
                     ev[i].micro, ev[i].channel, ev[i].kind, ev[i].bits);
    assert_true(weir_tag_reader_counts(r)->overflow_wraps >= want_wraps_min);
    assert_int_equal(weir_tag_reader_counts(r)->errors, 0);
    free(got);
    weir_tag_close(r);
}

#define EV(t, m, c, k, b)                                                                          \
    ((weir_tag){.time = (t), .micro = (m), .channel = (c), .kind = (k), .bits = (b)})

static void test_roundtrip_ptu(void **s)
{
    /* HydraHarp-style T2 (1 ps): photons, a sync, markers with several
     * bits, gaps of many wraps (V2 counts) */
    weir_tag t2[] = {
        EV(5, -1, 0, WEIR_TAG_SYNC, 0),
        EV(7, -1, 1, WEIR_TAG_PHOTON, 0),
        EV(33554431, -1, 2, WEIR_TAG_PHOTON, 0),
        EV(33554432, -1, 4, WEIR_TAG_PHOTON, 0),
        EV(40000000, -1, 0, WEIR_TAG_MARKER, 5),
        EV(33554432LL * 1000 + 3, -1, 64, WEIR_TAG_PHOTON, 0),
        EV(33554432LL * 100000000 + 9, -1, 3, WEIR_TAG_MARKER, 8),
        EV(33554432LL * 100000000 + 9, -1, 1, WEIR_TAG_PHOTON, 0),
    };
    static const uint32_t hht2[] = {0x00010204, 0x01010204, 0x00010205, 0x00010206, 0x00010207};
    for (size_t k = 0; k < 5; k++) {
        weir_tag_encode_opts o = {.variant = hht2[k], .resolution_s = 1e-12};
        roundtrip(WEIR_TAGFMT_PTU, &o, t2, sizeof t2 / sizeof t2[0], 1000);
    }
    /* a non-integer resolution: 0.5 ps ticks keep half picoseconds exact */
    weir_tag half[] = {EV(3, -1, 1, WEIR_TAG_PHOTON, 0),
                       EV(33554432LL * 7, -1, 2, WEIR_TAG_PHOTON, 0)};
    weir_tag_encode_opts oh = {.variant = 0x01010204, .resolution_s = 2e-12};
    half[0].time = 4;
    roundtrip(WEIR_TAGFMT_PTU, &oh, half, 2, 1);
    /* T3: sync 12.5 ns, micro 16 ps; photons and markers, overflow crossings */
    weir_tag_encode_opts o3 = {
        .variant = 0x01010304, .resolution_s = 16e-12, .sync_period_s = 12.5e-9};
    weir_tag t3[] = {
        EV(12500 * 3 + 16 * 7, 7, 0, WEIR_TAG_PHOTON, 0),
        EV(12500 * 1023 + 16 * 32767, 32767, 5, WEIR_TAG_PHOTON, 0),
        EV(12500LL * 1024, -1, 0, WEIR_TAG_MARKER, 3),
        EV(12500LL * 1024 * 5000 + 16, 1, 63, WEIR_TAG_PHOTON, 0),
        EV(12500LL * 1024 * 5001, 0, 2, WEIR_TAG_PHOTON, 0),
    };
    static const uint32_t hht3[] = {0x00010304, 0x01010304, 0x00010305, 0x00010306, 0x00010307};
    for (size_t k = 0; k < 5; k++) {
        o3.variant = hht3[k];
        roundtrip(WEIR_TAGFMT_PTU, &o3, t3, sizeof t3 / sizeof t3[0], 5000);
    }
    /* PicoHarp T2 (4 ps): channel 0 is the sync input; markers lose their
     * low 4 time bits, so marker times are multiples of 16 ticks */
    weir_tag pt2[] = {
        EV(4, -1, 0, WEIR_TAG_SYNC, 0),
        EV(8, -1, 4, WEIR_TAG_PHOTON, 0),
        EV(64 * 4, -1, 0, WEIR_TAG_MARKER, 1),
        EV(210698240LL * 4 * 3 + 40, -1, 2, WEIR_TAG_PHOTON, 0),
        EV(210698240LL * 4 * 3 + 160 * 4, -1, 2, WEIR_TAG_MARKER, 12),
    };
    weir_tag_encode_opts op2 = {.variant = 0x00010203, .resolution_s = 4e-12};
    roundtrip(WEIR_TAGFMT_PTU, &op2, pt2, sizeof pt2 / sizeof pt2[0], 3);
    /* PicoHarp T3: sync 100 ns, micro 4 ps */
    weir_tag pt3[] = {
        EV(100000 * 2 + 4 * 4095, 4095, 1, WEIR_TAG_PHOTON, 0),
        EV(100000LL * 65536 * 2, -1, 2, WEIR_TAG_MARKER, 4),
        EV(100000LL * 65536 * 2 + 100000 + 4, 1, 4, WEIR_TAG_PHOTON, 0),
    };
    weir_tag_encode_opts op3 = {
        .variant = 0x00010303, .resolution_s = 4e-12, .sync_period_s = 100e-9};
    roundtrip(WEIR_TAGFMT_PTU, &op3, pt3, sizeof pt3 / sizeof pt3[0], 2);

    /* the encoder's header carries every tag type: read them back */
    const char *path = tmpfile_path("hdr.ptu");
    char err[256];
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, NULL, t2, 2, path, err, sizeof err), 0);
    weir_tag_reader *r = open_ok(path, WEIR_TAGFMT_AUTO);
    const weir_tag_info *in = weir_tag_reader_info(r);
    assert_string_equal(in->format_name, "PicoQuant PTU HydraHarp V2 T2");
    int seen = 0;
    for (size_t i = 0; i < in->ntags; i++) {
        const weir_tag_header_tag *t = &in->tags[i];
        if (!strcmp(t->name, "File_Comment")) {
            assert_string_equal((const char *)t->data, "weir\xce\xb5");
            seen++;
        } else if (!strcmp(t->name, "Weir_FloatArray")) {
            assert_int_equal(t->type, WEIR_TAGV_FLOAT_ARRAY);
            assert_int_equal(t->len, 24);
            double d;
            memcpy(&d, (const uint8_t *)t->data + 8, 8);
            assert_true(d == -2.25);
            seen++;
        } else if (!strcmp(t->name, "Weir_Blob")) {
            assert_int_equal(t->type, WEIR_TAGV_BLOB);
            assert_int_equal(t->len, 8); /* padded to 8 */
            seen++;
        } else if (!strcmp(t->name, "Weir_Color")) {
            assert_int_equal(t->type, WEIR_TAGV_COLOR);
            assert_int_equal(t->i, 0xFF8000);
            seen++;
        } else if (!strcmp(t->name, "TTResult_MDescWarningFlags")) {
            assert_int_equal(t->type, WEIR_TAGV_BITSET);
            seen++;
        }
    }
    assert_int_equal(seen, 5);
    weir_tag_close(r);
}

static void test_roundtrip_others(void **s)
{
    weir_tag sw[] = {EV(-5, -1, -3, WEIR_TAG_PHOTON, 0), EV(10, -1, 1, WEIR_TAG_PHOTON, 0),
                     EV(1LL << 50, -1, 18, WEIR_TAG_PHOTON, 0)};
    roundtrip(WEIR_TAGFMT_SWABIAN, NULL, sw, 3, 0);
    weir_tag qt[] = {EV(260000000000000000LL, -1, 1, WEIR_TAG_PHOTON, 0),
                     EV(260000000000000100LL, -1, 5, WEIR_TAG_PHOTON, 0),
                     EV(260000000000000050LL, -1, 104, WEIR_TAG_PHOTON, 0)};
    roundtrip(WEIR_TAGFMT_QUTAG, NULL, qt, 3, 0);
    roundtrip(WEIR_TAGFMT_QUTAG_RAW, NULL, qt, 3, 0);
    /* compressed: 37-bit wraps, and a small backward step across a wrap */
    int64_t W = 1LL << 37;
    weir_tag qc[] = {
        EV(5, -1, 1, WEIR_TAG_PHOTON, 0),           EV(W / 2 - 100, -1, 2, WEIR_TAG_PHOTON, 0),
        EV(W - 150, -1, 3, WEIR_TAG_PHOTON, 0),     EV(W + 3, -1, 4, WEIR_TAG_PHOTON, 0),
        EV(W - 2, -1, 7, WEIR_TAG_PHOTON, 0),       EV(W + W / 2 - 50, -1, 0, WEIR_TAG_PHOTON, 0),
        EV(2 * W - 100, -1, 5, WEIR_TAG_PHOTON, 0), EV(2 * W + 7, -1, 6, WEIR_TAG_PHOTON, 0)};
    /* a gap of 2^36 or more cannot be carried by the format */
    char err[256];
    weir_tag gap[] = {EV(5, -1, 1, WEIR_TAG_PHOTON, 0), EV(5 + W / 2, -1, 1, WEIR_TAG_PHOTON, 0)};
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_QUTAG_COMPRESSED, NULL, gap, 2,
                                     tmpfile_path("qc.bin"), err, sizeof err),
                     WEIR_ERANGE);
    roundtrip(WEIR_TAGFMT_QUTAG_COMPRESSED, NULL, qc, 8, 2);
    /* B&H: photons (micro inverted on disk), one MTOV on a photon, a
     * multiple overflow, markers; no .set, so time = macro time */
    weir_tag bh[] = {EV(9500 * 5, 0, 0, WEIR_TAG_PHOTON, 0),
                     EV(9500 * 4100, 4095, 3, WEIR_TAG_PHOTON, 0),
                     EV(9500LL * 4096 * 1000 + 9500, 7, 15, WEIR_TAG_PHOTON, 0),
                     EV(9500LL * 4096 * 1000 + 9500 * 2, -1, 1, WEIR_TAG_MARKER, 6)};
    roundtrip(WEIR_TAGFMT_BH_SPC, NULL, bh, 4, 1000);
    weir_tag et[] = {EV(50, -1, 1, WEIR_TAG_PHOTON, 0), EV(327680010, -1, 0, WEIR_TAG_PHOTON, 0),
                     EV(655360020, -1, 1, WEIR_TAG_PHOTON, 0),
                     EV(655360000, -1, 0, WEIR_TAG_PHOTON, 0)};
    roundtrip(WEIR_TAGFMT_ET_A033, NULL, et, 4, 0);
}

/* hand-made records for the record types encoders do not write */
static void test_record_types(void **s)
{
    /* Swabian: TimeTag, Error, OverflowBegin, OverflowEnd, MissedEvents */
    uint8_t sw[5 * 16] = {0};
    for (int i = 0; i < 5; i++) {
        sw[16 * i] = (uint8_t)i;
        sw[16 * i + 4] = 2;
        sw[16 * i + 8] = (uint8_t)(10 * i);
    }
    weir_tag_reader *r;
    char err[256];
    assert_int_equal(
        weir_tag_open_mem(sw, sizeof sw, WEIR_TAGFMT_SWABIAN, "sw", &r, err, sizeof err), 0);
    weir_tag ev[8];
    assert_int_equal(weir_tag_read(r, ev, 8, err, sizeof err), 1);
    assert_int_equal(ev[0].channel, 2);
    const weir_tag_counts *c = weir_tag_reader_counts(r);
    assert_int_equal(c->photons, 1);
    assert_int_equal(c->errors, 2);
    assert_int_equal(c->overflows, 2);
    weir_tag_close(r);
    /* ET A033, ETA's own examples (eta.md §3.5) */
    int32_t et[] = {-1, 10, 2, 20, 0, 50, 5, 0};
    assert_int_equal(
        weir_tag_open_mem(et, sizeof et, WEIR_TAGFMT_ET_A033, "et", &r, err, sizeof err), 0);
    assert_int_equal(weir_tag_read(r, ev, 8, err, sizeof err), 3);
    assert_int_equal(ev[0].channel, 0);
    assert_int_equal(ev[0].time, 327680010);
    assert_int_equal(ev[1].channel, 1);
    assert_int_equal(ev[1].time, 655360020);
    assert_int_equal(ev[2].time, 50);
    assert_int_equal(weir_tag_reader_counts(r)->errors, 1);
    weir_tag_close(r);
    /* B&H: invalid photon (error), marker without bits (error) */
    uint32_t bh[] = {0x8000005F, 0x80000123, 0x90000010, 0x00000001};
    assert_int_equal(
        weir_tag_open_mem(bh, sizeof bh, WEIR_TAGFMT_BH_SPC, "bh", &r, err, sizeof err), 0);
    assert_int_equal(weir_tag_read(r, ev, 8, err, sizeof err), 1);
    assert_int_equal(ev[0].time, 9500);
    assert_int_equal(ev[0].micro, 4095);
    assert_int_equal(weir_tag_reader_counts(r)->errors, 2);
    weir_tag_close(r);
}

/* ---- clips ---- */

static weir_tag *synth(size_t n)
{
    weir_tag *ev = malloc(n * sizeof *ev);
    uint64_t x = 12345;
    int64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        t += (int64_t)(x >> 40) % 20000000; /* gaps up to 20 µs: many overflows */
        ev[i] = EV(t, -1, (int16_t)(1 + (x >> 20) % 2), WEIR_TAG_PHOTON, 0);
    }
    return ev;
}

static void test_clips(void **s)
{
    size_t N = 20000;
    weir_tag *ev = synth(N);
    const char *path = tmpfile_path("clip.ptu");
    char err[256];
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, NULL, ev, N, path, err, sizeof err), 0);
    weir_tag_reader *r = open_ok(path, 0);
    const weir_tag_info *in = weir_tag_reader_info(r);
    uint64_t nrec = in->nrecords;
    assert_true(nrec > N); /* overflow records too */
    weir_tag *all;
    size_t nall = decode_all(r, &all);
    assert_int_equal(nall, N);
    assert_memory_equal(all, ev, N * sizeof *ev);

    /* N records from the start, then the next clip continues */
    weir_tag_clip_opts o = {.read_events = 1000, .seek_event = 0};
    weir_tag *a, *b;
    size_t na, nb;
    assert_int_equal(weir_tag_clip_read(r, &o, &a, &na, err, sizeof err), 0);
    o.seek_event = -1;
    assert_int_equal(weir_tag_clip_read(r, &o, &b, &nb, err, sizeof err), 0);
    assert_true(na > 0 && nb > 0 && na <= 1000 && nb <= 1000);
    assert_memory_equal(a, all, na * sizeof *a);
    assert_memory_equal(b, all + na, nb * sizeof *b);
    free(a), free(b);
    /* seek: a clip starting at record 5000 equals the same records decoded from 0 */
    weir_tag_clip c;
    o = (weir_tag_clip_opts){.read_events = 0, .seek_event = 5000};
    assert_int_equal(weir_tag_clip_next(r, &o, &c, err, sizeof err), 0);
    assert_int_equal(c.first, 5000);
    assert_int_equal(c.end, nrec); /* 0 = the rest */
    weir_tag *rest;
    size_t nrest;
    o.seek_event = 5000;
    assert_int_equal(weir_tag_clip_read(r, &o, &rest, &nrest, err, sizeof err), 0);
    assert_memory_equal(rest, all + (nall - nrest), nrest * sizeof *rest);
    free(rest);
    /* negative: the rest minus 100 records */
    o = (weir_tag_clip_opts){.read_events = -100, .seek_event = 5000};
    assert_int_equal(weir_tag_clip_next(r, &o, &c, err, sizeof err), 0);
    assert_int_equal(c.end, nrec - 100);
    /* windows by index: windows 3 and 1 of 2000 records */
    uint64_t keep[] = {3, 1};
    weir_tag_windows w = {.start = 0, .read_events = 2000, .keep = keep, .nkeep = 2};
    assert_int_equal(weir_tag_windows_next(r, &w, &c, err, sizeof err), 1);
    assert_int_equal(c.first, 6000);
    assert_int_equal(c.end, 8000);
    weir_tag tmp[2000];
    long k = weir_tag_read(r, tmp, 2000, err, sizeof err);
    assert_true(k > 0);
    assert_int_equal(weir_tag_tell(r).record, 8000);
    assert_int_equal(weir_tag_windows_next(r, &w, &c, err, sizeof err), 1);
    assert_int_equal(c.first, 2000);
    assert_int_equal(weir_tag_windows_next(r, &w, &c, err, sizeof err), 0);
    /* time windows */
    weir_tag *copy = malloc(N * sizeof *copy);
    memcpy(copy, all, N * sizeof *copy);
    int64_t t0[] = {all[10].time, all[500].time}, t1[] = {all[20].time, all[510].time + 1};
    size_t kept = weir_tag_keep_time_windows(copy, N, t0, t1, 2);
    size_t want = 0;
    for (size_t i = 0; i < N; i++)
        if ((all[i].time >= t0[0] && all[i].time < t1[0]) ||
            (all[i].time >= t0[1] && all[i].time < t1[1]))
            assert_memory_equal(&copy[want++], &all[i], sizeof all[i]);
    assert_int_equal(kept, want);
    free(copy);
    /* sections: their concatenation is the whole file, bit for bit */
    for (unsigned K = 1; K <= 7; K += 3) {
        weir_tag_pos pos[7];
        uint64_t ends[7];
        assert_int_equal(weir_tag_sections(r, 0, UINT64_MAX, K, pos, ends, err, sizeof err), 0);
        assert_int_equal(ends[K - 1], nrec);
        size_t got = 0;
        weir_tag *cat = malloc(N * sizeof *cat);
        for (unsigned i = 0; i < K; i++) {
            weir_tag_reader *ri = open_ok(path, 0); /* one reader per section */
            assert_int_equal(weir_tag_seek(ri, &pos[i]), 0);
            weir_tag_set_end(ri, ends[i]);
            for (;;) {
                long m = weir_tag_read(ri, cat + got, N - got, err, sizeof err);
                assert_true(m >= 0);
                if (!m) break;
                got += (size_t)m;
            }
            assert_int_equal(weir_tag_tell(ri).record, ends[i]);
            weir_tag_close(ri);
        }
        assert_int_equal(got, N);
        assert_memory_equal(cat, all, N * sizeof *cat);
        free(cat);
    }
    free(all);
    free(ev);
    weir_tag_close(r);
}

/* ---- a growing file, followed ---- */

typedef struct {
    const char *path;
    const uint8_t *recs;
    size_t nbytes;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go; /* the reader asks for the next chunk */
} appender;

static void *append_thread(void *arg)
{
    appender *a = arg;
    size_t off = 0;
    while (off < a->nbytes) {
        pthread_mutex_lock(&a->mu);
        while (!a->go)
            pthread_cond_wait(&a->cv, &a->mu);
        a->go = 0;
        pthread_mutex_unlock(&a->mu);
        size_t chunk = a->nbytes - off < 1002 ? a->nbytes - off : 1002; /* not whole records */
        FILE *f = fopen(a->path, "ab");
        fwrite(a->recs + off, 1, chunk, f);
        fclose(f);
        off += chunk;
    }
    return NULL;
}

static void test_follow_growing(void **s)
{
    size_t N = 3000;
    weir_tag *ev = synth(N);
    const char *full = tmpfile_path("full.ptu");
    char err[256];
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, NULL, ev, N, full, err, sizeof err), 0);
    size_t flen;
    uint8_t *bytes = tu_read_file(full, &flen);
    weir_tag_reader *r0 = open_ok(full, 0);
    uint64_t hdr = weir_tag_reader_info(r0)->header_bytes;
    weir_tag_close(r0);
    /* the growing file starts with the header only */
    const char *grow = tmpfile_path("grow.ptu");
    FILE *f = fopen(grow, "wb");
    fwrite(bytes, 1, hdr, f);
    fclose(f);
    weir_tag_reader *r = open_ok(grow, 0);
    assert_int_equal(weir_tag_reader_info(r)->nrecords, 0);
    appender a = {.path = grow,
                  .recs = bytes + hdr,
                  .nbytes = flen - hdr,
                  .mu = PTHREAD_MUTEX_INITIALIZER,
                  .cv = PTHREAD_COND_INITIALIZER,
                  .go = 0};
    pthread_t th;
    pthread_create(&th, NULL, append_thread, &a);
    weir_tag *got = malloc(N * sizeof *got);
    size_t n = 0;
    weir_tag_clip_opts o = {.read_events = 0, .seek_event = -1, .wait_timeout_s = 30, .poll_ms = 1};
    int rounds = 0;
    while (n < N && rounds < 100000) {
        /* ask for more, then wait for it: the clip must see the file grow */
        pthread_mutex_lock(&a.mu);
        a.go = 1;
        pthread_cond_signal(&a.cv);
        pthread_mutex_unlock(&a.mu);
        weir_tag_clip c;
        assert_int_equal(weir_tag_clip_next(r, &o, &c, err, sizeof err), 0);
        assert_true(c.end > c.first); /* the timeout is long: something arrived */
        for (;;) {
            long k = weir_tag_read(r, got + n, N - n, err, sizeof err);
            assert_true(k >= 0);
            if (!k) break;
            n += (size_t)k;
        }
        rounds++;
    }
    pthread_join(th, NULL);
    assert_int_equal(n, N);
    assert_memory_equal(got, ev, N * sizeof *ev);
    assert_true(rounds > 5); /* it really followed, chunk by chunk */
    /* nothing more comes: a short timeout returns an empty clip */
    o.wait_timeout_s = 0.05;
    weir_tag_clip c;
    assert_int_equal(weir_tag_clip_next(r, &o, &c, err, sizeof err), 0);
    assert_int_equal(c.first, c.end);
    free(got);
    free(bytes);
    free(ev);
    weir_tag_close(r);
}

/* ---- errors ---- */

static void test_errors(void **s)
{
    weir_tag_reader *r = NULL;
    char err[512];
    /* garbage of unknown format */
    static const uint8_t junk[64] = {1, 2, 3};
    assert_int_equal(weir_tag_open_mem(junk, sizeof junk, 0, "junk.bin", &r, err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "junk.bin"));
    assert_non_null(strstr(err, "offset 0"));
    /* a PTU cut inside its header */
    size_t len;
    uint8_t *b = tu_read_file(tu_shared("timetag/eta/200204_HH400_T2_320MHz_HBT.timeres"), &len);
    assert_int_equal(weir_tag_open_mem(b, 1000, 0, "cut.ptu", &r, err, sizeof err),
                     WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "cut.ptu"));
    assert_non_null(strstr(err, "Header_End"));
    /* a tag claiming more payload than the file has */
    uint8_t *bad = malloc(len);
    memcpy(bad, b, len);
    /* File_GUID at 16 is an AnsiString: its length at 16 + 40 */
    bad[16 + 40 + 5] = 0x7F;
    assert_int_equal(weir_tag_open_mem(bad, len, 0, "bad.ptu", &r, err, sizeof err),
                     WEIR_ETRUNCATED);
    assert_non_null(strstr(err, "offset 16"));
    assert_non_null(strstr(err, "File_GUID"));
    /* an unknown tag type */
    memcpy(bad, b, len);
    bad[16 + 36] = 0x77;
    assert_int_equal(weir_tag_open_mem(bad, len, 0, "bad.ptu", &r, err, sizeof err), WEIR_EFORMAT);
    assert_non_null(strstr(err, "unknown type"));
    /* a trailing partial record is not a record */
    assert_int_equal(weir_tag_open_mem(b, len - 2, 0, "part.ptu", &r, err, sizeof err), 0);
    assert_int_equal(weir_tag_reader_info(r)->nrecords, (len - 4392) / 4 - 1);
    weir_tag_close(r);
    free(bad);
    free(b);
    /* a missing file */
    assert_int_equal(weir_tag_open("/nonexistent/x.ptu", 0, &r, err, sizeof err), WEIR_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.ptu"));
    /* quTAG header too short, B&H header frame with no clock */
    static const uint8_t qt[12] = {0x87, 0xB3, 0x91, 0xFA};
    assert_int_equal(weir_tag_open_mem(qt, sizeof qt, 0, "q.qutag", &r, err, sizeof err),
                     WEIR_ETRUNCATED);
    static const uint8_t bh[8] = {0, 0, 0, 0x80};
    assert_int_equal(
        weir_tag_open_mem(bh, sizeof bh, WEIR_TAGFMT_BH_SPC, "b.spc", &r, err, sizeof err),
        WEIR_EFORMAT);
    assert_non_null(strstr(err, "clock"));
    /* format names */
    weir_tag_format f;
    assert_int_equal(weir_tag_format_parse("qutag-compressed", &f), 0);
    assert_int_equal(f, WEIR_TAGFMT_QUTAG_COMPRESSED);
    assert_int_equal(weir_tag_format_parse("nope", &f), WEIR_EINVAL);
}

/* ---- the CLI ---- */

static void test_cli(void **s)
{
    const char *dir = tu_tmpdir("tags_cli");
    const char *f = tu_shared("timetag/picoquant/hydraharp_v10_t3.ptu");
    assert_int_equal(tu_run(dir, "%s tags info '%s'", tu_build("weir"), f), 0);
    char *out = tu_output();
    assert_non_null(strstr(out, "HydraHarp V1 T3"));
    assert_non_null(strstr(out, "SymPhoTime 64"));
    assert_non_null(strstr(out, "photons"));
    free(out);
    assert_int_equal(
        tu_run(dir, "%s tags export '%s' --npy-dir '%s/npy'", tu_build("weir"), f, dir), 0);
    char p[4200];
    weir_array ch, tm, mi, kd;
    snprintf(p, sizeof p, "%s/npy/channel.npy", dir);
    assert_int_equal(weir_npy_read(p, &ch, NULL, 0), 0);
    snprintf(p, sizeof p, "%s/npy/time.npy", dir);
    assert_int_equal(weir_npy_read(p, &tm, NULL, 0), 0);
    snprintf(p, sizeof p, "%s/npy/micro.npy", dir);
    assert_int_equal(weir_npy_read(p, &mi, NULL, 0), 0);
    snprintf(p, sizeof p, "%s/npy/kind.npy", dir);
    assert_int_equal(weir_npy_read(p, &kd, NULL, 0), 0);
    assert_int_equal(ch.dtype.kind, WEIR_DT_I16);
    assert_int_equal(tm.dtype.kind, WEIR_DT_I64);
    assert_int_equal(mi.dtype.kind, WEIR_DT_I32);
    assert_int_equal(kd.dtype.kind, WEIR_DT_U8);
    weir_array rc = npy("timetag/picoquant/reference/hydraharp_v10_t3.ptu", "channel.npy");
    size_t n = weir_array_nelem(&kd), j = 0;
    for (size_t i = 0; i < n; i++) {
        if (weir_array_get_f64(&kd, i) != 0) continue;
        assert_int_equal(geti(&ch, i), geti(&rc, j));
        j++;
    }
    assert_int_equal(j, weir_array_nelem(&rc));
    weir_array_release(&ch), weir_array_release(&tm), weir_array_release(&mi);
    weir_array_release(&kd), weir_array_release(&rc);
    /* errors name the file */
    assert_int_equal(tu_run(dir, "%s tags info '%s/none.ptu'", tu_build("weir"), dir), 1);
    out = tu_output();
    assert_non_null(strstr(out, "none.ptu"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptu_eta_t2),
        cmocka_unit_test(test_ptu_eta_t3_320),
        cmocka_unit_test(test_ptu_eta_t3_80),
        cmocka_unit_test(test_ptu_pq_v30_t2),
        cmocka_unit_test(test_ptu_pq_v10_t3),
        cmocka_unit_test(test_ptu_exact_resolution),
        cmocka_unit_test(test_qutag_eta),
        cmocka_unit_test(test_bh_asc),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_roundtrip_ptu),
        cmocka_unit_test(test_roundtrip_others),
        cmocka_unit_test(test_record_types),
        cmocka_unit_test(test_clips),
        cmocka_unit_test(test_follow_growing),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
