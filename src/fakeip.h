/*
 * fakeip.h - the fake-IP table of [dns] mode = fake-ip: sluice answers A
 * and AAAA queries with addresses from a private pool, and a flow to such
 * an address goes to the proxy by the name it stands for, so that the
 * proxy resolves it and no lookup leaves the host.
 *
 * Bounded: at most max mappings; when full, the least recently used one
 * that no live flow holds is forgotten.  Addresses are handed out in
 * turn around the whole pool, so a forgotten address is reused as late as
 * possible (a client may still have it cached past the TTL).
 */
#ifndef SLUICE_FAKEIP_H
#define SLUICE_FAKEIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

struct fakeip;

struct fakeip_stats {
	unsigned	mappings;	/* names mapped now */
	uint64_t	created;	/* mappings made */
	uint64_t	evicted;	/* forgotten to make room */
	uint64_t	full;		/* no room: every mapping held by a flow */
	uint64_t	unmapped;	/* flows to a pool address with no name */
};

/*
 * A table over net4/prefix4 and net6/prefix6 (IPv4 prefix 8..30, IPv6
 * 64..120) holding at most max mappings.  NULL on error (err says why).
 */
struct fakeip	*fakeip_new(const struct in_addr *net4, int prefix4,
		    const struct in6_addr *net6, int prefix6, unsigned max,
		    char *err, size_t errlen);
/*
 * The same table in memory that processes forked after this call share
 * (the worker processes): every call takes a process-shared lock, and
 * fakeip_name() hands back a copy.  fakeip_free() in the process that
 * made it unmaps it.
 */
struct fakeip	*fakeip_new_shared(const struct in_addr *net4, int prefix4,
		    const struct in6_addr *net6, int prefix6, unsigned max,
		    char *err, size_t errlen);
void		 fakeip_free(struct fakeip *fi);

/*
 * The address standing for name (text form, compared ASCII
 * case-insensitively) in family AF_INET (4 bytes to addr) or AF_INET6
 * (16 bytes): the one it has, or a new one.  0, or -1 when the table is
 * full of mappings held by flows.
 */
int		 fakeip_addr(struct fakeip *fi, const char *name, int family,
		    void *addr);
/*
 * Never hand out sa's address (the TUN's own, the proxy's): it is real.
 * Call before anything is mapped.  true when it lay in a pool.
 */
bool		 fakeip_reserve(struct fakeip *fi, const struct sockaddr *sa);
/* Whether sa's address lies in one of the pools (and is not reserved). */
bool		 fakeip_contains(const struct fakeip *fi,
		    const struct sockaddr *sa);
/*
 * The name sa's address stands for, or NULL (counted as unmapped) when it
 * stands for none; valid until the next call that may evict.  With hold,
 * the mapping is held for a flow until fakeip_release().
 */
const char	*fakeip_name(struct fakeip *fi, const struct sockaddr *sa,
		    bool hold);
/* A flow that held sa's mapping ended. */
void		 fakeip_release(struct fakeip *fi, const struct sockaddr *sa);

/*
 * Keep the table across restarts: write every mapping to path (a text
 * file, "address name" per line, written to a temporary and renamed), or
 * read such a file back.  Lines that do not fit the pools are skipped.
 * 0, or -1 with err.
 */
int		 fakeip_save(const struct fakeip *fi, const char *path,
		    char *err, size_t errlen);
int		 fakeip_load(struct fakeip *fi, const char *path, char *err,
		    size_t errlen);

void		 fakeip_get_stats(const struct fakeip *fi,
		    struct fakeip_stats *st);

#endif
