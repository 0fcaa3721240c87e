#!/usr/bin/env node
// One GraphQL subscription over WebSocket, through a real npm client, reported as JSON lines.
//
// Usage:
//   node subscribe.mjs --url ws://127.0.0.1:PORT/graphql
//                      --protocol graphql-transport-ws|graphql-ws|graphql-sse|
//                                 graphql-sse-single|multipart
//                      --query 'subscription { ... }'
//                      [--variables JSON] [--operation-name NAME] [--token SECRET]
//                      [--count N] [--timeout-ms MS]
//
// --protocol graphql-transport-ws uses graphql-ws's createClient (the current protocol);
// --protocol graphql-ws uses subscriptions-transport-ws's SubscriptionClient (the legacy
// Apollo protocol, WebSocket subprotocol "graphql-ws"). Both use `ws` as the WebSocket.
// --protocol graphql-sse uses graphql-sse's createClient over HTTP (--url http://…/graphql),
// in its distinct connections mode; graphql-sse-single in its single connection mode.
// --protocol multipart uses Apollo Client's HttpLink: multipart HTTP subscriptions
// (Accept: multipart/mixed;subscriptionSpec=1.0). Over HTTP, --token goes in `Authorization`.
// With --token, connectionParams are exactly { "Authorization": "Bearer SECRET" }.
//
// stdout, one JSON object per line:
//   {"type":"connected"}                   the server acknowledged the connection
//   {"type":"reconnected"}                 graphql-ws re-connected (server closed with 1000
//                                          while the subscription was live); not expected
//   {"type":"next","payload":{...}}        one execution result, as received ({data, errors?})
//   {"type":"error","error":...}           GraphQL errors (an array of error objects) or a
//                                          socket/protocol error ({message, code?, reason?})
//   {"type":"complete"}                    the server completed the operation
//   {"type":"timeout"}                     --timeout-ms expired
// Diagnostics go to stderr.
//
// Exit codes: 0 after --count `next` lines (or, without --count, when the server completes);
// 1 on an error (usage, GraphQL error, socket closed, connection refused or rejected);
// 2 on timeout (default 30000 ms); 3 when the server completed before --count events arrived.

import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const USAGE =
  'usage: node subscribe.mjs --url ws://HOST:PORT/graphql --protocol graphql-transport-ws|graphql-ws ' +
  "--query 'subscription { ... }' [--variables JSON] [--operation-name NAME] [--token SECRET] " +
  '[--count N] [--timeout-ms MS]';

function die(message) {
  process.stderr.write(`subscribe.mjs: ${message}\n${USAGE}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      protocol: { type: 'string', default: 'graphql-transport-ws' },
      query: { type: 'string' },
      variables: { type: 'string' },
      'operation-name': { type: 'string' },
      token: { type: 'string' },
      count: { type: 'string' },
      'timeout-ms': { type: 'string', default: '30000' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  die(e.message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!args.url) die('--url is required');
if (!args.query) die('--query is required');
if (
  !['graphql-transport-ws', 'graphql-ws', 'graphql-sse', 'graphql-sse-single', 'multipart'].includes(
    args.protocol,
  )
) {
  die(`unknown --protocol ${JSON.stringify(args.protocol)}`);
}
let variables;
if (args.variables !== undefined) {
  try {
    variables = JSON.parse(args.variables);
  } catch (e) {
    die(`--variables is not JSON: ${e.message}`);
  }
}
const count = args.count === undefined ? undefined : Number(args.count);
if (count !== undefined && !(Number.isInteger(count) && count > 0)) die('--count must be a positive integer');
const timeoutMs = Number(args['timeout-ms']);
if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) die('--timeout-ms must be a positive number');

const connectionParams = args.token !== undefined ? { Authorization: `Bearer ${args.token}` } : undefined;
const request = { query: args.query };
if (variables !== undefined) request.variables = variables;
if (args['operation-name'] !== undefined) request.operationName = args['operation-name'];

// ---------------------------------------------------------------------------------------------

function emit(obj) {
  // stdout is a pipe when spawned by the tests: on Linux pipe writes are synchronous.
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function log(message) {
  process.stderr.write(`subscribe.mjs: ${message}\n`);
}

// Turn whatever a client hands to an error callback into plain JSON.
function serialiseError(err) {
  if (Array.isArray(err)) return err.map(serialiseError);
  if (err === null || err === undefined) return { message: String(err) };
  if (typeof err !== 'object') return { message: String(err) };
  // CloseEvent-like (ws CloseEvent, graphql-ws TerminatedCloseEvent)
  if ('code' in err && 'reason' in err && typeof err.code === 'number') {
    return {
      message: err.message || `socket closed: ${err.code}${err.reason ? ` ${err.reason}` : ''}`,
      code: err.code,
      reason: err.reason,
      wasClean: err.wasClean,
    };
  }
  // ws ErrorEvent: { type: 'error', message, error }
  if (err.type === 'error' && err.error instanceof Error) {
    return { message: err.message || err.error.message, ...(err.error.code ? { code: err.error.code } : {}) };
  }
  if (err instanceof Error) {
    const out = { message: err.message };
    if (err.code !== undefined) out.code = err.code;
    return out;
  }
  // A GraphQL error object as received ({message, locations?, path?, extensions?}) or anything else
  try {
    return JSON.parse(JSON.stringify(err));
  } catch {
    return { message: String(err) };
  }
}

let finished = false;
let received = 0;
let cleanup = async () => {};

async function finish(code, line) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  if (line) emit(line);
  try {
    await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 1000))]);
  } catch (e) {
    log(`cleanup: ${e && e.message}`);
  }
  process.exit(code);
}

const timer = setTimeout(() => {
  finish(2, { type: 'timeout' });
}, timeoutMs);

process.on('uncaughtException', (err) => {
  log(`uncaught: ${err && err.stack ? err.stack : err}`);
  if (!finished) finish(1, { type: 'error', error: serialiseError(err) });
});
process.on('unhandledRejection', (err) => {
  log(`unhandled rejection: ${err && err.stack ? err.stack : err}`);
  if (!finished) finish(1, { type: 'error', error: serialiseError(err) });
});

function onNext(payload) {
  if (finished) return;
  received += 1;
  emit({ type: 'next', payload });
  if (count !== undefined && received >= count) finish(0);
}

function onError(err) {
  if (finished) return;
  finish(1, { type: 'error', error: serialiseError(err) });
}

function onComplete() {
  if (finished) return;
  if (count !== undefined && received < count) {
    log(`server completed after ${received} of ${count} events`);
    finish(3, { type: 'complete' });
  } else {
    finish(0, { type: 'complete' });
  }
}

// ---------------------------------------------------------------------------------------------

async function runGraphqlTransportWs() {
  const { createClient } = await import('graphql-ws');
  let connectedOnce = false;
  let closedResolve;
  const closed = new Promise((r) => (closedResolve = r));
  const client = createClient({
    url: args.url,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
    lazy: true,
    on: {
      connected: () => {
        if (finished) return;
        emit({ type: connectedOnce ? 'reconnected' : 'connected' });
        connectedOnce = true;
      },
      error: (err) => log(`socket error: ${JSON.stringify(serialiseError(err))}`),
      closed: (event) => {
        if (event && typeof event.code === 'number' && event.code !== 1000) {
          log(`socket closed: ${event.code} ${event.reason || ''}`);
        }
        closedResolve();
      },
    },
  });
  let unsubscribe = () => {};
  cleanup = async () => {
    unsubscribe(); // sends `complete` for a live subscription
    await client.dispose(); // closes the socket with 1000
    await closed;
  };
  unsubscribe = client.subscribe(request, { next: onNext, error: onError, complete: onComplete });
}

// GraphQL over Server-Sent Events (graphql-sse's createClient): --url is the HTTP URL of
// /graphql; --token goes in the `Authorization` header. "connected" is printed once the server
// has answered the stream's request with 200 (distinct connections mode), or accepted the
// operation with 202 (single connection mode, after the reservation and its stream).
async function runGraphqlSse(singleConnection) {
  const { createClient } = await import('graphql-sse');
  const client = createClient({
    url: args.url,
    singleConnection,
    retryAttempts: 0,
    headers: connectionParams,
    fetchFn: async (input, init) => {
      const response = await fetch(input, init);
      const method = init?.method ?? 'GET';
      const operation = singleConnection ? method === 'POST' : true;
      if (!finished && response.ok && operation) emit({ type: 'connected' });
      return response;
    },
  });
  let unsubscribe = () => {};
  cleanup = async () => {
    unsubscribe();
    client.dispose();
  };
  unsubscribe = client.subscribe(request, { next: onNext, error: onError, complete: onComplete });
}

// Multipart HTTP subscriptions through Apollo Client (HttpLink, no cache): "connected" is
// printed once the server has answered the request with a multipart 200.
async function runMultipart() {
  const { ApolloClient, InMemoryCache, HttpLink, gql } = await import('@apollo/client');
  const client = new ApolloClient({
    link: new HttpLink({
      uri: args.url,
      headers: connectionParams ?? {},
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const type = response.headers.get('content-type') ?? '';
        if (!finished && response.ok && type.startsWith('multipart/mixed')) {
          emit({ type: 'connected' });
        }
        return response;
      },
    }),
    cache: new InMemoryCache(),
  });
  const subscription = client
    .subscribe({ query: gql(args.query), variables: request.variables, fetchPolicy: 'no-cache' })
    .subscribe({
      next: (result) => {
        // Apollo Client 4 hands GraphQL errors over as `error` (CombinedGraphQLErrors)
        if (result.error) onError(result.error.errors ?? serialiseError(result.error));
        else onNext({ data: result.data });
      },
      error: (err) => onError(err.errors ?? serialiseError(err)),
      complete: onComplete,
    });
  cleanup = async () => {
    subscription.unsubscribe();
    client.stop();
  };
}

async function runLegacyGraphqlWs() {
  const { SubscriptionClient } = await import('subscriptions-transport-ws');
  let closedResolve;
  const closed = new Promise((r) => (closedResolve = r));
  const client = new SubscriptionClient(
    args.url,
    {
      // undefined would still send `{}`; keep the default empty payload in that case
      ...(connectionParams ? { connectionParams } : {}),
      reconnect: false,
      lazy: true,
      connectionCallback: (error) => {
        // called with the payload of `connection_error`, or with nothing on `connection_ack`
        if (error) onError(error);
      },
    },
    WebSocket,
  );
  client.onConnected(() => {
    if (!finished) emit({ type: 'connected' });
  });
  // SubscriptionClient reports neither the socket error nor the close code to the operation:
  // remember both to say why the socket went away.
  let lastSocketError;
  let lastClose;
  client.onError((err) => {
    lastSocketError = serialiseError(err);
    log(`socket error: ${JSON.stringify(lastSocketError)}`);
  });
  client.onDisconnected(() => {
    closedResolve();
    // the raw socket's own close listener runs after the client's: look a tick later
    setImmediate(() => {
      if (finished) return;
      if (lastSocketError) onError(lastSocketError);
      else if (lastClose) onError(lastClose);
      else onError({ message: 'socket closed' });
    });
  });
  let subscription = { unsubscribe() {} };
  cleanup = async () => {
    const socket = client.client; // null once the socket went away
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    subscription.unsubscribe(); // sends `stop` for a live operation
    const socketClosed = socket
      ? new Promise((r) => {
          if (socket.readyState === WebSocket.CLOSED) r();
          else socket.addEventListener('close', () => r());
        })
      : Promise.resolve();
    client.close(); // sends `connection_terminate` and closes the socket
    await Promise.all([closed, socketClosed]);
  };
  subscription = client.request(request).subscribe({
    next: onNext,
    // subscriptions-transport-ws hands over only the first GraphQL error of an `error` message;
    // report it as a one-element array so both protocols print GraphQL errors as arrays
    error: (err) => onError(Array.isArray(err) ? err : [err]),
    complete: onComplete,
  });
  // lazy: the socket exists from the first request on
  client.client?.addEventListener('close', (event) => {
    lastClose = serialiseError(event);
    if (!finished && event.code !== 1000) log(`socket closed: ${event.code} ${event.reason || ''}`);
  });
}

try {
  if (args.protocol === 'graphql-transport-ws') await runGraphqlTransportWs();
  else if (args.protocol === 'graphql-sse') await runGraphqlSse(false);
  else if (args.protocol === 'graphql-sse-single') await runGraphqlSse(true);
  else if (args.protocol === 'multipart') await runMultipart();
  else await runLegacyGraphqlWs();
} catch (e) {
  onError(e);
}
