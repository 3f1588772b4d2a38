/* instr_recipe.c — JSON recipes composing time-tag instruments, and the
 * time-with-unit parser shared with the CLI.
 *
 * A recipe is {"instruments": [ {...}, ... ]}; each object names its
 * "kind" (corr, startstop, lifetime, coinc, count) and the fields of
 * weir_tinstr_config: "name", "start", "stop", "channels": [..],
 * "binwidth", "bins", "lo" (corr default: -bins*binwidth/2, both directions,
 * as `weir tags corr`), "window" (times as numbers of ps or strings
 * with a unit), "delays": {"CH": time}, "micro": true, "micro_ps",
 * "gate": [open, close], "eta_compat", "eta_clock". Unknown keys are
 * refused so a typo never silently changes an analysis. cJSON parses. */
#include "instr_impl.h"

#include "weir/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int weir_tinstr_parse_time(const char *s, int64_t *ps)
{
    if (!s || !*s) return WEIR_EPARAM;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s) return WEIR_EPARAM;
    double mul = 1;
    if (!*end || !strcmp(end, "ps"))
        mul = 1;
    else if (!strcmp(end, "ns"))
        mul = 1e3;
    else if (!strcmp(end, "us"))
        mul = 1e6;
    else if (!strcmp(end, "ms"))
        mul = 1e9;
    else if (!strcmp(end, "s"))
        mul = 1e12;
    else
        return WEIR_EPARAM;
    double x = v * mul;
    if (!isfinite(x) || fabs(x) > 9.2e18) return WEIR_ERANGE;
    double r = nearbyint(x);
    if (fabs(x - r) > 1e-6 * (fabs(x) > 1 ? fabs(x) : 1)) return WEIR_EPARAM; /* not whole ps */
    *ps = (int64_t)r;
    return 0;
}

static int jtime(const cJSON *it, int64_t *ps)
{
    if (cJSON_IsNumber(it)) {
        double r = nearbyint(it->valuedouble);
        if (fabs(r - it->valuedouble) > 1e-9 || fabs(r) > 9.2e18) return WEIR_EPARAM;
        *ps = (int64_t)r;
        return 0;
    }
    if (cJSON_IsString(it)) return weir_tinstr_parse_time(it->valuestring, ps);
    return WEIR_EPARAM;
}

static int kind_parse(const char *s, weir_tinstr_kind *k)
{
    static const struct {
        const char *n;
        weir_tinstr_kind k;
    } t[] = {{"corr", WEIR_TI_CORR},
             {"startstop", WEIR_TI_STARTSTOP},
             {"lifetime", WEIR_TI_LIFETIME},
             {"coinc", WEIR_TI_COINC},
             {"count", WEIR_TI_COUNT}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) {
            *k = t[i].k;
            return 0;
        }
    return WEIR_EPARAM;
}

static int one(const cJSON *o, size_t idx, weir_tinstr_config *c, char *err, size_t errlen)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    weir_tinstr_kind k;
    if (!cJSON_IsString(kind) || kind_parse(kind->valuestring, &k)) {
        snprintf(err, errlen,
                 "instrument %zu: \"kind\" must be corr, startstop, lifetime, "
                 "coinc or count",
                 idx);
        return WEIR_EPARAM;
    }
    weir_tinstr_config_init(c, k);
    int have_lo = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        const char *key = it->string;
        int bad = 0;
        int64_t v = 0;
        if (!strcmp(key, "kind")) {
            continue;
        } else if (!strcmp(key, "name")) {
            bad = !cJSON_IsString(it);
            if (!bad) snprintf(c->name, sizeof c->name, "%s", it->valuestring);
        } else if (!strcmp(key, "start") || !strcmp(key, "stop")) {
            bad = !cJSON_IsNumber(it);
            if (!bad) *(key[2] == 'a' ? &c->start : &c->stop) = (int16_t)it->valueint;
        } else if (!strcmp(key, "channels")) {
            bad = !cJSON_IsArray(it) || cJSON_GetArraySize(it) > WEIR_TI_MAXCH;
            const cJSON *ch;
            c->nchannels = 0;
            if (!bad) cJSON_ArrayForEach(ch, it)
                {
                    if (!cJSON_IsNumber(ch))
                        bad = 1;
                    else
                        c->channels[c->nchannels++] = (int16_t)ch->valueint;
                }
        } else if (!strcmp(key, "binwidth")) {
            bad = jtime(it, &c->bin_ps) != 0;
        } else if (!strcmp(key, "bins")) {
            bad = !cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 4e9;
            if (!bad) c->nbins = (uint32_t)it->valuedouble;
        } else if (!strcmp(key, "lo")) {
            bad = jtime(it, &c->lo_ps) != 0;
            have_lo = 1;
        } else if (!strcmp(key, "window")) {
            bad = jtime(it, &c->window_ps) != 0;
        } else if (!strcmp(key, "delays")) {
            bad = !cJSON_IsObject(it) || cJSON_GetArraySize(it) > WEIR_TI_MAXCH;
            const cJSON *d;
            c->ndelays = 0;
            if (!bad) cJSON_ArrayForEach(d, it)
                {
                    char *e = NULL;
                    long ch = strtol(d->string, &e, 10);
                    if (*e || jtime(d, &v))
                        bad = 1;
                    else
                        c->delays[c->ndelays++] = (weir_tinstr_delay){(int16_t)ch, v};
                }
        } else if (!strcmp(key, "micro")) {
            bad = !cJSON_IsBool(it);
            c->lifetime_micro = cJSON_IsTrue(it);
        } else if (!strcmp(key, "micro_ps")) {
            bad = !cJSON_IsNumber(it);
            if (!bad) c->micro_ps = it->valuedouble;
        } else if (!strcmp(key, "gate")) {
            bad = !cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2;
            if (!bad) {
                c->gate_open = (int16_t)cJSON_GetArrayItem(it, 0)->valueint;
                c->gate_close = (int16_t)cJSON_GetArrayItem(it, 1)->valueint;
            }
        } else if (!strcmp(key, "eta_compat")) {
            bad = !cJSON_IsBool(it);
            c->eta_compat = cJSON_IsTrue(it);
        } else if (!strcmp(key, "eta_clock")) {
            bad = !cJSON_IsNumber(it) || it->valueint < 2;
            if (!bad) c->eta_clock = (uint32_t)it->valueint;
        } else {
            snprintf(err, errlen, "instrument %zu: unknown key \"%s\"", idx, key);
            return WEIR_EPARAM;
        }
        if (bad) {
            snprintf(err, errlen, "instrument %zu: bad value for \"%s\"", idx, key);
            return WEIR_EPARAM;
        }
    }
    /* a correlation without "lo" covers both directions, as `weir tags corr` */
    if (k == WEIR_TI_CORR && !have_lo) c->lo_ps = -((int64_t)c->nbins * c->bin_ps) / 2;
    return 0;
}

int weir_tinstr_recipe_parse(const char *json, weir_tinstr_config **cfgs, size_t *n, char *err,
                             size_t errlen)
{
    *cfgs = NULL;
    *n = 0;
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        snprintf(err, errlen, "recipe is not valid JSON (near byte %ld)",
                 at ? (long)(at - json) : -1L);
        return WEIR_EJSON;
    }
    int rc = 0;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "instruments");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        snprintf(err, errlen, "recipe needs a non-empty \"instruments\" array");
        rc = WEIR_EPARAM;
        goto out;
    }
    size_t m = (size_t)cJSON_GetArraySize(arr);
    weir_tinstr_config *c = calloc(m, sizeof *c);
    if (!c) {
        rc = WEIR_ENOMEM;
        goto out;
    }
    size_t i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        if (!cJSON_IsObject(o)) {
            snprintf(err, errlen, "instrument %zu is not an object", i);
            rc = WEIR_EPARAM;
        } else {
            rc = one(o, i, &c[i], err, errlen);
        }
        if (rc) break;
        i++;
    }
    if (rc) {
        free(c);
        goto out;
    }
    *cfgs = c;
    *n = m;
out:
    cJSON_Delete(root);
    return rc;
}
