// Renders a scenario's results: a table (median, min, max, ratio) and an SVG bar chart of medians
// with min–max whiskers.
import { formatRatio, formatValue } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Inline `code` spans from backticks in scenario titles and notes. */
export function withCode(text) {
  const frag = document.createDocumentFragment();
  text.split(/(`[^`]+`)/).forEach((part) => {
    if (part.startsWith('`') && part.endsWith('`') && part.length > 1) frag.append(el('code', {}, part.slice(1, -1)));
    else if (part) frag.append(part);
  });
  return frag;
}

export function renderTable(t, id) {
  const unitNote = t.better === 'higher' ? 'higher is better' : 'lower is better';
  const table = el('table', { class: 'results', 'data-table': id },
    el('caption', {}, `${t.label} (${unitNote})`));
  table.append(el('thead', {}, el('tr', {},
    el('th', { scope: 'col' }, 'contender'),
    el('th', { scope: 'col', class: 'num' }, 'median'),
    el('th', { scope: 'col', class: 'num' }, 'min'),
    el('th', { scope: 'col', class: 'num' }, 'max'),
    el('th', { scope: 'col', class: 'num' }, t.ratioLabel))));
  const body = el('tbody');
  t.rows.forEach((row, i) => {
    body.append(el('tr', { 'data-contender': row.contender, class: i === 0 ? 'base' : '' },
      el('th', { scope: 'row' }, el('span', { class: 'name' }, row.contender), el('code', { class: 'call' }, row.code),
        ...(row.details ?? []).map((d) => el('span', { class: 'detail' }, `${d.label}: ${formatValue(d.median, t.unit)} ${t.unit}`))),
      el('td', { class: 'num', 'data-col': 'median', 'data-value': String(row.median) }, formatValue(row.median, t.unit)),
      el('td', { class: 'num', 'data-col': 'min' }, formatValue(row.min, t.unit)),
      el('td', { class: 'num', 'data-col': 'max' }, formatValue(row.max, t.unit)),
      el('td', { class: 'num', 'data-col': 'ratio' }, formatRatio(row.ratio))));
  });
  table.append(body);
  return el('div', { class: 'table-scroll' }, table);
}

export function renderChart(t) {
  const rowH = 30, labelW = 190, valueW = 96, width = 720, pad = 8;
  const height = t.rows.length * rowH + pad * 2;
  const top = Math.max(...t.rows.map((r) => r.max)) || 1;
  const barW = width - labelW - valueW;
  const x = (v) => labelW + (v / top) * barW;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `${t.label}: median per contender, bars; min to max, whiskers`,
  });
  t.rows.forEach((row, i) => {
    const y = pad + i * rowH;
    const mid = y + rowH / 2;
    chart.append(svg('text', { x: labelW - 10, y: mid, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-label' }, row.contender));
    chart.append(svg('rect', { x: labelW, y: y + 5, width: Math.max(1, x(row.median) - labelW), height: rowH - 10, rx: 3, class: i === 0 ? 'bar base' : 'bar' }));
    chart.append(svg('line', { x1: x(row.min), x2: x(row.max), y1: mid, y2: mid, class: 'whisker' }));
    for (const v of [row.min, row.max]) chart.append(svg('line', { x1: x(v), x2: x(v), y1: mid - 5, y2: mid + 5, class: 'whisker' }));
    chart.append(svg('text', { x: width - valueW + 8, y: mid, 'dominant-baseline': 'middle', class: 'chart-value' },
      `${formatValue(row.median, t.unit)} ${t.unit}`));
  });
  return chart;
}
