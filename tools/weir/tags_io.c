/* tags_io.c — `weir tags info` and `weir tags export`: what a time-tag file
 * holds, and its decoded events as .npy arrays.
 *
 * info opens the file (format from magic/extension or --format), prints the
 * format, resolutions (as the header states them and as exact ps
 * fractions), record counts and every header tag with its value, then
 * decodes the whole file to count records by kind. export decodes every
 * event into four columns and writes time.npy (int64 ps), channel.npy
 * (int16), micro.npy (int32, -1 when none) and kind.npy (uint8: 0 photon,
 * 1 sync, 2 marker) with weir's NPY writer. */
#include "cli.h"

#include "weir/array.h"
#include "weir/error.h"
#include "weir/npy.h"
#include "weir/tags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *kind_name(weir_tag_value_type t)
{
    static const char *n[] = {"empty", "bool", "int",     "bitset", "color",
                              "float", "date", "float[]", "string", "blob"};
    return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}

static void print_tag(const weir_tag_header_tag *t)
{
    char name[64];
    if (t->index >= 0)
        snprintf(name, sizeof name, "%s[%d]", t->name, t->index);
    else
        snprintf(name, sizeof name, "%s", t->name);
    printf("  %-40s %-8s ", name, kind_name(t->type));
    switch (t->type) {
    case WEIR_TAGV_EMPTY:
        break;
    case WEIR_TAGV_BOOL:
        printf("%s", t->i ? "true" : "false");
        break;
    case WEIR_TAGV_INT:
        printf("%lld", (long long)t->i);
        break;
    case WEIR_TAGV_BITSET:
    case WEIR_TAGV_COLOR:
        printf("0x%llX", (unsigned long long)t->i);
        break;
    case WEIR_TAGV_FLOAT:
        printf("%.17g", t->f);
        break;
    case WEIR_TAGV_DATETIME: {
        /* days since 1899-12-30 */
        double unix_s = (t->f - 25569.0) * 86400.0;
        time_t tt = (time_t)unix_s;
        struct tm tm;
        char buf[64] = "?";
        if (gmtime_r(&tt, &tm)) strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("%.10g (%s)", t->f, buf);
        break;
    }
    case WEIR_TAGV_FLOAT_ARRAY: {
        size_t n = (size_t)(t->len / 8);
        printf("%zu values:", n);
        for (size_t i = 0; i < n && i < 8; i++) {
            double d;
            memcpy(&d, (const unsigned char *)t->data + 8 * i, 8);
            printf(" %.6g", d);
        }
        if (n > 8) printf(" …");
        break;
    }
    case WEIR_TAGV_STRING:
        printf("\"%s\"", (const char *)t->data);
        break;
    case WEIR_TAGV_BLOB:
        printf("%llu bytes", (unsigned long long)t->len);
        break;
    }
    printf("\n");
}

static int parse_common(int argc, char **argv, const char *verb, const char **file,
                        weir_tag_format *fmt, const char **npydir)
{
    *file = NULL;
    *fmt = WEIR_TAGFMT_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            if (weir_tag_format_parse(argv[++i], fmt)) {
                fprintf(stderr,
                        "weir tags %s: unknown format '%s' (ptu, legacy, swabian, qutag, "
                        "qutag-raw, qutag-compressed, bh, et-a033)\n",
                        verb, argv[i]);
                return 2;
            }
        } else if (npydir && !strcmp(argv[i], "--npy-dir") && i + 1 < argc) {
            *npydir = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "weir tags %s: unknown option '%s'\n", verb, argv[i]);
            return 2;
        } else if (!*file) {
            *file = argv[i];
        } else {
            fprintf(stderr, "weir tags %s: one file only ('%s')\n", verb, argv[i]);
            return 2;
        }
    }
    if (!*file || (npydir && !*npydir)) {
        fprintf(stderr, "usage: weir tags %s FILE [--format F]%s\n", verb,
                npydir ? " --npy-dir OUT" : "");
        return 2;
    }
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static void print_res(const char *label, weir_tag_res r)
{
    if (r.den == 1)
        printf("%-22s %lld ps (exact)\n", label, (long long)r.num);
    else
        printf("%-22s %lld/%lld ps = %.12g ps (exact fraction)\n", label, (long long)r.num,
               (long long)r.den, (double)r.num / (double)r.den);
}

int cli_tags_info(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: weir tags info FILE [--format F]\n"
               "  format, header tags with their values, resolutions, record counts by kind\n"
               "  formats: ptu legacy swabian qutag qutag-raw qutag-compressed bh et-a033\n");
        return 0;
    }
    const char *file;
    weir_tag_format fmt;
    int rc = parse_common(argc, argv, "info", &file, &fmt, NULL);
    if (rc) return rc;
    weir_tag_reader *r;
    char err[1024];
    rc = weir_tag_open(file, fmt, &r, err, sizeof err);
    if (rc) {
        fprintf(stderr, "weir tags info: %s\n", err);
        return 1;
    }
    const weir_tag_info *in = weir_tag_reader_info(r);
    printf("file                   %s\n", in->path);
    printf("format                 %s\n", in->format_name);
    printf("mode                   %s\n",
           in->t3 ? "T3 (sync + micro-time)" : "T2 (absolute times)");
    printf("header                 %llu bytes\n", (unsigned long long)in->header_bytes);
    printf("record size            %llu bytes\n", (unsigned long long)in->record_bytes);
    printf("records                %llu", (unsigned long long)in->nrecords);
    struct stat st;
    if (in->record_bytes && stat(file, &st) == 0 &&
        (uint64_t)st.st_size > in->header_bytes + in->nrecords * in->record_bytes)
        printf(" + %llu trailing bytes (an incomplete record, not decoded)",
               (unsigned long long)((uint64_t)st.st_size - in->header_bytes -
                                    in->nrecords * in->record_bytes));
    if (in->nrecords_header)
        printf(" (header announces %llu)", (unsigned long long)in->nrecords_header);
    printf("\n");
    if (in->t3) {
        printf("sync period            %.17g s\n", in->sync_period_s);
        printf("micro-time resolution  %.17g s\n", in->resolution_s);
        print_res("ps per sync", in->tick);
        print_res("ps per micro bin", in->micro);
    } else {
        printf("resolution             %.17g s\n", in->resolution_s);
        print_res("ps per tick", in->tick);
    }
    printf("header tags (%zu):\n", in->ntags);
    for (size_t i = 0; i < in->ntags; i++)
        print_tag(&in->tags[i]);
    weir_tag *buf = malloc(65536 * sizeof *buf);
    if (!buf) {
        weir_tag_close(r);
        return 1;
    }
    int64_t first = 0, last = 0;
    int have = 0;
    for (;;) {
        long n = weir_tag_read(r, buf, 65536, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "weir tags info: %s\n", err);
            free(buf);
            weir_tag_close(r);
            return 1;
        }
        if (!n) break;
        if (!have) first = buf[0].time, have = 1;
        last = buf[n - 1].time;
    }
    free(buf);
    const weir_tag_counts *c = weir_tag_reader_counts(r);
    printf("records by kind:\n");
    printf("  photons    %llu\n", (unsigned long long)c->photons);
    printf("  syncs      %llu\n", (unsigned long long)c->syncs);
    printf("  markers    %llu\n", (unsigned long long)c->markers);
    printf("  overflows  %llu records (%llu wraps)\n", (unsigned long long)c->overflows,
           (unsigned long long)c->overflow_wraps);
    printf("  errors     %llu (error, illegal or invalid records)\n",
           (unsigned long long)c->errors);
    if (have)
        printf("time span              %lld .. %lld ps (first and last event)\n", (long long)first,
               (long long)last);
    weir_tag_close(r);
    return 0;
}

static int write_col(const char *dir, const char *name, weir_dtype_kind k, size_t n,
                     const weir_tag *ev, int which)
{
    weir_array a;
    size_t shape[1] = {n};
    if (weir_array_alloc(&a, (weir_dtype){k, weir_host_order()}, 1, shape)) return WEIR_ENOMEM;
    uint8_t *d = weir_buf_mutable(a.buf);
    for (size_t i = 0; i < n; i++) {
        switch (which) {
        case 0:
            memcpy(d + 8 * i, &ev[i].time, 8);
            break;
        case 1:
            memcpy(d + 2 * i, &ev[i].channel, 2);
            break;
        case 2:
            memcpy(d + 4 * i, &ev[i].micro, 4);
            break;
        default:
            d[i] = ev[i].kind;
            break;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = weir_npy_write(path, &a);
    if (rc) fprintf(stderr, "weir tags export: cannot write %s: %s\n", path, weir_strerror(rc));
    weir_array_release(&a);
    return rc;
}

int cli_tags_export(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf(
            "usage: weir tags export FILE --npy-dir OUT [--format F]\n"
            "  writes OUT/time.npy (int64 ps), channel.npy (int16), micro.npy (int32, -1 = none)\n"
            "  and kind.npy (uint8: 0 photon, 1 sync, 2 marker)\n");
        return 0;
    }
    const char *file, *dir = NULL;
    weir_tag_format fmt;
    int rc = parse_common(argc, argv, "export", &file, &fmt, &dir);
    if (rc) return rc;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "weir tags export: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    weir_tag_reader *r;
    char err[1024];
    rc = weir_tag_open(file, fmt, &r, err, sizeof err);
    if (rc) {
        fprintf(stderr, "weir tags export: %s\n", err);
        return 1;
    }
    const weir_tag_info *in = weir_tag_reader_info(r);
    size_t cap = in->nrecords ? (size_t)in->nrecords : 1, n = 0;
    weir_tag *ev = malloc(cap * sizeof *ev);
    if (!ev) {
        fprintf(stderr, "weir tags export: out of memory for %zu events\n", cap);
        weir_tag_close(r);
        return 1;
    }
    for (;;) {
        long k = weir_tag_read(r, ev + n, cap - n, err, sizeof err);
        if (k < 0) {
            fprintf(stderr, "weir tags export: %s\n", err);
            rc = 1;
            goto out;
        }
        if (!k) break;
        n += (size_t)k;
    }
    if (write_col(dir, "time.npy", WEIR_DT_I64, n, ev, 0) ||
        write_col(dir, "channel.npy", WEIR_DT_I16, n, ev, 1) ||
        write_col(dir, "micro.npy", WEIR_DT_I32, n, ev, 2) ||
        write_col(dir, "kind.npy", WEIR_DT_U8, n, ev, 3)) {
        rc = 1;
        goto out;
    }
    const weir_tag_counts *c = weir_tag_reader_counts(r);
    printf("%zu events (%llu photons, %llu syncs, %llu markers) to %s; %llu overflow records, "
           "%llu error records not exported\n",
           n, (unsigned long long)c->photons, (unsigned long long)c->syncs,
           (unsigned long long)c->markers, dir, (unsigned long long)c->overflows,
           (unsigned long long)c->errors);
out:
    free(ev);
    weir_tag_close(r);
    return rc;
}
