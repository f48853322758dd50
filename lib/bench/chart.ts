// `untorn bench --svg FILE`: the report as a chart a person would rather look
// at than read. Throughput bars on the left, page-latency percentiles on a log
// scale on the right. Plain string building, so it needs no DOM and no
// dependency, and the same report always gives the same bytes.
import { formatBytes, formatCount, formatRatio } from '../format';
import type { BenchReport, Percentiles, Strategy, StrategyResult } from './types';

const WIDTH = 900;
const HEIGHT = 520;
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif';
const INK = '#222';
const MUTED = '#666';
const GRID = '#e4e4e4';

/** Fixed per strategy, so a strategy has the same colour in both panels and in every chart. */
const COLOURS: Record<Strategy, string> = {
  atomic: '#3566b0',
  doublewrite: '#e0822a',
  unprotected: '#8f8f8f',
  pagefile: '#2f9e5b',
  journal: '#8e44ad',
};

/** The percentiles drawn, lightest for the rarest so the typical case stands out. */
const PERCENTILES: { key: keyof Percentiles; label: string; opacity: number }[] = [
  { key: 'p50', label: 'p50', opacity: 1 },
  { key: 'p99', label: 'p99', opacity: 0.55 },
  { key: 'p999', label: 'p99.9', opacity: 0.22 },
];

const PATH_LABELS: Record<string, string> = {
  hardware: 'hardware atomic path',
  software: 'software atomic path',
  none: 'no atomic writes',
};

/** A plot area; y0 is the top edge. */
interface Area {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const PLOT_TOP = 180;
const PLOT_BOTTOM = 392;
const THROUGHPUT: Area = { x0: 70, x1: 428, y0: PLOT_TOP, y1: PLOT_BOTTOM };
const LATENCY: Area = { x0: 516, x1: 878, y0: PLOT_TOP, y1: PLOT_BOTTOM };
/** Pixels kept free above the tallest throughput bar for its two-line label. */
const LABEL_ROOM = 34;

type Attrs = Record<string, string | number>;

const UNENCODABLE = new RegExp(
  '[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]' + // control characters, non-characters
    '|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]', // lone surrogates
  'g',
);

/**
 * Text made safe for XML content and attribute values. Mount options and
 * verdicts may hold any character, and XML 1.0 cannot carry most control
 * characters or lone surrogates even escaped, so those become U+FFFD.
 */
function escapeXml(text: string): string {
  return text
    .replace(UNENCODABLE, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A coordinate with one decimal: enough for a screen, and never NaN in the output. */
function coord(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0';
}

function el(name: string, attrs: Attrs, content = ''): string {
  const list = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? coord(v) : escapeXml(v)}"`)
    .join('');
  return content === '' ? `<${name}${list}/>` : `<${name}${list}>${content}</${name}>`;
}

function text(x: number, y: number, content: string, attrs: Attrs = {}): string {
  return el('text', { x, y, ...attrs }, escapeXml(content));
}

/** A figure as plotted: anything but a finite positive number plots as 0. */
function figure(v: number): number {
  return Number.isFinite(v) && v > 0 ? v : 0;
}

/** Rough rendered width of text; labels are fitted with it, since there is no layout engine here. */
function widthOf(s: string, size: number, bold = false): number {
  return s.length * size * (bold ? 0.6 : 0.55);
}

/** Cut to fit a width, with an ellipsis; before escaping, so no entity is ever cut. */
function fit(s: string, width: number, size: number, bold = false): string {
  const max = Math.floor(width / (size * (bold ? 0.6 : 0.55)));
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1)).trimEnd()}…`;
}

/** Word-wraps to at most `lines` lines; the last one is cut if the text is longer. */
function wrap(s: string, width: number, size: number, lines: number, bold = false): string[] {
  const out: string[] = [];
  let line = '';
  const words = s.split(/\s+/).filter((w) => w !== '');
  for (let i = 0; i < words.length; i++) {
    const next = line === '' ? words[i] : `${line} ${words[i]}`;
    if (line === '' || widthOf(next, size, bold) <= width) {
      line = next;
    } else if (out.length === lines - 1) {
      // No line left: the rest goes on this one and is cut to fit.
      line = `${line} ${words.slice(i).join(' ')}`;
      break;
    } else {
      out.push(line);
      line = words[i];
    }
  }
  out.push(line);
  return out.map((l) => fit(l, width, size, bold));
}

/** Ticks from 0 to a round number at or above max, in 1-2-5 steps, about `count` intervals. */
function linearTicks(max: number, count: number): number[] {
  const top = max > 0 ? max : 1;
  const raw = top / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const n = Math.ceil(top / step - 1e-9);
  // toPrecision drops float noise such as 0.30000000000000004.
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** Decade exponents for a log axis over the positive values, at most about 8 labelled decades. */
function logDecades(values: number[]): { lo: number; hi: number; step: number } {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return { lo: 0, hi: 1, step: 1 };
  // A bar starts at the bottom decade: keep that a little below the smallest
  // value, so the smallest bar still has a visible length.
  const lo = Math.floor(Math.log10(Math.min(...positive)) - 0.3);
  const span = Math.max(1, Math.ceil(Math.log10(Math.max(...positive))) - lo);
  const step = Math.ceil(span / 8);
  return { lo, hi: lo + step * Math.ceil(span / step), step };
}

function colourOf(strategy: Strategy): string {
  // A report read from JSON may name a strategy this version does not know.
  return COLOURS[strategy] ?? MUTED;
}

function header(report: BenchReport): string {
  const { config, stack } = report;
  const title = `untorn bench: ${formatBytes(config.pageSize)} pages on ${stack.filesystem} (${PATH_LABELS[stack.atomicPath] ?? stack.atomicPath})`;
  const amount =
    config.writes !== null
      ? `${formatCount(config.writes)} writes`
      : config.duration !== null
        ? `${config.duration} s`
        : null;
  const subtitle = [
    `batch ${config.batch}`,
    `depth ${config.depth}`,
    `sync ${config.sync}`,
    config.pattern,
    `${formatCount(config.pages)} pages`,
    `${config.rounds} rounds${amount === null ? '' : ` of ${amount} per strategy`}`,
    `kernel ${stack.kernel}`,
  ].join(' · ');
  const verdict = wrap(report.verdict, WIDTH - 76, 15, 2, true);
  const boxHeight = 14 + 20 * verdict.length;
  return [
    text(20, 32, fit(title, WIDTH - 40, 19, true), { 'font-size': 19, 'font-weight': 'bold', fill: INK }),
    text(20, 52, fit(subtitle, WIDTH - 40, 12), { 'font-size': 12, fill: MUTED }),
    el('rect', { x: 20, y: 64, width: WIDTH - 40, height: boxHeight, rx: 4, fill: '#f2f5fa' }),
    el('rect', { x: 20, y: 64, width: 4, height: boxHeight, fill: COLOURS.atomic }),
    ...verdict.map((line, i) =>
      text(38, 64 + 22 + 20 * i, line, { 'font-size': 15, 'font-weight': 'bold', fill: INK }),
    ),
  ].join('\n');
}

function panelTitle(area: Area, title: string, note: string): string {
  return [
    text(area.x0 - 50, 146, title, { 'font-size': 14, 'font-weight': 'bold', fill: INK }),
    text(area.x0 - 50, 162, note, { 'font-size': 11, fill: MUTED }),
  ].join('\n');
}

/** The x centre of result i of n across an area's width. */
function slotCentre(area: Area, i: number, n: number): number {
  return area.x0 + ((area.x1 - area.x0) / n) * (i + 0.5);
}

function throughputPanel(results: StrategyResult[]): string {
  const a = THROUGHPUT;
  const n = Math.max(1, results.length);
  const slot = (a.x1 - a.x0) / n;
  const tallest = Math.max(0, ...results.flatMap((r) => [figure(r.pagesPerSec), figure(r.pagesPerSecRange.max)]));
  const ticks = linearTicks((tallest * (a.y1 - a.y0)) / (a.y1 - a.y0 - LABEL_ROOM), 5);
  const top = ticks[ticks.length - 1];
  const y = (v: number): number => a.y1 - (figure(v) / top) * (a.y1 - a.y0);
  const out = [panelTitle(a, 'Throughput, pages/s', 'median of rounds; whisker: slowest to fastest round')];
  for (const t of ticks) {
    out.push(
      el('line', {
        x1: a.x0,
        x2: a.x1,
        y1: y(t),
        y2: y(t),
        stroke: GRID,
        class: 'grid-linear',
        'data-value': String(t),
      }),
    );
    out.push(text(a.x0 - 8, y(t) + 4, formatCount(t), { 'font-size': 11, fill: MUTED, 'text-anchor': 'end' }));
  }
  results.forEach((r, i) => {
    const cx = slotCentre(a, i, n);
    const width = Math.min(76, slot * 0.55);
    const value = figure(r.pagesPerSec);
    const colour = colourOf(r.strategy);
    out.push(
      el('rect', {
        x: cx - width / 2,
        y: y(value),
        width,
        height: a.y1 - y(value),
        fill: colour,
        class: 'throughput',
        'data-strategy': r.strategy,
        'data-value': String(value),
      }),
    );
    const low = Math.min(figure(r.pagesPerSecRange.min), figure(r.pagesPerSecRange.max));
    const high = Math.max(figure(r.pagesPerSecRange.min), figure(r.pagesPerSecRange.max));
    if (high > 0) {
      const cap = Math.min(14, width / 2);
      out.push(
        el('path', {
          d: `M${coord(cx)} ${coord(y(low))}V${coord(y(high))}M${coord(cx - cap / 2)} ${coord(y(low))}h${coord(cap)}M${coord(cx - cap / 2)} ${coord(y(high))}h${coord(cap)}`,
          stroke: INK,
          'stroke-width': 1.5,
          fill: 'none',
          class: 'whisker',
        }),
      );
    }
    // Value and ratio sit above whichever is higher, the bar or its whisker.
    const above = Math.min(y(value), y(high)) - 7;
    const ratio = r.vsUnprotected?.pagesPerSec;
    const lines = [`${formatCount(value)} pages/s`];
    if (r.strategy === 'unprotected' && r.vsUnprotected !== null) lines.push('baseline');
    else if (ratio !== null && ratio !== undefined && Number.isFinite(ratio))
      lines.push(`${formatRatio(ratio)} unprotected`);
    lines.forEach((line, j) => {
      const bold = j === 0;
      out.push(
        text(cx, above - 14 * (lines.length - 1 - j), fit(line, slot - 4, bold ? 12 : 11, bold), {
          'font-size': bold ? 12 : 11,
          'font-weight': bold ? 'bold' : 'normal',
          fill: bold ? INK : MUTED,
          'text-anchor': 'middle',
        }),
      );
    });
    const below = [`${formatCount(figure(r.mibPerSec))} MiB/s`];
    if (r.deviceBytesPerPage !== null && Number.isFinite(r.deviceBytesPerPage)) {
      below.push(`device ${formatBytes(figure(r.deviceBytesPerPage))}/page`);
    }
    out.push(
      text(cx, a.y1 + 18, fit(r.strategy, slot - 4, 12, true), {
        'font-size': 12,
        'font-weight': 'bold',
        fill: INK,
        'text-anchor': 'middle',
      }),
    );
    below.forEach((line, j) => {
      out.push(
        text(cx, a.y1 + 33 + 13 * j, fit(line, slot - 4, 10), {
          'font-size': 10,
          fill: MUTED,
          'text-anchor': 'middle',
        }),
      );
    });
  });
  out.push(el('line', { x1: a.x0, x2: a.x1, y1: a.y1, y2: a.y1, stroke: INK }));
  return out.join('\n');
}

function latencyPanel(results: StrategyResult[]): string {
  const a = LATENCY;
  const n = Math.max(1, results.length);
  const slot = (a.x1 - a.x0) / n;
  const { lo, hi, step } = logDecades(results.flatMap((r) => PERCENTILES.map((p) => figure(r.latencyUs[p.key]))));
  const yExp = (e: number): number => a.y1 - ((e - lo) / (hi - lo)) * (a.y1 - a.y0);
  // Zero (or anything below the axis) sits on the axis: a log scale has no 0.
  const y = (v: number): number => (v > 0 ? Math.min(a.y1, yExp(Math.log10(v))) : a.y1);
  const out = [panelTitle(a, 'Page write latency, µs', 'per page write, all rounds pooled; log scale')];
  for (let e = lo; e <= hi; e += step) {
    out.push(
      el('line', {
        x1: a.x0,
        x2: a.x1,
        y1: yExp(e),
        y2: yExp(e),
        stroke: GRID,
        class: 'grid-log',
        'data-value': String(10 ** e),
      }),
    );
    out.push(text(a.x0 - 8, yExp(e) + 4, formatCount(10 ** e), { 'font-size': 11, fill: MUTED, 'text-anchor': 'end' }));
    // Minor ticks at 2..9 show the scale is logarithmic at a glance.
    if (step === 1 && e < hi) {
      const d = Array.from({ length: 8 }, (_, k) => {
        const ty = coord(yExp(e + Math.log10(k + 2)));
        return `M${coord(a.x0 - 4)} ${ty}h4`;
      }).join('');
      out.push(el('path', { d, stroke: '#999', fill: 'none' }));
    }
  }
  results.forEach((r, i) => {
    const cx = slotCentre(a, i, n);
    const group = Math.min(slot * 0.8, 114);
    const width = group / PERCENTILES.length;
    const colour = colourOf(r.strategy);
    PERCENTILES.forEach((p, j) => {
      const value = figure(r.latencyUs[p.key]);
      const x = cx - group / 2 + width * j;
      out.push(
        el('rect', {
          x: x + 1,
          y: y(value),
          width: width - 2,
          height: a.y1 - y(value),
          fill: colour,
          'fill-opacity': p.opacity,
          stroke: colour,
          class: 'latency',
          'data-strategy': r.strategy,
          'data-percentile': p.label,
          'data-value': String(value),
        }),
      );
      out.push(
        text(x + width / 2, y(value) - 4, formatCount(value), { 'font-size': 10, fill: INK, 'text-anchor': 'middle' }),
      );
    });
    out.push(
      text(cx, a.y1 + 18, fit(r.strategy, slot - 4, 12, true), {
        'font-size': 12,
        'font-weight': 'bold',
        fill: INK,
        'text-anchor': 'middle',
      }),
    );
  });
  out.push(el('line', { x1: a.x0, x2: a.x1, y1: a.y1, y2: a.y1, stroke: INK }));
  return out.join('\n');
}

/** A row of swatch + label items, centred on cx. */
function legendRow(cx: number, y: number, items: { label: string; swatch: Attrs }[]): string {
  const widths = items.map((item) => 18 + widthOf(item.label, 12) + 16);
  let x = cx - widths.reduce((s, w) => s + w, 0) / 2;
  return items
    .map((item, i) => {
      const out =
        el('rect', { x, y: y - 10, width: 12, height: 12, rx: 2, ...item.swatch }) +
        text(x + 18, y, item.label, { 'font-size': 12, fill: INK });
      x += widths[i];
      return out;
    })
    .join('\n');
}

function legends(results: StrategyResult[]): string {
  const strategies = legendRow(
    (THROUGHPUT.x0 + THROUGHPUT.x1) / 2 - 25,
    470,
    results.map((r) => ({ label: r.strategy, swatch: { fill: colourOf(r.strategy) } })),
  );
  const percentiles = legendRow(
    (LATENCY.x0 + LATENCY.x1) / 2 - 25,
    470,
    PERCENTILES.map((p) => ({ label: p.label, swatch: { fill: INK, 'fill-opacity': p.opacity, stroke: INK } })),
  );
  return `<g class="legend">\n${strategies}\n${percentiles}\n</g>`;
}

function footer(report: BenchReport): string {
  const { stack } = report;
  const statx = stack.statx.supported
    ? `statx atomic ${formatBytes(stack.statx.unitMin)} to ${formatBytes(stack.statx.unitMax)}`
    : 'statx: no atomic writes';
  const line = [
    `${stack.filesystem} on ${stack.mountPoint} (${stack.mountOptions})`,
    statx,
    stack.counterDevice === null ? 'no block device counters' : `device counters from ${stack.counterDevice}`,
  ].join(' · ');
  return text(20, HEIGHT - 14, fit(line, WIDTH - 40, 10.5), { 'font-size': 10.5, fill: MUTED });
}

/** The whole report as a standalone SVG 1.1 document. */
export function renderChart(report: BenchReport): string {
  const title = `untorn bench: ${report.verdict}`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="${FONT}">`,
    el('title', {}, escapeXml(title)),
    el('rect', { x: 0, y: 0, width: WIDTH, height: HEIGHT, fill: '#fff' }),
    header(report),
    throughputPanel(report.results),
    latencyPanel(report.results),
    legends(report.results),
    footer(report),
    '</svg>',
    '',
  ].join('\n');
}
