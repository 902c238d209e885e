/*
 * perf.c - `sluice --perf` (placeholder until the benchmark lands).
 */
#include <stdio.h>

#include "perf.h"

int
perf_main(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sluice: --perf: not built yet\n");
	return 1;
}
