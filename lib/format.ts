// Text helpers for the CLI's human reports: sizes, counts and aligned tables.

const SIZE_UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 16384 -> "16 KiB", 1536 -> "1.5 KiB", 0 -> "0 bytes". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = unit === 0 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${SIZE_UNITS[unit]}`;
}

/** 14812 -> "14.8k", 1234567 -> "1.23M", 87.3 -> "87.3". */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (abs >= 100) return String(Math.round(n));
  return n.toPrecision(3).replace(/\.?0+$/, '');
}

/** Rows of cells as aligned columns: text left-aligned, numbers (cells starting with a digit) right-aligned. */
export function table(rows: string[][], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = widths.map((_, i) => rows.slice(1).every((row) => row[i] === undefined || /^[\d.-]/.test(row[i])));
  return rows
    .map((row) => indent + row.map((cell, i) => (numeric[i] && i > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ').trimEnd())
    .join('\n');
}
