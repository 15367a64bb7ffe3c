// The durable idempotence window of a hub's publishes: the SQLite table `publish_ids`, a row
// `(namespace, topic, id, time)` per message published with an id.
//
// An id is a duplicate only on the topic and in the namespace it was published with: a token
// that may publish on some topics of a hub cannot make the ids of other topics (messages it may
// not publish, dead letters) duplicates, and one tenant never dedupes against another. Bounded
// per namespace by DEDUPE_MAX_IDS (the oldest go: one tenant's ids never push another's out) and
// by DEDUPE_MAX_AGE_MS. Each id costs one indexed lookup; a wake reads nothing but, on a
// namespace's first id, its row count.
//
// Hubs of an earlier version kept ids by namespace alone, in the table `seen`: while it has rows
// (at most DEDUPE_MAX_AGE_MS after the upgrade) an id found there is a duplicate on every topic,
// as it was when it was written; then the table is dropped.

export class PublishIds {
  constructor(sql, cfg) {
    this.sql = sql;
    this.cfg = cfg;
    this.counts = new Map(); // namespace → its rows, counted on first use after a wake
    this.order = undefined;  // the `n` of the id recorded last (read on first use after a wake)
    sql.exec(`CREATE TABLE IF NOT EXISTS publish_ids (ns TEXT NOT NULL, topic TEXT NOT NULL, id TEXT NOT NULL,
      at INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, topic, id)) WITHOUT ROWID`);
    // `n`: the order ids were recorded in, which the count bound evicts by (ids of one frame or
    // batch share their millisecond). A table from before it has the column added (its rows 0).
    if (!sql.exec('SELECT name FROM pragma_table_info(\'publish_ids\')').toArray().some((c) => c.name === 'n')) {
      sql.exec('ALTER TABLE publish_ids ADD COLUMN n INTEGER NOT NULL DEFAULT 0');
    }
    sql.exec('CREATE INDEX IF NOT EXISTS publish_ids_at ON publish_ids (at)');
    sql.exec('DROP INDEX IF EXISTS publish_ids_ns_at');
    sql.exec('CREATE INDEX IF NOT EXISTS publish_ids_ns_order ON publish_ids (ns, at, n)');
    this.legacy = sql.exec('SELECT 1 FROM sqlite_master WHERE type = \'table\' AND name = \'seen\'').toArray().length > 0;
  }

  /**
   * True (and remembered) unless `id` was published on `topic` in namespace `ns` within
   * DEDUPE_MAX_AGE_MS, among the namespace's last DEDUPE_MAX_IDS ids.
   */
  first(ns, topic, id, now) {
    const sql = this.sql;
    const { DEDUPE_MAX_IDS, DEDUPE_MAX_AGE_MS } = this.cfg;
    const cutoff = now - DEDUPE_MAX_AGE_MS;
    for (const r of sql.exec('SELECT at FROM publish_ids WHERE ns = ? AND topic = ? AND id = ?', ns, topic, id)) {
      if (r.at > cutoff) return false;
    }
    if (this.legacy && !this._firstLegacy(ns, id, cutoff)) return false;
    // Age bound: ids older than the window go (the index on `at` finds them), whatever their namespace.
    for (const r of sql.exec('DELETE FROM publish_ids WHERE at <= ? RETURNING ns', cutoff)) {
      if (this.counts.has(r.ns)) this.counts.set(r.ns, this.counts.get(r.ns) - 1);
    }
    let count = this.counts.get(ns) ?? sql.exec('SELECT count(*) AS n FROM publish_ids WHERE ns = ?', ns).one().n;
    this.order ??= sql.exec('SELECT coalesce(max(n), 0) AS n FROM publish_ids').one().n;
    this.order++;
    sql.exec('INSERT OR REPLACE INTO publish_ids (ns, topic, id, at, n) VALUES (?, ?, ?, ?, ?)', ns, topic, id, now, this.order);
    count++;
    // Count bound: the namespace's oldest go, in the order they were recorded, as the core's
    // filter evicts (not by key among ids of the same millisecond).
    if (count > DEDUPE_MAX_IDS) {
      const over = count - DEDUPE_MAX_IDS;
      sql.exec(`DELETE FROM publish_ids WHERE ns = ? AND (topic, id) IN
        (SELECT topic, id FROM publish_ids WHERE ns = ? ORDER BY at, n LIMIT ?)`, ns, ns, over);
      count -= over;
    }
    this.counts.set(ns, count);
    return true;
  }

  /** Removes an id from the window (its publish was not delivered everywhere: it may come again). */
  forget(ns, topic, id) {
    const n = this.sql.exec('DELETE FROM publish_ids WHERE ns = ? AND topic = ? AND id = ? RETURNING 1', ns, topic, id).toArray().length;
    if (this.counts.has(ns)) this.counts.set(ns, this.counts.get(ns) - n);
  }

  /** The earlier version's window, by namespace and id: false for an id it holds; dropped once empty. */
  _firstLegacy(ns, id, cutoff) {
    const sql = this.sql;
    sql.exec('DELETE FROM seen WHERE at <= ?', cutoff);
    for (const r of sql.exec('SELECT at FROM seen WHERE ns = ? AND id = ?', ns, id)) {
      if (r.at > cutoff) return false;
    }
    if (sql.exec('SELECT 1 FROM seen LIMIT 1').toArray().length === 0) {
      sql.exec('DROP TABLE seen');
      this.legacy = false;
    }
    return true;
  }
}
