#!/usr/bin/env node
// untorn crash lab: `npm run crash [-- options]`.
//
//   --states N    crash states to replay over all scenarios (default 2000)
//   --seed S      seed of every random choice (default: time-based; printed)
//   --workers W   replay workers, one loop-device partition each (default 2, at most 4)
//   --json        print one JSON document on stdout and nothing else there
//   --tear-metadata  also replay the atomic logs with XFS metadata writeback
//                 torn (reported, not judged: docs/crash-lab.md, "Limits")
//   --scenarios G which scenarios: all (default), classic (atomic/plain
//                 files and lying disks), pagefile (page files) or journal
//                 (journals, and the same files written without one) or
//                 pglite (PGlite through openPGlite, and its two controls;
//                 only when asked by name, never in 'all')
//
// Exit code 0 when every verdict holds, 1 when one fails (the seed and the
// kept state images are printed), 2 on bad usage. Progress goes to stderr.
import { suite } from './lab.mjs';

function usage(message) {
  process.stderr.write(
    `crash: ${message}\nusage: npm run crash -- [--states N] [--seed S] [--workers W] [--json] [--tear-metadata] [--scenarios all|classic|pagefile|journal|pglite]\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const opts = {
  states: 2000,
  seed: (Date.now() % 2 ** 31) >>> 0,
  workers: 2,
  json: false,
  tearMetadata: false,
  groups: ['classic', 'pagefile', 'journal'],
};
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const num = (name) => {
    const v = Number(args[++i]);
    if (!Number.isSafeInteger(v) || v < 0) usage(`${name} takes a non-negative integer`);
    return v;
  };
  if (a === '--states') opts.states = num('--states');
  else if (a === '--seed') opts.seed = num('--seed') >>> 0;
  else if (a === '--workers') opts.workers = num('--workers');
  else if (a === '--json') opts.json = true;
  else if (a === '--tear-metadata') opts.tearMetadata = true;
  else if (a === '--scenarios') {
    const g = args[++i];
    if (!['all', 'classic', 'pagefile', 'journal', 'pglite'].includes(g))
      usage('--scenarios takes all, classic, pagefile, journal or pglite');
    // 'all' leaves PGlite out: its states cost a PostgreSQL start each; it runs when asked by name.
    opts.groups = g === 'all' ? ['classic', 'pagefile', 'journal'] : [g];
  } else if (a === '-h' || a === '--help') usage('help');
  else usage(`unknown argument ${a}`);
}
if (opts.workers < 1 || opts.workers > 4) usage('--workers takes 1 to 4');
if (opts.states < 1) usage('--states takes at least 1');

const log = (line) => process.stderr.write(`crash: ${line}\n`);
log(`seed ${opts.seed}, ${opts.states} states, ${opts.workers} workers, scenarios ${opts.groups.join(' and ')}`);

let report;
try {
  report = await suite({
    states: opts.states,
    seed: opts.seed,
    workers: opts.workers,
    log,
    tearMetadata: opts.tearMetadata,
    groups: opts.groups,
  });
} catch (e) {
  log(`failed (seed ${opts.seed}): ${e.stack ?? e.message}`);
  process.exit(1);
}

if (opts.json) {
  const { states, seed, workers, recordMs, replayMs, statesPerMinute, umountWaits, failures, keptDir, recordings } =
    report;
  const scenarios = report.scenarios.map(({ examples, kept, ...s }) => ({ ...s, examples, kept }));
  process.stdout.write(
    JSON.stringify({
      states,
      seed,
      workers,
      recordMs,
      replayMs,
      statesPerMinute,
      umountWaits,
      scenarios,
      recordings,
      failures,
      keptDir,
    }) + '\n',
  );
} else {
  // The last columns count what the model did: data writes it tore (and in
  // how many of those states the torn page showed), log records it tore.
  // Replay mismatches (states whose two replays disagreed) get a column only when there are any.
  const meta = report.scenarios.some((s) => s.tears.meta > 0);
  const mism = report.scenarios.some((s) => s.replayMismatches > 0);
  // Page files and journals: states with a page readPage refused (detected),
  // opens that failed, and doublewrite-file (or journal file) writes torn.
  const pf = report.scenarios.some((s) => /^(pagefile|journal|pglite)/.test(s.kind));
  // PGlite: WAL writes torn, and acknowledged transactions checked (missing).
  const pg = report.scenarios.some((s) => /^pglite/.test(s.kind));
  const head = [
    'scenario',
    'states',
    'ok',
    'torn',
    'lost',
    'corrupt',
    ...(pf ? ['detected'] : []),
    'mount failures',
    ...(pf ? ['open failures'] : []),
    ...(mism ? ['replay mismatches'] : []),
    'data writes torn (page shown torn)',
    ...(pf ? ['doublewrite writes torn'] : []),
    ...(pg ? ['WAL writes torn', 'acknowledged transactions checked (missing)'] : []),
    'log records torn',
    ...(meta ? ['metadata torn'] : []),
  ];
  const rows = report.scenarios.map((s) => [
    s.name,
    s.states,
    s.ok,
    s.torn,
    s.lost,
    s.corrupt,
    ...(pf ? [s.detected] : []),
    s.mountFailures,
    ...(pf ? [s.openFailures] : []),
    ...(mism ? [s.replayMismatches] : []),
    `${s.tears.data} (${s.tears.dataShown})${s.tears.dataFresh ? ` + ${s.tears.dataFresh} fresh` : ''}`,
    ...(pf ? [s.tears.dblwr] : []),
    ...(pg
      ? [s.tears.wal ?? 0, s.transactions ? `${s.transactions.acknowledged} (${s.transactions.missing})` : '']
      : []),
    s.tears.log,
    ...(meta ? [s.tears.meta] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    '| ' +
    cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ') +
    ' |';
  const out = [
    line(head),
    '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|',
    ...rows.map(line),
  ];
  process.stdout.write(out.join('\n') + '\n');
  process.stdout.write(
    `${report.states} states (seed ${report.seed}); recording ${(report.recordMs / 1000).toFixed(1)} s, replay ${(report.replayMs / 1000).toFixed(1)} s on ${report.workers} workers (${report.statesPerMinute} states/min); a device still held after its umount ${report.umountWaits.count} times (longest wait ${report.umountWaits.maxMs} ms); ${report.scenarios.reduce((n, s) => n + s.replayMismatches, 0)} states replayed differently twice\n`,
  );
}
if (report.failures.length > 0) {
  log(`FAILED (seed ${report.seed}; rerun with --seed ${report.seed} --states ${opts.states}):`);
  for (const f of report.failures) log(`  ${f}`);
  if (report.keptDir) log(`state images (before their mount) kept in ${report.keptDir}`);
  process.exit(1);
}
log('every verdict holds');
