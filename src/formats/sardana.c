/* sardana.c — the Sardana recorder's scan stream (weir/beamline.h,
 * reference/dranspose.md §3.9).
 *
 * Sardana's dranspose recorder POSTs one JSON document per scan step:
 * "type" DataDescription (series start: "serialno", "title",
 * "column_desc", ...), RecordData (one point: "point_nb" counting from 0 and
 * one member per channel) and RecordEnd. weir takes each body as a
 * single-part message, as dranspose's ingester forwards it. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <string.h>

#define WHO "sardana"

void weir_sardana_clear(weir_sardana_packet *p)
{
    if (!p) return;
    cJSON_Delete(p->json);
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->serialno = -1;
}

int weir_sardana_parse(const weir_msg *m, weir_sardana_packet *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->serialno = -1;
    if (!m || m->nparts != 1) {
        bl_err(err, errlen, WHO ": expected one JSON part, got %zu parts", m ? m->nparts : 0);
        return WEIR_EFORMAT;
    }
    p->json = bl_json_part(m, 0, WHO, err, errlen);
    if (!p->json) return WEIR_EJSON;
    p->type = bl_get_str(p->json, "type");
    if (p->type && !strcmp(p->type, "DataDescription")) {
        p->kind = WEIR_BL_START;
        bl_get_i64(p->json, "serialno", &p->serialno);
        return WEIR_OK;
    }
    if (p->type && !strcmp(p->type, "RecordEnd")) {
        p->kind = WEIR_BL_END;
        return WEIR_OK;
    }
    if (p->type && !strcmp(p->type, "RecordData")) {
        if (bl_get_i64(p->json, "point_nb", &p->frame) || p->frame < 0) {
            bl_err(err, errlen, WHO ": part 1: RecordData needs \"point_nb\" as an integer >= 0");
            weir_sardana_clear(p);
            return WEIR_EFORMAT;
        }
        p->kind = WEIR_BL_DATA;
        return WEIR_OK;
    }
    bl_err(err, errlen, WHO ": part 1: expected \"type\" DataDescription, RecordData or RecordEnd");
    weir_sardana_clear(p);
    return WEIR_EFORMAT;
}

int weir_sardana_encode_desc(weir_msg *out, int64_t serialno, const char *title, size_t ncolumns,
                             const char *const *columns)
{
    cJSON *j = cJSON_CreateObject(), *cd = cJSON_CreateArray();
    int ok = j && cd && cJSON_AddStringToObject(j, "type", "DataDescription") &&
             cJSON_AddNumberToObject(j, "serialno", (double)serialno) &&
             cJSON_AddStringToObject(j, "title", title ? title : "");
    for (size_t k = 0; ok && k <= ncolumns; k++) {
        cJSON *c = cJSON_CreateObject();
        const char *name = k ? columns[k - 1] : "point_nb";
        ok = c && cJSON_AddItemToArray(cd, c) && cJSON_AddStringToObject(c, "name", name) &&
             cJSON_AddStringToObject(c, "label", name) &&
             cJSON_AddStringToObject(c, "dtype", k ? "float64" : "int64");
        if (!ok && c && !c->prev) cJSON_Delete(c);
    }
    if (ok) {
        ok = cJSON_AddItemToObject(j, "column_desc", cd) != 0;
        cd = NULL;
    }
    cJSON_Delete(cd);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}

int weir_sardana_encode_record(weir_msg *out, int64_t point_nb, double timestamp, size_t ncolumns,
                               const char *const *columns, const double *values)
{
    if (point_nb < 0 || (ncolumns && (!columns || !values))) return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject();
    int ok = j && cJSON_AddStringToObject(j, "type", "RecordData") &&
             cJSON_AddNumberToObject(j, "timestamp", timestamp) &&
             cJSON_AddNumberToObject(j, "point_nb", (double)point_nb);
    for (size_t k = 0; ok && k < ncolumns; k++)
        ok = cJSON_AddNumberToObject(j, columns[k], values[k]) != NULL;
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}

int weir_sardana_encode_end(weir_msg *out)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "type", "RecordEnd")) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}
