/*
 * fourcd: the fourc server. `fourcd serve` runs the embedded profile: the
 * gateway loops, the router and the SQLite store in one process.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "router/router.h"
#include "store/mem_hot.h"
#include "store/sqlite_cold.h"

#define FOURC_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fourcd serve [options]\n"
		"       fourcd --help | --version\n"
		"\n"
		"Runs the fourc server in its embedded profile: WebSocket and HTTP gateway,\n"
		"router and SQLite store in one process. Stops gracefully on Ctrl-C/SIGTERM.\n"
		"\n"
		"options (each overrides the same key of the config file):\n"
		"  --config FILE        INI configuration (see docs/operations.md)\n"
		"  --listen ADDR:PORT   plain WebSocket/HTTP listener   [server] listen      (127.0.0.1:8080)\n"
		"  --tls-listen ADDR:PORT  TLS listener; empty = off   [server] tls_listen  (127.0.0.1:8443)\n"
		"  --admin ADDR:PORT    /metrics /healthz /readyz       [server] admin       (127.0.0.1:9100)\n"
		"  --data DIR           data directory                  [server] data        (./var)\n"
		"  --loops N            gateway loops, 0 = one per core [server] loops       (0)\n"
		"  --log-level LEVEL    debug, info, warn or error      [log] level          (info)\n"
		"  -h, --help           this text\n"
		"  --version            print the version\n");
}

static int serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"tls-listen", required_argument, NULL, 't'},
		{"admin", required_argument, NULL, 'a'},
		{"data", required_argument, NULL, 'd'},
		{"loops", required_argument, NULL, 'n'},
		{"log-level", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *over[16][3];
	int nover = 0;
	const char *cfg_path = NULL;
	int ch;
	optind = 1;
	opterr = 0; /* our own messages name the program */
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (nover == (int)(sizeof over / sizeof over[0])) {
			fprintf(stderr, "fourcd serve: too many options\n");
			return 2;
		}
		switch (ch) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'l':
		case 't':
		case 'a':
		case 'd':
		case 'n': {
			static const char *keys[] = {['l'] = "listen",
						     ['t'] = "tls_listen",
						     ['a'] = "admin",
						     ['d'] = "data",
						     ['n'] = "loops"};
			over[nover][0] = "server";
			over[nover][1] = keys[ch];
			over[nover][2] = optarg;
			nover++;
			break;
		}
		case 'v':
			over[nover][0] = "log";
			over[nover][1] = "level";
			over[nover][2] = optarg;
			nover++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr,
				"fourcd serve: option %s needs a value (see fourcd --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "fourcd serve: unknown option %s (see fourcd --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fourcd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	fc_config_t cfg;
	char err[512];
	config_defaults(&cfg);
	if (cfg_path && config_load(&cfg, cfg_path, err, sizeof err) != 0) {
		fprintf(stderr, "fourcd: %s\n", err);
		return 2;
	}
	for (int i = 0; i < nover; i++) {
		if (config_set(&cfg, over[i][0], over[i][1], over[i][2], err, sizeof err) != 0) {
			fprintf(stderr, "fourcd: command line: %s\n", err);
			return 2;
		}
	}
	log_init(cfg.log_level, 2);
	/* Every connection is a descriptor: use all the kernel allows us. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			LOGW("rlimit_nofile", "err=\"%s\"", strerror(errno));
	}
	int rc = fs_mkdir_p(cfg.data, 0700);
	if (rc < 0) {
		fprintf(stderr, "fourcd: cannot create data directory %s: %s\n", cfg.data,
			strerror(-rc));
		return 1;
	}
	/* One server per data directory: a second one would share the store
	 * and, on the same ports, split the clients. */
	char lockpath[CONFIG_STR + 16];
	snprintf(lockpath, sizeof lockpath, "%s/fourcd.lock", cfg.data);
	int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "fourcd: data directory %s is in use by another fourcd (%s)\n",
			cfg.data, strerror(errno));
		return 1;
	}
	char dbpath[CONFIG_STR + 16];
	snprintf(dbpath, sizeof dbpath, "%s/fourc.db", cfg.data);
	coldstore_t *cs = NULL;
	rc = sqlite_cold_open_ex(&cs, dbpath, cfg.store_sync_full);
	if (rc != 0) {
		fprintf(stderr, "fourcd: cannot open store %s: %s\n", dbpath, err_str(rc));
		return 1;
	}
	hotstore_t *hs = NULL;
	if ((rc = mem_hot_open(&hs)) != 0) {
		cold_close(cs);
		fprintf(stderr, "fourcd: hot store: %s\n", err_str(rc));
		return 1;
	}
	router_t *rt = NULL;
	if ((rc = router_create(&rt, &cfg, cs, hs)) != 0) {
		cold_close(cs);
		hot_close(hs);
		fprintf(stderr, "fourcd: router: %s\n", err_str(rc));
		return 1;
	}
	gw_server_t *gw = NULL;
	if ((rc = gw_create(&gw, &cfg, router_inbox(rt), err, sizeof err)) != 0) {
		fprintf(stderr, "fourcd: %s\n", err);
		router_set_gateways(rt, NULL, 0);
		router_start(rt);
		router_stop(rt);
		return 1;
	}
	unsigned n = gw_loop_count(gw);
	bus_inbox_t *inboxes[64];
	for (unsigned i = 0; i < n; i++)
		inboxes[i] = gw_inbox(gw, i);
	router_set_gateways(rt, inboxes, n);
	if (router_start(rt) != 0 || gw_start(gw) != 0) {
		fprintf(stderr, "fourcd: cannot start threads\n");
		return 1;
	}
	gw_set_ready(gw, 1);
	LOGI("fourcd_started",
	     "version=%s profile=embedded loops=%u listen=%s tls_listen=%s "
	     "admin=%s data=%s",
	     FOURC_VERSION, n, cfg.listen[0] ? cfg.listen : "off",
	     cfg.tls_listen[0] ? cfg.tls_listen : "off", cfg.admin[0] ? cfg.admin : "off",
	     cfg.data);
	gw_run_admin(gw);
	router_stop(rt);
	gw_destroy(gw);
	LOGI("fourcd_stopped", "status=0");
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		fprintf(stderr, "fourcd: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("fourcd %s\n", FOURC_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	fprintf(stderr, "fourcd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
