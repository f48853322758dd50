// Ends every run with one plain line, "N passed, N failed, N skipped", that
// any log reader (CI included) can count without knowing vitest's format.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      const states = Array.from(module.children.allTests(), (test) => test.result().state);
      for (const state of states) {
        if (state === 'passed' || state === 'failed') count[state]++;
        else count.skipped++;
      }
      // A file that failed outside its tests (an import error) counts as a failure.
      if (module.state() === 'failed' && !states.includes('failed')) count.failed++;
    }
    process.stdout.write(`\nvitest: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
