/* bad_abi.c — a worker descriptor claiming ABI major 99: the loader must
 * refuse it with a message naming both versions. */
#include <weir/plugin.h>

static int process_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    return WEIR_OK;
}

const weir_plugin weir_plugin_descriptor = {
    .abi_major = 99,
    .abi_minor = 0,
    .struct_size = sizeof(weir_plugin),
    .kind = WEIR_PLUGIN_WORKER,
    .name = "bad_abi",
    .process_event = process_event,
};
