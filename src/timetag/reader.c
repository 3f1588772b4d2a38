/* reader.c — the common part of the time-tag readers (weir/tags.h).
 *
 * A reader maps the whole file read-only (or borrows caller memory), finds
 * the format from the magic bytes or the file extension, lets the format's
 * header parser fill weir_tag_info, and then hands record ranges to the
 * format's decoder. Records are fixed-size after the header, so a position
 * is a record index plus the state a decoder carries across records (the
 * accumulated overflow base and, for quTAG compressed, the unwrap state):
 * weir_tag_pos. Seeking to a record index decodes the records before it
 * without keeping events (a quick scan), so every section of a file starts
 * with its exact overflow base and the sections' events concatenate to the
 * whole file's events bit for bit. A growing file is followed by re-stating
 * it and re-mapping what was appended; only complete records count. */
#include "tags_internal.h"

#include "weir/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- messages ---- */

void tagi_errpath(const char *path, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: ", path ? path : "<memory>");
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

void tagi_err(const weir_tag_reader *r, uint64_t off, char *err, size_t errlen, const char *fmt,
              ...)
{
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: offset %llu: ", r->path, (unsigned long long)off);
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- header tags ---- */

weir_tag_header_tag *tagi_add_tag(weir_tag_reader *r, const char *name, int32_t index,
                                  weir_tag_value_type type, const void *data, uint64_t len,
                                  uint64_t offset)
{
    if (r->ntags == r->tagcap) {
        size_t nc = r->tagcap ? r->tagcap * 2 : 64;
        weir_tag_header_tag *t = realloc(r->tags, nc * sizeof *t);
        if (!t) return NULL;
        r->tags = t;
        r->tagcap = nc;
    }
    weir_tag_header_tag *t = &r->tags[r->ntags];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->index = index;
    t->type = type;
    t->offset = offset;
    if (data) {
        if (len > SIZE_MAX - 1) return NULL;
        if (r->nowned == r->ownedcap) {
            size_t nc = r->ownedcap ? r->ownedcap * 2 : 32;
            void **o = realloc(r->owned, nc * sizeof *o);
            if (!o) return NULL;
            r->owned = o;
            r->ownedcap = nc;
        }
        uint8_t *copy = malloc((size_t)len + 1);
        if (!copy) return NULL;
        memcpy(copy, data, (size_t)len);
        copy[len] = 0;
        r->owned[r->nowned++] = copy;
        t->data = copy;
        t->len = len;
    }
    r->ntags++;
    return t;
}

const weir_tag_header_tag *tagi_find(const weir_tag_reader *r, const char *name)
{
    for (size_t i = 0; i < r->ntags; i++)
        if (!strcmp(r->tags[i].name, name)) return &r->tags[i];
    return NULL;
}

/* ---- exact arithmetic ---- */

static int64_t gcd64(int64_t a, int64_t b)
{
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a ? a : 1;
}

weir_tag_res tagi_res_from_seconds(double s)
{
    weir_tag_res r = {0, 1};
    if (!(s > 0) || !isfinite(s) || s > 1e6) return r;
    char buf[64];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, s);
        if (strtod(buf, NULL) == s) break;
    }
    if (p > 17) p = 17;
    /* buf = "d.ddde[+-]XX": mantissa digits M, s = M * 10^(E - (p-1)) */
    int64_t m = 0;
    const char *c = buf;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') m = m * 10 + (*c - '0');
    int e = *c == 'e' ? atoi(c + 1) : 0;
    int e10 = e - (p - 1) + 12; /* picoseconds */
    while (e10 > 0 && m < INT64_MAX / 10) {
        m *= 10;
        e10--;
    }
    int64_t den = 1;
    while (e10 < 0) {
        if (den > INT64_MAX / 10) { /* below 1e-18 ps: round */
            m = (m + 5) / 10;
        } else {
            den *= 10;
        }
        e10++;
    }
    int64_t g = gcd64(m, den);
    r.num = m / g;
    r.den = den / g;
    if (r.num == 0) r.den = 1;
    return r;
}

weir_tag_res tagi_res_mul(weir_tag_res a, int64_t num, int64_t den)
{
    /* a * num / den, reduced; falls back to 1e-6 ps precision if it cannot fit */
    int64_t g1 = gcd64(a.num, den), g2 = gcd64(num, a.den);
    __int128 n = (__int128)(a.num / g1) * (num / g2);
    __int128 d = (__int128)(a.den / g2) * (den / g1);
    while (n > 1000000000000000000LL || d > 1000000000000000000LL) { /* dens stay <= 1e18 */
        n = (n + 5) / 10;
        d = (d + 5) / 10;
    }
    weir_tag_res r = {(int64_t)n, d ? (int64_t)d : 1};
    int64_t g = gcd64(r.num, r.den);
    r.num /= g;
    r.den /= g;
    return r;
}

/* floor division and remainder for __int128 with positive d */
static void divmod128(__int128 x, __int128 d, __int128 *q, __int128 *rem)
{
    __int128 qq = x / d, rr = x % d;
    if (rr < 0) {
        rr += d;
        qq -= 1;
    }
    *q = qq;
    *rem = rr;
}

int64_t tagi_scale2(int64_t sync, weir_tag_res tick, int64_t micro, weir_tag_res mres)
{
    if (tick.den == 1 && mres.den == 1)
        return tagi_add(tagi_mul(sync, tick.num), tagi_mul(micro, mres.num));
    __int128 q1, r1, q2, r2;
    divmod128((__int128)sync * tick.num, tick.den, &q1, &r1);
    divmod128((__int128)micro * mres.num, mres.den, &q2, &r2);
    /* fraction r1/tden + r2/mden in [0, 2): round half up */
    __int128 fd = (__int128)tick.den * mres.den;
    __int128 fn = r1 * mres.den + r2 * tick.den;
    __int128 extra = (2 * fn + fd) / (2 * fd);
    return (int64_t)(uint64_t)(unsigned __int128)(q1 + q2 + extra);
}

int64_t tagi_unscale(int64_t ps, weir_tag_res res)
{
    if (res.num <= 0) return 0;
    __int128 x = (__int128)ps * res.den, q, rem;
    divmod128(x, res.num, &q, &rem);
    if (2 * rem >= res.num) q++;
    return (int64_t)q;
}

/* ---- formats ---- */

static const weir_tag_fmt *fmt_table(weir_tag_format f)
{
    switch (f) {
    case WEIR_TAGFMT_PTU:
        return &weir_tagfmt_ptu;
    case WEIR_TAGFMT_PQ_LEGACY:
        return &weir_tagfmt_pq_legacy;
    case WEIR_TAGFMT_SWABIAN:
        return &weir_tagfmt_swabian;
    case WEIR_TAGFMT_QUTAG:
        return &weir_tagfmt_qutag;
    case WEIR_TAGFMT_QUTAG_RAW:
        return &weir_tagfmt_qutag_raw;
    case WEIR_TAGFMT_QUTAG_COMPRESSED:
        return &weir_tagfmt_qutag_comp;
    case WEIR_TAGFMT_BH_SPC:
        return &weir_tagfmt_bh_spc;
    case WEIR_TAGFMT_ET_A033:
        return &weir_tagfmt_et_a033;
    default:
        return NULL;
    }
}

static const struct {
    const char *key;
    weir_tag_format f;
} fmt_names[] = {
    {"auto", WEIR_TAGFMT_AUTO},
    {"ptu", WEIR_TAGFMT_PTU},
    {"legacy", WEIR_TAGFMT_PQ_LEGACY},
    {"swabian", WEIR_TAGFMT_SWABIAN},
    {"qutag", WEIR_TAGFMT_QUTAG},
    {"qutag-raw", WEIR_TAGFMT_QUTAG_RAW},
    {"qutag-compressed", WEIR_TAGFMT_QUTAG_COMPRESSED},
    {"bh", WEIR_TAGFMT_BH_SPC},
    {"et-a033", WEIR_TAGFMT_ET_A033},
};

const char *weir_tag_format_name(weir_tag_format f)
{
    if (f == WEIR_TAGFMT_AUTO) return "auto";
    const weir_tag_fmt *t = fmt_table(f);
    return t ? t->name : "unknown";
}

int weir_tag_format_parse(const char *s, weir_tag_format *out)
{
    if (!s || !out) return WEIR_EINVAL;
    for (size_t i = 0; i < sizeof fmt_names / sizeof fmt_names[0]; i++)
        if (!strcasecmp(s, fmt_names[i].key)) {
            *out = fmt_names[i].f;
            return 0;
        }
    if (!strcasecmp(s, "bh-spc") || !strcasecmp(s, "spc")) return *out = WEIR_TAGFMT_BH_SPC, 0;
    if (!strcasecmp(s, "pq-legacy")) return *out = WEIR_TAGFMT_PQ_LEGACY, 0;
    return WEIR_EINVAL;
}

static const char *ext_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    return dot ? dot + 1 : "";
}

/* Magic first, then the extension; formats without a header need an
 * explicit format. */
static int detect(const weir_tag_reader *r, weir_tag_format *f, char *err, size_t errlen)
{
    const uint8_t *d = r->data;
    size_t n = r->len;
    if (n >= 6 && !memcmp(d, "PQTTTR", 6)) return *f = WEIR_TAGFMT_PTU, 0;
    if (n >= 4 && d[0] == 0x87 && d[1] == 0xB3 && d[2] == 0x91 && d[3] == 0xFA) {
        *f = WEIR_TAGFMT_QUTAG;
        return 0;
    }
    static const char *legacy_ident[] = {"HydraHarp", "PicoHarp 300", "TimeHarp 200", "PicoHarp",
                                         "TimeHarp"};
    for (size_t i = 0; i < sizeof legacy_ident / sizeof legacy_ident[0]; i++) {
        size_t l = strlen(legacy_ident[i]);
        if (n >= l && !memcmp(d, legacy_ident[i], l)) return *f = WEIR_TAGFMT_PQ_LEGACY, 0;
    }
    const char *ext = ext_of(r->path);
    static const char *legacy_ext[] = {"ht2", "ht3", "pt2", "pt3", "t3r", "thd"};
    for (size_t i = 0; i < sizeof legacy_ext / sizeof legacy_ext[0]; i++)
        if (!strcasecmp(ext, legacy_ext[i])) return *f = WEIR_TAGFMT_PQ_LEGACY, 0;
    if (!strcasecmp(ext, "spc")) return *f = WEIR_TAGFMT_BH_SPC, 0;
    if (!strcasecmp(ext, "ptu") || !strcasecmp(ext, "timeres")) return *f = WEIR_TAGFMT_PTU, 0;
    if (!strcasecmp(ext, "qutag")) return *f = WEIR_TAGFMT_QUTAG, 0;
    tagi_err(r, 0, err, errlen,
             "unknown time-tag format: expected the magic \"PQTTTR\" (PTU), 87 B3 91 FA (quTAG), "
             "a legacy PicoQuant ident, or the extension .ptu/.timeres/.ht2/.ht3/.pt2/.pt3/.t3r/"
             ".thd/.spc/.qutag; give the format explicitly for Swabian, quTAG raw or compressed "
             "and Eventech files");
    return WEIR_EFORMAT;
}

static void update_nrecords(weir_tag_reader *r)
{
    weir_tag_info *in = &r->info;
    if (in->record_bytes && r->len > in->header_bytes)
        in->nrecords = (r->len - in->header_bytes) / in->record_bytes;
    else
        in->nrecords = 0;
}

static int open_common(weir_tag_reader *r, weir_tag_format fmt, char *err, size_t errlen)
{
    if (fmt == WEIR_TAGFMT_AUTO) {
        int rc = detect(r, &fmt, err, errlen);
        if (rc) return rc;
    }
    r->fmt = fmt_table(fmt);
    if (!r->fmt) {
        tagi_errpath(r->path, err, errlen, "unknown format code %d", (int)fmt);
        return WEIR_EINVAL;
    }
    r->info.format = fmt;
    r->info.path = r->path;
    r->info.format_name = r->format_name;
    snprintf(r->format_name, sizeof r->format_name, "%s", r->fmt->name);
    r->info.micro = (weir_tag_res){0, 1};
    r->info.tick = (weir_tag_res){1, 1};
    int rc = r->fmt->open(r, err, errlen);
    if (rc) return rc;
    if (r->info.header_bytes > r->len) {
        tagi_err(r, r->len, err, errlen, "file ends inside the header (%llu bytes expected)",
                 (unsigned long long)r->info.header_bytes);
        return WEIR_ETRUNCATED;
    }
    r->info.tags = r->tags;
    r->info.ntags = r->ntags;
    update_nrecords(r);
    r->end = UINT64_MAX;
    return 0;
}

static weir_tag_reader *reader_new(const char *name)
{
    weir_tag_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = -1;
    r->path = strdup(name ? name : "<memory>");
    if (!r->path) {
        free(r);
        return NULL;
    }
    return r;
}

void weir_tag_close(weir_tag_reader *r)
{
    if (!r) return;
    if (r->map) munmap(r->map, r->maplen);
    if (r->fd >= 0) close(r->fd);
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->tags);
    free(r->path);
    free(r);
}

static int map_file(weir_tag_reader *r, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        tagi_errpath(r->path, err, errlen, "cannot stat: %s", strerror(errno));
        return WEIR_EIO;
    }
    size_t size = (size_t)st.st_size;
    if (size == r->maplen && r->map) return 0;
    void *p = NULL;
    if (size) {
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, r->fd, 0);
        if (p == MAP_FAILED) {
            tagi_errpath(r->path, err, errlen, "cannot map %zu bytes: %s", size, strerror(errno));
            return WEIR_EIO;
        }
        madvise(p, size, MADV_SEQUENTIAL);
    }
    if (r->map) munmap(r->map, r->maplen);
    r->map = p;
    r->maplen = size;
    r->data = p;
    r->len = size;
    return 0;
}

int weir_tag_open(const char *path, weir_tag_format fmt, weir_tag_reader **out, char *err,
                  size_t errlen)
{
    if (err && errlen) err[0] = 0;
    *out = NULL;
    weir_tag_reader *r = reader_new(path);
    if (!r) return WEIR_ENOMEM;
    int rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
        tagi_errpath(path, err, errlen, "cannot open: %s", strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tagi_errpath(path, err, errlen, "not a regular file");
        rc = WEIR_EIO;
        goto fail;
    }
    rc = map_file(r, err, errlen);
    if (rc) goto fail;
    rc = open_common(r, fmt, err, errlen);
    if (rc) goto fail;
    *out = r;
    return 0;
fail:
    weir_tag_close(r);
    return rc;
}

int weir_tag_open_mem(const void *data, size_t len, weir_tag_format fmt, const char *name,
                      weir_tag_reader **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    *out = NULL;
    weir_tag_reader *r = reader_new(name);
    if (!r) return WEIR_ENOMEM;
    r->data = data;
    r->len = data ? len : 0;
    int rc = open_common(r, fmt, err, errlen);
    if (rc) {
        weir_tag_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

const weir_tag_info *weir_tag_reader_info(const weir_tag_reader *r)
{
    return &r->info;
}

const weir_tag_counts *weir_tag_reader_counts(const weir_tag_reader *r)
{
    return &r->counts;
}

static uint64_t limit_of(const weir_tag_reader *r)
{
    return r->end < r->info.nrecords ? r->end : r->info.nrecords;
}

long weir_tag_read(weir_tag_reader *r, weir_tag *out, size_t cap, char *err, size_t errlen)
{
    if (!r || (!out && cap)) return WEIR_EINVAL;
    uint64_t lim = limit_of(r);
    if (r->pos.record >= lim || !cap) return 0;
    if (cap > LONG_MAX) cap = LONG_MAX;
    return r->fmt->decode(r, lim, out, cap);
}

weir_tag_pos weir_tag_tell(const weir_tag_reader *r)
{
    return r->pos;
}

int weir_tag_seek(weir_tag_reader *r, const weir_tag_pos *pos)
{
    if (!r || !pos) return WEIR_EINVAL;
    r->pos = *pos;
    return 0;
}

/* decodes up to record `target` without keeping events or counts */
static void scan_to(weir_tag_reader *r, uint64_t target)
{
    weir_tag scratch[512];
    weir_tag_counts saved = r->counts;
    tagi_hht2_view v;
    if (tagi_hht2_get(r, &v) && target <= r->info.nrecords && target >= v.first) {
        /* HydraHarp T2: only overflow records move the time base, so the
         * scan reads nothing else (several GB/s; sections start at once) */
        const uint8_t *p = v.rec;
        uint64_t base = (uint64_t)v.tick_base;
        for (uint64_t i = v.first; i < target; i++, p += 4) {
            const uint32_t w = tagi_u32(p);
            if (__builtin_expect((w >> 25) == 127u, 0)) {
                const uint64_t tt = w & 0x1FFFFFFu;
                base += (v.v1 ? 1 : (tt ? tt : 1)) * (uint64_t)v.wrap;
            }
        }
        r->pos.record = target;
        r->pos.tick_base = (int64_t)base;
        return;
    }
    while (r->pos.record < target) {
        long n = r->fmt->decode(r, target, scratch, sizeof scratch / sizeof scratch[0]);
        if (n <= 0 && r->pos.record < target) break; /* cannot happen: decoders always advance */
    }
    r->counts = saved;
}

int weir_tag_seek_record(weir_tag_reader *r, uint64_t index, char *err, size_t errlen)
{
    if (!r) return WEIR_EINVAL;
    if (index > r->info.nrecords) {
        tagi_errpath(r->path, err, errlen, "cannot seek to record %llu: the file has %llu",
                     (unsigned long long)index, (unsigned long long)r->info.nrecords);
        return WEIR_ERANGE;
    }
    if (index < r->pos.record) memset(&r->pos, 0, sizeof r->pos);
    scan_to(r, index);
    return 0;
}

void weir_tag_set_end(weir_tag_reader *r, uint64_t end_record)
{
    if (r) r->end = end_record;
}

int weir_tag_refresh(weir_tag_reader *r, uint64_t *nrecords, char *err, size_t errlen)
{
    if (!r) return WEIR_EINVAL;
    if (r->fd >= 0) {
        int rc = map_file(r, err, errlen);
        if (rc) return rc;
        update_nrecords(r);
    }
    if (nrecords) *nrecords = r->info.nrecords;
    return 0;
}

int weir_tag_sections(weir_tag_reader *r, uint64_t first, uint64_t end, unsigned k,
                      weir_tag_pos *out, uint64_t *ends, char *err, size_t errlen)
{
    if (!r || !k || !out || !ends) return WEIR_EINVAL;
    if (end > r->info.nrecords) end = r->info.nrecords;
    if (first > end) {
        tagi_errpath(r->path, err, errlen, "section start %llu is past the end %llu",
                     (unsigned long long)first, (unsigned long long)end);
        return WEIR_ERANGE;
    }
    weir_tag_pos saved = r->pos;
    uint64_t saved_end = r->end;
    r->end = UINT64_MAX;
    int rc = weir_tag_seek_record(r, first, err, errlen);
    if (rc) goto restore;
    uint64_t span = end - first;
    for (unsigned i = 0; i < k; i++) {
        uint64_t b = first + (uint64_t)((__uint128_t)span * i / k);
        scan_to(r, b);
        out[i] = r->pos;
        ends[i] = first + (uint64_t)((__uint128_t)span * (i + 1) / k);
    }
restore:
    r->pos = saved;
    r->end = saved_end;
    return rc;
}

int weir_tag_encode(weir_tag_format fmt, const weir_tag_encode_opts *o, const weir_tag *events,
                    size_t n, const char *path, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    const weir_tag_fmt *t = fmt_table(fmt);
    if (!t || !t->encode) {
        tagi_errpath(path, err, errlen, "cannot encode format %d", (int)fmt);
        return WEIR_EINVAL;
    }
    weir_tag_encode_opts def = {0};
    if (!o) o = &def;
    FILE *f = fopen(path, "wb");
    if (!f) {
        tagi_errpath(path, err, errlen, "cannot create: %s", strerror(errno));
        return WEIR_EIO;
    }
    int rc = t->encode(o, events, n, f, err, errlen);
    if (rc && err && errlen && !strstr(err, path)) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        tagi_errpath(path, err, errlen, "%s", tmp);
    }
    if (fclose(f) != 0 && !rc) {
        tagi_errpath(path, err, errlen, "write failed: %s", strerror(errno));
        rc = WEIR_EIO;
    }
    return rc;
}
