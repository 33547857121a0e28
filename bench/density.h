/*
 * density: the conn_density_plain and conn_density_tls scenarios. Opens N
 * idle connections against a server and reports the growth of the server's
 * resident memory per connection, for fourcd (WebSocket upgrade completed
 * and CHALLENGE read on every connection) and for the bare libuv baseline
 * (bench/baseline_server, --mode hold or hold-tls) in the same invocation.
 */
#ifndef FC_BENCH_DENSITY_H
#define FC_BENCH_DENSITY_H

typedef struct density_opts {
	const char *fourcd;   /* path of the fourcd binary */
	const char *baseline; /* path of baseline_server */
	const char *tmp;      /* the run's temporary directory */
	int tls;              /* 0: conn_density_plain, 1: conn_density_tls */
	long conns;           /* N requested */
	long warm;            /* warm-up connections opened (and kept) first */
	long nofile;          /* RLIMIT_NOFILE both processes run with */
	int server_cpu;       /* -1: not pinned */
	int client_cpu;
} density_opts_t;

/*
 * Runs the scenario and prints its JSON line on stdout (progress goes to
 * stderr). Returns 0 when the scenario ran, whatever its figures; a negative
 * errno when the harness could not measure (a server did not start, the
 * load client could not be set up); then an error line is printed instead.
 */
int density_run(const density_opts_t *o);

#endif
