/*
 * perf.h - `sluice --perf`: the reader/writer TUN throughput self-benchmark,
 * run in a private network namespace of its own.
 *
 * A client thread moves bytes over an ordinary kernel TCP socket through
 * the TUN device; the server is either lwIP itself on sluice's stack
 * (`--perf-path stack`) or, through the real relay and a SOCKS5 handshake,
 * an in-process SOCKS5 server on loopback (`--perf-path relay`).  Every
 * byte is checked against a deterministic pattern.
 */
#ifndef SLUICE_PERF_H
#define SLUICE_PERF_H

/*
 * Parse the whole command line (it holds --perf MODE) and run the
 * benchmark; returns the exit status: 0, or 1 on any error, including
 * missing privileges, a timeout or a byte that does not match.
 */
int	perf_main(int argc, char *argv[]);

#endif
