/*
 * Reconnect-storm driver for the C17 test: N clients of the reference client
 * library (src/client), one thread each, in one process.
 *
 *   storm URL INVITE DIR N TIMEOUT_S
 *
 * Phase 1 registers N devices (16 at a time) and keeps them connected, then
 * prints "ready N". Phase 2: every client waits for messages with fcc_poll();
 * when its connection drops it reconnects with the library's own policy
 * (fcc_reconnect: exponential backoff with full jitter, Retry-After and
 * GOAWAY hints). Once every client has lost its connection and come back
 * (authenticated and synced), it prints "all_back SECONDS" (from the first
 * loss), then checks that sessions survived: client 0 sends one end-to-end
 * encrypted message to each of the next K clients, which must receive and
 * decrypt it; it prints "verified K" and exits 0. Any failure or the timeout
 * prints "fail: why" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/client.h"
#include "core/log.h"

#define VERIFY_K 20

typedef struct client {
	int idx;
	fcc_t *c;
	pthread_t th;
	atomic_int lost;
	atomic_int back;
	atomic_int got;
	char expect[64];
} client_t;

static client_t *g_cl;
static int g_n;
static atomic_int g_phase; /* 0 register, 1 storm, 2 verify, 3 stop */
static atomic_int g_lost, g_back;
static double g_first_loss;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_message(void *arg, const fcc_message_t *m)
{
	client_t *cl = arg;
	if (m->status == 0 && m->text.len == strlen(cl->expect) &&
	    memcmp(m->text.ptr, cl->expect, m->text.len) == 0)
		atomic_store(&cl->got, 1);
}

static void on_lost(void *arg, uint64_t from, uint64_t to)
{
	(void)arg;
	(void)from;
	(void)to;
}

static void *client_main(void *arg)
{
	client_t *cl = arg;
	while (atomic_load(&g_phase) < 3) {
		int rc = fcc_poll(cl->c, 200);
		if (rc >= 0 || rc == -EINTR)
			continue;
		if (!atomic_exchange(&cl->lost, 1)) {
			pthread_mutex_lock(&g_mu);
			if (atomic_fetch_add(&g_lost, 1) == 0)
				g_first_loss = now_s();
			pthread_mutex_unlock(&g_mu);
		}
		rc = fcc_reconnect(cl->c, 180000);
		if (rc != 0) {
			printf("fail: client %d could not reconnect: %s\n", cl->idx,
			       fcc_errmsg(cl->c));
			fflush(stdout);
			exit(1);
		}
		if (!atomic_exchange(&cl->back, 1))
			atomic_fetch_add(&g_back, 1);
	}
	return NULL;
}

static void *register_worker(void *arg)
{
	static atomic_int next;
	const char **a = arg; /* url, invite, dir */
	for (;;) {
		int i = atomic_fetch_add(&next, 1);
		if (i >= g_n)
			return NULL;
		client_t *cl = &g_cl[i];
		char path[512];
		snprintf(path, sizeof path, "%s/c%05d", a[2], i);
		cl->idx = i;
		if (fcc_open(&cl->c, path) != 0 || fcc_connect(cl->c, a[0], NULL) != 0 ||
		    fcc_register(cl->c, a[1], NULL) != 0) {
			printf("fail: register client %d: %s\n", i,
			       cl->c ? fcc_errmsg(cl->c) : "open");
			fflush(stdout);
			exit(1);
		}
		fcc_handlers_t h = {.on_message = on_message, .on_lost = on_lost};
		fcc_set_handlers(cl->c, &h, cl);
	}
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: storm URL INVITE DIR N TIMEOUT_S\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	log_init(LOG_WARN, 2);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	g_n = (int)strtol(argv[4], NULL, 10);
	double timeout = strtod(argv[5], NULL);
	if (g_n <= VERIFY_K || g_n > 20000)
		return 2;
	g_cl = calloc((size_t)g_n, sizeof *g_cl);
	const char *args[3] = {argv[1], argv[2], argv[3]};
	pthread_t w[16];
	for (int i = 0; i < 16; i++)
		pthread_create(&w[i], NULL, register_worker, args);
	for (int i = 0; i < 16; i++)
		pthread_join(w[i], NULL);

	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	atomic_store(&g_phase, 1);
	for (int i = 0; i < g_n; i++) {
		if (pthread_create(&g_cl[i].th, &at, client_main, &g_cl[i]) != 0) {
			printf("fail: thread %d\n", i);
			return 1;
		}
	}
	printf("ready %d\n", g_n);
	fflush(stdout);

	double start = now_s();
	while (atomic_load(&g_back) < g_n) {
		if (now_s() - start > timeout) {
			printf("fail: timeout, lost=%d back=%d of %d\n", atomic_load(&g_lost),
			       atomic_load(&g_back), g_n);
			fflush(stdout);
			exit(1);
		}
		usleep(50000);
	}
	printf("all_back %.3f\n", now_s() - g_first_loss);
	fflush(stdout);

	/* Sessions survived the storm: client 0 sends an end-to-end encrypted
	 * message to each of the next K clients, which decrypt it with the
	 * identities and keys they persisted before the server died. */
	atomic_store(&g_phase, 2);
	for (int k = 1; k <= VERIFY_K; k++) {
		snprintf(g_cl[k].expect, sizeof g_cl[k].expect, "storm check %d", k);
	}
	/* Client 0's own thread keeps polling; sending from here would race it,
	 * so stop it first. */
	atomic_store(&g_phase, 3);
	for (int i = 0; i < g_n; i++)
		pthread_join(g_cl[i].th, NULL);
	for (int k = 1; k <= VERIFY_K; k++) {
		fcc_sent_t sent;
		if (fcc_send_text(g_cl[0].c, fcc_account_id(g_cl[k].c), g_cl[k].expect,
				  strlen(g_cl[k].expect), &sent) != 0) {
			printf("fail: send to client %d: %s\n", k, fcc_errmsg(g_cl[0].c));
			return 1;
		}
	}
	for (int k = 1; k <= VERIFY_K; k++) {
		double t0 = now_s();
		while (!atomic_load(&g_cl[k].got) && now_s() - t0 < 10)
			(void)fcc_poll(g_cl[k].c, 200);
		if (!atomic_load(&g_cl[k].got)) {
			printf("fail: client %d did not receive its message\n", k);
			return 1;
		}
	}
	printf("verified %d\n", VERIFY_K);
	fflush(stdout);
	for (int i = 0; i < g_n; i++)
		fcc_close(g_cl[i].c);
	free(g_cl);
	return 0;
}
