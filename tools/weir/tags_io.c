/* tags_io.c — `weir tags info` and `weir tags export`: what a time-tag file
 * holds, and its decoded events as .npy arrays. */
#include "cli.h"

#include <stdio.h>

int cli_tags_info(int argc, char **argv)
{
    fprintf(stderr, "weir tags info: not implemented yet\n");
    return 1;
}

int cli_tags_export(int argc, char **argv)
{
    fprintf(stderr, "weir tags export: not implemented yet\n");
    return 1;
}
