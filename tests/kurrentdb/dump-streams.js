#!/usr/bin/env node
// Test equipment: prints every stream of a KurrentDB server whose name starts
// with PREFIX, read with the official Node client (@kurrent/kurrentdb-client,
// pinned in package-lock.json), not with the kurrentdb backend under test.
// The chaos test (tests/chaos/chaos.py) checks the store through it.
//
// Usage: dump-streams.js CONNECTION-STRING PREFIX
// Output: one JSON object a line, each stream's events in order:
//   {"stream", "number", "id", "type", "data", "metadata",
//    "commit", "prepare"}
// The streams' names come from a filtered $all read (forwards, by stream
// prefix); each stream is then read forwards from its start, so what a stream
// holds now is printed (a soft-deleted stream holds nothing, a tombstoned one
// is left out).  Exit status 1, with the error on stderr, on any other error.
'use strict';

const here = __dirname;
const kdb = require(require.resolve('@kurrent/kurrentdb-client', {paths: [here, process.cwd()]}));
const {KurrentDBClient, FORWARDS, START, streamNameFilter} = kdb;

const text = (x) => JSON.stringify(x, (k, v) => typeof v === 'bigint' ? v.toString() : v);
const json = (v) => v instanceof Uint8Array ? JSON.parse(Buffer.from(v).toString('utf8')) : v;

async function main() {
	if (process.argv.length !== 4) {
		process.stderr.write('usage: dump-streams.js CONNECTION-STRING PREFIX\n');
		process.exit(2);
	}
	const client = KurrentDBClient.connectionString(process.argv[2]);
	const prefix = process.argv[3];
	const names = new Set();
	for await (const r of client.readAll({direction: FORWARDS, fromPosition: START,
		filter: streamNameFilter({prefixes: [prefix]})})) {
		if (r.event && r.event.streamId.startsWith(prefix)) names.add(r.event.streamId);
	}
	const out = [];
	for (const name of [...names].sort()) {
		try {
			for await (const r of client.readStream(name, {direction: FORWARDS,
				fromRevision: START})) {
				const e = r.event;
				out.push(text({
					stream: name, number: e.revision, id: e.id, type: e.type,
					data: json(e.data), metadata: e.metadata === undefined ? {} : json(e.metadata),
					commit: e.position && e.position.commit,
					prepare: e.position && e.position.prepare,
				}));
			}
		} catch (err) {
			if (err.type !== 'stream-not-found' && err.type !== 'stream-deleted') throw err;
		}
	}
	await client.dispose();
	process.stdout.write(out.length ? out.join('\n') + '\n' : '');
}

main().catch((e) => {
	process.stderr.write(`dump-streams: ${String(e && e.stack || e)}\n`);
	process.exit(1);
});
