// The hubs' idempotence window (edge/src/ids.js) on Node's SQLite, behind the Durable Object
// storage's `sql.exec` shape: an id is a duplicate on its topic in its namespace only, the window
// is bounded per namespace by count and by age, a forgotten id is taken again, and the window of
// an earlier version (ids by namespace alone, the table `seen`) keeps its ids duplicates on every
// topic until they age out, then goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { PublishIds } from '../../edge/src/ids.js';

/** `ctx.storage.sql` over a Node SQLite database: `exec(query, ...bindings)` → a cursor. */
function storageSql(db) {
  return {
    exec(query, ...bindings) {
      const rows = db.prepare(query).all(...bindings);
      return { toArray: () => rows, one: () => rows[0], [Symbol.iterator]: () => rows[Symbol.iterator]() };
    },
  };
}

const cfg = { DEDUPE_MAX_IDS: 3, DEDUPE_MAX_AGE_MS: 1000 };
const tables = (db) => db.prepare('SELECT name FROM sqlite_master WHERE type = \'table\' ORDER BY name').all().map((r) => r.name);

test('an id is a duplicate on its topic, in its namespace, only', () => {
  const ids = new PublishIds(storageSql(new DatabaseSync(':memory:')), cfg);
  assert.equal(ids.first('acme', 'chat.room1.x', 'order-1', 0), true);
  assert.equal(ids.first('acme', 'chat.room1.x', 'order-1', 1), false);
  assert.equal(ids.first('acme', 'chat.room2.x', 'order-1', 2), true, 'another topic');
  assert.equal(ids.first('bolt', 'chat.room1.x', 'order-1', 3), true, 'another namespace');
  assert.equal(ids.first('acme', '$dead.mailer', 'order-1@$dead.mailer', 4), true);
  assert.equal(ids.first('acme', '$dead.mailer', 'order-1@$dead.mailer', 5), false);
});

test('the window is bounded per namespace by DEDUPE_MAX_IDS and by DEDUPE_MAX_AGE_MS; a forgotten id is taken again', () => {
  const ids = new PublishIds(storageSql(new DatabaseSync(':memory:')), cfg);
  for (let i = 0; i < 3; i++) assert.equal(ids.first('acme', 't.a', `a${i}`, i), true);
  for (let i = 0; i < 5; i++) assert.equal(ids.first('bolt', 't.a', `b${i}`, 10 + i), true);
  assert.equal(ids.first('acme', 't.a', 'a0', 20), false, 'bolt\'s ids pushed none of acme\'s out');
  assert.equal(ids.first('bolt', 't.a', 'b0', 21), true, 'bolt\'s oldest left its own window');
  assert.equal(ids.first('bolt', 't.a', 'b4', 22), false);
  ids.forget('bolt', 't.a', 'b4');
  assert.equal(ids.first('bolt', 't.a', 'b4', 23), true);
  assert.equal(ids.first('acme', 't.a', 'a2', 1002), true, 'older than DEDUPE_MAX_AGE_MS');
});

test('ids of an earlier version (by namespace alone) stay duplicates on every topic until they age out; then the table goes', () => {
  const db = new DatabaseSync(':memory:');
  db.exec('CREATE TABLE seen (ns TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (ns, id)) WITHOUT ROWID');
  db.exec('CREATE INDEX seen_at ON seen (at)');
  db.prepare('INSERT INTO seen (ns, id, at) VALUES (?, ?, ?)').run('acme', 'old-1', 100);
  db.prepare('INSERT INTO seen (ns, id, at) VALUES (?, ?, ?)').run('acme', 'old-2', 500);
  const ids = new PublishIds(storageSql(db), cfg);
  assert.equal(ids.first('acme', 'any.topic', 'old-1', 600), false);
  assert.equal(ids.first('acme', 'other.topic', 'old-2', 600), false);
  assert.equal(ids.first('bolt', 'any.topic', 'old-1', 600), true, 'still per namespace');
  assert.equal(ids.first('acme', 'any.topic', 'old-1', 1200), true, 'old-1 aged out');
  assert.ok(tables(db).includes('seen'), 'old-2 is still in its window');
  assert.equal(ids.first('acme', 'any.topic', 'new-1', 1600), true);
  assert.ok(!tables(db).includes('seen'), 'dropped once empty');
  assert.equal(ids.first('acme', 'any.topic', 'old-2', 1601), true);
  assert.equal(new PublishIds(storageSql(db), cfg).legacy, false);
});

test('at the count bound the ids recorded first go first, among ids of the same millisecond too (as the core\'s filter evicts)', () => {
  const ids = new PublishIds(storageSql(new DatabaseSync(':memory:')), cfg);
  // One frame: four ids in the same millisecond, in an order their keys do not sort in.
  for (const id of ['c', 'a', 'd', 'b']) assert.equal(ids.first('acme', 't.a', id, 5), true);
  for (const id of ['a', 'd', 'b']) assert.equal(ids.first('acme', 't.a', id, 6), false, `${id} is still in the window`);
  assert.equal(ids.first('acme', 't.a', 'c', 7), true, 'c, recorded first, went first');
});

test('a window stored before the recording order was kept gets it added, and goes on', () => {
  const db = new DatabaseSync(':memory:');
  db.exec(`CREATE TABLE publish_ids (ns TEXT NOT NULL, topic TEXT NOT NULL, id TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (ns, topic, id)) WITHOUT ROWID`);
  db.prepare('INSERT INTO publish_ids (ns, topic, id, at) VALUES (?, ?, ?, ?)').run('acme', 't.a', 'old', 1);
  const ids = new PublishIds(storageSql(db), cfg);
  assert.equal(ids.first('acme', 't.a', 'old', 2), false, 'its ids are kept');
  for (const id of ['z', 'y']) assert.equal(ids.first('acme', 't.a', id, 3), true);
  assert.equal(ids.first('acme', 't.a', 'x', 3), true, 'past the bound: the oldest, old, went');
  const woken = new PublishIds(storageSql(db), cfg);
  for (const id of ['z', 'y', 'x']) assert.equal(woken.first('acme', 't.a', id, 4), false, `${id} after a wake`);
  assert.equal(woken.first('acme', 't.a', 'w', 4), true);
  assert.equal(woken.first('acme', 't.a', 'x', 4), false, 'after a wake the recording order goes on: z went, not x');
  assert.equal(woken.first('acme', 't.a', 'old', 4), true);
});
