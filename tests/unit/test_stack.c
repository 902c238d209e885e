/*
 * test_stack.c - the stack's catch-all listener (src/stack.c) starts
 * whatever port lwIP's tcp_init() drew from LWIP_RAND().
 *
 * lwIP 2.1's tcp_new_port() steps its counter from 0xffff to 0, not back
 * to the start of its range, and then fails: a tcp_bind() to port 0 after
 * tcp_init() drew a value whose low 14 bits are all ones (1 start in 16384)
 * failed with "stack: tcp_bind failed".  This replays exactly that draw.
 */
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"

#include "check.h"
#include "lwip_hooks.h"
#include "stack.h"

static err_t
syn_cb(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	(void)pcb;
	return ERR_ABRT;
}

/* A splitmix64 state whose next draw ends in 0x3fff (the bad start). */
static int
bad_state(uint64_t *state)
{
	for (uint64_t s = 1; s < (1u << 24); s++) {
		lwip_hooks_rand_set(s);
		if ((sluice_lwip_rand() & 0x3fff) == 0x3fff) {
			*state = s;
			return 1;
		}
	}
	return 0;
}

int
main(void)
{
	struct event_base *base;
	struct stack *s;
	uint64_t state = 0;
	int sv[2], i;

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	CHECK((base = event_base_new()) != NULL);
	CHECK((s = stack_new(base, sv[0], 1500)) != NULL);
	if (s == NULL)
		return check_summary("stack");
	CHECK(stack_listen_any(s, syn_cb, NULL) == 0);
	stack_unlisten(s);

	/* the draw that made tcp_bind(port 0) fail, then 16 others */
	CHECK(bad_state(&state));
	for (i = 0; i < 17; i++) {
		lwip_hooks_rand_set(state + (uint64_t)i * 7919);
		tcp_init();	/* draws the first local port again */
		CHECK(stack_listen_any(s, syn_cb, NULL) == 0);
		stack_unlisten(s);
	}

	stack_free(s);
	event_base_free(base);
	close(sv[0]);
	close(sv[1]);
	return check_summary("stack");
}
