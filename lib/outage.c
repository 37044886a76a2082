#include "outage.h"

#include "log.h"

void pv_outage_init(struct pv_outage *o, const char *subsys, const char *what,
		    volatile sig_atomic_t *stop)
{
	*o = (struct pv_outage){.subsys = subsys,
				.what = what,
				.stop = stop,
				.min_ms = PV_OUTAGE_BACKOFF_MIN_MS,
				.max_ms = PV_OUTAGE_BACKOFF_MAX_MS};
}

void pv_outage_set_backoff(struct pv_outage *o, int min_ms, int max_ms)
{
	o->min_ms = min_ms;
	o->max_ms = max_ms;
}

void pv_nap(int ms, volatile sig_atomic_t *stop)
{
	while (ms > 0 && !*stop) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

void pv_outage_fail(struct pv_outage *o, const struct pv_error *err)
{
	if (!o->down) {
		pv_log_warnx(o->subsys, "%s: %s; retrying with backoff", o->what, err->msg);
		o->down = true;
		o->since = time(NULL);
		o->backoff_ms = o->min_ms;
	} else {
		pv_log_debug(o->subsys, "%s: %s", o->what, err->msg);
	}
	pv_nap(o->backoff_ms, o->stop);
	o->backoff_ms = o->backoff_ms * 2 > o->max_ms ? o->max_ms : o->backoff_ms * 2;
}

void pv_outage_ok(struct pv_outage *o)
{
	if (!o->down)
		return;
	pv_log_info(o->subsys, "%s: back after %lld s", o->what,
		    (long long)(time(NULL) - o->since));
	o->down = false;
}
