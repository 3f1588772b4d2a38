/* contrast.c — the Contrast scan stream (weir/beamline.h,
 * reference/dranspose.md §3.6).
 *
 * Every message is one part: a pickled dict (protocol 2 with an
 * OrderedDict and numpy arrays for scan data, protocol 4 for heartbeats)
 * whose "status" says what it is: started, running, finished or heartbeat.
 * The pickle is never unpickled: weir_pickle_scan walks its opcodes and
 * reads "status" and "scannr" from the top-level dict; the message stays
 * opaque bytes for the workers. The encoder writes the same kind of pickle
 * with only plain values, for weir's simulator and tests. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <string.h>

#define WHO "contrast"

void weir_contrast_clear(weir_contrast_packet *p)
{
    if (!p) return;
    weir_buf_unref(p->pickle);
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->scannr = -1;
}

int weir_contrast_parse(const weir_msg *m, weir_contrast_packet *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->scannr = -1;
    if (!m || m->nparts != 1) {
        bl_err(err, errlen, WHO ": expected one part (a pickled dict), got %zu", m ? m->nparts : 0);
        return WEIR_EFORMAT;
    }
    const uint8_t *d = weir_buf_data(m->parts[0]);
    size_t n = weir_buf_size(m->parts[0]);
    weir_pickle_value st, sn;
    char perr[160];
    int rc = weir_pickle_scan(d, n, &p->pickle_protocol, "status", &st, perr, sizeof perr);
    if (rc) {
        bl_err(err, errlen, WHO ": part 1: %s", perr);
        return rc;
    }
    if (st.type != WEIR_PICKLE_STR || st.len >= sizeof p->status) {
        bl_err(err, errlen, WHO ": part 1: the pickle is not a dict with a text \"status\"");
        return WEIR_EFORMAT;
    }
    memcpy(p->status, st.str, st.len);
    p->status[st.len] = 0;
    if (!strcmp(p->status, "started"))
        p->kind = WEIR_BL_START;
    else if (!strcmp(p->status, "running"))
        p->kind = WEIR_BL_DATA;
    else if (!strcmp(p->status, "finished"))
        p->kind = WEIR_BL_END;
    else if (!strcmp(p->status, "heartbeat"))
        p->kind = WEIR_BL_OTHER;
    else {
        bl_err(err, errlen,
               WHO ": part 1: \"status\" \"%s\" (expected started, running, finished or heartbeat)",
               p->status);
        memset(p, 0, sizeof *p);
        p->frame = p->scannr = -1;
        return WEIR_EFORMAT;
    }
    if (weir_pickle_scan(d, n, NULL, "scannr", &sn, NULL, 0) == 0 && sn.type == WEIR_PICKLE_INT)
        p->scannr = sn.i;
    p->pickle = weir_buf_ref(m->parts[0]);
    return WEIR_OK;
}

/* BINUNICODE: 'X' + uint32 LE length + UTF-8 */
static void put_text(bl_bytes *b, const char *s)
{
    size_t n = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    bl_put(b, h, 5);
    bl_put(b, s, n);
}

int weir_contrast_encode(weir_msg *out, const char *status, int64_t scannr, double dt)
{
    if (!status || strlen(status) >= sizeof((weir_contrast_packet *)0)->status) return WEIR_EINVAL;
    int heartbeat = !strcmp(status, "heartbeat");
    bl_bytes b = {0};
    bl_putc(&b, 0x80); /* PROTO */
    bl_putc(&b, heartbeat ? 4 : 2);
    bl_putc(&b, '}'); /* EMPTY_DICT */
    bl_putc(&b, '('); /* MARK */
    put_text(&b, "status");
    put_text(&b, status);
    if (scannr >= 0 && scannr <= INT32_MAX) {
        put_text(&b, "scannr");
        uint8_t v[5] = {'J', (uint8_t)scannr, (uint8_t)(scannr >> 8), (uint8_t)(scannr >> 16),
                        (uint8_t)(scannr >> 24)};
        bl_put(&b, v, 5);
    }
    if (!strcmp(status, "running") && dt >= 0) {
        put_text(&b, "dt");
        uint64_t u;
        memcpy(&u, &dt, sizeof u);
        bl_putc(&b, 'G'); /* BINFLOAT, big-endian */
        for (int k = 7; k >= 0; k--)
            bl_putc(&b, (uint8_t)(u >> (8 * k)));
    }
    bl_putc(&b, 'u'); /* SETITEMS */
    bl_putc(&b, '.'); /* STOP */
    return bl_emit_built(out, &b);
}
