/* count_reducer.c — counts results and adds up their "sum"/"intensity"
 * values; logs the totals at the end. The benchmark's reducer, and a
 * minimal example of reducer state, the timer and finish. */
#include <weir/plugin.h>

#include <stdlib.h>

typedef struct {
    uint64_t results;
    double total;
} counter;

static int init(weir_pctx *ctx, void **self)
{
    *self = calloc(1, sizeof(counter));
    return *self ? WEIR_OK : WEIR_ENOMEM;
}

static int process_result(weir_pctx *ctx, void *self, const weir_result *res)
{
    counter *c = self;
    double v;
    c->results++;
    if (ctx->host->result_get_f64(res, "sum", &v) == WEIR_OK ||
        ctx->host->result_get_f64(res, "intensity", &v) == WEIR_OK)
        c->total += v;
    return WEIR_OK;
}

static int timer(weir_pctx *ctx, void *self, double *next)
{
    counter *c = self;
    ctx->host->log(ctx, 1, "%llu results so far", (unsigned long long)c->results);
    return WEIR_OK;
}

static int finish(weir_pctx *ctx, void *self)
{
    counter *c = self;
    ctx->host->log(ctx, 2, "%llu results, total %.17g", (unsigned long long)c->results, c->total);
    return WEIR_OK;
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "count",
    .description = "counts results and totals their sum/intensity values",
    .timer_period_s = 1.0,
    .init = init,
    .process_result = process_result,
    .timer = timer,
    .finish = finish,
    .destroy = free,
};
