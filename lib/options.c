/* The clients' options from the configuration (options.h). */
#include "options.h"

#include <string.h>

#include "xalloc.h"

void pv_cosmos_options_from_config(const struct pv_config *cfg, struct pv_cosmos_options *o)
{
	memset(o, 0, sizeof *o);
	o->endpoint = pv_config_str(cfg, "cosmos", "endpoint");
	o->key = pv_config_str(cfg, "cosmos", "key");
	o->database = pv_config_str(cfg, "cosmos", "database");
	o->container = pv_config_str(cfg, "cosmos", "container");
	o->ca_file = pv_config_str(cfg, "cosmos", "ca_file");
	o->create_if_missing = pv_config_bool(cfg, "cosmos", "create_if_missing");
	o->timeout_ms = (long)pv_config_int(cfg, "cosmos", "timeout_ms");
	o->emulator_quirks = pv_config_bool(cfg, "cosmos", "emulator_quirks");
}

void pv_amqp_params_from_config(struct pv_amqp_params *p, const struct pv_config *cfg)
{
	memset(p, 0, sizeof *p);
	p->host = pv_xstrdup(pv_config_str(cfg, "amqp", "host"));
	p->port = (int)pv_config_int(cfg, "amqp", "port");
	p->vhost = pv_xstrdup(pv_config_str(cfg, "amqp", "vhost"));
	p->user = pv_xstrdup(pv_config_str(cfg, "amqp", "user"));
	p->password = pv_xstrdup(pv_config_str(cfg, "amqp", "password"));
	p->heartbeat = (int)pv_config_int(cfg, "amqp", "heartbeat");
	p->connect_timeout = 5;
	p->exchange = pv_xstrdup(pv_config_str(cfg, "amqp", "exchange"));
	p->queue = pv_xstrdup(pv_config_str(cfg, "amqp", "queue"));
	p->dead_letter_exchange = pv_xstrdup(pv_config_str(cfg, "amqp", "dead_letter_exchange"));
	p->dead_letter_queue = pv_xstrdup(pv_config_str(cfg, "amqp", "dead_letter_queue"));
	p->partitions = (int)pv_config_int(cfg, "amqp", "partitions");
}

void pv_es_options_from_config(const struct pv_config *cfg, struct pv_es_options *o)
{
	const char *ca = pv_config_str(cfg, "eventstore", "ca_file");

	memset(o, 0, sizeof *o);
	o->backend = pv_config_str(cfg, "eventstore", "backend");
	o->url = pv_config_str(cfg, "eventstore", "url");
	o->username = pv_config_str(cfg, "eventstore", "username");
	o->password = pv_config_str(cfg, "eventstore", "password");
	o->ca_file = *ca ? ca : NULL;
	o->timeout_ms = (long)pv_config_int(cfg, "eventstore", "timeout_ms");
	o->in_flight = (long)pv_config_int(cfg, "eventstore", "requests_in_flight");
	o->one_call_per_stream = !pv_config_bool(cfg, "eventstore", "append_sessions");
	o->pg_conninfo = pv_config_str(cfg, "postgres", "conninfo");
}
