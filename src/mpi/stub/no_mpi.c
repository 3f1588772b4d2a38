/* no_mpi.c — weir/mpi.h for builds without MPI: every call says so. */
#include "weir/mpi.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>

int weir_mpi_compiled(void)
{
    return 0;
}

int weir_mpi_launched(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s) s = getenv("PMI_SIZE");
    return s && atoi(s) > 1;
}

int weir_mpi_init(int *argc, char ***argv, int *rank, int *size, char *err, size_t errlen)
{
    snprintf(err, errlen, "this weir was built without MPI (install libopenmpi-dev and rebuild)");
    return WEIR_EUNSUPPORTED;
}

void weir_mpi_finalize(void) {}

void weir_mpi_abort(int code)
{
    exit(code);
}

int weir_mpi_run(const weir_engine_config *cfg, const weir_mpi_opts *o, weir_source *src,
                 weir_stats *stats, uint64_t *lost, char *err, size_t errlen)
{
    snprintf(err, errlen, "this weir was built without MPI");
    return WEIR_EUNSUPPORTED;
}

weir_mpi_cp *weir_mpi_cp_new(const weir_mpi_cp_config *c, char *err, size_t errlen)
{
    snprintf(err, errlen, "this weir was built without MPI");
    return NULL;
}

void weir_mpi_cp_free(weir_mpi_cp *cp) {}

int weir_mpi_cp_stats(weir_mpi_cp *cp, weir_stats *st)
{
    return 0;
}

void weir_mpi_cp_progress(weir_mpi_cp *cp, uint64_t *done, uint64_t *total)
{
    *done = *total = 0;
}

int weir_mpi_cp_control(weir_mpi_cp *cp, weir_mpi_cmd cmd)
{
    return WEIR_EUNSUPPORTED;
}

void weir_mpi_cp_counters_get(weir_mpi_cp *cp, weir_mpi_cp_counters *out)
{
    *out = (weir_mpi_cp_counters){0};
}

void weir_mpi_cp_wait_release(weir_mpi_cp *cp) {}

void weir_mpi_cp_release(weir_mpi_cp *cp) {}

size_t weir_mpi_cp_streams(weir_mpi_cp *cp, weir_live_stream_stats *out, size_t cap)
{
    return 0;
}

void weir_mpi_cp_idle_begin(weir_mpi_cp *cp) {}

int weir_mpi_cp_next(weir_mpi_cp *cp, int go)
{
    return go;
}

weir_params *weir_mpi_cp_share_params(weir_mpi_cp *cp, weir_params *mine, const weir_params *base)
{
    return mine;
}
