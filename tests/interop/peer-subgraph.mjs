// A second, small Federation v2 subgraph written for the tests: a "programmes" graph that
// extends plangraph's Country and Report with fields of its own, references Sector, and joins
// Organization by its FTS id. Every value here is a labelled test fixture, not a figure.
//
//   node peer-subgraph.mjs --port PORT [--broken]
//
// --broken declares Country.iso3 as Int!, which conflicts with plangraph's String! (composition
// must fail). Prints {"type":"listening","url":...} once it serves. `sdl(broken)` is exported
// for the composition check.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

export function sdl(broken = false) {
  return `
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

type Country @key(fields: "iso3") {
  iso3: ${broken ? 'Int!' : 'String!'}
  "A label the test subgraph gives every country: not a figure."
  peerLabel: String!
}

type Report @key(fields: "id") {
  id: ID!
  "Programmes the test subgraph lists for a report: fixtures, not figures."
  peerProgrammes: [PeerProgramme!]!
}

type PeerProgramme {
  name: String!
  sector: Sector!
  funder: Organization
}

type Sector @key(fields: "code", resolvable: false) {
  code: String!
}

type Organization @key(fields: "ftsId", resolvable: false) {
  ftsId: String!
}

type Query {
  peerProgrammes: [PeerProgramme!]!
}
`;
}

const programmes = [
  { name: 'test fixture programme A', sector: { code: 'EDU' }, funder: { ftsId: 'fts-test-1' } },
  { name: 'test fixture programme B', sector: { code: 'PRO-GBV' }, funder: null },
];

const resolvers = {
  Country: {
    __resolveReference: (ref) => ({ iso3: ref.iso3, peerLabel: `test label for ${ref.iso3}` }),
  },
  Report: {
    __resolveReference: (ref) => ({ id: ref.id, peerProgrammes: programmes }),
  },
  Query: { peerProgrammes: () => programmes },
};

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && process.argv[1].endsWith('peer-subgraph.mjs')) {
  const broken = process.argv.includes('--broken');
  const server = new ApolloServer({
    schema: buildSubgraphSchema([{ typeDefs: parse(sdl(broken)), resolvers }]),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, {
    listen: { host: '127.0.0.1', port: Number(arg('port', '0')) },
  });
  console.log(JSON.stringify({ type: 'listening', url }));
}
