// Output as kubectl prints it: aligned columns, YAML or JSON.
import { stringify } from 'yaml';

export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function formatObject(obj: unknown, output: 'yaml' | 'json'): string {
  return output === 'json' ? JSON.stringify(obj, null, 4) : stringify(obj, { lineWidth: 0 }).trimEnd();
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined || v === '') return '<none>';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
  return String(v);
}
