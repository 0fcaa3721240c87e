// Hive Gateway configuration for the SSE run of the tests: subscriptions reach the subgraphs by
// the gateway's default transport, GraphQL over Server-Sent Events; the client's Authorization
// header goes on to the subgraphs, as in gateway.config.ts.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const authorization = request.headers.get('authorization');
      return authorization ? { authorization } : {};
    },
  },
});
