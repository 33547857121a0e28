/*
 * proc: the benchmark harness's view of processes. Starts server processes
 * (pinned to a CPU, output to a log file, killed if the harness dies), stops
 * them, reads what /proc says about their memory and CPU time, and offers the
 * small utilities every scenario needs: a monotonic clock, free loopback
 * ports, an HTTP status probe and the file-system type of a directory.
 *
 * Everything here is for the harness's single thread. Functions that can
 * fail return 0 (or a non-negative value) on success and a negative errno
 * value otherwise.
 */
#ifndef FC_BENCH_PROC_H
#define FC_BENCH_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Memory figures of one process, in KiB, as the kernel reports them. */
typedef struct proc_mem {
	long rss_kib;           /* VmRSS from /proc/PID/status */
	long anon_kib;          /* RssAnon from /proc/PID/status */
	long private_dirty_kib; /* Private_Dirty from /proc/PID/smaps_rollup */
	long threads;           /* Threads from /proc/PID/status */
} proc_mem_t;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t proc_now_ns(void);
void proc_sleep_ms(unsigned ms);

/* Online CPUs of this machine (at least 1). */
int proc_ncpus(void);
/* Pins the calling process to one CPU; a negative cpu does nothing. */
int proc_pin_self(int cpu);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
 * limit (children inherit it). */
long proc_nofile_raise(void);

/*
 * Starts argv[0] (a path) with argv. The child is pinned to `cpu` (unless
 * negative), reads /dev/null, writes stderr (and stdout unless stdout_fd is
 * non-NULL) to log_path (appending), and gets SIGKILL if the harness dies.
 * With stdout_fd non-NULL the child's stdout is a pipe whose read end is
 * returned there (the caller closes it). Returns the pid or a negative errno.
 */
pid_t proc_spawn(char *const argv[], int cpu, const char *log_path, int *stdout_fd);

/* 1 while pid (a child of ours) runs; 0 once it exited (*status filled when
 * non-NULL). Reaps the child. */
int proc_running(pid_t pid, int *status);

/*
 * SIGTERM, then waits up to grace_ms for the exit, then SIGKILL. Returns the
 * wait status (see waitpid) in *status when non-NULL; returns 0 if the
 * process exited by itself within the grace period, 1 if it had to be
 * killed, negative errno on failure.
 */
int proc_stop(pid_t pid, unsigned grace_ms, int *status);

int proc_mem_read(pid_t pid, proc_mem_t *m);
/* utime + stime of all threads, in clock ticks (sysconf(_SC_CLK_TCK)). */
int proc_cpu_ticks(pid_t pid, uint64_t *ticks);

/*
 * Waits until pid is idle: its CPU time grew by at most one clock tick and
 * its RSS did not change across one sample interval (250 ms), for two
 * intervals in a row. Gives up after max_ms (the caller reports the reading
 * anyway; the bound only keeps the run finite). Returns 1 if idle was seen,
 * 0 on giving up, negative errno if pid vanished.
 */
int proc_wait_idle(pid_t pid, unsigned max_ms);

/* A loopback TCP port that was free a moment ago (bound to port 0, read
 * back, closed). Returns the port or a negative errno. */
int proc_free_port(void);

/* GET path on 127.0.0.1:port with a timeout; returns the HTTP status code
 * or a negative errno. */
int proc_http_status(int port, const char *path, unsigned timeout_ms);

/* Reads one line (without the newline) from fd within timeout_ms. Returns
 * its length or a negative errno (-ETIMEDOUT, -EPIPE at end of file). */
int proc_read_line(int fd, char *buf, size_t cap, unsigned timeout_ms);

/* "ext4", "tmpfs", "xfs", "btrfs", "overlay" or "other" for the file system
 * holding path. Never NULL. */
const char *proc_fs_type(const char *path);

#endif
