// The human form of a probe report: labels in one column, values beside
// them, sizes in KiB/MiB; long lines wrap under their value column.
import type { BlockDeviceLimits } from '../info';
import { formatBytes, formatRange, table } from '../format';
import type { ProbeDevice } from './devices';
import type { ProbeReport } from './types';
import type { TrialRecord } from './trial';

const LABEL_WIDTH = 16;
const WIDTH = 100;

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

/** A labelled entry: the first line beside the label, the rest under the value column. */
function entry(label: string, values: string[]): string {
  return values.map((value, i) => `${(i === 0 ? label : '').padEnd(LABEL_WIDTH)}${value}`.trimEnd()).join('\n');
}

/** A labelled paragraph (or several), wrapped; `bullet` prefixes each paragraph. */
function paragraphs(label: string, texts: string[], bullet = ''): string {
  const hang = ' '.repeat(bullet.length);
  const lines = texts.flatMap((text) =>
    wrap(text, WIDTH - LABEL_WIDTH - bullet.length).map((line, i) => `${i === 0 ? bullet : hang}${line}`),
  );
  return entry(label, lines);
}

/** A device's atomic limits as sysfs gives them: "atomic: none" or "atomic: 4 KiB..64 KiB, max 64 KiB". */
function limits(d: Pick<BlockDeviceLimits, 'unitMinBytes' | 'unitMaxBytes' | 'maxBytes' | 'boundaryBytes'>): string {
  if (d.unitMaxBytes === 0) return 'atomic: none';
  const boundary = d.boundaryBytes > 0 ? `, boundary ${formatBytes(d.boundaryBytes)}` : '';
  return `atomic: ${formatRange(d.unitMinBytes, d.unitMaxBytes)}, max ${formatBytes(d.maxBytes)}${boundary}`;
}

/** The device chain as a tree: each device, then (indented) the devices it is built on. */
function deviceTree(devices: ProbeDevice[]): string[] {
  const byName = new Map(devices.map((d) => [d.name, d]));
  const lines: string[] = [];
  const visit = (device: ProbeDevice, depth: number) => {
    const what = device.dmName ? `${device.kind} ${device.dmName}` : device.kind;
    const backing = device.backingFile ? `, file ${device.backingFile}` : '';
    const prefix = depth === 0 ? '' : `${'  '.repeat(depth - 1)}└ `;
    lines.push(`${prefix}${device.name} (${what}, ${device.majorMinor}${backing})  ${limits(device)}`);
    for (const member of device.members) {
      const next = byName.get(member);
      if (next) visit(next, depth + 1);
    }
  };
  if (devices.length > 0) visit(devices[0], 0);
  return lines;
}

const KIND_NOTE: Record<ProbeReport['kind'], string> = {
  file: 'regular file',
  directory: 'directory',
  'block-device': 'block device',
};

function statxLines(r: ProbeReport): string[] {
  const { statx } = r;
  const of = r.statxOf === 'new-file' ? ' (of a new file there)' : '';
  if (!statx.supported) return [`atomic writes: unsupported${of}`];
  const opt = statx.unitMaxOpt > 0 ? formatBytes(statx.unitMaxOpt) : 'not given';
  const segments = `${statx.segmentsMax} segment${statx.segmentsMax === 1 ? '' : 's'}`;
  return [`atomic writes ${formatRange(statx.unitMin, statx.unitMax)}${of}`, `unit max opt ${opt}, ${segments}`];
}

function dioLine(r: ProbeReport): string {
  const { dioMemAlign, dioOffsetAlign } = r.statx;
  const say = (n: number) => (n === 0 ? 'not said' : formatBytes(n));
  return `memory ${say(dioMemAlign)}, offset ${say(dioOffsetAlign)}`;
}

function pathLine(r: ProbeReport): string {
  const { paths } = r;
  const parts: string[] = [];
  if (paths.hardwareMax > 0) parts.push(`device ${formatRange(paths.hardwareMin, paths.hardwareMax)}`);
  if (paths.softwareMax > 0) parts.push(`XFS copy-on-write ${formatRange(paths.unitMin, paths.softwareMax)}`);
  const pages = `${r.atomicPath} for ${formatBytes(r.pageSize)} pages`;
  return parts.length > 0 ? `${pages} (${parts.join(', ')})` : pages;
}

function trialTable(trial: TrialRecord[]): string[] {
  const rows = [
    ['length', 'position', 'write', 'case', 'kernel', 'statx says'],
    ...trial.map((t) => [
      formatBytes(t.length),
      formatBytes(t.position),
      t.buffered ? 'buffered' : 'O_DIRECT',
      t.what,
      t.ok ? 'ok' : (t.code ?? 'failed'),
      `${t.expected ? 'ok' : 'refuse'}${t.ok === t.expected ? '' : '  (!)'}`,
    ]),
  ];
  return table(rows).split('\n');
}

/** The report as text for a terminal, ending in a newline. */
export function formatProbeReport(r: ProbeReport): string {
  const sections = [
    entry('target', [`${r.target} (${KIND_NOTE[r.kind]})`]),
    entry('kernel', [r.kernel]),
    entry('I/O engine', [`${r.engine.name}: ${r.engine.reason}`]),
  ];
  if (r.filesystem) {
    const fs = r.filesystem;
    sections.push(
      entry('filesystem', [
        `${fs.type} on ${fs.source}, mounted at ${fs.mountPoint}`,
        `block size ${formatBytes(fs.blockSize)}`,
        `options ${fs.options}`,
      ]),
    );
  } else {
    sections.push(entry('filesystem', ['none (a block device)']));
  }
  sections.push(
    entry('statx', statxLines(r)),
    entry('DIO alignment', [dioLine(r)]),
    entry('devices', r.devices.length > 0 ? deviceTree(r.devices) : ['none (no block device under this filesystem)']),
    entry('atomic path', [pathLine(r)]),
    paragraphs('verdict', [r.verdict]),
  );
  if (r.advice.length > 0) sections.push(paragraphs('advice', r.advice, '- '));
  if (r.trial) sections.push(entry('trial', trialTable(r.trial)));
  return `${sections.join('\n')}\n`;
}
