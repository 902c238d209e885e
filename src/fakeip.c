/*
 * fakeip.c - the fake-IP table (see fakeip.h).
 *
 * Each mapping is one entry, found by name and by address through two
 * chained hash tables under a random SipHash key, and kept on an LRU list
 * while no flow holds it (a held entry is off the list, so the list's head
 * is always the one to forget).  Names are stored lower-cased.  A pool
 * address is the pool's network plus an offset 1..size (the network and
 * the last address are never handed out); for IPv6 the offset is the low
 * 32 bits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/random.h>

#include "fakeip.h"
#include "lwip_hooks.h"

struct fakeip_entry {
	struct fakeip_entry		*name_next;
	struct fakeip_entry		*addr_next;
	TAILQ_ENTRY(fakeip_entry)	 lru;
	int				 family;
	uint32_t			 off;	/* in the family's pool */
	unsigned			 refs;	/* flows holding it */
	char				 name[];	/* lower case */
};

#define FAKEIP_RESERVED_MAX	8

struct fakeip_pool {
	int		 family;
	uint32_t	 base4;		/* host order (AF_INET) */
	struct in6_addr	 base6;		/* low 32 bits zero (AF_INET6) */
	int		 prefix;
	uint32_t	 size;		/* offsets 1..size */
	uint32_t	 next;		/* next offset to try */
	unsigned	 count;
	uint32_t	 reserved[FAKEIP_RESERVED_MAX];	/* never handed out */
	unsigned	 nreserved;
};

/*
 * A table shared by worker processes lives in one MAP_SHARED mapping made
 * before they fork, so its pointers mean the same in each: the struct,
 * both hash tables and max entries of FAKEIP_SLOT bytes (a name is at
 * most 253 characters), under a process-shared robust mutex.
 */
#define FAKEIP_SLOT	(sizeof(struct fakeip_entry) + 256)

struct fakeip_free_slot {
	struct fakeip_free_slot	*next;
};

struct fakeip {
	bool			 shared;
	pthread_mutex_t		 lock;		/* shared only */
	size_t			 map_len;	/* the whole mapping */
	struct fakeip_free_slot	*free_slots;
	struct fakeip_pool	 pool[2];	/* [0] IPv4, [1] IPv6 */
	unsigned		 max;
	unsigned		 count;
	struct fakeip_entry	**by_name;
	struct fakeip_entry	**by_addr;
	size_t			 mask;
	uint8_t			 key[16];
	TAILQ_HEAD(, fakeip_entry) lru;		/* unheld, oldest first */
	struct fakeip_stats	 st;
};

static struct fakeip_pool *
fakeip_pool_of(struct fakeip *fi, int family)
{
	return family == AF_INET6 ? &fi->pool[1] : &fi->pool[0];
}

static size_t
fakeip_hash_name(const struct fakeip *fi, const char *lname)
{
	return (size_t)lwip_hooks_siphash(fi->key, lname, strlen(lname)) &
	    fi->mask;
}

static size_t
fakeip_hash_addr(const struct fakeip *fi, int family, uint32_t off)
{
	uint8_t k[5];

	k[0] = family == AF_INET6 ? 6 : 4;
	memcpy(k + 1, &off, 4);
	return (size_t)lwip_hooks_siphash(fi->key, k, sizeof(k)) & fi->mask;
}

/* The offset of a pool address, 0 when it is not one. */
static uint32_t
fakeip_off_of(const struct fakeip *fi, const struct sockaddr *sa)
{
	const struct fakeip_pool *p;
	uint32_t a, off;

	if (sa->sa_family == AF_INET) {
		p = &fi->pool[0];
		a = ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr);
		if (p->prefix == 0 || (a ^ p->base4) >> (32 - p->prefix) != 0)
			return 0;
		off = a - p->base4;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr;
		int i, bits;

		p = &fi->pool[1];
		if (p->prefix == 0)
			return 0;
		for (i = 0, bits = p->prefix; bits > 0; i++, bits -= 8) {
			uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

			if ((in6->s6_addr[i] ^ p->base6.s6_addr[i]) & m)
				return 0;
		}
		memcpy(&off, &in6->s6_addr[12], 4);
		off = ntohl(off);
		memcpy(&a, &p->base6.s6_addr[12], 4);
		off -= ntohl(a);
	} else
		return 0;
	if (off < 1 || off > p->size)
		return 0;
	for (unsigned i = 0; i < p->nreserved; i++)
		if (p->reserved[i] == off)
			return 0;
	return off;
}

static void
fakeip_addr_of(const struct fakeip_pool *p, uint32_t off, void *addr)
{
	uint32_t a;

	if (p->family == AF_INET) {
		a = htonl(p->base4 + off);
		memcpy(addr, &a, 4);
	} else {
		struct in6_addr in6 = p->base6;

		memcpy(&a, &in6.s6_addr[12], 4);
		a = htonl(ntohl(a) + off);
		memcpy(&in6.s6_addr[12], &a, 4);
		memcpy(addr, &in6, 16);
	}
}

/* Set up one pool; -1 with err if the prefix is out of range. */
static int
fakeip_pool_init(struct fakeip_pool *p, int family, const void *net,
    int prefix, char *err, size_t errlen)
{
	p->family = family;
	p->prefix = prefix;
	p->next = 1;
	if (family == AF_INET) {
		uint32_t n;

		if (prefix < 8 || prefix > 30) {
			snprintf(err, errlen, "fake_ipv4: prefix /%d: expected "
			    "/8../30", prefix);
			return -1;
		}
		memcpy(&n, net, 4);
		p->base4 = ntohl(n) & (uint32_t)(0xffffffffu << (32 - prefix));
		p->size = (uint32_t)((1ull << (32 - prefix)) - 2);
	} else {
		int i, bits;

		if (prefix < 64 || prefix > 120) {
			snprintf(err, errlen, "fake_ipv6: prefix /%d: expected "
			    "/64../120", prefix);
			return -1;
		}
		memcpy(&p->base6, net, 16);
		for (i = 0, bits = prefix; i < 16; i++, bits -= 8) {
			if (bits >= 8)
				continue;
			p->base6.s6_addr[i] &= bits > 0 ?
			    (uint8_t)(0xff << (8 - bits)) : 0;
		}
		/* offsets live in the low 32 bits */
		p->size = prefix >= 96 ?
		    (uint32_t)((1ull << (128 - prefix)) - 2) : 0xfffffffeu;
	}
	return 0;
}

struct fakeip *
fakeip_new(const struct in_addr *net4, int prefix4,
    const struct in6_addr *net6, int prefix6, unsigned max, char *err,
    size_t errlen)
{
	struct fakeip *fi;
	size_t n = 64;

	if ((fi = calloc(1, sizeof(*fi))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (fakeip_pool_init(&fi->pool[0], AF_INET, net4, prefix4, err,
	    errlen) == -1 || fakeip_pool_init(&fi->pool[1], AF_INET6, net6,
	    prefix6, err, errlen) == -1) {
		free(fi);
		return NULL;
	}
	fi->max = max > 0 ? max : 1;
	while (n < (size_t)fi->max * 2)
		n <<= 1;
	fi->mask = n - 1;
	TAILQ_INIT(&fi->lru);
	if ((fi->by_name = calloc(n, sizeof(*fi->by_name))) == NULL ||
	    (fi->by_addr = calloc(n, sizeof(*fi->by_addr))) == NULL ||
	    getrandom(fi->key, sizeof(fi->key), 0) != sizeof(fi->key)) {
		snprintf(err, errlen, "cannot set up: %s", strerror(errno));
		fakeip_free(fi);
		return NULL;
	}
	return fi;
}

static struct fakeip_entry *
fakeip_entry_alloc(struct fakeip *fi, size_t len)
{
	struct fakeip_free_slot *fs;

	if (!fi->shared)
		return calloc(1, sizeof(struct fakeip_entry) + len + 1);
	if ((fs = fi->free_slots) == NULL || len >= 256)
		return NULL;
	fi->free_slots = fs->next;
	memset(fs, 0, FAKEIP_SLOT);
	return (struct fakeip_entry *)(void *)fs;
}

static void
fakeip_entry_free(struct fakeip *fi, struct fakeip_entry *e)
{
	struct fakeip_free_slot *fs = (struct fakeip_free_slot *)(void *)e;

	if (!fi->shared) {
		free(e);
		return;
	}
	fs->next = fi->free_slots;
	fi->free_slots = fs;
}

/* Shared: every public call holds the lock (a worker that died with it
 * leaves it to the next, which carries on). */
static void
fakeip_lock(struct fakeip *fi)
{
	if (fi->shared && pthread_mutex_lock(&fi->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&fi->lock);
}

static void
fakeip_unlock(struct fakeip *fi)
{
	if (fi->shared)
		pthread_mutex_unlock(&fi->lock);
}

struct fakeip *
fakeip_new_shared(const struct in_addr *net4, int prefix4,
    const struct in6_addr *net6, int prefix6, unsigned max, char *err,
    size_t errlen)
{
	struct fakeip *fi;
	pthread_mutexattr_t ma;
	size_t n = 64, len, off;
	unsigned char *m;

	if (max == 0)
		max = 1;
	while (n < (size_t)max * 2)
		n <<= 1;
	off = (sizeof(*fi) + 63) & ~(size_t)63;
	len = off + 2 * n * sizeof(struct fakeip_entry *) +
	    (size_t)max * FAKEIP_SLOT;
	/* pages are touched as mappings come: a big pool costs nothing
	 * until it fills */
	if ((m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "shared table of %zu bytes: %s", len,
		    strerror(errno));
		return NULL;
	}
	fi = (struct fakeip *)(void *)m;
	fi->shared = true;
	fi->map_len = len;
	if (fakeip_pool_init(&fi->pool[0], AF_INET, net4, prefix4, err,
	    errlen) == -1 || fakeip_pool_init(&fi->pool[1], AF_INET6, net6,
	    prefix6, err, errlen) == -1 ||
	    getrandom(fi->key, sizeof(fi->key), 0) != sizeof(fi->key)) {
		munmap(m, len);
		return NULL;
	}
	fi->max = max;
	fi->mask = n - 1;
	TAILQ_INIT(&fi->lru);
	fi->by_name = (struct fakeip_entry **)(void *)(m + off);
	fi->by_addr = fi->by_name + n;
	m = (unsigned char *)(fi->by_addr + n);
	for (size_t i = max; i > 0; i--) {
		struct fakeip_free_slot *fs = (struct fakeip_free_slot *)
		    (void *)(m + (i - 1) * FAKEIP_SLOT);

		fs->next = fi->free_slots;
		fi->free_slots = fs;
	}
	if (pthread_mutexattr_init(&ma) != 0 ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&fi->lock, &ma) != 0) {
		snprintf(err, errlen, "shared table: mutex");
		munmap(fi, len);
		return NULL;
	}
	pthread_mutexattr_destroy(&ma);
	return fi;
}

/* Take e out of both hash tables (not the LRU list). */
static void
fakeip_unhash(struct fakeip *fi, struct fakeip_entry *e)
{
	struct fakeip_entry **pp;

	for (pp = &fi->by_name[fakeip_hash_name(fi, e->name)]; *pp != NULL;
	    pp = &(*pp)->name_next)
		if (*pp == e) {
			*pp = e->name_next;
			break;
		}
	for (pp = &fi->by_addr[fakeip_hash_addr(fi, e->family, e->off)];
	    *pp != NULL; pp = &(*pp)->addr_next)
		if (*pp == e) {
			*pp = e->addr_next;
			break;
		}
}

void
fakeip_free(struct fakeip *fi)
{
	struct fakeip_entry *e;
	size_t i;

	if (fi == NULL)
		return;
	if (fi->shared) {
		pthread_mutex_destroy(&fi->lock);
		munmap(fi, fi->map_len);
		return;
	}
	for (i = 0; fi->by_name != NULL && i <= fi->mask; i++) {
		while ((e = fi->by_name[i]) != NULL) {
			fi->by_name[i] = e->name_next;
			free(e);
		}
	}
	free(fi->by_name);
	free(fi->by_addr);
	free(fi);
}

static struct fakeip_entry *
fakeip_find_name(const struct fakeip *fi, const char *lname, int family)
{
	struct fakeip_entry *e;

	for (e = fi->by_name[fakeip_hash_name(fi, lname)]; e != NULL;
	    e = e->name_next)
		if (e->family == family && strcmp(e->name, lname) == 0)
			return e;
	return NULL;
}

static struct fakeip_entry *
fakeip_find_addr(const struct fakeip *fi, int family, uint32_t off)
{
	struct fakeip_entry *e;

	for (e = fi->by_addr[fakeip_hash_addr(fi, family, off)]; e != NULL;
	    e = e->addr_next)
		if (e->family == family && e->off == off)
			return e;
	return NULL;
}

/* Mark e just used. */
static void
fakeip_touch(struct fakeip *fi, struct fakeip_entry *e)
{
	if (e->refs > 0)
		return;
	TAILQ_REMOVE(&fi->lru, e, lru);
	TAILQ_INSERT_TAIL(&fi->lru, e, lru);
}

/* Forget the least recently used unheld entry (of family, if not 0). */
static bool
fakeip_evict(struct fakeip *fi, int family)
{
	struct fakeip_entry *e;

	TAILQ_FOREACH(e, &fi->lru, lru)
		if (family == 0 || e->family == family)
			break;
	if (e == NULL)
		return false;
	TAILQ_REMOVE(&fi->lru, e, lru);
	fakeip_unhash(fi, e);
	fakeip_pool_of(fi, e->family)->count--;
	fi->count--;
	fi->st.evicted++;
	fakeip_entry_free(fi, e);
	return true;
}

/* Add a mapping of lname at off; NULL if out of memory. */
static struct fakeip_entry *
fakeip_insert(struct fakeip *fi, const char *lname, int family, uint32_t off)
{
	struct fakeip_entry *e;
	size_t h, len = strlen(lname);

	if ((e = fakeip_entry_alloc(fi, len)) == NULL)
		return NULL;
	memcpy(e->name, lname, len + 1);
	e->family = family;
	e->off = off;
	h = fakeip_hash_name(fi, lname);
	e->name_next = fi->by_name[h];
	fi->by_name[h] = e;
	h = fakeip_hash_addr(fi, family, off);
	e->addr_next = fi->by_addr[h];
	fi->by_addr[h] = e;
	TAILQ_INSERT_TAIL(&fi->lru, e, lru);
	fakeip_pool_of(fi, family)->count++;
	fi->count++;
	fi->st.created++;
	return e;
}

/* name lower-cased into out (cap >= strlen + 1); false if too long. */
static bool
fakeip_lower(const char *name, char *out, size_t cap)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= cap)
		return false;
	for (i = 0; i <= n; i++)
		out[i] = name[i] >= 'A' && name[i] <= 'Z' ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	return true;
}

static int
fakeip_addr_locked(struct fakeip *fi, const char *name, int family,
    void *addr)
{
	struct fakeip_pool *p = fakeip_pool_of(fi, family);
	struct fakeip_entry *e;
	char lname[256];
	uint32_t off, tries;

	if ((family != AF_INET && family != AF_INET6) ||
	    !fakeip_lower(name, lname, sizeof(lname)))
		return -1;
	if ((e = fakeip_find_name(fi, lname, family)) != NULL) {
		fakeip_touch(fi, e);
		fakeip_addr_of(p, e->off, addr);
		return 0;
	}
	/* room: the table's bound, and the pool's own size */
	if ((fi->count >= fi->max && !fakeip_evict(fi, 0)) ||
	    (p->count >= p->size && !fakeip_evict(fi, family))) {
		fi->st.full++;
		return -1;
	}
	/* the next free offset, in turn around the pool */
	for (tries = 0; tries < p->size; tries++) {
		unsigned i;

		off = p->next;
		p->next = p->next >= p->size ? 1 : p->next + 1;
		for (i = 0; i < p->nreserved; i++)
			if (p->reserved[i] == off)
				break;
		if (i == p->nreserved && fakeip_find_addr(fi, family, off) ==
		    NULL)
			break;
	}
	if (tries == p->size || (e = fakeip_insert(fi, lname, family,
	    off)) == NULL) {
		fi->st.full++;
		return -1;
	}
	fakeip_addr_of(p, off, addr);
	return 0;
}

int
fakeip_addr(struct fakeip *fi, const char *name, int family, void *addr)
{
	int rc;

	fakeip_lock(fi);
	rc = fakeip_addr_locked(fi, name, family, addr);
	fakeip_unlock(fi);
	return rc;
}

bool
fakeip_reserve(struct fakeip *fi, const struct sockaddr *sa)
{
	struct fakeip_pool *p;
	uint32_t off;

	if ((off = fakeip_off_of(fi, sa)) == 0)
		return false;
	p = fakeip_pool_of(fi, sa->sa_family);
	if (p->nreserved == FAKEIP_RESERVED_MAX)
		return false;
	p->reserved[p->nreserved++] = off;
	return true;
}

bool
fakeip_contains(const struct fakeip *fi, const struct sockaddr *sa)
{
	return fakeip_off_of(fi, sa) != 0;
}

static const char *
fakeip_name_locked(struct fakeip *fi, const struct sockaddr *sa, bool hold)
{
	struct fakeip_entry *e;
	uint32_t off;

	if ((off = fakeip_off_of(fi, sa)) == 0 ||
	    (e = fakeip_find_addr(fi, sa->sa_family, off)) == NULL) {
		fi->st.unmapped++;
		return NULL;
	}
	fakeip_touch(fi, e);
	if (hold) {
		if (e->refs++ == 0)
			TAILQ_REMOVE(&fi->lru, e, lru);
	}
	return e->name;
}

const char *
fakeip_name(struct fakeip *fi, const struct sockaddr *sa, bool hold)
{
	static char copy[256];	/* shared: another worker may evict it */
	const char *name;

	if (!fi->shared)
		return fakeip_name_locked(fi, sa, hold);
	fakeip_lock(fi);
	if ((name = fakeip_name_locked(fi, sa, hold)) != NULL) {
		snprintf(copy, sizeof(copy), "%s", name);
		name = copy;
	}
	fakeip_unlock(fi);
	return name;
}

void
fakeip_release(struct fakeip *fi, const struct sockaddr *sa)
{
	struct fakeip_entry *e;
	uint32_t off;

	fakeip_lock(fi);
	if ((off = fakeip_off_of(fi, sa)) == 0 ||
	    (e = fakeip_find_addr(fi, sa->sa_family, off)) == NULL ||
	    e->refs == 0) {
		fakeip_unlock(fi);
		return;
	}
	if (--e->refs == 0)
		TAILQ_INSERT_TAIL(&fi->lru, e, lru);
	fakeip_unlock(fi);
}

int
fakeip_save(const struct fakeip *fi, const char *path, char *err,
    size_t errlen)
{
	char tmp[4096], a[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	struct fakeip_entry *e;
	FILE *f;
	size_t i;
	int rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if ((f = fopen(tmp, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "# sluice fake-ip table: address name\n");
	fakeip_lock((struct fakeip *)(uintptr_t)fi);
	for (i = 0; i <= fi->mask; i++) {
		for (e = fi->by_name[i]; e != NULL; e = e->name_next) {
			fakeip_addr_of(&fi->pool[e->family == AF_INET6],
			    e->off, addr);
			inet_ntop(e->family, addr, a, sizeof(a));
			fprintf(f, "%s %s\n", a, e->name);
		}
	}
	fakeip_unlock((struct fakeip *)(uintptr_t)fi);
	if (fflush(f) == EOF || ferror(f))
		rc = -1;
	if (fclose(f) == EOF)
		rc = -1;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -1;
	if (rc == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		remove(tmp);
	}
	return rc;
}

int
fakeip_load(struct fakeip *fi, const char *path, char *err, size_t errlen)
{
	char line[512], a[64], name[256], lname[256];
	struct sockaddr_storage ss;
	struct fakeip_pool *p;
	uint32_t off;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;	/* a first start */
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fakeip_lock(fi);
	while (fgets(line, sizeof(line), f) != NULL) {
		memset(&ss, 0, sizeof(ss));
		if (line[0] == '#' ||
		    sscanf(line, "%63s %255s", a, name) != 2 ||
		    !fakeip_lower(name, lname, sizeof(lname)))
			continue;
		if (inet_pton(AF_INET, a,
		    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, a,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			continue;
		if ((off = fakeip_off_of(fi, (struct sockaddr *)&ss)) == 0 ||
		    fi->count >= fi->max ||
		    fakeip_find_addr(fi, ss.ss_family, off) != NULL ||
		    fakeip_find_name(fi, lname, ss.ss_family) != NULL)
			continue;
		if (fakeip_insert(fi, lname, ss.ss_family, off) == NULL)
			break;
		p = fakeip_pool_of(fi, ss.ss_family);
		if (off >= p->next)
			p->next = off >= p->size ? 1 : off + 1;
	}
	fi->st.created = 0;
	fakeip_unlock(fi);
	fclose(f);
	return 0;
}

void
fakeip_get_stats(const struct fakeip *fi, struct fakeip_stats *st)
{
	fakeip_lock((struct fakeip *)(uintptr_t)fi);
	*st = fi->st;
	st->mappings = fi->count;
	fakeip_unlock((struct fakeip *)(uintptr_t)fi);
}
