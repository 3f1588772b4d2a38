/* testutil.h — helpers shared by the unit tests: locating ../shared/data
 * (failing loudly when it is missing), temporary directories, file reads. */
#ifndef WEIR_TESTUTIL_H
#define WEIR_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Full path of a file under ../shared/data; the test FAILS (never skips) when
 * the file does not exist. Returns a static buffer per call slot (8 slots). */
const char *tu_shared(const char *rel);
/* A fresh empty directory under the build dir for this test; static string
 * (16 slots of its own). */
const char *tu_tmpdir(const char *name);
/* Reads a whole file into malloc'd memory; fails the test on error. */
uint8_t *tu_read_file(const char *path, size_t *len); /* NUL-terminated too */
/* Path of a built artefact relative to the build dir (static, 8 slots). */
const char *tu_build(const char *rel);

/* Writes dir/name with the given text; returns a static path (8 slots). */
const char *tu_write(const char *dir, const char *name, const char *text);
/* A TCP port on 127.0.0.1 that is free right now (the OS picks it). */
int tu_free_port(void);
/* Runs a shell command in dir with LOG_LEVEL=WARNING; stdout+stderr go to
 * dir/out.txt. Returns the exit status (-1 if killed). */
/* ROI means (mean of frame[:till_x, from_y:]) of every image of
 * ../shared/data/dranspose/dump_xrd.cbors by event number, decoded here from
 * the raw CBOR bytes, independently of weir; returns the image count. */
int tu_xrd_roi_means(double *means, int till_x, int from_y);
int tu_run(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The output of the last tu_run, NUL-terminated (caller frees). */
char *tu_output(void);

#endif
