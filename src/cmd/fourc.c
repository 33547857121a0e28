/*
 * fourc: the command-line reference client (docs/client.md).
 *
 *   fourc register   create an account; the profile becomes its device 1
 *   fourc link-code  print a code that lets a new device join the account
 *   fourc link       add a new device (from a code, or straight from a profile)
 *   fourc whoami     show the profile's identity
 *   fourc send       send an end-to-end encrypted text
 *   fourc listen     print incoming messages, acknowledge, reconnect
 *   fourc devices    list the account's devices
 *   fourc unlink     remove a device from the account
 *   fourc demo       end-to-end self-test against one or two servers
 *
 * Results go to stdout, progress and errors to stderr; errors are one line,
 * "fourc: <what happened>". Exit status: 0 success, 1 failure, 2 usage.
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "core/log.h"
#include "proto/wire.h"

#define DEFAULT_SERVER "ws://127.0.0.1:8080/v1/ws"
#define FOURC_CLIENT_VERSION "0.1.0"
#define DEFAULT_INVITE "dev-invite-4c"
#define DEMO_WAIT_MS 15000

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---- arguments ------------------------------------------------------------ */

enum {
	O_PROFILE = 1 << 0,
	O_SERVER = 1 << 1,
	O_INSECURE = 1 << 2,
	O_CA = 1 << 3,
	O_INVITE = 1 << 4,
	O_USERNAME = 1 << 5,
	O_CODE = 1 << 6,
	O_FROM = 1 << 7,
	O_TO = 1 << 8,
	O_COUNT = 1 << 9,
	O_TIMEOUT = 1 << 10,
	O_DEVICE = 1 << 11,
	O_MESSAGE = 1 << 12,
	O_KEEP = 1 << 13,
	O_VERBOSE = 1 << 14,
	O_HELP = 1 << 15,
};

static const struct {
	const char *name;
	int flag;
	int has_arg;
} g_opts[] = {
	{"profile", O_PROFILE, 1}, {"server", O_SERVER, 1},   {"insecure", O_INSECURE, 0},
	{"ca", O_CA, 1},           {"invite", O_INVITE, 1},   {"username", O_USERNAME, 1},
	{"code", O_CODE, 1},       {"from", O_FROM, 1},       {"to", O_TO, 1},
	{"count", O_COUNT, 1},     {"timeout", O_TIMEOUT, 1}, {"device", O_DEVICE, 1},
	{"message", O_MESSAGE, 1}, {"keep", O_KEEP, 0},       {"verbose", O_VERBOSE, 0},
	{"help", O_HELP, 0},
};

typedef struct args {
	const char *cmd;
	int seen;
	const char *profile, *ca, *invite, *username, *code, *from, *to, *message;
	const char *server[2];
	int nserver;
	int insecure, keep, verbose;
	unsigned long count, timeout, device;
	int npos;
	char **pos;
} args_t;

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	if (!s || !*s)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fourc %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see fourc %s --help)\n", cmd);
	return 2;
}

static int set_value(args_t *a, int flag, const char *v)
{
	unsigned long *num = NULL;
	unsigned long max = 0;
	switch (flag) {
	case O_PROFILE:
		a->profile = v;
		break;
	case O_SERVER:
		if (a->nserver >= 2)
			return usage_error(a->cmd, "--server given more than twice");
		a->server[a->nserver++] = v;
		break;
	case O_CA:
		a->ca = v;
		break;
	case O_INVITE:
		a->invite = v;
		break;
	case O_USERNAME:
		a->username = v;
		break;
	case O_CODE:
		a->code = v;
		break;
	case O_FROM:
		a->from = v;
		break;
	case O_TO:
		a->to = v;
		break;
	case O_MESSAGE:
		a->message = v;
		break;
	case O_COUNT:
		num = &a->count;
		max = 1000000000;
		break;
	case O_TIMEOUT:
		num = &a->timeout;
		max = 100000000;
		break;
	case O_DEVICE:
		num = &a->device;
		max = UINT32_MAX;
		break;
	default:
		break;
	}
	if (num && parse_ulong(v, max, num) < 0)
		return usage_error(a->cmd, "not a valid number: \"%s\"", v);
	return 0;
}

/* Parses options anywhere on the line ("--name value" or "--name=value";
 * "--" ends them); what is left are positional arguments. */
static int parse_args(int argc, char **argv, int allowed, args_t *a)
{
	a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
	if (!a->pos)
		return 1;
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		char *s = argv[i];
		if (only_pos || s[0] != '-' || s[1] == 0) {
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(s, "-h") == 0)
			s = "--help";
		else if (strcmp(s, "-v") == 0)
			s = "--verbose";
		if (s[1] != '-')
			return usage_error(a->cmd, "unknown option %s", s);
		const char *name = s + 2, *eq = strchr(name, '=');
		size_t nl = eq ? (size_t)(eq - name) : strlen(name);
		int k = -1;
		for (size_t j = 0; j < sizeof g_opts / sizeof g_opts[0]; j++)
			if (strlen(g_opts[j].name) == nl && strncmp(g_opts[j].name, name, nl) == 0)
				k = (int)j;
		if (k < 0 || !(allowed & g_opts[k].flag))
			return usage_error(a->cmd, "unknown option --%.*s", (int)nl, name);
		int flag = g_opts[k].flag;
		a->seen |= flag;
		if (!g_opts[k].has_arg) {
			if (eq)
				return usage_error(a->cmd, "--%s takes no value", g_opts[k].name);
			if (flag == O_INSECURE)
				a->insecure = 1;
			else if (flag == O_KEEP)
				a->keep = 1;
			else if (flag == O_VERBOSE)
				a->verbose = 1;
			continue;
		}
		const char *v = eq ? eq + 1 : NULL;
		if (!v) {
			if (i + 1 >= argc)
				return usage_error(a->cmd, "--%s needs a value", g_opts[k].name);
			v = argv[++i];
		}
		int rc = set_value(a, flag, v);
		if (rc)
			return rc;
	}
	if (a->verbose)
		log_init(LOG_DEBUG, 2);
	return 0;
}

static int need(const args_t *a, int flag, const char *name)
{
	if (a->seen & flag)
		return 0;
	return usage_error(a->cmd, "%s is required", name);
}

/* ---- shared helpers --------------------------------------------------------- */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;
	fputs("fourc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Commands other than register and link need an existing profile; opening
 * would otherwise create an empty one as a side effect of a typo. */
static int existing_profile(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return fail("profile %s does not exist (run fourc register or fourc link first)", dir);
}

static int open_profile(const char *dir, fcc_t **out)
{
	int rc = fcc_open(out, dir);
	if (rc < 0)
		return fail("cannot open profile %s: %s", dir, err_str(rc));
	return 0;
}

/* Connection options: the command line wins over what the profile saved. */
static fcc_conn_opts_t conn_opts(const args_t *a, const fcc_t *c)
{
	fcc_conn_opts_t o;
	memset(&o, 0, sizeof o);
	if (c)
		fcc_saved_opts(c, &o);
	if (a->insecure)
		o.insecure = 1;
	if (a->ca)
		o.ca_file = a->ca;
	return o;
}

/* Opens an enrolled profile, connects and authenticates. */
static int session(const args_t *a, const char *dir, fcc_t **out)
{
	fcc_t *c;
	if (existing_profile(dir) || open_profile(dir, &c))
		return 1;
	if (!fcc_has_identity(c)) {
		fcc_close(c);
		return fail("profile %s has no identity (run fourc register or fourc link first)",
			    dir);
	}
	fcc_conn_opts_t o = conn_opts(a, c);
	int rc = fcc_connect(c, a->nserver ? a->server[0] : NULL, &o);
	if (rc == 0)
		rc = fcc_auth(c);
	if (rc < 0) {
		int r = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return r;
	}
	*out = c;
	return 0;
}

/* Copies text for a terminal: control characters become \n, \t, \xHH so a
 * message cannot move the cursor or rewrite the screen. */
static void print_sanitized(FILE *f, slice_t s)
{
	for (size_t i = 0; i < s.len; i++) {
		uint8_t ch = s.ptr[i];
		if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

static void iso_time(uint64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: waits end with EINTR */
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- register, link, whoami ----------------------------------------------------- */

static const char help_register[] =
	"usage: fourc register --server URL --profile DIR [--invite CODE] [--username NAME]\n"
	"                      [--insecure] [--ca FILE] [--verbose]\n"
	"\n"
	"Creates a new account on the server with the (new, empty) profile DIR as its\n"
	"device 1: generates the device's authentication key, its Signal identity and\n"
	"100 one-time prekeys, registers with the invite code, and optionally sets a\n"
	"username. The server URL and TLS options are saved in DIR/identity.\n"
	"\n"
	"  --server URL      ws://host:port/v1/ws or wss://... (default " DEFAULT_SERVER ")\n"
	"  --profile DIR     profile directory, created 0700 if missing\n"
	"  --invite CODE     invite code (default " DEFAULT_INVITE ")\n"
	"  --username NAME   3..32 characters of a-z 0-9 _ .\n"
	"  --insecure        wss: do not verify the server certificate (dev certificate)\n"
	"  --ca FILE         wss: trust the CA certificates in FILE (PEM)\n";

static int cmd_register(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR"))
		return 2;
	fcc_t *c;
	if (open_profile(a->profile, &c))
		return 1;
	if (fcc_has_identity(c)) {
		fail("profile %s already holds account %llu device %u", a->profile,
		     (unsigned long long)fcc_account_id(c), fcc_device_id(c));
		fcc_close(c);
		return 1;
	}
	const char *url = a->nserver ? a->server[0] : DEFAULT_SERVER;
	fcc_conn_opts_t o = conn_opts(a, NULL);
	int rc = fcc_connect(c, url, &o);
	if (rc == 0)
		rc = fcc_register(c, a->invite ? a->invite : DEFAULT_INVITE, a->username);
	if (rc < 0 && fcc_has_identity(c)) {
		/* The account exists; only the username step failed. */
		fail("%s", fcc_errmsg(c));
		printf("registered: account %llu device %u (without username)\n",
		       (unsigned long long)fcc_account_id(c), fcc_device_id(c));
		fcc_close(c);
		return 1;
	}
	if (rc < 0) {
		fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return 1;
	}
	printf("registered: account %llu device %u%s%s on %s\n",
	       (unsigned long long)fcc_account_id(c), fcc_device_id(c),
	       fcc_username(c)[0] ? " username " : "", fcc_username(c), fcc_server(c));
	fcc_close(c);
	return 0;
}

static const char help_link_code[] =
	"usage: fourc link-code --profile DIR [--insecure] [--ca FILE] [--verbose]\n"
	"\n"
	"Asks the server, as the existing device in DIR, for a one-time link code and\n"
	"prints it. On the new device run: fourc link --profile NEWDIR --code CODE\n"
	"--server URL. The code expires after a few minutes.\n";

static int cmd_link_code(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR"))
		return 2;
	fcc_t *c;
	if (session(a, a->profile, &c))
		return 1;
	char code[FCC_LINK_CODE_MAX + 1];
	uint32_t exp = 0;
	int rc = fcc_link_code(c, code, &exp);
	if (rc < 0) {
		rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	printf("%s\n", code);
	progress("link code valid for %u s; on the new device: fourc link --profile NEWDIR "
		 "--code %s --server %s",
		 exp, code, fcc_server(c));
	fcc_close(c);
	return 0;
}

static const char help_link[] =
	"usage: fourc link --profile NEWDIR --code CODE [--server URL] [--insecure] [--ca FILE]\n"
	"       fourc link --profile NEWDIR --from EXISTINGDIR [--server URL]\n"
	"\n"
	"Adds the (new, empty) profile NEWDIR as another device of an existing account.\n"
	"With --code, uses a code printed by fourc link-code on an existing device\n"
	"(server default " DEFAULT_SERVER "). With --from, does both steps: gets a\n"
	"code as the device in EXISTINGDIR and links NEWDIR to the same server.\n";

static int link_with(const args_t *a, const char *url, fcc_conn_opts_t o, const char *code)
{
	fcc_t *c;
	if (open_profile(a->profile, &c))
		return 1;
	int rc = fcc_connect(c, url, &o);
	if (rc == 0)
		rc = fcc_link(c, code);
	if (rc < 0) {
		rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	printf("linked: account %llu device %u on %s\n", (unsigned long long)fcc_account_id(c),
	       fcc_device_id(c), fcc_server(c));
	fcc_close(c);
	return 0;
}

static int cmd_link(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile NEWDIR"))
		return 2;
	if (!a->code == !a->from)
		return usage_error(a->cmd,
				   "give exactly one of --code CODE and --from EXISTINGDIR");
	if (a->code)
		return link_with(a, a->nserver ? a->server[0] : DEFAULT_SERVER, conn_opts(a, NULL),
				 a->code);
	args_t ex = *a;
	ex.nserver = 0; /* the existing device uses its own server */
	fcc_t *old;
	if (session(&ex, a->from, &old))
		return 1;
	char code[FCC_LINK_CODE_MAX + 1];
	if (fcc_link_code(old, code, NULL) < 0) {
		int rc = fail("%s", fcc_errmsg(old));
		fcc_close(old);
		return rc;
	}
	char url[FCC_MAX_URL + 1];
	snprintf(url, sizeof url, "%s", a->nserver ? a->server[0] : fcc_server(old));
	fcc_conn_opts_t o = conn_opts(a, old);
	char ca[PATH_MAX] = "";
	if (o.ca_file) {
		snprintf(ca, sizeof ca, "%s", o.ca_file);
		o.ca_file = ca;
	}
	fcc_close(old);
	progress("fourc: got a link code from %s", a->from);
	return link_with(a, url, o, code);
}

static const char help_whoami[] =
	"usage: fourc whoami --profile DIR\n"
	"\n"
	"Prints the profile's account, device, username, server and delivery cursor\n"
	"(from DIR, without contacting the server).\n";

static int cmd_whoami(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR"))
		return 2;
	fcc_t *c;
	if (existing_profile(a->profile) || open_profile(a->profile, &c))
		return 1;
	if (!fcc_has_identity(c)) {
		fcc_close(c);
		return fail("profile %s has no identity (run fourc register or fourc link first)",
			    a->profile);
	}
	fcc_conn_opts_t o;
	fcc_saved_opts(c, &o);
	printf("account  %llu\ndevice   %u\nusername %s\nserver   %s%s\ncursor   %llu\n",
	       (unsigned long long)fcc_account_id(c), fcc_device_id(c),
	       fcc_username(c)[0] ? fcc_username(c) : "(none)", fcc_server(c),
	       o.insecure ? " (certificate not verified)" : "", (unsigned long long)fcc_cursor(c));
	fcc_close(c);
	return 0;
}

/* ---- send ------------------------------------------------------------------------- */

static const char help_send[] =
	"usage: fourc send --profile DIR --to USERNAME|ACCOUNT_ID TEXT...\n"
	"                  [--server URL] [--insecure] [--ca FILE] [--verbose]\n"
	"\n"
	"Sends TEXT (the remaining arguments joined by spaces; put -- before text that\n"
	"starts with a dash) end-to-end encrypted to every device of the recipient and\n"
	"to this account's other devices, and returns once the server accepted it.\n"
	"--to takes a username, or an account id (digits only); write @NAME for a\n"
	"username that consists of digits.\n";

static int resolve_to(fcc_t *c, const char *to, uint64_t *acct, char *name, size_t cap)
{
	unsigned long v;
	if (to[0] == '@') {
		to++; /* "@name": a username even when it is all digits */
	} else if (parse_ulong(to, ULONG_MAX, &v) == 0) {
		*acct = v;
		fcc_account_name(c, v, name, cap);
		return 0;
	}
	fcc_account_t info;
	if (fcc_resolve(c, to, &info) < 0)
		return -1;
	*acct = info.account;
	snprintf(name, cap, "%s", to);
	return 0;
}

static char *join_args(int n, char **v)
{
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		if (i)
			s[off++] = ' ';
		memcpy(s + off, v[i], l);
		off += l;
	}
	s[off] = 0;
	return s;
}

static int cmd_send(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR") || need(a, O_TO, "--to USERNAME|ACCOUNT_ID"))
		return 2;
	if (a->npos == 0)
		return usage_error(a->cmd, "no message text");
	char *text = join_args(a->npos, a->pos);
	if (!text)
		return fail("out of memory");
	fcc_t *c;
	if (session(a, a->profile, &c)) {
		free(text);
		return 1;
	}
	uint64_t to;
	char name[64];
	fcc_sent_t sent;
	int rc = resolve_to(c, a->to, &to, name, sizeof name);
	if (rc == 0)
		rc = fcc_send_text(c, to, text, strlen(text), &sent);
	free(text);
	if (rc < 0) {
		rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	char ts[80];
	iso_time(sent.timestamp_ms, ts, sizeof ts);
	printf("sent to %s (account %llu): %u envelope(s) (their devices and your other "
	       "devices), message id %016llx, accepted at %s\n",
	       name, (unsigned long long)to, sent.n_envelopes,
	       (unsigned long long)sent.client_msg_id, ts);
	if (sent.stale_rounds || sent.retries)
		progress("fourc: device list refreshed %u time(s), %u resend(s)", sent.stale_rounds,
			 sent.retries);
	fcc_close(c);
	return 0;
}

/* ---- listen ------------------------------------------------------------------------- */

static const char help_listen[] =
	"usage: fourc listen --profile DIR [--count N] [--timeout SECONDS]\n"
	"                    [--server URL] [--insecure] [--ca FILE] [--verbose]\n"
	"\n"
	"Connects, fetches the backlog, then prints every incoming message as\n"
	"  [seq N] SENDER/DEVICE: text\n"
	"(SENDER is the username, or the account id when there is none; copies of\n"
	"messages this account sent from another device read \"[seq N] ME/DEVICE to\n"
	"PEER: text\"). Messages are acknowledged after printing. Reconnects with\n"
	"backoff when the connection drops. Stops after N messages (--count), after\n"
	"SECONDS (--timeout), or on Ctrl-C. Exits 1 if --timeout ends it before\n"
	"--count was reached.\n";

typedef struct listener {
	fcc_t *c;
	unsigned long n;
} listener_t;

static void listen_on_message(void *arg, const fcc_message_t *m)
{
	listener_t *l = arg;
	char sender[64], peer[64];
	fcc_account_name(l->c, m->sender_account, sender, sizeof sender);
	printf("[seq %llu] %s/%u", (unsigned long long)m->seq, sender, m->sender_device);
	if (m->outgoing && m->status == 0)
		printf(" to %s", fcc_account_name(l->c, m->peer, peer, sizeof peer));
	if (m->status < 0) {
		printf(": (could not decrypt: %s)\n", err_str(m->status));
	} else {
		fputs(": ", stdout);
		print_sanitized(stdout, m->text);
		fputc('\n', stdout);
	}
	fflush(stdout);
	l->n++;
}

static void listen_on_lost(void *arg, uint64_t from, uint64_t to)
{
	(void)arg;
	printf("[seq %llu-%llu] (lost: expired on the server before this device fetched it)\n",
	       (unsigned long long)from, (unsigned long long)to);
	fflush(stdout);
}

static int cmd_listen(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR"))
		return 2;
	install_signals();
	listener_t l = {0};
	if (session(a, a->profile, &l.c))
		return 1;
	fcc_handlers_t h = {.on_message = listen_on_message, .on_lost = listen_on_lost};
	fcc_set_handlers(l.c, &h, &l);
	char me[64];
	progress("fourc: listening as %s/%u on %s",
		 fcc_account_name(l.c, fcc_account_id(l.c), me, sizeof me), fcc_device_id(l.c),
		 fcc_server(l.c));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int64_t start = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
	int64_t end = a->seen & O_TIMEOUT ? start + (int64_t)a->timeout * 1000 : -1;
	int status = 0;
	int rc = fcc_sync(l.c);
	while (!g_stop) {
		if ((a->seen & O_COUNT) && l.n >= a->count)
			break;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t now = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
		if (end >= 0 && now >= end) {
			if (a->seen & O_COUNT) {
				status = fail(
					"listen: timed out after %lu s with %lu of %lu messages",
					a->timeout, l.n, a->count);
			}
			break;
		}
		if (rc >= 0 || rc == -EINTR) {
			int slice = end >= 0 && end - now < 1000 ? (int)(end - now) : 1000;
			rc = fcc_poll(l.c, slice);
			continue;
		}
		/* The connection is gone: reconnect with backoff (which also
		 * fetches what arrived meanwhile). */
		progress("fourc: %s; reconnecting", fcc_errmsg(l.c));
		rc = fcc_reconnect(l.c, end >= 0 ? (int)(end - now) : -1);
		if (rc == -EINTR || rc == -ETIMEDOUT)
			continue;
		if (rc < 0) {
			status = fail("%s", fcc_errmsg(l.c));
			break;
		}
		progress("fourc: reconnected");
	}
	if (g_stop)
		progress("fourc: listen: stopped");
	fcc_close(l.c);
	return status;
}

/* ---- devices, unlink --------------------------------------------------------------- */

static const char help_devices[] =
	"usage: fourc devices --profile DIR [--server URL] [--insecure] [--ca FILE]\n"
	"\n"
	"Lists the devices of the profile's account (asks the server).\n";

static int cmd_devices(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR"))
		return 2;
	fcc_t *c;
	if (session(a, a->profile, &c))
		return 1;
	fcc_account_t info;
	if (fcc_devices(c, fcc_account_id(c), &info) < 0) {
		int rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	printf("account %llu%s%s: %u device(s)\n", (unsigned long long)info.account,
	       info.username[0] ? " username " : "", info.username, info.n_devices);
	for (unsigned i = 0; i < info.n_devices; i++)
		printf("device %u%s\n", info.devices[i],
		       info.devices[i] == fcc_device_id(c) ? " (this device)" : "");
	fcc_close(c);
	return 0;
}

static const char help_unlink[] =
	"usage: fourc unlink --profile DIR --device N [--server URL] [--insecure] [--ca FILE]\n"
	"\n"
	"Removes device N from the profile's account. Removing the profile's own\n"
	"device ends its access: it can no longer connect.\n";

static int cmd_unlink(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR") || need(a, O_DEVICE, "--device N"))
		return 2;
	fcc_t *c;
	if (session(a, a->profile, &c))
		return 1;
	int rc = fcc_unlink(c, (uint32_t)a->device);
	if (rc < 0) {
		rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	printf("removed device %lu from account %llu\n", a->device,
	       (unsigned long long)fcc_account_id(c));
	if (a->device == fcc_device_id(c))
		progress("fourc: that was this profile's own device; %s can no longer connect",
			 a->profile);
	fcc_close(c);
	return 0;
}

static const char help_username[] =
	"usage: fourc username --profile DIR --username NAME [--server URL] [--insecure]\n"
	"                      [--ca FILE]\n"
	"\n"
	"Sets the account's public username (3..32 of a-z 0-9 _ .), e.g. after\n"
	"`fourc register` found the wished one taken. --username \"\" clears it.\n";

static int cmd_username(const args_t *a)
{
	if (need(a, O_PROFILE, "--profile DIR") || need(a, O_USERNAME, "--username NAME"))
		return 2;
	fcc_t *c;
	if (session(a, a->profile, &c))
		return 1;
	int rc = fcc_set_username(c, a->username);
	if (rc < 0) {
		rc = fail("%s", fcc_errmsg(c));
		fcc_close(c);
		return rc;
	}
	if (a->username && a->username[0])
		printf("account %llu is now %s\n", (unsigned long long)fcc_account_id(c),
		       a->username);
	else
		printf("account %llu has no username now\n", (unsigned long long)fcc_account_id(c));
	fcc_close(c);
	return 0;
}

/* ---- demo ---------------------------------------------------------------------------- */

static const char help_demo[] =
	"usage: fourc demo [--server URL [--server URL2]] [--message TEXT] [--insecure]\n"
	"                  [--ca FILE] [--keep] [--verbose]\n"
	"\n"
	"End-to-end self-test in a fresh temporary directory: registers user A and\n"
	"user B (B with two devices, B2 linked from B1) under random usernames. A\n"
	"sends to B (B1 and B2 both receive it live), B1 replies (A receives it, B2\n"
	"gets the copy), B2 goes offline, A sends 3 more messages (the last one is\n"
	"TEXT when given), and B2 comes back and receives the backlog in order via\n"
	"SYNC. Every message must decrypt on every addressed device to the exact\n"
	"plaintext. With two --server URLs, A uses the first and B the second.\n"
	"Prints each decrypted text, then one summary line; exits 0 only if every\n"
	"check held. --keep leaves the temporary directory in place.\n";

typedef struct got {
	uint64_t seq, sender, peer;
	uint32_t sdev;
	int via_sync, status, outgoing;
	char *text;
} got_t;

#define DEMO_MAX_GOT 16

struct demo;

typedef struct ddev {
	const char *name;
	struct demo *d;
	fcc_t *c;
	char dir[PATH_MAX];
	got_t got[DEMO_MAX_GOT];
	unsigned n;
	int overflow;
} ddev_t;

typedef struct demo {
	char root[1024];
	char ua[24], ub[24];
	uint64_t acct_a, acct_b;
	ddev_t a, b1, b2;
	unsigned messages, deliveries;
	char failed[512];
} demo_t;

static const char *demo_name(const demo_t *d, uint64_t acct)
{
	return acct == d->acct_a ? d->ua : acct == d->acct_b ? d->ub : "?";
}

static void demo_on_message(void *arg, const fcc_message_t *m)
{
	ddev_t *x = arg;
	if (x->n >= DEMO_MAX_GOT) {
		x->overflow = 1;
		return;
	}
	got_t *g = &x->got[x->n++];
	g->seq = m->seq;
	g->sender = m->sender_account;
	g->sdev = m->sender_device;
	g->peer = m->peer;
	g->via_sync = m->via_sync;
	g->status = m->status;
	g->outgoing = m->outgoing;
	g->text = malloc(m->text.len + 1);
	if (g->text) {
		if (m->text.len)
			memcpy(g->text, m->text.ptr, m->text.len);
		g->text[m->text.len] = 0;
	}
	printf("%-2s <- [seq %llu] %s/%u%s%s%s: ", x->name, (unsigned long long)m->seq,
	       demo_name(x->d, m->sender_account), m->sender_device,
	       m->outgoing ? " (copy, to " : "", m->outgoing ? demo_name(x->d, m->peer) : "",
	       m->outgoing ? ")" : "");
	if (m->status < 0)
		printf("(could not decrypt: %s)", err_str(m->status));
	else
		print_sanitized(stdout, m->text);
	printf("%s\n", m->via_sync ? "   [via SYNC]" : "   [live]");
	fflush(stdout);
}

static void demo_on_lost(void *arg, uint64_t from, uint64_t to)
{
	ddev_t *x = arg;
	snprintf(x->d->failed, sizeof x->d->failed, "%s lost seqs %llu..%llu", x->name,
		 (unsigned long long)from, (unsigned long long)to);
}

static int demo_fail(demo_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int demo_fail(demo_t *d, const char *fmt, ...)
{
	if (!d->failed[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->failed, sizeof d->failed, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int demo_open(demo_t *d, ddev_t *x, const char *name, const char *sub)
{
	x->name = name;
	x->d = d;
	snprintf(x->dir, sizeof x->dir, "%s/%s", d->root, sub);
	int rc = fcc_open(&x->c, x->dir);
	if (rc < 0)
		return demo_fail(d, "%s: cannot open profile %s: %s", name, x->dir, err_str(rc));
	fcc_handlers_t h = {.on_message = demo_on_message, .on_lost = demo_on_lost};
	fcc_set_handlers(x->c, &h, x);
	return 0;
}

static int demo_register(demo_t *d, ddev_t *x, const char *url, const fcc_conn_opts_t *o,
			 char *uname, size_t cap)
{
	for (int tries = 0; tries < 3; tries++) {
		uint8_t r[4];
		randombytes_buf(r, sizeof r);
		snprintf(uname, cap, "demo_%c_%02x%02x%02x%02x", x->name[0] == 'A' ? 'a' : 'b',
			 r[0], r[1], r[2], r[3]);
		int rc = fcc_has_identity(x->c) ? 0 : fcc_connect(x->c, url, o);
		if (rc == 0)
			rc = fcc_has_identity(x->c) ? fcc_set_username(x->c, uname) :
						      fcc_register(x->c, DEFAULT_INVITE, uname);
		if (rc == 0) {
			progress("demo: %s registered as %s (account %llu, device %u) on %s",
				 x->name, uname, (unsigned long long)fcc_account_id(x->c),
				 fcc_device_id(x->c), url);
			return 0;
		}
		if (rc != -FC_EEXIST || !fcc_has_identity(x->c))
			break; /* only a taken username is worth another random try */
	}
	return demo_fail(d, "%s: register: %s", x->name, fcc_errmsg(x->c));
}

/* Polls x until it holds `want` messages or the wait times out. */
static int demo_wait(demo_t *d, ddev_t *x, unsigned want)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	int64_t end = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 + DEMO_WAIT_MS;
	while (x->n < want && !x->overflow) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t left = end - ((int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000);
		if (left <= 0 || g_stop)
			return demo_fail(d, "%s received %u of %u expected messages within %d s",
					 x->name, x->n, want, DEMO_WAIT_MS / 1000);
		int rc = fcc_poll(x->c, (int)left);
		if (rc < 0 && rc != -EINTR)
			return demo_fail(d, "%s: %s", x->name, fcc_errmsg(x->c));
	}
	return 0;
}

/* Checks message number idx on x against what was sent. */
static int demo_check(demo_t *d, ddev_t *x, unsigned idx, const ddev_t *from, uint64_t peer,
		      const char *text, int via_sync)
{
	if (idx >= x->n)
		return demo_fail(d, "%s: message %u missing", x->name, idx + 1);
	const got_t *g = &x->got[idx];
	const char *what = NULL;
	if (g->status < 0)
		what = "it did not decrypt";
	else if (!g->text || strcmp(g->text, text) != 0)
		what = "the plaintext differs";
	else if (g->sender != fcc_account_id(from->c) || g->sdev != fcc_device_id(from->c))
		what = "the sender differs";
	else if (g->peer != peer)
		what = "the conversation peer differs";
	else if (g->via_sync != via_sync)
		what = via_sync ? "it arrived live, not via SYNC" : "it arrived via SYNC, not live";
	else if (g->outgoing != (fcc_account_id(from->c) == fcc_account_id(x->c)))
		what = "the copy flag is wrong";
	if (what)
		return demo_fail(d, "%s: message \"%s\" from %s: %s", x->name, text, from->name,
				 what);
	d->deliveries++;
	return 0;
}

static int demo_send(demo_t *d, ddev_t *from, uint64_t to, const char *text, fcc_sent_t *sent)
{
	int rc = fcc_send_text(from->c, to, text, strlen(text), sent);
	if (rc < 0)
		return demo_fail(d, "%s: send \"%s\": %s", from->name, text, fcc_errmsg(from->c));
	progress("demo: %s sent \"%s\" to %s (%u device(s))", from->name, text, demo_name(d, to),
		 sent->n_envelopes);
	d->messages++;
	return 0;
}

static int demo_setup(demo_t *d, const args_t *a)
{
	const char *url_a = a->nserver ? a->server[0] : DEFAULT_SERVER;
	const char *url_b = a->nserver > 1 ? a->server[1] : url_a;
	fcc_conn_opts_t o = conn_opts(a, NULL);
	if (demo_open(d, &d->a, "A", "a") || demo_open(d, &d->b1, "B1", "b1") ||
	    demo_open(d, &d->b2, "B2", "b2"))
		return -1;
	if (demo_register(d, &d->a, url_a, &o, d->ua, sizeof d->ua) ||
	    demo_register(d, &d->b1, url_b, &o, d->ub, sizeof d->ub))
		return -1;
	d->acct_a = fcc_account_id(d->a.c);
	d->acct_b = fcc_account_id(d->b1.c);
	/* A looks B up while B still has one device: its first send then
	 * meets STALE_DEVICES, the path a real client hits after a peer adds
	 * a device. */
	fcc_account_t info;
	if (fcc_resolve(d->a.c, d->ub, &info) < 0)
		return demo_fail(d, "A: resolve %s: %s", d->ub, fcc_errmsg(d->a.c));
	if (info.account != d->acct_b || info.n_devices != 1)
		return demo_fail(d, "A: resolve %s returned account %llu with %u device(s)", d->ub,
				 (unsigned long long)info.account, info.n_devices);
	char code[FCC_LINK_CODE_MAX + 1];
	if (fcc_link_code(d->b1.c, code, NULL) < 0)
		return demo_fail(d, "B1: link code: %s", fcc_errmsg(d->b1.c));
	if (fcc_connect(d->b2.c, url_b, &o) < 0 || fcc_link(d->b2.c, code) < 0)
		return demo_fail(d, "B2: link: %s", fcc_errmsg(d->b2.c));
	progress("demo: B2 linked to %s as device %u", d->ub, fcc_device_id(d->b2.c));
	ddev_t *all[] = {&d->a, &d->b1, &d->b2};
	for (int i = 0; i < 3; i++)
		if (fcc_sync(all[i]->c) < 0)
			return demo_fail(d, "%s: sync: %s", all[i]->name, fcc_errmsg(all[i]->c));
	return 0;
}

static int demo_run(demo_t *d, const args_t *a)
{
	static const char t1[] = "hello B, this is A";
	static const char t2[] = "hi A, B here (sent from B1)";
	const char *later[3] = {"backlog message 1 of 3", "backlog message 2 of 3",
				a->message ? a->message : "backlog message 3 of 3"};
	fcc_sent_t s;
	if (demo_setup(d, a))
		return -1;

	/* 1. A -> B: both of B's devices are online and receive it live. */
	if (demo_send(d, &d->a, d->acct_b, t1, &s))
		return -1;
	if (s.stale_rounds == 0 || s.n_envelopes != 2)
		return demo_fail(d,
				 "A's stale view of B (1 device) was not refused and redone "
				 "(stale rounds %u, envelopes %u)",
				 s.stale_rounds, s.n_envelopes);
	progress("demo: A's device list for B was stale: STALE_DEVICES, re-encrypted for %u "
		 "devices, resent with the same message id",
		 s.n_envelopes);
	if (demo_wait(d, &d->b1, 1) || demo_wait(d, &d->b2, 1) ||
	    demo_check(d, &d->b1, 0, &d->a, d->acct_a, t1, 0) ||
	    demo_check(d, &d->b2, 0, &d->a, d->acct_a, t1, 0))
		return -1;

	/* 2. B1 -> A: A receives it, B2 gets the copy. */
	if (demo_send(d, &d->b1, d->acct_a, t2, &s))
		return -1;
	if (demo_wait(d, &d->a, 1) || demo_wait(d, &d->b2, 2) ||
	    demo_check(d, &d->a, 0, &d->b1, d->acct_b, t2, 0) ||
	    demo_check(d, &d->b2, 1, &d->b1, d->acct_a, t2, 0))
		return -1;

	/* 3. B2 goes offline; A sends three more; B1 gets them live. */
	fcc_disconnect(d->b2.c);
	progress("demo: B2 went offline");
	for (int i = 0; i < 3; i++)
		if (demo_send(d, &d->a, d->acct_b, later[i], &s))
			return -1;
	if (demo_wait(d, &d->b1, 4))
		return -1;
	for (unsigned i = 0; i < 3; i++)
		if (demo_check(d, &d->b1, 1 + i, &d->a, d->acct_a, later[i], 0))
			return -1;

	/* 4. B2 comes back: the backlog arrives through SYNC, in order. */
	progress("demo: B2 reconnecting");
	if (fcc_connect(d->b2.c, NULL, NULL) < 0 || fcc_auth(d->b2.c) < 0)
		return demo_fail(d, "B2: reconnect: %s", fcc_errmsg(d->b2.c));
	if (fcc_sync(d->b2.c) < 0)
		return demo_fail(d, "B2: sync: %s", fcc_errmsg(d->b2.c));
	if (demo_wait(d, &d->b2, 5))
		return -1;
	for (unsigned i = 0; i < 3; i++)
		if (demo_check(d, &d->b2, 2 + i, &d->a, d->acct_a, later[i], 1))
			return -1;
	for (unsigned i = 1; i < d->b2.n; i++)
		if (d->b2.got[i].seq != d->b2.got[i - 1].seq + 1)
			return demo_fail(d, "B2: seq %llu follows seq %llu: backlog out of order",
					 (unsigned long long)d->b2.got[i].seq,
					 (unsigned long long)d->b2.got[i - 1].seq);
	ddev_t *all[] = {&d->a, &d->b1, &d->b2};
	unsigned expect[] = {1, 4, 5};
	for (int i = 0; i < 3; i++) {
		/* Nothing unexpected may arrive late either. */
		if (fcc_poll(all[i]->c, 200) < 0 && fcc_connected(all[i]->c))
			return demo_fail(d, "%s: %s", all[i]->name, fcc_errmsg(all[i]->c));
		if (all[i]->n != expect[i] || all[i]->overflow)
			return demo_fail(d, "%s received %u messages, expected %u", all[i]->name,
					 all[i]->n, expect[i]);
	}
	return d->failed[0] ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void demo_free(demo_t *d)
{
	ddev_t *all[] = {&d->a, &d->b1, &d->b2};
	for (int i = 0; i < 3; i++) {
		fcc_close(all[i]->c);
		all[i]->c = NULL;
		for (unsigned k = 0; k < all[i]->n; k++)
			free(all[i]->got[k].text);
	}
}

static int cmd_demo(const args_t *a)
{
	install_signals();
	demo_t *d = calloc(1, sizeof *d);
	if (!d)
		return fail("out of memory");
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > sizeof d->root - 32)
		tmp = "/tmp";
	snprintf(d->root, sizeof d->root, "%s/fourc-demo-XXXXXX", tmp);
	if (!mkdtemp(d->root)) {
		int e = errno;
		free(d);
		return fail("cannot create a temporary directory: %s", strerror(e));
	}
	progress("demo: profiles in %s", d->root);
	int rc = demo_run(d, a);
	demo_free(d);
	if (rc == 0 && !d->failed[0]) {
		printf("demo: %u messages, %u deliveries, all decrypted, backlog in order: OK\n",
		       d->messages, d->deliveries);
	} else {
		printf("demo: FAILED: %s\n", d->failed[0] ? d->failed : "unknown check");
		rc = 1;
	}
	if (a->keep)
		progress("demo: kept %s", d->root);
	else if (nftw(d->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		progress("demo: could not remove %s", d->root);
	free(d);
	return rc ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------ */

#define CONN (O_SERVER | O_INSECURE | O_CA | O_VERBOSE | O_HELP)

static const struct command {
	const char *name;
	int (*fn)(const args_t *a);
	int opts;
	const char *help;
	const char *summary;
} g_cmds[] = {
	{"register", cmd_register, CONN | O_PROFILE | O_INVITE | O_USERNAME, help_register,
	 "create an account; the profile becomes its device 1"},
	{"link-code", cmd_link_code, CONN | O_PROFILE, help_link_code,
	 "print a code for adding a device (on an existing device)"},
	{"link", cmd_link, CONN | O_PROFILE | O_CODE | O_FROM, help_link,
	 "add a new device to an account"},
	{"whoami", cmd_whoami, O_PROFILE | O_HELP | O_VERBOSE, help_whoami,
	 "show the profile's identity"},
	{"send", cmd_send, CONN | O_PROFILE | O_TO, help_send, "send an encrypted text message"},
	{"listen", cmd_listen, CONN | O_PROFILE | O_COUNT | O_TIMEOUT, help_listen,
	 "print incoming messages"},
	{"devices", cmd_devices, CONN | O_PROFILE, help_devices, "list the account's devices"},
	{"unlink", cmd_unlink, CONN | O_PROFILE | O_DEVICE, help_unlink,
	 "remove a device from the account"},
	{"username", cmd_username, CONN | O_PROFILE | O_USERNAME, help_username,
	 "set or clear the account's public username"},
	{"demo", cmd_demo, CONN | O_MESSAGE | O_KEEP, help_demo,
	 "end-to-end self-test (A and B with two devices)"},
};

static void main_help(FILE *f)
{
	fputs("usage: fourc COMMAND [OPTIONS]   (fourc COMMAND --help for details)\n\n"
	      "The fourc reference client: end-to-end encrypted messaging from the command\n"
	      "line. A profile directory (--profile DIR) holds one device's identity and keys.\n\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].summary);
	fputs("\nexample (server from `fourcd serve --config deploy/dev.ini`):\n"
	      "  fourc register --server " DEFAULT_SERVER " --profile /tmp/alice --username alice\n"
	      "  fourc register --server " DEFAULT_SERVER " --profile /tmp/bob --username bob\n"
	      "  fourc listen --profile /tmp/bob &\n"
	      "  fourc send --profile /tmp/alice --to bob hello bob\n",
	      f);
}

int main(int argc, char **argv)
{
	log_init(LOG_WARN, 2);
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise");
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		main_help(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("fourc %s (protocol version %d)\n", FOURC_CLIENT_VERSION, WIRE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++) {
		const struct command *c = &g_cmds[i];
		if (strcmp(argv[1], c->name) != 0)
			continue;
		args_t a;
		memset(&a, 0, sizeof a);
		a.cmd = c->name;
		int rc = parse_args(argc - 1, argv + 1, c->opts, &a);
		if (rc == 0 && (a.seen & O_HELP)) {
			fputs(c->help, stdout);
		} else if (rc == 0) {
			if (a.npos && c->fn != cmd_send)
				rc = usage_error(c->name, "unexpected argument \"%s\"", a.pos[0]);
			else
				rc = c->fn(&a);
		}
		free(a.pos);
		return rc;
	}
	fprintf(stderr, "fourc: unknown command \"%s\" (see fourc --help)\n", argv[1]);
	return 2;
}
