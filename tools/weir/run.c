/* run.c — `weir run CONFIG`: a live pipeline from a JSON config.
 *
 * The config names the streams (protocol, endpoint, socket type), the worker
 * and reducer plug-ins, the worker count, the distribution mode and the
 * parameters. The run lasts one acquisition (from the series start to its
 * end) or, with --continuous, scan after scan with finish() after each,
 * until SIGINT/SIGTERM. Under mpirun the same config runs on ranks.
 *
 * {"streams": [{"name": "xrd", "protocol": "stins",
 *               "endpoint": "tcp://127.0.0.1:9999", "socket": "pull", "bind": true}],
 *  "worker": "build/examples/roi_mean_worker.so",
 *  "reducer": "build/examples/tutorial_reducer.so",
 *  "nworkers": 2, "dist": "pull", "output_dir": "out", "rcvhwm": 16,
 *  "partial": false, "reorder_ms": 1000,
 *  (per stream also "policy": "wait"|"partial", "reorder_ms", "timeout_ms"),
 *  "nav_shape": [-1, 64],
 *  "hooks": {"on_ready_for_data": "shell command (started, not waited for)",
 *            "on_determine_nav_shape": "command printing e.g. 32,64"},
 *  "active": {"detector": "dectris", "api": "HOST:PORT", "header_detail": "basic",
 *             "config": {"nimages": 4, "ntrigger": 2, "trigger_mode": "ints"}}
 *          or {"detector": "merlin", "control": "HOST:6341", "frames": 9,
 *             "trigger": "soft"|"hard"} (omitted: passive),
 *  "parameters": {"till_x": "3", "from_y": "7"},
 *  "http": "127.0.0.1:5000", "http_rank": 0}
 *
 * With "http" (or --http / --port) the HTTP control plane serves the run:
 * the engine is re-created per acquisition, so the server is attached to
 * each in turn and keeps serving between them (state armed while waiting
 * for a series, finished after it; the results stay visible). Parameters
 * changed over HTTP carry over to the next acquisition. Stop and abort
 * end the acquisition and the run, as Ctrl-C does. Under mpirun the same
 * holds with the server on rank "http_rank" (cli_run_mpi, one MPI run per
 * acquisition). */
#include "cli.h"

#include "weir/engine.h"
#include "weir/hooks.h"
#include "weir/error.h"
#include "weir/live.h"
#include "weir/log.h"
#include "weir/navshape.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* The live source a signal handler may stop. A signal handler cannot be
 * handed a context, so this one pointer is process state. */
static weir_live *volatile g_live;

static void on_signal(int sig)
{
    (void)sig;
    if (g_live) weir_live_stop(g_live);
}

/* The control plane's hook: stop and abort end the live source (the
 * server has already told the engine); a run cannot be started from HTTP. */
static int run_control(void *ud, weir_http_cmd cmd, char *err, size_t errlen)
{
    if (cmd == WEIR_HTTP_START) {
        snprintf(err, errlen, "weir run starts with the detector's series, not on request");
        return WEIR_EINVAL;
    }
    weir_live_stop(ud);
    return 0;
}

static void run_help(FILE *f)
{
    fprintf(f,
            "usage: weir run CONFIG.json [--continuous] [--quiet] [MPI options]\n\n"
            "Runs a live pipeline: streams (ZeroMQ or TCP; protocols stins, dectris1,\n"
            "dectris2, merlin, concert; socket pull or sub, bind or connect) into the worker\n"
            "and reducer plug-ins named in the config. Ends after the acquisition's series\n"
            "end; --continuous goes on scan after scan (finish() after each) until Ctrl-C.\n"
            "Config keys: streams [{name, protocol, endpoint, socket, bind, policy\n"
            "(wait|partial), reorder_ms, timeout_ms}], worker, reducer, nworkers, dist,\n"
            "affinity_group, output_dir, rcvhwm, partial, reorder_ms, parameters\n"
            "({name: value} or dranspose's list), nav_shape (up to two -1), hooks\n"
            "{on_ready_for_data, on_determine_nav_shape} (shell commands; the second gets\n"
            "WEIR_FRAMES and WEIR_DETECTOR_SHAPE and prints the shape), active (weir arms\n"
            "and triggers the detector: {detector: dectris, api: HOST:PORT, config: {...},\n"
            "header_detail} or {detector: merlin, control: HOST:PORT, frames, trigger:\n"
            "soft|hard}; without it weir waits for an acquisition started elsewhere), http\n"
            "(\"ADDR:PORT\": the control plane, as --http), http_rank (under mpirun: the\n"
            "rank that serves it, as --http-rank).\n\n%s\n%s",
            CLI_HTTP_HELP, CLI_MPI_HELP);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jint(const cJSON *o, const char *k, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}

/* A source whose first event was already read. */
typedef struct {
    weir_source src;
    weir_event *first;
} prefetched;

static int prefetched_next(void *ud, weir_event **ev)
{
    prefetched *p = ud;
    if (p->first) {
        *ev = p->first;
        p->first = NULL;
        return WEIR_OK;
    }
    return p->src.next(p->src.ud, ev);
}

typedef struct acq_ctx acq_ctx;
static int ready_hook(acq_ctx *a, int scan);
static void log_acq(const acq_ctx *a, int scan);

/* Rank 0's live source under mpirun: one acquisition after the other. */
typedef struct {
    weir_live *live;
    acq_ctx *acq;
    int continuous;
    prefetched pf;
} live_src;

/* Waits for acquisition i's first event (the series start). */
static int ls_next(void *ud, int i)
{
    live_src *l = ud;
    weir_event_free(l->pf.first); /* one a failed run never took */
    l->pf = (prefetched){weir_live_source(l->live), NULL};
    if (i > 0 && (!l->continuous || weir_live_stopped(l->live))) return 0;
    WEIR_LOGI("run", "waiting for acquisition %d", i + 1);
    if (ready_hook(l->acq, i + 1)) return -1;
    if (l->pf.src.next(l->pf.src.ud, &l->pf.first) || !l->pf.first)
        return weir_live_stopped(l->live) ? 0 : -1; /* an error, already reported */
    log_acq(l->acq, i + 1);
    return 1;
}

static int ls_open(void *ud, weir_source *src, char *err, size_t errlen)
{
    live_src *l = ud;
    *src = (weir_source){prefetched_next, NULL, &l->pf};
    return WEIR_OK;
}

/* Rank 0: stop and abort from the serving rank end the live source. */
static int ls_control(void *ud, weir_http_cmd cmd, char *err, size_t errlen)
{
    live_src *l = ud;
    return run_control(l->live, cmd, err, errlen);
}

static size_t ls_streams(void *ud, weir_live_stream_stats *out, size_t cap)
{
    live_src *l = ud;
    return weir_live_stream_stats_get(l->live, out, cap);
}

static int ls_report(void *ud, FILE *f)
{
    live_src *l = ud;
    weir_live_report(l->live, f);
    return weir_live_rejected(l->live) != 0;
}

static void ls_close(void *ud)
{
    live_src *l = ud;
    weir_event_free(l->pf.first);
    l->pf.first = NULL;
}

static int load_params(weir_params *p, const cJSON *j, char *err, size_t errlen)
{
    if (!j) return WEIR_OK;
    if (cJSON_IsArray(j)) {
        char *text = cJSON_PrintUnformatted(j);
        int rc = text ? weir_params_load_json(p, text, strlen(text), err, errlen) : WEIR_ENOMEM;
        free(text);
        return rc;
    }
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "\"parameters\" must be an object {name: value} or a list");
        return WEIR_EFORMAT;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        char num[64];
        const char *v = it->valuestring;
        if (cJSON_IsNumber(it)) {
            snprintf(num, sizeof num, "%.17g", it->valuedouble);
            v = num;
        } else if (cJSON_IsBool(it)) {
            v = cJSON_IsTrue(it) ? "True" : "False";
        } else if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "parameter '%s': expected a string, number or bool", it->string);
            return WEIR_EFORMAT;
        }
        int rc = weir_params_set(p, it->string, v, strlen(v), 0, err, errlen);
        if (rc) return rc;
    }
    return WEIR_OK;
}

/* ---- acquisition hooks and the nav shape ---- */

extern char **environ;

struct acq_ctx {
    int64_t user[8]; /* the config's nav_shape */
    int nuser;
    const char *nav_hook, *ready_hook;
    const weir_hooks *plugin; /* hooks written in C ("hooks": {"plugin": ...}) */
    void *dl;
    int64_t nav[8]; /* the current acquisition's */
    int nnav;
    uint64_t frames;
    pid_t ready_pid;
};

/* "3,4", "[3, 4]", "3 4 -1": up to 8 integers; returns the count or -1. */
static int parse_shape(const char *s, int64_t *out)
{
    int n = 0;
    while (*s) {
        if (strchr(" \t\r\n,[]()", *s)) {
            s++;
            continue;
        }
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || n == 8) return -1;
        out[n++] = v;
        s = end;
    }
    return n;
}

/* Runs the on_determine_nav_shape command with WEIR_FRAMES and
 * WEIR_DETECTOR_SHAPE in its environment; its output is the shape. */
static int nav_hook(acq_ctx *a, const weir_acq_info *info, int64_t *shape, int *n, char *err,
                    size_t errlen)
{
    char cmd[4096], det[64] = "";
    if (info->ndet)
        snprintf(det, sizeof det, "%lld,%lld", (long long)info->det[0], (long long)info->det[1]);
    snprintf(cmd, sizeof cmd,
             "WEIR_FRAMES=%llu WEIR_DETECTOR_SHAPE='%s'; export WEIR_FRAMES "
             "WEIR_DETECTOR_SHAPE; %s",
             (unsigned long long)info->frames, det, a->nav_hook);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(err, errlen, "on_determine_nav_shape: cannot run '%s'", a->nav_hook);
        return WEIR_EIO;
    }
    char out[512] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    int st = pclose(p);
    if (st != 0) {
        snprintf(err, errlen, "on_determine_nav_shape: '%s' failed (status %d)", a->nav_hook, st);
        return WEIR_EUSER;
    }
    *n = parse_shape(out, shape);
    if (*n < 0) {
        snprintf(err, errlen,
                 "on_determine_nav_shape: '%s' printed '%s', expected a shape such as 4,8",
                 a->nav_hook, out);
        return WEIR_EFORMAT;
    }
    return WEIR_OK;
}

static int on_acquisition(void *ud, const weir_acq_info *info, char *err, size_t errlen)
{
    acq_ctx *a = ud;
    int64_t user[8];
    int nuser = a->nuser;
    memcpy(user, a->user, sizeof user);
    if (a->nav_hook) {
        int n = 0;
        int rc = nav_hook(a, info, user, &n, err, errlen);
        if (rc) return rc;
        if (n > 0) nuser = n;
    }
    if (a->plugin && a->plugin->on_determine_nav_shape) {
        int64_t shape[8];
        int n = a->plugin->on_determine_nav_shape(info->frames, info->det, info->ndet, shape);
        if (n < 0 || n > 8) {
            snprintf(err, errlen, "hooks plug-in '%s': on_determine_nav_shape returned %d",
                     a->plugin->name ? a->plugin->name : "?", n);
            return WEIR_EUSER;
        }
        if (n > 0) {
            memcpy(user, shape, (size_t)n * sizeof *shape);
            nuser = n;
        }
    }
    a->frames = info->frames;
    a->nnav = 0;
    if (!nuser && !info->ndet && !info->frames) return WEIR_OK; /* nothing to go by */
    if (!info->frames) {
        if (nuser) {
            for (int i = 0; i < nuser; i++)
                if (user[i] < 0) {
                    snprintf(err, errlen,
                             "nav_shape has -1 but the detector announced no frame count");
                    return WEIR_EINVAL;
                }
            memcpy(a->nav, user, (size_t)nuser * sizeof *user);
            a->nnav = nuser;
        }
        return WEIR_OK;
    }
    int rc = weir_nav_shape_infer(nuser ? user : NULL, nuser, info->ndet ? info->det : NULL,
                                  info->ndet, info->frames, a->nav, &a->nnav, err, errlen);
    if (rc && !nuser) { /* nobody asked for one: go on without */
        WEIR_LOGI("run", "no nav shape for this acquisition: %s", err);
        a->nnav = 0;
        return WEIR_OK;
    }
    return rc;
}

static void log_acq(const acq_ctx *a, int scan)
{
    if (!a->nnav) return;
    char shp[128] = "";
    for (int i = 0; i < a->nnav; i++)
        snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", i ? ", " : "",
                 (long long)a->nav[i]);
    WEIR_LOGI("run", "acquisition %d: %" PRIu64 " frames, nav shape (%s)", scan, a->frames, shp);
}

/* Starts the on_ready_for_data command (not waited for: it may trigger the
 * acquisition weir is about to read). */
static int ready_hook(acq_ctx *a, int scan)
{
    if (a->plugin && a->plugin->on_ready_for_data && a->plugin->on_ready_for_data(scan)) {
        fprintf(stderr, "weir run: hooks plug-in '%s': on_ready_for_data failed\n",
                a->plugin->name ? a->plugin->name : "?");
        return 1;
    }
    if (!a->ready_hook) return 0;
    char env_scan[64];
    snprintf(env_scan, sizeof env_scan, "WEIR_ACQUISITION=%d", scan);
    char *args[] = {"sh", "-c", (char *)a->ready_hook, NULL};
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **env = calloc(ne + 2, sizeof *env);
    if (!env) return 1;
    memcpy(env, environ, ne * sizeof *env);
    env[ne] = env_scan;
    if (posix_spawn(&a->ready_pid, "/bin/sh", NULL, NULL, args, env) != 0) {
        WEIR_LOGE("run", "on_ready_for_data: cannot start '%s'", a->ready_hook);
        a->ready_pid = 0;
    }
    free(env);
    return 0;
}

static void ready_reap(acq_ctx *a)
{
    if (a->ready_pid <= 0) return;
    int st;
    if (waitpid(a->ready_pid, &st, 0) == a->ready_pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        WEIR_LOGW("run", "on_ready_for_data: '%s' ended with status %d", a->ready_hook, st);
    a->ready_pid = 0;
}

int cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    int continuous = 0, quiet = 0, rc = 2, mrc, hrc;
    cli_http_opts ho = {0};
    weir_http *http = NULL;
    weir_results *results = NULL;
    weir_mpi_opts mo = CLI_MPI_DEFAULTS;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            run_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--continuous")) {
            continuous = 1;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if ((mrc = cli_mpi_option(argc, argv, &i, &mo)) != 0) {
            if (mrc < 0) return 2;
        } else if ((hrc = cli_http_option(argc, argv, &i, &ho)) != 0) {
            if (hrc < 0) return 2;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr, "weir run: unexpected argument '%s'\n\n", argv[i]);
            run_help(stderr);
            return 2;
        }
    }
    if (!path) {
        run_help(stderr);
        return 2;
    }
    char err[1024] = "";
    cJSON *cfgj = NULL;
    weir_stream_cfg *sc = NULL;
    weir_live *live = NULL;
    run_active *active = NULL;
    acq_ctx acq = {0};
    weir_params *params = NULL;
    weir_plugin_handle *wh = NULL, *rh = NULL;
    const weir_plugin *wp, *rpl;
    cfgj = cli_read_json("run", path);
    if (!cfgj) {
        rc = 1;
        goto out;
    }
    rc = 1;
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(cfgj, "streams");
    int ns = cJSON_IsArray(streams) ? cJSON_GetArraySize(streams) : 0;
    const char *wspec = jstr(cfgj, "worker"), *rspec = jstr(cfgj, "reducer");
    if (!ns || !wspec || !rspec) {
        fprintf(stderr,
                "weir run: %s: needs \"streams\" (a non-empty list), \"worker\" and "
                "\"reducer\"\n",
                path);
        goto out;
    }
    sc = calloc((size_t)ns, sizeof *sc);
    if (!sc) goto out;
    for (int i = 0; i < ns; i++) {
        const cJSON *s = cJSON_GetArrayItem(streams, i);
        const char *sock = jstr(s, "socket");
        const cJSON *bind = cJSON_GetObjectItemCaseSensitive(s, "bind");
        const char *pol = jstr(s, "policy");
        sc[i] = (weir_stream_cfg){jstr(s, "name"),
                                  jstr(s, "protocol"),
                                  jstr(s, "endpoint"),
                                  sock && !strcmp(sock, "sub"),
                                  cJSON_IsTrue(bind),
                                  !pol                      ? WEIR_POLICY_DEFAULT
                                  : !strcmp(pol, "wait")    ? WEIR_POLICY_WAIT
                                  : !strcmp(pol, "partial") ? WEIR_POLICY_PARTIAL
                                                            : -1,
                                  jint(s, "reorder_ms", 0),
                                  jint(s, "timeout_ms", 0)};
        if (sock && strcmp(sock, "pull") && strcmp(sock, "sub")) {
            fprintf(stderr, "weir run: stream %d: socket must be \"pull\" or \"sub\"\n", i);
            goto out;
        }
        if (sc[i].policy < 0) {
            fprintf(stderr, "weir run: stream %d: policy must be \"wait\" or \"partial\"\n", i);
            goto out;
        }
    }
    if (weir_plugin_load(wspec, WEIR_PLUGIN_WORKER, &wh, &wp, err, sizeof err) ||
        weir_plugin_load(rspec, WEIR_PLUGIN_REDUCER, &rh, &rpl, err, sizeof err)) {
        fprintf(stderr, "weir run: %s\n", err);
        goto out;
    }
    params = weir_params_new();
    if (!params || load_params(params, cJSON_GetObjectItemCaseSensitive(cfgj, "parameters"), err,
                               sizeof err)) {
        fprintf(stderr, "weir run: %s: %s\n", path, err);
        goto out;
    }
    const cJSON *nsj = cJSON_GetObjectItemCaseSensitive(cfgj, "nav_shape");
    if (nsj) {
        const cJSON *it;
        int bad = !cJSON_IsArray(nsj) || cJSON_GetArraySize(nsj) > 8;
        cJSON_ArrayForEach(it, nsj)
        {
            if (!cJSON_IsNumber(it) || bad) {
                bad = 1;
                break;
            }
            acq.user[acq.nuser++] = (int64_t)it->valuedouble;
        }
        if (bad) {
            fprintf(stderr, "weir run: %s: \"nav_shape\" must be a list of up to 8 integers\n",
                    path);
            goto out;
        }
    }
    const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(cfgj, "hooks");
    acq.nav_hook = jstr(hooks, "on_determine_nav_shape");
    acq.ready_hook = jstr(hooks, "on_ready_for_data");
    const char *hp = jstr(hooks, "plugin");
    if (hp) { /* "path.so[:symbol]" */
        char spec[4096], *colon;
        snprintf(spec, sizeof spec, "%s", hp);
        colon = strrchr(spec, ':');
        const char *sym = "weir_hooks_descriptor";
        if (colon && !strchr(colon, '/')) {
            *colon = 0;
            sym = colon + 1;
        }
        acq.dl = dlopen(spec, RTLD_NOW | RTLD_LOCAL);
        acq.plugin = acq.dl ? dlsym(acq.dl, sym) : NULL;
        if (!acq.plugin || acq.plugin->abi != WEIR_HOOKS_ABI ||
            acq.plugin->struct_size != sizeof(weir_hooks)) {
            fprintf(stderr, "weir run: hooks plug-in %s: %s\n", hp,
                    !acq.dl ? dlerror()
                    : !acq.plugin
                        ? "no such symbol"
                        : "built for another hooks ABI (rebuild it against weir/hooks.h)");
            if (acq.dl) dlclose(acq.dl);
            acq.dl = NULL;
            goto out;
        }
    }
    const char *dist = jstr(cfgj, "dist");
    int d = dist ? weir_dist_parse(dist) : WEIR_DIST_PULL;
    if (d < 0) {
        fprintf(stderr, "weir run: %s: unknown dist \"%s\"\n", path, dist);
        goto out;
    }
    weir_engine_config cfg = {
        .worker = wp,
        .reducer = rpl,
        .nworkers = jint(cfgj, "nworkers", 2),
        .dist = (weir_dist_mode)d,
        .affinity_group = (uint64_t)jint(cfgj, "affinity_group", 1),
        .params = params,
        .output_dir = jstr(cfgj, "output_dir"),
    };
    /* Under mpirun only rank 0 opens the streams. */
    int mpi = weir_mpi_launched();
    const char *rank_env = getenv("OMPI_COMM_WORLD_RANK");
    if (!mpi || !rank_env || atoi(rank_env) == 0) {
        if (weir_live_open(sc, (size_t)ns, jint(cfgj, "rcvhwm", 16), &live, err, sizeof err)) {
            fprintf(stderr, "weir run: %s\n", err);
            goto out;
        }
        weir_live_on_acquisition(live, on_acquisition, &acq);
        const cJSON *pj = cJSON_GetObjectItemCaseSensitive(cfgj, "partial");
        weir_live_set_policy(live, cJSON_IsTrue(pj), jint(cfgj, "reorder_ms", -1));
        g_live = live;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    const cJSON *actj = cJSON_GetObjectItemCaseSensitive(cfgj, "active");
    if (actj && mpi) {
        fprintf(stderr, "weir run: %s: \"active\" acquisition runs without mpirun only (for now)\n",
                path);
        goto out;
    }
    if (run_active_open(actj, &active, err, sizeof err)) {
        fprintf(stderr, "weir run: %s: %s\n", path, err);
        goto out;
    }
    const char *httpj = jstr(cfgj, "http");
    if (httpj && !ho.enabled && cli_http_parse_addr(httpj, &ho)) goto out;
    const cJSON *hrj = cJSON_GetObjectItemCaseSensitive(cfgj, "http_rank");
    if (hrj && !ho.http_rank_set) {
        if (!cJSON_IsNumber(hrj) || hrj->valuedouble < 0 || hrj->valuedouble > 1000000 ||
            hrj->valuedouble != (int)hrj->valuedouble) {
            fprintf(stderr, "weir run: %s: \"http_rank\" must be a rank number\n", path);
            goto out;
        }
        ho.http_rank = (int)hrj->valuedouble;
    }
    if (mpi) {
        /* the serving rank (http_rank) runs the server; see cli_run_mpi */
        live_src ls = {live, &acq, continuous, {{0}, NULL}};
        cli_source cs = {ls_next, ls_open, ls_report, ls_close, &ls};
        cli_mpi_http mh = {.ho = &ho,
                           .verb = "run",
                           .control = ls_control,
                           .ud = &ls,
                           .streams = ls_streams,
                           .no_start =
                               "weir run starts with the detector's series, not on request"};
        rc = cli_run_mpi(&cfg, &mo, &cs, ho.enabled ? &mh : NULL, &argc, &argv, quiet);
        ready_reap(&acq);
        goto out;
    }
    if (ho.enabled) {
        results = weir_results_new();
        weir_http_config hc = {.control = run_control, .hook_ud = live};
        if (!results || cli_http_start(&ho, "run", &hc, &http)) goto out;
        weir_http_attach(http, NULL, results);
        weir_http_attach_live(http, live);
        cfg.results = results;
    }
    int scan = 0;
    rc = 0;
    do {
        /* The plug-ins start only once a scan has begun: the first event
         * (the series start) is read here, so a run stopped between scans
         * calls no init/finish for a scan that never came. */
        WEIR_LOGI("run", "waiting for acquisition %d on %d stream(s)", scan + 1, ns);
        prefetched pf = {weir_live_source(live), NULL};
        if (run_active_arm(active, err, sizeof err)) {
            fprintf(stderr, "weir run: arming the detector: %s\n", err);
            rc = 1;
            break;
        }
        if (http) weir_http_set_state(http, WEIR_HTTP_ARMED, NULL);
        if (ready_hook(&acq, scan + 1)) {
            rc = 1;
            break;
        }
        if (run_active_trigger(active, err, sizeof err)) {
            fprintf(stderr, "weir run: triggering the detector: %s\n", err);
            rc = 1;
            break;
        }
        if (pf.src.next(pf.src.ud, &pf.first) || !pf.first) {
            if (!weir_live_stopped(live)) rc = 1; /* an error, already reported */
            break;
        }
        weir_engine *eng = NULL;
        /* parameters changed over HTTP carry over to the next acquisition */
        weir_params *now = http ? weir_http_params(http) : NULL;
        if (now) cfg.params = now;
        int erc = weir_engine_new(&cfg, &eng, err, sizeof err);
        cfg.params = params;
        weir_params_free(now);
        if (erc) {
            fprintf(stderr, "weir run: %s\n", err);
            weir_event_free(pf.first);
            rc = 1;
            break;
        }
        scan++;
        weir_engine_set_acq(eng, acq.nav, acq.nnav, acq.frames);
        log_acq(&acq, scan);
        if (http) {
            weir_results_clear(results);
            weir_http_attach(http, eng, results);
            weir_http_set_state(http, WEIR_HTTP_RUNNING, NULL);
        }
        weir_engine_start(eng, (weir_source){prefetched_next, NULL, &pf});
        weir_engine_wait(eng, -1);
        weir_stats st;
        weir_engine_stats(eng, &st);
        if (http) {
            weir_http_detach(http);
            weir_http_set_state(http, st.error ? WEIR_HTTP_ERROR : WEIR_HTTP_FINISHED,
                                st.error ? st.error_text : NULL);
        }
        weir_engine_free(eng);
        if (!quiet) {
            fprintf(stderr, "weir run: acquisition %d: %" PRIu64 " events\n", scan,
                    st.source.events_in);
            weir_stats_print(&st, stderr);
        }
        if (st.error) {
            fprintf(stderr, "weir run: FAILED: %s\n", st.error_text);
            rc = 1;
            break;
        }
        if (st.workers_total.rejected || st.reducer.rejected) rc = 3;
        if (run_active_done(active, err, sizeof err)) {
            fprintf(stderr, "weir run: ending the acquisition: %s\n", err);
            rc = 1;
            break;
        }
    } while (continuous && !weir_live_stopped(live));
    ready_reap(&acq);
    weir_live_report(live, stderr);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        fprintf(stderr, "weir run: peak memory %.1f MB\n", ru.ru_maxrss / 1024.0);
    if (!rc && weir_live_rejected(live)) rc = 3;
out:
    weir_http_stop(http);
    weir_results_free(results);
    g_live = NULL;
    run_active_close(active);
    weir_live_close(live);
    if (acq.dl) dlclose(acq.dl);
    weir_params_free(params);
    weir_plugin_unload(wh);
    weir_plugin_unload(rh);
    free(sc);
    cJSON_Delete(cfgj);
    return rc;
}
