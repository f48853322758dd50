// Text helpers for the human reports and the chart: sizes, counts, ratios and aligned tables.

/** At most three significant digits, trailing zeros dropped: 7.8, 14.8, 950, 0.012. */
function significant(x: number): string {
  const s = x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2);
  return String(Number(s));
}

/** Scales |v| down by `base` until it prints below one step of it: [value, unit index]. */
function scaled(v: number, base: number, units: number): [number, number] {
  let x = Math.abs(v);
  let i = 0;
  // 999.6 would print as "1000"; move it up a unit instead.
  while (x >= base - 0.5 && i < units - 1) {
    x /= base;
    i++;
  }
  return [x, i];
}

const COUNT_UNITS = ['', 'k', 'M', 'G', 'T'];
const SIZE_UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A count in SI shorthand: 7.8k, 14.8k, 1.2M, 950. */
export function formatCount(v: number): string {
  if (!Number.isFinite(v)) return '?';
  const [x, i] = scaled(v, 1000, COUNT_UNITS.length);
  return `${v < 0 ? '-' : ''}${significant(x)}${COUNT_UNITS[i]}`;
}

/** Bytes in binary units: 512 bytes, 16 KiB, 32.2 KiB, 1 MiB. */
export function formatBytes(v: number): string {
  if (!Number.isFinite(v)) return '?';
  const [x, i] = scaled(v, 1024, SIZE_UNITS.length);
  return `${v < 0 ? '-' : ''}${significant(x)} ${SIZE_UNITS[i]}`;
}

/** A ratio as people say it: 1.9x, 0.53x, 12x; a tiny one as <0.01x rather than a misleading 0.00x. */
export function formatRatio(r: number): string {
  if (r > 0 && r < 0.005) return '<0.01x';
  return `${r >= 9.95 ? r.toFixed(0) : r >= 0.995 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** "4 KiB..1 MiB", or "4 KiB" when both ends are one size. */
export function formatRange(min: number, max: number): string {
  return min === max ? formatBytes(min) : `${formatBytes(min)}..${formatBytes(max)}`;
}

/** Rows of cells as aligned columns: text left-aligned, numbers (cells starting with a digit) right-aligned. */
export function table(rows: string[][], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = widths.map((_, i) => rows.slice(1).every((row) => row[i] === undefined || /^[\d.-]/.test(row[i])));
  return rows
    .map(
      (row) =>
        indent +
        row
          .map((cell, i) => (numeric[i] && i > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}
