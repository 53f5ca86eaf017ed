// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Log sinks: stderr in the foreground, syslog(3) when daemonised, the ring
 * of recent lines behind .dsfs/log, and the -o log= file. One lock orders
 * a line into every sink at once, so concurrent threads never interleave
 * them and the ring and the file hold the same lines in the same order.
 * Nothing here calls dsfs_log: a sink's own trouble goes to stderr/syslog.
 */
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/locks.h"

static bool to_syslog;
static enum dsfs_log_level max_level = DSFS_LOG_INFO;
static __thread const char *member;

/* lock guards everything below */
static struct dsfs_mutex lock = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_LOG);

/* The ring: lines oldest first, each malloc'd with its newline. */
static struct {
	char *line[DSFS_LOG_RING_LINES];
	size_t len[DSFS_LOG_RING_LINES];
	size_t first, n, bytes;
	uint64_t dropped; /* bytes of lines dropped from the front since the start */
} ring;

/* The -o log= file. */
static struct {
	int fd; /* -1: none */
	char *path;
	size_t max, size;
} file = { .fd = -1 };

/* Lines shown lately, to count word-for-word repeats instead of showing them. */
#define SEEN_SLOTS 64
static struct seen {
	uint64_t hash;
	double shown;     /* monotonic seconds; 0: free slot */
	unsigned repeats; /* not shown since */
} seen[SEEN_SLOTS];

void dsfs_log_setup(bool use_syslog, enum dsfs_log_level level)
{
	to_syslog = use_syslog;
	max_level = level;
	if (use_syslog)
		openlog("dsfs", LOG_PID, LOG_DAEMON);
}

void dsfs_log_set_member(const char *name)
{
	member = name;
}

bool dsfs_log_enabled(enum dsfs_log_level level)
{
	return level <= max_level;
}

/* A sink's own failure: never through the ring or the file, which are what failed or would recurse. */
static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to_syslog)
		syslog(LOG_WARNING, "%s", line);
	else
		fprintf(stderr, "dsfs: warning: %s\n", line);
}

static int open_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	/* O_NONBLOCK: a FIFO at path must not hang the mount; it is refused below like any non-file */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, O_APPEND) != 0) {
		int e = fd < 0 ? errno : EINVAL;

		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "-o log=%s: cannot append to it: %s", path,
			 e == EINVAL ? "not a regular file" : strerror(e));
		return -e;
	}
	file.fd = fd;
	file.size = (size_t)st.st_size;
	return 0;
}

int dsfs_log_to_file(const char *path, size_t max_bytes, char *err, size_t errlen)
{
	char *copy;
	int ret;

	if (path[0] != '/') {
		snprintf(err, errlen, "-o log=%s: give an absolute path", path);
		return -EINVAL;
	}
	if (!(copy = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = open_file(path, err, errlen);
	if (ret) {
		free(copy);
		return ret;
	}
	free(file.path);
	file.path = copy;
	file.max = max_bytes;
	return 0;
}

/* The file would pass its bound with n more bytes: it becomes path.1 and a new one starts. lock held. */
static void rotate(size_t n)
{
	char old[4200], err[600];

	if (file.size == 0 || file.size + n <= file.max)
		return;
	snprintf(old, sizeof(old), "%s.1", file.path);
	if (rename(file.path, old) != 0) {
		/* the bound holds all the same: what cannot be kept aside is dropped */
		complain("-o log=%s: cannot rename it to %s (%s): emptied instead", file.path, old, strerror(errno));
		if (ftruncate(file.fd, 0) == 0)
			file.size = 0;
		return;
	}
	close(file.fd);
	file.fd = -1;
	if (open_file(file.path, err, sizeof(err)) != 0)
		complain("%s; the log file is no longer written", err);
}

static void write_file(const char *line, size_t n)
{
	const char *p = line;
	size_t left = n;

	if (file.fd < 0)
		return;
	rotate(n);
	if (file.fd < 0)
		return;
	while (left) {
		ssize_t w = write(file.fd, p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* a full disk loses lines, never the daemon */
		p += w;
		left -= (size_t)w;
	}
	file.size += n - left;
}

static void ring_drop_oldest(void)
{
	size_t i = ring.first;

	ring.bytes -= ring.len[i];
	ring.dropped += ring.len[i];
	free(ring.line[i]);
	ring.line[i] = NULL;
	ring.first = (ring.first + 1) % DSFS_LOG_RING_LINES;
	ring.n--;
}

static void ring_put(const char *line, size_t n)
{
	char *copy = malloc(n);
	size_t i;

	if (!copy)
		return;
	memcpy(copy, line, n);
	while (ring.n && (ring.n == DSFS_LOG_RING_LINES || ring.bytes + n > DSFS_LOG_RING_BYTES))
		ring_drop_oldest();
	i = (ring.first + ring.n) % DSFS_LOG_RING_LINES;
	ring.line[i] = copy;
	ring.len[i] = n;
	ring.n++;
	ring.bytes += n;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/*
 * Whether a line is shown, and how many repeats it stood for since it was
 * last shown (*repeats). An error or warning seen within the window is
 * counted instead. lock held.
 */
static bool shown_now(enum dsfs_log_level level, const char *text, unsigned *repeats)
{
	uint64_t h = fnv1a(text) ^ (uint64_t)level;
	double now = dsfs_clock_now();
	struct seen *oldest = &seen[0];

	*repeats = 0;
	if (level > DSFS_LOG_WARN)
		return true;
	for (size_t i = 0; i < SEEN_SLOTS; i++) {
		struct seen *s = &seen[i];

		if (s->shown && s->hash == h) {
			if (now - s->shown < DSFS_LOG_REPEAT_WINDOW) {
				s->repeats++;
				return false;
			}
			*repeats = s->repeats;
			s->repeats = 0;
			s->shown = now;
			return true;
		}
		if (s->shown < oldest->shown)
			oldest = s;
	}
	*oldest = (struct seen){ .hash = h, .shown = now };
	return true;
}

void dsfs_log(enum dsfs_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char text[2048], line[2300], more[96] = "", when[40];
	unsigned repeats;
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n = 0;

	if (level > max_level)
		return;
	if (member)
		n = snprintf(text, sizeof(text), "%s: ", member);
	va_start(ap, fmt);
	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	dsfs_lock(&lock);
	if (!shown_now(level, text, &repeats)) {
		dsfs_unlock(&lock);
		return;
	}
	if (repeats)
		snprintf(more, sizeof(more), " (and %u times more since it was last shown)", repeats);
	if (to_syslog)
		syslog(prio[level], "%s%s", text, more);
	else
		fprintf(stderr, "dsfs: %s: %s%s\n", tag[level], text, more);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s: %s%s\n", when, ts.tv_nsec / 1000000, tag[level], text, more);
	if (n >= (int)sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ring_put(line, (size_t)n);
	write_file(line, (size_t)n);
	dsfs_unlock(&lock);
}

size_t dsfs_log_read(uint64_t pos, char *buf, size_t size, uint64_t *at)
{
	uint64_t p;
	size_t o = 0;

	dsfs_lock(&lock);
	if (pos < ring.dropped)
		pos = ring.dropped; /* those lines are gone: from the oldest kept */
	*at = pos;
	p = ring.dropped;
	for (size_t k = 0; k < ring.n && o < size; k++) {
		size_t i = (ring.first + k) % DSFS_LOG_RING_LINES, skip, n;

		if (p + ring.len[i] > pos) {
			skip = pos > p ? (size_t)(pos - p) : 0;
			n = ring.len[i] - skip < size - o ? ring.len[i] - skip : size - o;
			memcpy(buf + o, ring.line[i] + skip, n);
			o += n;
		}
		p += ring.len[i];
	}
	dsfs_unlock(&lock);
	return o;
}

uint64_t dsfs_log_end(void)
{
	uint64_t end;

	dsfs_lock(&lock);
	end = ring.dropped + ring.bytes;
	dsfs_unlock(&lock);
	return end;
}

void dsfs_log_close(void)
{
	dsfs_lock(&lock);
	while (ring.n)
		ring_drop_oldest();
	if (file.fd >= 0)
		close(file.fd);
	file.fd = -1;
	free(file.path);
	file.path = NULL;
	dsfs_unlock(&lock);
}
