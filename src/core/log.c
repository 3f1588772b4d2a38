/* log.c — levelled logging to stderr with a [component] prefix.
 *
 * The level is process-wide configuration read from LOG_LEVEL once (the one
 * piece of global state, an atomic int, because logging must work before any
 * context exists). Lines are written with a single fprintf under stdio's own
 * lock so lines from different threads never interleave. */
#include "weir/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static _Atomic int log_level = WEIR_LOG_INFO;

static const char *level_names[] = {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "OFF"};

void weir_log_init(void)
{
    const char *s = getenv("LOG_LEVEL");
    if (!s || !*s) return;
    for (int i = 0; i <= WEIR_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            atomic_store(&log_level, i);
            return;
        }
    }
    if (strcasecmp(s, "WARN") == 0)
        atomic_store(&log_level, WEIR_LOG_WARNING);
    else if (strcasecmp(s, "CRITICAL") == 0)
        atomic_store(&log_level, WEIR_LOG_ERROR);
    else
        fprintf(stderr, "[log] WARNING: unknown LOG_LEVEL '%s', using INFO\n", s);
}

void weir_log_set_level(weir_log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

weir_log_level weir_log_get_level(void)
{
    return (weir_log_level)atomic_load(&log_level);
}

int weir_log_enabled(weir_log_level lvl)
{
    return (int)lvl >= atomic_load(&log_level) && lvl < WEIR_LOG_OFF;
}

void weir_vlog(weir_log_level lvl, const char *component, const char *fmt, va_list ap)
{
    if (!weir_log_enabled(lvl)) return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-7s [%s] %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, level_names[lvl], component ? component : "weir", msg);
}

void weir_log(weir_log_level lvl, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weir_vlog(lvl, component, fmt, ap);
    va_end(ap);
}
