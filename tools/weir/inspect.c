/* inspect.c — `weir inspect FILE`: what is in a capture.
 *
 * For an ingester dump: events, event-number range (and gaps/duplicates),
 * streams with their typ and packet counts, STINS message kinds, frame shapes,
 * dtypes and compressions. For a raw capture: messages and frames per
 * message, and the htype of JSON first frames. Anything malformed is listed
 * with its offset. --event N --stream S --npy OUT exports one decoded
 * (decompressed) STINS frame. */
#include "cli.h"

#include "weir/cbors.h"
#include "weir/error.h"
#include "weir/npy.h"
#include "weir/stins.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 32
#define MAXK 16

typedef struct {
    char name[64], typ[32];
    uint64_t packets, bytes, bad;
    struct {
        char desc[128];
        uint64_t n;
    } kinds[MAXK];
    size_t nkinds;
    char first_bad[256];
} stream_sum;

static void count_kind(stream_sum *s, const char *desc)
{
    for (size_t i = 0; i < s->nkinds; i++)
        if (!strcmp(s->kinds[i].desc, desc)) {
            s->kinds[i].n++;
            return;
        }
    size_t i = s->nkinds < MAXK ? s->nkinds++ : MAXK - 1;
    snprintf(s->kinds[i].desc, sizeof s->kinds[i].desc, "%s", i == MAXK - 1 ? "(other)" : desc);
    s->kinds[i].n++;
}

static void describe_stins(stream_sum *s, const weir_msg *m, uint64_t evn)
{
    weir_stins_packet p;
    char err[256], desc[128];
    if (weir_stins_parse(m, 0, &p, err, sizeof err)) {
        s->bad++;
        if (!s->first_bad[0])
            snprintf(s->first_bad, sizeof s->first_bad, "event %" PRIu64 ": %s", evn, err);
        count_kind(s, "(malformed)");
        return;
    }
    if (p.kind == WEIR_STINS_HEADER) {
        snprintf(desc, sizeof desc, "header (%zu extra part%s) filename \"%.60s\"", p.nextra,
                 p.nextra == 1 ? "" : "s", p.filename ? p.filename : "");
    } else if (p.kind == WEIR_STINS_IMAGE) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p.json_, "type");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(p.json_, "shape");
        char shape[64] = "";
        size_t o = 0;
        for (int i = 0; i < cJSON_GetArraySize(sh) && o < sizeof shape - 16; i++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%.0f", i ? "x" : "",
                                  cJSON_GetArrayItem(sh, i)->valuedouble);
        snprintf(desc, sizeof desc, "image %s %s %s", shape,
                 cJSON_IsString(t) ? t->valuestring : "?",
                 p.compression == WEIR_STINS_COMP_BSLZ4 ? "bslz4" : "none");
    } else {
        snprintf(desc, sizeof desc, "series_end");
    }
    count_kind(s, desc);
    weir_stins_clear(&p);
}

static void describe_json(stream_sum *s, const weir_msg *m)
{
    char desc[128];
    if (!m->nparts) {
        count_kind(s, "(no frames)");
        return;
    }
    cJSON *j =
        cJSON_ParseWithLength((const char *)weir_buf_data(m->parts[0]), weir_buf_size(m->parts[0]));
    const cJSON *ht = j ? cJSON_GetObjectItemCaseSensitive(j, "htype") : NULL;
    if (cJSON_IsString(ht))
        snprintf(desc, sizeof desc, "%zu frames, htype %s", m->nparts, ht->valuestring);
    else
        snprintf(desc, sizeof desc, "%zu frame%s%s", m->nparts, m->nparts == 1 ? "" : "s",
                 j ? ", JSON" : "");
    cJSON_Delete(j);
    count_kind(s, desc);
}

static stream_sum *find_stream(stream_sum *ss, size_t *n, const char *name, const char *typ)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(ss[i].name, name)) return &ss[i];
    if (*n == MAXS) return &ss[MAXS - 1];
    stream_sum *s = &ss[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->typ, sizeof s->typ, "%s", typ);
    return s;
}

static int export_npy(weir_event *ev, const char *stream, const char *out)
{
    const weir_stream_packet *sp = stream ? weir_event_stream(ev, stream) : &ev->streams[0];
    if (!sp || (!stream && !ev->nstreams)) {
        fprintf(stderr, "weir inspect: event %" PRIu64 " has no stream '%s'\n", ev->number,
                stream ? stream : "");
        return 1;
    }
    weir_stins_packet p;
    char err[256];
    int rc = weir_stins_parse(&sp->msg, 1, &p, err, sizeof err);
    if (rc) {
        fprintf(stderr, "weir inspect: event %" PRIu64 " stream '%s': %s\n", ev->number, sp->name,
                err);
        return 1;
    }
    if (p.kind != WEIR_STINS_IMAGE) {
        fprintf(stderr, "weir inspect: event %" PRIu64 " stream '%s' is not an image\n", ev->number,
                sp->name);
        weir_stins_clear(&p);
        return 1;
    }
    rc = weir_npy_write(out, &p.data);
    if (rc)
        fprintf(stderr, "weir inspect: cannot write %s: %s\n", out, weir_strerror(rc));
    else
        printf("wrote %s: event %" PRIu64 " stream '%s' frame %" PRId64 ", %s %zux%zu\n", out,
               ev->number, sp->name, p.frame, weir_dtype_name(p.data.dtype.kind), p.data.shape[0],
               p.data.ndim > 1 ? p.data.shape[1] : 1);
    weir_stins_clear(&p);
    return rc ? 1 : 0;
}

int cmd_inspect(int argc, char **argv)
{
    const char *file = NULL, *stream = NULL, *npy = NULL;
    uint64_t want = 0;
    int have_event = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf(
                "usage: weir inspect FILE [--event N [--stream S] --npy OUT.npy]\n\n"
                "Summarises a .cbors capture (ingester dump or raw capture): events, streams,\n"
                "stream types, frame shapes and dtypes, event-number range, and anything\n"
                "malformed with its offset. With --event/--npy, exports one decoded STINS frame\n"
                "(decompressed) as .npy; --stream defaults to the event's first stream.\n");
            return 0;
        } else if (!strcmp(argv[i], "--event") && i + 1 < argc) {
            if (cli_parse_u64("--event", argv[++i], &want)) return 2;
            have_event = 1;
        } else if (!strcmp(argv[i], "--stream") && i + 1 < argc) {
            stream = argv[++i];
        } else if (!strcmp(argv[i], "--npy") && i + 1 < argc) {
            npy = argv[++i];
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            fprintf(stderr, "weir inspect: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!file || (npy && !have_event) || (have_event && !npy)) {
        fprintf(stderr, "usage: weir inspect FILE [--event N [--stream S] --npy OUT.npy]\n");
        return 2;
    }
    char err[512];
    weir_cbors_reader *r;
    if (weir_cbors_open(file, &r, err, sizeof err)) {
        fprintf(stderr, "weir inspect: %s\n", err);
        return 1;
    }
    weir_cbors_kind kind = weir_cbors_kind_of(r);
    stream_sum *ss = calloc(MAXS, sizeof *ss);
    size_t ns = 0;
    uint64_t items = 0, lo = UINT64_MAX, hi = 0, unordered = 0, dups = 0, prev = 0;
    int rc = 0, found = 0, bad = 0;
    for (;;) {
        if (kind == WEIR_CBORS_RAW) {
            weir_msg m;
            weir_msg_init(&m);
            int eof = 0;
            int e = weir_cbors_next_raw(r, &m, &eof);
            if (e) {
                bad = 1;
                break;
            }
            if (eof) break;
            describe_json(find_stream(ss, &ns, "(raw messages)", "-"), &m);
            ss[0].packets++;
            ss[0].bytes += weir_msg_nbytes(&m);
            items++;
            weir_msg_clear(&m);
            continue;
        }
        weir_event *ev = NULL;
        int e = weir_cbors_next_event(r, &ev);
        if (e) {
            bad = 1;
            break;
        }
        if (!ev) break;
        if (items && ev->number < prev) unordered++;
        if (items && ev->number == prev) dups++;
        prev = ev->number;
        if (ev->number < lo) lo = ev->number;
        if (ev->number > hi) hi = ev->number;
        items++;
        for (size_t i = 0; i < ev->nstreams; i++) {
            stream_sum *s = find_stream(ss, &ns, ev->streams[i].name, ev->streams[i].typ);
            s->packets++;
            s->bytes += weir_msg_nbytes(&ev->streams[i].msg);
            if (!strcmp(ev->streams[i].typ, "STINS"))
                describe_stins(s, &ev->streams[i].msg, ev->number);
            else
                describe_json(s, &ev->streams[i].msg);
        }
        if (npy && !found && ev->number == want) {
            found = 1;
            rc = export_npy(ev, stream, npy);
        }
        weir_event_free(ev);
    }
    printf("%s: %s, %" PRIu64 " bytes\n", file,
           kind == WEIR_CBORS_DUMP  ? "ingester dump"
           : kind == WEIR_CBORS_RAW ? "raw capture"
                                    : "empty",
           weir_cbors_size(r));
    if (kind == WEIR_CBORS_RAW)
        printf("  messages: %" PRIu64 "\n", items);
    else if (items)
        printf("  events: %" PRIu64 ", numbers %" PRIu64 "..%" PRIu64 "%s%s\n", items, lo, hi,
               unordered ? " (not in order)" : "",
               dups ? " (repeated numbers: appended scans)" : "");
    for (size_t i = 0; i < ns; i++) {
        printf("  stream %-20s typ %-12s %" PRIu64 " packets, %" PRIu64 " bytes\n", ss[i].name,
               ss[i].typ, ss[i].packets, ss[i].bytes);
        for (size_t k = 0; k < ss[i].nkinds; k++)
            printf("      %6" PRIu64 " x %s\n", ss[i].kinds[k].n, ss[i].kinds[k].desc);
        if (ss[i].first_bad[0]) printf("      first malformed: %s\n", ss[i].first_bad);
    }
    if (bad) {
        printf("  MALFORMED: %s\n", weir_cbors_error(r));
        rc = rc ? rc : 3;
    }
    if (npy && !found) {
        fprintf(stderr, "weir inspect: no event %" PRIu64 " in %s\n", want, file);
        rc = 1;
    }
    free(ss);
    weir_cbors_close(r);
    return rc;
}
