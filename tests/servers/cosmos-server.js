'use strict';
// The Cosmos DB stand-in over plain HTTP with the service's size limits enforced
// (cosmos-limits.js):
//
//   NODE_PATH=tests/cosmos/node_modules node cosmos-server.js HOST PORT
//
// Everything else is the stand-in unchanged (its own cli.js --no-ssl, plus the gate), except that
// connections stay open between requests, as the service's do (the stand-in's default answers
// every request with `connection: close`, a TCP connection per request that the service never
// costs a client); Node closes one idle for 5 s, which clients must then survive.
const { createHttpServer } = require('@vercel/cosmosdb-server');
const limits = require('./cosmos-limits');

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
	console.error('usage: cosmos-server.js HOST PORT');
	process.exit(2);
}

const server = limits.enforce(createHttpServer({ keepAlive: true }));
server.on('error', (err) => {
	console.error(`cosmos-server: ${err.code || ''} ${err.message}`);
	process.exit(1);
});
server.listen(port, host, () => {
	console.log(`Ready to accept HTTP connections at ${host}:${port} ` +
		`(items up to ${limits.ITEM_MAX} bytes, requests up to ${limits.REQUEST_MAX})`);
});
