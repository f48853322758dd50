// The crash lab's page file scenarios: page files under simulated power loss.
//
// Same lab as test/crash.test.ts (docs/crash-lab.md): the writer opens a page
// file (strategy doublewrite, atomic or unprotected) on XFS 4K or ext4 under
// the recorder and writes rounds of concurrent writePages calls, marking
// each call's pages once it resolved (acknowledged durable). Every crash
// state is mounted and the page file opened with untorn's openPageFile,
// writable (recovery runs on the state's copy); every page is read with
// readPage and classified from its stamps: ok, torn (a mix returned), lost,
// detected (ERR_PAGE_CORRUPT), corrupt.
//
// Mandatory under UNTORN_REQUIRE_FS=1, like test/crash.test.ts.
import { expect, it } from 'vitest';
import { describeCrashLab, type LabReport } from './helpers/crash-lab';

interface Scenario {
  name: string;
  kind: 'pagefile' | 'pagefile-control' | 'pagefile-lying';
  states: number;
  ok: number;
  torn: number;
  lost: number;
  corrupt: number;
  detected: number;
  mountFailures: number;
  openFailures: number;
  replayMismatches: number;
  recovery: { pagesRestored: number; batchesDiscarded: number };
  pages: { ok: number; torn: number; lost: number; corrupt: number; detected: number };
  tears: { data: number; dataShown: number; dblwr: number; log: number };
  examples: unknown[];
  kept: string[];
}

interface Report extends LabReport<Scenario> {
  recordings: {
    name: string;
    pageWrites: number;
    log: { writes: number; data: number; dblwr: number; log: number; flushes: number; marks: number; api: string };
  }[];
}

// By kind weight: ~550 states for each of the three page file scenarios that
// must recover everything, ~280 for each unprotected control, ~185 on a lying disk.
const STATES = 2400;
describeCrashLab<Scenario, Report>(
  {
    what: 'the page file crash lab',
    title: 'crash lab: page files under simulated power loss',
    states: STATES,
    scenarios: 'pagefile',
    line: (s) =>
      `${s.name}: ${s.states} states, ${s.ok} ok, ${s.torn} torn, ${s.lost} lost, ${s.corrupt} corrupt, ${s.detected} detected, ${s.mountFailures} mount failures, ${s.openFailures} open failures; model tore ${s.tears.data} page writes (${s.tears.dataShown} shown), ${s.tears.dblwr} doublewrite writes, ${s.tears.log} log records; recovery restored ${s.recovery.pagesRestored} pages`,
  },
  (lab) => {
    it('records a page file run per strategy and filesystem, with its marks and flushes', () => {
      expect(lab.report.recordings.map((r) => r.name).sort()).toEqual([
        'pagefile atomic xfs4k',
        'pagefile doublewrite ext4',
        'pagefile doublewrite xfs4k',
        'pagefile unprotected ext4',
        'pagefile unprotected xfs4k',
      ]);
      for (const r of lab.report.recordings) {
        const strategy = r.name.split(' ')[1];
        expect(r.log.api, r.name).toBe(`pagefile-${strategy}`);
        // 12 rounds of one to three calls of one to six pages.
        expect(r.pageWrites, r.name).toBeGreaterThanOrEqual(12);
        expect(r.log.data, r.name).toBeGreaterThanOrEqual(12);
        // A flush at least for every round's last batch (recording also checked
        // that every acknowledged call had a flush of its own in the log).
        expect(r.log.flushes, r.name).toBeGreaterThanOrEqual(12);
        // The doublewrite file's writes are told apart (by its extents), so that they are torn too.
        if (strategy === 'doublewrite') expect(r.log.dblwr, r.name).toBeGreaterThanOrEqual(12);
        else expect(r.log.dblwr, r.name).toBe(0);
      }
    });

    it('doublewrite (XFS, ext4) and atomic (XFS): every page recovered, none torn, lost, corrupt or refused', () => {
      const proof = lab.of('pagefile');
      expect(proof.map((s) => s.name).sort()).toEqual([
        'pagefile atomic xfs4k',
        'pagefile doublewrite ext4',
        'pagefile doublewrite xfs4k',
      ]);
      for (const s of proof) {
        expect(s.states, s.name).toBeGreaterThanOrEqual(300);
        expect({
          name: s.name,
          torn: s.torn,
          lost: s.lost,
          corrupt: s.corrupt,
          detected: s.detected,
          mountFailures: s.mountFailures,
          openFailures: s.openFailures,
          examples: s.examples,
        }).toEqual({
          name: s.name,
          torn: 0,
          lost: 0,
          corrupt: 0,
          detected: 0,
          mountFailures: 0,
          openFailures: 0,
          examples: [],
        });
        expect(s.ok + s.replayMismatches, s.name).toBe(s.states);
        // While the model tore the page writes (and the copies, and the log).
        expect(s.tears.data, s.name).toBeGreaterThanOrEqual(10);
        if (s.name.includes('doublewrite')) {
          expect(s.tears.dblwr, s.name).toBeGreaterThanOrEqual(10);
          // Recovery did the work: pages were restored from their copies.
          expect(s.recovery.pagesRestored, s.name).toBeGreaterThan(0);
        }
        if (s.name.includes('xfs')) expect(s.tears.log, s.name).toBeGreaterThanOrEqual(5);
      }
    });

    it('control: unprotected page files detect every torn page write and never return one', () => {
      const control = lab.of('pagefile-control');
      expect(control.map((s) => s.name).sort()).toEqual(['pagefile unprotected ext4', 'pagefile unprotected xfs4k']);
      for (const s of control) {
        expect(s.tears.data, s.name).toBeGreaterThanOrEqual(10);
        // Every state in which the model tore a page write shows that page refused.
        expect(s.tears.dataShown, s.name).toBe(s.tears.data);
        expect(s.detected, s.name).toBeGreaterThanOrEqual(s.tears.data);
        expect({
          name: s.name,
          torn: s.torn,
          lost: s.lost,
          corrupt: s.corrupt,
          mountFailures: s.mountFailures,
          openFailures: s.openFailures,
        }).toEqual({
          name: s.name,
          torn: 0,
          lost: 0,
          corrupt: 0,
          mountFailures: 0,
          openFailures: 0,
        });
        expect(s.pages.torn, s.name).toBe(0);
      }
    });

    it("control: on a lying disk (flushes dropped) the checker sees the page file's acknowledged pages lost", () => {
      const lying = lab.of('pagefile-lying');
      expect(lying.map((s) => s.name)).toEqual(['lying-disk pagefile doublewrite xfs4k']);
      for (const s of lying) {
        expect(s.states, s.name).toBeGreaterThanOrEqual(50);
        expect(s.lost + s.corrupt, s.name).toBeGreaterThanOrEqual(s.states / 4);
      }
    });

    it('replays are reproducible', () => {
      for (const s of lab.report.scenarios) expect(s.replayMismatches, s.name).toBeLessThanOrEqual(s.states / 100);
    });
  },
);
