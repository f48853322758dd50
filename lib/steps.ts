// One implementation, two ways to run it. A procedure that does I/O (the
// double-write's write order, its recovery, a journal's commit) is written
// once, as a generator that yields its I/O steps; runSync() performs each step
// with blocking calls (for callers that cannot wait, such as WebAssembly
// engines), runAsync() awaits each step's asynchronous form (the io_uring
// engine). Both hand the step's result or error back into the generator, so
// its try/finally blocks and its order of operations are the same either way.
import { setImmediate as nextTurn } from 'node:timers/promises';

/** One I/O step: the same operation, blocking and asynchronous. */
export interface Step<T = unknown> {
  sync(): T;
  async(): Promise<T>;
}

export type Procedure<R> = Generator<Step, R, unknown>;

/** Yields one step and returns its result, typed: `const n = yield* perform(step)`. */
export function* perform<T>(step: Step<T>): Generator<Step, T, unknown> {
  return (yield step as Step) as T;
}

/** Runs a procedure with blocking calls. */
export function runSync<R>(procedure: Procedure<R>): R {
  let next = procedure.next();
  while (!next.done) {
    let value: unknown;
    try {
      value = next.value.sync();
    } catch (err) {
      next = procedure.throw(err);
      continue;
    }
    next = procedure.next(value);
  }
  return next.value;
}

/** Runs a procedure, awaiting each step. */
export async function runAsync<R>(procedure: Procedure<R>): Promise<R> {
  let next = procedure.next();
  while (!next.done) {
    let value: unknown;
    try {
      value = await next.value.async();
    } catch (err) {
      next = procedure.throw(err);
      continue;
    }
    next = procedure.next(value);
  }
  return next.value;
}

/** Several steps as one: in turn when blocking, together when async. */
export function all<T>(steps: Step<T>[]): Step<T[]> {
  return {
    sync: () => steps.map((s) => s.sync()),
    async: () => Promise.all(steps.map((s) => s.async())),
  };
}

/**
 * Lets the event loop turn when async (nothing when blocking): an async read
 * served from memory must not resolve at once, or a loop of such reads
 * starves the I/O it waits for.
 */
export const yieldToLoop: Step<void> = { sync: () => undefined, async: () => nextTurn() };
