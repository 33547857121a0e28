/*
 * The files of a profile directory: the identity (who this device is and
 * where its server is) and the delivery cursor. Both are small text files
 * replaced atomically (write a temporary file, fsync, rename, fsync the
 * directory), so a crash leaves either the old or the new version.
 *
 * identity, mode 0600 (it holds the device's authentication secret key):
 *   # comment lines
 *   version=1
 *   server=<ws:// or wss:// URL>
 *   account=<decimal>
 *   device=<decimal>
 *   auth_key=<128 hex digits: Ed25519 secret key, seed || public key>
 *   insecure=<0|1>        skip TLS certificate verification (dev servers)
 *   ca_file=<path>        trust anchors for wss (empty: system store)
 *   username=<name>       last known username (informational)
 *
 * cursor: one decimal number and a newline.
 */
#include "client/client_int.h"
#include "core/fsutil.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDENTITY_FILE "identity"
#define CURSOR_FILE "cursor"
#define FILE_MAX 16384

int fcc_mkdirs(const char *dir)
{
	char p[PATH_MAX];
	size_t n = strlen(dir);
	if (n == 0)
		return -EINVAL;
	if (n >= sizeof p)
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		char saved = p[i];
		p[i] = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return -errno;
		p[i] = saved;
	}
	struct stat st;
	if (stat(p, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int path_of(const fcc_t *c, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", c->dir, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Replaces DIR/name with data, atomically and durably. */
static int write_atomic(const fcc_t *c, const char *name, const char *data, size_t n, mode_t mode)
{
	char path[PATH_MAX];
	int rc = path_of(c, name, path, sizeof path);
	return rc < 0 ? rc : fs_write_atomic(path, data, n, mode);
}

/* Reads DIR/name into a NUL-terminated malloc'd buffer. 0 and *out NULL
 * when the file does not exist. */
static int read_small(const fcc_t *c, const char *name, char **out)
{
	char path[PATH_MAX];
	*out = NULL;
	int rc = path_of(c, name, path, sizeof path);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	char *buf = malloc(FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > FILE_MAX) {
			rc = -FC_ETOOBIG;
			break;
		}
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s)
		return -FC_EMALFORMED;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -FC_EMALFORMED;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -FC_EMALFORMED;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int copy_value(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return -FC_EMALFORMED;
	memcpy(dst, v, n + 1);
	return 0;
}

/* Applies one "key=value" line of the identity file. */
static int identity_line(fcc_t *c, char *line, unsigned *seen)
{
	char *eq = strchr(line, '=');
	if (!eq)
		return -FC_EMALFORMED;
	*eq = 0;
	const char *k = line, *v = eq + 1;
	uint64_t u = 0;
	int rc = 0;
	if (strcmp(k, "version") == 0) {
		rc = parse_u64(v, 255, &u);
		if (rc == 0 && u != 1)
			rc = -FC_EVERSION;
		*seen |= 1;
	} else if (strcmp(k, "server") == 0) {
		rc = copy_value(c->server, sizeof c->server, v);
		*seen |= 2;
	} else if (strcmp(k, "account") == 0) {
		rc = parse_u64(v, INT64_MAX, &c->account);
		*seen |= 4;
	} else if (strcmp(k, "device") == 0) {
		rc = parse_u64(v, UINT32_MAX, &u);
		c->device = (uint32_t)u;
		*seen |= 8;
	} else if (strcmp(k, "auth_key") == 0) {
		size_t bin = 0;
		if (strlen(v) != 128 ||
		    sodium_hex2bin(c->auth_sk, sizeof c->auth_sk, v, 128, NULL, &bin, NULL) != 0 ||
		    bin != sizeof c->auth_sk)
			rc = -FC_EMALFORMED;
		*seen |= 16;
	} else if (strcmp(k, "insecure") == 0) {
		rc = parse_u64(v, 1, &u);
		c->id_insecure = (int)u;
	} else if (strcmp(k, "ca_file") == 0) {
		rc = copy_value(c->id_ca, sizeof c->id_ca, v);
	} else if (strcmp(k, "username") == 0) {
		rc = copy_value(c->username, sizeof c->username, v);
	}
	/* Unknown keys are ignored: a newer client may add some. */
	return rc;
}

int fcc_identity_load(fcc_t *c)
{
	char *buf;
	int rc = read_small(c, IDENTITY_FILE, &buf);
	if (rc < 0 || !buf)
		return rc;
	unsigned seen = 0;
	size_t total = strlen(buf);
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line && rc == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[n - 1] = 0;
		if (line[0] == '#' || line[0] == 0)
			continue;
		rc = identity_line(c, line, &seen);
	}
	sodium_memzero(buf, total);
	free(buf);
	if (rc == 0 && (seen != 31 || c->account == 0 || c->device == 0))
		rc = -FC_EMALFORMED;
	if (rc < 0) {
		sodium_memzero(c->auth_sk, sizeof c->auth_sk);
		return rc;
	}
	/* The secret key ends with its public key; recompute rather than trust. */
	crypto_sign_ed25519_sk_to_pk(c->auth_pk, c->auth_sk);
	uint8_t seed[32], pk[32], sk[64];
	crypto_sign_ed25519_sk_to_seed(seed, c->auth_sk);
	crypto_sign_seed_keypair(pk, sk, seed);
	int same = sodium_memcmp(sk, c->auth_sk, sizeof sk) == 0;
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(sk, sizeof sk);
	if (!same)
		return -FC_EMALFORMED;
	c->has_id = 1;
	return 1;
}

int fcc_identity_save(fcc_t *c)
{
	char hex[129];
	char *buf = malloc(FILE_MAX);
	if (!buf)
		return -ENOMEM;
	sodium_bin2hex(hex, sizeof hex, c->auth_sk, sizeof c->auth_sk);
	int n = snprintf(buf, FILE_MAX,
			 "# fourc device identity. Keep it secret: auth_key lets anyone act as\n"
			 "# this device. Format: docs/client.md.\n"
			 "version=1\nserver=%s\naccount=%llu\ndevice=%u\nauth_key=%s\n"
			 "insecure=%d\nca_file=%s\nusername=%s\n",
			 c->server, (unsigned long long)c->account, c->device, hex,
			 c->id_insecure ? 1 : 0, c->id_ca, c->username);
	sodium_memzero(hex, sizeof hex);
	int rc = n < 0 || n >= FILE_MAX ? -ENAMETOOLONG :
					  write_atomic(c, IDENTITY_FILE, buf, (size_t)n, 0600);
	sodium_memzero(buf, FILE_MAX);
	free(buf);
	return rc;
}

int fcc_cursor_load(fcc_t *c)
{
	char *buf;
	int rc = read_small(c, CURSOR_FILE, &buf);
	if (rc < 0 || !buf)
		return rc;
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	uint64_t v = 0;
	rc = parse_u64(buf, INT64_MAX, &v);
	free(buf);
	if (rc < 0)
		return rc;
	c->cursor = c->saved_cursor = v;
	return 0;
}

int fcc_cursor_save(fcc_t *c)
{
	if (c->cursor == c->saved_cursor)
		return 0;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)c->cursor);
	int rc = write_atomic(c, CURSOR_FILE, buf, (size_t)n, 0600);
	if (rc == 0)
		c->saved_cursor = c->cursor;
	return rc;
}
