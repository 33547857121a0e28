/*
 * rtt: the rtt_1to1 scenario. Registered users A and B on fourcd (plain
 * WebSocket); A sends SEND to B's one device and the time until B reads the
 * DELIVER is the round trip through the server. Closed loop first (one
 * message in flight, fixed pacing), then an open-loop scan at increasing
 * offered rates over several A->B pairs to find the highest sustainable
 * rate. The baseline in the same invocation is bench/baseline_server in
 * relay mode: A writes a record of the same size as the SEND frame and the
 * server forwards it to B, so the hop count is the same.
 */
#ifndef FC_BENCH_RTT_H
#define FC_BENCH_RTT_H

#include <stddef.h>

#define RTT_MAX_STEPS 16

typedef struct rtt_opts {
	const char *fourcd;        /* path of the fourcd binary */
	const char *baseline;      /* path of baseline_server */
	const char *tmp;           /* the run's temporary directory */
	long msgs;                 /* closed-loop messages measured */
	long warm_msgs;            /* closed-loop messages sent first, not measured */
	double rate;               /* closed-loop pacing, messages per second */
	size_t msg_bytes;          /* ciphertext bytes per message (>= 12) */
	long steps[RTT_MAX_STEPS]; /* offered rates of the scan, ascending */
	int nsteps;
	unsigned step_ms;   /* sending time of one step */
	long step_max_msgs; /* messages of one step at most */
	int pairs;          /* A->B pairs used by the scan */
	int server_cpu;     /* -1: not pinned */
	int client_cpu;
} rtt_opts_t;

/* Runs the scenario and prints its JSON line on stdout (progress goes to
 * stderr). Returns 0 when the scenario ran, whatever its figures; a
 * negative errno (after printing an error line) when the harness broke. */
int rtt_run(const rtt_opts_t *o);

#endif
