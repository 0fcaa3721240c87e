// Composes plangraph's subgraph SDL (fetched from `_service { sdl }`) with the test peer
// subgraph's, using @theguild/federation-composition; prints {"ok":bool,"errors":[...]} and,
// when composed, the supergraph SDL's length and whether it has plangraph's entities. With
// --out, the supergraph is written to FILE, with --peer as the peer's URL: the file a gateway
// started with no configuration (`hive-gateway supergraph FILE`, Hive Router) serves.
//
//   node compose.mjs --plangraph http://HOST:PORT/graphql [--peer URL] [--out FILE] [--broken]
import { writeFileSync } from 'node:fs';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { sdl as peerSdl } from './peer-subgraph.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const plangraph = arg('plangraph');
const response = await fetch(plangraph, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query: '{ _service { sdl } }' }),
});
const plangraphSdl = (await response.json()).data._service.sdl;
const result = composeServices([
  { name: 'plangraph', url: plangraph, typeDefs: parse(plangraphSdl) },
  { name: 'peer', url: arg('peer', 'http://127.0.0.1:1/graphql'), typeDefs: parse(peerSdl(process.argv.includes('--broken'))) },
]);
if (result.errors && result.errors.length > 0) {
  console.log(JSON.stringify({ ok: false, errors: result.errors.map((e) => e.message) }));
} else {
  const supergraph = result.supergraphSdl;
  const out = arg('out');
  if (out) writeFileSync(out, supergraph);
  console.log(JSON.stringify({
    ok: true,
    errors: [],
    supergraphBytes: supergraph.length,
    hasCountryJoin: /type Country[^{]*@join__type\(graph: PEER/.test(supergraph) && /type Country[^{]*@join__type\(graph: PLANGRAPH/.test(supergraph),
  }));
}
