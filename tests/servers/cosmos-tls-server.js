'use strict';
// The Cosmos DB stand-in over HTTPS with a certificate made for this run:
//
//   NODE_PATH=tests/cosmos/node_modules node cosmos-tls-server.js HOST PORT CERT KEY
//
// The stand-in's own command line only serves the certificate bundled with it, which expired in
// January 2021 and names no IP address, so no client that verifies certificates accepts it.
// Everything else is the stand-in unchanged, with the service's size limits enforced
// (cosmos-limits.js) and connections kept open between requests, as in cosmos-server.js.
const fs = require('fs');
const { createHttpsServer } = require('@vercel/cosmosdb-server');
const limits = require('./cosmos-limits');

const [host, portText, certFile, keyFile] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535 || !certFile || !keyFile) {
	console.error('usage: cosmos-tls-server.js HOST PORT CERT KEY');
	process.exit(2);
}

const server = limits.enforce(createHttpsServer({
	cert: fs.readFileSync(certFile),
	key: fs.readFileSync(keyFile),
	minVersion: 'TLSv1.2',
	keepAlive: true,
}));
server.on('error', (err) => {
	console.error(`cosmos-tls-server: ${err.code || ''} ${err.message}`);
	process.exit(1);
});
server.listen(port, host, () => {
	console.log(`Ready to accept HTTPS connections at ${host}:${port}`);
});
