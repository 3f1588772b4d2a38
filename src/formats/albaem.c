/* albaem.c — the AlbaEM electrometer stream (weir/beamline.h,
 * reference/dranspose.md §3.11).
 *
 * Single-part JSON with "version": 1, a "message_id" counting from 1 and
 * "message_type" series-start / data / series-end. Data messages carry
 * "frame_number", "timestamp" (s), "acquisition_timestamp" (ns since the
 * epoch, above 2^53, so it is read exactly from the text rather than
 * through cJSON's doubles) and "channel1".."channel4" (A). */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <string.h>

#define WHO "albaem"

void weir_albaem_clear(weir_albaem_packet *p)
{
    if (!p) return;
    cJSON_Delete(p->json);
    memset(p, 0, sizeof *p);
    p->frame = -1;
}

int weir_albaem_parse(const weir_msg *m, weir_albaem_packet *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->message_id = -1;
    if (!m || m->nparts != 1) {
        bl_err(err, errlen, WHO ": expected one JSON part, got %zu parts", m ? m->nparts : 0);
        return WEIR_EFORMAT;
    }
    p->json = bl_json_part(m, 0, WHO, err, errlen);
    if (!p->json) return WEIR_EJSON;
    const char *mt = bl_get_str(p->json, "message_type");
    bl_get_i64(p->json, "message_id", &p->message_id);
    if (mt && !strcmp(mt, "series-start")) {
        p->kind = WEIR_BL_START;
        return WEIR_OK;
    }
    if (mt && !strcmp(mt, "series-end")) {
        p->kind = WEIR_BL_END;
        return WEIR_OK;
    }
    if (!mt || strcmp(mt, "data")) {
        bl_err(err, errlen,
               WHO ": part 1: expected \"message_type\" series-start, data or series-end");
        goto fail;
    }
    if (bl_get_i64(p->json, "frame_number", &p->frame) || p->frame < 0) {
        bl_err(err, errlen,
               WHO ": part 1: a data message needs \"frame_number\" as an integer >= 0");
        goto fail;
    }
    for (int c = 0; c < 4; c++) {
        char key[16];
        snprintf(key, sizeof key, "channel%d", c + 1);
        if (bl_get_f64(p->json, key, &p->channel[c])) {
            bl_err(err, errlen, WHO ": part 1: a data message needs \"%s\" as a number", key);
            goto fail;
        }
    }
    bl_get_f64(p->json, "timestamp", &p->timestamp);
    if (bl_exact_i64(m->parts[0], "acquisition_timestamp", &p->acquisition_timestamp))
        bl_get_i64(p->json, "acquisition_timestamp", &p->acquisition_timestamp);
    p->kind = WEIR_BL_DATA;
    return WEIR_OK;
fail:
    weir_albaem_clear(p);
    return WEIR_EFORMAT;
}

static cJSON *envelope(int64_t message_id, const char *type)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddNumberToObject(j, "version", 1) ||
        !cJSON_AddStringToObject(j, "message_type", type) ||
        !cJSON_AddNumberToObject(j, "message_id", (double)message_id)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int weir_albaem_encode_start(weir_msg *out, int64_t message_id)
{
    cJSON *j = envelope(message_id, "series-start");
    return j ? bl_emit_json(out, j) : WEIR_ENOMEM;
}

int weir_albaem_encode_data(weir_msg *out, int64_t message_id, int64_t frame_number,
                            double timestamp, int64_t acquisition_timestamp,
                            const double channel[4])
{
    if (frame_number < 0 || !channel) return WEIR_EINVAL;
    /* printed by hand: cJSON would print the nanosecond timestamp as a double */
    bl_bytes b = {0};
    bl_printf(&b,
              "{\"version\": 1, \"message_type\": \"data\", \"message_id\": %lld, "
              "\"frame_number\": %lld, \"timestamp\": %.17g, \"acquisition_timestamp\": %lld",
              (long long)message_id, (long long)frame_number, timestamp,
              (long long)acquisition_timestamp);
    for (int c = 0; c < 4; c++)
        bl_printf(&b, ", \"channel%d\": %.17g", c + 1, channel[c]);
    bl_printf(&b, "}");
    return bl_emit_built(out, &b);
}

int weir_albaem_encode_end(weir_msg *out, int64_t message_id)
{
    cJSON *j = envelope(message_id, "series-end"), *ds = cJSON_CreateObject();
    if (!j || !ds || !cJSON_AddFalseToObject(ds, "read_overflow") ||
        !cJSON_AddFalseToObject(ds, "memory_overflow") ||
        !cJSON_AddItemToObject(j, "detector_specific", ds)) {
        cJSON_Delete(ds);
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}
