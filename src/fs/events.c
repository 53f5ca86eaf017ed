// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The event feed of MOUNT/events/log: asks the dialect's event list when a
 * reader wants more, shows each event once (an object seen again only when
 * its state changed), oldest first, and keeps the text it has shown so
 * that every reader's offsets stay valid.
 */
#include "fs/events.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/errmap.h"
#include "net/http.h"
#include "util/clock.h"
#include "util/locks.h"
#include "util/log.h"
#include "format/names.h"
#include "format/render.h"

/* Ids shown are remembered as 64-bit hashes; past this many the set starts again from the last answer. */
#define SEEN_MAX (1u << 18)
#define SINCE "{since}"
#define OFFSET "{offset}"

struct dsfs_events {
	struct dsfs_session *session;
	const struct dsfs_events_desc *d;
	double interval;
	struct dsfs_mutex lock;
	pthread_cond_t asked;   /* broadcast when a question ends */
	struct dsfs_blob *text; /* what the feed holds */
	unsigned readers;
	bool asking;
	double asked_at; /* monotonic time of the last question (0: none yet) */
	char *newest;    /* the newest time seen, as text, or NULL */
	size_t ties;     /* events at the newest time taken, from its first on (a since question's) */
	uint64_t *seen;  /* open addressing, 0 = empty */
	size_t nseen, cap;
};

struct dsfs_events *dsfs_events_new(struct dsfs_session *session, const struct dsfs_events_desc *desc, double interval)
{
	struct dsfs_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	ev->session = session;
	ev->d = desc;
	ev->interval = interval < 1.0 ? 1.0 : interval;
	ev->text = dsfs_blob_new("", 0);
	if (!ev->text) {
		free(ev);
		return NULL;
	}
	dsfs_mutex_init(&ev->lock, DSFS_LOCK_EVENTS);
	/* an estate's feed waits for a question with a deadline on the monotonic clock */
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ev->asked, &ca);
		pthread_condattr_destroy(&ca);
	}
	return ev;
}

void dsfs_events_free(struct dsfs_events *ev)
{
	if (!ev)
		return;
	dsfs_lock(&ev->lock);
	while (ev->asking) /* a question asked in the background: it uses ev to its end */
		dsfs_cond_wait(&ev->asked, &ev->lock);
	dsfs_unlock(&ev->lock);
	dsfs_blob_unref(ev->text);
	free(ev->newest);
	free(ev->seen);
	pthread_cond_destroy(&ev->asked);
	dsfs_mutex_destroy(&ev->lock);
	free(ev);
}

void dsfs_events_open(struct dsfs_events *ev)
{
	dsfs_lock(&ev->lock);
	ev->readers++;
	dsfs_unlock(&ev->lock);
}

void dsfs_events_close(struct dsfs_events *ev)
{
	dsfs_lock(&ev->lock);
	if (ev->readers)
		ev->readers--;
	dsfs_unlock(&ev->lock);
}

/* ---- what has been shown ------------------------------------------------------- */

static uint64_t key_of(json_object *o, const struct dsfs_events_desc *d)
{
	json_object *id = dsfs_dialect_field(o, d->id_field);
	/* an event without an id is known by its whole text */
	const char *parts[2] = {
		id ? json_object_get_string(id) : json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		d->state_field ? json_object_get_string(dsfs_dialect_field(o, d->state_field)) : NULL
	};
	uint64_t h = 0xcbf29ce484222325ull;

	for (int i = 0; i < 2; i++) {
		for (const char *p = parts[i]; p && *p; p++) {
			h ^= (unsigned char)*p;
			h *= 0x100000001b3ull;
		}
		h ^= 0xff;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

/* Adds key; false when it was there already (or on ENOMEM: then it is shown, never lost). */
static bool seen_add(struct dsfs_events *ev, uint64_t key)
{
	size_t i;

	if (ev->nseen * 2 >= ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 1024;
		uint64_t *old = ev->seen, *t;

		if (cap > SEEN_MAX * 2) { /* forget the oldest: only the newest time's events can come again */
			cap = ev->cap;
			memset(ev->seen, 0, cap * sizeof(*ev->seen));
			ev->nseen = 0;
		} else if ((t = calloc(cap, sizeof(*t)))) {
			ev->seen = t;
			for (size_t j = 0; j < ev->cap; j++) {
				if (!old[j])
					continue;
				for (i = old[j] & (cap - 1); t[i]; i = (i + 1) & (cap - 1))
					;
				t[i] = old[j];
			}
			free(old);
			ev->cap = cap;
		} else if (!ev->cap) {
			return true;
		}
	}
	for (i = key & (ev->cap - 1); ev->seen[i]; i = (i + 1) & (ev->cap - 1))
		if (ev->seen[i] == key)
			return false;
	ev->seen[i] = key;
	ev->nseen++;
	return true;
}

/* old's text with add after it, the oldest half dropped (at a line's start) past DSFS_EVENTS_MAX; NULL on ENOMEM. */
static struct dsfs_blob *appended(const struct dsfs_blob *old, const char *add, size_t addlen)
{
	size_t keep = old->len, from = 0;
	struct dsfs_blob *b = NULL;
	char *buf;

	if (keep + addlen > DSFS_EVENTS_MAX) {
		const char *nl = memchr(old->data + keep / 2, '\n', keep - keep / 2);

		from = nl ? (size_t)(nl - old->data) + 1 : keep;
		keep -= from;
	}
	if ((buf = malloc(keep + addlen))) {
		memcpy(buf, old->data + from, keep);
		memcpy(buf + keep, add, addlen);
		b = dsfs_blob_new(buf, keep + addlen);
		free(buf);
	}
	return b;
}

/* ---- asking ----------------------------------------------------------------------- */

/* Orders two events by their time field (ctx): numbers as numbers, text as text. */
static int cmp_time(const void *a, const void *b, void *ctx)
{
	json_object *x = dsfs_dialect_field(*(json_object *const *)a, ctx);
	json_object *y = dsfs_dialect_field(*(json_object *const *)b, ctx);

	if (json_object_is_type(x, json_type_string) && json_object_is_type(y, json_type_string))
		return strcmp(json_object_get_string(x), json_object_get_string(y));
	if (x && y) {
		double p = json_object_get_double(x), q = json_object_get_double(y);

		return p < q ? -1 : p > q;
	}
	return !x - !y;
}

/*
 * The next question: the newest page first, then what came since the
 * newest time seen. A since question skips the events at that time it has
 * taken already only when they fill a page (a full page of one time would
 * otherwise be asked again forever); below that it starts at the time's
 * first event, and the ids seen keep each from showing twice. *offset: the
 * events skipped.
 */
static char *question(struct dsfs_events *ev, size_t *offset)
{
	const struct dsfs_events_desc *d = ev->d;
	char *path = NULL, *t, num[24];
	const char *p;
	size_t len, cap;

	*offset = 0;
	if (!ev->newest || !d->since_query) {
		if (asprintf(&path, "%s?%s", d->url, d->newest_query) < 0)
			return NULL;
		return path;
	}
	if (d->since_page && ev->ties >= d->since_page)
		*offset = ev->ties;
	snprintf(num, sizeof(num), "%zu", *offset);
	if (!(t = dsfs_names_url_segment(ev->newest)))
		return NULL;
	cap = strlen(d->url) + strlen(d->since_query) + 2 * (strlen(t) + sizeof(num)) + 2;
	if ((path = malloc(cap))) {
		len = (size_t)sprintf(path, "%s?", d->url);
		for (p = d->since_query; *p;) {
			const char *v = !strncmp(p, SINCE, strlen(SINCE)) ? t
				: !strncmp(p, OFFSET, strlen(OFFSET))     ? num
									  : NULL;

			if (v && len + strlen(v) < cap) {
				len += (size_t)sprintf(path + len, "%s", v);
				p += v == t ? strlen(SINCE) : strlen(OFFSET);
			} else if (len + 1 < cap) {
				path[len++] = *p++;
			} else {
				break;
			}
		}
		path[len] = '\0';
	}
	free(t);
	return path;
}

/* Asks the server for what is new and appends it. Called with the lock held; drops it meanwhile. */
static void ask(struct dsfs_events *ev)
{
	const struct dsfs_events_desc *d = ev->d;
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *arr, **items = NULL;
	bool since = ev->newest && d->since_query;
	size_t n = 0, addlen = 0, offset;
	char *path = question(ev, &offset), *add = NULL, why[1200];
	int ret;

	ev->asking = true;
	dsfs_unlock(&ev->lock);
	ret = path
		? dsfs_session_call(ev->session, &(struct dsfs_request){ .method = "GET", .path = path }, &resp, false)
		: -ENOMEM;
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		arr = o;
		if (d->list_key && !json_object_object_get_ex(o, d->list_key, &arr))
			arr = NULL;
		if (!json_object_is_type(arr, json_type_array)) {
			ret = -EIO;
			dsfs_err_record("GET", path, resp.status, "answer has no list of events");
		} else if ((n = json_object_array_length(arr)) && !(items = calloc(n, sizeof(*items)))) {
			ret = -ENOMEM;
		}
		for (size_t i = 0; ret == 0 && i < n; i++)
			items[i] = json_object_array_get_idx(arr, i);
	}
	if (ret == 0 && n)
		qsort_r(items, n, sizeof(*items), cmp_time, (void *)d->time_field);
	dsfs_lock(&ev->lock);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		const char *line;
		size_t len;
		char *grown;

		if (!json_object_is_type(items[i], json_type_object) || !seen_add(ev, key_of(items[i], d)))
			continue;
		line = json_object_to_json_string_ext(items[i],
						      JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		len = strlen(line);
		if (!(grown = realloc(add, addlen + len + 2)))
			break;
		add = grown;
		memcpy(add + addlen, line, len);
		add[addlen + len] = '\n';
		addlen += len + 1;
	}
	/* the next question asks from the newest time of this answer on; a time in the future (a server's
	 * clock or a bad event) would blind the feed, so the cursor never goes past a day from now */
	for (size_t i = n; ret == 0 && i > 0; i--) {
		json_object *t = dsfs_dialect_field(items[i - 1], d->time_field);
		time_t when;
		char *nt;

		size_t ties = 0;

		if (!t || (dsfs_render_time(t, &when) == 0 && when > time(NULL) + 86400))
			continue;
		if (!(nt = strdup(json_object_get_string(t))))
			break;
		/* how far into that time's events the next question may start: a since answer holds them
		 * from the first it did not skip; the newest page (in the other order) tells nothing */
		for (size_t k = 0; since && k < i; k++) {
			json_object *tk = dsfs_dialect_field(items[k], d->time_field);

			ties += tk && !strcmp(json_object_get_string(tk), nt);
		}
		if (since && ev->newest && !strcmp(ev->newest, nt))
			ties += offset;
		free(ev->newest);
		ev->newest = nt;
		ev->ties = since ? ties : 0;
		break;
	}
	if (addlen) {
		struct dsfs_blob *b = appended(ev->text, add, addlen);

		if (b) {
			dsfs_blob_unref(ev->text);
			ev->text = b;
		}
	}
	if (ret && dsfs_err_describe(why, sizeof(why)))
		dsfs_log(DSFS_LOG_ERR, "events/log: %s (%s)", why, strerror(-ret));
	ev->asked_at = dsfs_clock_now();
	ev->asking = false;
	pthread_cond_broadcast(&ev->asked);
	free(add);
	free(items);
	json_object_put(o);
	dsfs_response_clear(&resp);
	free(path);
}

struct dsfs_blob *dsfs_events_text(struct dsfs_events *ev, bool want)
{
	struct dsfs_blob *b;

	dsfs_lock(&ev->lock);
	if (want && ev->readers && !ev->asking && (!ev->asked_at || dsfs_clock_now() - ev->asked_at >= ev->interval))
		ask(ev);
	else if (want && ev->readers && ev->asking && !ev->asked_at)
		while (ev->asking) /* the first answer: wait for it rather than show an empty feed */
			dsfs_cond_wait(&ev->asked, &ev->lock);
	b = dsfs_blob_ref(ev->text);
	dsfs_unlock(&ev->lock);
	return b;
}

static void *ask_in_background(void *arg)
{
	struct dsfs_events *ev = arg;

	dsfs_lock(&ev->lock);
	ask(ev);
	dsfs_unlock(&ev->lock);
	return NULL;
}

/*
 * Starts a question in the background when one is due (as dsfs_events_text
 * would ask), so that an estate asks its members side by side.
 */
static void start(struct dsfs_events *ev)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	dsfs_lock(&ev->lock);
	if (!ev->readers || ev->asking || (ev->asked_at && dsfs_clock_now() - ev->asked_at < ev->interval)) {
		dsfs_unlock(&ev->lock);
		return;
	}
	ev->asking = true; /* from now: dsfs_events_free waits for it */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, ask_in_background, ev);
	pthread_attr_destroy(&attr);
	if (ret) {
		dsfs_log(DSFS_LOG_WARN, "events/log: no thread to ask in the background (%s): asking here",
			 strerror(ret));
		ask(ev);
	}
	dsfs_unlock(&ev->lock);
}

/* Waits for ev's question in flight until the monotonic time deadline at the latest. */
static void settle(struct dsfs_events *ev, double deadline)
{
	struct timespec until = { (time_t)deadline, (long)((deadline - (double)(time_t)deadline) * 1e9) };

	dsfs_lock(&ev->lock);
	while (ev->asking && dsfs_clock_now() < deadline)
		if (dsfs_cond_timedwait(&ev->asked, &ev->lock, &until) == ETIMEDOUT)
			break;
	dsfs_unlock(&ev->lock);
}

/* ---- an estate's feed ------------------------------------------------------------ */

struct merge_member {
	char *name; /* JSON-escaped, quoted */
	struct dsfs_events *ev;
	size_t taken; /* bytes of its text already merged */
};

struct dsfs_events_merge {
	struct dsfs_mutex lock;
	struct merge_member *m;
	size_t n;
	struct dsfs_blob *text;
};

struct dsfs_events_merge *dsfs_events_merge_new(void)
{
	struct dsfs_events_merge *mg = calloc(1, sizeof(*mg));

	if (!mg || !(mg->text = dsfs_blob_new("", 0))) {
		free(mg);
		return NULL;
	}
	dsfs_mutex_init(&mg->lock, DSFS_LOCK_EVENTS_MERGE);
	return mg;
}

void dsfs_events_merge_free(struct dsfs_events_merge *mg)
{
	if (!mg)
		return;
	for (size_t i = 0; i < mg->n; i++)
		free(mg->m[i].name);
	free(mg->m);
	dsfs_blob_unref(mg->text);
	dsfs_mutex_destroy(&mg->lock);
	free(mg);
}

int dsfs_events_merge_add(struct dsfs_events_merge *mg, const char *name, struct dsfs_events *ev)
{
	struct merge_member *m = realloc(mg->m, (mg->n + 1) * sizeof(*m));
	json_object *s = json_object_new_string(name);

	if (m)
		mg->m = m;
	if (!m || !s) {
		json_object_put(s);
		return -ENOMEM;
	}
	m[mg->n].name =
		strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(s);
	if (!m[mg->n].name)
		return -ENOMEM;
	m[mg->n].ev = ev;
	m[mg->n].taken = 0;
	mg->n++;
	return 0;
}

void dsfs_events_merge_open(struct dsfs_events_merge *mg)
{
	for (size_t i = 0; i < mg->n; i++)
		dsfs_events_open(mg->m[i].ev);
}

void dsfs_events_merge_close(struct dsfs_events_merge *mg)
{
	for (size_t i = 0; i < mg->n; i++)
		dsfs_events_close(mg->m[i].ev);
}

/* Appends member m's lines from text (after what was taken) to buf, each as {"member":NAME,...}. */
static int merge_lines(struct merge_member *m, const struct dsfs_blob *text, char **buf, size_t *len)
{
	const char *p = text->data + m->taken, *end = text->data + text->len, *nl;

	for (; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
		size_t line = (size_t)(nl - p), need = *len + line + strlen(m->name) + 16;
		char *grown;

		if (line < 2 || p[0] != '{')
			continue;
		if (!(grown = realloc(*buf, need)))
			return -ENOMEM;
		*buf = grown;
		*len += (size_t)sprintf(*buf + *len, "{\"member\":%s%s", m->name, p[1] == '}' ? "" : ",");
		memcpy(*buf + *len, p + 1, line - 1);
		*len += line - 1;
		(*buf)[(*len)++] = '\n';
	}
	m->taken = (size_t)(p - text->data);
	return 0;
}

struct dsfs_blob *dsfs_events_merge_text(struct dsfs_events_merge *mg, bool want)
{
	char *add = NULL;
	size_t addlen = 0;
	struct dsfs_blob *b;

	if (want) {
		/* every member is asked at once, and a member that does not answer within its timeout
		 * (one that hangs) is left for the next read: it delays the estate's feed by one timeout
		 * at most, and no lock is held meanwhile */
		double from = dsfs_clock_now();

		for (size_t i = 0; i < mg->n; i++)
			start(mg->m[i].ev);
		for (size_t i = 0; i < mg->n; i++)
			settle(mg->m[i].ev, from + dsfs_session_timeout(mg->m[i].ev->session));
	}
	dsfs_lock(&mg->lock);
	for (size_t i = 0; i < mg->n; i++) {
		struct dsfs_blob *t = dsfs_events_text(mg->m[i].ev, false);

		if (t && mg->m[i].taken > t->len)
			mg->m[i].taken = t->len; /* its oldest half was dropped: go on from its end */
		if (t)
			merge_lines(&mg->m[i], t, &add, &addlen);
		dsfs_blob_unref(t);
	}
	if (addlen && (b = appended(mg->text, add, addlen))) {
		dsfs_blob_unref(mg->text);
		mg->text = b;
	}
	free(add);
	b = dsfs_blob_ref(mg->text);
	dsfs_unlock(&mg->lock);
	return b;
}
