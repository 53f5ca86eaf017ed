// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `dsfs wait TASK...`: waits for many tasks of a mounted dsfs at once, as a
 * user would by hand, through the mount's files: each task's `wait` file is
 * read in a thread of its own (the read blocks until the task ends; the
 * mount bounds it by wait_timeout), and the main thread draws a progress
 * bar per task on a terminal (from its `state` and `progress` files) or
 * prints one line per task as it ends. A failed task's reason comes from
 * its `error` file, else the wait file's text, else its log's last line.
 * Nothing here talks to an API: it needs only the mount.
 */
#include "mount/waitcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/grow.h"
#include "util/locks.h"

/* Threads reading wait files at once: well within the mount's 256 waiting places per user. */
#define WAIT_THREADS 64
/* What a file read here may hold; a task's files are a few lines. */
#define READ_MAX (1024 * 1024)
/* Width of a progress bar, in characters. */
#define BAR_WIDTH 30

struct task {
	char *dir;              /* the task's directory, its real path */
	const char *label;      /* how lines name it: its id, or more where two ids are alike */
	enum dsfs_wait_end end; /* DSFS_WAIT_UNKNOWN while it runs; guarded by waitcmd.lock */
	char *reason;           /* why it did not succeed (malloc'd), or NULL */
	bool reported;          /* its end was printed (main thread only) */
	char state[32];         /* the bar's: the task's state and progress (main thread only) */
	int percent;
};

static struct {
	struct dsfs_mutex lock;
	pthread_cond_t ended;
	struct task *tasks;
	size_t n, next; /* next: the first task no thread took yet */
} waitcmd = { DSFS_MUTEX_INITIALIZER(DSFS_LOCK_WAITCMD), PTHREAD_COND_INITIALIZER, NULL, 0, 0 };

static const struct {
	const char *word;
	enum dsfs_wait_end end;
} words[] = {
	{ "SUCCEEDED", DSFS_WAIT_SUCCEEDED }, { "SUCCESS", DSFS_WAIT_SUCCEEDED }, { "DONE", DSFS_WAIT_SUCCEEDED },
	{ "FAILED", DSFS_WAIT_FAILED },       { "ERROR", DSFS_WAIT_FAILED },      { "CANCELLED", DSFS_WAIT_CANCELLED },
	{ "CANCELED", DSFS_WAIT_CANCELLED },  { "ABORTED", DSFS_WAIT_CANCELLED }, { "TIMEDOUT", DSFS_WAIT_TIMEDOUT },
	{ "TIMED_OUT", DSFS_WAIT_TIMEDOUT },
};

enum dsfs_wait_end dsfs_waitcmd_word(const char *line, const char **rest)
{
	size_t n;

	line += strspn(line, " \t");
	n = strcspn(line, " \t:\n");
	if (rest) {
		*rest = line + n;
		*rest += strspn(*rest, " \t:");
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && !strncasecmp(line, words[i].word, n))
			return words[i].end;
	return DSFS_WAIT_UNKNOWN;
}

const char *dsfs_waitcmd_name(enum dsfs_wait_end end)
{
	static const char *const names[] = { "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMEDOUT" };

	return names[end];
}

/*
 * The whole of file path in *text (malloc'd, NUL-terminated, possibly
 * empty; set even when a read fails part way). 0 or an errno.
 */
static int read_all(const char *path, char **text)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd, err = 0;

	*text = NULL;
	if (!buf)
		return ENOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		free(buf);
		return errno;
	}
	for (;;) {
		ssize_t got;

		if (len + 1 == cap) {
			char *more = dsfs_grow(buf, &cap, cap + 1, 1, 0, READ_MAX);

			if (!more)
				break; /* a task's file is a few lines: keep what came */
			buf = more;
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			err = got < 0 ? errno : 0;
			break;
		}
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	*text = buf;
	return err;
}

/* s without its trailing blanks and newlines (in place). */
static char *trim(char *s)
{
	size_t n = strlen(s);

	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	return s + strspn(s, " \t\r\n");
}

/* The last line of text that is not blank (in place: text is cut after it). */
static char *last_line(char *text)
{
	char *end, *nl;

	text = trim(text);
	end = text + strlen(text);
	for (nl = end; nl > text && nl[-1] != '\n'; nl--)
		;
	return nl;
}

/* Reads file name of task t into *text; NULL when it is absent, empty or unreadable. */
static char *task_file(const struct task *t, const char *name)
{
	char path[PATH_MAX], *text = NULL;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", t->dir, name) >= sizeof(path) || read_all(path, &text)) {
		free(text);
		return NULL;
	}
	if (!*trim(text)) {
		free(text);
		return NULL;
	}
	return text;
}

/* Why t did not succeed: its error file, else what the wait file said after its word, else its log's last line. */
static char *reason_of(const struct task *t, const char *said)
{
	char *text, *why = NULL;

	if ((text = task_file(t, "error")))
		why = strdup(trim(text));
	else if (said && *said)
		why = strdup(said);
	else if ((text = task_file(t, "log")))
		why = strdup(last_line(text));
	free(text);
	return why;
}

/* Waits for task t by reading its wait file: how it ended, and why when it did not succeed. */
static void wait_task(struct task *t)
{
	char path[PATH_MAX], *text = NULL, *state;
	const char *said = NULL;
	enum dsfs_wait_end end;
	int err;

	snprintf(path, sizeof(path), "%s/wait", t->dir);
	/* EAGAIN: the mount's waiting places are all taken (by other waiters): one comes free as a task ends */
	while ((err = read_all(path, &text)) == EAGAIN || err == EINTR) {
		free(text);
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
	}
	if (err == 0) {
		/* the read succeeded: the task did, unless the line says otherwise */
		end = dsfs_waitcmd_word(last_line(text), &said);
		if (end == DSFS_WAIT_UNKNOWN)
			end = DSFS_WAIT_SUCCEEDED;
	} else if (err == ETIMEDOUT) {
		end = DSFS_WAIT_TIMEDOUT;
		said = "still running after the mount's wait_timeout";
	} else if (err == EIO) {
		/* the task ended otherwise than well: its state says how, where it names an end */
		end = DSFS_WAIT_FAILED;
		if ((state = task_file(t, "state"))) {
			enum dsfs_wait_end e = dsfs_waitcmd_word(state, NULL);

			if (e != DSFS_WAIT_UNKNOWN && e != DSFS_WAIT_SUCCEEDED)
				end = e;
			free(state);
		}
		if (text && *trim(text)) { /* a wait file that says how it failed: "FAILED: why" */
			const char *line = last_line(text);

			if (dsfs_waitcmd_word(line, &said) == DSFS_WAIT_UNKNOWN)
				said = line;
		}
	} else {
		end = DSFS_WAIT_FAILED;
		said = err == ENOENT ? "the task is gone" : strerror(err);
	}
	dsfs_lock(&waitcmd.lock);
	t->reason = end == DSFS_WAIT_SUCCEEDED ? NULL : reason_of(t, said);
	t->end = end;
	pthread_cond_broadcast(&waitcmd.ended);
	dsfs_unlock(&waitcmd.lock);
	free(text);
}

static void *waiter(void *arg)
{
	for (;;) {
		struct task *t = NULL;

		dsfs_lock(&waitcmd.lock);
		if (waitcmd.next < waitcmd.n)
			t = &waitcmd.tasks[waitcmd.next++];
		dsfs_unlock(&waitcmd.lock);
		if (!t)
			return NULL;
		wait_task(t);
	}
}

/* ---- what the user sees ----------------------------------------------------------- */

static void help(void)
{
	printf("usage: dsfs wait [--timeout=SECONDS] TASK...\n"
	       "\n"
	       "Waits for tasks of a dsfs mount, all at once, and says how each ended.\n"
	       "A TASK is a task's directory (MOUNT/tasks/<id>, MOUNT/tasks/latest) or its\n"
	       "wait file; `dsfs wait MOUNT/tasks/*` waits for every task the server lists.\n"
	       "\n"
	       "On a terminal, a progress bar per task; otherwise one line per task as it\n"
	       "ends: \"<id> SUCCEEDED\", or \"<id> FAILED: <reason>\" (CANCELLED, TIMEDOUT).\n"
	       "\n"
	       "    --timeout=SECONDS  stop waiting after this long: the tasks still running\n"
	       "                       are TIMEDOUT (default: none; each task's own wait is\n"
	       "                       bounded by the mount's -o wait_timeout)\n"
	       "    -h, --help         this help\n"
	       "\n"
	       "Exit status: 0 when every task succeeded, 1 when one failed, was cancelled\n"
	       "or timed out, 2 when an argument is wrong (a path that is not a task).\n"
	       "See dsfs(1), WAITING FOR TASKS.\n");
}

/* The end line of t: "<label> SUCCEEDED" or "<label> FAILED: <reason>". */
static void print_end(const struct task *t)
{
	if (t->end == DSFS_WAIT_SUCCEEDED)
		printf("%s SUCCEEDED\n", t->label);
	else
		printf("%s %s: %s\n", t->label, dsfs_waitcmd_name(t->end), t->reason ? t->reason : "no reason given");
}

/* Reads the state and progress of a running task for its bar (main thread, lock not held). */
static void sample(struct task *t)
{
	char *text;

	if ((text = task_file(t, "state"))) {
		snprintf(t->state, sizeof(t->state), "%s", trim(text));
		free(text);
	}
	if ((text = task_file(t, "progress"))) {
		char *end;
		long p = strtol(trim(text), &end, 10);

		if (end != text && p >= 0 && p <= 100)
			t->percent = (int)p;
		free(text);
	}
}

/* Draws every task's bar; after the first drawing, over the previous one. */
static void draw(size_t width, bool again)
{
	if (again)
		printf("\033[%zuA", waitcmd.n);
	for (size_t i = 0; i < waitcmd.n; i++) {
		struct task *t = &waitcmd.tasks[i];
		int pct = t->end == DSFS_WAIT_SUCCEEDED ? 100 : t->percent;
		int fill = pct * BAR_WIDTH / 100;

		printf("\r\033[K%-*s [%.*s%*s] %3d%% %s\n", (int)width, t->label, fill,
		       "##############################", BAR_WIDTH - fill, "", pct,
		       t->end                ? dsfs_waitcmd_name(t->end)
			       : t->state[0] ? t->state
					     : "waiting");
	}
	fflush(stdout);
}

/* ---- arguments ---------------------------------------------------------------------- */

/* The task directory path names (malloc'd real path), or NULL when path is no task. */
static char *task_dir(const char *path)
{
	char dir[PATH_MAX], wait[PATH_MAX + 8];
	const char *base;
	struct stat st;
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(dir))
		return NULL;
	memcpy(dir, path, n);
	dir[n] = '\0';
	base = strrchr(dir, '/');
	if (!strcmp(base ? base + 1 : dir, "wait") && stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
		if (!base)
			strcpy(dir, ".");
		else if (base == dir)
			dir[1] = '\0';
		else
			dir[base - dir] = '\0';
	}
	/* a task's directory holds a wait file (not listed, but there) */
	snprintf(wait, sizeof(wait), "%s/wait", dir);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode) || stat(wait, &st) || !S_ISREG(st.st_mode))
		return NULL;
	return realpath(dir, NULL);
}

/* Names each task by its id, or by its last two path components where two ids are alike (estates). */
static void label_tasks(void)
{
	for (size_t i = 0; i < waitcmd.n; i++) {
		struct task *t = &waitcmd.tasks[i];
		const char *id = strrchr(t->dir, '/') + 1, *up = id - 1;
		bool twin = false;

		for (size_t j = 0; j < waitcmd.n && !twin; j++)
			twin = j != i && !strcmp(strrchr(waitcmd.tasks[j].dir, '/') + 1, id);
		if (twin)
			while (up > t->dir && up[-1] != '/')
				up--;
		t->label = twin && up > t->dir ? up : id;
	}
}

/* True when path is a tasks/latest link whose task is gone (the server no longer lists it). */
static bool dangling_latest(const char *path)
{
	const char *base = strrchr(path, '/');
	struct stat st;

	return !strcmp(base ? base + 1 : path, "latest") && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
		stat(path, &st) != 0;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "dsfs wait: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (dsfs wait --help)\n");
	return 2;
}

/* Parses argv into waitcmd.tasks and *timeout (0: none). 0, or the exit status of a usage error. */
static int parse(int argc, char *argv[], double *timeout, bool *show_help)
{
	const char *latest = NULL;
	bool options = true;
	int bad = 0;

	*timeout = 0;
	*show_help = false;
	if (!(waitcmd.tasks = calloc((size_t)argc, sizeof(*waitcmd.tasks))))
		return usage_error("%s", strerror(ENOMEM));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *dir, *end;

		if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			*show_help = true;
			return 0;
		}
		if (options && !strcmp(a, "--")) {
			options = false;
			continue;
		}
		if (options && !strncmp(a, "--timeout=", 10)) {
			errno = 0;
			*timeout = strtod(a + 10, &end);
			if (errno || end == a + 10 || *end || !(*timeout > 0) || !isfinite(*timeout))
				return usage_error("--timeout takes a number of seconds above 0, not '%s'", a + 10);
			continue;
		}
		if (options && a[0] == '-' && a[1])
			return usage_error("unknown option %s", a);
		if (!(dir = task_dir(a)) && dangling_latest(a)) {
			/* tasks/latest naming a task the server no longer lists: in a glob, nothing to wait for */
			latest = a;
			continue;
		}
		if (!dir) {
			fprintf(stderr,
				"dsfs wait: %s is not a task (a tasks/<id> directory of a dsfs mount, "
				"or its wait file)\n",
				a);
			bad = 2;
			continue;
		}
		for (size_t j = 0; j < waitcmd.n && dir; j++)
			if (!strcmp(waitcmd.tasks[j].dir, dir)) { /* tasks/latest and tasks/<id>: one task */
				free(dir);
				dir = NULL;
			}
		if (dir)
			waitcmd.tasks[waitcmd.n++].dir = dir;
	}
	if (bad)
		return bad;
	if (!waitcmd.n && latest)
		return usage_error("%s names a task that is gone", latest);
	if (!waitcmd.n)
		return usage_error("%s", "no task given");
	return 0;
}

int dsfs_waitcmd_main(int argc, char *argv[])
{
	bool tty = isatty(STDOUT_FILENO), show_help, drawn = false;
	double timeout, deadline, next_draw = 0;
	size_t width = 0, left, nthreads;
	pthread_attr_t attr;
	int ret = parse(argc, argv, &timeout, &show_help);

	if (show_help) {
		help();
		return 0;
	}
	if (ret)
		return ret;
	label_tasks();
	for (size_t i = 0; i < waitcmd.n; i++)
		if (strlen(waitcmd.tasks[i].label) > width)
			width = strlen(waitcmd.tasks[i].label);
	deadline = timeout > 0 ? dsfs_clock_now() + timeout : INFINITY;
	nthreads = waitcmd.n < WAIT_THREADS ? waitcmd.n : WAIT_THREADS;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (size_t i = 0; i < nthreads; i++) {
		pthread_t th;
		int err = pthread_create(&th, &attr, waiter, NULL);

		if (err && i == 0) { /* later ones failing: fewer threads take the tasks */
			fprintf(stderr, "dsfs wait: cannot start a thread: %s\n", strerror(err));
			return 1;
		}
	}
	pthread_attr_destroy(&attr);
	ret = 0;
	left = waitcmd.n;
	dsfs_lock(&waitcmd.lock);
	while (left) {
		double t = dsfs_clock_now(), until = deadline;
		struct timespec ts;

		for (size_t i = 0; i < waitcmd.n; i++) {
			struct task *k = &waitcmd.tasks[i];

			if (k->reported || (!k->end && t < deadline))
				continue;
			if (!k->end) { /* --timeout: what still runs has timed out for this command */
				char why[96];

				snprintf(why, sizeof(why), "still running after %g s (--timeout)", timeout);
				k->end = DSFS_WAIT_TIMEDOUT;
				k->reason = strdup(why);
			}
			k->reported = true;
			left--;
			if (k->end != DSFS_WAIT_SUCCEEDED)
				ret = 1;
			if (!tty)
				print_end(k);
		}
		if (!tty) {
			fflush(stdout);
		} else if (t >= next_draw || !left) {
			/* the files are read without the lock: a read waits for the server */
			dsfs_unlock(&waitcmd.lock);
			for (size_t i = 0; i < waitcmd.n && left; i++)
				if (!waitcmd.tasks[i].reported)
					sample(&waitcmd.tasks[i]);
			dsfs_lock(&waitcmd.lock);
			draw(width, drawn);
			drawn = true;
			next_draw = dsfs_clock_now() + 1;
			if (!left)
				break;
		}
		if (!left)
			break;
		if (tty && next_draw < until)
			until = next_draw;
		if (isinf(until)) {
			dsfs_cond_wait(&waitcmd.ended, &waitcmd.lock);
			continue;
		}
		/* the condition variable's clock is CLOCK_REALTIME: wait the same length on it */
		clock_gettime(CLOCK_REALTIME, &ts);
		until -= dsfs_clock_now();
		if (until > 0) {
			ts.tv_sec += (time_t)until;
			ts.tv_nsec += (long)((until - floor(until)) * 1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			dsfs_cond_timedwait(&waitcmd.ended, &waitcmd.lock, &ts);
		}
	}
	if (tty) /* under the bars, why each task that did not succeed did not */
		for (size_t i = 0; i < waitcmd.n; i++)
			if (waitcmd.tasks[i].end != DSFS_WAIT_SUCCEEDED)
				print_end(&waitcmd.tasks[i]);
	dsfs_unlock(&waitcmd.lock);
	fflush(stdout);
	/* threads still reading a wait file (after --timeout) end with the process: their reads stop at once */
	return ret;
}
