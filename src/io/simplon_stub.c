/* simplon_stub.c — an in-memory DECTRIS SIMPLON REST server
 * (weir/simplon_stub.h).
 *
 * libmicrohttpd does the HTTP (one internal polling thread, so requests are
 * answered one after the other); this file only routes paths and keeps the
 * state. The access handler collects the body (refusing it with 413 as soon
 * as Content-Length or the bytes received pass the limit) and hands method,
 * path and body to handle(), which is also what weir_simplon_stub_handle()
 * and the fuzzer call. Parameters come from one constant table (module,
 * name, type, access, range or allowed values, unit, default); their
 * current values live in one cJSON object per module inside the stub.
 *
 * Two locks: `lock` guards the values and the state machine; `cmd_lock` is
 * held across a whole request so the owner's callbacks see commands in the
 * order they were made, and is never taken by the owner's functions, so a
 * callback may call them. */
#include "weir/simplon_stub.h"

#include "weir/error.h"
#include "weir/log.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "simplon-stub"
#define DEFAULT_MAX_BODY (64u << 10)

typedef enum { T_UINT, T_FLOAT, T_STRING, T_BOOL } vtype;

typedef enum { M_DETECTOR, M_STREAM, M_FILEWRITER, M_COUNT } module_id;

static const char *const module_names[M_COUNT] = {"detector", "stream", "filewriter"};

typedef struct {
    module_id module;
    const char *name;
    vtype type;
    int rw;
    double min, max;            /* numbers (min == max: no range) */
    const char *const *allowed; /* strings: NULL-terminated list, or NULL */
    const double *allowed_nums; /* numbers: list of nallowed values, or NULL */
    int nallowed;
    const char *unit;
    double dnum;      /* default of a number or bool */
    const char *dstr; /* default of a string */
} pdef;

static const char *const trigger_modes[] = {"exte", "exts", "inte", "ints", NULL};
static const char *const compressions[] = {"bslz4", "lz4", "none", NULL};
static const char *const roi_modes[] = {"disabled", "merge2x2", "lines", NULL};
static const char *const on_off[] = {"enabled", "disabled", NULL};
static const char *const details[] = {"none", "basic", "all", NULL};
static const char *const formats[] = {"legacy", "cbor", NULL};
static const double bit_depths[] = {8, 16, 32};
static const double roi_depths[] = {8, 16};

#define BIG 4294967295.0
static const pdef params[] = {
    {M_DETECTOR, "nimages", T_UINT, 1, 1, BIG, NULL, NULL, 0, NULL, 1, NULL},
    {M_DETECTOR, "ntrigger", T_UINT, 1, 1, BIG, NULL, NULL, 0, NULL, 1, NULL},
    {M_DETECTOR, "trigger_mode", T_STRING, 1, 0, 0, trigger_modes, NULL, 0, NULL, 0, "ints"},
    {M_DETECTOR, "count_time", T_FLOAT, 1, 1e-7, 3600, NULL, NULL, 0, "s", 0.001, NULL},
    {M_DETECTOR, "frame_time", T_FLOAT, 1, 1e-7, 3600, NULL, NULL, 0, "s", 0.001, NULL},
    {M_DETECTOR, "x_pixels_in_detector", T_UINT, 0, 1, 65535, NULL, NULL, 0, NULL, 512, NULL},
    {M_DETECTOR, "y_pixels_in_detector", T_UINT, 0, 1, 65535, NULL, NULL, 0, NULL, 512, NULL},
    {M_DETECTOR, "bit_depth_image", T_UINT, 0, 0, 0, NULL, bit_depths, 3, NULL, 16, NULL},
    {M_DETECTOR, "bit_depth_readout", T_UINT, 0, 0, 0, NULL, bit_depths, 3, NULL, 16, NULL},
    {M_DETECTOR, "compression", T_STRING, 1, 0, 0, compressions, NULL, 0, NULL, 0, "bslz4"},
    {M_DETECTOR, "roi_mode", T_STRING, 1, 0, 0, roi_modes, NULL, 0, NULL, 0, "disabled"},
    {M_DETECTOR, "roi_y_size", T_UINT, 1, 0, 65535, NULL, NULL, 0, NULL, 0, NULL},
    {M_DETECTOR, "roi_bit_depth", T_UINT, 1, 0, 0, NULL, roi_depths, 2, NULL, 16, NULL},
    {M_DETECTOR, "mask_to_zero", T_BOOL, 1, 0, 0, NULL, NULL, 0, NULL, 0, NULL},
    {M_DETECTOR, "photon_energy", T_FLOAT, 1, 100, 1e6, NULL, NULL, 0, "eV", 8041, NULL},
    {M_DETECTOR, "threshold_energy", T_FLOAT, 1, 50, 1e6, NULL, NULL, 0, "eV", 4020.5, NULL},
    {M_DETECTOR, "beam_center_x", T_FLOAT, 1, -1e6, 1e6, NULL, NULL, 0, "pixel", 0, NULL},
    {M_DETECTOR, "beam_center_y", T_FLOAT, 1, -1e6, 1e6, NULL, NULL, 0, "pixel", 0, NULL},
    {M_DETECTOR, "detector_distance", T_FLOAT, 1, 0, 1e3, NULL, NULL, 0, "m", 0.1, NULL},
    {M_DETECTOR, "x_pixel_size", T_FLOAT, 0, 0, 1, NULL, NULL, 0, "m", 7.5e-5, NULL},
    {M_DETECTOR, "y_pixel_size", T_FLOAT, 0, 0, 1, NULL, NULL, 0, "m", 7.5e-5, NULL},
    {M_DETECTOR, "sensor_material", T_STRING, 0, 0, 0, NULL, NULL, 0, NULL, 0, "Si"},
    {M_DETECTOR, "sensor_thickness", T_FLOAT, 0, 0, 1, NULL, NULL, 0, "m", 4.5e-4, NULL},
    {M_DETECTOR, "description", T_STRING, 0, 0, 0, NULL, NULL, 0, NULL, 0,
     "Dectris weir SIMPLON stub"},
    {M_DETECTOR, "detector_number", T_STRING, 0, 0, 0, NULL, NULL, 0, NULL, 0, "weir-0000"},
    {M_DETECTOR, "countrate_correction_applied", T_BOOL, 1, 0, 0, NULL, NULL, 0, NULL, 1, NULL},
    {M_DETECTOR, "flatfield_correction_applied", T_BOOL, 1, 0, 0, NULL, NULL, 0, NULL, 1, NULL},
    {M_DETECTOR, "pixel_mask_applied", T_BOOL, 1, 0, 0, NULL, NULL, 0, NULL, 1, NULL},
    {M_DETECTOR, "number_of_excluded_pixels", T_UINT, 0, 0, BIG, NULL, NULL, 0, NULL, 0, NULL},
    {M_STREAM, "mode", T_STRING, 1, 0, 0, on_off, NULL, 0, NULL, 0, "enabled"},
    {M_STREAM, "header_detail", T_STRING, 1, 0, 0, details, NULL, 0, NULL, 0, "basic"},
    {M_STREAM, "format", T_STRING, 1, 0, 0, formats, NULL, 0, NULL, 0, "legacy"},
    {M_FILEWRITER, "mode", T_STRING, 1, 0, 0, on_off, NULL, 0, NULL, 0, "disabled"},
    {M_FILEWRITER, "name_pattern", T_STRING, 1, 0, 0, NULL, NULL, 0, NULL, 0, "series_$id"},
    {M_FILEWRITER, "nimages_per_file", T_UINT, 1, 0, BIG, NULL, NULL, 0, NULL, 1000, NULL},
};
#define NPARAMS (sizeof params / sizeof params[0])

static const char *const state_names[] = {"idle", "ready", "acquire"};

struct weir_simplon_stub {
    weir_simplon_stub_callbacks cb;
    char bind_addr[64];
    int port;
    char version[32];
    size_t max_body;
    pthread_mutex_t lock;
    pthread_mutex_t cmd_lock;
    cJSON *values[M_COUNT]; /* {"name": value} per module */
    weir_simplon_state state;
    int64_t series;
    int64_t triggers; /* given in this series */
    struct MHD_Daemon *daemon;
};

typedef struct {
    int status;
    char *body;
    int json;
} reply;

__attribute__((format(printf, 3, 4))) static void set_error(reply *r, int status, const char *fmt,
                                                            ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(r->body);
    r->status = status;
    r->json = 0;
    r->body = strdup(msg);
}

/* Takes ownership of j. */
static void set_json(reply *r, int status, cJSON *j)
{
    free(r->body);
    r->status = status;
    r->json = 1;
    r->body = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!r->body) r->status = 0; /* out of memory */
}

static const pdef *find_param(module_id m, const char *name)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (params[i].module == m && !strcmp(params[i].name, name)) return &params[i];
    return NULL;
}

static cJSON *default_value(const pdef *p)
{
    switch (p->type) {
    case T_STRING:
        return cJSON_CreateString(p->dstr);
    case T_BOOL:
        return cJSON_CreateBool(p->dnum != 0);
    default:
        return cJSON_CreateNumber(p->dnum);
    }
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsBool(v)) return "a bool";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "something else";
}

/* Checks v against p; 0 or -1 with a message in msg. */
static int check(const pdef *p, const cJSON *v, char *msg, size_t len)
{
    switch (p->type) {
    case T_BOOL:
        if (!cJSON_IsBool(v)) {
            snprintf(msg, len, "%s: expected a bool (true or false), got %s", p->name,
                     type_name(v));
            return -1;
        }
        return 0;
    case T_STRING:
        if (!cJSON_IsString(v)) {
            snprintf(msg, len, "%s: expected a string, got %s", p->name, type_name(v));
            return -1;
        }
        if (strlen(v->valuestring) > 1024) {
            snprintf(msg, len, "%s: string longer than 1024 bytes", p->name);
            return -1;
        }
        if (p->allowed) {
            size_t o = 0;
            for (const char *const *a = p->allowed; *a; a++) {
                if (!strcmp(*a, v->valuestring)) return 0;
                o += (size_t)snprintf(msg + o, o < len ? len - o : 0, "%s%s",
                                      a == p->allowed ? "" : ", ", *a);
            }
            char allowed[256];
            snprintf(allowed, sizeof allowed, "%s", msg);
            snprintf(msg, len, "%s: \"%.64s\" is not one of the allowed values (%s)", p->name,
                     v->valuestring, allowed);
            return -1;
        }
        return 0;
    case T_UINT:
    case T_FLOAT: {
        if (!cJSON_IsNumber(v)) {
            snprintf(msg, len, "%s: expected %s, got %s", p->name,
                     p->type == T_UINT ? "an unsigned integer" : "a number", type_name(v));
            return -1;
        }
        double d = v->valuedouble;
        if (p->type == T_UINT && (d != floor(d) || d < 0)) {
            snprintf(msg, len, "%s: expected an unsigned integer, got %g", p->name, d);
            return -1;
        }
        if (p->min < p->max && (d < p->min || d > p->max)) {
            snprintf(msg, len, "%s: %g is out of range [%g, %g]", p->name, d, p->min, p->max);
            return -1;
        }
        if (p->allowed_nums) {
            for (int k = 0; k < p->nallowed; k++)
                if (p->allowed_nums[k] == d) return 0;
            snprintf(msg, len, "%s: %g is not an allowed value", p->name, d);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

int weir_simplon_stub_new(const weir_simplon_stub_config *cfg, weir_simplon_stub **out)
{
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    weir_simplon_stub_config dflt = {0};
    if (!cfg) cfg = &dflt;
    const char *ver = cfg->api_version ? cfg->api_version : "1.8.0";
    const char *addr = cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    if (strlen(ver) >= 32 || strlen(addr) >= 64 || cfg->port < 0 || cfg->port > 65535)
        return WEIR_EINVAL;
    weir_simplon_stub *s = calloc(1, sizeof *s);
    if (!s) return WEIR_ENOMEM;
    int rc = WEIR_ETHREAD;
    s->cb = cfg->cb;
    snprintf(s->version, sizeof s->version, "%s", ver);
    snprintf(s->bind_addr, sizeof s->bind_addr, "%s", addr);
    s->port = cfg->port;
    s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    if (pthread_mutex_init(&s->lock, NULL)) goto free_s;
    if (pthread_mutex_init(&s->cmd_lock, NULL)) goto destroy_lock;
    rc = WEIR_ENOMEM;
    for (int m = 0; m < M_COUNT; m++)
        if (!(s->values[m] = cJSON_CreateObject())) goto free_values;
    for (size_t i = 0; i < NPARAMS; i++) {
        cJSON *v = default_value(&params[i]);
        if (!v || !cJSON_AddItemToObject(s->values[params[i].module], params[i].name, v)) {
            cJSON_Delete(v);
            goto free_values;
        }
    }
    *out = s;
    return WEIR_OK;
free_values:
    for (int m = 0; m < M_COUNT; m++)
        cJSON_Delete(s->values[m]);
    pthread_mutex_destroy(&s->cmd_lock);
destroy_lock:
    pthread_mutex_destroy(&s->lock);
free_s:
    free(s);
    return rc;
}

static int module_of(const char *name, module_id *m)
{
    for (int i = 0; i < M_COUNT; i++)
        if (!strcmp(module_names[i], name)) {
            *m = (module_id)i;
            return 0;
        }
    return -1;
}

/* Replaces the stored value (lock held); 0 if it was equal already. */
static int store(weir_simplon_stub *s, const pdef *p, const cJSON *v)
{
    cJSON *obj = s->values[p->module];
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, p->name);
    if (old && cJSON_Compare(old, v, 1)) return 0;
    cJSON *nv = cJSON_Duplicate(v, 1);
    if (!nv) return -1;
    cJSON_ReplaceItemInObjectCaseSensitive(obj, p->name, nv);
    return 1;
}

static double num(weir_simplon_stub *s, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->values[M_DETECTOR], name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int weir_simplon_stub_set(weir_simplon_stub *s, const char *module, const char *name,
                          const cJSON *value)
{
    module_id m = M_DETECTOR;
    if (!s || !name || !value || (module && module_of(module, &m))) return WEIR_EINVAL;
    const pdef *p = find_param(m, name);
    if (!p) return WEIR_ENOTFOUND;
    char msg[256];
    if (check(p, value, msg, sizeof msg)) return WEIR_EPARAM;
    pthread_mutex_lock(&s->lock);
    int r = store(s, p, value);
    pthread_mutex_unlock(&s->lock);
    return r < 0 ? WEIR_ENOMEM : WEIR_OK;
}

cJSON *weir_simplon_stub_get(weir_simplon_stub *s, const char *module, const char *name)
{
    module_id m = M_DETECTOR;
    if (!s || !name || (module && module_of(module, &m))) return NULL;
    pthread_mutex_lock(&s->lock);
    cJSON *v = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(s->values[m], name), 1);
    pthread_mutex_unlock(&s->lock);
    return v;
}

weir_simplon_state weir_simplon_stub_state(weir_simplon_stub *s)
{
    pthread_mutex_lock(&s->lock);
    weir_simplon_state st = s->state;
    pthread_mutex_unlock(&s->lock);
    return st;
}

int64_t weir_simplon_stub_series(weir_simplon_stub *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t v = s->series;
    pthread_mutex_unlock(&s->lock);
    return v;
}

void weir_simplon_stub_trigger_done(weir_simplon_stub *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->state == WEIR_SIMPLON_ACQUIRE)
        s->state =
            s->triggers >= (int64_t)num(s, "ntrigger") ? WEIR_SIMPLON_IDLE : WEIR_SIMPLON_READY;
    pthread_mutex_unlock(&s->lock);
}

void weir_simplon_stub_series_done(weir_simplon_stub *s)
{
    pthread_mutex_lock(&s->lock);
    s->state = WEIR_SIMPLON_IDLE;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ routes */

static void config_get(weir_simplon_stub *s, const pdef *p, reply *r)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->lock);
    cJSON *v = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(s->values[p->module], p->name), 1);
    pthread_mutex_unlock(&s->lock);
    static const char *const tn[] = {"uint", "float", "string", "bool"};
    int ok = o && v && cJSON_AddItemToObject(o, "value", v);
    if (!ok) cJSON_Delete(v);
    ok = ok && cJSON_AddStringToObject(o, "value_type", tn[p->type]) &&
         cJSON_AddStringToObject(o, "access_mode", p->rw ? "rw" : "r");
    if (ok && p->min < p->max)
        ok = cJSON_AddNumberToObject(o, "min", p->min) && cJSON_AddNumberToObject(o, "max", p->max);
    if (ok && p->unit) ok = cJSON_AddStringToObject(o, "unit", p->unit) != NULL;
    if (ok && (p->allowed || p->allowed_nums)) {
        cJSON *a = cJSON_AddArrayToObject(o, "allowed_values");
        ok = a != NULL;
        for (const char *const *q = p->allowed; ok && q && *q; q++)
            ok = cJSON_AddItemToArray(a, cJSON_CreateString(*q));
        for (int k = 0; ok && p->allowed_nums && k < p->nallowed; k++)
            ok = cJSON_AddItemToArray(a, cJSON_CreateNumber(p->allowed_nums[k]));
    }
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    set_json(r, 200, o);
}

static void config_put(weir_simplon_stub *s, const pdef *p, const char *body, size_t len, reply *r)
{
    char msg[400];
    if (!p->rw) {
        set_error(r, 400, "%s is read-only", p->name);
        return;
    }
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (!cJSON_IsObject(j) || !v) {
        set_error(r, 400, "%s: the body must be a JSON object {\"value\": ...}", p->name);
        goto free_json;
    }
    if (check(p, v, msg, sizeof msg)) {
        set_error(r, 400, "%s", msg);
        goto free_json;
    }
    cJSON *changed = cJSON_CreateArray();
    if (!changed) goto free_json;
    int fail = 0;
    pthread_mutex_lock(&s->lock);
    if (store(s, p, v) < 0) fail = 1;
    cJSON_AddItemToArray(changed, cJSON_CreateString(p->name));
    /* what a DCU changes along: count_time <= frame_time, threshold at half the energy */
    const pdef *other = NULL;
    double ov = 0;
    if (!strcmp(p->name, "count_time") && num(s, "frame_time") < v->valuedouble) {
        other = find_param(M_DETECTOR, "frame_time");
        ov = v->valuedouble;
    } else if (!strcmp(p->name, "frame_time") && num(s, "count_time") > v->valuedouble) {
        other = find_param(M_DETECTOR, "count_time");
        ov = v->valuedouble;
    } else if (!strcmp(p->name, "photon_energy")) {
        other = find_param(M_DETECTOR, "threshold_energy");
        ov = v->valuedouble / 2;
    }
    if (other) {
        cJSON *n = cJSON_CreateNumber(ov);
        int st = n ? store(s, other, n) : -1;
        if (st < 0) fail = 1;
        if (st > 0) cJSON_AddItemToArray(changed, cJSON_CreateString(other->name));
        cJSON_Delete(n);
    }
    pthread_mutex_unlock(&s->lock);
    if (fail) {
        cJSON_Delete(changed);
        goto free_json;
    }
    set_json(r, 200, changed);
free_json:
    cJSON_Delete(j);
}

static cJSON *seq_reply(int64_t series)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddNumberToObject(o, "sequence id", (double)series)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

static void command(weir_simplon_stub *s, const char *name, reply *r)
{
    int64_t series;
    pthread_mutex_lock(&s->lock);
    weir_simplon_state st = s->state;
    if (!strcmp(name, "arm")) {
        if (st != WEIR_SIMPLON_IDLE) {
            pthread_mutex_unlock(&s->lock);
            set_error(r, 400, "arm: the detector is %s, not idle (disarm first)", state_names[st]);
            return;
        }
        series = ++s->series;
        s->triggers = 0;
        s->state = WEIR_SIMPLON_READY;
        cJSON *config = cJSON_Duplicate(s->values[M_DETECTOR], 1);
        pthread_mutex_unlock(&s->lock);
        if (!config) return;
        int refused = s->cb.on_arm ? s->cb.on_arm(s->cb.user, series, config) : 0;
        cJSON_Delete(config);
        if (refused) {
            pthread_mutex_lock(&s->lock);
            s->state = WEIR_SIMPLON_IDLE;
            pthread_mutex_unlock(&s->lock);
            set_error(r, 500, "arm: the simulator could not start series %lld (code %d)",
                      (long long)series, refused);
            return;
        }
        set_json(r, 200, seq_reply(series));
        return;
    }
    if (!strcmp(name, "trigger")) {
        int64_t ntrigger = (int64_t)num(s, "ntrigger");
        if (st == WEIR_SIMPLON_IDLE || s->triggers >= ntrigger) {
            series = s->series;
            pthread_mutex_unlock(&s->lock);
            if (st == WEIR_SIMPLON_IDLE)
                set_error(r, 400, "trigger: the detector is idle, not armed");
            else
                set_error(r, 400, "trigger: all %lld triggers of series %lld were given",
                          (long long)ntrigger, (long long)series);
            return;
        }
        int64_t k = s->triggers++;
        series = s->series;
        s->state = WEIR_SIMPLON_ACQUIRE;
        pthread_mutex_unlock(&s->lock);
        if (s->cb.on_trigger) s->cb.on_trigger(s->cb.user, series, k);
        set_json(r, 200, seq_reply(series));
        return;
    }
    if (!strcmp(name, "disarm") || !strcmp(name, "cancel") || !strcmp(name, "abort") ||
        !strcmp(name, "initialize")) {
        series = s->series;
        s->state = WEIR_SIMPLON_IDLE;
        pthread_mutex_unlock(&s->lock);
        if (st != WEIR_SIMPLON_IDLE && s->cb.on_disarm) s->cb.on_disarm(s->cb.user, series, name);
        if (!strcmp(name, "initialize"))
            set_json(r, 200, cJSON_CreateObject());
        else
            set_json(r, 200, seq_reply(series));
        return;
    }
    pthread_mutex_unlock(&s->lock);
    set_error(r, 404, "unknown detector command \"%.64s\"", name);
}

static void status_get(weir_simplon_stub *s, module_id m, const char *name, reply *r)
{
    if (strcmp(name, "state")) {
        set_error(r, 404, "unknown %s status \"%.64s\"", module_names[m], name);
        return;
    }
    const char *v;
    pthread_mutex_lock(&s->lock);
    if (m == M_DETECTOR) {
        v = state_names[s->state];
    } else {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(s->values[m], "mode");
        v = cJSON_IsString(mode) && !strcmp(mode->valuestring, "enabled") ? "ready" : "disabled";
    }
    pthread_mutex_unlock(&s->lock);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "value", v) ||
              !cJSON_AddStringToObject(o, "value_type", "string") ||
              !cJSON_AddStringToObject(o, "access_mode", "r"))) {
        cJSON_Delete(o);
        o = NULL;
    }
    set_json(r, 200, o);
}

#define MAX_SEGS 8
#define MAX_PATH 512

static void route(weir_simplon_stub *s, const char *method, const char *path, const char *body,
                  size_t len, reply *r)
{
    char buf[MAX_PATH];
    char *seg[MAX_SEGS];
    int n = 0;
    size_t pl = strcspn(path, "?#");
    if (path[0] != '/' || pl >= sizeof buf) {
        set_error(r, 404, "unknown path");
        return;
    }
    memcpy(buf, path, pl);
    buf[pl] = 0;
    for (char *save = NULL, *t = strtok_r(buf + 1, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGS) {
            n++;
            break;
        }
        seg[n++] = t;
    }
    int get = !strcmp(method, "GET"), put = !strcmp(method, "PUT");
    module_id m;
    if (n < 3 || n > 5 || module_of(seg[0], &m) || strcmp(seg[1], "api")) goto not_found;
    if (n == 3 && !strcmp(seg[2], "version")) {
        if (!get) goto bad_method;
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "value", s->version) ||
                  !cJSON_AddStringToObject(o, "value_type", "string"))) {
            cJSON_Delete(o);
            o = NULL;
        }
        set_json(r, 200, o);
        return;
    }
    if (n != 5) goto not_found;
    if (strcmp(seg[2], s->version)) {
        set_error(r, 404, "API version \"%.32s\" not served (this is %s)", seg[2], s->version);
        return;
    }
    if (!strcmp(seg[3], "config")) {
        const pdef *p = find_param(m, seg[4]);
        if (!p) {
            set_error(r, 404, "unknown %s config parameter \"%.64s\"", module_names[m], seg[4]);
            return;
        }
        if (get)
            config_get(s, p, r);
        else if (put)
            config_put(s, p, body, len, r);
        else
            goto bad_method;
        return;
    }
    if (!strcmp(seg[3], "status")) {
        if (!get) goto bad_method;
        status_get(s, m, seg[4], r);
        return;
    }
    if (!strcmp(seg[3], "command") && m == M_DETECTOR) {
        if (!put) goto bad_method;
        command(s, seg[4], r);
        return;
    }
not_found:
    set_error(r, 404, "unknown path %.200s", path);
    return;
bad_method:
    set_error(r, 405, "%.16s not allowed on %.200s", method, path);
}

static void handle(weir_simplon_stub *s, const char *method, const char *path, const char *body,
                   size_t len, reply *r)
{
    pthread_mutex_lock(&s->cmd_lock);
    route(s, method, path, body, len, r);
    pthread_mutex_unlock(&s->cmd_lock);
    if (!r->body) r->status = 0;
    WEIR_LOGD(COMP, "%s %s -> %d", method, path, r->status);
}

int weir_simplon_stub_handle(weir_simplon_stub *s, const char *method, const char *path,
                             const char *body, size_t body_len, int *status, char **out)
{
    if (!s || !method || !path || !status || !out || (!body && body_len)) return WEIR_EINVAL;
    reply r = {0};
    handle(s, method, path, body, body_len, &r);
    if (!r.status) {
        free(r.body);
        return WEIR_ENOMEM;
    }
    *status = r.status;
    *out = r.body;
    return WEIR_OK;
}

/* ------------------------------------------------------------------- HTTP */

typedef struct {
    char *body;
    size_t len;
    int too_big;
} upload;

static enum MHD_Result send_reply(struct MHD_Connection *conn, reply *r)
{
    if (!r->status) return MHD_NO;
    size_t len = strlen(r->body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->json ? "application/json; charset=utf-8"
                                    : "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result too_large(weir_simplon_stub *s, struct MHD_Connection *conn)
{
    reply r = {0};
    set_error(&r, 413, "request body larger than %zu bytes", s->max_body);
    return send_reply(conn, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    weir_simplon_stub *s = cls;
    upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u) return MHD_NO;
        *con_cls = u;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            u->too_big = 1;
            return too_large(s, conn); /* before "100 Continue": the body is never sent */
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!u->too_big) {
            if (*upload_size > s->max_body - u->len) {
                u->too_big = 1;
                free(u->body);
                u->body = NULL;
                u->len = 0;
            } else {
                char *b = realloc(u->body, u->len + *upload_size + 1);
                if (!b) return MHD_NO;
                memcpy(b + u->len, upload_data, *upload_size);
                u->body = b;
                u->len += *upload_size;
                b[u->len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (u->too_big) return too_large(s, conn);
    reply r = {0};
    handle(s, method, url, u->body, u->len, &r);
    return send_reply(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    upload *u = *con_cls;
    if (u) {
        free(u->body);
        free(u);
        *con_cls = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    if (weir_log_enabled(WEIR_LOG_DEBUG)) weir_vlog(WEIR_LOG_DEBUG, COMP, fmt, ap);
}

int weir_simplon_stub_start(weir_simplon_stub *s, char *err, size_t errlen)
{
    if (!s || s->daemon) return WEIR_EINVAL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    if (inet_pton(AF_INET, s->bind_addr, &sa.sin_addr) != 1) {
        if (err && errlen) snprintf(err, errlen, "SIMPLON stub: bad address %s", s->bind_addr);
        return WEIR_EINVAL;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!s->daemon) {
        if (err && errlen)
            snprintf(err, errlen, "SIMPLON stub: cannot serve HTTP on %s:%d (port in use?)",
                     s->bind_addr, s->port);
        return WEIR_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port) s->port = info->port;
    WEIR_LOGD(COMP, "serving SIMPLON %s on http://%s:%d", s->version, s->bind_addr, s->port);
    return WEIR_OK;
}

int weir_simplon_stub_port(const weir_simplon_stub *s)
{
    return s && s->daemon ? s->port : 0;
}

void weir_simplon_stub_free(weir_simplon_stub *s)
{
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    for (int m = 0; m < M_COUNT; m++)
        cJSON_Delete(s->values[m]);
    pthread_mutex_destroy(&s->cmd_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
