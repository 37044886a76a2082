/* KurrentDB connection strings, as the official clients read them:
 *
 *   kurrentdb://[user:password@]host[:port][,host[:port]...][/][?key=value&...]
 *
 * Schemes kurrentdb, kurrent, kdb and the legacy esdb, each also with
 * "+discover" (the hosts are gossip seeds).  The port defaults to 2113.
 * Keys (case-insensitive): tls, tlsVerifyCert, tlsCAFile, nodePreference
 * (leader, follower, random, readonlyreplica), defaultDeadline (ms); the
 * clients' other keys (keepAliveInterval, connectionName, ...) are accepted
 * and ignored, an unknown key is ignored with a warning, as the clients do.
 * The user name and password are percent-decoded. */
#ifndef PV_EVENTSTORE_KURRENTDB_CONN_H
#define PV_EVENTSTORE_KURRENTDB_CONN_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

#define PV_KDB_HOSTS_MAX 16
#define PV_KDB_DEFAULT_PORT 2113

enum pv_kdb_node_preference {
	PV_KDB_NODE_LEADER,
	PV_KDB_NODE_FOLLOWER,
	PV_KDB_NODE_RANDOM,
	PV_KDB_NODE_READ_ONLY_REPLICA,
};

struct pv_kdb_host {
	char *host; /* name or address; an IPv6 address without its brackets */
	int port;
};

struct pv_kdb_conn {
	bool discover; /* "+discover": the hosts are gossip seeds */
	struct pv_kdb_host hosts[PV_KDB_HOSTS_MAX];
	size_t host_count;
	char *username; /* NULL when the string has none */
	char *password;
	bool tls;                                    /* default true */
	bool tls_verify;                             /* tlsVerifyCert, default true */
	char *ca_file;                               /* tlsCAFile, NULL when absent */
	enum pv_kdb_node_preference node_preference; /* default leader */
	long deadline_ms;                            /* defaultDeadline, -1 when absent */
};

/* Fills c from s; on failure c holds nothing and the message names the
 * part of the string at fault (never the password). */
enum pv_err pv_kdb_conn_parse(const char *s, struct pv_kdb_conn *c, struct pv_error *err);
void pv_kdb_conn_clear(struct pv_kdb_conn *c);
/* True for a string in one of the schemes above. */
bool pv_kdb_conn_is_string(const char *s);

#endif
