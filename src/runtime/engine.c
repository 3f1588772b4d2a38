/* engine.c — the one-process runtime: a source thread, N worker threads and
 * a reducer thread joined by bounded channels (chan.h).
 *
 * Source loop: pulls events; the first is broadcast (one shared, refcounted
 * event in every worker's queue), every other goes to the worker with the
 * fewest queued events, so an idle worker is fed first. A full queue blocks
 * the source (back-pressure). At the end every worker gets ENV_END.
 * Worker loop: picks up parameter changes between events, calls
 * process_event, and ships emitted results (CBOR bytes) to the reducer; on
 * ENV_END calls finish and sends ENV_WORKER_DONE.
 * Reducer loop: decodes results, calls process_result, calls timer() when its
 * period elapses (the receive waits with a timeout up to the next tick), and
 * calls finish once all workers are done.
 *
 * The engine counts everything per stage under a per-stage mutex; role code
 * never sees the counters' locks or the channel implementation. */
#include "engine_internal.h"

#include "../core/result.h"
#include "weir/error.h"
#include "weir/log.h"
#include "weir/stins.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMP "engine"

double engine_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void engine_reject(weir_stage_stats *st, pthread_mutex_t *mu, const char *reason)
{
    pthread_mutex_lock(mu);
    st->rejected++;
    size_t i;
    for (i = 0; i < st->nreasons; i++)
        if (!strcmp(st->reasons[i].text, reason)) break;
    if (i == st->nreasons && i < WEIR_MAX_REASONS) {
        snprintf(st->reasons[i].text, sizeof st->reasons[i].text, "%s", reason);
        st->nreasons++;
    } else if (i == st->nreasons) {
        i = WEIR_MAX_REASONS - 1; /* table full: fold into the last slot */
        snprintf(st->reasons[i].text, sizeof st->reasons[i].text, "other reasons");
    }
    st->reasons[i].count++;
    pthread_mutex_unlock(mu);
}

void engine_fail(weir_engine *e, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&e->mu);
    if (!e->error) {
        e->error = code;
        snprintf(e->error_text, sizeof e->error_text, "%s", msg);
    }
    pthread_mutex_unlock(&e->mu);
    atomic_store(&e->stop, 1);
    WEIR_LOGE(COMP, "%s", msg);
}

static int declare_all(weir_params *p, const weir_plugin *pl, char *err, size_t errlen)
{
    for (size_t i = 0; pl && i < pl->nparams; i++) {
        char sub[200];
        int rc = weir_params_declare(p, &pl->params[i], sub, sizeof sub);
        if (rc) {
            snprintf(err, errlen, "plug-in '%s': %s", pl->name, sub);
            return rc;
        }
    }
    return WEIR_OK;
}

int weir_engine_new(const weir_engine_config *cfg, weir_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->worker || !cfg->reducer) {
        snprintf(err, errlen, "a worker and a reducer plug-in are required");
        return WEIR_EINVAL;
    }
    int rc = weir_plugin_check(cfg->worker, WEIR_PLUGIN_WORKER, "worker", err, errlen);
    if (!rc) rc = weir_plugin_check(cfg->reducer, WEIR_PLUGIN_REDUCER, "reducer", err, errlen);
    if (rc) return rc;
    weir_engine *e = calloc(1, sizeof *e);
    if (!e) return WEIR_ENOMEM;
    e->cfg = *cfg;
    if (e->cfg.nworkers <= 0) e->cfg.nworkers = 2;
    if (!e->cfg.worker_queue_depth) e->cfg.worker_queue_depth = 8;
    if (!e->cfg.result_queue_depth) e->cfg.result_queue_depth = 256;
    if (e->cfg.broadcast_first == 0) e->cfg.broadcast_first = 1;
    if (!e->cfg.affinity_group) e->cfg.affinity_group = 1;
    if ((int)e->cfg.dist < WEIR_DIST_PULL || e->cfg.dist > WEIR_DIST_SPLIT) {
        snprintf(err, errlen, "unknown distribution mode %d", (int)e->cfg.dist);
        free(e);
        return WEIR_EINVAL;
    }
    int n = e->cfg.nworkers;
    rc = WEIR_ENOMEM;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->params_mu, NULL);
    pthread_mutex_init(&e->s_source_mu, NULL);
    pthread_mutex_init(&e->s_reducer_mu, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    e->params = cfg->params ? weir_params_clone(cfg->params) : weir_params_new();
    e->output_dir = strdup(cfg->output_dir ? cfg->output_dir : "");
    e->inputs = calloc(cfg->ninputs + 1, sizeof *e->inputs);
    e->wq = calloc((size_t)n, sizeof *e->wq);
    e->wctx = calloc((size_t)n, sizeof *e->wctx);
    e->worker_threads = calloc((size_t)n, sizeof *e->worker_threads);
    e->s_worker = calloc((size_t)n, sizeof *e->s_worker);
    e->s_worker_mu = calloc((size_t)n, sizeof *e->s_worker_mu);
    e->local = calloc((size_t)n, 1);
    e->w_started = calloc((size_t)n, 1);
    e->has_source = e->has_reducer = 1;
    if (e->local) memset(e->local, 1, (size_t)n);
    e->rq = chan_queue_new(e->cfg.result_queue_depth);
    e->results = cfg->results;
    if (!e->results) e->results = e->own_results = weir_results_new();
    if (!e->results || !e->params || !e->output_dir || !e->inputs || !e->wq || !e->wctx ||
        !e->worker_threads || !e->s_worker || !e->s_worker_mu || !e->rq)
        goto fail;
    for (size_t i = 0; i < cfg->ninputs; i++)
        if (!(e->inputs[i] = strdup(cfg->inputs[i]))) goto fail;
    e->cfg.inputs = NULL;
    for (int i = 0; i < n; i++) {
        pthread_mutex_init(&e->s_worker_mu[i], NULL);
        if (!(e->wq[i] = chan_queue_new(e->cfg.worker_queue_depth))) goto fail;
    }
    /* Declared defaults first would overwrite file values; declare_all keeps
     * values that are already set and re-parses them with the declared type. */
    rc = declare_all(e->params, cfg->worker, err, errlen);
    if (!rc) rc = declare_all(e->params, cfg->reducer, err, errlen);
    if (rc) goto fail;
    *out = e;
    return WEIR_OK;
fail:
    if (rc == WEIR_ENOMEM) snprintf(err, errlen, "out of memory creating the engine");
    weir_engine_free(e);
    return rc;
}

static void ctx_init(weir_engine *e, role_ctx *c, int worker, const weir_plugin *pl,
                     weir_stage_stats *st, pthread_mutex_t *mu)
{
    c->pub.host = &weir_host_table;
    c->pub.priv_ = c;
    c->eng = e;
    c->worker = worker;
    c->plugin = pl;
    c->stats = st;
    c->stats_mu = mu;
}

/* Refreshes the instance's parameter snapshot if the master changed. */
static int refresh_params(role_ctx *c)
{
    weir_engine *e = c->eng;
    unsigned v = atomic_load(&e->params_version);
    if (c->params && v == c->params_version) return WEIR_OK;
    pthread_mutex_lock(&e->params_mu);
    weir_params *p = weir_params_clone(e->params);
    v = atomic_load(&e->params_version);
    pthread_mutex_unlock(&e->params_mu);
    if (!p) return WEIR_ENOMEM;
    weir_params_hash(p); /* compute once, before the instance shares it */
    weir_params_free(c->params);
    c->params = p;
    c->params_version = v;
    return WEIR_OK;
}

static void mark_busy(role_ctx *c, double t0)
{
    atomic_store(&c->busy_since_ns, (int64_t)(t0 * 1e9));
}

double engine_longest_busy(weir_engine *e)
{
    double now = engine_now(), longest = 0;
    for (int i = 0; i < e->cfg.nworkers; i++) {
        if (!e->local[i] || !e->w_started[i]) continue;
        int64_t b = atomic_load(&e->wctx[i].busy_since_ns);
        if (b && now - (double)b * 1e-9 > longest) longest = now - (double)b * 1e-9;
    }
    return longest;
}

static void add_user_time(role_ctx *c, double t0)
{
    atomic_store(&c->busy_since_ns, 0);
    double dt = engine_now() - t0 - c->emit_blocked_s;
    c->emit_blocked_s = 0;
    pthread_mutex_lock(c->stats_mu);
    c->stats->user_seconds += dt > 0 ? dt : 0;
    pthread_mutex_unlock(c->stats_mu);
}

static void reject_rc(role_ctx *c, const char *what, int rc, uint64_t ev)
{
    char reason[120];
    snprintf(reason, sizeof reason, "%s returned %s (%s)", what, weir_err_name(rc),
             weir_strerror(rc));
    pthread_mutex_lock(c->stats_mu);
    uint64_t prior = c->stats->rejected;
    pthread_mutex_unlock(c->stats_mu);
    if (prior < 10)
        WEIR_LOGW(c->plugin->name, "%s%d: event %llu rejected: %s",
                  c->worker >= 0 ? "worker " : "reducer", c->worker >= 0 ? c->worker : 0,
                  (unsigned long long)ev, reason);
    engine_reject(c->stats, c->stats_mu, reason);
}

/* Called by every role thread as it ends; the run is over when the last
 * local role has ended. */
static void role_exit(weir_engine *e)
{
    pthread_mutex_lock(&e->mu);
    if (--e->active == 0) {
        e->done = 1;
        e->t_end = engine_now();
        pthread_cond_broadcast(&e->done_cv);
    }
    pthread_mutex_unlock(&e->mu);
}

static void *worker_main(void *arg)
{
    role_ctx *c = arg;
    weir_engine *e = c->eng;
    chan *in = e->wq[c->worker];
    int init_ok = 0;
    if (refresh_params(c)) {
        engine_fail(e, WEIR_ENOMEM, "worker %d: out of memory", c->worker);
    } else if (c->plugin->init) {
        double t0 = engine_now();
        int rc = c->plugin->init(&c->pub, &c->self);
        add_user_time(c, t0);
        if (rc)
            engine_fail(e, rc, "worker %d: init of '%s' failed: %s", c->worker, c->plugin->name,
                        weir_strerror(rc));
        else
            init_ok = 1;
    } else {
        init_ok = 1;
    }
    for (;;) {
        envelope env;
        int rc = in->ops->recv(in, &env, -1);
        if (rc == WEIR_ECLOSED || (rc == WEIR_OK && env.kind == ENV_END)) break;
        if (rc) continue;
        const weir_event *ev = env.sev->ev;
        pthread_mutex_lock(c->stats_mu);
        c->stats->events_in++;
        c->stats->bytes_in += env.sev->nbytes;
        pthread_mutex_unlock(c->stats_mu);
        if (!init_ok) {
            engine_reject(c->stats, c->stats_mu, "worker init failed; event discarded");
        } else if (atomic_load(&e->aborting)) {
            engine_reject(c->stats, c->stats_mu, "aborted; event discarded");
        } else {
            refresh_params(c);
            c->cur_event = ev->number;
            double t0 = engine_now();
            mark_busy(c, t0);
            rc = c->plugin->process_event(&c->pub, c->self, ev);
            add_user_time(c, t0);
            if (rc) reject_rc(c, "process_event", rc, ev->number);
        }
        envelope_clear(&env);
    }
    if (init_ok && c->plugin->finish) {
        double t0 = engine_now();
        mark_busy(c, t0);
        int rc = c->plugin->finish(&c->pub, c->self);
        add_user_time(c, t0);
        if (rc) reject_rc(c, "finish", rc, c->cur_event);
    }
    if (c->plugin->destroy && c->self) c->plugin->destroy(c->self);
    c->self = NULL;
    envelope done = {.kind = ENV_WORKER_DONE, .worker = c->worker};
    e->rq->ops->send(e->rq, &done, NULL);
    pthread_mutex_lock(&e->mu);
    e->workers_alive--;
    pthread_mutex_unlock(&e->mu);
    role_exit(e);
    return NULL;
}

static void *reducer_main(void *arg)
{
    role_ctx *c = arg;
    weir_engine *e = c->eng;
    int init_ok = 0, workers_left = e->cfg.nworkers;
    double period = c->plugin->timer ? c->plugin->timer_period_s : 0;
    if (refresh_params(c)) {
        engine_fail(e, WEIR_ENOMEM, "reducer: out of memory");
    } else if (c->plugin->init) {
        double t0 = engine_now();
        int rc = c->plugin->init(&c->pub, &c->self);
        add_user_time(c, t0);
        if (rc)
            engine_fail(e, rc, "reducer: init of '%s' failed: %s", c->plugin->name,
                        weir_strerror(rc));
        else
            init_ok = 1;
    } else {
        init_ok = 1;
    }
    double next_tick = period > 0 ? engine_now() + period : INFINITY;
    while (workers_left > 0) {
        int timeout = -1;
        if (init_ok && isfinite(next_tick)) {
            double wait = next_tick - engine_now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000.0 + 0.5);
        }
        envelope env;
        int rc = e->rq->ops->recv(e->rq, &env, timeout);
        if (rc == 1 || (init_ok && engine_now() >= next_tick)) {
            double t0 = engine_now(), np = period;
            refresh_params(c);
            int trc = c->plugin->timer(&c->pub, c->self, &np);
            add_user_time(c, t0);
            pthread_mutex_lock(&e->mu);
            e->timer_calls++;
            pthread_mutex_unlock(&e->mu);
            if (trc) reject_rc(c, "timer", trc, 0);
            period = np;
            next_tick = period > 0 ? engine_now() + period : INFINITY;
            if (rc == 1) continue;
        }
        if (rc == WEIR_ECLOSED) break;
        if (rc) continue;
        if (env.kind == ENV_WORKER_DONE) {
            workers_left--;
            continue;
        }
        size_t nb = weir_buf_size(env.result);
        pthread_mutex_lock(c->stats_mu);
        c->stats->events_in++;
        c->stats->bytes_in += nb;
        pthread_mutex_unlock(c->stats_mu);
        weir_result *r = NULL;
        char err[200];
        rc = weir_result_decode(env.result, &r, err, sizeof err);
        if (rc) {
            engine_reject(c->stats, c->stats_mu, "undecodable result");
            WEIR_LOGW(COMP, "worker %d: %s", env.worker, err);
        } else if (!init_ok) {
            engine_reject(c->stats, c->stats_mu, "reducer init failed; result discarded");
        } else if (atomic_load(&e->aborting)) {
            engine_reject(c->stats, c->stats_mu, "aborted; result discarded");
        } else {
            refresh_params(c);
            c->cur_event = weir_result_event(r);
            c->cur_hash = weir_result_params_hash(r);
            double t0 = engine_now();
            rc = c->plugin->process_result(&c->pub, c->self, r);
            add_user_time(c, t0);
            c->cur_hash = NULL;
            if (rc)
                reject_rc(c, "process_result", rc, c->cur_event);
            else {
                pthread_mutex_lock(c->stats_mu);
                c->stats->results++;
                pthread_mutex_unlock(c->stats_mu);
            }
        }
        weir_result_free(r);
        envelope_clear(&env);
    }
    if (init_ok && c->plugin->finish) {
        double t0 = engine_now();
        int rc = c->plugin->finish(&c->pub, c->self);
        add_user_time(c, t0);
        if (rc) engine_fail(e, rc, "reducer finish failed: %s", weir_strerror(rc));
    }
    if (c->plugin->destroy && c->self) c->plugin->destroy(c->self);
    c->self = NULL;
    role_exit(e);
    return NULL;
}

/* Worker with the fewest queued events; ties go round-robin after `last`. */
static int pick_worker(weir_engine *e, int last)
{
    int n = e->cfg.nworkers, best = -1;
    size_t best_fill = SIZE_MAX;
    for (int k = 1; k <= n; k++) {
        int i = (last + k) % n;
        size_t f = e->wq[i]->ops->fill(e->wq[i], NULL, NULL);
        if (f < best_fill) {
            best_fill = f;
            best = i;
            if (f == 0) break;
        }
    }
    return best;
}

int weir_dist_parse(const char *s)
{
    if (!strcmp(s, "pull")) return WEIR_DIST_PULL;
    if (!strcmp(s, "round-robin")) return WEIR_DIST_ROUND_ROBIN;
    if (!strcmp(s, "affinity")) return WEIR_DIST_AFFINITY;
    if (!strcmp(s, "split")) return WEIR_DIST_SPLIT;
    return -1;
}

const char *weir_dist_name(weir_dist_mode m)
{
    switch (m) {
    case WEIR_DIST_PULL:
        return "pull";
    case WEIR_DIST_ROUND_ROBIN:
        return "round-robin";
    case WEIR_DIST_AFFINITY:
        return "affinity";
    case WEIR_DIST_SPLIT:
        return "split";
    }
    return "?";
}

/* Signal split: one event per worker holding rows [k*H/n, (k+1)*H/n) of
 * every STINS image stream (other streams are shared). Returns 0 and fills
 * out[0..n) when the event has an image; *has_image = 0 otherwise. */
static int split_event(const weir_event *ev, int n, weir_event **out, int *has_image)
{
    *has_image = 0;
    weir_stins_packet *pk = calloc(ev->nstreams, sizeof *pk);
    if (!pk) return WEIR_ENOMEM;
    int rc = WEIR_OK;
    for (size_t s = 0; s < ev->nstreams && !rc; s++) {
        if (strcmp(ev->streams[s].typ, "STINS")) continue;
        char err[256];
        rc = weir_stins_parse(&ev->streams[s].msg, 1, &pk[s], err, sizeof err);
        if (rc)
            WEIR_LOGW(COMP, "event %llu: cannot split stream '%s': %s",
                      (unsigned long long)ev->number, ev->streams[s].name, err);
        else if (pk[s].kind == WEIR_STINS_IMAGE && pk[s].data.ndim >= 1)
            *has_image = 1;
    }
    for (int k = 0; !rc && *has_image && k < n; k++) {
        out[k] = weir_event_new(ev->number);
        if (!out[k]) rc = WEIR_ENOMEM;
        for (size_t s = 0; !rc && s < ev->nstreams; s++) {
            weir_msg m;
            weir_msg_init(&m);
            if (pk[s].kind == WEIR_STINS_IMAGE && pk[s].data.ndim >= 1) {
                size_t h = pk[s].data.shape[0];
                rc = weir_stins_encode_slice(&m, &pk[s], h * (size_t)k / (size_t)n,
                                             h * (size_t)(k + 1) / (size_t)n);
            } else {
                for (size_t i = 0; !rc && i < ev->streams[s].msg.nparts; i++)
                    rc = weir_msg_append(&m, weir_buf_ref(ev->streams[s].msg.parts[i]));
            }
            if (!rc)
                rc = weir_event_add_stream(out[k], ev->streams[s].name, ev->streams[s].typ, &m);
            weir_msg_clear(&m);
        }
    }
    for (size_t s = 0; s < ev->nstreams; s++)
        weir_stins_clear(&pk[s]);
    free(pk);
    if (rc)
        for (int k = 0; k < n; k++) {
            weir_event_free(out[k]);
            out[k] = NULL;
        }
    return rc;
}

/* Sends one event to worker w (takes se's reference on success or failure). */
static int send_to(weir_engine *e, int w, shared_event *se, double *blocked)
{
    envelope env = {.kind = ENV_EVENT, .worker = w, .sev = se};
    if (e->wq[w]->ops->send(e->wq[w], &env, blocked) == WEIR_OK) return 1;
    shared_event_unref(se);
    return 0;
}

static void *source_main(void *arg)
{
    weir_engine *e = arg;
    int n = e->cfg.nworkers, last = n - 1, first = 1;
    uint64_t seq = 0;
    weir_event **parts = calloc((size_t)n, sizeof *parts);
    if (!parts) engine_fail(e, WEIR_ENOMEM, "source: out of memory");
    while (parts && !atomic_load(&e->stop)) {
        weir_event *ev = NULL;
        int rc = e->src.next(e->src.ud, &ev);
        if (rc) {
            engine_fail(e, rc, "source: %s", weir_strerror(rc));
            break;
        }
        if (!ev) break;
        int has_image = 0;
        if (e->cfg.dist == WEIR_DIST_SPLIT && !(first && e->cfg.broadcast_first > 0)) {
            rc = split_event(ev, n, parts, &has_image);
            if (rc) {
                engine_reject(&e->s_source, &e->s_source_mu, "signal split failed");
                weir_event_free(ev);
                continue;
            }
        }
        int bcast =
            (first && e->cfg.broadcast_first > 0) || (e->cfg.dist == WEIR_DIST_SPLIT && !has_image);
        first = 0;
        size_t nb = weir_event_nbytes(ev);
        double blocked = 0;
        int sent = 0;
        if (has_image) {
            weir_event_free(ev);
            for (int i = 0; i < n; i++) {
                shared_event *se = shared_event_new(parts[i], 1);
                if (!se) {
                    weir_event_free(parts[i]);
                    continue;
                }
                parts[i] = NULL;
                sent += send_to(e, i, se, &blocked);
            }
        } else {
            shared_event *se = shared_event_new(ev, bcast ? n : 1);
            if (!se) {
                weir_event_free(ev);
                engine_fail(e, WEIR_ENOMEM, "source: out of memory");
                break;
            }
            if (bcast) {
                WEIR_LOGD(COMP, "event %llu broadcast to all %d workers",
                          (unsigned long long)ev->number, n);
                for (int i = 0; i < n; i++)
                    sent += send_to(e, i, se, &blocked);
            } else {
                switch (e->cfg.dist) {
                case WEIR_DIST_ROUND_ROBIN:
                    last = (int)(seq % (uint64_t)n);
                    break;
                case WEIR_DIST_AFFINITY:
                    last = (int)((ev->number / e->cfg.affinity_group) % (uint64_t)n);
                    break;
                default:
                    last = pick_worker(e, last);
                    break;
                }
                seq++;
                WEIR_LOGT(COMP, "event %llu to worker %d", (unsigned long long)ev->number, last);
                sent = send_to(e, last, se, &blocked);
            }
        }
        pthread_mutex_lock(&e->s_source_mu);
        e->s_source.events_in++;
        e->s_source.bytes_in += nb;
        e->s_source.events_out += (uint64_t)sent;
        e->s_source.bytes_out += nb * (uint64_t)sent;
        e->s_source.blocked_seconds += blocked;
        pthread_mutex_unlock(&e->s_source_mu);
    }
    free(parts);
    for (int i = 0; i < n; i++) {
        envelope end = {.kind = ENV_END, .worker = i};
        e->wq[i]->ops->send(e->wq[i], &end, NULL);
    }
    role_exit(e);
    return NULL;
}

void engine_set_roles(weir_engine *e, int source, int reducer, const unsigned char *local_workers)
{
    e->has_source = source;
    e->has_reducer = reducer;
    for (int i = 0; i < e->cfg.nworkers; i++)
        e->local[i] = local_workers ? local_workers[i] : 1;
}

void engine_replace_chan(weir_engine *e, int worker, chan *c)
{
    chan **slot = worker < 0 ? &e->rq : &e->wq[worker];
    if (*slot) (*slot)->ops->destroy(*slot);
    *slot = c;
}

/* Closes every channel so that started role threads drain and end. */
static void abort_start(weir_engine *e, const char *what)
{
    engine_fail(e, WEIR_ETHREAD, "could not start the %s thread", what);
    for (int i = 0; i < e->cfg.nworkers; i++)
        e->wq[i]->ops->close(e->wq[i]);
    e->rq->ops->close(e->rq);
}

static int spawn(weir_engine *e, pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_mutex_lock(&e->mu);
    e->active++;
    pthread_mutex_unlock(&e->mu);
    if (pthread_create(t, NULL, fn, arg) == 0) return 1;
    pthread_mutex_lock(&e->mu);
    e->active--;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int weir_engine_start(weir_engine *e, weir_source src)
{
    if (e->started) return WEIR_EINVAL;
    e->started = 1;
    e->src = src;
    e->t_start = engine_now();
    int n = e->cfg.nworkers;
    /* Hold one count until every thread is started, so an early finisher
     * cannot declare the run over. */
    pthread_mutex_lock(&e->mu);
    e->active = 1;
    pthread_mutex_unlock(&e->mu);
    int rc = WEIR_OK;
    if (e->has_reducer) {
        ctx_init(e, &e->rctx, -1, e->cfg.reducer, &e->s_reducer, &e->s_reducer_mu);
        if (!(e->red_started = spawn(e, &e->reducer_thread, reducer_main, &e->rctx))) {
            abort_start(e, "reducer");
            rc = WEIR_ETHREAD;
        }
    }
    for (int i = 0; i < n && !rc; i++) {
        if (!e->local[i]) continue;
        ctx_init(e, &e->wctx[i], i, e->cfg.worker, &e->s_worker[i], &e->s_worker_mu[i]);
        pthread_mutex_lock(&e->mu);
        e->workers_alive++; /* before the thread can end and count down */
        pthread_mutex_unlock(&e->mu);
        if (!(e->w_started[i] =
                  (unsigned char)spawn(e, &e->worker_threads[i], worker_main, &e->wctx[i]))) {
            pthread_mutex_lock(&e->mu);
            e->workers_alive--;
            pthread_mutex_unlock(&e->mu);
            abort_start(e, "worker");
            rc = WEIR_ETHREAD;
        }
    }
    if (!rc && e->has_source && !(e->src_started = spawn(e, &e->source_thread, source_main, e))) {
        abort_start(e, "source");
        rc = WEIR_ETHREAD;
    }
    e->threads_started = 1;
    role_exit(e);
    return rc;
}

int weir_engine_wait(weir_engine *e, int timeout_ms)
{
    pthread_mutex_lock(&e->mu);
    if (!e->done && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (!e->done)
                pthread_cond_wait(&e->done_cv, &e->mu);
        } else {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += timeout_ms / 1000;
            dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
            while (!e->done && pthread_cond_timedwait(&e->done_cv, &e->mu, &dl) == 0)
                ;
        }
    }
    int done = e->done;
    pthread_mutex_unlock(&e->mu);
    return done;
}

void weir_engine_stop(weir_engine *e)
{
    atomic_store(&e->stop, 1);
}

void weir_engine_abort(weir_engine *e)
{
    atomic_store(&e->aborting, 1);
    engine_fail(e, WEIR_EABORTED, "aborted");
}

int weir_engine_status(const weir_engine *e)
{
    weir_engine *m = (weir_engine *)e;
    pthread_mutex_lock(&m->mu);
    int rc = m->error;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void add_stage(weir_stage_stats *dst, const weir_stage_stats *s)
{
    dst->events_in += s->events_in;
    dst->bytes_in += s->bytes_in;
    dst->events_out += s->events_out;
    dst->bytes_out += s->bytes_out;
    dst->results += s->results;
    dst->rejected += s->rejected;
    dst->queue_fill += s->queue_fill;
    if (s->queue_max_fill > dst->queue_max_fill) dst->queue_max_fill = s->queue_max_fill;
    dst->queue_capacity += s->queue_capacity;
    dst->user_seconds += s->user_seconds;
    dst->blocked_seconds += s->blocked_seconds;
    for (size_t i = 0; i < s->nreasons; i++) {
        size_t j;
        for (j = 0; j < dst->nreasons; j++)
            if (!strcmp(dst->reasons[j].text, s->reasons[i].text)) break;
        if (j == dst->nreasons) {
            if (j == WEIR_MAX_REASONS)
                j--;
            else
                dst->nreasons++, dst->reasons[j] = s->reasons[i], dst->reasons[j].count = 0;
        }
        dst->reasons[j].count += s->reasons[i].count;
    }
}

void weir_engine_stats(weir_engine *e, weir_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->s_source_mu);
    out->source = e->s_source;
    pthread_mutex_unlock(&e->s_source_mu);
    pthread_mutex_lock(&e->s_reducer_mu);
    out->reducer = e->s_reducer;
    pthread_mutex_unlock(&e->s_reducer_mu);
    size_t mf, cap;
    out->reducer.queue_fill = e->rq->ops->fill(e->rq, &mf, &cap);
    out->reducer.queue_max_fill = mf;
    out->reducer.queue_capacity = cap;
    out->nworkers = e->cfg.nworkers;
    for (int i = 0; i < e->cfg.nworkers; i++) {
        weir_stage_stats s;
        pthread_mutex_lock(&e->s_worker_mu[i]);
        s = e->s_worker[i];
        pthread_mutex_unlock(&e->s_worker_mu[i]);
        s.queue_fill = e->wq[i]->ops->fill(e->wq[i], &mf, &cap);
        s.queue_max_fill = mf;
        s.queue_capacity = cap;
        if (i < 64) out->worker[i] = s;
        add_stage(&out->workers_total, &s);
    }
    pthread_mutex_lock(&e->mu);
    out->timer_calls = e->timer_calls;
    out->workers_alive = e->workers_alive;
    out->aborted = atomic_load(&e->aborting);
    out->running = e->started && !e->done;
    out->wall_seconds = e->started ? (e->done ? e->t_end : engine_now()) - e->t_start : 0;
    out->error = e->error;
    snprintf(out->error_text, sizeof out->error_text, "%s", e->error_text);
    pthread_mutex_unlock(&e->mu);
}

int weir_engine_set_param(weir_engine *e, const char *name, const void *data, size_t len, char *err,
                          size_t errlen)
{
    pthread_mutex_lock(&e->params_mu);
    int rc = weir_params_set(e->params, name, data, len, 1, err, errlen);
    if (!rc) atomic_fetch_add(&e->params_version, 1);
    pthread_mutex_unlock(&e->params_mu);
    return rc;
}

int weir_engine_set_params(weir_engine *e, size_t n, const char *const *names,
                           const char *const *values, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->params_mu);
    int rc = WEIR_ENOMEM;
    weir_params *next = weir_params_clone(e->params);
    if (!next) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = WEIR_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = weir_params_set(next, names[i], values[i], strlen(values[i]), 1, err, errlen);
    if (rc) goto out;
    weir_params *old = e->params;
    e->params = next;
    next = old;
    atomic_fetch_add(&e->params_version, 1);
out:
    weir_params_free(next);
    pthread_mutex_unlock(&e->params_mu);
    return rc;
}

weir_params *weir_engine_params_copy(weir_engine *e)
{
    pthread_mutex_lock(&e->params_mu);
    weir_params *p = weir_params_clone(e->params);
    pthread_mutex_unlock(&e->params_mu);
    if (p) weir_params_hash(p);
    return p;
}

weir_results *weir_engine_results(weir_engine *e)
{
    return e->results;
}

const weir_params *weir_engine_params(const weir_engine *e)
{
    return e->params;
}

static void fmt_bytes(char *b, size_t n, double v)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (v >= 1000 && i < 4)
        v /= 1000, i++;
    snprintf(b, n, "%.1f %s", v, u[i]);
}

static void print_stage(FILE *f, const char *name, const weir_stage_stats *s, double wall)
{
    char bi[32], bo[32];
    fmt_bytes(bi, sizeof bi, (double)s->bytes_in);
    fmt_bytes(bo, sizeof bo, (double)s->bytes_out);
    fprintf(f, "  %-10s %9llu %10s %9llu %10s %8llu %8llu %7llu/%-5llu %8.3f %8.3f\n", name,
            (unsigned long long)s->events_in, bi, (unsigned long long)s->events_out, bo,
            (unsigned long long)s->results, (unsigned long long)s->rejected,
            (unsigned long long)s->queue_max_fill, (unsigned long long)s->queue_capacity,
            s->user_seconds, s->blocked_seconds);
    for (size_t i = 0; i < s->nreasons; i++)
        fprintf(f, "  %-10s   rejected %llu× %s\n", "", (unsigned long long)s->reasons[i].count,
                s->reasons[i].text);
    (void)wall;
}

void weir_stats_print(const weir_stats *s, FILE *f)
{
    fprintf(f, "  %-10s %9s %10s %9s %10s %8s %8s %13s %8s %8s\n", "stage", "ev in", "bytes in",
            "out", "bytes out", "results", "rejected", "queue max/cap", "user s", "blocked");
    print_stage(f, "source", &s->source, s->wall_seconds);
    for (int i = 0; i < s->nworkers && i < 64; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "worker %d", i);
        print_stage(f, nm, &s->worker[i], s->wall_seconds);
    }
    print_stage(f, "reducer", &s->reducer, s->wall_seconds);
    fprintf(f, "  wall %.3f s, %.0f events/s, timer calls %llu\n", s->wall_seconds,
            s->wall_seconds > 0 ? (double)s->source.events_in / s->wall_seconds : 0.0,
            (unsigned long long)s->timer_calls);
}

void weir_engine_free(weir_engine *e)
{
    if (!e) return;
    if (e->threads_started) {
        weir_engine_wait(e, -1);
        if (e->src_started) pthread_join(e->source_thread, NULL);
        for (int i = 0; i < e->cfg.nworkers; i++)
            if (e->w_started[i]) pthread_join(e->worker_threads[i], NULL);
        if (e->red_started) pthread_join(e->reducer_thread, NULL);
    }
    for (int i = 0; e->wq && i < e->cfg.nworkers; i++) {
        if (e->wq[i]) e->wq[i]->ops->destroy(e->wq[i]);
        if (e->wctx) weir_params_free(e->wctx[i].params);
        if (e->s_worker_mu) pthread_mutex_destroy(&e->s_worker_mu[i]);
    }
    if (e->rq) e->rq->ops->destroy(e->rq);
    weir_params_free(e->rctx.params);
    weir_params_free(e->params);
    weir_results_free(e->own_results);
    for (size_t i = 0; e->inputs && e->inputs[i]; i++)
        free(e->inputs[i]);
    free(e->inputs);
    free(e->output_dir);
    free(e->wq);
    free(e->wctx);
    free(e->worker_threads);
    free(e->s_worker);
    free(e->s_worker_mu);
    free(e->local);
    free(e->w_started);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->params_mu);
    pthread_mutex_destroy(&e->s_source_mu);
    pthread_mutex_destroy(&e->s_reducer_mu);
    pthread_cond_destroy(&e->done_cv);
    free(e);
}

void weir_engine_set_acq(weir_engine *e, const int64_t *nav, int ndim, uint64_t frames)
{
    pthread_mutex_lock(&e->mu);
    e->nav_ndim = ndim > 0 && ndim <= 8 ? ndim : 0;
    for (int i = 0; i < e->nav_ndim; i++)
        e->nav[i] = nav[i];
    e->acq_frames = frames;
    pthread_mutex_unlock(&e->mu);
}
