// `npm run hwlab -- --crash`: power loss on the hardware path. One boot, one
// NVMe namespace (4 KiB blocks, 16 KiB atomic writes) with XFS; the crash
// writer (crash-writer.mjs) writes stamped pages with ack markers; the host
// replays crash states from the namespace's device log (crash-states.mjs).
// Passes when page files ('atomic') and writeAtomic + fdatasync show 0 torn,
// 0 lost and 0 moved pages in every state, the control (plain 64 KiB writes,
// larger than the atomic unit) is caught tearing, and the checker passes its
// controls on made-up logs (crash-controls.mjs: a page split in four
// commands is torn, an ack before its page is lost).
import { crashCheckerControls } from './crash-controls.mjs';
import { replayCrashStates } from './crash-states.mjs';
import { runOnXfs } from './guest.mjs';
import { GEOMETRIES } from './stacks.mjs';

export async function runCrashLab({ lab, initramfs, cache, repo }) {
  // No umount at the end: the states come from the device log, and every
  // write the writer made was O_DIRECT and synced before its ack.
  let report;
  await runOnXfs({
    lab,
    initramfs,
    cache,
    what: 'the crash writer',
    command: `node ${repo}/test/hwlab/crash-writer.mjs ${repo} /tmp/lab\ncp /tmp/lab/done /run/hwlab/done`,
    output: 'done',
    timeoutMs: 10 * 60_000,
    inspect: (result, namespace) => {
      report = replayCrashStates(namespace.log, GEOMETRIES.g16k);
      report.guestSeconds = result.seconds;
    },
  });
  // The checker first shows it sees a torn and a lost page (crash-controls.mjs).
  report.controls = crashCheckerControls();
  const { modes } = report;
  const whole = (m) => m.checks > 0 && m.torn === 0 && m.lost === 0 && m.moved === 0;
  report.passed =
    report.controls.every((c) => c.ok) &&
    report.errors.length === 0 &&
    report.finalOk &&
    whole(modes.pagefile) &&
    whole(modes.atomic) &&
    modes.plain.torn > 0;
  return report;
}

/** The crash report as a table. */
export function formatCrash(report) {
  const rows = [['writes', 'page checks', 'torn', 'lost', 'moved', 'expected', 'result']];
  const expect = { pagefile: 'none torn or lost', atomic: 'none torn or lost', plain: 'torn (control)' };
  const names = {
    pagefile: 'page file (atomic)',
    atomic: 'writeAtomic + fdatasync',
    plain: 'plain 64 KiB + fdatasync',
  };
  for (const [mode, m] of Object.entries(report.modes)) {
    const ok = mode === 'plain' ? m.torn > 0 : m.checks > 0 && m.torn + m.lost + m.moved === 0;
    rows.push([
      names[mode],
      String(m.checks),
      String(m.torn),
      String(m.lost),
      String(m.moved),
      expect[mode],
      ok ? 'ok' : 'FAIL',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
  lines.push(
    `${report.states} crash states from ${report.acks} acks (${report.expectedAcks} expected); last state whole: ${report.finalOk ? 'yes' : 'NO'}`,
  );
  lines.push(
    `checker controls on made-up logs (whole; a page split in four commands; an ack before its page): ${report.controls
      .map((c) => `${c.name} ${c.ok ? (c.name === 'whole' ? 'ok' : 'caught') : 'FAIL'}`)
      .join(', ')}`,
  );
  for (const e of report.errors) lines.push(`FAIL ${e}`);
  return `${lines.join('\n')}\n`;
}
