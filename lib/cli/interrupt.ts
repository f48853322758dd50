// Ctrl-C and SIGTERM during a command that owns temporary files or mounts:
// the first signal aborts the work, which then cleans up on its normal
// unwinding path (closing files before unmounting); a second signal while
// that cleanup runs is ignored, so it cannot be cut short.

/** The reason a command's AbortSignal carries when the user interrupted it. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.signal = signal;
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Runs `work` with an AbortSignal that fires on SIGINT/SIGTERM/SIGHUP. */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      process.stderr.write(`\nuntorn: ${signal}: stopping and cleaning up...\n`);
      controller.abort(new Interrupted(signal));
    }
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await work(controller.signal);
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}
