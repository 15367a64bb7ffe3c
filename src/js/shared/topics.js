// Topics and patterns by the core's rules: validity, matching and the stable shard hash. Used by
// the package's own parts and exported for its users (the edge deployment imports them too, so
// that no second copy of a rule exists anywhere).

import { fail, fromCore } from './errors.js';
import { raw, ready } from './core.js';
import { checkString, describe } from './validate.js';

/** Throws INVALID_TOPIC (with the core's reason) unless `topic` is a valid topic to publish on. */
export function checkTopic(topic) {
  ready();
  checkString(topic, 'INVALID_TOPIC', 'topic');
  try {
    raw.validateTopic(topic);
  } catch (e) {
    throw fromCore(e);
  }
}

/** Throws INVALID_PATTERN (with the core's reason) unless `pattern` is a valid subscription pattern. */
export function checkPattern(pattern) {
  ready();
  checkString(pattern, 'INVALID_PATTERN', 'pattern');
  try {
    raw.validatePattern(pattern);
  } catch (e) {
    throw fromCore(e);
  }
}

/** The shard, in 0..shards-1, of a message key (or topic): the core's stable hash, the same natively. */
export function shardOf(keyOrTopic, shards) {
  ready();
  checkString(keyOrTopic, 'INVALID_ARGUMENT', 'keyOrTopic');
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > 2 ** 32 - 1) {
    fail('INVALID_ARGUMENT', `shards must be an integer from 1 to 4294967295, got ${describe(shards)}`);
  }
  return raw.shardOf(keyOrTopic, shards);
}

/** Whether `topic` matches `pattern` (the core's matcher: `*` one token, `>` the rest, `$` rule). */
export function matches(pattern, topic) {
  ready();
  checkString(pattern, 'INVALID_PATTERN', 'pattern');
  checkString(topic, 'INVALID_TOPIC', 'topic');
  try {
    return raw.patternMatches(pattern, topic);
  } catch (e) {
    throw fromCore(e);
  }
}
