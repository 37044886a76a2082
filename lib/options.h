/* The clients' options from the configuration: the one place that maps
 * the configuration file's keys onto the options structs the clients take
 * (cosmos.h, amqp_conn.h, eventstore.h), so that no client reads keys
 * itself.  Each program's main calls the ones it needs. */
#ifndef PV_OPTIONS_H
#define PV_OPTIONS_H

#include "amqp_conn.h"
#include "config.h"
#include "cosmos.h"
#include "eventstore.h"

/* [cosmos]: every key.  The strings are borrowed from cfg. */
void pv_cosmos_options_from_config(const struct pv_config *cfg, struct pv_cosmos_options *o);

/* [amqp]: copies (pv_amqp_params_clear frees them). */
void pv_amqp_params_from_config(struct pv_amqp_params *p, const struct pv_config *cfg);

/* [eventstore] and [postgres] conninfo (the strings stay cfg's).  An empty
 * ca_file means the system's CAs: NULL. */
void pv_es_options_from_config(const struct pv_config *cfg, struct pv_es_options *o);

#endif
