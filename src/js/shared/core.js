// The WebAssembly core this copy of the package runs on. Each entry point loads the wasm-bindgen
// module its platform needs and hands it over once (`useCore`), before anything else runs; every
// other module reads it from here.
//
// The boundary's numbers (record tags, publish verdicts, overflow codes, the order of the
// subscription options) are the core's: read from it once the module is ready (`protocol()`),
// never written down a second time in JavaScript.

import { EdgebusError } from './errors.js';

/** The wasm-bindgen module (WasmBroker, WasmFilter, shardOf, patternMatches, protocol, …). */
export let raw;
let notReady;

/** Overflow policy name → the core's code, in the order the API lists them. */
export let OVERFLOW;
export let ACCEPTED, DUPLICATE, MUST_WAIT, QUIET;
export let REC_DELIVER, REC_BATCH, REC_TIMED_OUT, REC_IDLE, REC_ROOM, REC_RELEASE, REC_CLAIMED,
  REC_DEAD, REC_FAILED, REC_RETIRED, REC_REQUEST_ENDED, REC_NUMBERED, REC_GAPS;
/** `answer` verdicts. */
export let ANSWER_LATE, ANSWER_REPLY, ANSWER_REPLY_LAST, ANSWER_FAILED, ANSWER_FAILED_LAST, ANSWER_DECLINED,
  ANSWER_DECLINED_LAST, ANSWER_COMPLETE_LAST, ANSWER_DECLINED_FAILED_LAST;
/** What an answer is, for `answer`. */
export let KIND_REPLY, KIND_FAILURE, KIND_DECLINE;
/** Subscription option name (`maxQueue`, `batch.maxSize`, …) → its place among the numbers the
 * core's `subscribe` takes; SUB_OPTION_COUNT numbers in all. */
export let SUB_OPTION, SUB_OPTION_COUNT;

/**
 * Hands the loaded wasm-bindgen module to the package. `whenNotReady`, where the module is
 * instantiated later (`init()` in browsers), throws NOT_INITIALIZED until it is.
 */
export function useCore(module, whenNotReady) {
  raw = module;
  notReady = whenNotReady;
}

/** Throws NOT_INITIALIZED before `init()` (browsers); reads the protocol on first use. */
export function ready() {
  if (notReady !== undefined) notReady();
  if (OVERFLOW === undefined) loadProtocol();
}

function loadProtocol() {
  if (raw === undefined) throw new EdgebusError('NOT_INITIALIZED', 'edgebus has no WebAssembly core: import it from the package entry for your platform');
  const p = raw.protocol();
  ({ accepted: ACCEPTED, duplicate: DUPLICATE, mustWait: MUST_WAIT, quiet: QUIET } = p.verdicts);
  ({
    deliver: REC_DELIVER, batch: REC_BATCH, timedOut: REC_TIMED_OUT, idle: REC_IDLE, room: REC_ROOM,
    release: REC_RELEASE, claimed: REC_CLAIMED, dead: REC_DEAD, failed: REC_FAILED, retired: REC_RETIRED,
    requestEnded: REC_REQUEST_ENDED, numbered: REC_NUMBERED, gaps: REC_GAPS,
  } = p.records);
  ({
    late: ANSWER_LATE, reply: ANSWER_REPLY, replyLast: ANSWER_REPLY_LAST, failed: ANSWER_FAILED,
    failedLast: ANSWER_FAILED_LAST, declined: ANSWER_DECLINED, declinedLast: ANSWER_DECLINED_LAST,
    completeLast: ANSWER_COMPLETE_LAST, declinedFailedLast: ANSWER_DECLINED_FAILED_LAST,
  } = p.answers);
  ({ reply: KIND_REPLY, failure: KIND_FAILURE, decline: KIND_DECLINE } = p.answerKinds);
  const overflow = Object.create(null);
  for (const [name, code] of p.overflow) overflow[name] = code;
  const options = Object.create(null);
  p.subscribeOptions.forEach((name, i) => { options[name] = i; });
  SUB_OPTION = Object.freeze(options);
  SUB_OPTION_COUNT = p.subscribeOptions.length;
  OVERFLOW = Object.freeze(overflow);
}
