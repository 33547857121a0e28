/*
 * LD_PRELOAD shim for tests: makes socket writes misbehave the way a loaded
 * kernel may. Of every three write()/writev() calls on a socket, the first
 * fails with EAGAIN, the second writes only half of its first buffer, the
 * third goes through. Other file descriptors are untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned long calls;

static int is_socket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	static ssize_t (*real)(int, const struct iovec *, int);
	if (!real)
		real = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
	if (n > 0 && is_socket(fd)) {
		unsigned long c = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
		if (c % 3 == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (c % 3 == 1 && iov[0].iov_len > 1) {
			struct iovec half = {iov[0].iov_base, iov[0].iov_len / 2};
			return real(fd, &half, 1);
		}
	}
	return real(fd, iov, n);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (len > 0 && is_socket(fd)) {
		unsigned long c = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
		if (c % 3 == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (c % 3 == 1 && len > 1)
			return real(fd, buf, len / 2);
	}
	return real(fd, buf, len);
}
