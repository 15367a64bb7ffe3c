// The durable copy of what an owner hub's core holds for replay: each namespace's retained values
// and per-topic history (the `routing` Bus's logs, HISTORY_* and RETAIN_* settings), as rows of the
// SQLite table `replay_log` (namespace, topic, sequence, time, whether it is the topic's retained
// value, the message as JSON).
//
// The core decides everything about these logs (sequence numbers, which messages are kept, limits,
// eviction, what a replay returns and where it has a gap); this file only mirrors it. A message the
// core tracks is written in the turn it is accepted (so in that turn's implicit transaction, before
// its publisher is answered), and after each publish the topic's rows are trimmed to what the core
// still holds (`logOf`). After an eviction by the core's cross-topic limits, or a wake, every topic
// of the namespace is trimmed that way. On a wake the rows are put back into the core (`restore`),
// seqs preserved, so a restart, a hibernation or an eviction of the hub changes nothing a client
// can replay.
import { DEFAULT_NS } from './auth.js';
import { visible } from './groups.js';

export class ReplayLog {
  constructor(sql) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS replay_log (ns TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL,
      retained INTEGER NOT NULL, msg TEXT NOT NULL, PRIMARY KEY (ns, topic, seq)) WITHOUT ROWID`);
  }

  /** Stores a message the core tracks (`env.seq` set); `retained`: it is now the topic's retained value. */
  record(ns, env, retained) {
    const msg = visible(env);
    if (retained) this.sql.exec('UPDATE replay_log SET retained = 0 WHERE ns = ? AND topic = ? AND retained = 1', ns, env.topic);
    this.sql.exec('INSERT OR REPLACE INTO replay_log (ns, topic, seq, retained, msg) VALUES (?, ?, ?, ?, ?)',
      ns, env.topic, env.seq, retained ? 1 : 0, JSON.stringify(msg));
  }

  /**
   * Trims topic `topic`'s rows to what the core holds (`log`: its `logOf`, undefined when nothing):
   * the history's seqs firstSeq..lastSeq and the retained value's seq.
   */
  trim(ns, topic, log) {
    if (log === undefined) {
      this.sql.exec('DELETE FROM replay_log WHERE ns = ? AND topic = ?', ns, topic);
      return;
    }
    const kept = log.retainedSeq ?? -1;
    const first = log.held > 0 ? log.firstSeq : Infinity;
    const last = log.held > 0 ? log.lastSeq : -Infinity;
    this.sql.exec('DELETE FROM replay_log WHERE ns = ? AND topic = ? AND (seq < ? OR seq > ?) AND seq != ?', ns, topic, first, last, kept);
    this.sql.exec('UPDATE replay_log SET retained = (seq = ?) WHERE ns = ? AND topic = ? AND retained != (seq = ?)', kept, ns, topic, kept);
  }

  /** Trims every stored topic of namespace `ns` to what `bus` (its routing Bus) holds. */
  trimAll(ns, bus) {
    const topics = this.sql.exec('SELECT DISTINCT topic FROM replay_log WHERE ns = ?', ns).toArray();
    for (const { topic } of topics) this.trim(ns, topic, bus.logOf(topic));
  }

  /** The stored rows as `restore` entries, by namespace, in seq order per topic. */
  load() {
    const byNs = new Map();
    for (const r of this.sql.exec('SELECT ns, topic, seq, retained, msg FROM replay_log ORDER BY ns, topic, seq')) {
      const env = JSON.parse(r.msg);
      if (r.ns !== DEFAULT_NS) env.ns = r.ns;
      let entries = byNs.get(r.ns);
      if (entries === undefined) {
        entries = [];
        byNs.set(r.ns, entries);
      }
      entries.push({ topic: r.topic, payload: env, seq: r.seq, publishedAt: env.publishedAt, retained: r.retained === 1 });
    }
    return byNs;
  }
}
