/* error.c — messages and names for the one table of weir error codes
 * (include/weir/error.h). Both lookups are generated from the same X-macro so
 * a code can never lack its message. */
#include "weir/error.h"

const char *weir_strerror(int err)
{
    switch (err) {
    case WEIR_OK:
        return "success";
#define WEIR_ERR_MSG_(name, val, msg)                                                              \
    case WEIR_E##name:                                                                             \
        return msg;
        WEIR_ERRNO_MAP(WEIR_ERR_MSG_)
#undef WEIR_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *weir_err_name(int err)
{
    switch (err) {
    case WEIR_OK:
        return "WEIR_OK";
#define WEIR_ERR_NAME_(name, val, msg)                                                             \
    case WEIR_E##name:                                                                             \
        return "WEIR_E" #name;
        WEIR_ERRNO_MAP(WEIR_ERR_NAME_)
#undef WEIR_ERR_NAME_
    default:
        return "WEIR_E?";
    }
}
