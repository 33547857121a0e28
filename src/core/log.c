#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int g_level = LOG_INFO;
static int g_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(int level, int fd)
{
	g_level = level;
	g_fd = fd;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

int log_enabled(int level)
{
	return level >= g_level;
}

void log_write(int level, const char *event, const char *fmt, ...)
{
	if (level < g_level)
		return;
	char line[1024];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s event=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level], event);
	if (n < 0)
		return;
	if (fmt && fmt[0] && (size_t)n < sizeof line - 2) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n >= sizeof line - 1)
		n = (int)sizeof line - 2; /* truncated: keep the line whole */
	line[n++] = '\n';
	ssize_t w = write(g_fd, line, (size_t)n);
	(void)w;
}
