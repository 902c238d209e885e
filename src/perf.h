/*
 * perf.h - `sluice --perf`: the reader/writer TUN throughput self-benchmark,
 * run in a private network namespace of its own.
 */
#ifndef SLUICE_PERF_H
#define SLUICE_PERF_H

/* Parse the --perf command line and run it; returns the exit status. */
int	perf_main(int argc, char *argv[]);

#endif
