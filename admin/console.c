/* photovote-admin's console (ncurses).
 *
 * Design
 *   - Three views on a stack: the streams, the events of one stream, one
 *     event.  Enter goes one deeper, Esc / Backspace / Left one back, q
 *     quits from anywhere.  r rebuilds the election of the selected (or
 *     shown) stream; Ctrl-L / F5 reads the view again.
 *   - Each view is a list of display lines made once when its data is read
 *     (already escaped, escape.h); drawing cuts them to the screen's width
 *     by display columns.  The whole screen is drawn from the views every
 *     time, so a resize (KEY_RESIZE) is only a redraw.
 *   - getch() waits at most TICK_MS; every STATUS_SECONDS the status line
 *     is read again (pv_session_status).  Reading blocks the screen while a
 *     server is slow; the configured timeouts bound it.
 *   - The terminal is restored on every way out: q, SIGINT/SIGTERM/SIGHUP
 *     (a flag the loop looks at), running out of memory (the xalloc fatal
 *     hook) and fatal signals (endwin, then the default action).
 *   - Library warnings go to syslog while the screen is ours. */
/* _XOPEN_SOURCE comes from NCURSES_CFLAGS (wide-character curses). */

#include "cli.h"

#include "escape.h"
#include "id.h"
#include "log.h"
#include "projection.h"
#include "xalloc.h"

#include <curses.h>
#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define TICK_MS 200
#define STATUS_SECONDS 2
#define EVENTS_PAGE 500
#define EVENTS_MAX 100000 /* shown of one stream; the rest is for the CLI */

enum view_kind { VIEW_STREAMS, VIEW_EVENTS, VIEW_EVENT };

struct view {
	enum view_kind kind;
	char *title;  /* escaped */
	char **lines; /* escaped display lines */
	size_t count, cap, sel, top;
	/* What the lines stand for. */
	char **names;            /* VIEW_STREAMS: raw stream names */
	struct pv_es_event *evs; /* VIEW_EVENTS: the events, owned */
	char *stream;            /* VIEW_EVENTS, VIEW_EVENT: raw stream name */
};

struct console {
	struct pv_session *s;
	struct view views[3];
	int depth;     /* views[depth] is shown */
	char *message; /* escaped; errors and results */
	char *status;  /* escaped status line */
	struct timespec status_at;
	bool status_due;
};

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
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

/* ---- views ---- */

static void view_add(struct view *v, char *line)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 64;
		v->lines = pv_xreallocarray(v->lines, v->cap, sizeof *v->lines);
	}
	v->lines[v->count++] = line;
}

static void view_clear(struct view *v)
{
	for (size_t i = 0; i < v->count; i++) {
		free(v->lines[i]);
		if (v->names)
			free(v->names[i]);
	}
	free(v->lines);
	free(v->names);
	if (v->evs) {
		struct pv_es_page page = {.events = v->evs, .count = v->count};

		pv_es_page_clear(&page);
	}
	free(v->title);
	free(v->stream);
	memset(v, 0, sizeof *v);
}

static void set_message(struct console *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_message(struct console *c, const char *fmt, ...)
{
	va_list ap;
	char *raw;

	va_start(ap, fmt);
	raw = pv_xvasprintf(fmt, ap);
	va_end(ap);
	free(c->message);
	c->message = pv_escape_str(raw);
	free(raw);
}

static int by_name(const void *a, const void *b)
{
	const struct pv_es_stream_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void load_streams(struct console *c)
{
	struct view *v = &c->views[0];
	struct pv_es_stream_list list = {0};
	char *keep = v->names && v->sel < v->count ? pv_xstrdup(v->names[v->sel]) : NULL;
	struct pv_error err;
	struct pv_es *es = NULL;
	enum pv_err rc = pv_session_es(c->s, &es, &err);

	if (rc == PV_OK && (rc = pv_es_list_streams(es, NULL, &list, &err)) != PV_OK)
		pv_session_es_failed(c->s, &err);
	if (rc != PV_OK) {
		set_message(c, "streams: %s", err.msg);
		free(keep);
		return;
	}
	view_clear(v);
	v->kind = VIEW_STREAMS;
	qsort(list.streams, list.count, sizeof *list.streams, by_name);
	v->names = pv_xcalloc(list.count ? list.count : 1, sizeof *v->names);
	for (size_t i = 0; i < list.count; i++) {
		char *name = pv_escape_str(list.streams[i].name);

		v->names[v->count] = pv_xstrdup(list.streams[i].name);
		if (keep && strcmp(keep, list.streams[i].name) == 0)
			v->sel = v->count;
		view_add(v, pv_xasprintf("%8" PRId64 "  %s", list.streams[i].version, name));
		free(name);
	}
	v->title = pv_xasprintf("Streams (%zu)", list.count);
	pv_es_stream_list_clear(&list);
	free(keep);
}

/* The events of `stream` into views[1]; false (with a message) on error. */
static bool load_events(struct console *c, const char *stream)
{
	struct view *v = &c->views[1];
	struct pv_es_event *evs = NULL;
	size_t n = 0, cap = 0;
	struct pv_error err;
	struct pv_es *es = NULL;
	int64_t from = 0;
	char *name;

	if (pv_session_es(c->s, &es, &err) != PV_OK) {
		set_message(c, "events: %s", err.msg);
		return false;
	}
	while (n < EVENTS_MAX) {
		struct pv_es_page page = {0};
		bool end;

		if (pv_es_read_stream(es, stream, from, EVENTS_PAGE, false, &page, &err) != PV_OK) {
			struct pv_es_page all = {.events = evs, .count = n};

			pv_es_page_clear(&all);
			pv_session_es_failed(c->s, &err);
			set_message(c, "events: %s", err.msg);
			return false;
		}
		if (n + page.count > cap) {
			cap = (n + page.count) * 2;
			evs = pv_xreallocarray(evs, cap, sizeof *evs);
		}
		/* The page's events move into the view; only its array is freed. */
		if (page.count)
			memcpy(evs + n, page.events, page.count * sizeof *evs);
		n += page.count;
		end = page.count == 0 || page.end_of_stream;
		if (page.count)
			from = page.events[page.count - 1].number + 1;
		free(page.events);
		if (end)
			break;
	}
	view_clear(v);
	v->kind = VIEW_EVENTS;
	v->stream = pv_xstrdup(stream);
	for (size_t i = 0; i < n; i++) {
		char *type = pv_escape_str(evs[i].type), *created = pv_escape_str(evs[i].created);

		view_add(v, pv_xasprintf("%6" PRId64 "  %-28s  %-24s  %s", evs[i].number, type,
					 created, evs[i].id));
		free(type);
		free(created);
	}
	/* view_clear frees evs as one page of v->count events. */
	v->evs = evs;
	name = pv_escape_str(stream);
	v->title = pv_xasprintf("%s: %zu events%s", name, n, n >= EVENTS_MAX ? " (first)" : "");
	free(name);
	return true;
}

/* Adds each line of a JSON value, indented, escaped. */
static void add_json(struct view *v, const char *label, const json_t *j)
{
	char *text =
		j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
	char *line, *save = NULL;

	view_add(v, pv_xasprintf("%s:", label));
	if (!text) {
		view_add(v, pv_xstrdup("  null"));
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *e = pv_escape_str(line);

		view_add(v, pv_xasprintf("  %s", e));
		free(e);
	}
	free(text);
}

static void show_event(struct console *c, const struct pv_es_event *ev, const char *stream)
{
	struct view *v = &c->views[2];
	char *f[4] = {pv_escape_str(stream), pv_escape_str(ev->type), pv_escape_str(ev->created),
		      pv_escape_str(ev->id)};

	view_clear(v);
	v->kind = VIEW_EVENT;
	v->stream = pv_xstrdup(stream);
	v->title = pv_xasprintf("%s #%" PRId64, f[0], ev->number);
	view_add(v, pv_xasprintf("stream:   %s", f[0]));
	view_add(v, pv_xasprintf("number:   %" PRId64, ev->number));
	view_add(v, pv_xasprintf("type:     %s", f[1]));
	view_add(v, pv_xasprintf("id:       %s", f[3]));
	view_add(v, pv_xasprintf("created:  %s", f[2]));
	add_json(v, "data", ev->data);
	add_json(v, "metadata", ev->metadata);
	for (size_t i = 0; i < 4; i++)
		free(f[i]);
}

/* ---- status ---- */

static void read_status(struct console *c)
{
	struct pv_status st;
	struct pv_error err;
	struct pv_buf b = PV_BUF_INIT;
	char *raw;

	pv_session_status(c->s, &st, &err);
	if (st.broker_rc == PV_OK)
		pv_buf_printf(&b, "queue %lu (%lu consumers) | dead letters %lu", st.queue_ready,
			      st.queue_consumers, st.dead_letters);
	else
		pv_buf_printf(&b, "broker: %s", st.broker_err.msg);
	if (st.store_rc == PV_OK)
		pv_buf_printf(&b, " | head %" PRId64, st.head);
	else
		pv_buf_printf(&b, " | store: %s", st.store_err.msg);
	if (st.checkpoint_rc == PV_OK)
		pv_buf_printf(&b, " | checkpoint %" PRId64, st.checkpoint);
	else
		pv_buf_printf(&b, " | checkpoint: %s", st.checkpoint_err.msg);
	if (st.store_rc == PV_OK && st.checkpoint_rc == PV_OK)
		pv_buf_printf(&b, " | lag %lu%s", st.lag, st.lag_capped ? "+" : "");
	raw = pv_buf_steal(&b);
	free(c->status);
	c->status = pv_escape_str(raw);
	free(raw);
	clock_gettime(CLOCK_MONOTONIC, &c->status_at);
	c->status_due = false;
}

static bool status_stale(const struct console *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return c->status_due || now.tv_sec - c->status_at.tv_sec >= STATUS_SECONDS;
}

/* ---- drawing ---- */

/* Writes escaped text at (y, x), at most width columns, padding with
 * spaces.  Characters the locale cannot show become '?'. */
static void put(int y, int x, int width, const char *s)
{
	mbstate_t ms;
	int used = 0;

	memset(&ms, 0, sizeof ms);
	move(y, x);
	while (*s && used < width) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, strlen(s), &ms);
		int w;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&ms, 0, sizeof ms);
			addch('?');
			used++;
			s++;
			continue;
		}
		w = wcwidth(wc);
		if (w < 0) {
			addch('?');
			w = 1;
		} else if (used + w > width) {
			break;
		} else {
			addnwstr(&wc, 1);
		}
		used += w;
		s += n;
	}
	for (; used < width; used++)
		addch(' ');
}

static const char *const help[] = {
	[VIEW_STREAMS] = "Enter events  r rebuild  ^L reload  q quit",
	[VIEW_EVENTS] = "Enter detail  Esc back  r rebuild  ^L reload  q quit",
	[VIEW_EVENT] = "Esc back  r rebuild  q quit",
};

static void draw(struct console *c)
{
	struct view *v = &c->views[c->depth];
	int rows = LINES - 3, cols = COLS;
	char *title;

	erase();
	if (LINES < 1 || cols < 1)
		return;
	/* Keep the selection on the screen. */
	if (rows > 0) {
		if (v->sel < v->top)
			v->top = v->sel;
		if (v->sel >= v->top + (size_t)rows)
			v->top = v->sel - (size_t)rows + 1;
	}
	title = pv_xasprintf("photovote-admin  %s   %s", v->title ? v->title : "", help[v->kind]);
	attron(A_REVERSE);
	put(0, 0, cols, title);
	attroff(A_REVERSE);
	free(title);
	for (int r = 0; r < rows && v->top + (size_t)r < v->count; r++) {
		size_t i = v->top + (size_t)r;
		bool mark = v->kind != VIEW_EVENT && i == v->sel;

		if (mark)
			attron(A_REVERSE);
		put(1 + r, 0, cols, v->lines[i]);
		if (mark)
			attroff(A_REVERSE);
	}
	if (LINES >= 3)
		put(LINES - 2, 0, cols, c->message ? c->message : "");
	if (LINES >= 2) {
		attron(A_REVERSE);
		put(LINES - 1, 0, cols, c->status ? c->status : "reading status...");
		attroff(A_REVERSE);
	}
	refresh();
}

/* ---- actions ---- */

static const char *current_stream(const struct console *c)
{
	const struct view *v = &c->views[c->depth];

	if (v->kind == VIEW_STREAMS)
		return v->sel < v->count ? v->names[v->sel] : NULL;
	return v->stream;
}

static void rebuild(struct console *c)
{
	const char *stream = current_stream(c);
	struct pv_error err;
	const char *id;

	if (!stream)
		return;
	id = pv_election_of_stream(stream);
	if (!id) {
		set_message(c, "%s is not an election's stream", stream);
		return;
	}
	set_message(c, "rebuilding %s ...", id);
	draw(c);
	if (pv_session_rebuild(c->s, id, &err) == PV_OK)
		set_message(c, "rebuilt %s", id);
	else
		set_message(c, "%s", err.msg);
	c->status_due = true;
}

static void enter(struct console *c)
{
	struct view *v = &c->views[c->depth];

	if (v->sel >= v->count)
		return;
	if (v->kind == VIEW_STREAMS && load_events(c, v->names[v->sel])) {
		c->depth = 1;
		free(c->message);
		c->message = NULL;
	} else if (v->kind == VIEW_EVENTS) {
		show_event(c, &v->evs[v->sel], v->stream);
		c->depth = 2;
	}
}

static void reload(struct console *c)
{
	struct view *v = &c->views[c->depth];

	if (v->kind == VIEW_STREAMS) {
		load_streams(c);
	} else if (v->kind == VIEW_EVENTS) {
		char *stream = pv_xstrdup(v->stream);
		size_t sel = v->sel;

		if (load_events(c, stream))
			v->sel = sel < v->count ? sel : (v->count ? v->count - 1 : 0);
		free(stream);
	}
	c->status_due = true;
	clear();
}

static void move_sel(struct console *c, long delta)
{
	struct view *v = &c->views[c->depth];
	long last = v->count ? (long)v->count - 1 : 0;
	long to = (long)v->sel + delta;

	if (v->kind == VIEW_EVENT) {
		/* The detail view scrolls: the "selection" is its top line. */
		long rows = LINES - 3 > 0 ? LINES - 3 : 1;

		last = (long)v->count > rows ? (long)v->count - rows : 0;
		to = (long)v->top + delta;
		v->top = (size_t)(to < 0 ? 0 : to > last ? last : to);
		v->sel = v->top;
		return;
	}
	v->sel = (size_t)(to < 0 ? 0 : to > last ? last : to);
}

/* One key; false to quit. */
static bool key(struct console *c, int ch)
{
	long page = LINES - 3 > 1 ? LINES - 3 : 1;

	switch (ch) {
	case 'q':
	case 'Q': return false;
	case KEY_UP:
	case 'k': move_sel(c, -1); break;
	case KEY_DOWN:
	case 'j': move_sel(c, 1); break;
	case KEY_PPAGE: move_sel(c, -page); break;
	case KEY_NPAGE:
	case ' ': move_sel(c, page); break;
	case KEY_HOME:
	case 'g': move_sel(c, -(long)c->views[c->depth].count - page); break;
	case KEY_END:
	case 'G': move_sel(c, (long)c->views[c->depth].count + page); break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case KEY_RIGHT: enter(c); break;
	case 27: /* Esc */
	case KEY_BACKSPACE:
	case 127:
	case KEY_LEFT:
	case 'h':
		if (c->depth > 0)
			c->depth--;
		break;
	case 'r': rebuild(c); break;
	case 12: /* Ctrl-L */
	case KEY_F(5): reload(c); break;
	case KEY_RESIZE: clear(); break;
	default: break;
	}
	return true;
}

int pv_console_run(struct pv_session *s, int argc, char **argv)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT};
	struct console c = {.s = s};
	struct sigaction sa;

	if (argc > 1)
		return pv_cli_usage_error("console: unexpected argument \"%s\"", argv[1]);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return pv_cli_usage_error("console: standard input and output must be a terminal");
	setlocale(LC_ALL, "");
	/* Warnings from the libraries (a rebuild's refused events) must not
	 * scribble over the screen. */
	pv_log_init("photovote-admin", PV_LOG_SYSLOG, pv_log_get_level());
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_fatal;
	for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
		sigaction(fatal[i], &sa, NULL);
	pv_xalloc_set_fatal_hook(restore_terminal);
	if (!initscr())
		return pv_cli_usage_error("console: cannot initialise the terminal");
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	timeout(TICK_MS);
	c.status_due = true;
	c.views[0].title = pv_xstrdup("Streams");
	load_streams(&c);
	while (!stop) {
		int ch;

		if (status_stale(&c))
			read_status(&c);
		draw(&c);
		ch = getch();
		if (ch != ERR && !key(&c, ch))
			break;
	}
	restore_terminal();
	pv_xalloc_set_fatal_hook(NULL);
	for (size_t i = 0; i < 3; i++)
		view_clear(&c.views[i]);
	free(c.message);
	free(c.status);
	return PV_EXIT_OK;
}
