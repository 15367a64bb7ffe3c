// The demo page: loads the WebAssembly module once, then mounts each registered section and builds
// the navigation from the same list.
import { init } from 'edgebus';
import { sections } from './sections/index.js';
import { errorText, h } from './dom.js';

const nav = document.getElementById('site-nav');
const root = document.getElementById('sections');
const loadState = document.getElementById('load-state');

try {
  await init();
  for (const s of sections) {
    const body = h('div', { class: 'section-body' });
    root.append(h('section', { class: 'demo', id: s.id, 'aria-labelledby': `${s.id}-title` },
      h('h2', { id: `${s.id}-title` }, s.title),
      h('p', { class: 'lead' }, s.summary),
      body));
    nav.append(h('a', { href: `#${s.id}` }, s.title));
    s.mount(body);
  }
  nav.append(h('a', { href: '/bench/' }, 'Benchmarks'));
  loadState.textContent = 'Ready.';
  document.body.dataset.ready = 'true';
} catch (err) {
  loadState.textContent = `Could not start: ${errorText(err)}`;
  loadState.className = 'error';
  throw err;
}
