/* photovote-admin's console (ncursesw).
 *
 * Design
 *   - Never blocks.  Every call to a server is a job for a worker thread
 *     (console_worker.h); this thread only reads keys and draws.  It
 *     poll()s the terminal and the workers' wake-up pipes, so a key is
 *     answered at once and an answer is drawn as soon as it arrives.  A
 *     job that takes longer than WAIT_SHOW_MS is shown on the message line
 *     with what it waits for, for how long, and that Esc stops waiting;
 *     Esc then gives up that worker, hung in its call, and a new one with
 *     new connections takes over (abandon_worker).
 *     Two workers, each with its own session (connections): one reads the
 *     status line every LIVE_SECONDS, the other does everything the
 *     operator asks for, so a hung broker delays only the status line
 *     (which then says for how long it has been reading).
 *   - Screens on a stack: a top screen (1 streams, 2 audit log, 3 dead
 *     letters, 4 projection) and what was opened from it (a stream's
 *     events, one event, one audit row, one dead letter, the help).  Each
 *     view is a list of display lines made when its data arrives (already
 *     escaped, escape.h); drawing cuts them to the screen by display
 *     columns, so a resize is only a redraw.  Every view carries a
 *     generation: the answer to a job for a view that was closed since is
 *     dropped, which is how Esc cancels.
 *   - Keys are one table (keys[]): the keys, the screens where they work,
 *     a hint for the bottom line and a sentence for the help screen (?),
 *     which is made from the same rows.  Home/End arrive as terminfo keys
 *     and also as the raw sequences terminals send whatever TERM says
 *     (define_key), so ESC [ 1 ~ is Home, not Esc and three keys.
 *   - "/" filters a list as one types (n/N move between the matches); on
 *     a detail view it searches and n/N jump to the next matching line.
 *   - Lists that are "live" (streams, projection) are read again every
 *     LIVE_SECONDS while shown; the pipeline's status line every
 *     LIVE_SECONDS whatever the screen.  Only one job per view is out at a
 *     time, so a slow server does not pile up work.
 *   - Exit: q from a top screen, or SIGINT/SIGTERM/SIGHUP (their handlers
 *     set a flag and wake the poll).  Typed-ahead input is discarded and
 *     the terminal restored first; then the worker gets STOP_WAIT_MS to
 *     finish.  One still inside a server call cannot be interrupted: the
 *     process then ends with _exit() (the session it uses is not freed
 *     under it).  Exit status 0 for q, 128 + the signal's number else.
 *   - The terminal is also restored when memory runs out (the xalloc fatal
 *     hook) and on fatal signals (endwin, then the default action).
 *   - Library warnings go to syslog while the screen is ours. */
/* _XOPEN_SOURCE comes from NCURSES_CFLAGS (wide-character curses). */

#include "cli.h"

#include "audit_query.h"
#include "console_worker.h"
#include "dead_letters.h"
#include "escape.h"
#include "id.h"
#include "log.h"
#include "projection.h"
#include "projection_state.h"
#include "rebuild.h"
#include "xalloc.h"

#include <ctype.h>
#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define TICK_MS 250
#define LIVE_SECONDS 2
#define WAIT_SHOW_MS 300
#define STOP_WAIT_MS 100
/* Workers given up while a server hangs (Esc) that may still be inside
 * their calls; past this, Esc only stops waiting. */
#define ABANDONED_MAX 4
#define BAR_MIN 5
#define STATUS_SLOW_MS 1000
#define ESC_DELAY_MS 25
#define EVENTS_PAGE 500
#define EVENTS_MAX 100000 /* shown of one stream; the rest is for the CLI */
#define AUDIT_PAGE 200
#define DEAD_LETTERS_MAX 500
#define DEAD_LETTER_KEEP 65536
#define DEPTH_MAX 4
#define FILTER_MAX 128

enum screen_kind {
	SC_STREAMS,
	SC_EVENTS,
	SC_EVENT,
	SC_AUDIT,
	SC_AUDIT_ROW,
	SC_DEAD,
	SC_DEAD_ONE,
	SC_PROJECTION,
	SC_HELP,
	SC__COUNT
};

/* What each screen is. */
static const struct {
	const char *name;
	bool list; /* a selection moves and "/" filters; else it scrolls and "/" searches */
	bool live; /* read again every LIVE_SECONDS while shown */
	const char *columns;
} screens[SC__COUNT] = {
	[SC_STREAMS] = {"Streams", true, true,
			"STREAM                               LAST#  LAST EVENT (UTC)     STATUS"},
	[SC_EVENTS] = {"Events", true, false,
		       "     #  TYPE                          CREATED                   ID"},
	[SC_EVENT] = {"Event", false, false, NULL},
	[SC_AUDIT] = {"Audit log", true, false,
		      "RECORDED (UTC)  STATUS    TYPE                  USER            RULE / #"},
	[SC_AUDIT_ROW] = {"Audit row", false, false, NULL},
	[SC_DEAD] = {"Dead letters", true, false,
		     "AGE      MESSAGE ID                            TYPE                  REASON"},
	[SC_DEAD_ONE] = {"Dead letter", false, false, NULL},
	[SC_PROJECTION] = {"Projection", false, true, NULL},
	[SC_HELP] = {"Help", false, false, NULL},
};

enum tone { TONE_PLAIN, TONE_BAD, TONE_HEAD };

enum sort { SORT_NAME, SORT_ACTIVITY, SORT_SIZE, SORT__COUNT };
static const char *const sort_names[SORT__COUNT] = {"name", "last activity", "size"};

/* An audit row as the console shows it: a row of pv_audit_query (JSON)
 * with every absent value "" and an absent number -1. */
struct audit_row {
	char *event_id, *stream, *type, *user, *source, *correlation_id;
	char *accepted, *received, *recorded; /* RFC 3339 UTC, microseconds */
	char *status, *kind, *rule, *reason;
	char *cursor; /* where the next page starts */
	int64_t number;
};
struct audit_rows {
	struct audit_row *rows;
	size_t count;
};

/* The texts of a row and their names in pv_audit_query's rows. */
#define AUDIT_TEXTS(a)                                                                             \
	{                                                                                          \
		{"event_id", &(a)->event_id}, {"stream", &(a)->stream}, {"type", &(a)->type},      \
			{"user", &(a)->user}, {"source", &(a)->source},                            \
			{"correlation_id", &(a)->correlation_id}, {"accepted", &(a)->accepted},    \
			{"received", &(a)->received}, {"recorded", &(a)->recorded},                \
			{"status", &(a)->status}, {"kind", &(a)->kind}, {"rule", &(a)->rule},      \
			{"reason", &(a)->reason}, {"cursor", &(a)->cursor},                        \
	}
struct audit_text {
	const char *name;
	char **at;
};

static void audit_rows_clear(struct audit_rows *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct audit_text texts[] = AUDIT_TEXTS(&r->rows[i]);

		for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++)
			free(*texts[t].at);
	}
	free(r->rows);
	memset(r, 0, sizeof *r);
}

struct view {
	enum screen_kind kind;
	unsigned gen; /* answers for an older generation are dropped */
	bool loading; /* a job for this view is out */
	bool loaded;  /* its data arrived at least once */
	char *title;  /* escaped */
	char **lines; /* escaped display lines */
	unsigned char *tones;
	size_t count, cap;
	size_t *shown; /* list views: the lines that match the filter */
	size_t nshown;
	size_t sel, top, col; /* sel and top index shown[] (lists) or lines (details) */
	char filter[FILTER_MAX];
	/* What the lines stand for. */
	char **refs;                  /* per line: stream name, message id, ... (raw) */
	struct pv_es_event *evs;      /* SC_EVENTS: owned */
	size_t nevs;                  /* SC_EVENTS */
	const struct pv_es_event *ev; /* SC_EVENT: borrowed from the events view below */
	struct audit_rows audit;      /* SC_AUDIT: owned */
	bool audit_more;              /* SC_AUDIT: the last page was full */
	char *audit_filter;           /* SC_AUDIT: the filter words, raw */
	struct pv_dead_letters dead;  /* SC_DEAD: owned */
	char *stream;                 /* SC_EVENTS, SC_EVENT: raw stream name */
	char *message_id;             /* SC_DEAD_ONE: raw, NULL when it has none */
};

struct job;

/* What runs on the rebuild worker: a rebuild (in place or into another
 * container), a switch, a drop.  Its head word on the progress line, what
 * that line says until the first report, what Esc does. */
struct rebuild_kind {
	const char *doing, *waiting, *cancelling;
};
enum rebuild_job { RB_NONE, RB_REBUILD, RB_SWITCH, RB_DROP };
static const struct rebuild_kind rebuild_kinds[] = {
	[RB_REBUILD] = {"rebuild", "starting (event store, PostgreSQL, Cosmos DB)",
			"cancelling the rebuild: it stops after the election in hand"},
	[RB_SWITCH] = {"switch", "waiting for the projector to let go of the active container",
		       "cancelling the switch: the active container stays"},
	[RB_DROP] = {"drop", "deleting the container's documents", NULL},
};

/* A rebuild (pv_rebuild_run) on the rebuild worker: its figures, shared
 * with the drawing thread under lock. */
struct rebuild_share {
	pthread_mutex_t lock;
	struct pv_rebuild_progress p; /* the last snapshot (p.election NULL) */
	bool reported;                /* p holds one */
	unsigned long before;         /* elections done by earlier runs (resumed) */
	char *failure;                /* the first election that failed: raw text */
	int wake_fd;                  /* wakes the console's poll */
	/* The console's own (its thread only). */
	bool running, all;
	const struct rebuild_kind *kind; /* what runs (rebuild_kinds) */
	struct timespec started;
	volatile sig_atomic_t cancel; /* set by Esc, read by the rebuild */
};

struct console {
	struct pv_session *s;       /* the caller's: configuration only */
	struct pv_session *session; /* the worker's (a twin of s) */
	struct pv_cw *worker;
	/* The status line's own: a hung broker holds up only that line. */
	struct pv_session *status_session;
	struct pv_cw *status_worker;
	/* Rebuilds': a long replay holds up neither screens nor status. */
	struct pv_session *rebuild_session;
	struct pv_cw *rebuild_worker;
	struct rebuild_share rb;
	struct view views[DEPTH_MAX];
	int depth;
	unsigned next_gen;
	char *message; /* escaped; results and errors */
	bool message_bad;
	char *status; /* escaped pipeline status */
	bool status_bad, status_loading;
	struct timespec status_at, live_at;
	enum sort sort;
	/* The job the operator waits for (an action), NULL when none. */
	struct job *awaited;
	/* A line being typed: "/" filter or "f" audit filter. */
	enum { PROMPT_NONE, PROMPT_FILTER, PROMPT_AUDIT, PROMPT_CONFIRM } prompt;
	char typed[FILTER_MAX];
	struct job *confirm; /* PROMPT_CONFIRM: the action to run on y */
	char *confirm_text;  /* escaped */
	bool color;
	/* Blue-green, as the projection screen last read them (raw names):
	 * the active container, the newest ready one, the newest retired one. */
	char *active, *green, *retired, *building;
};

static volatile sig_atomic_t stop_signal;
static int wake_fd = -1;

static void on_stop(int sig)
{
	stop_signal = sig;
	if (wake_fd >= 0)
		pv_cw_wake(wake_fd);
}

static void restore_terminal(void)
{
	if (!isendwin())
		endwin();
}

static void on_fatal(int sig)
{
	/* Not async-signal-safe, as every console's crash path: the terminal
	 * left raw is the worse outcome. */
	restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static char *escaped(const char *raw)
{
	return pv_escape_str(raw ? raw : "");
}

static void set_message(struct console *c, bool bad, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_message(struct console *c, bool bad, const char *fmt, ...)
{
	va_list ap;
	char *raw;

	va_start(ap, fmt);
	raw = pv_xvasprintf(fmt, ap);
	va_end(ap);
	free(c->message);
	c->message = escaped(raw);
	c->message_bad = bad;
	free(raw);
}

static void clear_message(struct console *c)
{
	free(c->message);
	c->message = NULL;
}

/* ---- views ---- */

/* Takes over line (escaped) and ref (raw, may be NULL). */
static void view_add(struct view *v, char *line, char *ref, enum tone tone)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 64;
		v->lines = pv_xreallocarray(v->lines, v->cap, sizeof *v->lines);
		v->refs = pv_xreallocarray(v->refs, v->cap, sizeof *v->refs);
		v->tones = pv_xreallocarray(v->tones, v->cap, sizeof *v->tones);
	}
	v->refs[v->count] = ref;
	v->tones[v->count] = (unsigned char)tone;
	v->lines[v->count++] = line;
}

static void view_addf(struct view *v, enum tone tone, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void view_addf(struct view *v, enum tone tone, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	view_add(v, pv_xvasprintf(fmt, ap), NULL, tone);
	va_end(ap);
}

/* Drops the lines (not the data they stand for). */
static void view_clear_lines(struct view *v)
{
	for (size_t i = 0; i < v->count; i++) {
		free(v->lines[i]);
		free(v->refs[i]);
	}
	v->count = 0;
}

static void view_free(struct view *v)
{
	view_clear_lines(v);
	free(v->lines);
	free(v->refs);
	free(v->tones);
	free(v->shown);
	if (v->evs) {
		struct pv_es_page page = {.events = v->evs, .count = v->nevs};

		pv_es_page_clear(&page);
	}
	audit_rows_clear(&v->audit);
	pv_dead_letters_clear(&v->dead);
	free(v->audit_filter);
	free(v->title);
	free(v->stream);
	free(v->message_id);
	memset(v, 0, sizeof *v);
}

static bool matches(const struct view *v, size_t i)
{
	return !v->filter[0] || strcasestr(v->lines[i], v->filter) != NULL;
}

/* Recomputes shown[] after the lines or the filter changed, keeping the
 * selected line when it still shows. */
static void view_refilter(struct view *v)
{
	size_t keep = v->nshown && v->sel < v->nshown ? v->shown[v->sel] : (size_t)-1;

	v->shown = pv_xreallocarray(v->shown, v->count ? v->count : 1, sizeof *v->shown);
	v->nshown = 0;
	for (size_t i = 0; i < v->count; i++)
		if (!screens[v->kind].list || matches(v, i)) {
			if (i == keep)
				v->sel = v->nshown;
			v->shown[v->nshown++] = i;
		}
	if (v->sel >= v->nshown)
		v->sel = v->nshown ? v->nshown - 1 : 0;
}

static struct view *top_view(struct console *c)
{
	return &c->views[c->depth];
}

/* Opens a new view of kind on top of the current one (or, top screens,
 * in place of the whole stack). */
static struct view *push_view(struct console *c, enum screen_kind kind, const char *title)
{
	struct view *v;

	if (c->depth + 1 >= DEPTH_MAX)
		return NULL;
	c->depth++;
	v = top_view(c);
	view_free(v);
	v->kind = kind;
	v->gen = ++c->next_gen;
	v->title = pv_xstrdup(title);
	return v;
}

static void pop_view(struct console *c)
{
	if (c->depth == 0)
		return;
	view_free(top_view(c));
	c->depth--;
}

/* The selected line's index in lines[], or (size_t)-1. */
static size_t selected(const struct view *v)
{
	return screens[v->kind].list && v->sel < v->nshown ? v->shown[v->sel] : (size_t)-1;
}

/* ---- jobs: what runs on the worker, what comes back ---- */

struct job {
	struct pv_cw_job base; /* first: the worker hands it back as this */
	void (*done)(struct console *c, struct job *j);
	int depth;
	unsigned gen;
	enum pv_err rc;
	struct pv_error err;
	char *arg;
	enum sort sort;
	struct pv_audit_filter filter;
	char *filter_words; /* the filter's storage */
	char *before;       /* paging: the cursor of the last row shown */
	bool paging, more;
	struct pv_es_stream_list streams;
	json_t *parked;
	struct pv_es_page events;
	struct pv_status status;
	struct audit_rows audit;
	struct pv_dead_letters dead;
	struct pv_dl_op op;
	enum pv_dl_action want; /* a count: for which action */
	struct pv_projection_state proj;
	struct rebuild_share *rb;
	struct pv_rebuild_progress rbp; /* the rebuild's final figures */
	char *container;                /* blue-green: built into, switched to, dropped */
	char *old;                      /* a switch: the container it retires */
	enum rebuild_job rb_kind;       /* RB_NONE, or what it is on the rebuild worker */
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->arg);
	free(j->container);
	free(j->old);
	free(j->filter_words);
	free(j->before);
	pv_es_stream_list_clear(&j->streams);
	json_decref(j->parked);
	pv_es_page_clear(&j->events);
	audit_rows_clear(&j->audit);
	pv_dead_letters_clear(&j->dead);
	pv_projection_state_clear(&j->proj);
	free(j);
}

static void release_job(struct pv_cw_job *job)
{
	job_free((struct job *)job);
}

static struct job *job_new(struct console *c, const char *what,
			   void (*run)(struct pv_session *, struct pv_cw_job *),
			   void (*done)(struct console *, struct job *))
{
	struct job *j = pv_xcalloc(1, sizeof *j);

	j->base.what = what;
	j->base.run = run;
	j->done = done;
	j->depth = c->depth;
	j->gen = top_view(c)->gen;
	return j;
}

/* Queues a job that fills the view it was made for. */
static void submit_view_job(struct console *c, struct job *j)
{
	c->views[j->depth].loading = true;
	pv_cw_submit(c->worker, &j->base);
}

/* Queues an action the operator waits for (its result is always shown). */
static void submit_action(struct console *c, struct job *j)
{
	j->gen = 0;
	j->base.keep = true;
	c->awaited = j;
	pv_cw_submit(c->worker, &j->base);
}

/* The view a job answers, or NULL when that view has gone. */
static struct view *job_view(struct console *c, const struct job *j)
{
	struct view *v = &c->views[j->depth];

	if (j->depth > c->depth || v->gen != j->gen)
		return NULL;
	v->loading = false;
	return v;
}

/* ---- streams ---- */

static void run_streams(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;
	struct pv_error perr;
	struct pv_es *es = NULL;

	j->rc = pv_session_es(s, &es, &j->err);
	if (j->rc == PV_OK && (j->rc = pv_es_list_streams(es, NULL, &j->streams, &j->err)) != PV_OK)
		pv_session_es_failed(s, &j->err);
	/* Parked elections are a column: without PostgreSQL the list still shows. */
	if (j->rc == PV_OK && pv_session_parked(s, &j->parked, &perr) != PV_OK)
		j->parked = NULL;
}

static int cmp_name(const void *a, const void *b)
{
	const struct pv_es_stream_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int cmp_activity(const void *a, const void *b)
{
	const struct pv_es_stream_info *x = a, *y = b;
	int d = strcmp(y->updated ? y->updated : "", x->updated ? x->updated : "");

	return d ? d : cmp_name(a, b);
}

static int cmp_size(const void *a, const void *b)
{
	const struct pv_es_stream_info *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? 1 : -1;
	return cmp_name(a, b);
}

static int (*const sorts[SORT__COUNT])(const void *, const void *) = {
	[SORT_NAME] = cmp_name,
	[SORT_ACTIVITY] = cmp_activity,
	[SORT_SIZE] = cmp_size,
};

static bool is_parked(const json_t *parked, const char *stream)
{
	const char *election = pv_election_of_stream(stream);
	size_t i;
	json_t *row;

	if (!parked || !election)
		return false;
	json_array_foreach(parked, i, row)
	{
		const char *id = json_string_value(json_object_get(row, "election_id"));

		if (id && strcmp(id, election) == 0)
			return true;
	}
	return false;
}

/* "2026-12-06T09:12:03.123Z" as "2026-12-06 09:12:03" (escaped). */
static char *short_time(const char *t)
{
	char cut[20];

	if (!t || strlen(t) < 19)
		return escaped(t);
	memcpy(cut, t, 19);
	cut[19] = '\0';
	if (cut[10] == 'T')
		cut[10] = ' ';
	return escaped(cut);
}

static void done_streams(struct console *c, struct job *j)
{
	struct view *v = job_view(c, j);
	size_t at = v ? selected(v) : (size_t)-1;
	char *keep = v && at != (size_t)-1 ? pv_xstrdup(v->refs[at]) : NULL;

	if (!v)
		goto out;
	if (j->rc != PV_OK) {
		set_message(c, true, "streams: %s", j->err.msg);
		goto out;
	}
	v->loaded = true;
	view_clear_lines(v);
	qsort(j->streams.streams, j->streams.count, sizeof *j->streams.streams, sorts[c->sort]);
	for (size_t i = 0; i < j->streams.count; i++) {
		const struct pv_es_stream_info *si = &j->streams.streams[i];
		char *name = escaped(si->name), *when = short_time(si->updated);
		bool parked = is_parked(j->parked, si->name);

		view_add(v,
			 pv_xasprintf("%-35s %6" PRId64 "  %-19s  %s", name, si->version, when,
				      parked            ? "parked"
				      : si->version < 0 ? "empty"
							: "ok"),
			 pv_xstrdup(si->name), parked ? TONE_BAD : TONE_PLAIN);
		free(name);
		free(when);
	}
	free(v->title);
	v->title = pv_xasprintf("Streams (%zu) by %s", j->streams.count, sort_names[c->sort]);
	/* Keep the selection on the same stream across refreshes and sorts. */
	view_refilter(v);
	for (size_t i = 0; keep && i < v->nshown; i++)
		if (strcmp(v->refs[v->shown[i]], keep) == 0)
			v->sel = i;
out:
	free(keep);
}

static void load_streams(struct console *c, struct view *v)
{
	struct job *j = job_new(c, "event store: the list of streams", run_streams, done_streams);

	j->depth = (int)(v - c->views);
	j->gen = v->gen;
	submit_view_job(c, j);
}

/* ---- a stream's events ---- */

static void run_events(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;
	struct pv_es_page *all = &j->events;
	size_t cap = 0;
	struct pv_es *es = NULL;
	int64_t from = 0;

	j->rc = pv_session_es(s, &es, &j->err);
	while (j->rc == PV_OK && all->count < EVENTS_MAX) {
		struct pv_es_page page = {0};
		bool end;

		j->rc = pv_es_read_stream(es, j->arg, from, EVENTS_PAGE, false, &page, &j->err);
		if (j->rc != PV_OK) {
			pv_session_es_failed(s, &j->err);
			break;
		}
		if (all->count + page.count > cap) {
			cap = (all->count + page.count) * 2;
			all->events = pv_xreallocarray(all->events, cap, sizeof *all->events);
		}
		/* The page's events move into the answer; only its array is freed. */
		if (page.count)
			memcpy(all->events + all->count, page.events,
			       page.count * sizeof *page.events);
		all->count += page.count;
		end = page.count == 0 || page.end_of_stream;
		if (page.count)
			from = page.events[page.count - 1].number + 1;
		free(page.events);
		if (end)
			break;
	}
}

static void done_events(struct console *c, struct job *j)
{
	struct view *v = job_view(c, j);
	char *name;

	if (!v)
		return;
	if (j->rc != PV_OK) {
		set_message(c, true, "events: %s", j->err.msg);
		return;
	}
	v->loaded = true;
	view_clear_lines(v);
	if (v->evs) {
		struct pv_es_page old = {.events = v->evs, .count = v->nevs};

		pv_es_page_clear(&old);
	}
	v->evs = j->events.events;
	v->nevs = j->events.count;
	j->events.events = NULL;
	j->events.count = 0;
	for (size_t i = 0; i < v->nevs; i++) {
		char *type = escaped(v->evs[i].type), *created = escaped(v->evs[i].created);

		view_add(v,
			 pv_xasprintf("%6" PRId64 "  %-28s  %-24s  %s", v->evs[i].number, type,
				      created, v->evs[i].id),
			 pv_xasprintf("%zu", i), TONE_PLAIN);
		free(type);
		free(created);
	}
	name = escaped(v->stream);
	free(v->title);
	v->title = pv_xasprintf("%s: %zu events%s", name, v->nevs,
				v->nevs >= EVENTS_MAX ? " (first)" : "");
	free(name);
	view_refilter(v);
}

static void load_events(struct console *c, struct view *v)
{
	struct job *j = job_new(c, "event store: a stream's events", run_events, done_events);

	j->depth = (int)(v - c->views);
	j->gen = v->gen;
	j->arg = pv_xstrdup(v->stream);
	submit_view_job(c, j);
}

/* ---- one event, and its audit row ---- */

/* Adds each line of a JSON value, indented, escaped. */
static void add_json(struct view *v, const char *label, const json_t *j)
{
	char *text =
		j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
	char *line, *save = NULL;

	view_addf(v, TONE_HEAD, "%s:", label);
	if (!text) {
		view_addf(v, TONE_PLAIN, "  null");
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *e = escaped(line);

		view_addf(v, TONE_PLAIN, "  %s", e);
		free(e);
	}
	free(text);
}

/* label: value, the value escaped; nothing for an empty value unless always. */
static void add_field(struct view *v, enum tone tone, const char *label, const char *raw)
{
	char *e = escaped(raw);

	view_addf(v, tone, "%-15s %s", label, e);
	free(e);
}

static void audit_rows_from_json(struct audit_rows *out, const json_t *rows)
{
	size_t n = json_array_size(rows);

	out->count = n;
	out->rows = pv_xcalloc(n ? n : 1, sizeof *out->rows);
	for (size_t i = 0; i < n; i++) {
		const json_t *row = json_array_get(rows, i), *num = json_object_get(row, "number");
		struct audit_row *a = &out->rows[i];
		struct audit_text texts[] = AUDIT_TEXTS(a);

		for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
			const char *v = json_string_value(json_object_get(row, texts[t].name));

			*texts[t].at = pv_xstrdup(v ? v : "");
		}
		a->number = json_is_integer(num) ? (int64_t)json_integer_value(num) : -1;
	}
}

static void add_audit_row(struct view *v, const struct audit_row *a)
{
	bool rejected = strcmp(a->status, "rejected") == 0;

	add_field(v, rejected ? TONE_BAD : TONE_PLAIN, "verdict:", a->status);
	if (a->number >= 0)
		view_addf(v, TONE_PLAIN, "%-15s %" PRId64, "number:", a->number);
	if (rejected) {
		char *kind = escaped(a->kind), *rule = escaped(a->rule);

		view_addf(v, TONE_BAD, "%-15s %s (%s)", "rule:", rule, kind);
		free(kind);
		free(rule);
		add_field(v, TONE_BAD, "reason:", a->reason);
	}
	add_field(v, TONE_PLAIN, "event id:", a->event_id);
	add_field(v, TONE_PLAIN, "stream:", a->stream);
	add_field(v, TONE_PLAIN, "type:", a->type);
	add_field(v, TONE_PLAIN, "user:", a->user);
	add_field(v, TONE_PLAIN, "source:", a->source);
	add_field(v, TONE_PLAIN, "correlation id:", a->correlation_id);
	add_field(v, TONE_PLAIN, "accepted:", a->accepted);
	add_field(v, TONE_PLAIN, "received:", a->received);
	add_field(v, TONE_PLAIN, "recorded:", a->recorded);
}

/* The event's lines; the audit part from the answer, when there is one. */
static void fill_event(struct view *v, const struct job *audit)
{
	const struct pv_es_event *ev = v->ev;

	view_clear_lines(v);
	add_field(v, TONE_PLAIN, "stream:", v->stream);
	view_addf(v, TONE_PLAIN, "%-15s %" PRId64, "number:", ev->number);
	add_field(v, TONE_PLAIN, "type:", ev->type);
	add_field(v, TONE_PLAIN, "id:", ev->id);
	add_field(v, TONE_PLAIN, "created:", ev->created);
	add_json(v, "data", ev->data);
	add_json(v, "metadata", ev->metadata);
	view_addf(v, TONE_HEAD, "audit:");
	if (!audit)
		view_addf(v, TONE_PLAIN, "  (reading the audit log...)");
	else if (audit->rc != PV_OK)
		add_field(v, TONE_BAD, "  error:", audit->err.msg);
	else if (audit->audit.count == 0)
		view_addf(v, TONE_PLAIN, "  no audit row for this event id");
	else
		add_audit_row(v, &audit->audit.rows[0]);
	view_refilter(v);
}

static void run_audit(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	json_t *rows = NULL;
	PGconn *conn;

	j->rc = pv_session_pg(s, &conn, &j->err);
	if (j->rc != PV_OK)
		return;
	j->filter.before = j->paging ? j->before : NULL;
	j->filter.limit = AUDIT_PAGE;
	j->rc = pv_audit_query(conn, &j->filter, &rows, &j->more, &j->err);
	/* A bad filter value is the operator's, not a broken connection. */
	if (j->rc != PV_OK && j->rc != PV_ERR_DATABASE && j->rc != PV_ERR_INVALID)
		j->rc = pv_session_pg_failed(s, &j->err);
	if (j->rc == PV_OK)
		audit_rows_from_json(&j->audit, rows);
	json_decref(rows);
}

static void done_event_audit(struct console *c, struct job *j)
{
	struct view *v = job_view(c, j);

	if (v)
		fill_event(v, j);
}

static void open_event(struct console *c, struct view *list, size_t i)
{
	const struct pv_es_event *ev = &list->evs[i];
	char *name = escaped(list->stream);
	char *title = pv_xasprintf("%s #%" PRId64, name, ev->number);
	struct view *v = push_view(c, SC_EVENT, title);
	struct job *j;

	free(name);
	free(title);
	if (!v)
		return;
	v->stream = pv_xstrdup(list->stream);
	v->ev = ev;
	v->loaded = true;
	fill_event(v, NULL);
	j = job_new(c, "PostgreSQL: the event's audit row", run_audit, done_event_audit);
	j->arg = pv_xstrdup(ev->id);
	j->filter.event_id = j->arg;
	submit_view_job(c, j);
}

/* ---- the audit log ---- */

/* Splits "key=value key=value" into j->filter (storage in j). */
static bool parse_audit_filter(struct job *j, const char *words, struct pv_error *err)
{
	char *save = NULL, *w;

	if (!words)
		return true;
	j->filter_words = pv_xstrdup(words);
	for (w = strtok_r(j->filter_words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '=');

		if (!eq || eq == w) {
			pv_error_set(err, PV_ERR_INVALID, "\"%s\" is not key=value", w);
			return false;
		}
		*eq = '\0';
		if (pv_audit_filter_set(&j->filter, w, eq + 1, err) != PV_OK)
			return false;
	}
	return true;
}

static void add_audit_lines(struct view *v, const struct audit_rows *rows)
{
	for (size_t i = 0; i < rows->count; i++) {
		const struct audit_row *a = &rows->rows[i];
		bool rejected = strcmp(a->status, "rejected") == 0;
		/* Month to second: the year is in the row's detail. */
		char *when = short_time(a->recorded), *type = escaped(a->type),
		     *user = escaped(a->user), *rule = escaped(a->rule);
		const char *day = when + (strlen(when) >= 19 ? 5 : 0);

		if (rejected)
			view_add(v,
				 pv_xasprintf("%-14s  %-8s  %-20s  %-14s  %s", day, a->status, type,
					      user, rule),
				 pv_xstrdup(a->event_id), TONE_BAD);
		else
			view_add(v,
				 pv_xasprintf("%-14s  %-8s  %-20s  %-14s  #%" PRId64, day,
					      a->status, type, user, a->number),
				 pv_xstrdup(a->event_id), TONE_PLAIN);
		free(when);
		free(type);
		free(user);
		free(rule);
	}
}

static void audit_title(struct view *v)
{
	char *f = escaped(v->audit_filter);

	free(v->title);
	v->title = pv_xasprintf("Audit log (%zu%s, newest first)%s%s", v->audit.count,
				v->audit_more ? "+" : "", *f ? "  where " : "", f);
	free(f);
}

static void done_audit(struct console *c, struct job *j)
{
	struct view *v = job_view(c, j);

	if (!v)
		return;
	if (j->rc != PV_OK) {
		set_message(c, true, "audit log: %s", j->err.msg);
		return;
	}
	v->loaded = true;
	if (!j->paging) {
		view_clear_lines(v);
		audit_rows_clear(&v->audit);
		v->sel = v->top = 0;
	}
	add_audit_lines(v, &j->audit);
	/* The page's rows join the view's. */
	v->audit.rows = pv_xreallocarray(v->audit.rows, v->audit.count + j->audit.count + 1,
					 sizeof *v->audit.rows);
	if (j->audit.count)
		memcpy(v->audit.rows + v->audit.count, j->audit.rows,
		       j->audit.count * sizeof *j->audit.rows);
	v->audit.count += j->audit.count;
	v->audit_more = j->more;
	free(j->audit.rows);
	j->audit.rows = NULL;
	j->audit.count = 0;
	audit_title(v);
	view_refilter(v);
}

/* The first page (or, paging, the next one) of the view's filter. */
static void load_audit(struct console *c, struct view *v, bool paging)
{
	struct job *j = job_new(c, "PostgreSQL: the audit log", run_audit, done_audit);
	struct pv_error err;

	j->depth = (int)(v - c->views);
	j->gen = v->gen;
	if (!parse_audit_filter(j, v->audit_filter, &err)) {
		set_message(c, true, "audit filter: %s", err.msg);
		job_free(j);
		return;
	}
	if (paging && v->audit.count) {
		const struct audit_row *last = &v->audit.rows[v->audit.count - 1];

		j->paging = true;
		j->before = pv_xstrdup(last->cursor);
	}
	submit_view_job(c, j);
}

static void open_audit_row(struct console *c, struct view *list, size_t i)
{
	struct view *v;
	char *id = escaped(list->audit.rows[i].event_id), *title = pv_xasprintf("Audit %s", id);

	free(id);
	v = push_view(c, SC_AUDIT_ROW, title);
	free(title);
	if (!v)
		return;
	v->loaded = true;
	add_audit_row(v, &list->audit.rows[i]);
	view_refilter(v);
}

/* ---- dead letters ---- */

static void run_dead(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	j->rc = pv_session_dead_letters(s, DEAD_LETTERS_MAX, DEAD_LETTER_KEEP, &j->dead, &j->err);
}

/* "45s", "12m", "3h", "2d": how long ago t (s since 1970) was. */
static void age_text(char *out, size_t n, uint64_t t)
{
	time_t now = time(NULL);
	long d = t && (time_t)t <= now ? (long)(now - (time_t)t) : -1;

	if (d < 0)
		snprintf(out, n, "?");
	else if (d < 120)
		snprintf(out, n, "%lds", d);
	else if (d < 7200)
		snprintf(out, n, "%ldm", d / 60);
	else if (d < 172800)
		snprintf(out, n, "%ldh", d / 3600);
	else
		snprintf(out, n, "%ldd", d / 86400);
}

static void done_dead(struct console *c, struct job *j)
{
	struct view *v = job_view(c, j);

	if (!v)
		return;
	if (j->rc != PV_OK) {
		set_message(c, true, "dead letters: %s", j->err.msg);
		return;
	}
	v->loaded = true;
	view_clear_lines(v);
	pv_dead_letters_clear(&v->dead);
	v->dead = j->dead;
	memset(&j->dead, 0, sizeof j->dead);
	for (size_t i = 0; i < v->dead.count; i++) {
		const struct pv_dead_letter *d = &v->dead.items[i];
		char age[32], *id = escaped(d->message_id ? d->message_id : "(none)"),
			      *type = escaped(d->type), *reason = escaped(d->reason);

		age_text(age, sizeof age, d->timestamp);
		view_add(v, pv_xasprintf("%-7s  %-36s  %-20s  %s", age, id, type, reason),
			 d->message_id ? pv_xstrdup(d->message_id) : NULL, TONE_PLAIN);
		free(id);
		free(type);
		free(reason);
	}
	free(v->title);
	v->title = pv_xasprintf("Dead letters (%lu in the queue%s)", v->dead.total,
				v->dead.count < v->dead.total ? ", first shown" : "");
	view_refilter(v);
}

static void load_dead(struct console *c, struct view *v)
{
	struct job *j = job_new(c, "RabbitMQ: the dead letters", run_dead, done_dead);

	j->depth = (int)(v - c->views);
	j->gen = v->gen;
	submit_view_job(c, j);
}

static void open_dead_letter(struct console *c, struct view *list, size_t i)
{
	const struct pv_dead_letter *d = &list->dead.items[i];
	char *body = pv_escape_mem(d->body, d->body_kept), *save = NULL, *line;
	json_error_t jerr;
	json_t *json;
	struct view *v = push_view(c, SC_DEAD_ONE, "Dead letter");
	char when[32] = "";

	if (!v) {
		free(body);
		return;
	}
	v->loaded = true;
	v->message_id = d->message_id ? pv_xstrdup(d->message_id) : NULL;
	add_field(v, TONE_PLAIN, "message id:", d->message_id ? d->message_id : "(none)");
	add_field(v, TONE_PLAIN, "type:", d->type);
	add_field(v, TONE_BAD, "reason:", d->reason);
	if (d->timestamp) {
		time_t t = (time_t)d->timestamp;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	add_field(v, TONE_PLAIN, "timestamp:", when);
	view_addf(v, TONE_PLAIN, "%-15s %s", "redelivered:", d->redelivered ? "yes" : "no");
	view_addf(v, TONE_PLAIN, "%-15s %zu%s", "body bytes:", d->body_len,
		  d->body_kept < d->body_len ? " (first part shown)" : "");
	view_addf(v, TONE_HEAD, "headers:");
	/* Already escaped per name and value (session.h), one a line. */
	{
		char *h = pv_xstrdup(d->headers ? d->headers : "");

		for (line = strtok_r(h, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			view_addf(v, TONE_PLAIN, "  %s", line);
		free(h);
	}
	json = d->body_kept == d->body_len ? json_loadb(d->body, d->body_kept, 0, &jerr) : NULL;
	if (json) {
		add_json(v, "body (JSON)", json);
		json_decref(json);
	} else {
		view_addf(v, TONE_HEAD, "body:");
		view_addf(v, TONE_PLAIN, "  %s", body);
	}
	free(body);
	view_refilter(v);
}

/* Requeue or purge: first count (PV_DL_COUNT), then ask, then act on at
 * most the number the operator agreed to. */
static void run_dead_act(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	j->op.id = j->arg;
	j->rc = pv_dead_letters_act(s, &j->op, &j->err);
}

static const char *const action_verbs[] = {
	[PV_DL_COUNT] = "count", [PV_DL_REQUEUE] = "requeue", [PV_DL_PURGE] = "purge"};

static void load_top(struct console *c);

static void done_dead_act(struct console *c, struct job *j)
{
	if (j->rc != PV_OK)
		set_message(c, true, "%s: %s (%lu done before the failure)",
			    action_verbs[j->op.action], j->err.msg, j->op.done);
	else if (j->op.action == PV_DL_REQUEUE)
		set_message(c, false, "%lu dead letter(s) requeued, %lu left in the queue%s",
			    j->op.done, j->op.left,
			    j->op.no_key ? " (some have no routing key)" : "");
	else
		set_message(c, false, "%lu dead letter(s) purged, %lu left in the queue",
			    j->op.done, j->op.left);
	/* The list (and an inspected dead letter) showed the queue before. */
	if (top_view(c)->kind == SC_DEAD_ONE)
		pop_view(c);
	if (top_view(c)->kind == SC_DEAD)
		load_top(c);
}

static void done_dead_count(struct console *c, struct job *j)
{
	enum pv_dl_action want = j->want;
	struct job *act;
	char *id;

	if (j->rc != PV_OK) {
		set_message(c, true, "dead letters: %s", j->err.msg);
		return;
	}
	if (j->op.matched == 0) {
		set_message(c, false, "no dead letter to %s", action_verbs[want]);
		return;
	}
	act = job_new(c,
		      want == PV_DL_PURGE ? "RabbitMQ: purging dead letters"
					  : "RabbitMQ: requeueing dead letters",
		      run_dead_act, done_dead_act);
	act->op.action = want;
	act->op.max = j->op.matched;
	act->arg = j->arg ? pv_xstrdup(j->arg) : NULL;
	id = escaped(j->arg);
	free(c->confirm_text);
	c->confirm_text =
		pv_xasprintf("%s %s%lu dead letter%s%s%s%s%s? y/n",
			     want == PV_DL_PURGE ? "Purge" : "Requeue", j->arg ? "" : "all ",
			     j->op.matched, j->op.matched == 1 ? "" : "s", j->arg ? " (id " : "",
			     id, j->arg ? ")" : "", want == PV_DL_PURGE ? " for good" : "");
	free(id);
	job_free(c->confirm);
	c->confirm = act;
	c->prompt = PROMPT_CONFIRM;
}

static void ask_dead_act(struct console *c, enum pv_dl_action action, bool all)
{
	struct view *v = top_view(c);
	size_t i = selected(v);
	const char *id = v->kind == SC_DEAD_ONE ? v->message_id
			 : i != (size_t)-1      ? v->refs[i]
						: NULL;
	struct job *j;

	if (!all && !id) {
		set_message(c, true,
			    v->kind == SC_DEAD && i == (size_t)-1
				    ? "no dead letter selected"
				    : "this dead letter has no message id: R or P act on all");
		return;
	}
	j = job_new(c, "RabbitMQ: counting dead letters", run_dead_act, done_dead_count);
	j->op.action = PV_DL_COUNT;
	j->want = action;
	j->arg = all ? NULL : pv_xstrdup(id);
	submit_action(c, j);
}

/* ---- projection ---- */

static void run_projection(struct pv_session *s, struct pv_cw_job *base)
{
	pv_projection_state_read(s, &((struct job *)base)->proj);
}

static void add_ago(struct view *v, const char *label, const char *at, long age)
{
	char *e = escaped(at);

	if (!at)
		view_addf(v, TONE_PLAIN, "%-19s never", label);
	else if (age >= 0)
		view_addf(v, TONE_PLAIN, "%-19s %s (%ld s ago)", label, e, age);
	else
		view_addf(v, TONE_PLAIN, "%-19s %s", label, e);
	free(e);
}

/* The newest container in `state` (the list is newest first) other than
 * `but`, or NULL. */
static const char *container_in(const json_t *list, const char *state, const char *but)
{
	size_t i;
	json_t *row;

	json_array_foreach(list, i, row)
	{
		const char *st = json_string_value(json_object_get(row, "state"));
		const char *name = json_string_value(json_object_get(row, "container"));

		if (st && name && strcmp(st, state) == 0 && (!but || strcmp(name, but) != 0))
			return name;
	}
	return NULL;
}

static void keep_name(char **slot, const char *name)
{
	free(*slot);
	*slot = name ? pv_xstrdup(name) : NULL;
}

/* Blue-green: the read model's containers, and what B, S and D would act on. */
static void add_containers(struct console *c, struct view *v, const struct pv_projection_state *p)
{
	/* The configured container is where every program falls back to: it is
	 * never dropped (pv_rebuild_drop refuses it). */
	const char *configured = pv_session_cosmos_options(c->s)->container;
	size_t i;
	json_t *row;

	if (p->containers_rc != PV_OK) {
		add_field(v, TONE_BAD, "containers:", p->containers_err.msg);
		return;
	}
	keep_name(&c->active, container_in(p->containers, "active", NULL));
	keep_name(&c->green, container_in(p->containers, "ready", NULL));
	if (!c->green)
		keep_name(&c->green, container_in(p->containers, "switching", NULL));
	keep_name(&c->retired, container_in(p->containers, "retired", configured));
	keep_name(&c->building, container_in(p->containers, "building", NULL));
	view_addf(v, TONE_PLAIN, "%-19s %zu (B: a new one; S: switch to ready; D: drop retired)",
		  "containers:", json_array_size(p->containers));
	json_array_foreach(p->containers, i, row)
	{
		const char *st = json_string_value(json_object_get(row, "state"));
		const char *at = json_string_value(json_object_get(row, "updated"));
		char *name = escaped(json_string_value(json_object_get(row, "container")));
		char *state = escaped(st), *since = escaped(at && *at ? at : "(configured)");

		view_addf(v, TONE_PLAIN, "  %-32s %-9s %s", name, state, since);
		free(name);
		free(state);
		free(since);
	}
}

static void done_projection(struct console *c, struct job *j)
{
	const struct pv_projection_state *p = &j->proj;
	struct view *v = job_view(c, j);
	size_t i;
	json_t *row;

	if (!v)
		return;
	v->loaded = true;
	view_clear_lines(v);
	add_field(v, TONE_PLAIN, "feed:", pv_session_feed(c->s));
	if (p->st.store_rc == PV_OK)
		view_addf(v, TONE_PLAIN, "%-19s %" PRId64, "head of the feed:", p->st.head);
	else
		add_field(v, TONE_BAD, "head of the feed:", p->st.store_err.msg);
	if (p->st.checkpoint_rc == PV_OK)
		view_addf(v, TONE_PLAIN, "%-19s %" PRId64, "checkpoint:", p->st.checkpoint);
	else
		add_field(v, TONE_BAD, "checkpoint:", p->st.checkpoint_err.msg);
	if (p->st.store_rc == PV_OK && p->st.checkpoint_rc == PV_OK) {
		char secs[48] = "? s";

		if (p->lag_seconds >= 0)
			snprintf(secs, sizeof secs, "%ld s", p->lag_seconds);
		view_addf(v, p->st.lag ? TONE_BAD : TONE_PLAIN, "%-19s %lu%s events, %s",
			  "lag:", p->st.lag, p->st.lag_capped ? "+" : "", secs);
		if (p->oldest_waiting)
			add_field(v, TONE_PLAIN, "oldest waiting:", p->oldest_waiting);
	}
	if (p->progress_rc == PV_OK) {
		add_ago(v, "checkpoint written:", p->checkpoint_at,
			pv_seconds_since(p->checkpoint_at));
		add_ago(v, "last heartbeat:", p->beat_at, p->beat_age);
		if (p->beat_at)
			view_addf(v, TONE_PLAIN, "%-19s %" PRId64, "head it knew:", p->beat_head);
	} else {
		add_field(v, TONE_BAD, "progress:", p->progress_err.msg);
	}
	if (p->parked_rc != PV_OK) {
		add_field(v, TONE_BAD, "parked elections:", p->parked_err.msg);
	} else {
		view_addf(v, json_array_size(p->parked) ? TONE_BAD : TONE_PLAIN, "%-19s %zu",
			  "parked elections:", json_array_size(p->parked));
		json_array_foreach(p->parked, i, row)
		{
			char *id = escaped(json_string_value(json_object_get(row, "election_id")));
			char *since = escaped(json_string_value(json_object_get(row, "parked_at")));
			char *why = escaped(json_string_value(json_object_get(row, "reason")));

			view_addf(v, TONE_BAD,
				  "  %s event %" JSON_INTEGER_FORMAT " status %" JSON_INTEGER_FORMAT
				  " since %s: %s",
				  id, json_integer_value(json_object_get(row, "event_number")),
				  json_integer_value(json_object_get(row, "status")), since, why);
			free(id);
			free(since);
			free(why);
		}
	}
	add_containers(c, v, p);
	view_refilter(v);
}

static void load_projection(struct console *c, struct view *v)
{
	struct job *j = job_new(c, "event store and PostgreSQL: the projection", run_projection,
				done_projection);

	j->depth = (int)(v - c->views);
	j->gen = v->gen;
	submit_view_job(c, j);
}

/* ---- the pipeline's status line ---- */

static void run_status(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	j->rc = pv_session_status(s, &j->status, &j->err);
}

static void done_status(struct console *c, struct job *j)
{
	const struct pv_status *st = &j->status;
	struct pv_buf b = PV_BUF_INIT;
	char *raw;

	c->status_loading = false;
	if (st->broker_rc == PV_OK)
		pv_buf_printf(&b, "queue %lu (%lu consumers) | dead letters %lu", st->queue_ready,
			      st->queue_consumers, st->dead_letters);
	else
		pv_buf_printf(&b, "broker: %s", st->broker_err.msg);
	if (st->store_rc == PV_OK)
		pv_buf_printf(&b, " | head %" PRId64, st->head);
	else
		pv_buf_printf(&b, " | store: %s", st->store_err.msg);
	if (st->checkpoint_rc == PV_OK)
		pv_buf_printf(&b, " | checkpoint %" PRId64, st->checkpoint);
	else
		pv_buf_printf(&b, " | checkpoint: %s", st->checkpoint_err.msg);
	if (st->store_rc == PV_OK && st->checkpoint_rc == PV_OK)
		pv_buf_printf(&b, " | lag %lu%s", st->lag, st->lag_capped ? "+" : "");
	raw = pv_buf_steal(&b);
	free(c->status);
	c->status = escaped(raw);
	c->status_bad = j->rc != PV_OK;
	free(raw);
}

static void load_status(struct console *c)
{
	struct job *j = job_new(c, "RabbitMQ, event store, PostgreSQL: the status line", run_status,
				done_status);

	c->status_loading = true;
	pv_cw_submit(c->status_worker, &j->base);
}

/* ---- rebuild ---- */

static double seconds_since(const struct timespec *t);

static void rebuild_progress(void *ctx, const struct pv_rebuild_progress *p)
{
	struct rebuild_share *rb = ctx;

	pthread_mutex_lock(&rb->lock);
	if (!rb->reported && strcmp(p->phase, "replaying") == 0)
		rb->before = p->elections_done + p->elections_failed;
	rb->p = *p;
	rb->p.election = NULL; /* borrowed by the rebuild */
	rb->reported = true;
	pthread_mutex_unlock(&rb->lock);
	pv_cw_wake(rb->wake_fd);
}

static void rebuild_failed(void *ctx, const char *id, const struct pv_error *err)
{
	struct rebuild_share *rb = ctx;

	pthread_mutex_lock(&rb->lock);
	if (!rb->failure)
		rb->failure = pv_xasprintf("election %s failed: %s", id, err->msg);
	pthread_mutex_unlock(&rb->lock);
}

static void run_rebuild(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;
	struct pv_rebuild_options o = {.election_id = j->arg,
				       .into = j->container,
				       .progress = rebuild_progress,
				       .failed = rebuild_failed,
				       .ctx = j->rb,
				       .cancel = &j->rb->cancel};

	j->rc = pv_rebuild_run(s, &o, &j->rbp, &j->err);
}

/* The result, as the CLI words it, on the message line. */
static void done_rebuild(struct console *c, struct job *j)
{
	const struct pv_rebuild_progress *p = &j->rbp;
	struct rebuild_share *rb = &c->rb;
	unsigned long ended = p->elections_done + p->elections_failed;
	struct pv_buf b = PV_BUF_INIT;
	char *raw, *failure;

	rb->running = false;
	pthread_mutex_lock(&rb->lock);
	failure = rb->failure;
	rb->failure = NULL;
	pthread_mutex_unlock(&rb->lock);
	if (j->rc != PV_OK) {
		pv_buf_printf(&b, "rebuild: %s", j->err.msg);
		if (!j->arg && p->elections_total)
			pv_buf_printf(&b, "; stopped after %lu of %lu elections, %s resumes", ended,
				      p->elections_total, j->container ? "B" : "R");
	} else if (p->cancelled) {
		pv_buf_printf(&b, "rebuild cancelled after %lu of %lu elections; %s resumes it",
			      ended, p->elections_total,
			      j->arg         ? "r"
			      : j->container ? "B"
					     : "R");
	} else if (j->arg && failure) {
		pv_buf_printf(&b, "rebuild: %s", failure); /* as the CLI says it */
	} else if (j->arg) {
		pv_buf_printf(&b, "rebuilt %s (%" PRId64 " events, %lu Cosmos DB requests)", j->arg,
			      p->events_done, p->cosmos_requests);
	} else if (j->container && !p->elections_failed) {
		pv_buf_printf(&b, "container %s is ready at position %" PRId64 "; S switches to it",
			      j->container, p->caught_up_to);
	} else {
		pv_buf_printf(&b, "rebuilt %lu of %lu elections", p->elections_done,
			      p->elections_total);
		if (p->elections_failed)
			pv_buf_printf(&b, ", %lu failed", p->elections_failed);
		if (p->resumed)
			pv_buf_printf(&b, ", resumed after %lu", rb->before);
		pv_buf_printf(&b, ": %.0f events/s, %lu Cosmos DB requests", p->rate,
			      p->cosmos_requests);
		if (failure)
			pv_buf_printf(&b, "; the first failed: %s", failure);
	}
	free(failure);
	raw = pv_buf_steal(&b);
	set_message(c, j->rc != PV_OK || p->elections_failed, "%s", raw);
	free(raw);
	if (j->container && top_view(c)->kind == SC_PROJECTION)
		load_top(c);
}

/* The progress line: "rebuild 3/10 [###   ] 812/4000 events 98/s 0:08 ETA 0:32",
 * the bar as wide as width leaves (none when that is too narrow). */
static char *rebuild_line(struct console *c, int width)
{
	struct rebuild_share *rb = &c->rb;
	struct pv_rebuild_progress p;
	char elapsed[48], eta[48], *head, *tail, *line, *bar;
	bool reported;
	int room;

	pthread_mutex_lock(&rb->lock);
	p = rb->p;
	reported = rb->reported;
	pthread_mutex_unlock(&rb->lock);
	if (!reported) {
		pv_cli_clock(seconds_since(&rb->started), elapsed, sizeof elapsed);
		return pv_xasprintf("%s%s: %s, %s", rb->kind->doing,
				    rb->cancel ? " cancelling" : "", rb->kind->waiting, elapsed);
	}
	pv_cli_clock(p.elapsed, elapsed, sizeof elapsed);
	if (p.eta >= 0)
		pv_cli_clock(p.eta, eta, sizeof eta);
	else
		snprintf(eta, sizeof eta, "?");
	head = pv_xasprintf("%s %lu/%lu", rb->cancel ? "cancelling" : "rebuild",
			    p.elections_done + p.elections_failed, p.elections_total);
	tail = pv_xasprintf("%" PRId64 "/%" PRId64 " events %.0f/s %s ETA %s", p.events_done,
			    p.events_total, p.rate, elapsed, eta);
	room = width - (int)(strlen(head) + strlen(tail)) - 4; /* " [" "] " */
	if (room < BAR_MIN) {
		line = pv_xasprintf("%s %s", head, tail);
	} else {
		int full = p.events_total > 0 ? (int)((double)room * (double)p.events_done /
						      (double)p.events_total)
					      : 0;

		bar = pv_xcalloc((size_t)room + 1, 1);
		memset(bar, ' ', (size_t)room);
		memset(bar, '#', (size_t)(full > room ? room : full));
		line = pv_xasprintf("%s [%s] %s", head, bar, tail);
		free(bar);
	}
	free(head);
	free(tail);
	return line;
}

/* What runs on the rebuild worker now, or NULL. */
static const struct rebuild_kind *running_kind(const struct console *c)
{
	return c->rb.running ? c->rb.kind : NULL;
}

/* True, and says so, while the rebuild worker runs a job: it runs one at a time. */
static bool rebuild_busy(struct console *c)
{
	const struct rebuild_kind *k = running_kind(c);

	if (k)
		set_message(c, false, "a %s is running%s", k->doing,
			    k->cancelling ? ": Esc cancels it" : "");
	return k != NULL;
}

/* Starts j (its rb_kind set) on the rebuild worker. */
static void start_rebuild_job(struct console *c, struct job *j)
{
	struct rebuild_share *rb = &c->rb;

	if (rebuild_busy(c)) {
		job_free(j);
		return;
	}
	pthread_mutex_lock(&rb->lock);
	memset(&rb->p, 0, sizeof rb->p);
	rb->reported = false;
	rb->before = 0;
	pthread_mutex_unlock(&rb->lock);
	rb->running = true;
	rb->all = !j->arg;
	rb->cancel = 0;
	rb->kind = &rebuild_kinds[j->rb_kind];
	clock_gettime(CLOCK_MONOTONIC, &rb->started);
	j->rb = rb;
	pv_cw_submit(c->rebuild_worker, &j->base);
}

/* Starts a rebuild of one election, or of every one (id NULL). */
static void start_rebuild(struct console *c, const char *id)
{
	struct job *j;

	if (rebuild_busy(c))
		return;
	j = job_new(c, "event store and Cosmos DB: a rebuild", run_rebuild, done_rebuild);
	j->rb_kind = RB_REBUILD;
	j->arg = id ? pv_xstrdup(id) : NULL;
	if (id)
		set_message(c, false, "rebuilding %s; Esc cancels", id);
	else
		set_message(c, false, "rebuilding every election; Esc cancels, R resumes");
	start_rebuild_job(c, j);
}

/* ---- blue-green: B builds a new container, S switches, D drops ---- */

static void run_switch(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	j->rc = pv_rebuild_switch(s, j->container, &j->rb->cancel, &j->err);
}

static void run_drop(struct pv_session *s, struct pv_cw_job *base)
{
	struct job *j = (struct job *)base;

	j->rc = pv_rebuild_drop(s, j->container, &j->err);
}

/* After a switch or a drop: the result, and the projection screen read again. */
static void done_container(struct console *c, struct job *j)
{
	c->rb.running = false;
	if (j->rc != PV_OK)
		set_message(c, true, "%s %s: %s", j->rb_kind == RB_SWITCH ? "switch to" : "drop",
			    j->container, j->err.msg);
	else if (j->rb_kind == RB_SWITCH)
		set_message(c, false, "now served from %s; D drops %s", j->container,
			    j->old ? j->old : "the old container");
	else
		set_message(c, false, "container %s dropped", j->container);
	if (top_view(c)->kind == SC_PROJECTION)
		load_top(c);
}

/* Asks first; on y the job starts on the rebuild worker (prompt_key). */
static void ask_rebuild_job(struct console *c, struct job *j, enum rebuild_job kind,
			    const char *question)
{
	free(c->confirm_text);
	c->confirm_text = escaped(question);
	j->rb_kind = kind;
	job_free(c->confirm);
	c->confirm = j;
	c->prompt = PROMPT_CONFIRM;
}

static void k_green(struct console *c)
{
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32], *question;
	struct job *j;

	if (!c->active) {
		set_message(c, true, "the containers are not read yet");
		return;
	}
	j = job_new(c, "event store and Cosmos DB: building a new container", run_rebuild,
		    done_rebuild);
	if (c->building) {
		/* A build cancelled or cut short: it resumes where it stopped. */
		j->container = pv_xstrdup(c->building);
		question = pv_xasprintf("Go on building container %s? y/n", j->container);
	} else {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
		/* Names are at most 255 characters (container_name_ok in cli.c). */
		j->container = pv_xasprintf("%.200s-%s", pv_session_cosmos_options(c->s)->container,
					    stamp);
		question = pv_xasprintf("Build every election into new container %s? y/n",
					j->container);
	}
	ask_rebuild_job(c, j, RB_REBUILD, question);
	free(question);
}

static void k_switch(struct console *c)
{
	struct job *j;
	char *question;

	if (!c->green) {
		set_message(c, true, "no container is ready to switch to: B builds one");
		return;
	}
	j = job_new(c, "PostgreSQL and Cosmos DB: switching the read model", run_switch,
		    done_container);
	j->container = pv_xstrdup(c->green);
	j->old = c->active ? pv_xstrdup(c->active) : NULL;
	question = pv_xasprintf("Switch reads and projector to %s (now %s)? y/n", c->green,
				c->active ? c->active : "the active container");
	ask_rebuild_job(c, j, RB_SWITCH, question);
	free(question);
}

static void k_drop(struct console *c)
{
	struct job *j;
	char *question;

	if (!c->retired) {
		set_message(c, true,
			    "no retired container to drop (the configured one, %s, is kept)",
			    pv_session_cosmos_options(c->s)->container);
		return;
	}
	j = job_new(c, "Cosmos DB: dropping a container", run_drop, done_container);
	j->container = pv_xstrdup(c->retired);
	question =
		pv_xasprintf("Drop container %s and all its documents for good? y/n", c->retired);
	ask_rebuild_job(c, j, RB_DROP, question);
	free(question);
}

/* Esc while a rebuild runs: it stops after the election in hand (a switch
 * stops waiting; a drop goes on). */
static bool cancel_rebuild(struct console *c)
{
	const struct rebuild_kind *k = running_kind(c);

	if (c->rb.cancel || !k || !k->cancelling)
		return false;
	c->rb.cancel = 1;
	set_message(c, false, "%s", k->cancelling);
	return true;
}

/* The stream of the selected line or of the shown view. */
static const char *current_stream(struct console *c)
{
	struct view *v = top_view(c);
	size_t i = selected(v);

	if (v->kind == SC_STREAMS)
		return i != (size_t)-1 ? v->refs[i] : NULL;
	return v->stream;
}

static void rebuild(struct console *c)
{
	const char *stream = current_stream(c);
	const char *id;

	if (!stream)
		return;
	id = pv_election_of_stream(stream);
	if (!id) {
		set_message(c, true, "%s is not an election's stream", stream);
		return;
	}
	start_rebuild(c, id);
}

static void rebuild_all(struct console *c)
{
	start_rebuild(c, NULL);
}

/* ---- screens: opening, reading again ---- */

static void load_audit_first(struct console *c, struct view *v)
{
	load_audit(c, v, false);
}

/* How each screen reads its data; the others are made from the view
 * below them. */
static void (*const loaders[SC__COUNT])(struct console *c, struct view *v) = {
	[SC_STREAMS] = load_streams,       [SC_EVENTS] = load_events,
	[SC_AUDIT] = load_audit_first,     [SC_DEAD] = load_dead,
	[SC_PROJECTION] = load_projection,
};

static void load_view(struct console *c, struct view *v)
{
	if (loaders[v->kind])
		loaders[v->kind](c, v);
}

static void load_top(struct console *c)
{
	struct view *v = top_view(c);

	if (!v->loading)
		load_view(c, v);
}

static void open_top(struct console *c, enum screen_kind kind)
{
	while (c->depth > 0)
		pop_view(c);
	if (c->views[0].kind == kind && c->views[0].title)
		return;
	view_free(&c->views[0]);
	c->depth = -1;
	push_view(c, kind, screens[kind].name);
	clear_message(c);
	load_top(c);
}

/* ---- drawing ---- */

enum { PAIR_BAD = 1, PAIR_HEAD };

static int tone_attr(const struct console *c, enum tone t)
{
	switch (t) {
	case TONE_BAD: return (int)(c->color ? COLOR_PAIR(PAIR_BAD) | A_BOLD : A_BOLD);
	case TONE_HEAD: return (int)A_BOLD;
	default: return (int)A_NORMAL;
	}
}

/* Display columns of one character (a control or unprintable is one "?"). */
static int char_width(wchar_t wc)
{
	int w = wcwidth(wc);

	return w < 0 ? 1 : w;
}

/* Writes escaped text at (y, x), skipping its first `skip` display
 * columns, in at most width columns, padding with spaces.  When the text
 * goes on past the right edge the last column shows a continuation mark,
 * and when columns were skipped the first does. */
static void put(int y, int x, int width, const char *s, size_t skip)
{
	bool utf8 = MB_CUR_MAX > 1;
	const wchar_t more = utf8 ? L'\u00bb' : L'>', less = utf8 ? L'\u00ab' : L'<';
	mbstate_t ms;
	int used = 0;
	size_t col = 0;

	if (width <= 0)
		return;
	memset(&ms, 0, sizeof ms);
	move(y, x);
	while (*s) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, strlen(s), &ms);
		int w;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&ms, 0, sizeof ms);
			wc = L'?';
			n = 1;
		}
		if (wcwidth(wc) < 0)
			wc = L'?';
		w = char_width(wc);
		if (col < skip) {
			col += (size_t)w;
			s += n;
			continue;
		}
		if (used == 0 && skip > 0) {
			addnwstr(&less, 1);
			used = 1;
			col++;
			s += n;
			continue;
		}
		if (used + w > width || (used + w == width && s[n])) {
			/* The line goes on: mark the last column. */
			for (; used < width - 1; used++)
				addch(' ');
			addnwstr(&more, 1);
			return;
		}
		addnwstr(&wc, 1);
		used += w;
		col += (size_t)w;
		s += n;
	}
	for (; used < width; used++)
		addch(' ');
}

static int content_rows(const struct console *c)
{
	/* Title, column heads; a rebuild's progress, status, message, hints. */
	int n = LINES - 5 - (c->rb.running ? 1 : 0);

	return n > 0 ? n : 0;
}

static void draw_view(struct console *c, struct view *v, int rows)
{
	bool list = screens[v->kind].list;
	size_t n = list ? v->nshown : v->count;

	if (list) {
		if (v->sel < v->top)
			v->top = v->sel;
		if (rows > 0 && v->sel >= v->top + (size_t)rows)
			v->top = v->sel - (size_t)rows + 1;
	}
	if (screens[v->kind].columns) {
		attron(A_BOLD | A_UNDERLINE);
		put(1, 0, COLS, screens[v->kind].columns, 0);
		attroff(A_BOLD | A_UNDERLINE);
	}
	for (int r = 0; r < rows && v->top + (size_t)r < n; r++) {
		size_t i = v->top + (size_t)r;
		size_t line = list ? v->shown[i] : i;
		int attr = tone_attr(c, (enum tone)v->tones[line]);

		if (list && i == v->sel)
			attr = A_REVERSE;
		else if (!list && v->filter[0] && matches(v, line))
			attr |= A_REVERSE;
		attron(attr);
		put(2 + r, 0, COLS, v->lines[line], list ? 0 : v->col);
		attroff(attr);
	}
	if (n == 0 && rows > 0)
		put(2, 0, COLS,
		    v->loading || !v->loaded ? "reading..."
		    : v->filter[0]           ? "(nothing matches the filter)"
					     : "(none)",
		    0);
}

struct key_row;
static char *hints(const struct console *c, int width);

/* Whether the message line shows that the operator waits on the worker
 * (and so that Esc stops waiting): what, for how long, how many behind. */
static bool waiting_shown(struct console *c, const char **what, long *ms, size_t *queued)
{
	return pv_cw_busy(c->worker, what, ms, queued) && *ms >= WAIT_SHOW_MS &&
	       (c->awaited || (top_view(c)->loading && !top_view(c)->loaded));
}

/* The message line: a prompt, what the console waits for, or the last
 * result. */
static void draw_message(struct console *c, int y)
{
	const char *what;
	long ms;
	size_t queued;
	char *line = NULL;
	int attr = A_NORMAL;

	if (c->prompt == PROMPT_CONFIRM) {
		line = pv_xstrdup(c->confirm_text);
		attr = A_BOLD;
	} else if (c->prompt != PROMPT_NONE) {
		char *typed = escaped(c->typed);

		line = pv_xasprintf("%s%s_",
				    c->prompt == PROMPT_FILTER ? "/" : "audit filter: ", typed);
		free(typed);
	} else if (waiting_shown(c, &what, &ms, &queued)) {
		/* The way out first, so that a narrow screen still shows it. */
		line = pv_xasprintf("[Esc: stop waiting] %.1f s for %s%s", ms / 1000.0, what,
				    queued ? ", more queued" : "");
		attr = tone_attr(c, TONE_BAD);
	} else if (c->message) {
		line = pv_xstrdup(c->message);
		attr = c->message_bad ? tone_attr(c, TONE_BAD) : tone_attr(c, TONE_PLAIN);
	}
	attron(attr);
	put(y, 0, COLS, line ? line : "", 0);
	attroff(attr);
	free(line);
}

/* The pipeline's status line, and how long its reading has taken when
 * that is long (the figures shown are then the last ones read). */
static void draw_status(struct console *c, int y)
{
	const char *what;
	long ms;
	size_t queued;
	int attr = c->status_bad ? tone_attr(c, TONE_BAD) : tone_attr(c, TONE_PLAIN);
	char *line;

	if (pv_cw_busy(c->status_worker, &what, &ms, &queued) && ms >= STATUS_SLOW_MS) {
		line = pv_xasprintf("[status: reading for %.0f s] %s", ms / 1000.0,
				    c->status ? c->status : "");
		attr = tone_attr(c, TONE_BAD);
	} else {
		line = pv_xstrdup(c->status ? c->status : "reading status...");
	}
	attron(attr);
	put(y, 0, COLS, line, 0);
	attroff(attr);
	free(line);
}

static void draw(struct console *c)
{
	struct view *v = top_view(c);
	int rows = content_rows(c);
	char *title, *h;

	erase();
	if (LINES < 1 || COLS < 1)
		return;
	title = pv_xasprintf("photovote-admin  %s%s%s", v->title ? v->title : "",
			     screens[v->kind].list && v->filter[0] ? "  /" : "",
			     screens[v->kind].list ? v->filter : "");
	attron(A_REVERSE);
	put(0, 0, COLS, title, 0);
	attroff(A_REVERSE);
	free(title);
	draw_view(c, v, rows);
	if (c->rb.running && LINES >= 5) {
		char *line = rebuild_line(c, COLS);

		attron(A_BOLD);
		put(LINES - 4, 0, COLS, line, 0);
		attroff(A_BOLD);
		free(line);
	}
	if (LINES >= 4)
		draw_status(c, LINES - 3);
	if (LINES >= 3)
		draw_message(c, LINES - 2);
	if (LINES >= 2) {
		h = hints(c, COLS);
		attron(A_REVERSE);
		put(LINES - 1, 0, COLS, h, 0);
		attroff(A_REVERSE);
		free(h);
	}
	refresh();
}

/* ---- keys ---- */

static void move_by(struct console *c, long delta)
{
	struct view *v = top_view(c);

	if (screens[v->kind].list) {
		long last = v->nshown ? (long)v->nshown - 1 : 0, to = (long)v->sel + delta;

		v->sel = (size_t)(to < 0 ? 0 : to > last ? last : to);
		/* The audit log pages on: at its end, read the next page. */
		if (v->kind == SC_AUDIT && v->audit_more && !v->loading && v->nshown &&
		    v->sel == v->nshown - 1 && delta > 0)
			load_audit(c, v, true);
	} else {
		long rows = content_rows(c) > 0 ? content_rows(c) : 1;
		long last = (long)v->count > rows ? (long)v->count - rows : 0;
		long to = (long)v->top + delta;

		v->top = (size_t)(to < 0 ? 0 : to > last ? last : to);
	}
}

static long page(const struct console *c)
{
	return content_rows(c) > 1 ? content_rows(c) - 1 : 1;
}

static void k_up(struct console *c)
{
	move_by(c, -1);
}
static void k_down(struct console *c)
{
	move_by(c, 1);
}
static void k_pgup(struct console *c)
{
	move_by(c, -page(c));
}
static void k_pgdn(struct console *c)
{
	move_by(c, page(c));
}
static void k_home(struct console *c)
{
	move_by(c, -(long)top_view(c)->count - 1);
}
static void k_end(struct console *c)
{
	move_by(c, (long)top_view(c)->count + 1);
}

static void k_left(struct console *c)
{
	struct view *v = top_view(c);
	size_t step = (size_t)(COLS / 2 > 1 ? COLS / 2 : 1);

	v->col = v->col > step ? v->col - step : 0;
}

static void k_right(struct console *c)
{
	top_view(c)->col += (size_t)(COLS / 2 > 1 ? COLS / 2 : 1);
}

static void answers(struct console *c, struct pv_cw *w);

/* Esc while the operator waits on a read that hangs: that worker is given
 * up (console_worker.h) and a new one, on a new session, takes the jobs
 * queued behind it, so the next screen does not wait for the hung server's
 * timeout.  False when the worker is kept (an action, too many given up
 * already, or no new worker). */
static bool abandon_worker(struct console *c, const char *what, long ms)
{
	struct pv_session *fresh = pv_session_twin(c->s);
	struct pv_cw *next;
	struct pv_cw_job *queued, *job;
	struct pv_error err;

	next = pv_cw_start(fresh, &err);
	if (!next) {
		pv_session_free(fresh);
		return false;
	}
	answers(c, c->worker);
	if (!pv_cw_abandon(c->worker, ABANDONED_MAX, release_job, pv_session_free, &queued)) {
		pv_cw_stop(next, STOP_WAIT_MS, release_job);
		pv_session_free(fresh);
		return false;
	}
	c->worker = next;
	c->session = fresh;
	while ((job = queued)) {
		queued = job->next;
		pv_cw_submit(next, job);
	}
	set_message(c, false, "stopped waiting for %s after %.1f s (left to time out)", what,
		    ms / 1000.0);
	return true;
}

/* Esc, q: back one screen; from a top screen q quits (see key()). */
static void k_back(struct console *c)
{
	struct view *v = top_view(c);
	const char *what;
	long ms;
	size_t queued;

	if (!c->awaited && waiting_shown(c, &what, &ms, &queued) && abandon_worker(c, what, ms)) {
		if (c->depth == 0)
			v->gen = ++c->next_gen; /* its answer went with the old worker */
		v->loading = false;
		pop_view(c);
		return;
	}
	if (c->awaited) {
		/* The action goes on in the worker; its result still shows. */
		set_message(c, false, "stopped waiting for %s; its result shows when it ends",
			    c->awaited->base.what);
		c->awaited = NULL;
	} else if (c->depth == 0 && v->loading) {
		v->gen = ++c->next_gen; /* drop the answer */
		v->loading = false;
		set_message(c, false, "stopped waiting");
	}
	pop_view(c);
}

static void k_enter(struct console *c)
{
	struct view *v = top_view(c);
	size_t i = selected(v);
	struct view *n;

	if (i == (size_t)-1)
		return;
	switch (v->kind) {
	case SC_STREAMS: {
		char *name = escaped(v->refs[i]);

		n = push_view(c, SC_EVENTS, name);
		free(name);
		if (n) {
			n->stream = pv_xstrdup(v->refs[i]);
			load_top(c);
		}
		break;
	}
	case SC_EVENTS: open_event(c, v, (size_t)strtoul(v->refs[i], NULL, 10)); break;
	case SC_AUDIT: open_audit_row(c, v, i); break;
	case SC_DEAD: open_dead_letter(c, v, i); break;
	default: break;
	}
}

static void k_reload(struct console *c)
{
	load_top(c);
	load_status(c);
	clear();
}

static void k_sort(struct console *c)
{
	c->sort = (enum sort)((c->sort + 1) % SORT__COUNT);
	set_message(c, false, "streams sorted by %s", sort_names[c->sort]);
	load_top(c);
}

static void k_filter(struct console *c)
{
	struct view *v = top_view(c);

	c->prompt = PROMPT_FILTER;
	snprintf(c->typed, sizeof c->typed, "%s", v->filter);
}

static void k_audit_filter(struct console *c)
{
	struct view *v = top_view(c);

	c->prompt = PROMPT_AUDIT;
	snprintf(c->typed, sizeof c->typed, "%s", v->audit_filter ? v->audit_filter : "");
}

/* n / N: the next or previous line that matches the filter. */
static void match_step(struct console *c, int dir)
{
	struct view *v = top_view(c);
	size_t n = screens[v->kind].list ? v->nshown : v->count;
	size_t from = screens[v->kind].list ? v->sel : v->top;

	if (!v->filter[0]) {
		set_message(c, false, "no filter: / sets one");
		return;
	}
	for (size_t k = 1; k <= n; k++) {
		size_t i = (from + n + (size_t)dir * k) % n;
		size_t line = screens[v->kind].list ? v->shown[i] : i;

		if (matches(v, line)) {
			if (screens[v->kind].list)
				v->sel = i;
			else
				move_by(c, (long)i - (long)v->top);
			return;
		}
	}
	set_message(c, false, "no line matches");
}

static void k_next(struct console *c)
{
	match_step(c, 1);
}
static void k_prev(struct console *c)
{
	match_step(c, -1);
}
static void k_streams(struct console *c)
{
	open_top(c, SC_STREAMS);
}
static void k_audit(struct console *c)
{
	open_top(c, SC_AUDIT);
}
static void k_dead(struct console *c)
{
	open_top(c, SC_DEAD);
}
static void k_projection(struct console *c)
{
	open_top(c, SC_PROJECTION);
}
static void k_requeue_one(struct console *c)
{
	ask_dead_act(c, PV_DL_REQUEUE, false);
}
static void k_requeue_all(struct console *c)
{
	ask_dead_act(c, PV_DL_REQUEUE, true);
}
static void k_purge_one(struct console *c)
{
	ask_dead_act(c, PV_DL_PURGE, false);
}
static void k_purge_all(struct console *c)
{
	ask_dead_act(c, PV_DL_PURGE, true);
}
static void k_help(struct console *c);

#define ON(s) (1u << (s))
#define LISTS (ON(SC_STREAMS) | ON(SC_EVENTS) | ON(SC_AUDIT) | ON(SC_DEAD))
#define DETAILS                                                                                    \
	(ON(SC_EVENT) | ON(SC_AUDIT_ROW) | ON(SC_DEAD_ONE) | ON(SC_PROJECTION) | ON(SC_HELP))
#define ALL ((1u << SC__COUNT) - 1)
#define CTRL(ch) ((ch)&0x1f)
#define KEY_ESC 27

struct key_row {
	int keys[5];       /* 0 ends */
	const char *names; /* as the help shows them */
	const char *hint;  /* on the bottom line, or NULL */
	unsigned on;       /* the screens where it works */
	const char *help;
	void (*act)(struct console *c);
};

/* First match wins: per-screen rows come before the common ones that
 * share a key. */
static const struct key_row keys[] = {
	{{KEY_LEFT, 'h'}, "Left h", NULL, DETAILS & ~ON(SC_HELP), "scroll left", k_left},
	{{KEY_RIGHT, 'l'},
	 "Right l",
	 NULL,
	 DETAILS & ~ON(SC_HELP),
	 "scroll right (a line that goes on ends in \u00bb)",
	 k_right},
	{{KEY_UP, 'k'}, "Up k", NULL, ALL, "up one line", k_up},
	{{KEY_DOWN, 'j'}, "Down j", NULL, ALL, "down one line", k_down},
	{{KEY_PPAGE, CTRL('b')}, "PgUp ^B", NULL, ALL, "up one page", k_pgup},
	{{KEY_NPAGE, ' ', CTRL('f')}, "PgDn Space ^F", NULL, ALL, "down one page", k_pgdn},
	{{KEY_HOME, 'g', '<'}, "Home g <", NULL, ALL, "to the first line", k_home},
	{{KEY_END, 'G', '>'}, "End G >", NULL, ALL, "to the last line", k_end},
	{{'\n', '\r', KEY_ENTER, KEY_RIGHT},
	 "Enter Right",
	 "Enter:open",
	 ON(SC_STREAMS) | ON(SC_EVENTS) | ON(SC_AUDIT) | ON(SC_DEAD),
	 "open the selected line",
	 k_enter},
	{{'r'},
	 "r",
	 "r:rebuild",
	 ON(SC_STREAMS) | ON(SC_EVENTS) | ON(SC_EVENT),
	 "rebuild the election's documents by replaying its stream (Esc cancels)",
	 rebuild},
	{{'R'},
	 "R",
	 "R:all",
	 ON(SC_STREAMS) | ON(SC_PROJECTION),
	 "rebuild every election (Esc cancels; R again resumes where it stopped)",
	 rebuild_all},
	{{'B'},
	 "B",
	 "B:new",
	 ON(SC_PROJECTION),
	 "blue-green: build every election into a new container while the reads stay on the "
	 "active one (asks first; Esc cancels, B again goes on with it)",
	 k_green},
	{{'S'},
	 "S",
	 "S:switch",
	 ON(SC_PROJECTION),
	 "blue-green: switch the API's reads and the projector to the newest ready container "
	 "(asks first)",
	 k_switch},
	{{'D'},
	 "D",
	 "D:drop",
	 ON(SC_PROJECTION),
	 "blue-green: delete the newest retired container and its documents (asks first)",
	 k_drop},
	{{'s'}, "s", "s:sort", ON(SC_STREAMS), "sort by name, by last activity, by size", k_sort},
	{{'f'},
	 "f",
	 "f:where",
	 ON(SC_AUDIT),
	 "filter the audit log: user= election= type= status= correlation= since= until= event=",
	 k_audit_filter},
	{{'r'},
	 "r",
	 "r:requeue",
	 ON(SC_DEAD) | ON(SC_DEAD_ONE),
	 "requeue the selected dead letter (asks first)",
	 k_requeue_one},
	{{'R'},
	 "R",
	 "R:all",
	 ON(SC_DEAD),
	 "requeue all dead letters (asks first, naming how many)",
	 k_requeue_all},
	{{'p'},
	 "p",
	 "p:purge",
	 ON(SC_DEAD) | ON(SC_DEAD_ONE),
	 "delete the selected dead letter for good (asks first)",
	 k_purge_one},
	{{'P'},
	 "P",
	 "P:all",
	 ON(SC_DEAD),
	 "delete all dead letters for good (asks first, naming how many)",
	 k_purge_all},
	{{'/'},
	 "/",
	 "/:filter",
	 LISTS,
	 "filter the list as you type (Enter keeps it, Esc clears it)",
	 k_filter},
	{{'/'}, "/", "/:search", DETAILS, "search: lines that match are marked", k_filter},
	{{'n'}, "n", NULL, ALL, "next match", k_next},
	{{'N'}, "N", NULL, ALL, "previous match", k_prev},
	{{CTRL('l'), KEY_F(5)}, "^L F5", NULL, ALL, "read the screen again", k_reload},
	{{'1'}, "1", NULL, ALL, "streams", k_streams},
	{{'2'}, "2", NULL, ALL, "audit log", k_audit},
	{{'3'}, "3", NULL, ALL, "dead letters", k_dead},
	{{'4'}, "4", NULL, ALL, "projection", k_projection},
	{{'?', KEY_F(1)}, "? F1", "?:help", ALL & ~ON(SC_HELP), "this help", k_help},
	{{KEY_ESC, KEY_BACKSPACE, 127, KEY_LEFT, 'h'},
	 "Esc Bksp Left h",
	 "Esc:back",
	 ALL,
	 "back; stops waiting for a slow server (Esc: cancels a rebuild first)",
	 k_back},
	{{'q'}, "q", "q:quit", ALL, "back; quits from screens 1-4", NULL},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key_row *find_key(enum screen_kind kind, int ch)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].on & ON(kind))
			for (size_t k = 0; k < 5 && keys[i].keys[k]; k++)
				if (keys[i].keys[k] == ch)
					return &keys[i];
	return NULL;
}

/* The bottom line: the screen's hints that fit in width, "1-4" last. */
static char *hints(const struct console *c, int width)
{
	static const char tail[] = "1-4:screens";
	struct pv_buf b = PV_BUF_INIT;
	const struct view *v = &c->views[c->depth];

	if (c->prompt == PROMPT_CONFIRM)
		return pv_xstrdup("y:yes  any other key:no");
	if (c->prompt != PROMPT_NONE)
		return pv_xstrdup("Enter:keep  Esc:clear  Bksp:erase");
	if (!c->rb.cancel && running_kind(c) && running_kind(c)->cancelling)
		pv_buf_printf(&b, "Esc:cancel %s  ", c->rb.kind->doing);
	for (size_t i = 0; i < NKEYS; i++) {
		const char *h = keys[i].hint;

		if (!h || !(keys[i].on & ON(v->kind)))
			continue;
		if ((int)(b.len + strlen(h) + 2 + sizeof tail) > width)
			break;
		pv_buf_printf(&b, "%s  ", h);
	}
	pv_buf_puts(&b, tail);
	return pv_buf_steal(&b);
}

static void k_help(struct console *c)
{
	enum screen_kind from = top_view(c)->kind;
	struct view *v;
	char *title = pv_xasprintf("Help: %s", screens[from].name);

	v = push_view(c, SC_HELP, title);
	free(title);
	if (!v)
		return;
	v->loaded = true;
	view_addf(v, TONE_HEAD, "Keys on the %s screen:", screens[from].name);
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].on & ON(from))
			view_addf(v, TONE_PLAIN, "  %-16s %s", keys[i].names, keys[i].help);
	view_addf(v, TONE_PLAIN, " ");
	view_addf(v, TONE_PLAIN,
		  "The line above the hints shows results, errors, and what the"
		  " console waits for.");
	view_addf(v, TONE_PLAIN,
		  "Text from events, audit rows and messages is shown escaped"
		  " (\\xNN, \\u{HHHH}).");
	view_refilter(v);
}

/* A key while a line is being typed. */
static void prompt_key(struct console *c, int ch)
{
	struct view *v = top_view(c);
	size_t len = strlen(c->typed);

	if (c->prompt == PROMPT_CONFIRM) {
		struct job *j = c->confirm;

		c->confirm = NULL;
		c->prompt = PROMPT_NONE;
		if ((ch == 'y' || ch == 'Y') && j->rb_kind != RB_NONE) {
			set_message(c, false, "%s ...", j->base.what);
			start_rebuild_job(c, j);
		} else if (ch == 'y' || ch == 'Y') {
			set_message(c, false, "%s ...", j->base.what);
			submit_action(c, j);
		} else {
			set_message(c, false, "nothing done");
			job_free(j);
		}
		return;
	}
	if (ch == KEY_ESC) {
		c->typed[0] = '\0';
		if (c->prompt == PROMPT_FILTER) {
			v->filter[0] = '\0';
			view_refilter(v);
		}
		c->prompt = PROMPT_NONE;
		return;
	}
	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		if (c->prompt == PROMPT_AUDIT) {
			free(v->audit_filter);
			v->audit_filter = c->typed[0] ? pv_xstrdup(c->typed) : NULL;
			v->gen = ++c->next_gen;
			v->loading = false;
			load_audit(c, v, false);
		} else if (!screens[v->kind].list && v->filter[0]) {
			match_step(c, 1);
		}
		c->prompt = PROMPT_NONE;
		return;
	}
	if (ch == KEY_BACKSPACE || ch == 127 || ch == CTRL('h')) {
		if (len)
			c->typed[len - 1] = '\0';
	} else if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof c->typed) {
		c->typed[len] = (char)ch;
		c->typed[len + 1] = '\0';
	} else {
		return;
	}
	if (c->prompt == PROMPT_FILTER) {
		snprintf(v->filter, sizeof v->filter, "%s", c->typed);
		view_refilter(v);
	}
}

/* One key; false to quit. */
static bool key(struct console *c, int ch)
{
	const struct key_row *row;

	if (ch == KEY_RESIZE) {
		clear();
		return true;
	}
	if (c->prompt != PROMPT_NONE) {
		prompt_key(c, ch);
		return true;
	}
	if (ch == KEY_ESC && cancel_rebuild(c))
		return true;
	row = find_key(top_view(c)->kind, ch);
	if (!row)
		return true;
	if (!row->act) { /* q */
		if (c->depth == 0)
			return false;
		pop_view(c);
		return true;
	}
	row->act(c);
	return true;
}

/* Raw Home/End sequences that terminals send whatever their terminfo
 * entry says (xterm's normal and application modes, the VT220 keypad of
 * screen, tmux, linux and PuTTY, rxvt's): all Home or End. */
static void define_raw_keys(void)
{
	static const struct {
		const char *seq;
		int key;
	} raw[] = {
		{"\033[1~", KEY_HOME}, {"\033[7~", KEY_HOME}, {"\033[H", KEY_HOME},
		{"\033OH", KEY_HOME},  {"\033[4~", KEY_END},  {"\033[8~", KEY_END},
		{"\033[F", KEY_END},   {"\033OF", KEY_END},
	};

	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
		define_key(raw[i].seq, raw[i].key);
}

/* ---- the loop ---- */

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Work that is due: the status line, a live screen. */
static void timers(struct console *c)
{
	struct view *v = top_view(c);

	if (!c->status_loading && seconds_since(&c->status_at) >= LIVE_SECONDS) {
		load_status(c);
		clock_gettime(CLOCK_MONOTONIC, &c->status_at);
	}
	if (screens[v->kind].live && !v->loading && seconds_since(&c->live_at) >= LIVE_SECONDS) {
		load_view(c, v);
		clock_gettime(CLOCK_MONOTONIC, &c->live_at);
	}
}

static void answers(struct console *c, struct pv_cw *w)
{
	struct pv_cw_job *base;

	while ((base = pv_cw_take(w))) {
		struct job *j = (struct job *)base;

		if (c->awaited == j)
			c->awaited = NULL;
		j->done(c, j);
		job_free(j);
	}
}

/* Stops *w (if started) within ms, then frees *s (its own session, when
 * s is given); false when it is still inside a server call. */
static bool stop_worker(struct pv_cw **w, struct pv_session **s, long ms)
{
	if (*w && !pv_cw_stop(*w, ms, release_job))
		return false;
	*w = NULL;
	if (s) {
		pv_session_free(*s);
		*s = NULL;
	}
	return true;
}

/* Stops the workers; false when one is still inside a server call.  A
 * rebuild is cancelled first; one cut short in an election is safe (the
 * head document is its commit point) and resumes (rebuild.h). */
static bool stop_workers(struct console *c)
{
	bool ok;

	if (c->rb.running)
		c->rb.cancel = 1;
	ok = stop_worker(&c->rebuild_worker, &c->rebuild_session, STOP_WAIT_MS);
	ok = stop_worker(&c->status_worker, &c->status_session, ok ? STOP_WAIT_MS : 0) && ok;
	ok = stop_worker(&c->worker, &c->session, ok ? STOP_WAIT_MS : 0) && ok;
	return ok;
}

static void setup_colors(struct console *c)
{
	const char *no = getenv("NO_COLOR");

	/* https://no-color.org: set and not empty means no colour. */
	c->color = !(no && *no) && has_colors();
	if (!c->color)
		return;
	start_color();
	use_default_colors();
	/* Red on the terminal's own background reads on light and dark ones. */
	init_pair(PAIR_BAD, COLOR_RED, -1);
}

static void handle_signals(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT};
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
		sigaction(stops[i], &sa, NULL);
	sa.sa_handler = on_fatal;
	for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
		sigaction(fatal[i], &sa, NULL);
}

int pv_console_run(struct pv_session *s, int argc, char **argv)
{
	struct console c = {.s = s};
	struct pv_error err;
	int rc = PV_EXIT_OK;

	if (argc > 1)
		return pv_cli_usage_error("console: unexpected argument \"%s\"", argv[1]);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return pv_cli_usage_error("console: standard input and output must be a terminal");
	setlocale(LC_ALL, "");
	/* Warnings from the libraries (a rebuild's refused events) must not
	 * scribble over the screen. */
	pv_log_init("photovote-admin", PV_LOG_SYSLOG, pv_log_get_level());
	pthread_mutex_init(&c.rb.lock, NULL);
	c.session = pv_session_twin(s);
	c.status_session = pv_session_twin(s);
	c.rebuild_session = pv_session_twin(s);
	c.worker = pv_cw_start(c.session, &err);
	if (c.worker)
		c.status_worker = pv_cw_start(c.status_session, &err);
	if (c.status_worker)
		c.rebuild_worker = pv_cw_start(c.rebuild_session, &err);
	if (!c.rebuild_worker) {
		fprintf(stderr, "photovote-admin: %s\n", err.msg);
		if (stop_workers(&c)) {
			pv_session_free(c.status_session);
			pv_session_free(c.rebuild_session);
		}
		return PV_EXIT_SERVER;
	}
	c.rb.wake_fd = pv_cw_wake_fd(c.rebuild_worker);
	/* The rebuild worker is never given up (abandon_worker), so its pipe
	 * stays open for the signal handlers. */
	wake_fd = c.rb.wake_fd;
	handle_signals();
	pv_xalloc_set_fatal_hook(restore_terminal);
	set_escdelay(ESC_DELAY_MS);
	if (!initscr())
		return pv_cli_usage_error("console: cannot initialise the terminal");
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	define_raw_keys();
	setup_colors(&c);
	c.depth = -1;
	push_view(&c, SC_STREAMS, "Streams");
	load_top(&c);
	load_status(&c);
	clock_gettime(CLOCK_MONOTONIC, &c.status_at);
	clock_gettime(CLOCK_MONOTONIC, &c.live_at);
	while (!stop_signal) {
		struct pollfd fds[4] = {{.fd = STDIN_FILENO, .events = POLLIN},
					{.fd = pv_cw_fd(c.worker), .events = POLLIN},
					{.fd = pv_cw_fd(c.status_worker), .events = POLLIN},
					{.fd = pv_cw_fd(c.rebuild_worker), .events = POLLIN}};
		bool quit = false;
		int ch;

		draw(&c);
		if (poll(fds, 4, TICK_MS) < 0 && errno != EINTR)
			break;
		answers(&c, c.worker);
		answers(&c, c.status_worker);
		/* Progress wakes it too: that is a redraw. */
		answers(&c, c.rebuild_worker);
		/* Every key that is there, so none waits behind a redraw. */
		while (!quit && !stop_signal && (ch = getch()) != ERR)
			quit = !key(&c, ch);
		if (quit)
			break;
		timers(&c);
	}
	if (stop_signal)
		rc = 128 + stop_signal;
	/* Keys typed ahead are the console's, not the shell's. */
	flushinp();
	restore_terminal();
	pv_xalloc_set_fatal_hook(NULL);
	wake_fd = -1;
	if (c.rb.running)
		fprintf(stderr, "photovote-admin: console: the rebuild was cancelled; run it again "
				"to resume\n");
	if (!stop_workers(&c) || pv_cw_abandoned() > 0)
		/* Inside a server call that cannot be interrupted; the session
		 * is the worker's until it returns (an abandoned one's borrows
		 * s's configuration). */
		_exit(rc);
	for (int i = 0; i < DEPTH_MAX; i++)
		view_free(&c.views[i]);
	job_free(c.confirm);
	free(c.confirm_text);
	free(c.active);
	free(c.green);
	free(c.retired);
	free(c.building);
	free(c.message);
	free(c.status);
	free(c.rb.failure);
	pthread_mutex_destroy(&c.rb.lock);
	return rc;
}
