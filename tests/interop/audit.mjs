// The graphql-http audit (GraphQL over HTTP spec) against a running server.
//
//   node audit.mjs --url http://127.0.0.1:PORT/graphql [--exceptions audit-exceptions.json]
//
// Prints one JSON line per audit ({id, name, status, reason}) and a summary line; exits 0 when
// no audit ends in `error` or `warn` other than those listed, with their reason, in the
// exceptions file. Every GET carries `apollo-require-preflight: true`, as a client of a
// CSRF-protected server does (plangraph refuses a GET query without it); POSTs go as the audit
// writes them (application/json needs no such header).
import { readFileSync } from 'node:fs';
import { serverAudits } from 'graphql-http';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
if (!url) {
  console.error('usage: node audit.mjs --url http://HOST:PORT/graphql [--exceptions FILE]');
  process.exit(64);
}
const exceptionsFile = arg('exceptions');
const exceptions = exceptionsFile ? JSON.parse(readFileSync(exceptionsFile, 'utf8')) : {};

const fetchFn = (input, init = {}) => {
  const method = (init.method || 'GET').toUpperCase();
  if (method !== 'GET') return fetch(input, init);
  const headers = new Headers(init.headers || {});
  headers.set('apollo-require-preflight', 'true');
  return fetch(input, { ...init, headers });
};

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const excused = exceptions[audit.id];
  const line = {
    id: audit.id,
    name: audit.name,
    status: result.status,
    reason: result.status === 'ok' ? undefined : result.reason,
    excused: excused || undefined,
  };
  results.push(line);
  console.log(JSON.stringify(line));
}
const failing = results.filter(
  (r) => (r.status === 'error' || r.status === 'warn') && !r.excused,
);
const count = (s) => results.filter((r) => r.status === s).length;
console.log(
  JSON.stringify({
    summary: true,
    audits: results.length,
    ok: count('ok'),
    notice: count('notice'),
    warn: count('warn'),
    error: count('error'),
    failing: failing.map((r) => r.id),
  }),
);
process.exit(failing.length === 0 ? 0 : 1);
