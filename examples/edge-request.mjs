import { connect } from 'edgebus';

// A responder and a requester on the deployment (they may be on different hubs and machines).
const bus = connect(process.env.EDGEBUS_URL, { token: process.env.EDGEBUS_TOKEN });
await bus.subscribe('prices.*', (symbol, message) => ({ symbol, price: 101.5, trace: message.headers?.traceparent })).ready;

const quote = await bus.request('prices.acme', 'ACME', { timeoutMs: 2000, headers: { traceparent: '00-abc-def-01' } });
console.log(quote);
await bus.request('nobody.listens', 1).catch((e) => console.log(e.code));
await bus.close();
