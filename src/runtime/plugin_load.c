/* plugin_load.c — loading plug-in descriptors from shared objects.
 *
 * "path.so" or "path.so:symbol" is dlopen'ed (RTLD_NOW, so a missing symbol
 * inside the plug-in fails here and not mid-run) and the descriptor is
 * checked before anything in it is called: ABI major must match, minor must
 * not be newer than ours, struct_size must cover the fields we read, the
 * kind must be the one asked for, and the callbacks that kind needs must be
 * present. Every refusal says which of these failed. */
#include "weir/engine.h"

#include "weir/error.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct weir_plugin_handle {
    void *dl;
};

static const char *kind_name(weir_plugin_kind k)
{
    return k == WEIR_PLUGIN_WORKER ? "worker" : k == WEIR_PLUGIN_REDUCER ? "reducer" : "unknown";
}

int weir_plugin_check(const weir_plugin *p, weir_plugin_kind kind, const char *where, char *err,
                      size_t errlen)
{
    if (p->abi_major != WEIR_ABI_MAJOR || p->abi_minor > WEIR_ABI_MINOR) {
        snprintf(err, errlen,
                 "%s: plug-in ABI version %u.%u is not supported by this weir (ABI %d.%d); "
                 "rebuild the plug-in against this weir's weir/plugin.h",
                 where, p->abi_major, p->abi_minor, WEIR_ABI_MAJOR, WEIR_ABI_MINOR);
        return WEIR_EABI;
    }
    if (p->struct_size < offsetof(weir_plugin, reserved)) {
        snprintf(err, errlen, "%s: descriptor struct_size %u is smaller than expected %zu", where,
                 p->struct_size, offsetof(weir_plugin, reserved));
        return WEIR_EABI;
    }
    if (p->kind != kind) {
        snprintf(err, errlen, "%s: plug-in '%s' is a %s, expected a %s", where,
                 p->name ? p->name : "?", kind_name(p->kind), kind_name(kind));
        return WEIR_EPLUGIN;
    }
    if (!p->name || !*p->name) {
        snprintf(err, errlen, "%s: plug-in has no name", where);
        return WEIR_EPLUGIN;
    }
    if (kind == WEIR_PLUGIN_WORKER && !p->process_event) {
        snprintf(err, errlen, "%s: worker '%s' has no process_event callback", where, p->name);
        return WEIR_EPLUGIN;
    }
    if (kind == WEIR_PLUGIN_REDUCER && !p->process_result) {
        snprintf(err, errlen, "%s: reducer '%s' has no process_result callback", where, p->name);
        return WEIR_EPLUGIN;
    }
    if (p->nparams && !p->params) {
        snprintf(err, errlen, "%s: plug-in '%s' declares %zu parameters but no table", where,
                 p->name, p->nparams);
        return WEIR_EPLUGIN;
    }
    return WEIR_OK;
}

int weir_plugin_load(const char *spec, weir_plugin_kind kind, weir_plugin_handle **out,
                     const weir_plugin **plugin, char *err, size_t errlen)
{
    *out = NULL;
    *plugin = NULL;
    char *path = strdup(spec);
    if (!path) return WEIR_ENOMEM;
    const char *sym = "weir_plugin_descriptor";
    char *colon = strrchr(path, ':');
    if (colon && !strchr(colon, '/')) {
        *colon = 0;
        sym = colon + 1;
    }
    int rc = WEIR_EPLUGIN;
    /* dlopen searches the library path for names without '/'; a user naming
     * a file in the current directory means that file. */
    char *full = NULL;
    if (!strchr(path, '/') && asprintf(&full, "./%s", path) < 0) full = NULL;
    void *dl = dlopen(full ? full : path, RTLD_NOW | RTLD_LOCAL);
    free(full);
    if (!dl) {
        snprintf(err, errlen, "cannot load plug-in %s: %s", path, dlerror());
        goto done;
    }
    const weir_plugin *p = dlsym(dl, sym);
    if (!p) {
        snprintf(err, errlen,
                 "plug-in %s has no symbol '%s' (export a weir_plugin descriptor "
                 "named '%s', or name the symbol as path.so:symbol)",
                 path, sym, sym);
        dlclose(dl);
        goto done;
    }
    rc = weir_plugin_check(p, kind, path, err, errlen);
    if (rc) {
        dlclose(dl);
        goto done;
    }
    *out = malloc(sizeof **out);
    if (!*out) {
        dlclose(dl);
        rc = WEIR_ENOMEM;
        goto done;
    }
    (*out)->dl = dl;
    *plugin = p;
    rc = WEIR_OK;
done:
    free(path);
    return rc;
}

void weir_plugin_unload(weir_plugin_handle *h)
{
    if (!h) return;
    dlclose(h->dl);
    free(h);
}
