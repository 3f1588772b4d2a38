/* beamline.c — one entry point for the beamline streams (weir/beamline.h):
 * the protocol table (name, dranspose typ, classifier), and the assembler
 * that regroups received messages the way dranspose's ingesters do before
 * they are classified.
 *
 * The classifier parses without decoding data (headers only: the workers
 * decode) and maps every packet to the live source's three kinds; packets
 * that are neither a start, a frame nor an end (heartbeats, the PandA's
 * "OK", unassembled pieces) return WEIR_ENOTFOUND so the caller can skip
 * them without counting them as malformed. The assembler is a queue of
 * complete messages fed by a per-protocol push function. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_XSPRESS3, P_CONTRAST, P_PCAP, P_PCAP_RAW, P_SARDANA, P_LECROY, P_ALBAEM, P_COUNT_ };

static const struct {
    const char *name, *typ;
} protos[P_COUNT_] = {
    [P_XSPRESS3] = {"xspress3", "xspress"},
    [P_CONTRAST] = {"contrast", "contrast"},
    [P_PCAP] = {"pcap", "PCAP"},
    [P_PCAP_RAW] = {"pcap-raw", "PCAP_RAW"},
    [P_SARDANA] = {"sardana", "sardana"},
    [P_LECROY] = {"lecroy", "lecroy_9fwdWp6Rq7"},
    [P_ALBAEM] = {"albaem", "albaem"},
};

static int proto_index(const char *name)
{
    for (int k = 0; name && k < P_COUNT_; k++)
        if (!strcmp(name, protos[k].name)) return k;
    return -1;
}

const char *weir_bl_kind_name(weir_bl_kind k)
{
    switch (k) {
    case WEIR_BL_START:
        return "start";
    case WEIR_BL_DATA:
        return "data";
    case WEIR_BL_END:
        return "end";
    case WEIR_BL_OTHER:
        return "other";
    }
    return "invalid";
}

const char *weir_beamline_typ(const char *protocol)
{
    int k = proto_index(protocol);
    return k < 0 ? NULL : protos[k].typ;
}

int weir_beamline_known(const char *protocol)
{
    return proto_index(protocol) >= 0;
}

/* ---- classify ------------------------------------------------------------ */

static int finish(int rc, weir_bl_kind k, int64_t f, const char *why, weir_stins_kind *kind,
                  int64_t *frame, char *err, size_t errlen)
{
    if (rc) return rc;
    if (k == WEIR_BL_OTHER) {
        bl_err(err, errlen, "%s", why);
        return WEIR_ENOTFOUND;
    }
    *kind = k == WEIR_BL_START  ? WEIR_STINS_HEADER
            : k == WEIR_BL_DATA ? WEIR_STINS_IMAGE
                                : WEIR_STINS_SERIES_END;
    *frame = k == WEIR_BL_DATA ? f : -1;
    return WEIR_OK;
}

int weir_beamline_classify(const char *protocol, const weir_msg *m, weir_stins_kind *kind,
                           int64_t *frame, char *err, size_t errlen)
{
    int rc;
    switch (proto_index(protocol)) {
    case P_XSPRESS3: {
        if (m && m->nparts == 1) { /* a lone old-format image JSON is a piece */
            cJSON *j = bl_json_part(m, 0, "xspress3", NULL, 0);
            const char *ht = bl_get_str(j, "htype");
            int piece = ht && !strcmp(ht, "image");
            cJSON_Delete(j);
            if (piece) {
                bl_err(err, errlen,
                       "xspress3: an old-format image header; its data and meta "
                       "follow as separate messages (assemble them)");
                return WEIR_ENOTFOUND;
            }
        }
        weir_xspress3_packet p;
        rc = weir_xspress3_parse(m, 0, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "", kind, frame, err, errlen);
        weir_xspress3_clear(&p);
        return rc;
    }
    case P_CONTRAST: {
        weir_contrast_packet p;
        rc = weir_contrast_parse(m, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "contrast: a heartbeat", kind, frame, err, errlen);
        weir_contrast_clear(&p);
        return rc;
    }
    case P_PCAP: {
        weir_pcap_packet p;
        rc = weir_pcap_parse(m, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "", kind, frame, err, errlen);
        weir_pcap_clear(&p);
        return rc;
    }
    case P_PCAP_RAW: {
        weir_panda_packet p;
        rc = weir_panda_parse(m, NULL, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "pcap-raw: the PandA's OK", kind, frame, err, errlen);
        weir_panda_clear(&p);
        return rc;
    }
    case P_SARDANA: {
        weir_sardana_packet p;
        rc = weir_sardana_parse(m, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "", kind, frame, err, errlen);
        weir_sardana_clear(&p);
        return rc;
    }
    case P_LECROY: {
        weir_lecroy_packet p;
        rc = weir_lecroy_parse(m, 0, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame,
                    p.what == WEIR_LECROY_TRACES
                        ? "lecroy: a lone trace (assemble the sequence from SEQSTART to SEQEND)"
                        : "lecroy: a lone SEQSTART/SEQEND (assemble the sequence)",
                    kind, frame, err, errlen);
        weir_lecroy_clear(&p);
        return rc;
    }
    case P_ALBAEM: {
        weir_albaem_packet p;
        rc = weir_albaem_parse(m, &p, err, errlen);
        rc = finish(rc, p.kind, p.frame, "", kind, frame, err, errlen);
        weir_albaem_clear(&p);
        return rc;
    }
    default:
        bl_err(err, errlen,
               "unknown protocol '%s' (expected xspress3, contrast, pcap, pcap-raw, sardana, "
               "lecroy or albaem)",
               protocol ? protocol : "(null)");
        return WEIR_EINVAL;
    }
}

/* ---- assembler ----------------------------------------------------------- */

struct weir_beamline_asm {
    int proto;
    weir_msg *q; /* ready messages q[head, n) */
    size_t head, n, cap;
    weir_msg cur;        /* xspress3: old-format image being joined; lecroy: sequence */
    int in_seq;          /* lecroy: between SEQSTART and SEQEND */
    int continuous;      /* lecroy: ntriggers == -1 */
    weir_buf *seq_start; /* lecroy: the cached SEQSTART */
    weir_panda_framer *framer;
};

int weir_beamline_asm_new(const char *protocol, weir_beamline_asm **out)
{
    *out = NULL;
    int k = proto_index(protocol);
    if (k < 0) return WEIR_EINVAL;
    weir_beamline_asm *a = calloc(1, sizeof *a);
    if (!a) return WEIR_ENOMEM;
    a->proto = k;
    weir_msg_init(&a->cur);
    if (k == P_PCAP_RAW && weir_panda_framer_new(&a->framer)) {
        free(a);
        return WEIR_ENOMEM;
    }
    *out = a;
    return WEIR_OK;
}

void weir_beamline_asm_free(weir_beamline_asm *a)
{
    if (!a) return;
    for (size_t k = a->head; k < a->n; k++)
        weir_msg_clear(&a->q[k]);
    free(a->q);
    weir_msg_clear(&a->cur);
    weir_buf_unref(a->seq_start);
    weir_panda_framer_free(a->framer);
    free(a);
}

/* Queues m (takes its parts; m is left empty). */
static int enqueue(weir_beamline_asm *a, weir_msg *m)
{
    if (a->head == a->n) a->head = a->n = 0;
    if (a->n == a->cap) {
        if (a->head) {
            memmove(a->q, a->q + a->head, (a->n - a->head) * sizeof *a->q);
            a->n -= a->head;
            a->head = 0;
        } else {
            size_t cap = a->cap ? a->cap * 2 : 16;
            weir_msg *q = realloc(a->q, cap * sizeof *q);
            if (!q) return WEIR_ENOMEM;
            a->q = q;
            a->cap = cap;
        }
    }
    a->q[a->n++] = *m;
    weir_msg_init(m);
    return WEIR_OK;
}

/* Moves all parts of src to the end of dst. */
static int move_parts(weir_msg *dst, weir_msg *src)
{
    int rc = WEIR_OK;
    for (size_t k = 0; k < src->nparts; k++) {
        if (!rc)
            rc = weir_msg_append(dst, src->parts[k]);
        else
            weir_buf_unref(src->parts[k]);
        src->parts[k] = NULL;
    }
    src->nparts = 0;
    weir_msg_clear(src);
    return rc;
}

static int push_xspress3(weir_beamline_asm *a, weir_msg *in)
{
    if (a->cur.nparts) { /* data, then meta, of an old-format image */
        int rc = move_parts(&a->cur, in);
        if (rc) return rc;
        return a->cur.nparts >= 3 ? enqueue(a, &a->cur) : WEIR_OK;
    }
    if (in->nparts == 1) {
        cJSON *j = bl_json_part(in, 0, "xspress3", NULL, 0);
        const char *ht = bl_get_str(j, "htype");
        int old_image = ht && !strcmp(ht, "image");
        cJSON_Delete(j);
        if (old_image) return move_parts(&a->cur, in);
    }
    return enqueue(a, in);
}

static int push_pcap(weir_beamline_asm *a, weir_msg *in, char *err, size_t errlen)
{
    weir_pcap_packet p;
    int rc = weir_pcap_parse(in, &p, err, errlen);
    if (rc) {
        weir_msg_clear(in);
        return rc;
    }
    int vectorised = 0;
    for (const cJSON *it = p.json->child; it; it = it->next)
        if (cJSON_IsArray(it) && strcmp(it->string, "message_id")) vectorised = 1;
    if (p.kind != WEIR_BL_DATA || !vectorised) {
        weir_pcap_clear(&p);
        return enqueue(a, in);
    }
    for (size_t i = 0; i < p.nvalues && !rc; i++) {
        weir_msg one;
        weir_msg_init(&one);
        rc = weir_pcap_split(&p, i, &one);
        if (!rc) rc = enqueue(a, &one);
        weir_msg_clear(&one);
    }
    weir_pcap_clear(&p);
    weir_msg_clear(in);
    return rc;
}

static int push_lecroy(weir_beamline_asm *a, weir_msg *in, char *err, size_t errlen)
{
    cJSON *j = bl_json_part(in, 0, "lecroy", err, errlen);
    int rc = WEIR_OK;
    if (!j) {
        weir_msg_clear(in);
        return WEIR_EJSON;
    }
    const char *ht = bl_get_str(j, "htype");
    int64_t w = -1, ntrig = 0;
    if (ht && !strcmp(ht, "traces")) {
        if (!a->in_seq) {
            bl_err(err, errlen, "lecroy: a trace outside a sequence (no SEQSTART before it)");
            rc = WEIR_EFORMAT;
            goto drop;
        }
        if (in->nparts != 3) {
            bl_err(err, errlen, "lecroy: a trace has 3 parts, got %zu", in->nparts);
            rc = WEIR_EFORMAT;
            goto drop;
        }
        cJSON_Delete(j);
        return move_parts(&a->cur, in);
    }
    if (!ht || strcmp(ht, "msg") || bl_get_i64(j, "what", &w) || w < 0 || w > 3 ||
        in->nparts != 1) {
        bl_err(err, errlen,
               "lecroy: part 1: expected a trace or {\"htype\": \"msg\", \"what\": 0..3}");
        rc = WEIR_EFORMAT;
        goto drop;
    }
    switch (w) {
    case WEIR_LECROY_PREPARE:
    case WEIR_LECROY_STOP:
        weir_msg_clear(&a->cur);
        a->in_seq = 0;
        weir_buf_unref(a->seq_start);
        a->seq_start = NULL;
        rc = enqueue(a, in);
        break;
    case WEIR_LECROY_SEQSTART:
        bl_get_i64(j, "ntriggers", &ntrig);
        a->continuous = ntrig == -1;
        weir_buf_unref(a->seq_start);
        a->seq_start = weir_buf_ref(in->parts[0]);
        weir_msg_clear(&a->cur);
        a->in_seq = 1;
        rc = move_parts(&a->cur, in);
        break;
    case WEIR_LECROY_SEQEND:
        if (!a->in_seq) {
            bl_err(err, errlen, "lecroy: SEQEND without a SEQSTART");
            rc = WEIR_EFORMAT;
            goto drop;
        }
        rc = move_parts(&a->cur, in);
        if (!rc) rc = enqueue(a, &a->cur);
        /* continuous mode: the next traces follow without a SEQSTART, and
         * dranspose repeats the first one in front of them */
        a->in_seq = a->continuous && a->seq_start;
        if (!rc && a->in_seq) rc = weir_msg_append(&a->cur, weir_buf_ref(a->seq_start));
        break;
    }
    cJSON_Delete(j);
    return rc;
drop:
    cJSON_Delete(j);
    weir_msg_clear(in);
    return rc;
}

static int drain_framer(weir_beamline_asm *a, char *err, size_t errlen)
{
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int rc = weir_panda_framer_next(a->framer, &m, err, errlen);
        if (rc == 1)
            rc = enqueue(a, &m); /* 0 when taken: look for the next packet */
        else if (rc == 0)
            return WEIR_OK; /* more bytes needed */
        weir_msg_clear(&m);
        if (rc) return rc;
    }
}

int weir_beamline_asm_feed_bytes(weir_beamline_asm *a, const uint8_t *data, size_t n, char *err,
                                 size_t errlen)
{
    if (!a->framer) {
        bl_err(err, errlen, "only pcap-raw takes bytes");
        return WEIR_EINVAL;
    }
    int rc = weir_panda_framer_feed(a->framer, data, n);
    return rc ? rc : drain_framer(a, err, errlen);
}

int weir_beamline_asm_push(weir_beamline_asm *a, weir_msg *in, char *err, size_t errlen)
{
    switch (a->proto) {
    case P_XSPRESS3:
        return push_xspress3(a, in);
    case P_PCAP:
        return push_pcap(a, in, err, errlen);
    case P_LECROY:
        return push_lecroy(a, in, err, errlen);
    case P_PCAP_RAW: {
        int rc = WEIR_OK;
        for (size_t k = 0; k < in->nparts && !rc; k++)
            rc = weir_beamline_asm_feed_bytes(a, weir_buf_data(in->parts[k]),
                                              weir_buf_size(in->parts[k]), err, errlen);
        weir_msg_clear(in);
        return rc;
    }
    default:
        return enqueue(a, in);
    }
}

int weir_beamline_asm_pop(weir_beamline_asm *a, weir_msg *out)
{
    if (a->head == a->n) return 0;
    *out = a->q[a->head++];
    return 1;
}
