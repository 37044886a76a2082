// TAP for the Node tests of tests/kurrentdb (official-client.js,
// standin-data.js): ok() numbers and prints each case, run() prints the plan
// after main() and exits 1 when a case failed or main threw (as a last case
// that says what threw).  And the small helpers both use.
'use strict';

let n = 0, failed = 0;
function ok(cond, what, detail) {
	n++;
	if (!cond) failed++;
	console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
	if (!cond && detail !== undefined) console.log(`# ${String(detail).replace(/\n/g, '\n# ')}`);
}
function run(main, who) {
	main().then(() => {
		console.log(`1..${n}`);
		process.exit(failed ? 1 : 0);
	}, (e) => {
		console.log(`not ok ${n + 1} - ${who} threw: ${String(e && e.stack || e).replace(/\n/g, ' | ')}`);
		console.log(`1..${n + 1}`);
		process.exit(1);
	});
}
// The promise's rejection, or null when it resolved.
async function rejects(promise) {
	try {
		await promise;
	} catch (e) {
		return e;
	}
	return null;
}
async function collect(iterable) {
	const out = [];
	for await (const e of iterable) out.push(e);
	return out;
}
const show = (x) => JSON.stringify(x, (k, v) => typeof v === 'bigint' ? v.toString() : v);

module.exports = {ok, run, rejects, collect, show};
