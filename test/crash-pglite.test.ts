// The crash lab's PGlite scenarios: PostgreSQL (PGlite) on untorn under
// simulated power loss at the block layer (docs/crash-lab.md, "PGlite").
//
// The writer runs transfers (the sum of balances never changes) and a
// CHECKPOINT every ten of them through openPGlite (relation pages through
// untorn's journal, full_page_writes off, fsync real; and once more with
// strategy 'atomic': RWF_ATOMIC in place, XFS's software path) on XFS under the
// recorder, marking every COMMIT once it resolved. Every crash state is
// mounted and opened with openPGlite (the journal's replay, then PostgreSQL's
// WAL redo) in a long-lived checker per replay worker: every acknowledged
// transaction present, the sum of balances unchanged, verify_heapam and
// bt_index_check (heapallindexed) clean on every table and index. Controls:
// PGlite's NodeFS as shipped (fsync off) must lose acknowledged transactions;
// UntornFS without its journal (full_page_writes off) must show torn pages.
//
// Mandatory under UNTORN_REQUIRE_FS=1, like test/crash.test.ts.
import { expect, it } from 'vitest';
import { describeCrashLab, type LabReport } from './helpers/crash-lab';

interface Scenario {
  name: string;
  kind: 'pglite' | 'pglite-nodefs' | 'pglite-unjournaled';
  states: number;
  ok: number;
  lost: number;
  corrupt: number;
  mountFailures: number;
  openFailures: number;
  replayMismatches: number;
  tears: { data: number; dataShown: number; dblwr: number; wal: number; log: number };
  transactions: { acknowledged: number; missing: number; checkMs: number };
  examples: unknown[];
}

interface Report extends LabReport<Scenario> {
  recordings: {
    name: string;
    strategy: string | null;
    journal: string | null;
    log: { writes: number; rel: number; wal: number; dblwr: number; flushes: number; marks: number; api: string };
  }[];
}

// By kind weight (test/crash/lab.mjs): 136 states of each openPGlite
// scenario (journal, atomic), 41 of the unjournaled control, 27 of NodeFS as shipped.
const STATES = 340;
// Recording (one PGlite first open, four runs) and 340 PGlite starts on two
// workers: 4.9 minutes measured on a quiet 2 vCPU machine (76 states/min); 260
// states took 7 and 8.7 minutes on 2 vCPUs shared with a busy QEMU VM.
const TIMEOUT = 1_200_000;
describeCrashLab<Scenario, Report>(
  {
    what: 'the PGlite crash lab',
    title: 'crash lab: PGlite (PostgreSQL) under simulated power loss',
    states: STATES,
    scenarios: 'pglite',
    timeout: TIMEOUT,
    line: (s) =>
      `${s.name}: ${s.states} states, ${s.ok} ok, ${s.lost} lost acknowledged transactions, ${s.corrupt} damaged, ${s.mountFailures} mount failures, ${s.openFailures} open failures; ${s.transactions.acknowledged} acknowledged transactions checked, ${s.transactions.missing} missing; model tore ${s.tears.data} relation page writes (${s.tears.dataShown} shown damaged), ${s.tears.dblwr} journal writes, ${s.tears.wal} WAL writes, ${s.tears.log} XFS log records`,
  },
  (lab) => {
    it('records openPGlite and both controls: transactions marked, relation, WAL and journal writes told apart', () => {
      expect(lab.report.states).toBeGreaterThanOrEqual(STATES);
      expect(lab.report.recordings.map((r) => r.name).sort()).toEqual([
        'pglite NodeFS xfs4k',
        'pglite openPGlite atomic xfs4k',
        'pglite openPGlite xfs4k',
        'pglite unjournaled xfs4k',
      ]);
      for (const r of lab.report.recordings) {
        expect(r.log.api, r.name).toMatch(/^pglite-(untorn|atomic|nodefs|unjournaled)$/);
        // 60 transactions (c and cd marks) and 6 checkpoints (k and kd), begin and end.
        expect(r.log.marks, r.name).toBe(2 * 60 + 2 * 6 + 2);
        expect(r.log.rel, r.name).toBeGreaterThan(0);
        // The journal's writes: only openPGlite's doublewrite strategy has a journal.
        if (r.name === 'pglite openPGlite xfs4k') expect(r.log.dblwr, r.name).toBeGreaterThan(0);
        else expect(r.log.dblwr, r.name).toBe(0);
        if (r.name.includes('openPGlite'))
          expect({ strategy: r.strategy, journal: r.journal !== null }, r.name).toEqual(
            r.name.includes('atomic')
              ? { strategy: 'atomic', journal: false }
              : { strategy: 'doublewrite', journal: true },
          );
        // fsync real: a flush per COMMIT at least (the lab checks each one); NodeFS: none until the unmount.
        if (!r.name.includes('NodeFS')) expect(r.log.flushes, r.name).toBeGreaterThanOrEqual(60);
      }
    });

    it.each(['pglite openPGlite xfs4k', 'pglite openPGlite atomic xfs4k'])(
      '%s: every acknowledged transaction there, balances summed right, amcheck clean, in every state',
      (name) => {
        const s = lab.of('pglite').find((t) => t.name === name)!;
        expect(s.states).toBeGreaterThanOrEqual(120);
        expect({
          lost: s.lost,
          corrupt: s.corrupt,
          mountFailures: s.mountFailures,
          openFailures: s.openFailures,
          missing: s.transactions.missing,
          examples: s.examples,
        }).toEqual({ lost: 0, corrupt: 0, mountFailures: 0, openFailures: 0, missing: 0, examples: [] });
        expect(s.ok + s.replayMismatches).toBe(s.states);
        expect(s.transactions.acknowledged).toBeGreaterThan(s.states);
        // While the model tore relation page writes (and the journal's own, where there is one).
        expect(s.tears.data).toBeGreaterThanOrEqual(10);
        if (!name.includes('atomic')) expect(s.tears.dblwr).toBeGreaterThanOrEqual(1);
      },
    );

    it('control: PGlite as shipped (NodeFS, fsync off) loses acknowledged transactions, and the checker says so', () => {
      const [s] = lab.of('pglite-nodefs');
      expect(s.transactions.missing).toBeGreaterThan(0);
      // A state that lost transactions counts as lost, or as damaged where amcheck also found its pages and WAL disagree.
      expect(s.lost + s.corrupt).toBeGreaterThan(0);
    });

    it('control: without the journal (full_page_writes off) torn relation pages show as damage', () => {
      const [s] = lab.of('pglite-unjournaled');
      expect(s.tears.data).toBeGreaterThan(0);
      expect(s.tears.dataShown).toBeGreaterThan(0);
      expect(s.corrupt + s.openFailures).toBeGreaterThan(0);
    });
  },
);
