/*
 * servers: starting and stopping the two kinds of server a scenario
 * measures: fourcd (with a benchmark configuration written into its own
 * temporary directory, on free loopback ports) and bench/baseline_server.
 * Every server gets its own directory under the run's temporary directory,
 * holding its configuration, data directory and log.
 */
#ifndef FC_BENCH_SERVERS_H
#define FC_BENCH_SERVERS_H

#include <sys/types.h>

/* The invite code the benchmark configuration accepts. */
#define SRV_INVITE "bench-invite"

typedef struct srv {
	pid_t pid;      /* 0 when not running */
	int port;       /* fourcd: plain listener; baseline: its only port */
	int tls_port;   /* fourcd only */
	int admin_port; /* fourcd only */
	char dir[512];
	char log[640];
} srv_t;

/*
 * Starts `bin serve` with the benchmark configuration (one gateway loop,
 * header and auth timeouts at their maximum, upgrade admission and the
 * connection cap out of the way) pinned to cpu, and waits until its admin
 * port answers /readyz with 200. A start that failed because a probed port
 * was taken meanwhile is retried with fresh ports. Returns 0 or a negative
 * errno (the log path in s->log tells why).
 */
int srv_fourcd_start(srv_t *s, const char *bin, const char *tmp, const char *name, int cpu);

/* The configuration srv_fourcd_start() writes, as "key=value" pairs for the
 * report (static string). */
const char *srv_fourcd_settings(void);

/* Starts `bin --mode MODE` (hold, hold-tls or relay) pinned to cpu and reads
 * the port it bound. Returns 0 or a negative errno. */
int srv_baseline_start(srv_t *s, const char *bin, const char *tmp, const char *name,
		       const char *mode, int cpu);

/* SIGTERM, a grace period, then SIGKILL. Returns 0 if the server exited by
 * itself with status 0, else a negative value; *exit_code (when non-NULL)
 * gets the exit status, or 128 + signal number. */
int srv_stop(srv_t *s, int *exit_code);

#endif
