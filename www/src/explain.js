// Explains, token by token, why a pattern matches a topic or not, by the rules of
// ../shared/conformance/topics.json. The demo shows this beside what the bus actually delivered.

const isWildcard = (t) => t === '*' || t === '>';

/**
 * Returns `{ match, steps, reason }`: `steps` pair pattern tokens with topic tokens
 * (`{ pattern, topic, ok, text }`), `reason` sums up the verdict in one sentence.
 */
export function explain(pattern, topic) {
  const p = pattern.split('.');
  const t = topic.split('.');
  const steps = [];
  if (t[0].startsWith('$') && isWildcard(p[0])) {
    return {
      match: false,
      steps: [{ pattern: p[0], topic: t[0], ok: false, text: `${p[0]} never takes a $ token first` }],
      reason: `“${t[0]}” starts with $: topics like this are reserved for the system, and a pattern ` +
        'whose first token is a wildcard does not receive them.',
    };
  }
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') {
      const rest = t.slice(i);
      if (rest.length === 0) {
        steps.push({ pattern: '>', topic: '', ok: false, text: 'nothing left' });
        return { match: false, steps, reason: '“>” needs at least one more token, and the topic has none left.' };
      }
      steps.push({ pattern: '>', topic: rest.join('.'), ok: true, text: `takes the remaining ${rest.length}` });
      return { match: true, steps, reason: summary(steps) };
    }
    if (i >= t.length) {
      steps.push({ pattern: token, topic: '', ok: false, text: 'missing' });
      return { match: false, steps, reason: `The topic has ${t.length} token${t.length === 1 ? '' : 's'}; the pattern needs ${p.length}.` };
    }
    if (token === '*') {
      steps.push({ pattern: '*', topic: t[i], ok: true, text: 'any one token' });
    } else if (token === t[i]) {
      steps.push({ pattern: token, topic: t[i], ok: true, text: 'equal' });
    } else {
      steps.push({ pattern: token, topic: t[i], ok: false, text: 'different' });
      return { match: false, steps, reason: `Token ${i + 1}: “${token}” is not “${t[i]}” (tokens compare exactly).` };
    }
  }
  if (t.length > p.length) {
    const extra = t.slice(p.length);
    steps.push({ pattern: '', topic: extra.join('.'), ok: false, text: 'left over' });
    return {
      match: false, steps,
      reason: `The topic has ${extra.length} more token${extra.length === 1 ? '' : 's'} than the pattern; only “>” takes more than one.`,
    };
  }
  return { match: true, steps, reason: summary(steps) };
}

function summary(steps) {
  const wild = steps.filter((s) => s.pattern === '*' || s.pattern === '>');
  if (wild.length === 0) return 'Every token is equal.';
  return `Literal tokens are equal; ${wild.map((s) => (s.pattern === '*' ? `“*” takes “${s.topic}”` : `“>” takes “${s.topic}”`)).join(', ')}.`;
}
