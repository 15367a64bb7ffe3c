// Every error code the package and the edge deployment can hand to a caller is in the
// TypeScript `ErrorCode` union: the codes are read from the sources (each place an error is made
// with a literal code in the JavaScript, the core's `ErrorCode::as_str` in src/error.rs), the
// union from the package's declarations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sources = (dir) => readdirSync(join(root, dir), { recursive: true })
  .filter((f) => f.endsWith('.js'))
  .map((f) => join(root, dir, f));

test('every code an error is made with is declared in ErrorCode', () => {
  const dts = readFileSync(join(root, 'src/js/index.d.ts'), 'utf8');
  const union = dts.slice(dts.indexOf('export type ErrorCode ='), dts.indexOf(';', dts.indexOf('export type ErrorCode =')));
  const declared = new Set([...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]));
  const made = new Map(); // code → first place
  const maker = /\b(?:EdgebusError|fail|errorResponse|refuse|reject\w*|error\w*)\(\s*'([A-Z][A-Z_]+)'/g;
  for (const file of [...sources('src/js'), ...sources('edge/src')]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(maker)) {
      if (!made.has(m[1])) made.set(m[1], `${file.slice(root.length + 1)}:${text.slice(0, m.index).split('\n').length}`);
    }
  }
  const core = readFileSync(join(root, 'src/error.rs'), 'utf8');
  for (const m of core.matchAll(/ErrorCode::\w+ => "([A-Z_]+)"/g)) if (!made.has(m[1])) made.set(m[1], 'src/error.rs');
  assert.ok(made.size >= 30, `codes found in the sources: ${[...made.keys()]}`);
  const missing = [...made].filter(([code]) => !declared.has(code)).map(([code, at]) => `${code} (${at})`);
  assert.deepEqual(missing, [], 'codes made in the sources but not declared in ErrorCode');
});
