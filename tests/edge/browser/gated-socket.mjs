// A WebSocket for the test pages whose network the test switches off and on. Chromium logs every
// refused WebSocket connection as a console error: while the test has the deployment stopped, new
// sockets wait at this gate (a network that is not there yet) instead of being refused; a socket
// that was open is really lost when the deployment stops.
let online = true;
const waiting = [];

/** The network goes away: sockets made from now on wait for `networkUp`. */
export function networkDown() {
  online = false;
}

/** The network is back: the waiting sockets connect. */
export function networkUp() {
  online = true;
  for (const open of waiting.splice(0)) open();
}

export class GatedWebSocket {
  constructor(url) {
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this._closed = false;
    const open = () => {
      if (this._closed) return;
      const ws = new WebSocket(url);
      this._ws = ws;
      ws.onopen = (e) => this.onopen?.(e);
      ws.onmessage = (e) => this.onmessage?.(e);
      ws.onclose = (e) => this.onclose?.(e);
      ws.onerror = (e) => this.onerror?.(e);
    };
    if (online) open();
    else waiting.push(open);
  }
  send(data) { this._ws.send(data); }
  close(code, reason) {
    this._closed = true;
    this._ws?.close(code, reason);
  }
}
