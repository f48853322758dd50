// The crash lab's journal scenarios: journals under simulated power loss.
//
// Same lab as test/crash.test.ts (docs/crash-lab.md, "Journals"): the writer
// writes three files (one of them growing) through ONE journal (doublewrite
// on XFS 4K and ext4, forced atomic on XFS: its software path) under the
// recorder, in batches that rotate blocking and async writes and commits,
// concurrent commits and a file's datasync, marking each commit once it
// returned. Every crash state is mounted, openJournal replays, and every page
// of every file is read with plain reads and classified from its own stamps
// (the journal adds no checksum): ok, torn, lost, corrupt. Controls: the same
// writes without a journal must tear; a lying disk must lose acknowledged pages.
//
// Mandatory under UNTORN_REQUIRE_FS=1, like test/crash.test.ts.
import { expect, it } from 'vitest';
import { describeCrashLab, type LabReport } from './helpers/crash-lab';

interface Scenario {
  name: string;
  kind: 'journal' | 'journal-control' | 'journal-lying';
  states: number;
  ok: number;
  torn: number;
  lost: number;
  corrupt: number;
  mountFailures: number;
  openFailures: number;
  replayMismatches: number;
  recovery: { pagesRestored: number; batchesDiscarded: number };
  pages: { ok: number; torn: number; lost: number; corrupt: number };
  tears: { data: number; dataShown: number; dataFresh: number; dblwr: number; log: number };
  examples: unknown[];
  kept: string[];
}

interface Report extends LabReport<Scenario> {
  recordings: {
    name: string;
    pageWrites: number;
    log: {
      writes: number;
      data: number;
      dblwr: number;
      flushes: number;
      marks: number;
      api: string;
      batches: Record<string, number>;
    };
  }[];
}

// By kind weight: ~230 states for each of the three journal scenarios, ~230
// for the unjournaled control, ~75 on a lying disk.
const STATES = 1000;
describeCrashLab<Scenario, Report>(
  {
    what: 'the journal crash lab',
    title: 'crash lab: journals under simulated power loss',
    states: STATES,
    scenarios: 'journal',
    line: (s) =>
      `${s.name}: ${s.states} states, ${s.ok} ok, ${s.torn} torn, ${s.lost} lost, ${s.corrupt} corrupt, ${s.mountFailures} mount failures, ${s.openFailures} open failures; model tore ${s.tears.data} page writes (${s.tears.dataShown} shown, ${s.tears.dataFresh} more of grown pages read back absent), ${s.tears.dblwr} journal-file writes, ${s.tears.log} log records; replay restored ${s.recovery.pagesRestored} pages`,
  },
  (lab) => {
    it('records the journal runs and their control, every batch style, with marks and flushes', () => {
      expect(lab.report.states).toBeGreaterThanOrEqual(1000);
      expect(lab.report.recordings.map((r) => r.name).sort()).toEqual([
        'journal atomic xfs4k',
        'journal doublewrite ext4',
        'journal doublewrite xfs4k',
        'unjournaled plain xfs4k',
      ]);
      for (const r of lab.report.recordings) {
        expect(r.log.api, r.name).toBe(
          r.name.startsWith('journal') ? `journal-${r.name.split(' ')[1]}` : 'journal-plain',
        );
        // 16 batches of three to six writes, in five styles.
        expect(r.pageWrites, r.name).toBeGreaterThanOrEqual(48);
        expect(Object.keys(r.log.batches).sort(), r.name).toEqual([
          'async commit',
          'async datasync',
          'concurrent commit',
          'sync commitSync',
          'sync datasyncSync',
        ]);
        expect(r.log.data, r.name).toBeGreaterThanOrEqual(16);
        expect(r.log.flushes, r.name).toBeGreaterThanOrEqual(16);
        // The journal's own writes are told apart (by its extents), so that they are torn too.
        if (r.name.includes('doublewrite')) expect(r.log.dblwr, r.name).toBeGreaterThanOrEqual(16);
        else expect(r.log.dblwr, r.name).toBe(0);
      }
    });

    it('doublewrite (XFS, ext4) and atomic (XFS): every page of every file whole, every acknowledged commit there', () => {
      const proof = lab.of('journal');
      expect(proof.map((s) => s.name).sort()).toEqual([
        'journal atomic xfs4k',
        'journal doublewrite ext4',
        'journal doublewrite xfs4k',
      ]);
      for (const s of proof) {
        expect(s.states, s.name).toBeGreaterThanOrEqual(200);
        expect({
          name: s.name,
          torn: s.torn,
          lost: s.lost,
          corrupt: s.corrupt,
          mountFailures: s.mountFailures,
          openFailures: s.openFailures,
          examples: s.examples,
        }).toEqual({ name: s.name, torn: 0, lost: 0, corrupt: 0, mountFailures: 0, openFailures: 0, examples: [] });
        expect(s.ok + s.replayMismatches, s.name).toBe(s.states);
        // While the model tore the page writes (and the journal's, and the log).
        expect(s.tears.data, s.name).toBeGreaterThanOrEqual(10);
        if (s.name.includes('doublewrite')) {
          expect(s.tears.dblwr, s.name).toBeGreaterThanOrEqual(5);
          // The replay did the work: pages were written in place again from the journal.
          expect(s.recovery.pagesRestored, s.name).toBeGreaterThan(0);
        }
        if (s.name.includes('xfs')) expect(s.tears.log, s.name).toBeGreaterThanOrEqual(5);
      }
    });

    it('control: the same writes without a journal tear, and the checker says so', () => {
      const control = lab.of('journal-control');
      expect(control.map((s) => s.name)).toEqual(['unjournaled plain xfs4k']);
      for (const s of control) {
        expect(s.tears.data, s.name).toBeGreaterThanOrEqual(10);
        // Every state in which the model tore a page write shows that page torn.
        expect(s.tears.dataShown, s.name).toBe(s.tears.data);
        expect(s.torn, s.name).toBeGreaterThan(0);
        expect({ lost: s.lost, corrupt: s.corrupt, mountFailures: s.mountFailures }).toEqual({
          lost: 0,
          corrupt: 0,
          mountFailures: 0,
        });
      }
    });

    it("control: on a lying disk (flushes dropped) the checker sees the journal's acknowledged pages lost", () => {
      const lying = lab.of('journal-lying');
      expect(lying.map((s) => s.name)).toEqual(['lying-disk journal doublewrite xfs4k']);
      for (const s of lying) {
        expect(s.states, s.name).toBeGreaterThanOrEqual(50);
        expect(s.lost, s.name).toBeGreaterThan(0);
        expect(s.lost + s.corrupt, s.name).toBeGreaterThanOrEqual(s.states / 4);
      }
    });

    it('replays are reproducible', () => {
      for (const s of lab.report.scenarios) expect(s.replayMismatches, s.name).toBeLessThanOrEqual(s.states / 100);
    });
  },
);
