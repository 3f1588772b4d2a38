/* tags_instr.c — `weir tags corr|lifetime|count|recipe`: the time-tag
 * instruments (include/weir/tag_instr.h) on files, serially or over
 * sections in parallel (-j N), with a progress bar on stderr, HDF5 and .npy
 * output carrying the axes, and task files.
 *
 * A task file (--save-state / --resume) holds "WEIRTS" + version, the
 * reader position (record, overflow base, format state) and every
 * instrument's own state blob, so a later run on the same (or a grown)
 * file continues exactly where the saved one stopped. It is written before
 * the instruments are finished for output, so pending events stay pending. */
#include "cli.h"

#include "weir/array.h"
#include "weir/error.h"
#include "weir/h5.h"
#include "weir/npy.h"
#include "weir/tag_instr.h"
#include "weir/tags.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXI 16

typedef struct {
    const char *file, *out_h5, *npy_dir, *save_state, *resume, *recipe;
    weir_tag_format fmt;
    unsigned threads;
    int follow, progress, eta_compat;
    double timeout_s;
    weir_tinstr_config cfg[MAXI];
    size_t ncfg;
    /* raw options, turned into cfg per verb */
    int start, stop, sync, channel;
    int have_start, have_stop, have_sync, have_channel;
    int64_t binwidth, lo, window;
    int have_binwidth, have_lo, have_bins, have_window;
    uint64_t bins;
    weir_tinstr_delay delays[WEIR_TI_MAXCH];
    unsigned ndelays;
    int16_t chans[WEIR_TI_MAXCH], coinc[WEIR_TI_MAXCH];
    unsigned nchans, ncoinc;
    uint32_t eta_clock;
    int gate_open, gate_close, have_gate;
} opts;

static volatile sig_atomic_t interrupted;
static void on_sigint(int s)
{
    (void)s;
    interrupted = 1;
}

static void usage(FILE *f, const char *verb)
{
    fprintf(f,
            "usage: weir tags %s FILE [options]\n\n"
            "corr:     --start CH --stop CH [--binwidth 16ps] [--bins 10000] [--lo T]\n"
            "          (default lo = -bins*binwidth/2: both directions; --lo 0: tau >= 0)\n"
            "lifetime: [--channel CH] [--sync CH (T2: delay after the last sync)]\n"
            "          [--binwidth N (T3: micro bins; T2: time)] [--bins N] [--lo V]\n"
            "count:    --channels 1,2 [--binwidth 1s] [--bins N]  (count-rate trace)\n"
            "          --coinc 1,2[,3..] --window T                (coincidences)\n"
            "recipe:   weir tags recipe FILE RECIPE.json\n\n"
            "common:   --format F        ptu, swabian, qutag, qutag-raw, bh, et-a033, legacy\n"
            "          -j, --threads N   sections in parallel (default 1)\n"
            "          --delay CH=T      add T to every event of channel CH (repeatable)\n"
            "          --gate OPEN,CLOSE count only between marker OPEN and marker CLOSE\n"
            "          --eta-compat      reproduce ETA bit for bit (corr; serial)\n"
            "          --eta-clock N     ETA's CLOCK start-ring size (default 100)\n"
            "          -o FILE.h5        results with axes as HDF5\n"
            "          --npy-dir DIR     results with axes as .npy\n"
            "          --follow [--timeout S]  keep reading a growing file (default 10 s idle)\n"
            "          --save-state F / --resume F   task files\n"
            "          --progress / --no-progress\n"
            "times take a unit: ps, ns, us, ms, s (bare numbers are ps)\n",
            verb);
}

static int parse_time_opt(const char *opt, const char *s, int64_t *ps)
{
    if (weir_tinstr_parse_time(s, ps)) {
        fprintf(stderr, "weir tags: %s: '%s' is not a time in whole ps (units ps ns us ms s)\n",
                opt, s);
        return -1;
    }
    return 0;
}

static int parse_int(const char *opt, const char *s, int *v)
{
    char *e = NULL;
    long x = strtol(s, &e, 10);
    if (!*s || *e || x < -32768 || x > 32767) {
        fprintf(stderr, "weir tags: %s: '%s' is not a channel number\n", opt, s);
        return -1;
    }
    *v = (int)x;
    return 0;
}

static int parse_list(const char *opt, const char *s, int16_t *out, unsigned *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v;
        if (*n >= WEIR_TI_MAXCH || parse_int(opt, tok, &v)) return -1;
        out[(*n)++] = (int16_t)v;
    }
    return *n ? 0 : -1;
}

static int parse_args(const char *verb, int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->progress = isatty(2);
    o->timeout_s = 10;
    o->eta_clock = 100;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                                     \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "weir tags %s: %s needs a value\n", verb, a);                          \
            return -1;                                                                             \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, verb);
            return 1;
        } else if (!strcmp(a, "--start")) {
            NEED();
            if (parse_int(a, v, &o->start)) return -1;
            o->have_start = 1;
        } else if (!strcmp(a, "--stop")) {
            NEED();
            if (parse_int(a, v, &o->stop)) return -1;
            o->have_stop = 1;
        } else if (!strcmp(a, "--sync")) {
            NEED();
            if (parse_int(a, v, &o->sync)) return -1;
            o->have_sync = 1;
        } else if (!strcmp(a, "--channel")) {
            NEED();
            if (parse_int(a, v, &o->channel)) return -1;
            o->have_channel = 1;
        } else if (!strcmp(a, "--channels")) {
            NEED();
            if (parse_list(a, v, o->chans, &o->nchans)) return -1;
        } else if (!strcmp(a, "--coinc")) {
            NEED();
            if (parse_list(a, v, o->coinc, &o->ncoinc)) return -1;
        } else if (!strcmp(a, "--binwidth")) {
            NEED();
            if (parse_time_opt(a, v, &o->binwidth)) return -1;
            o->have_binwidth = 1;
        } else if (!strcmp(a, "--lo")) {
            NEED();
            if (parse_time_opt(a, v, &o->lo)) return -1;
            o->have_lo = 1;
        } else if (!strcmp(a, "--window")) {
            NEED();
            if (parse_time_opt(a, v, &o->window)) return -1;
            o->have_window = 1;
        } else if (!strcmp(a, "--bins")) {
            NEED();
            if (cli_parse_u64(a, v, &o->bins) || o->bins > UINT32_MAX) return -1;
            o->have_bins = 1;
        } else if (!strcmp(a, "--delay")) {
            NEED();
            const char *eq = strchr(v, '=');
            char ch[16];
            int c;
            if (!eq || (size_t)(eq - v) >= sizeof ch || o->ndelays >= WEIR_TI_MAXCH) {
                fprintf(stderr, "weir tags %s: --delay wants CH=TIME\n", verb);
                return -1;
            }
            memcpy(ch, v, (size_t)(eq - v));
            ch[eq - v] = 0;
            if (parse_int(a, ch, &c)) return -1;
            o->delays[o->ndelays].channel = (int16_t)c;
            if (parse_time_opt(a, eq + 1, &o->delays[o->ndelays].ps)) return -1;
            o->ndelays++;
        } else if (!strcmp(a, "--gate")) {
            NEED();
            int16_t g[WEIR_TI_MAXCH];
            unsigned ng;
            if (parse_list(a, v, g, &ng) || ng != 2) {
                fprintf(stderr, "weir tags %s: --gate wants OPEN,CLOSE marker channels\n", verb);
                return -1;
            }
            o->gate_open = g[0];
            o->gate_close = g[1];
            o->have_gate = 1;
        } else if (!strcmp(a, "--format")) {
            NEED();
            if (weir_tag_format_parse(v, &o->fmt)) {
                fprintf(stderr, "weir tags %s: unknown format '%s'\n", verb, v);
                return -1;
            }
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            NEED();
            uint64_t j;
            if (cli_parse_u64(a, v, &j) || j < 1 || j > 256) return -1;
            o->threads = (unsigned)j;
        } else if (!strcmp(a, "--eta-compat")) {
            o->eta_compat = 1;
        } else if (!strcmp(a, "--eta-clock")) {
            NEED();
            uint64_t c;
            if (cli_parse_u64(a, v, &c) || c < 2 || c > 1u << 24) return -1;
            o->eta_clock = (uint32_t)c;
        } else if (!strcmp(a, "-o")) {
            NEED();
            o->out_h5 = v;
        } else if (!strcmp(a, "--npy-dir")) {
            NEED();
            o->npy_dir = v;
        } else if (!strcmp(a, "--follow")) {
            o->follow = 1;
        } else if (!strcmp(a, "--timeout")) {
            NEED();
            o->timeout_s = atof(v);
        } else if (!strcmp(a, "--save-state")) {
            NEED();
            o->save_state = v;
        } else if (!strcmp(a, "--resume")) {
            NEED();
            o->resume = v;
        } else if (!strcmp(a, "--progress")) {
            o->progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            o->progress = 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "weir tags %s: unknown option '%s' (see --help)\n", verb, a);
            return -1;
        } else if (npos == 0) {
            o->file = a;
            npos++;
        } else if (npos == 1 && !strcmp(verb, "recipe")) {
            o->recipe = a;
            npos++;
        } else {
            fprintf(stderr, "weir tags %s: unexpected argument '%s'\n", verb, a);
            return -1;
        }
#undef NEED
    }
    if (!o->file || (!strcmp(verb, "recipe") && !o->recipe)) {
        usage(stderr, verb);
        return -1;
    }
    if (o->threads > 1 && o->eta_compat) {
        fprintf(stderr, "weir tags %s: --eta-compat runs serially (as ETA does); drop -j\n", verb);
        return -1;
    }
    if (o->threads > 1 && (o->save_state || o->resume || o->follow)) {
        fprintf(stderr,
                "weir tags %s: -j > 1 runs sections to completion; it cannot be combined "
                "with --save-state, --resume or --follow\n",
                verb);
        return -1;
    }
    return 0;
}

static void common_cfg(const opts *o, weir_tinstr_config *c)
{
    memcpy(c->delays, o->delays, sizeof o->delays);
    c->ndelays = o->ndelays;
    if (o->have_gate) {
        c->gate_open = (int16_t)o->gate_open;
        c->gate_close = (int16_t)o->gate_close;
    }
    c->eta_compat = o->eta_compat;
    c->eta_clock = o->eta_clock;
}

static int build_configs(const char *verb, opts *o, const weir_tag_info *info)
{
    weir_tinstr_config *c = &o->cfg[0];
    if (!strcmp(verb, "corr")) {
        if (!o->have_start || !o->have_stop) {
            fprintf(stderr, "weir tags corr: --start and --stop are required\n");
            return -1;
        }
        weir_tinstr_config_init(c, WEIR_TI_CORR);
        c->start = (int16_t)o->start;
        c->stop = (int16_t)o->stop;
        if (o->have_binwidth) c->bin_ps = o->binwidth;
        if (o->have_bins) c->nbins = (uint32_t)o->bins;
        c->lo_ps = o->have_lo ? o->lo : -(int64_t)(c->nbins / 2) * c->bin_ps;
        common_cfg(o, c);
        o->ncfg = 1;
    } else if (!strcmp(verb, "lifetime")) {
        weir_tinstr_config_init(c, WEIR_TI_LIFETIME);
        c->lifetime_micro = !o->have_sync;
        if (c->lifetime_micro && !info->t3) {
            fprintf(stderr,
                    "weir tags lifetime: %s is a T2 file: give --sync CH (the sync or "
                    "laser channel) to measure photons from the last sync\n",
                    o->file);
            return -1;
        }
        if (c->lifetime_micro) {
            c->micro_ps = info->micro.den ? (double)info->micro.num / info->micro.den : 1;
            c->nbins = 4096;
            if (o->have_binwidth) c->bin_ps = o->binwidth; /* in micro bins */
        } else {
            c->start = (int16_t)o->sync;
            if (!o->have_channel) {
                fprintf(stderr, "weir tags lifetime: --channel is required with --sync\n");
                return -1;
            }
            c->bin_ps = o->have_binwidth ? o->binwidth : 16;
            c->nbins = 4096;
        }
        c->stop = o->have_channel ? (int16_t)o->channel : WEIR_TI_NOCH;
        if (o->have_bins) c->nbins = (uint32_t)o->bins;
        if (o->have_lo) c->lo_ps = o->lo;
        common_cfg(o, c);
        o->ncfg = 1;
    } else if (!strcmp(verb, "count")) {
        o->ncfg = 0;
        if (o->nchans) {
            c = &o->cfg[o->ncfg++];
            weir_tinstr_config_init(c, WEIR_TI_COUNT);
            memcpy(c->channels, o->chans, sizeof o->chans);
            c->nchannels = o->nchans;
            if (o->have_binwidth) c->bin_ps = o->binwidth;
            if (o->have_bins) c->nbins = (uint32_t)o->bins;
            if (o->have_lo) c->lo_ps = o->lo;
            common_cfg(o, c);
        }
        if (o->ncoinc) {
            c = &o->cfg[o->ncfg++];
            weir_tinstr_config_init(c, WEIR_TI_COINC);
            memcpy(c->channels, o->coinc, sizeof o->coinc);
            c->nchannels = o->ncoinc;
            if (!o->have_window) {
                fprintf(stderr, "weir tags count: --coinc needs --window\n");
                return -1;
            }
            c->window_ps = o->window;
            common_cfg(o, c);
        }
        if (!o->ncfg) {
            fprintf(stderr,
                    "weir tags count: give --channels (trace) and/or --coinc (coincidences)\n");
            return -1;
        }
    }
    return 0;
}

/* ---- task files ---- */

static int save_task(const char *path, const weir_tag_pos *pos, weir_tinstr **in, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "weir tags: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int bad = fwrite("WEIRTS\1\0", 1, 8, f) != 8;
    int64_t head[5] = {(int64_t)pos->record, pos->tick_base, pos->aux[0], pos->aux[1], (int64_t)n};
    bad |= fwrite(head, sizeof head, 1, f) != 1;
    for (size_t i = 0; i < n && !bad; i++) {
        uint8_t *b = NULL;
        size_t len = 0;
        if (weir_tinstr_save(in[i], &b, &len)) {
            bad = 1;
            break;
        }
        uint64_t l = len;
        bad |= fwrite(&l, 8, 1, f) != 1 || fwrite(b, 1, len, f) != len;
        free(b);
    }
    bad |= fclose(f) != 0;
    if (bad) fprintf(stderr, "weir tags: %s: could not write the task file\n", path);
    return bad ? -1 : 0;
}

static int load_task(const char *path, weir_tag_pos *pos, weir_tinstr **in, size_t *n)
{
    size_t len = 0;
    uint8_t *b = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "weir tags: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz > 0) b = malloc((size_t)sz);
    if (b) len = fread(b, 1, (size_t)sz, f);
    fclose(f);
    int64_t head[5];
    if (!b || len < 8 + sizeof head || memcmp(b, "WEIRTS\1\0", 8)) {
        fprintf(stderr, "weir tags: %s is not a weir time-tag task file\n", path);
        free(b);
        return -1;
    }
    memcpy(head, b + 8, sizeof head);
    pos->record = (uint64_t)head[0];
    pos->tick_base = head[1];
    pos->aux[0] = head[2];
    pos->aux[1] = head[3];
    size_t off = 8 + sizeof head;
    if (head[4] < 1 || head[4] > MAXI) goto bad;
    *n = (size_t)head[4];
    for (size_t i = 0; i < *n; i++) {
        uint64_t l;
        if (len - off < 8) goto bad;
        memcpy(&l, b + off, 8);
        off += 8;
        if (l > len - off) goto bad;
        char err[256];
        if (weir_tinstr_load(b + off, (size_t)l, &in[i], err, sizeof err)) {
            fprintf(stderr, "weir tags: %s: %s\n", path, err);
            free(b);
            return -1;
        }
        off += (size_t)l;
    }
    free(b);
    return 0;
bad:
    fprintf(stderr, "weir tags: %s: task file is truncated or corrupt\n", path);
    free(b);
    return -1;
}

/* ---- output ---- */

static int write_results(const opts *o, weir_tinstr **in, size_t n)
{
    weir_h5 *h = NULL;
    char err[512];
    int rc = 0;
    if (o->out_h5 && weir_h5_create_ex(o->out_h5, &h, err, sizeof err)) {
        fprintf(stderr, "weir tags: %s\n", err);
        return -1;
    }
    if (o->npy_dir) mkdir(o->npy_dir, 0777);
    for (size_t i = 0; i < n && !rc; i++) {
        weir_tinstr_result r;
        weir_tinstr_get_result(in[i], &r);
        int64_t *edges = malloc((r.nbins + 1) * sizeof *edges);
        if (!edges) return -1;
        for (size_t k = 0; k <= r.nbins; k++)
            edges[k] = r.lo + (int64_t)k * r.bin;
        weir_array a = {0}, e = {0};
        a.dtype.kind = WEIR_DT_U64;
        a.dtype.order = weir_host_order();
        a.ndim = r.rows > 1 ? 2 : 1;
        a.shape[0] = r.rows > 1 ? r.rows : r.nbins;
        a.shape[1] = r.nbins;
        a.strides[a.ndim - 1] = 8;
        if (a.ndim == 2) a.strides[0] = (ptrdiff_t)(8 * r.nbins);
        a.data = (const uint8_t *)r.counts;
        static const uint64_t zero = 0;
        if (!a.data) a.data = (const uint8_t *)&zero;
        e.dtype.kind = WEIR_DT_I64;
        e.dtype.order = weir_host_order();
        e.ndim = 1;
        e.shape[0] = r.nbins + 1;
        e.strides[0] = 8;
        e.data = (const uint8_t *)edges;
        char name[96], ename[112];
        snprintf(name, sizeof name, "%s", r.name);
        snprintf(ename, sizeof ename, "%s_edges", r.name);
        if (h) {
            if (weir_h5_write_array(h, name, &a) || weir_h5_write_array(h, ename, &e) ||
                weir_h5_attr_str(h, name, "quantity", r.quantity) ||
                weir_h5_attr_str(h, name, "unit", r.unit) ||
                weir_h5_attr_f64(h, name, "unit_ps", r.unit_ps) ||
                weir_h5_attr_i64(h, name, "lo", r.lo) ||
                weir_h5_attr_i64(h, name, "bin_width", r.bin) ||
                weir_h5_attr_str(h, name, "edges", ename) ||
                weir_h5_attr_i64(h, name, "events", (int64_t)r.events) ||
                weir_h5_attr_str(h, ename, "unit", r.unit)) {
                fprintf(stderr, "weir tags: %s: %s\n", o->out_h5, weir_h5_error(h));
                rc = -1;
            }
            const weir_tinstr_config *c = weir_tinstr_get_config(in[i]);
            if (!rc && c->kind == WEIR_TI_COINC) {
                weir_h5_attr_i64(h, name, "coincidences", (int64_t)r.extra[0]);
                weir_h5_attr_i64(h, name, "reference_events", (int64_t)r.extra[1]);
            }
            if (!rc && c->eta_compat)
                weir_h5_attr_i64(h, name, "eta_skipped_slot_pairs", (int64_t)r.extra[0]);
        }
        if (o->npy_dir && !rc) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s.npy", o->npy_dir, name);
            rc = weir_npy_write(p, &a) ? -1 : 0;
            snprintf(p, sizeof p, "%s/%s.npy", o->npy_dir, ename);
            if (!rc) rc = weir_npy_write(p, &e) ? -1 : 0;
            if (rc) fprintf(stderr, "weir tags: cannot write %s\n", p);
        }
        free(edges);
    }
    if (h && weir_h5_close(h)) rc = -1;
    return rc;
}

static void summary(weir_tinstr **in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        weir_tinstr_result r;
        weir_tinstr_get_result(in[i], &r);
        uint64_t sum = 0;
        for (size_t k = 0; k < r.rows * r.nbins; k++)
            sum += r.counts[k];
        const weir_tinstr_config *c = weir_tinstr_get_config(in[i]);
        if (c->kind == WEIR_TI_COINC)
            printf("%s: %" PRIu64 " coincidences among %" PRIu64 " reference events\n", r.name,
                   r.extra[0], r.extra[1]);
        else
            printf("%s: %" PRIu64 " events in, %" PRIu64 " counts in %zu x %zu bins of %" PRId64
                   " %s from %" PRId64 "\n",
                   r.name, r.events, sum, r.rows, r.nbins, r.bin, r.unit, r.lo);
    }
}

typedef struct {
    int on;
    struct timespec t0;
} bar;

static int draw(void *ud, uint64_t done, uint64_t total)
{
    bar *b = ud;
    if (!b->on) return interrupted;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double el = (double)(now.tv_sec - b->t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - b->t0.tv_nsec);
    double f = total ? (double)done / (double)total : 0;
    if (f > 1) f = 1;
    char s[41];
    int w = (int)(f * 40);
    for (int i = 0; i < 40; i++)
        s[i] = i < w ? '#' : '.';
    s[40] = 0;
    fprintf(stderr, "\r[%s] %3.0f%%  %" PRIu64 " records  %.1f Mrec/s ", s, 100 * f, done,
            el > 0 ? (double)done / el / 1e6 : 0);
    return interrupted;
}

static int run_verb(const char *verb, int argc, char **argv)
{
    opts o;
    int rc = parse_args(verb, argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;
    char err[512];
    weir_tag_reader *r = NULL;
    weir_tinstr *in[MAXI] = {0};
    size_t n = 0;
    int exit_code = 1;
    if (weir_tag_open(o.file, o.fmt, &r, err, sizeof err)) {
        fprintf(stderr, "weir tags %s: %s\n", verb, err);
        return 1;
    }
    const weir_tag_info *info = weir_tag_reader_info(r);
    if (o.resume) {
        weir_tag_pos pos;
        if (load_task(o.resume, &pos, in, &n)) goto out;
        if (weir_tag_seek(r, &pos)) {
            fprintf(stderr, "weir tags %s: cannot seek %s to record %" PRIu64 "\n", verb, o.file,
                    pos.record);
            goto out;
        }
    } else {
        if (!strcmp(verb, "recipe")) {
            size_t len = 0;
            FILE *f = fopen(o.recipe, "rb");
            char *txt = NULL;
            if (f) {
                fseek(f, 0, SEEK_END);
                long sz = ftell(f);
                fseek(f, 0, SEEK_SET);
                txt = sz >= 0 ? calloc(1, (size_t)sz + 1) : NULL;
                if (txt) len = fread(txt, 1, (size_t)sz, f);
                fclose(f);
            }
            if (!txt) {
                fprintf(stderr, "weir tags recipe: cannot read %s\n", o.recipe);
                goto out;
            }
            (void)len;
            weir_tinstr_config *cf = NULL;
            int prc = weir_tinstr_recipe_parse(txt, &cf, &o.ncfg, err, sizeof err);
            free(txt);
            if (prc || o.ncfg > MAXI) {
                fprintf(stderr, "weir tags recipe: %s: %s\n", o.recipe,
                        prc ? err : "too many instruments");
                free(cf);
                exit_code = 2;
                goto out;
            }
            memcpy(o.cfg, cf, o.ncfg * sizeof *cf);
            free(cf);
        } else if (build_configs(verb, &o, info)) {
            exit_code = 2;
            goto out;
        }
        for (n = 0; n < o.ncfg; n++)
            if (weir_tinstr_create(&o.cfg[n], &in[n], err, sizeof err)) {
                fprintf(stderr, "weir tags %s: %s\n", verb, err);
                exit_code = 2;
                goto out;
            }
    }
    signal(SIGINT, on_sigint);
    bar b = {o.progress, {0, 0}};
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    weir_tinstr_run_opts ro = {o.threads, 1 << 16, draw, &b};
    double idle = 0;
    for (;;) {
        rc = weir_tinstr_run_file(r, in, n, &ro, err, sizeof err);
        if (rc && rc != WEIR_ECLOSED) {
            fprintf(stderr, "%sweir tags %s: %s\n", o.progress ? "\n" : "", verb, err);
            goto out;
        }
        if (!o.follow || interrupted) break;
        uint64_t before = weir_tag_tell(r).record, now = 0;
        if (weir_tag_refresh(r, &now, err, sizeof err)) break;
        if (now > before) {
            idle = 0;
            continue;
        }
        if (idle >= o.timeout_s) break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        idle += 0.2;
    }
    if (o.progress) fprintf(stderr, "\n");
    if (o.save_state) {
        weir_tag_pos pos = weir_tag_tell(r);
        if (save_task(o.save_state, &pos, in, n)) goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (weir_tinstr_finish(in[i])) {
            fprintf(stderr, "weir tags %s: finishing '%s' failed\n", verb, o.cfg[i].name);
            goto out;
        }
    summary(in, n);
    if (write_results(&o, in, n)) goto out;
    if (interrupted) fprintf(stderr, "weir tags %s: interrupted; results so far written\n", verb);
    exit_code = 0;
out:
    for (size_t i = 0; i < n; i++)
        weir_tinstr_free(in[i]);
    weir_tag_close(r);
    return exit_code;
}

int cli_tags_corr(int argc, char **argv)
{
    return run_verb("corr", argc, argv);
}

int cli_tags_lifetime(int argc, char **argv)
{
    return run_verb("lifetime", argc, argv);
}

int cli_tags_count(int argc, char **argv)
{
    return run_verb("count", argc, argv);
}

int cli_tags_recipe(int argc, char **argv)
{
    return run_verb("recipe", argc, argv);
}
