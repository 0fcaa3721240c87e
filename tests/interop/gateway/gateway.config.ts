// Hive Gateway configuration for the tests: subscriptions reach the subgraphs over WebSocket
// (graphql-transport-ws on their /graphql), everything else over HTTP; the client's
// Authorization header goes on to the subgraphs, so a partner's token writes through the gateway.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  transportEntries: {
    '*.http': {
      options: {
        subscriptions: { kind: 'ws', location: '/graphql' },
      },
    },
  },
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const authorization = request.headers.get('authorization');
      return authorization ? { authorization } : {};
    },
  },
});
