/* weir/log.h — levelled logging with a [component] prefix.
 *
 * The level comes from the LOG_LEVEL environment variable (DEBUG, INFO,
 * WARNING, ERROR; also TRACE for per-frame messages), read once by
 * weir_log_init(); default INFO. Messages go to stderr. Thread-safe. */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdarg.h>

typedef enum {
    WEIR_LOG_TRACE = 0,
    WEIR_LOG_DEBUG = 1,
    WEIR_LOG_INFO = 2,
    WEIR_LOG_WARNING = 3,
    WEIR_LOG_ERROR = 4,
    WEIR_LOG_OFF = 5
} weir_log_level;

/* Reads LOG_LEVEL. Safe to call more than once. */
void weir_log_init(void);
/* Overrides the level (for tests and --quiet). */
void weir_log_set_level(weir_log_level lvl);
weir_log_level weir_log_get_level(void);
int weir_log_enabled(weir_log_level lvl);
void weir_log(weir_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void weir_vlog(weir_log_level lvl, const char *component, const char *fmt, va_list ap);

#define WEIR_LOGE(comp, ...) weir_log(WEIR_LOG_ERROR, comp, __VA_ARGS__)
#define WEIR_LOGW(comp, ...) weir_log(WEIR_LOG_WARNING, comp, __VA_ARGS__)
#define WEIR_LOGI(comp, ...) weir_log(WEIR_LOG_INFO, comp, __VA_ARGS__)
#define WEIR_LOGD(comp, ...) weir_log(WEIR_LOG_DEBUG, comp, __VA_ARGS__)
#define WEIR_LOGT(comp, ...)                                                                       \
    do {                                                                                           \
        if (weir_log_enabled(WEIR_LOG_TRACE)) weir_log(WEIR_LOG_TRACE, comp, __VA_ARGS__);         \
    } while (0)

#endif
