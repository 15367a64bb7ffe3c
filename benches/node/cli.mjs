// What the smaller Node benchmarks share: their command line (`--quick`, `--rounds N`, `--json
// FILE`), the median of a round's rates, and the JSON figures written where `--json` says.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The command line: `quick`, `rounds` (default 1 quick, else `rounds`), `json` (a path or undefined). */
export function benchArgs(rounds = 9, argv = process.argv.slice(2)) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  return { quick, rounds: Number(arg('--rounds') ?? (quick ? 1 : rounds)), json: arg('--json') };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Writes `figures` as JSON to `path` (its folder made), with the Node version; nothing without a path. */
export function writeJson(path, figures) {
  if (path === undefined) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ runtime: `node ${process.version}`, ...figures }, null, 2) + '\n');
}
