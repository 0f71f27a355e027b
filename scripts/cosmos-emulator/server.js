// Test-only Cosmos DB (NoSQL API) server on 127.0.0.1 over TLS, for the candidates test suite.
// Usage: node server.js HOST PORT CERT.pem KEY.pem
// keepAlive: the stock server closes every connection, so every request would pay a TLS handshake.
const fs = require("fs");
const { createHttpsServer } = require("@vercel/cosmosdb-server");

const [host = "127.0.0.1", port = "8081", cert, key] = process.argv.slice(2);
if (!cert || !key) {
  console.error("usage: node server.js HOST PORT CERT.pem KEY.pem");
  process.exit(2);
}
createHttpsServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), keepAlive: true }).listen(
  Number(port),
  host,
  () => console.log(`Ready to accept HTTPS connections at ${host}:${port}`),
);
