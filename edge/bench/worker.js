// The benchmark Worker: edgebus's own Worker and hub, plus a reference hub built on `partyserver`
// doing the same fan-out with its `broadcast`, and an echo (`RefEcho`) for round trips, in the same
// workerd. Not deployed with edgebus.
import { Server, routePartykitRequest } from 'partyserver';
import edgebus from '../src/worker.js';

export { Hub } from '../src/worker.js';

/** The reference: every message a connection sends is broadcast to every other connection. */
export class RefHub extends Server {
  static options = { hibernate: true };

  onMessage(connection, message) {
    this.broadcast(message, [connection.id]);
  }
}

/** The reference of a round trip: every message a connection sends comes back to it. */
export class RefEcho extends Server {
  static options = { hibernate: true };

  onMessage(connection, message) {
    connection.send(message);
  }
}

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname.startsWith('/parties/')) {
      return (await routePartykitRequest(request, env)) ?? new Response('no such party', { status: 404 });
    }
    return edgebus.fetch(request, env);
  },
};
