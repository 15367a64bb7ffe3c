// The durable copy of what an owner hub's core holds for replay: each namespace's retained values,
// per-topic history and numbering (the `routing` Bus's logs, HISTORY_* and RETAIN_* settings), as
// rows of the SQLite table `replay_log` (namespace, topic, seq, whether it is the topic's retained
// value, the message as JSON, or NULL for a row that only carries the topic's numbering on).
//
// The core decides everything about these logs (sequence numbers, which messages are kept, limits,
// eviction, what a replay returns and where it has a gap); this file only mirrors it. The messages
// the core tracks are written with the hub's next write of its counters, which comes before
// anything reflecting them leaves (a frame, a forward, an answer: hub.js `_flushLogs`), several rows
// per statement, and then each topic's rows are trimmed to what the core still holds (`logOf`):
// its history, its retained value, and its last number (a row without a message once nothing else
// holds it: a subscriber's position on the topic stays meaningful after a restart, as the core
// keeps it in memory). Each topic whose log the core says lost something (evicted by its limits,
// expired, replaced, cleared, forgotten: the routing Bus's `_takeLogChanges`) is trimmed that way
// with the next write; on a wake, every stored topic of the namespace, after the rows are put back
// into the core (`restore`), seqs preserved.
//
// Numbers are never reused on a bus (a topic's log that opens numbers on from the highest given):
// when the core forgets a topic whose log held nothing, the highest number it had is kept in
// `replay_floor`, and put back on a wake as the numbering of a reserved `$` topic (which no
// wildcard matches), so that the core numbers on from above it.
import { DEFAULT_NS } from './auth.js';
import { visible } from './groups.js';

/** The topic whose restored numbering carries a namespace's highest forgotten number (a `$` topic: no client pattern reaches it). */
export const FLOOR_TOPIC = '$edgebus.floor';

/** Rows in one INSERT: 5 bound parameters each, within the 100 one statement may bind in a Durable Object. */
const ROWS_PER_INSERT = 20;

export class ReplayLog {
  constructor(sql) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS replay_log (ns TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL,
      retained INTEGER NOT NULL, msg TEXT, PRIMARY KEY (ns, topic, seq)) WITHOUT ROWID`);
    sql.exec('CREATE TABLE IF NOT EXISTS replay_floor (ns TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID');
    this.inserts = []; // rows → the INSERT statement of that many rows
  }

  /**
   * Stores messages the core tracks, in order: `rows` of `{ ns, env, retained }` (`env.seq` set;
   * `retained`: it is now the topic's retained value). `jsonOf(env)`: the message's JSON as
   * clients see it (the hub's, shared with the frames that carry it). Up to ROWS_PER_INSERT rows
   * go in one statement; a retained value's flags are cleared before its own row.
   */
  record(rows, jsonOf = (env) => JSON.stringify(visible(env))) {
    const sql = this.sql;
    let values = [];
    const insert = () => {
      if (values.length === 0) return;
      const n = values.length / 5;
      this.inserts[n] ??= `INSERT OR REPLACE INTO replay_log (ns, topic, seq, retained, msg) VALUES ${Array(n).fill('(?, ?, ?, ?, ?)').join(', ')}`;
      sql.exec(this.inserts[n], ...values);
      values = [];
    };
    for (const { ns, env, retained } of rows) {
      if (retained) {
        insert();
        sql.exec('UPDATE replay_log SET retained = 0 WHERE ns = ? AND topic = ? AND retained = 1', ns, env.topic);
      }
      values.push(ns, env.topic, env.seq, retained ? 1 : 0, jsonOf(env));
      if (values.length === ROWS_PER_INSERT * 5) insert();
    }
    insert();
  }

  /**
   * Trims topic `topic`'s rows to what the core holds (`log`: its `logOf`, undefined when it
   * forgot the topic): the history's seqs firstSeq..lastSeq, the retained value's seq, and lastSeq
   * (its message dropped when neither holds it). `before`: the topic's log before a publish that
   * `record` stored; when the history only grew at its end and the retained value stayed, no row
   * is out.
   */
  trim(ns, topic, log, before) {
    const sql = this.sql;
    if (log === undefined) {
      const top = sql.exec('SELECT max(seq) AS seq FROM replay_log WHERE ns = ? AND topic = ?', ns, topic).one().seq;
      if (top === null) return;
      sql.exec(`INSERT INTO replay_floor (ns, seq) VALUES (?, ?)
        ON CONFLICT (ns) DO UPDATE SET seq = max(seq, excluded.seq)`, ns, top);
      sql.exec('DELETE FROM replay_log WHERE ns = ? AND topic = ?', ns, topic);
      return;
    }
    if (before !== undefined && before.held > 0 && log.held > 0 && before.firstSeq === log.firstSeq
      && before.retainedSeq === log.retainedSeq) return;
    const kept = log.retainedSeq ?? -1;
    const first = log.held > 0 ? log.firstSeq : Infinity;
    const last = log.held > 0 ? log.lastSeq : -Infinity;
    sql.exec('DELETE FROM replay_log WHERE ns = ? AND topic = ? AND (seq < ? OR seq > ?) AND seq != ? AND seq != ?',
      ns, topic, first, last, kept, log.lastSeq);
    if (log.held === 0 && kept !== log.lastSeq) {
      sql.exec('UPDATE replay_log SET msg = NULL, retained = 0 WHERE ns = ? AND topic = ? AND seq = ? AND msg IS NOT NULL', ns, topic, log.lastSeq);
    }
    // The retained flags change only when the retained value did (a publish that only pushed the
    // topic's oldest message out of its history, the usual case at HISTORY_MAX_MESSAGES, skips it).
    if (before === undefined || before.retainedSeq !== log.retainedSeq) {
      sql.exec('UPDATE replay_log SET retained = (seq = ?) WHERE ns = ? AND topic = ? AND retained != (seq = ?)', kept, ns, topic, kept);
    }
  }

  /** Trims every stored topic of namespace `ns` to what `bus` (its routing Bus) holds. */
  trimAll(ns, bus) {
    const topics = this.sql.exec('SELECT DISTINCT topic FROM replay_log WHERE ns = ?', ns).toArray();
    for (const { topic } of topics) this.trim(ns, topic, bus.logOf(topic));
  }

  /**
   * The stored rows as `restore` entries, by namespace, in seq order per topic (a row without a
   * message: no payload, the numbering only); first, a namespace's forgotten floor.
   */
  load() {
    const byNs = new Map();
    const entriesOf = (ns) => {
      let entries = byNs.get(ns);
      if (entries === undefined) {
        entries = [];
        byNs.set(ns, entries);
      }
      return entries;
    };
    for (const r of this.sql.exec('SELECT ns, seq FROM replay_floor')) entriesOf(r.ns).push({ topic: FLOOR_TOPIC, seq: r.seq });
    for (const r of this.sql.exec('SELECT ns, topic, seq, retained, msg FROM replay_log ORDER BY ns, topic, seq')) {
      if (r.msg === null) {
        entriesOf(r.ns).push({ topic: r.topic, seq: r.seq });
        continue;
      }
      const env = JSON.parse(r.msg);
      if (r.ns !== DEFAULT_NS) env.ns = r.ns;
      entriesOf(r.ns).push({ topic: r.topic, payload: env, seq: r.seq, publishedAt: env.publishedAt, retained: r.retained === 1 });
    }
    return byNs;
  }
}
