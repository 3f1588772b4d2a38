/* tags_instr.c — `weir tags corr|lifetime|count`: the time-tag instruments
 * on files, serial or over sections in parallel, HDF5 and .npy output. */
#include "cli.h"

#include <stdio.h>

int cli_tags_corr(int argc, char **argv)
{
    fprintf(stderr, "weir tags corr: not implemented yet\n");
    return 1;
}

int cli_tags_lifetime(int argc, char **argv)
{
    fprintf(stderr, "weir tags lifetime: not implemented yet\n");
    return 1;
}

int cli_tags_count(int argc, char **argv)
{
    fprintf(stderr, "weir tags count: not implemented yet\n");
    return 1;
}
