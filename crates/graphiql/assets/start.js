// Starts Ruru (PostGraphile's GraphiQL, served by this server from /graphiql/) on this origin's
// /graphql: queries and mutations over HTTP (with the headers pane's headers, so a token pasted
// there writes), subscriptions over graphql-transport-ws on the same path. The editor's
// workers are module workers from the same folder, as the page's CSP (worker-src 'self')
// allows.

globalThis.MonacoEnvironment = {
  getWorker(_, label) {
    const file =
      label === 'json' ? 'jsonWorker.js' : label === 'graphql' ? 'graphqlWorker.js' : 'editorWorker.js';
    return new Worker(new URL(file, import.meta.url), { type: 'module' });
  },
};

const { React, createRoot, Ruru } = await import('./ruru.js');
const endpoint = new URL('/graphql', window.location.href);
const subscriptionEndpoint = new URL(endpoint);
subscriptionEndpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
createRoot(document.getElementById('ruru-root')).render(
  React.createElement(Ruru, {
    endpoint: endpoint.href,
    subscriptionEndpoint: subscriptionEndpoint.href,
    staticPath: new URL('.', import.meta.url).pathname,
  }),
);
