/* weir/error.h — the one table of weir error codes.
 *
 * Every weir function that can fail returns 0 (WEIR_OK) or a negative WEIR_E*
 * code from this table. weir_strerror() gives the user-facing message and
 * weir_err_name() the symbolic name; both return static strings (never free). */
#ifndef WEIR_ERROR_H
#define WEIR_ERROR_H

#define WEIR_ERRNO_MAP(X)                                                                          \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(IO, -3, "input/output error")                                                                \
    X(NOENT, -4, "no such file")                                                                   \
    X(TRUNCATED, -5, "input ends in the middle of an item")                                        \
    X(CBOR, -6, "malformed CBOR")                                                                  \
    X(JSON, -7, "malformed JSON")                                                                  \
    X(FORMAT, -8, "input does not have the expected structure")                                    \
    X(DTYPE, -9, "unknown or unsupported dtype")                                                   \
    X(SHAPE, -10, "shape does not match the buffer size")                                          \
    X(CODEC, -11, "compressed data is corrupt")                                                    \
    X(UNSUPPORTED, -12, "not supported")                                                           \
    X(ABI, -13, "plug-in ABI mismatch")                                                            \
    X(PLUGIN, -14, "plug-in could not be loaded")                                                  \
    X(PARAM, -15, "bad parameter value")                                                           \
    X(NOTFOUND, -16, "not found")                                                                  \
    X(HDF5, -17, "HDF5 error")                                                                     \
    X(USER, -18, "plug-in callback failed")                                                        \
    X(CLOSED, -19, "channel closed")                                                               \
    X(RANGE, -20, "value out of range")                                                            \
    X(THREAD, -21, "thread error")                                                                 \
    X(ZLIB, -22, "gzip stream is corrupt")                                                         \
    X(DUPLICATE, -23, "duplicate entry")                                                           \
    X(ABORTED, -24, "aborted")

enum weir_errno {
    WEIR_OK = 0,
#define WEIR_ERR_ENUM_(name, val, msg) WEIR_E##name = (val),
    WEIR_ERRNO_MAP(WEIR_ERR_ENUM_)
#undef WEIR_ERR_ENUM_
};

/* Message for a code; "unknown error" for codes not in the table. Static string. */
const char *weir_strerror(int err);
/* "WEIR_E<NAME>" for a code; "WEIR_OK" for 0. Static string. */
const char *weir_err_name(int err);

#endif
