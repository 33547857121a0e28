/*
 * log: logfmt lines on stderr (or a chosen stream).
 *
 * Each line is `ts=<RFC3339 ms> level=<lvl> event=<event> <fields>`, written
 * with one write(2) so lines from several threads never interleave. Fields are
 * formatted by the caller as key=value pairs. Never log message bodies, keys,
 * signatures, invite codes or link codes: log ids, sizes and outcomes only.
 * Safe to call from any thread after log_init().
 */
#ifndef FC_CORE_LOG_H
#define FC_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the minimum level and output fd (2 for stderr). */
void log_init(int level, int fd);
/* Parses "debug", "info", "warn", "error"; returns the level or -1. */
int log_level_parse(const char *s);
int log_enabled(int level);

void log_write(int level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOGD(ev, ...)                                          \
	do {                                                   \
		if (log_enabled(LOG_DEBUG))                    \
			log_write(LOG_DEBUG, ev, __VA_ARGS__); \
	} while (0)
#define LOGI(ev, ...) log_write(LOG_INFO, ev, __VA_ARGS__)
#define LOGW(ev, ...) log_write(LOG_WARN, ev, __VA_ARGS__)
#define LOGE(ev, ...) log_write(LOG_ERROR, ev, __VA_ARGS__)

#endif
