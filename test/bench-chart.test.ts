// The `untorn bench --svg` chart: a pure function of a report, so the reports
// here are built by hand, including the awkward ones a real run can produce.
import { describe, expect, it } from 'vitest';
import { renderChart } from '../lib/bench/chart';
import { formatCount } from '../lib/format';
import type { BenchReport, Percentiles, Strategy, StrategyResult } from '../lib/bench/types';

function result(
  strategy: Strategy,
  pagesPerSec: number,
  range: [number, number],
  latency: [number, number, number],
  overrides: Partial<StrategyResult> = {},
): StrategyResult {
  const latencyUs: Percentiles = { p50: latency[0], p99: latency[1], p999: latency[2] };
  return {
    strategy,
    pagesWritten: 100_000,
    pagesDigest: '0123456789abcdef',
    pagesPerSec,
    mibPerSec: (pagesPerSec * 16384) / 1048576,
    pagesPerSecRange: { min: range[0], max: range[1] },
    latencyUs,
    batchLatencyUs: latencyUs,
    deviceBytesPerPage: strategy === 'doublewrite' ? 32768 : 16384,
    flushesPerPage: 1 / 16,
    deviceFlushesPerPage: 1 / 16,
    vsUnprotected: null,
    ...overrides,
  };
}

function vs(pagesPerSec: number): StrategyResult['vsUnprotected'] {
  return {
    pagesPerSec,
    mibPerSec: pagesPerSec,
    latencyP50: 1,
    latencyP99: 1,
    latencyP999: 1,
    batchLatencyP50: 1,
    batchLatencyP99: 1,
    batchLatencyP999: 1,
    deviceBytesPerPage: 1,
    flushesPerPage: 1,
    deviceFlushesPerPage: 1,
  };
}

function report(results: StrategyResult[], overrides: Partial<BenchReport> = {}): BenchReport {
  return {
    stack: {
      kernel: '6.18.0-1-amd64',
      filesystem: 'xfs',
      mountPoint: '/mnt/scratch',
      mountOptions: 'rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota',
      statx: {
        supported: true,
        unitMin: 4096,
        unitMax: 2097152,
        unitMaxOpt: 0,
        segmentsMax: 1,
        dioMemAlign: 512,
        dioOffsetAlign: 512,
        blockSize: 4096,
      },
      blockDevice: null,
      atomicPath: 'software',
      counterDevice: 'loop3',
    },
    config: {
      pageSize: 16384,
      batch: 16,
      depth: 32,
      sync: 'batch',
      pattern: 'random',
      pages: 65536,
      strategies: results.map((r) => r.strategy),
      rounds: 5,
      writes: 20000,
      duration: null,
    },
    results,
    verdict: 'the XFS software path is slower than double-write here (0.53x); keep double-write',
    notes: [],
    ...overrides,
  };
}

/** The README's example run. */
const three = report([
  result('atomic', 7800, [7100, 8300], [110, 900, 4000], { vsUnprotected: vs(0.1) }),
  result('doublewrite', 14800, [13900, 15500], [60, 500, 2500], { vsUnprotected: vs(0.19) }),
  result('unprotected', 78000, [70000, 81000], [11, 40, 300], { vsUnprotected: vs(1) }),
]);

interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
}

const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/;

/**
 * A strict reader for the subset of XML the chart uses (a prolog, elements,
 * double-quoted attributes, text): throws on anything not well-formed, and
 * returns every element with its attributes and direct text.
 */
function parseXml(xml: string): Element[] {
  const token = /<\?xml[^?]*\?>|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"]*")*)\s*(\/?)>|([^<]+)/y;
  const attribute = /([A-Za-z_][\w.:-]*)="([^"]*)"/g;
  const open: Element[] = [];
  const all: Element[] = [];
  let roots = 0;
  let pos = 0;
  while (pos < xml.length) {
    token.lastIndex = pos;
    const m = token.exec(xml);
    if (m === null) throw new Error(`not well-formed at ${pos}: ${xml.slice(pos, pos + 40)}`);
    pos = token.lastIndex;
    const [whole, close, name, attrText, selfClosing, text] = m;
    if (whole.startsWith('<?xml')) {
      if (m.index !== 0) throw new Error('XML declaration not at the start');
    } else if (text !== undefined) {
      if (ENTITY.test(text) || text.includes('>')) throw new Error(`unescaped text: ${text}`);
      if (open.length === 0) {
        if (text.trim() !== '') throw new Error(`text outside the root: ${text}`);
      } else {
        open[open.length - 1].text += text;
      }
    } else if (close === '/') {
      const top = open.pop();
      if (top?.name !== name) throw new Error(`</${name}> closes <${top?.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const [, key, value] of attrText.matchAll(attribute)) {
        if (key in attrs) throw new Error(`duplicate attribute ${key} on <${name}>`);
        if (ENTITY.test(value) || value.includes('<')) throw new Error(`unescaped attribute ${key}="${value}"`);
        attrs[key] = value;
      }
      if (open.length === 0 && ++roots > 1) throw new Error('more than one root element');
      const element = { name, attrs, text: '' };
      all.push(element);
      if (selfClosing !== '/') open.push(element);
    }
  }
  if (open.length > 0) throw new Error(`<${open[open.length - 1].name}> never closed`);
  if (roots !== 1) throw new Error('no root element');
  return all;
}

function unescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function byClass(elements: Element[], cls: string): Element[] {
  return elements.filter((e) => e.attrs.class === cls);
}

function num(e: Element, attr: string): number {
  return Number(e.attrs[attr]);
}

/** Checks that hold for every chart, whatever the report. */
function renderChecked(r: BenchReport): { svg: string; elements: Element[]; texts: string[] } {
  const svg = renderChart(r);
  const elements = parseXml(svg);
  expect(svg).not.toMatch(/NaN|undefined|Infinity|null/);
  const root = elements[0];
  expect(root.name).toBe('svg');
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
  expect(root.attrs.viewBox).toBe('0 0 900 520');
  expect(root.attrs['font-family']).toMatch(/sans-serif$/);
  // Nothing is placed off the canvas.
  for (const e of elements) {
    for (const attr of ['x', 'x1', 'x2']) if (attr in e.attrs) expect(num(e, attr)).toBeGreaterThanOrEqual(0);
    for (const attr of ['x', 'x1', 'x2']) if (attr in e.attrs) expect(num(e, attr)).toBeLessThanOrEqual(900);
    for (const attr of ['y', 'y1', 'y2']) if (attr in e.attrs) expect(num(e, attr)).toBeGreaterThanOrEqual(0);
    for (const attr of ['y', 'y1', 'y2']) if (attr in e.attrs) expect(num(e, attr)).toBeLessThanOrEqual(520);
    for (const attr of ['width', 'height']) if (attr in e.attrs) expect(num(e, attr)).toBeGreaterThanOrEqual(0);
  }
  const texts = elements.filter((e) => e.name === 'text').map((e) => unescape(e.text));
  return { svg, elements, texts };
}

describe('renderChart', () => {
  it('is one well-formed SVG document with a white background', () => {
    const { svg, elements } = renderChecked(three);
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ')).toBe(true);
    expect(elements[0].attrs).toMatchObject({ version: '1.1', width: '900', height: '520' });
    expect(elements[2]).toMatchObject({ name: 'rect', attrs: { width: '900', height: '520', fill: '#fff' } });
  });

  it('names the stack and config, and shows the verdict', () => {
    const { texts } = renderChecked(three);
    expect(texts).toContain('untorn bench: 16 KiB pages on xfs (software atomic path)');
    const subtitle = texts.find((t) => t.startsWith('batch 16'));
    expect(subtitle).toMatch(/depth 32 .* sync batch .* random .* 65\.5k pages .* 5 rounds .* kernel 6\.18\.0-1-amd64/);
    expect(texts).toContain(three.verdict);
  });

  it('draws every strategy in both panels, in report order, in one colour each', () => {
    const { elements, texts } = renderChecked(three);
    const bars = byClass(elements, 'throughput');
    expect(bars.map((b) => b.attrs['data-strategy'])).toEqual(['atomic', 'doublewrite', 'unprotected']);
    const latency = byClass(elements, 'latency');
    expect(latency).toHaveLength(9);
    for (const bar of bars) {
      const s = bar.attrs['data-strategy'];
      expect(texts.filter((t) => t === s)).toHaveLength(3); // two axis labels and the legend
      for (const l of latency.filter((e) => e.attrs['data-strategy'] === s)) expect(l.attrs.fill).toBe(bar.attrs.fill);
    }
    expect(new Set(bars.map((b) => b.attrs.fill)).size).toBe(3);
    expect(['p50', 'p99', 'p99.9'].every((p) => texts.includes(p))).toBe(true);
  });

  it('makes throughput bars proportional to pages/s, from one baseline', () => {
    const { elements } = renderChecked(three);
    const bars = byClass(elements, 'throughput');
    const baseline = num(bars[0], 'y') + num(bars[0], 'height');
    const perPage = num(bars[2], 'height') / num(bars[2], 'data-value');
    expect(perPage).toBeGreaterThan(0);
    for (const bar of bars) {
      expect(num(bar, 'y') + num(bar, 'height')).toBeCloseTo(baseline, 0);
      expect(Math.abs(num(bar, 'height') - num(bar, 'data-value') * perPage)).toBeLessThan(0.5);
    }
    // The axis starts at 0, on the baseline, with round ticks.
    const ticks = byClass(elements, 'grid-linear');
    expect(ticks[0].attrs['data-value']).toBe('0');
    expect(num(ticks[0], 'y1')).toBeCloseTo(baseline, 0);
    expect(ticks.map((t) => t.attrs['data-value'])).toEqual(['0', '20000', '40000', '60000', '80000', '100000']);
  });

  it('labels each bar with its value, its ratio to unprotected and its spread', () => {
    const { elements, texts } = renderChecked(three);
    expect(texts).toEqual(expect.arrayContaining(['7.8k pages/s', '14.8k pages/s', '78k pages/s']));
    expect(texts).toEqual(expect.arrayContaining(['0.10x unprotected', '0.19x unprotected', 'baseline']));
    expect(texts).toEqual(expect.arrayContaining(['device 32 KiB/page', '231 MiB/s']));
    expect(byClass(elements, 'whisker')).toHaveLength(3);
  });

  it('puts latency on a log scale: ten times the latency is always the same distance up', () => {
    const { elements } = renderChecked(
      report([
        result('atomic', 100, [90, 110], [10, 100, 1000]),
        result('doublewrite', 100, [90, 110], [20, 200, 2000]),
        result('unprotected', 100, [90, 110], [3, 30, 300]),
      ]),
    );
    const top = (s: Strategy, p: string): number => {
      const bar = byClass(elements, 'latency').find(
        (e) => e.attrs['data-strategy'] === s && e.attrs['data-percentile'] === p,
      );
      return num(bar!, 'y');
    };
    const decade = top('atomic', 'p50') - top('atomic', 'p99');
    expect(decade).toBeGreaterThan(20);
    for (const s of ['atomic', 'doublewrite', 'unprotected'] as const) {
      expect(top(s, 'p50') - top(s, 'p99')).toBeCloseTo(decade, 0);
      expect(top(s, 'p99') - top(s, 'p99.9')).toBeCloseTo(decade, 0);
    }
    // Decade gridlines, evenly spaced, covering the data.
    const grid = byClass(elements, 'grid-log');
    const values = grid.map((g) => num(g, 'data-value'));
    expect(values[0]).toBeLessThanOrEqual(3);
    expect(values[values.length - 1]).toBeGreaterThanOrEqual(2000);
    values.slice(1).forEach((v, i) => expect(v / values[i]).toBeCloseTo(10, 9));
    grid.slice(1).forEach((g, i) => expect(num(grid[i], 'y1') - num(g, 'y1')).toBeCloseTo(decade, 0));
    expect(num(grid[1], 'y1')).toBeCloseTo(top('atomic', 'p50'), 0);
  });

  it('escapes any text a mount or a verdict may carry', () => {
    const hostile = report(three.results, {
      verdict: 'atomic < double-write && "fast" > \'slow\' </text><script>alert(1)</script>',
      stack: { ...three.stack, mountPoint: '/mnt/a&b', mountOptions: 'rw,context="<x>",\u0001bell\ud800' },
    });
    const { svg, texts } = renderChecked(hostile);
    expect(svg).not.toContain('<script');
    expect(svg).not.toContain('\u0001');
    expect(svg).toContain('&lt;/text&gt;&lt;script&gt;');
    expect(texts).toContain(hostile.verdict);
    expect(texts.some((t) => t.includes('xfs on /mnt/a&b (rw,context="<x>",\ufffdbell\ufffd)'))).toBe(true);
  });

  it('renders one strategy, without a ratio or device figures it does not have', () => {
    const { elements, texts } = renderChecked(
      report([
        result('atomic', 7800, [7100, 8300], [110, 900, 4000], { deviceBytesPerPage: null, vsUnprotected: null }),
      ]),
    );
    expect(byClass(elements, 'throughput')).toHaveLength(1);
    expect(byClass(elements, 'latency')).toHaveLength(3);
    expect(texts).toContain('7.8k pages/s');
    expect(texts.some((t) => /x unprotected|baseline|device .*\/page/.test(t))).toBe(false);
  });

  it('renders two strategies', () => {
    const { elements } = renderChecked(
      report([
        result('doublewrite', 14800, [13900, 15500], [60, 500, 2500]),
        result('unprotected', 78000, [70000, 81000], [11, 40, 300]),
      ]),
    );
    expect(byClass(elements, 'throughput').map((b) => b.attrs['data-strategy'])).toEqual([
      'doublewrite',
      'unprotected',
    ]);
  });

  it('survives zeros, identical values and broken figures', () => {
    const zeros = renderChecked(
      report([
        result('atomic', 0, [0, 0], [0, 0, 0]),
        result('unprotected', 0, [0, 0], [0, 0, 0], { vsUnprotected: vs(Number.NaN) }),
      ]),
    );
    for (const bar of byClass(zeros.elements, 'throughput')) expect(num(bar, 'height')).toBe(0);
    const same = renderChecked(
      report([
        result('atomic', 5000, [5000, 5000], [100, 100, 100]),
        result('doublewrite', 5000, [5000, 5000], [100, 100, 100]),
      ]),
    );
    const heights = byClass(same.elements, 'throughput').map((b) => num(b, 'height'));
    expect(heights[0]).toBeGreaterThan(0);
    expect(heights[1]).toBe(heights[0]);
    for (const bar of byClass(same.elements, 'latency')) expect(num(bar, 'height')).toBeGreaterThan(0);
    renderChecked(
      report([
        result(
          'atomic',
          Number.NaN,
          [Number.NaN, Number.POSITIVE_INFINITY],
          [Number.NaN, -1, Number.POSITIVE_INFINITY],
        ),
      ]),
    );
  });

  it('keeps huge ranges on the canvas, thinning the decade labels', () => {
    const { elements } = renderChecked(
      report([
        result('atomic', 3, [1, 5], [0.4, 900, 40_000_000], { vsUnprotected: vs(3 / 12_000_000) }),
        result('unprotected', 12_000_000, [11_000_000, 12_500_000], [1, 2, 3], { vsUnprotected: vs(1) }),
      ]),
    );
    const grid = byClass(elements, 'grid-log').map((g) => num(g, 'data-value'));
    expect(grid[0]).toBeLessThanOrEqual(0.4);
    expect(grid[grid.length - 1]).toBeGreaterThanOrEqual(40_000_000);
    expect(grid.length).toBeLessThanOrEqual(9);
  });
});

describe('formatCount', () => {
  it('writes counts the way the chart labels them', () => {
    expect([0, 7.5, 950, 7800, 14800, 78000, 999.6, 1_200_000, 0.25].map(formatCount)).toEqual([
      '0',
      '7.5',
      '950',
      '7.8k',
      '14.8k',
      '78k',
      '1k',
      '1.2M',
      '0.25',
    ]);
  });
});
