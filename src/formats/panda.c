/* panda.c — PandA position capture, over ZeroMQ ("PCAP", the Tango
 * device's JSON messages) and over the PandA's own TCP data port
 * ("PCAP_RAW"): weir/beamline.h, reference/dranspose.md §3.7–3.8 and the
 * PandABlocks-server capture documentation.
 *
 * PCAP: single-part JSON, "message_type" series-start / data / series-end;
 * a data message holds one list per captured field, vectorised over
 * several triggers starting at "frame_number". weir_pcap_split cuts one
 * element out, as dranspose's ingester does.
 *
 * PCAP_RAW: after the client's option line the PandA answers "OK", then per
 * arm sends a text header ("key: value" lines, "fields:" with one indented
 * line per field, an empty line), the samples (ASCII: one space-prefixed
 * line each; FRAMED: "BIN " + uint32 LE length + little-endian binary
 * samples in blocks of any size), and "END <n> <reason>". The framer is a
 * small state machine over an input buffer: it only ever looks at the bytes
 * from its read position, so it resumes exactly where it stopped when more
 * bytes arrive, whatever the pieces. FRAMED blocks are re-cut into one
 * packet per sample so that every packet is one frame. */
#include "bl_internal.h"

#include "weir/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== PCAP over ZeroMQ ==================================================== */

#define ZWHO "pcap"

static int is_envelope(const char *k)
{
    return !strcmp(k, "message_id") || !strcmp(k, "message_type") || !strcmp(k, "version") ||
           !strcmp(k, "frame_number");
}

void weir_pcap_clear(weir_pcap_packet *p)
{
    if (!p) return;
    cJSON_Delete(p->json);
    memset(p, 0, sizeof *p);
    p->frame = -1;
}

int weir_pcap_parse(const weir_msg *m, weir_pcap_packet *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->message_id = -1;
    if (!m || m->nparts != 1) {
        bl_err(err, errlen, ZWHO ": expected one JSON part, got %zu parts", m ? m->nparts : 0);
        return WEIR_EFORMAT;
    }
    p->json = bl_json_part(m, 0, ZWHO, err, errlen);
    if (!p->json) return WEIR_EJSON;
    int rc = WEIR_EFORMAT;
    const char *mt = bl_get_str(p->json, "message_type");
    bl_get_i64(p->json, "message_id", &p->message_id);
    if (!mt) {
        bl_err(err, errlen,
               ZWHO ": part 1: expected \"message_type\" (series-start, data or series-end)");
        goto fail;
    }
    if (!strcmp(mt, "series-start")) {
        p->kind = WEIR_BL_START;
        p->arm_time = bl_get_str(p->json, "arm_time");
        return WEIR_OK;
    }
    if (!strcmp(mt, "series-end")) {
        p->kind = WEIR_BL_END;
        return WEIR_OK;
    }
    if (strcmp(mt, "data")) {
        bl_err(err, errlen,
               ZWHO ": part 1: unknown \"message_type\" \"%.30s\" (expected series-start, data or "
                    "series-end)",
               mt);
        goto fail;
    }
    if (bl_get_i64(p->json, "frame_number", &p->frame) || p->frame < 0) {
        bl_err(err, errlen,
               ZWHO ": part 1: a data message needs \"frame_number\" as an integer >= 0");
        goto fail;
    }
    long n = -1;
    for (const cJSON *it = p->json->child; it; it = it->next) {
        if (is_envelope(it->string)) continue;
        p->nfields++;
        if (!cJSON_IsArray(it)) continue;
        long len = cJSON_GetArraySize(it);
        if (n >= 0 && len != n) {
            bl_err(err, errlen,
                   ZWHO ": part 1: field \"%.40s\" has %ld values, expected %ld like the others",
                   it->string, len, n);
            goto fail;
        }
        n = len;
    }
    p->nvalues = n < 0 ? 1 : (size_t)n;
    p->kind = WEIR_BL_DATA;
    return WEIR_OK;
fail:
    weir_pcap_clear(p);
    return rc;
}

int weir_pcap_split(const weir_pcap_packet *p, size_t i, weir_msg *out)
{
    if (!p || p->kind != WEIR_BL_DATA || i >= p->nvalues) return WEIR_EINVAL;
    /* built member by member, copying only element i of each list, so that
     * splitting a message of n elements costs O(n) per element, not O(n^2) */
    cJSON *j = cJSON_CreateObject();
    if (!j) return WEIR_ENOMEM;
    for (const cJSON *it = p->json->child; it; it = it->next) {
        cJSON *v;
        if (!strcmp(it->string, "frame_number"))
            v = cJSON_CreateNumber((double)(p->frame + (int64_t)i));
        else if (!is_envelope(it->string) && cJSON_IsArray(it))
            v = cJSON_Duplicate(cJSON_GetArrayItem(it, (int)i), 1);
        else
            v = cJSON_Duplicate(it, 1);
        if (!v || !cJSON_AddItemToObject(j, it->string, v)) {
            cJSON_Delete(v);
            cJSON_Delete(j);
            return WEIR_ENOMEM;
        }
    }
    return bl_emit_json(out, j);
}

static cJSON *envelope(int64_t message_id, const char *type)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddNumberToObject(j, "message_id", (double)message_id) ||
        !cJSON_AddStringToObject(j, "message_type", type) ||
        !cJSON_AddNumberToObject(j, "version", 1)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int weir_pcap_encode_start(weir_msg *out, int64_t message_id, const char *arm_time)
{
    cJSON *j = envelope(message_id, "series-start");
    if (j && arm_time && !cJSON_AddStringToObject(j, "arm_time", arm_time)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j ? bl_emit_json(out, j) : WEIR_ENOMEM;
}

int weir_pcap_encode_data(weir_msg *out, int64_t message_id, int64_t frame_number, size_t nfields,
                          const char *const *names, const double *values, size_t n)
{
    if (frame_number < 0 || (nfields && (!names || (n && !values)))) return WEIR_EINVAL;
    cJSON *j = envelope(message_id, "data");
    if (!j || !cJSON_AddNumberToObject(j, "frame_number", (double)frame_number)) goto oom;
    for (size_t f = 0; f < nfields; f++) {
        cJSON *a = cJSON_CreateDoubleArray(values + f * n, (int)n);
        if (!a || !cJSON_AddItemToObject(j, names[f], a)) {
            cJSON_Delete(a);
            goto oom;
        }
    }
    return bl_emit_json(out, j);
oom:
    cJSON_Delete(j);
    return WEIR_ENOMEM;
}

int weir_pcap_encode_end(weir_msg *out, int64_t message_id)
{
    cJSON *j = envelope(message_id, "series-end");
    return j ? bl_emit_json(out, j) : WEIR_ENOMEM;
}

/* ==== PandA raw TCP: packets ============================================== */

#define RWHO "pcap-raw"

static const char *const type_names[] = {"uint32", "int32", "int64", "double"};
static const size_t type_sizes[] = {4, 4, 8, 8};

void weir_panda_header_clear(weir_panda_header *h)
{
    if (!h) return;
    free(h->arm_time);
    free(h->start_time);
    free(h->process);
    for (size_t k = 0; k < h->nfields; k++) {
        free(h->fields[k].name);
        free(h->fields[k].capture);
        free(h->fields[k].units);
    }
    free(h->fields);
    memset(h, 0, sizeof *h);
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

int weir_panda_header_copy(weir_panda_header *dst, const weir_panda_header *src)
{
    int oom = 0;
    memset(dst, 0, sizeof *dst);
    *dst = *src;
    dst->arm_time = dup_or_null(src->arm_time, &oom);
    dst->start_time = dup_or_null(src->start_time, &oom);
    dst->process = dup_or_null(src->process, &oom);
    dst->fields = src->nfields ? calloc(src->nfields, sizeof *dst->fields) : NULL;
    if (src->nfields && !dst->fields) {
        dst->nfields = 0;
        oom = 1;
    }
    for (size_t k = 0; dst->fields && k < src->nfields; k++) {
        dst->fields[k] = src->fields[k];
        dst->fields[k].name = dup_or_null(src->fields[k].name, &oom);
        dst->fields[k].capture = dup_or_null(src->fields[k].capture, &oom);
        dst->fields[k].units = dup_or_null(src->fields[k].units, &oom);
    }
    if (oom) {
        weir_panda_header_clear(dst);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

void weir_panda_clear(weir_panda_packet *p)
{
    if (!p) return;
    weir_panda_header_clear(&p->header);
    free(p->values);
    weir_buf_unref(p->raw);
    memset(p, 0, sizeof *p);
    p->frame = -1;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Next whitespace-separated token of [*s, end). */
static int token(const char **s, const char *end, const char **t, size_t *tn)
{
    while (*s < end && (**s == ' ' || **s == '\t'))
        (*s)++;
    *t = *s;
    while (*s < end && **s != ' ' && **s != '\t')
        (*s)++;
    *tn = (size_t)(*s - *t);
    return *tn > 0;
}

static int tok_is(const char *t, size_t tn, const char *w)
{
    return tn == strlen(w) && !memcmp(t, w, tn);
}

static int tok_f64(const char *t, size_t tn, double *out)
{
    char buf[64];
    if (!tn || tn >= sizeof buf) return -1;
    memcpy(buf, t, tn);
    buf[tn] = 0;
    char *e;
    errno = 0;
    *out = strtod(buf, &e);
    return *e || errno == ERANGE ? -1 : 0;
}

static int tok_i64(const char *t, size_t tn, int64_t *out)
{
    char buf[32];
    if (!tn || tn >= sizeof buf) return -1;
    memcpy(buf, t, tn);
    buf[tn] = 0;
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (*e || errno) return -1;
    *out = v;
    return 0;
}

/* One field line after "fields:" (without its newline, leading space kept). */
static int parse_field(const char *s, const char *end, weir_panda_field *f, size_t off, char *err,
                       size_t errlen)
{
    const char *t;
    size_t tn;
    const char *name, *cap;
    size_t nn, cn;
    if (!token(&s, end, &name, &nn) || !token(&s, end, &t, &tn) || !token(&s, end, &cap, &cn)) {
        bl_err(err, errlen,
               RWHO ": header, offset %zu: expected a field line \" NAME TYPE CAPTURE\"", off);
        return WEIR_EFORMAT;
    }
    int ty = -1;
    for (int k = 0; k < 4; k++)
        if (tok_is(t, tn, type_names[k])) ty = k;
    if (ty < 0) {
        bl_err(
            err, errlen,
            RWHO
            ": header, offset %zu: field type \"%.*s\" (expected uint32, int32, int64 or double)",
            off, (int)(tn > 20 ? 20 : tn), t);
        return WEIR_EFORMAT;
    }
    f->type = (weir_panda_type)ty;
    f->name = dup_n(name, nn);
    f->capture = dup_n(cap, cn);
    if (!f->name || !f->capture) return WEIR_ENOMEM;
    while (token(&s, end, &t, &tn)) {
        if (tok_is(t, tn, "scale:") || tok_is(t, tn, "offset:")) {
            int is_scale = t[0] == 's';
            const char *v;
            size_t vn;
            if (!token(&s, end, &v, &vn) || tok_f64(v, vn, is_scale ? &f->scale : &f->offset)) {
                bl_err(err, errlen, RWHO ": header, offset %zu: expected a number after \"%.*s\"",
                       off, (int)tn, t);
                return WEIR_EFORMAT;
            }
            f->scaled = 1;
        } else if (tok_is(t, tn, "units:")) {
            while (s < end && *s == ' ')
                s++;
            const char *ue = end;
            while (ue > s && (ue[-1] == ' ' || ue[-1] == '\r'))
                ue--;
            f->units = dup_n(s, (size_t)(ue - s));
            if (!f->units) return WEIR_ENOMEM;
            f->scaled = 1;
            break;
        } else {
            bl_err(err, errlen,
                   RWHO
                   ": header, offset %zu: unexpected \"%.*s\" (expected scale:, offset: or units:)",
                   off, (int)(tn > 20 ? 20 : tn), t);
            return WEIR_EFORMAT;
        }
    }
    return WEIR_OK;
}

static int parse_header(const char *s, size_t n, weir_panda_header *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    int in_fields = 0, saw_fields = 0, saw_format = 0, rc = WEIR_OK;
    int64_t declared_bytes = -1;
    size_t pos = 0;
    while (pos < n) {
        const char *ln = s + pos, *nl = memchr(ln, '\n', n - pos);
        if (!nl) {
            bl_err(err, errlen, RWHO ": header, offset %zu: line without a newline", pos);
            return WEIR_EFORMAT;
        }
        size_t len = (size_t)(nl - ln), off = pos;
        pos += len + 1;
        if (len == 0) break; /* the empty line ends the header */
        if (in_fields && ln[0] == ' ') {
            weir_panda_field *nf = realloc(h->fields, (h->nfields + 1) * sizeof *nf);
            if (!nf) return WEIR_ENOMEM;
            h->fields = nf;
            memset(&h->fields[h->nfields], 0, sizeof *nf);
            h->nfields++;
            rc = parse_field(ln, nl, &h->fields[h->nfields - 1], off, err, errlen);
            if (rc) return rc;
            continue;
        }
        in_fields = 0;
        const char *colon = memchr(ln, ':', len);
        if (!colon) {
            bl_err(err, errlen, RWHO ": header, offset %zu: expected \"key: value\"", off);
            return WEIR_EFORMAT;
        }
        size_t kl = (size_t)(colon - ln);
        const char *v = colon + 1;
        while (v < nl && *v == ' ')
            v++;
        const char *ve = nl;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\r'))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (tok_is(ln, kl, "fields")) {
            in_fields = saw_fields = 1;
        } else if (tok_is(ln, kl, "arm_time") || tok_is(ln, kl, "start_time") ||
                   tok_is(ln, kl, "process")) {
            char **dst = ln[0] == 'a' ? &h->arm_time : ln[0] == 's' ? &h->start_time : &h->process;
            free(*dst);
            if (!(*dst = dup_n(v, vl))) return WEIR_ENOMEM;
        } else if (tok_is(ln, kl, "missed") || tok_is(ln, kl, "sample_bytes")) {
            int64_t x;
            if (tok_i64(v, vl, &x) || x < 0) {
                bl_err(err, errlen, RWHO ": header, offset %zu: expected a count after \"%.*s:\"",
                       off, (int)kl, ln);
                return WEIR_EFORMAT;
            }
            if (ln[0] == 'm')
                h->missed = (uint64_t)x;
            else
                declared_bytes = x;
        } else if (tok_is(ln, kl, "format")) {
            saw_format = 1;
            if (tok_is(v, vl, "ASCII"))
                h->format = WEIR_PANDA_ASCII;
            else if (tok_is(v, vl, "Framed"))
                h->format = WEIR_PANDA_FRAMED;
            else {
                bl_err(err, errlen,
                       RWHO ": header, offset %zu: format \"%.*s\" (weir reads ASCII and Framed)",
                       off, (int)(vl > 20 ? 20 : vl), v);
                return WEIR_EUNSUPPORTED;
            }
        } /* other keys: ignored, for newer firmware */
    }
    if (!saw_fields || !h->nfields) {
        bl_err(err, errlen, RWHO ": header: expected a \"fields:\" list with at least one field");
        return WEIR_EFORMAT;
    }
    if (!saw_format) h->format = WEIR_PANDA_ASCII;
    for (size_t k = 0; k < h->nfields; k++)
        h->sample_bytes += type_sizes[h->fields[k].type];
    if (declared_bytes >= 0 && (size_t)declared_bytes != h->sample_bytes) {
        bl_err(err, errlen, RWHO ": header: sample_bytes %lld, but the fields add up to %zu",
               (long long)declared_bytes, h->sample_bytes);
        return WEIR_EFORMAT;
    }
    return WEIR_OK;
}

static int parse_values(const uint8_t *d, size_t n, const weir_panda_header *hdr,
                        weir_panda_packet *p, char *err, size_t errlen)
{
    p->values = calloc(hdr->nfields, sizeof *p->values);
    if (!p->values) return WEIR_ENOMEM;
    p->nvalues = hdr->nfields;
    if (d[0] == 'B') { /* "BIN " + length + one sample */
        if (hdr->format != WEIR_PANDA_FRAMED || n - 8 != hdr->sample_bytes) {
            bl_err(err, errlen,
                   RWHO
                   ": sample of %zu bytes, expected %zu for the header's fields in Framed format",
                   n - 8, hdr->sample_bytes);
            return WEIR_EFORMAT;
        }
        size_t off = 8;
        for (size_t k = 0; k < hdr->nfields; k++) {
            weir_panda_value *v = &p->values[k];
            uint64_t u = 0;
            size_t sz = type_sizes[hdr->fields[k].type];
            for (size_t b = 0; b < sz; b++)
                u |= (uint64_t)d[off + b] << (8 * b);
            off += sz;
            switch (hdr->fields[k].type) {
            case WEIR_PANDA_UINT32:
                v->i = (int64_t)(uint32_t)u;
                break;
            case WEIR_PANDA_INT32:
                v->i = (int32_t)(uint32_t)u;
                break;
            case WEIR_PANDA_INT64:
                v->i = (int64_t)u;
                break;
            case WEIR_PANDA_DOUBLE:
                memcpy(&v->d, &u, sizeof v->d);
                break;
            }
            v->is_int = hdr->fields[k].type != WEIR_PANDA_DOUBLE;
            if (v->is_int) v->d = (double)v->i;
        }
        return WEIR_OK;
    }
    const char *s = (const char *)d, *end = s + n;
    if (end > s && end[-1] == '\n') end--;
    for (size_t k = 0; k < hdr->nfields; k++) {
        const char *t;
        size_t tn;
        size_t off = (size_t)(s - (const char *)d);
        if (!token(&s, end, &t, &tn)) {
            bl_err(err, errlen,
                   RWHO ": data line, offset %zu: %zu values, expected %zu (one per field)", off, k,
                   hdr->nfields);
            return WEIR_EFORMAT;
        }
        weir_panda_value *v = &p->values[k];
        v->is_int = hdr->fields[k].type != WEIR_PANDA_DOUBLE;
        int bad = v->is_int ? tok_i64(t, tn, &v->i) : tok_f64(t, tn, &v->d);
        off = (size_t)(t - (const char *)d);
        if (bad) {
            bl_err(err, errlen, RWHO ": data line, offset %zu: \"%.*s\" is not a %s for %s", off,
                   (int)(tn > 24 ? 24 : tn), t, type_names[hdr->fields[k].type],
                   hdr->fields[k].name);
            return WEIR_EFORMAT;
        }
        if (v->is_int) v->d = (double)v->i;
    }
    const char *t;
    size_t tn;
    if (token(&s, end, &t, &tn)) {
        bl_err(err, errlen, RWHO ": data line: more values than the %zu fields", hdr->nfields);
        return WEIR_EFORMAT;
    }
    return WEIR_OK;
}

int weir_panda_parse(const weir_msg *m, const weir_panda_header *hdr, weir_panda_packet *p,
                     char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    if (!m || m->nparts != 1) {
        bl_err(err, errlen, RWHO ": expected one part, got %zu", m ? m->nparts : 0);
        return WEIR_EFORMAT;
    }
    const uint8_t *d = weir_buf_data(m->parts[0]);
    size_t n = weir_buf_size(m->parts[0]);
    int rc = WEIR_OK;
    if (n == 0) {
        bl_err(err, errlen, RWHO ": empty packet");
        return WEIR_EFORMAT;
    }
    if ((n == 3 && !memcmp(d, "OK\n", 3)) || (n == 2 && !memcmp(d, "OK", 2))) {
        p->kind = WEIR_BL_OTHER;
    } else if (n >= 3 && !memcmp(d, "ERR", 3)) {
        bl_err(err, errlen, RWHO ": the PandA refused the capture options: %.*s",
               (int)(n > 80 ? 80 : n), (const char *)d);
        rc = WEIR_EFORMAT;
    } else if (n >= 4 && !memcmp(d, "END ", 4)) {
        const char *s = (const char *)d + 4, *end = (const char *)d + n, *t;
        size_t tn;
        int64_t cnt;
        if (end[-1] != '\n' || !token(&s, end - 1, &t, &tn) || tok_i64(t, tn, &cnt) || cnt < 0) {
            bl_err(err, errlen, RWHO ": offset 4: expected \"END <samples> <reason>\\n\"");
            rc = WEIR_EFORMAT;
        } else {
            p->kind = WEIR_BL_END;
            p->end_samples = (uint64_t)cnt;
            while (s < end - 1 && *s == ' ')
                s++;
            size_t rl = (size_t)(end - 1 - s);
            if (rl >= sizeof p->end_reason) rl = sizeof p->end_reason - 1;
            memcpy(p->end_reason, s, rl);
            p->end_reason[rl] = 0;
        }
    } else if (n >= 4 && !memcmp(d, "BIN ", 4)) {
        uint32_t len = n >= 8 ? (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 |
                                    (uint32_t)d[7] << 24
                              : 0;
        if (n < 8 || len != n) {
            bl_err(err, errlen, RWHO ": offset 4: a BIN block of %zu bytes says %u", n, len);
            rc = WEIR_EFORMAT;
        } else {
            p->kind = WEIR_BL_DATA;
            if (hdr) rc = parse_values(d, n, hdr, p, err, errlen);
        }
    } else if (d[0] == ' ') {
        if (d[n - 1] != '\n') {
            bl_err(err, errlen, RWHO ": offset %zu: a data line must end in a newline", n);
            rc = WEIR_EFORMAT;
        } else {
            p->kind = WEIR_BL_DATA;
            if (hdr) rc = parse_values(d, n, hdr, p, err, errlen);
        }
    } else {
        p->kind = WEIR_BL_START;
        if (n < 2 || d[n - 1] != '\n' || d[n - 2] != '\n') {
            bl_err(err, errlen,
                   RWHO ": header, offset %zu: expected the header to end with an empty line", n);
            rc = WEIR_EFORMAT;
        } else {
            rc = parse_header((const char *)d, n, &p->header, err, errlen);
        }
    }
    if (rc) {
        if (rc == WEIR_ENOMEM) bl_err(err, errlen, RWHO ": out of memory");
        weir_panda_clear(p);
        return rc;
    }
    p->raw = weir_buf_ref(m->parts[0]);
    return WEIR_OK;
}

/* ==== PandA raw TCP: the framer =========================================== */

enum { F_STATUS, F_HEADER, F_DATA, F_BROKEN };

struct weir_panda_framer {
    uint8_t *buf;
    size_t start, len, cap; /* unread bytes are buf[start, len) */
    size_t scanned;         /* header: bytes after start already searched for "\n\n" */
    uint64_t consumed;
    int state;
    weir_panda_format format;
    size_t sample_bytes;
    uint8_t *samp; /* FRAMED: block payload not yet cut into samples */
    size_t samp_start, samp_len, samp_cap;
    int err_rc;
    char err[200];
};

int weir_panda_framer_new(weir_panda_framer **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? WEIR_OK : WEIR_ENOMEM;
}

void weir_panda_framer_free(weir_panda_framer *f)
{
    if (!f) return;
    free(f->buf);
    free(f->samp);
    free(f);
}

void weir_panda_framer_reset(weir_panda_framer *f)
{
    f->start = f->len = f->scanned = 0;
    f->samp_start = f->samp_len = 0;
    f->state = F_STATUS;
    f->err_rc = 0;
    f->err[0] = 0;
}

uint64_t weir_panda_framer_offset(const weir_panda_framer *f)
{
    return f->consumed;
}

static int reserve(uint8_t **b, size_t *cap, size_t need)
{
    if (need <= *cap) return WEIR_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*b, c);
    if (!p) return WEIR_ENOMEM;
    *b = p;
    *cap = c;
    return WEIR_OK;
}

int weir_panda_framer_feed(weir_panda_framer *f, const uint8_t *data, size_t n)
{
    if (!n) return WEIR_OK;
    if (f->start > 0 && f->start >= f->len / 2) { /* compact */
        memmove(f->buf, f->buf + f->start, f->len - f->start);
        f->len -= f->start;
        f->start = 0;
    }
    if (reserve(&f->buf, &f->cap, f->len + n)) return WEIR_ENOMEM;
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return WEIR_OK;
}

static int broken(weir_panda_framer *f, int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int broken(weir_panda_framer *f, int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
    f->state = F_BROKEN;
    f->err_rc = rc;
    bl_err(err, errlen, "%s", f->err);
    return rc;
}

/* Emits buf[start, start+n) as one packet. */
static int take(weir_panda_framer *f, size_t n, weir_msg *out)
{
    int rc = bl_emit_bytes(out, f->buf + f->start, n);
    if (rc) return rc;
    f->start += n;
    f->consumed += n;
    f->scanned = 0;
    return 1;
}

/* Length of the line at start including '\n', or 0 when incomplete. */
static size_t line_len(const weir_panda_framer *f)
{
    const uint8_t *s = f->buf + f->start;
    const uint8_t *nl = memchr(s, '\n', f->len - f->start);
    return nl ? (size_t)(nl - s) + 1 : 0;
}

static int emit_sample(weir_panda_framer *f, weir_msg *out)
{
    uint32_t len = (uint32_t)(f->sample_bytes + 8);
    uint8_t h[8] = {'B',
                    'I',
                    'N',
                    ' ',
                    (uint8_t)len,
                    (uint8_t)(len >> 8),
                    (uint8_t)(len >> 16),
                    (uint8_t)(len >> 24)};
    weir_buf *b = weir_buf_new(len);
    if (!b) return WEIR_ENOMEM;
    memcpy(weir_buf_mutable(b), h, 8);
    memcpy(weir_buf_mutable(b) + 8, f->samp + f->samp_start, f->sample_bytes);
    f->samp_start += f->sample_bytes;
    int rc = weir_msg_append(out, b);
    return rc ? rc : 1;
}

int weir_panda_framer_next(weir_panda_framer *f, weir_msg *out, char *err, size_t errlen)
{
    if (f->state == F_BROKEN) {
        bl_err(err, errlen, "%s", f->err);
        return f->err_rc;
    }
    if (!f->buf) return 0; /* nothing fed yet */
again:;
    size_t avail = f->len - f->start;
    const uint8_t *s = f->buf + f->start;
    if (f->state == F_STATUS) {
        if (!avail) return 0;
        if (s[0] == 'O' || s[0] == 'E') { /* "OK" or "ERR ..." status line */
            size_t ll = line_len(f);
            if (!ll) return 0;
            if (ll == 3 && !memcmp(s, "OK\n", 3)) {
                f->state = F_HEADER;
                return take(f, ll, out);
            }
            return broken(f, WEIR_EFORMAT, err, errlen,
                          RWHO ": offset %llu: the PandA answered \"%.*s\" (expected OK)",
                          (unsigned long long)f->consumed, (int)(ll - 1 > 60 ? 60 : ll - 1), s);
        }
        f->state = F_HEADER; /* NO_STATUS, or a capture that starts at the header */
    }
    if (f->state == F_HEADER) {
        if (!avail) return 0;
        if (s[0] == ' ' || s[0] == '\n' || (avail >= 4 && !memcmp(s, "BIN ", 4)))
            return broken(f, WEIR_EFORMAT, err, errlen,
                          RWHO ": offset %llu: expected a header (\"key: value\" lines), got data",
                          (unsigned long long)f->consumed);
        size_t from = f->scanned ? f->scanned - 1 : 0;
        for (size_t k = from; k + 1 < avail; k++)
            if (s[k] == '\n' && s[k + 1] == '\n') {
                weir_panda_header h;
                char herr[200];
                int rc = parse_header((const char *)s, k + 2, &h, herr, sizeof herr);
                f->format = h.format;
                f->sample_bytes = h.sample_bytes;
                weir_panda_header_clear(&h);
                if (rc)
                    return broken(f, rc, err, errlen, "%s (header at offset %llu)", herr,
                                  (unsigned long long)f->consumed);
                f->state = F_DATA;
                f->samp_start = f->samp_len = 0;
                return take(f, k + 2, out);
            }
        f->scanned = avail;
        if (avail > (1u << 20))
            return broken(f, WEIR_EFORMAT, err, errlen,
                          RWHO ": offset %llu: no empty line after 1 MiB of header",
                          (unsigned long long)f->consumed);
        return 0;
    }
    /* F_DATA */
    if (f->format == WEIR_PANDA_FRAMED && f->samp_len - f->samp_start >= f->sample_bytes)
        return emit_sample(f, out);
    if (!avail) return 0;
    if (s[0] == 'E') {
        if (avail < 4)
            return memcmp(s, "END ", avail)
                       ? broken(f, WEIR_EFORMAT, err, errlen, RWHO ": offset %llu: expected END",
                                (unsigned long long)f->consumed)
                       : 0;
        if (memcmp(s, "END ", 4))
            return broken(f, WEIR_EFORMAT, err, errlen, RWHO ": offset %llu: expected END",
                          (unsigned long long)f->consumed);
        size_t ll = line_len(f);
        if (!ll) return 0;
        if (f->samp_len != f->samp_start)
            return broken(f, WEIR_EFORMAT, err, errlen,
                          RWHO ": offset %llu: END after a partial sample (%zu of %zu bytes)",
                          (unsigned long long)f->consumed, f->samp_len - f->samp_start,
                          f->sample_bytes);
        f->state = F_HEADER; /* the next arm sends a new header */
        return take(f, ll, out);
    }
    if (f->format == WEIR_PANDA_ASCII) {
        if (s[0] != ' ')
            return broken(f, WEIR_EFORMAT, err, errlen,
                          RWHO ": offset %llu: expected a data line starting with a space, or END",
                          (unsigned long long)f->consumed);
        size_t ll = line_len(f);
        return ll ? take(f, ll, out) : 0;
    }
    /* FRAMED: "BIN " + uint32 LE length including these 8 bytes */
    if (memcmp(s, "BIN ", avail < 4 ? avail : 4))
        return broken(f, WEIR_EFORMAT, err, errlen,
                      RWHO ": offset %llu: expected \"BIN \" or \"END \"",
                      (unsigned long long)f->consumed);
    if (avail < 8) return 0;
    uint32_t len =
        (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
    if (len < 8)
        return broken(f, WEIR_EFORMAT, err, errlen,
                      RWHO ": offset %llu: BIN block length %u (expected at least 8)",
                      (unsigned long long)(f->consumed + 4), len);
    if (avail < len) return 0;
    if (f->samp_start) { /* compact the sample buffer */
        memmove(f->samp, f->samp + f->samp_start, f->samp_len - f->samp_start);
        f->samp_len -= f->samp_start;
        f->samp_start = 0;
    }
    if (len > 8) { /* an empty block adds nothing (and samp may still be NULL) */
        if (reserve(&f->samp, &f->samp_cap, f->samp_len + len - 8)) return WEIR_ENOMEM;
        memcpy(f->samp + f->samp_len, s + 8, len - 8);
        f->samp_len += len - 8;
    }
    f->start += len;
    f->consumed += len;
    if (f->samp_len - f->samp_start >= f->sample_bytes) return emit_sample(f, out);
    goto again; /* a block smaller than a sample: look at the next one */
}

/* ==== PandA raw TCP: encoders ============================================= */

/* The shortest decimal that reads back as exactly v. */
static void put_double(bl_bytes *b, double v)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || prec == 17) break;
    }
    bl_printf(b, "%s", buf);
}

int weir_panda_encode_ok(weir_msg *out)
{
    return bl_emit_bytes(out, "OK\n", 3);
}

int weir_panda_encode_header(weir_msg *out, const weir_panda_header *h)
{
    if (!h || !h->nfields) return WEIR_EINVAL;
    bl_bytes b = {0};
    if (h->arm_time) bl_printf(&b, "arm_time: %s\n", h->arm_time);
    if (h->start_time) bl_printf(&b, "start_time: %s\n", h->start_time);
    bl_printf(&b, "missed: %llu\n", (unsigned long long)h->missed);
    bl_printf(&b, "process: %s\n", h->process ? h->process : "Scaled");
    bl_printf(&b, "format: %s\n", h->format == WEIR_PANDA_FRAMED ? "Framed" : "ASCII");
    if (h->format == WEIR_PANDA_FRAMED) {
        size_t sb = 0;
        for (size_t k = 0; k < h->nfields; k++)
            sb += type_sizes[h->fields[k].type];
        bl_printf(&b, "sample_bytes: %zu\n", sb);
    }
    bl_printf(&b, "fields:\n");
    for (size_t k = 0; k < h->nfields; k++) {
        const weir_panda_field *f = &h->fields[k];
        if ((unsigned)f->type > WEIR_PANDA_DOUBLE || !f->name) {
            free(b.p);
            return WEIR_EINVAL;
        }
        bl_printf(&b, " %s %s %s", f->name, type_names[f->type], f->capture ? f->capture : "Value");
        if (f->scaled) {
            bl_printf(&b, " scale: ");
            put_double(&b, f->scale);
            bl_printf(&b, " offset: ");
            put_double(&b, f->offset);
            bl_printf(&b, " units: %s", f->units ? f->units : "");
        }
        bl_printf(&b, "\n");
    }
    bl_printf(&b, "\n");
    return bl_emit_built(out, &b);
}

int weir_panda_encode_sample(weir_msg *out, const weir_panda_header *h, const double *values)
{
    if (!h || !values) return WEIR_EINVAL;
    bl_bytes b = {0};
    if (h->format == WEIR_PANDA_FRAMED) {
        size_t sb = 0;
        for (size_t k = 0; k < h->nfields; k++)
            sb += type_sizes[h->fields[k].type];
        uint32_t len = (uint32_t)(sb + 8);
        uint8_t hd[8] = {'B',
                         'I',
                         'N',
                         ' ',
                         (uint8_t)len,
                         (uint8_t)(len >> 8),
                         (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
        bl_put(&b, hd, 8);
        for (size_t k = 0; k < h->nfields; k++) {
            uint64_t u;
            double v = values[k];
            switch (h->fields[k].type) {
            case WEIR_PANDA_UINT32:
                u = (uint32_t)(int64_t)v;
                break;
            case WEIR_PANDA_INT32:
                u = (uint32_t)(int32_t)(int64_t)v;
                break;
            case WEIR_PANDA_INT64:
                u = (uint64_t)(int64_t)v;
                break;
            default:
                memcpy(&u, &v, sizeof u);
                break;
            }
            for (size_t k2 = 0; k2 < type_sizes[h->fields[k].type]; k2++)
                bl_putc(&b, (uint8_t)(u >> (8 * k2)));
        }
    } else {
        for (size_t k = 0; k < h->nfields; k++) {
            bl_putc(&b, ' ');
            if (h->fields[k].type == WEIR_PANDA_DOUBLE)
                put_double(&b, values[k]);
            else
                bl_printf(&b, "%lld", (long long)values[k]);
        }
        bl_putc(&b, '\n');
    }
    return bl_emit_built(out, &b);
}

int weir_panda_encode_end(weir_msg *out, uint64_t samples, const char *reason)
{
    bl_bytes b = {0};
    bl_printf(&b, "END %llu %s\n", (unsigned long long)samples, reason ? reason : "Ok");
    return bl_emit_built(out, &b);
}
