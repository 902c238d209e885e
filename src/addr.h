/*
 * addr.h - small helpers for AF_INET/AF_INET6 socket addresses, shared by
 * the relays: text for logs, comparison, length and port.
 */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "a.b.c.d:port" or "[v6]:port", for logs. */
const char	*addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Whether a and b are the same address (and port, when ports). */
bool		 addr_equal(const struct sockaddr *a, const struct sockaddr *b,
		    bool ports);
/* The length of sa (sockaddr_in6 for AF_INET6, else sockaddr_in). */
socklen_t	 addr_len(const struct sockaddr *sa);
/* The port of sa in host order. */
uint16_t	 addr_port(const struct sockaddr *sa);

#endif
