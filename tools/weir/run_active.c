/* run_active.c — active acquisition for `weir run`: weir configures, arms
 * and triggers the detector through its control API, as LiberTEM-live's
 * active mode does (passive mode waits for an acquisition started
 * elsewhere).
 *
 * DECTRIS: the SIMPLON REST API (src/io/simplon.c): stream mode enabled,
 * header_detail, the config values given, arm (its sequence id is the
 * series the stream will carry), then ntrigger triggers for ints/inte on a
 * thread of their own (a DCU answers a trigger only when its frames are
 * taken), and disarm after the series. Merlin: the control port
 * (src/io/merlin_ctl.c): NUMFRAMESTOACQUIRE, TRIGGERSTART 5 for the
 * software trigger, STARTACQUISITION, then SOFTTRIGGER. */
#include "cli.h"

#include "weir/error.h"
#include "weir/log.h"
#include "weir/merlin_ctl.h"
#include "weir/simplon.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run_active {
    int dectris;
    /* DECTRIS */
    weir_simplon *api;
    cJSON *config; /* values to set before every arm */
    char header_detail[16];
    int64_t ntrigger, series;
    int rest_triggers;
    pthread_t trig;
    int trig_running, trig_rc;
    char trig_err[512];
    /* Merlin */
    weir_merlin_ctl *ctl;
    long long frames;
    int soft;
};

static int host_port(const char *s, char *host, size_t hl, int *port)
{
    const char *c = s ? strrchr(s, ':') : NULL;
    if (!c || (size_t)(c - s) >= hl) return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    *port = atoi(c + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

int run_active_open(const cJSON *cfg, run_active **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg) return WEIR_OK;
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(cfg, "detector");
    run_active *a = calloc(1, sizeof *a);
    if (!a) return WEIR_ENOMEM;
    char host[256];
    int port, rc = WEIR_OK;
    if (cJSON_IsString(det) && !strcmp(det->valuestring, "dectris")) {
        a->dectris = 1;
        const cJSON *api = cJSON_GetObjectItemCaseSensitive(cfg, "api");
        if (!cJSON_IsString(api) || host_port(api->valuestring, host, sizeof host, &port)) {
            snprintf(err, errlen, "active: \"api\" must be \"HOST:PORT\" of the SIMPLON API");
            rc = WEIR_EINVAL;
            goto out;
        }
        weir_simplon_config sc = {.host = host, .port = port};
        rc = weir_simplon_new(&sc, &a->api, err, errlen);
        if (rc) goto out;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cfg, "config");
        a->config = c ? cJSON_Duplicate(c, 1) : cJSON_CreateObject();
        const cJSON *hd = cJSON_GetObjectItemCaseSensitive(cfg, "header_detail");
        snprintf(a->header_detail, sizeof a->header_detail, "%s",
                 cJSON_IsString(hd) ? hd->valuestring : "basic");
    } else if (cJSON_IsString(det) && !strcmp(det->valuestring, "merlin")) {
        const cJSON *ctl = cJSON_GetObjectItemCaseSensitive(cfg, "control");
        if (!cJSON_IsString(ctl) || host_port(ctl->valuestring, host, sizeof host, &port)) {
            snprintf(err, errlen,
                     "active: \"control\" must be \"HOST:PORT\" of Merlin's "
                     "control port");
            rc = WEIR_EINVAL;
            goto out;
        }
        rc = weir_merlin_ctl_connect(host, port, 5000, &a->ctl, err, errlen);
        if (rc) goto out;
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(cfg, "frames");
        a->frames = cJSON_IsNumber(fr) ? (long long)fr->valuedouble : 0;
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(cfg, "trigger");
        a->soft = !cJSON_IsString(tr) || !strcmp(tr->valuestring, "soft");
    } else {
        snprintf(err, errlen, "active: \"detector\" must be \"dectris\" or \"merlin\"");
        rc = WEIR_EINVAL;
    }
out:
    if (rc) {
        run_active_close(a);
        return rc;
    }
    *out = a;
    return WEIR_OK;
}

int run_active_arm(run_active *a, char *err, size_t errlen)
{
    if (!a) return WEIR_OK;
    int rc;
    if (!a->dectris) {
        int mrc;
        if (a->frames > 0 && (rc = weir_merlin_ctl_set_int(a->ctl, "NUMFRAMESTOACQUIRE", a->frames,
                                                           &mrc, err, errlen)))
            return rc;
        if ((rc = weir_merlin_ctl_set_int(a->ctl, "TRIGGERSTART", a->soft ? 5 : 0, &mrc, err,
                                          errlen)))
            return rc;
        return weir_merlin_ctl_cmd(a->ctl, "STARTACQUISITION", &mrc, err, errlen);
    }
    if ((rc = weir_simplon_stream_set_enabled(a->api, 1, err, errlen)) ||
        (rc = weir_simplon_stream_set_header_detail(a->api, a->header_detail, err, errlen)))
        return rc;
    const cJSON *it;
    cJSON_ArrayForEach(it, a->config)
    {
        cJSON *changed = NULL;
        rc = weir_simplon_config_set(a->api, it->string, it, &changed, err, errlen);
        cJSON_Delete(changed);
        if (rc) return rc;
    }
    int64_t nt = 1;
    char mode[16] = "";
    if ((rc = weir_simplon_config_get_int(a->api, "ntrigger", &nt, err, errlen)) ||
        (rc = weir_simplon_config_get_string(a->api, "trigger_mode", mode, sizeof mode, err,
                                             errlen)))
        return rc;
    a->ntrigger = nt;
    a->rest_triggers = !strcmp(mode, "ints") || !strcmp(mode, "inte");
    rc = weir_simplon_arm(a->api, &a->series, err, errlen);
    if (!rc)
        WEIR_LOGI("run", "DECTRIS armed: series %lld (%s, %lld trigger(s))", (long long)a->series,
                  mode, (long long)nt);
    return rc;
}

static void *trigger_main(void *arg)
{
    run_active *a = arg;
    for (int64_t t = 0; t < a->ntrigger && !a->trig_rc; t++)
        a->trig_rc = weir_simplon_trigger(a->api, a->trig_err, sizeof a->trig_err);
    return NULL;
}

int run_active_trigger(run_active *a, char *err, size_t errlen)
{
    if (!a) return WEIR_OK;
    if (!a->dectris) {
        int mrc;
        return a->soft ? weir_merlin_ctl_cmd(a->ctl, "SOFTTRIGGER", &mrc, err, errlen) : WEIR_OK;
    }
    if (!a->rest_triggers) return WEIR_OK;
    a->trig_rc = 0;
    if (pthread_create(&a->trig, NULL, trigger_main, a)) {
        snprintf(err, errlen, "active: cannot start the trigger thread");
        return WEIR_ETHREAD;
    }
    a->trig_running = 1;
    return WEIR_OK;
}

int run_active_done(run_active *a, char *err, size_t errlen)
{
    if (!a) return WEIR_OK;
    if (!a->dectris) return WEIR_OK;
    if (a->trig_running) {
        pthread_join(a->trig, NULL);
        a->trig_running = 0;
        if (a->trig_rc) {
            snprintf(err, errlen, "%s", a->trig_err);
            return a->trig_rc;
        }
    }
    return weir_simplon_disarm(a->api, NULL, err, errlen);
}

void run_active_close(run_active *a)
{
    if (!a) return;
    if (a->trig_running) {
        weir_simplon_abort(a->api, NULL, 0);
        pthread_join(a->trig, NULL);
    }
    weir_simplon_free(a->api);
    cJSON_Delete(a->config);
    weir_merlin_ctl_close(a->ctl);
    free(a);
}
