/* sim_active.c — `weir sim dectris1|dectris2 --simplon PORT`: a DECTRIS
 * detector driven through its SIMPLON REST API.
 *
 * A SIMPLON stub (libmicrohttpd, src/io/simplon_stub.c) takes the client's
 * configuration, arm, trigger and disarm; this file is the detector behind
 * it: at arm it encodes the series (synthetic frames or a NeXus master
 * file) with the arm's sequence id as series id and sends the header; each
 * trigger releases nimages frames (ints) or one (inte); exts/exte send
 * everything at once; the end message follows the last frame. The stub's
 * callbacks only hand the work to this thread (they run on the HTTP
 * server's thread and must return at once). */
#include "sim.h"

#include "weir/dectris_h5.h"
#include "weir/error.h"
#include "weir/simplon_stub.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t armed;    /* series armed and not yet served; 0 = none */
    int64_t triggers; /* triggers of the armed series */
    int aborted;
    long disarms;  /* disarm / cancel / abort / initialize calls */
    cJSON *config; /* the detector configuration at arm */
} sstate;

static int on_arm(void *user, int64_t series, const cJSON *config)
{
    sstate *st = user;
    pthread_mutex_lock(&st->mu);
    st->armed = series;
    st->triggers = 0;
    st->aborted = 0;
    cJSON_Delete(st->config);
    st->config = cJSON_Duplicate(config, 1);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static void on_trigger(void *user, int64_t series, int64_t trigger)
{
    sstate *st = user;
    pthread_mutex_lock(&st->mu);
    st->triggers = trigger + 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void on_disarm(void *user, int64_t series, const char *command)
{
    sstate *st = user;
    pthread_mutex_lock(&st->mu);
    if (strcmp(command, "disarm")) st->aborted = 1;
    st->disarms++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static int64_t cfg_int(const cJSON *c, const char *k, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

static void set_int(weir_simplon_stub *s, const char *name, int64_t v)
{
    cJSON *j = cJSON_CreateNumber((double)v);
    if (weir_simplon_stub_set(s, NULL, name, j))
        fprintf(stderr, "weir sim: cannot preset %s = %lld on the SIMPLON stub\n", name,
                (long long)v);
    cJSON_Delete(j);
}

/* Waits until the armed series has more than `k` triggers (1) or was
 * aborted (0). */
static int wait_trigger(sstate *st, int64_t k)
{
    pthread_mutex_lock(&st->mu);
    while (st->triggers <= k && !st->aborted)
        pthread_cond_wait(&st->cv, &st->mu);
    int ok = !st->aborted;
    pthread_mutex_unlock(&st->mu);
    return ok;
}

int sim_dectris_simplon(const sim_simplon_opts *o)
{
    sstate st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    weir_simplon_stub_config sc = {
        .port = o->http_port,
        .cb = {.user = &st, .on_arm = on_arm, .on_trigger = on_trigger, .on_disarm = on_disarm}};
    weir_simplon_stub *stub = NULL;
    char err[512] = "";
    int rc = 1;
    void *zctx = zmq_ctx_new(),
         *sock = zmq_socket(zctx, strcmp(o->socket, "pub") ? ZMQ_PUSH : ZMQ_PUB);
    int linger = 10000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if ((o->bind ? zmq_bind(sock, o->endpoint) : zmq_connect(sock, o->endpoint)) != 0) {
        fprintf(stderr, "weir sim: cannot %s %s: %s\n", o->bind ? "bind" : "connect to",
                o->endpoint, zmq_strerror(zmq_errno()));
        goto out;
    }
    if (weir_simplon_stub_new(&sc, &stub)) goto out;
    /* the detector's geometry from the data it serves */
    if (o->from) {
        weir_dectris_h5 *h;
        if (weir_dectris_h5_open(o->from, &h, err, sizeof err)) {
            fprintf(stderr, "weir sim: %s\n", err);
            goto out;
        }
        const weir_dectris_series *ser = weir_dectris_h5_series(h);
        set_int(stub, "x_pixels_in_detector", (int64_t)ser->x_pixels);
        set_int(stub, "y_pixels_in_detector", (int64_t)ser->y_pixels);
        set_int(stub, "nimages", (int64_t)weir_dectris_h5_frames(h));
        weir_dectris_h5_close(h);
    } else {
        set_int(stub, "x_pixels_in_detector", (int64_t)o->w);
        set_int(stub, "y_pixels_in_detector", (int64_t)o->h);
        set_int(stub, "nimages", (int64_t)o->synthetic);
    }
    set_int(stub, "bit_depth_image", 16);
    if (weir_simplon_stub_start(stub, err, sizeof err)) {
        fprintf(stderr, "weir sim: SIMPLON stub: %s\n", err);
        goto out;
    }
    fprintf(stderr, "weir sim: SIMPLON API on http://127.0.0.1:%d, stream on %s\n",
            weir_simplon_stub_port(stub), o->endpoint);
    rc = 0;
    for (uint64_t served = 0; !rc && (o->series == 0 || served < o->series); served++) {
        pthread_mutex_lock(&st.mu);
        while (!st.armed)
            pthread_cond_wait(&st.cv, &st.mu);
        int64_t series = st.armed;
        int64_t nimages = cfg_int(st.config, "nimages", 1),
                ntrigger = cfg_int(st.config, "ntrigger", 1);
        char mode[16] = "ints";
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(st.config, "trigger_mode");
        if (cJSON_IsString(tm)) snprintf(mode, sizeof mode, "%s", tm->valuestring);
        pthread_mutex_unlock(&st.mu);
        int per_trigger_one = !strcmp(mode, "inte") || !strcmp(mode, "exte");
        /* the stream's header_detail, as the client set it */
        char detail[16] = "basic";
        cJSON *hd = weir_simplon_stub_get(stub, "stream", "header_detail");
        if (cJSON_IsString(hd)) snprintf(detail, sizeof detail, "%s", hd->valuestring);
        cJSON_Delete(hd);
        int rest_triggers = !strcmp(mode, "ints") || !strcmp(mode, "inte");
        uint64_t frames = (uint64_t)(per_trigger_one ? ntrigger : nimages * ntrigger);
        msglist l = {0};
        err[0] = 0;
        rc = o->from ? dectris_from_h5(o->version, o->from, o->enc, series, &l, err, sizeof err)
                     : dectris_series(o->version, frames, o->h, o->w, o->seed, o->enc, series,
                                      detail, &l);
        if (rc || l.n < 2) {
            fprintf(stderr, "weir sim: cannot encode series %lld: %s\n", (long long)series, err);
            clear(&l);
            rc = 1;
            break;
        }
        size_t nimg = l.n - 2, sent = 0;
        rc = send_msg(sock, &l.m[0]);
        fprintf(stderr, "weir sim: series %lld armed (%s, %lld x %lld): header sent\n",
                (long long)series, mode, (long long)ntrigger, (long long)nimages);
        if (rest_triggers) {
            size_t per = per_trigger_one ? 1 : (size_t)nimages;
            for (int64_t t = 0; !rc && t < ntrigger && sent < nimg; t++) {
                if (!wait_trigger(&st, t)) break;
                for (size_t k = 0; !rc && k < per && sent < nimg; k++)
                    rc = send_msg(sock, &l.m[1 + sent++]);
                weir_simplon_stub_trigger_done(stub);
            }
        } else {
            while (!rc && sent < nimg)
                rc = send_msg(sock, &l.m[1 + sent++]);
        }
        if (!rc) rc = send_msg(sock, &l.m[l.n - 1]);
        if (!rest_triggers) weir_simplon_stub_series_done(stub);
        fprintf(stderr, "weir sim: series %lld: %zu frames and the end sent\n", (long long)series,
                sent);
        pthread_mutex_lock(&st.mu);
        st.armed = 0;
        pthread_mutex_unlock(&st.mu);
        clear(&l);
    }
    /* the client disarms after the series: answer that before going away */
    if (!rc && o->series) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        pthread_mutex_lock(&st.mu);
        while (st.disarms < (long)o->series && pthread_cond_timedwait(&st.cv, &st.mu, &dl) == 0)
            ;
        pthread_mutex_unlock(&st.mu);
    }
out:
    weir_simplon_stub_free(stub);
    cJSON_Delete(st.config);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    return rc;
}
