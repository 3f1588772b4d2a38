/* noop_worker.c — a worker that looks at nothing and returns nothing: the
 * benchmark's measure of what the engine itself costs per event. */
#include <weir/plugin.h>

static int process_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    (void)ctx, (void)self, (void)ev;
    return WEIR_OK;
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_WORKER,
    .name = "noop",
    .description = "does nothing (benchmark baseline)",
    .process_event = process_event,
};
