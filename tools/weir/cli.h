/* cli.h — the verbs of the weir tool and small shared helpers. */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

#include <stddef.h>
#include <stdint.h>

int cmd_replay(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);

/* Parses a non-negative integer option value; prints an error naming the
 * option and returns -1 on failure. */
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);

#endif
