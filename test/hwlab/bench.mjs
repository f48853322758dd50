// `npm run hwlab -- --bench`: speed on the hardware path (a benchmark, not a
// test). One boot, XFS on one NVMe namespace with 16 KiB atomic writes,
// bench-guest.mjs's interleaved rounds. TCG on a shared host says nothing
// about a real device's speed: only ratios from this one boot are reported,
// as the median over rounds with the lowest and highest round.
//
// Goals (issue 15): atomic >= 0.9x unprotected; the atomic page file >= 1.2x
// the doublewrite page file, with <= 0.55x its device bytes per page. A goal
// missed is reported, not failed: the exit status says only whether it ran.
import { runOnXfs } from './guest.mjs';

const ROUNDS = 7;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

export async function runBenchLab({ lab, initramfs, cache, repo }) {
  const { output, seconds: guestSeconds } = await runOnXfs({
    lab,
    initramfs,
    cache,
    what: 'the bench',
    command: `node ${repo}/test/hwlab/bench-guest.mjs ${repo} /tmp/lab nvme0n1 ${ROUNDS} > /run/hwlab/bench.json`,
    output: 'bench.json',
    timeoutMs: 15 * 60_000,
  });
  const raw = JSON.parse(output);
  const per = (f) => raw.rounds.map(f);
  const ratios = {
    atomicVsUnprotected: spread(per((r) => r.bench.atomic.pagesPerSec / r.bench.unprotected.pagesPerSec)),
    atomicVsDoublewrite: spread(per((r) => r.bench.atomic.pagesPerSec / r.bench.doublewrite.pagesPerSec)),
    pageFileSpeed: spread(per((r) => r.pagefile.auto.pagesPerSec / r.pagefile.doublewrite.pagesPerSec)),
    pageFileDeviceBytes: spread(
      per((r) => r.pagefile.auto.deviceBytesPerPage / r.pagefile.doublewrite.deviceBytesPerPage),
    ),
  };
  const bytesPerPage = {
    pageFileAuto: median(per((r) => r.pagefile.auto.deviceBytesPerPage)),
    pageFileDoublewrite: median(per((r) => r.pagefile.doublewrite.deviceBytesPerPage)),
    atomic: median(per((r) => r.bench.atomic.deviceBytesPerPage)),
    unprotected: median(per((r) => r.bench.unprotected.deviceBytesPerPage)),
    doublewrite: median(per((r) => r.bench.doublewrite.deviceBytesPerPage)),
  };
  const goals = [
    { goal: 'atomic >= 0.9x unprotected', met: ratios.atomicVsUnprotected.median >= 0.9 },
    { goal: 'atomic page file >= 1.2x doublewrite page file', met: ratios.pageFileSpeed.median >= 1.2 },
    { goal: 'atomic page file <= 0.55x its device bytes', met: ratios.pageFileDeviceBytes.median <= 0.55 },
  ];
  // It ran and measured what it says: the auto page file is atomic here, the other double-writes.
  const passed = raw.pageFileStrategies.auto === 'atomic' && raw.pageFileStrategies.doublewrite === 'doublewrite';
  return {
    rounds: raw.rounds.length,
    strategies: raw.pageFileStrategies,
    autoReason: raw.autoReason,
    ratios,
    bytesPerPage,
    goals,
    raw: raw.rounds,
    passed,
    guestSeconds,
  };
}

export function formatBench(report) {
  const f = (s) => `${s.median.toFixed(2)}x (${s.min.toFixed(2)}..${s.max.toFixed(2)})`;
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  const r = report.ratios;
  const lines = [
    `16 KiB pages, XFS on NVMe with 16 KiB atomic writes, ${report.rounds} interleaved rounds in one boot (median, lowest..highest round):`,
    ...[
      ['untorn bench: atomic / unprotected, pages/s', r.atomicVsUnprotected],
      ['untorn bench: atomic / doublewrite, pages/s', r.atomicVsDoublewrite],
      [`page files: auto (${report.strategies.auto}) / doublewrite, pages/s`, r.pageFileSpeed],
      [`page files: auto (${report.strategies.auto}) / doublewrite, device bytes`, r.pageFileDeviceBytes],
    ].map(([what, s]) => `  ${what.padEnd(56)}${f(s)}`),
    `  device bytes per page (median): page file auto ${kib(report.bytesPerPage.pageFileAuto)}, page file doublewrite ${kib(report.bytesPerPage.pageFileDoublewrite)}; bench atomic ${kib(report.bytesPerPage.atomic)}, doublewrite ${kib(report.bytesPerPage.doublewrite)}, unprotected ${kib(report.bytesPerPage.unprotected)}`,
    ...report.goals.map((g) => `  goal ${g.goal}: ${g.met ? 'met' : 'MISSED'}`),
  ];
  return `${lines.join('\n')}\n`;
}
