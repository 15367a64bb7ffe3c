// Number formatting shared by the tables, the charts and the headless runner's text table.

export function formatValue(x, unit) {
  if (!Number.isFinite(x)) return String(x);
  if (unit === 'ms') return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
  if (unit.startsWith('B/')) return x >= 1024 ? `${(x / 1024).toFixed(2)} Ki` : x.toFixed(0);
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

export const formatRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '—');
