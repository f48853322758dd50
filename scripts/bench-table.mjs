#!/usr/bin/env node
// Prints the README's bench table (Markdown) from `untorn bench --json` reports:
//   node scripts/bench-table.mjs docs/bench-disk.json="disk-backed" docs/bench-ram.json="RAM-backed" ...
import fs from 'node:fs';

const int = (n) => Math.round(n).toLocaleString('en-US');
const kib = (bytes) => (bytes === null ? '—' : `${(bytes / 1024).toFixed(1)} KiB`);
const share = (n, batch) => (n >= 1 ? (n === 1 ? '1' : `1 + 1/${batch}`) : `${Math.round(n * batch)}/${batch}`);

const rows = [
  '| stack, settings | strategy | pages/s (rounds) | vs unprotected | p50 / p99 µs | device bytes/page | syncs/page |',
  '| --- | --- | --- | --- | --- | --- | --- |',
];
for (const arg of process.argv.slice(2)) {
  const [file, label] = arg.split('=');
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  const { batch, depth, sync } = report.config;
  const settings = `${label ?? `${report.stack.filesystem} on ${report.stack.mountPoint}`}, ${sync === 'page' ? 'RWF_DSYNC' : `batch ${batch}`}, depth ${depth}${depth > 1 && report.engine ? ` (${report.engine.name})` : ''}`;
  const run = report.results.map((r) => r.strategy);
  const lines = report.results.map((r) => [
    r.strategy,
    `${int(r.pagesPerSec)} (${int(r.pagesPerSecRange.min)}–${int(r.pagesPerSecRange.max)})`,
    r.vsUnprotected ? String(Number(r.vsUnprotected.pagesPerSec.toFixed(2))) : '—',
    `${int(r.latencyUs.p50)} / ${int(r.latencyUs.p99)}`,
    kib(r.deviceBytesPerPage),
    share(r.flushesPerPage, batch),
  ]);
  if (!run.includes('atomic')) lines.unshift(['atomic', 'left out: unsupported', '', '', '', '']);
  lines.forEach((cells, i) => rows.push(`| ${i === 0 ? settings : ''} | ${cells.join(' | ')} |`));
}
console.log(rows.join('\n'));
