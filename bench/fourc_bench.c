/*
 * fourc_bench: the benchmark client and scenario driver behind `make bench`
 * (bench/run.sh). Each subcommand runs one scenario against fourcd and
 * against bench/baseline_server in the same invocation and prints one JSON
 * line on stdout; progress goes to stderr. docs/benchmarks.md describes the
 * scenarios and how to read the figures.
 *
 *   fourc_bench density --tls 0|1 [--conns N] [--warm N] COMMON
 *   fourc_bench rtt [--msgs N] [--warm-msgs N] [--rate R] [--msg-bytes B]
 *                   [--steps R1,R2,...] [--step-ms MS] [--step-max N]
 *                   [--pairs P] COMMON
 *   COMMON: --fourcd PATH --baseline PATH --tmp DIR
 *           [--server-cpu N] [--client-cpu N]   (-1: do not pin)
 *
 * Exit status: 0 when the scenario ran (a missed target is a figure, not a
 * failure), 1 when the harness broke (the JSON line then has an "error"),
 * 2 for bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "density.h"
#include "proc.h"
#include "rtt.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: fourc_bench density --tls 0|1 [--conns N] [--warm N] COMMON\n"
		"       fourc_bench rtt [--msgs N] [--warm-msgs N] [--rate R] [--msg-bytes B]\n"
		"                       [--steps R1,R2,...] [--step-ms MS] [--step-max N]\n"
		"                       [--pairs P] COMMON\n"
		"COMMON: --fourcd PATH --baseline PATH --tmp DIR [--server-cpu N] "
		"[--client-cpu N]\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_steps(const char *s, rtt_opts_t *o)
{
	char buf[256];
	size_t n = strlen(s);
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, s, n + 1);
	o->nsteps = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;
		if (o->nsteps == RTT_MAX_STEPS || parse_long(tok, 1, 10000000, &v) != 0)
			return -1;
		if (o->nsteps && v <= o->steps[o->nsteps - 1])
			return -1;
		o->steps[o->nsteps++] = v;
	}
	return o->nsteps ? 0 : -1;
}

struct common {
	const char *fourcd, *baseline, *tmp;
	long server_cpu, client_cpu;
};

/* Consumes a COMMON option at argv[*i]; 1 if it was one, -1 if malformed. */
static int common_opt(struct common *c, int argc, char **argv, int *i)
{
	const char *k = argv[*i];
	if (*i + 1 >= argc)
		return strncmp(k, "--", 2) == 0 ? -1 : 0;
	const char *v = argv[*i + 1];
	if (strcmp(k, "--fourcd") == 0)
		c->fourcd = v;
	else if (strcmp(k, "--baseline") == 0)
		c->baseline = v;
	else if (strcmp(k, "--tmp") == 0)
		c->tmp = v;
	else if (strcmp(k, "--server-cpu") == 0) {
		if (parse_long(v, -1, 4095, &c->server_cpu) != 0)
			return -1;
	} else if (strcmp(k, "--client-cpu") == 0) {
		if (parse_long(v, -1, 4095, &c->client_cpu) != 0)
			return -1;
	} else
		return 0;
	(*i)++;
	return 1;
}

static int run_density(int argc, char **argv, struct common *c, long nofile)
{
	density_opts_t o = {.tls = -1, .conns = 10000, .warm = 256, .nofile = nofile};
	for (int i = 2; i < argc; i++) {
		int r = common_opt(c, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		long v;
		if (i + 1 >= argc)
			return 2;
		if (strcmp(argv[i], "--tls") == 0 && parse_long(argv[i + 1], 0, 1, &v) == 0)
			o.tls = (int)v;
		else if (strcmp(argv[i], "--conns") == 0 &&
			 parse_long(argv[i + 1], 1, 10000000, &v) == 0)
			o.conns = v;
		else if (strcmp(argv[i], "--warm") == 0 &&
			 parse_long(argv[i + 1], 1, 100000, &v) == 0)
			o.warm = v;
		else
			return 2;
		i++;
	}
	if (o.tls < 0 || !c->fourcd || !c->baseline || !c->tmp)
		return 2;
	o.fourcd = c->fourcd;
	o.baseline = c->baseline;
	o.tmp = c->tmp;
	o.server_cpu = (int)c->server_cpu;
	o.client_cpu = (int)c->client_cpu;
	proc_pin_self(o.client_cpu);
	return density_run(&o) == 0 ? 0 : 1;
}

static int run_rtt(int argc, char **argv, struct common *c)
{
	rtt_opts_t o = {.msgs = 5000,
			.warm_msgs = 200,
			.rate = 1000,
			.msg_bytes = 256,
			.steps = {1000, 2000, 5000, 10000, 20000, 50000, 100000},
			.nsteps = 7,
			.step_ms = 3000,
			.step_max_msgs = 100000,
			.pairs = 4};
	for (int i = 2; i < argc; i++) {
		int r = common_opt(c, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (i + 1 >= argc)
			return 2;
		const char *k = argv[i], *v = argv[i + 1];
		long x;
		if (strcmp(k, "--steps") == 0) {
			if (parse_steps(v, &o) != 0)
				return 2;
		} else if (strcmp(k, "--msgs") == 0 && parse_long(v, 1, 10000000, &x) == 0) {
			o.msgs = x;
		} else if (strcmp(k, "--warm-msgs") == 0 && parse_long(v, 0, 1000000, &x) == 0) {
			o.warm_msgs = x;
		} else if (strcmp(k, "--rate") == 0 && parse_long(v, 1, 10000000, &x) == 0) {
			o.rate = (double)x;
		} else if (strcmp(k, "--msg-bytes") == 0 && parse_long(v, 12, 65536, &x) == 0) {
			o.msg_bytes = (size_t)x;
		} else if (strcmp(k, "--step-ms") == 0 && parse_long(v, 100, 600000, &x) == 0) {
			o.step_ms = (unsigned)x;
		} else if (strcmp(k, "--step-max") == 0 && parse_long(v, 1, 10000000, &x) == 0) {
			o.step_max_msgs = x;
		} else if (strcmp(k, "--pairs") == 0 && parse_long(v, 1, 1024, &x) == 0) {
			o.pairs = (int)x;
		} else {
			return 2;
		}
		i++;
	}
	if (!c->fourcd || !c->baseline || !c->tmp)
		return 2;
	o.fourcd = c->fourcd;
	o.baseline = c->baseline;
	o.tmp = c->tmp;
	o.server_cpu = (int)c->server_cpu;
	o.client_cpu = (int)c->client_cpu;
	proc_pin_self(o.client_cpu);
	return rtt_run(&o) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		fprintf(stderr, "fourc_bench: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2) {
		usage();
		return 2;
	}
	/* Server on CPU 0, this client on CPU 1 when there are two. */
	int two = proc_ncpus() >= 2;
	struct common c = {.server_cpu = two ? 0 : -1, .client_cpu = two ? 1 : -1};
	long nofile = proc_nofile_raise();
	if (nofile < 0) {
		fprintf(stderr, "fourc_bench: RLIMIT_NOFILE: %s\n", strerror((int)-nofile));
		return 1;
	}
	int rc;
	if (strcmp(argv[1], "density") == 0)
		rc = run_density(argc, argv, &c, nofile);
	else if (strcmp(argv[1], "rtt") == 0)
		rc = run_rtt(argc, argv, &c);
	else
		rc = 2;
	if (rc == 2)
		usage();
	return rc;
}
