/* cli.h — the verbs of the weir tool and small shared helpers. */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

#include <stddef.h>
#include <stdint.h>

int cmd_run(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_tags(int argc, char **argv);

/* `weir tags` subverbs: tags_io.c (readers) and tags_instr.c (instruments). */
int cli_tags_info(int argc, char **argv);
int cli_tags_export(int argc, char **argv);
int cli_tags_corr(int argc, char **argv);
int cli_tags_lifetime(int argc, char **argv);
int cli_tags_count(int argc, char **argv);
int cli_tags_recipe(int argc, char **argv);
int cli_tags_live(int argc, char **argv);

/* Parses a non-negative integer option value; prints an error naming the
 * option and returns -1 on failure. */
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);

/* Reads a JSON object from a file (cJSON); NULL with a message on stderr
 * naming the file and the offset when it cannot. Caller frees with
 * cJSON_Delete. */
struct cJSON;
struct cJSON *cli_read_json(const char *verb, const char *path);

/* ---- the HTTP control plane's options (http_cli.c) ---- */
#include "weir/http.h"
typedef struct {
    int enabled;
    char addr[64];
    int port;
    const char *token, *web_dir, *cors;
    int sse_period_ms;
    int http_rank; /* under mpirun: the rank that serves (default 0) */
    int http_rank_set;
} cli_http_opts;
#define CLI_HTTP_HELP                                                                              \
    "HTTP control plane (live view, REST API under /api/v1):\n"                                    \
    "      --http ADDR:PORT      serve on ADDR:PORT (IPv4; 127.0.0.1 is the safe choice)\n"        \
    "      --port N              the same as --http 127.0.0.1:N\n"                                 \
    "      --token T             every POST needs 'Authorization: Bearer T' (or env WEIR_TOKEN)\n" \
    "      --web-dir DIR         the live page's files (default: web/ beside the weir binary)\n"   \
    "      --cors ORIGIN         allow this browser origin (default: no CORS headers)\n"           \
    "      --sse-period MS       least interval between live-update events (default 100)\n"        \
    "      --http-rank R         under mpirun: the rank that serves (default 0, the source)\n"
/* Consumes an HTTP option at argv[*i]: 1 if it was one, 0 if not, -1 on a
 * bad value (message printed). */
int cli_http_option(int argc, char **argv, int *i, cli_http_opts *o);
int cli_http_parse_addr(const char *s, cli_http_opts *o);
/* Starts the server when enabled (*out NULL otherwise); fills the address,
 * token and web fields of cfg (the caller sets the hooks). -1 on failure. */
int cli_http_start(const cli_http_opts *o, const char *verb, weir_http_config *cfg,
                   weir_http **out);

/* ---- active acquisition for weir run (run_active.c) ---- */
/* From the config's "active" object (NULL: passive, *out NULL). Each call
 * with a NULL handle does nothing. */
typedef struct run_active run_active;
int run_active_open(const struct cJSON *cfg, run_active **out, char *err, size_t errlen);
int run_active_arm(run_active *a, char *err, size_t errlen);
int run_active_trigger(run_active *a, char *err, size_t errlen);
int run_active_done(run_active *a, char *err, size_t errlen);
void run_active_close(run_active *a);

/* ---- the MPI path shared by replay and run (mpirun.c) ---- */
#include "weir/engine.h"
#include "weir/mpi.h"
#include <stdio.h>

#define CLI_MPI_DEFAULTS                                                                           \
    {                                                                                              \
        .threads_per_rank = 1, .rank_timeout_s = 30, .window = 4                                   \
    }
#define CLI_MPI_HELP                                                                               \
    "MPI options:\n"                                                                               \
    "      --threads-per-rank T  worker threads on each worker rank (default 1)\n"                 \
    "      --window N            events in flight per worker thread (default 4)\n"                 \
    "      --rank-timeout S      a worker rank silent or stuck this long is dead (default 30)\n"   \
    "      --continue-without-dead  go on without a dead or hung worker rank and\n"                \
    "                            report its lost events (default: end the run)\n"

/* Consumes an MPI option at argv[*i] (advancing *i past its value): 1 if it
 * was one, 0 if not, -1 on a bad value (message printed). */
int cli_mpi_option(int argc, char **argv, int *i, weir_mpi_opts *o);

/* An event source opened on rank 0 only. report() prints what the source
 * has to say and returns nonzero if something was dropped or malformed.
 * next() (NULL: one run) makes it a source of several acquisitions (weir
 * run): before each, rank 0 calls next(ud, i) for acquisition i (from 0),
 * which waits for it to begin: 1 it comes (then open() gives its source),
 * 0 no more, -1 an error (reported). */
typedef struct {
    int (*next)(void *ud, int acq);
    int (*open)(void *ud, weir_source *src, char *err, size_t errlen);
    int (*report)(void *ud, FILE *f);
    void (*close)(void *ud);
    void *ud;
} cli_source;

/* The HTTP control plane under mpirun: served by ho->http_rank. The hooks
 * are rank 0's source control (a paced replay), called there only. */
typedef struct {
    const cli_http_opts *ho;
    const char *verb;
    int keep_alive; /* keep serving after the run until SIGINT/SIGTERM */
    int (*control)(void *ud, weir_http_cmd cmd, char *err, size_t errlen);
    void (*progress)(void *ud, uint64_t *done, uint64_t *total);
    void *ud;
    /* rank 0 when it serves: the source may set the server's state */
    void (*set_http)(void *ud, weir_http *h);
    /* rank 0: the live source's per-stream counters (may be NULL) */
    size_t (*streams)(void *ud, weir_live_stream_stats *out, size_t cap);
    /* set: control/start is refused with this message */
    const char *no_start;
} cli_mpi_http;

/* Runs cfg on the MPI ranks; every rank calls it (mh NULL: no HTTP), once
 * per acquisition when src->next is set (the server then shows "armed"
 * between them and the parameters set over HTTP carry over). Returns the
 * exit code. */
int cli_run_mpi(const weir_engine_config *cfg, const weir_mpi_opts *mo, cli_source *src,
                const cli_mpi_http *mh, int *argc, char ***argv, int quiet);

#endif
