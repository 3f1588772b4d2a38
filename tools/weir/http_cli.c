/* http_cli.c — the HTTP control-plane options shared by `weir replay` and
 * `weir run`: --http ADDR:PORT, --port N, --token T (or WEIR_TOKEN),
 * --web-dir DIR, --cors ORIGIN, --sse-period MS, --http-rank R (under mpirun). It parses them into
 * a weir_http_config and starts the server; the verbs wire the hooks. */
#include "cli.h"

#include "weir/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_http_parse_addr(const char *s, cli_http_opts *o)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    char *end;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof o->addr) goto bad;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) goto bad;
    snprintf(o->addr, sizeof o->addr, "%.*s", (int)(colon - s), s);
    o->port = (int)port;
    o->enabled = 1;
    return 0;
bad:
    fprintf(stderr, "weir: --http expects ADDR:PORT (e.g. 127.0.0.1:5000), got '%s'\n", s ? s : "");
    return -1;
}

int cli_http_option(int argc, char **argv, int *i, cli_http_opts *o)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int takes = !strcmp(a, "--http") || !strcmp(a, "--port") || !strcmp(a, "--token") ||
                !strcmp(a, "--web-dir") || !strcmp(a, "--cors") || !strcmp(a, "--sse-period") ||
                !strcmp(a, "--http-rank");
    if (!takes) return 0;
    if (!v) {
        fprintf(stderr, "weir: %s needs a value\n", a);
        return -1;
    }
    (*i)++;
    if (!strcmp(a, "--http")) return cli_http_parse_addr(v, o) ? -1 : 1;
    if (!strcmp(a, "--port")) {
        uint64_t p;
        if (cli_parse_u64(a, v, &p) || p > 65535) return -1;
        snprintf(o->addr, sizeof o->addr, "127.0.0.1");
        o->port = (int)p;
        o->enabled = 1;
    } else if (!strcmp(a, "--token")) {
        o->token = v;
    } else if (!strcmp(a, "--web-dir")) {
        o->web_dir = v;
    } else if (!strcmp(a, "--cors")) {
        o->cors = v;
    } else if (!strcmp(a, "--http-rank")) {
        uint64_t r;
        if (cli_parse_u64(a, v, &r) || r > 1000000) return -1;
        o->http_rank = (int)r;
        o->http_rank_set = 1;
    } else {
        uint64_t ms;
        if (cli_parse_u64(a, v, &ms) || ms < 1 || ms > 60000) return -1;
        o->sse_period_ms = (int)ms;
    }
    return 1;
}

int cli_http_start(const cli_http_opts *o, const char *verb, weir_http_config *cfg, weir_http **out)
{
    *out = NULL;
    if (!o->enabled) return 0;
    cfg->addr = o->addr;
    cfg->port = o->port;
    cfg->token = o->token ? o->token : getenv("WEIR_TOKEN");
    cfg->web_dir = o->web_dir;
    cfg->cors_origin = o->cors;
    cfg->sse_period_ms = o->sse_period_ms;
    char err[512];
    if (weir_http_start(cfg, out, err, sizeof err)) {
        fprintf(stderr, "weir %s: %s\n", verb, err);
        return -1;
    }
    fprintf(stderr, "weir %s: live view at http://%s:%d/\n", verb, o->addr, weir_http_port(*out));
    return 0;
}
