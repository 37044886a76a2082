/* /healthz, /readyz and /livez of photovote.fcgi: answers that never wait
 * for a server.
 *
 * Each photovote.fcgi process runs two probe threads, one for PostgreSQL
 * (which also reads the projector's heartbeat, checkpoint, the head of the
 * postgres event store's feed and the parked elections) and one for
 * Cosmos DB, every [http] health_interval_ms, each with its own connection
 * and a time limit of [http] health_stale_ms.  They record the time of
 * their last success; a request reads what they recorded.  A part whose
 * last success is older than health_stale_ms is failing, so a server that
 * hangs makes its part fail within that time and never holds a request.
 * The broker's part is the publishing connection's own state
 * (pv_amqp_publisher_health: connected, blocked, silent).  The projector
 * fails when its heartbeat is older than [http] projector_stale_seconds.
 *
 *   /healthz  every part: 200 when all are ok (or disabled), else 503
 *   /readyz   what this process needs to serve requests: the broker,
 *             PostgreSQL and (when enabled) Cosmos DB; not the projector,
 *             which another program runs
 *   /livez    200 while the process serves requests and its probe threads
 *             are alive
 * The shapes are in fcgi/openapi.json (Health) and docs/operations.md. */
#ifndef PV_FCGI_HEALTH_H
#define PV_FCGI_HEALTH_H

#include "amqp_publisher.h"
#include "http.h"

struct pv_config;
struct pv_health;

enum pv_health_view { PV_HEALTH_ALL, PV_HEALTH_READY, PV_HEALTH_LIVE };

/* Starts the probe threads; pub is borrowed and must outlive it. */
struct pv_health *pv_health_start(const struct pv_config *cfg, struct pv_amqp_publisher *pub);
/* Stops and joins the probes (each ends within its time limit). */
void pv_health_stop(struct pv_health *h);

void pv_health_answer(struct pv_health *h, enum pv_health_view view, struct pv_http_response *resp);

#endif
