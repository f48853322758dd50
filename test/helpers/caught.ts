// What a call threw or a promise rejected with, for assertions on the error's
// fields; a call that succeeds fails the test instead.

/** An error as untorn and Node make them: code, errno, syscall, path, and untorn's page and reason. */
export type CodedError = NodeJS.ErrnoException & { page?: number; reason?: string };

export async function rejection(promise: Promise<unknown>): Promise<CodedError> {
  try {
    await promise;
  } catch (err) {
    return err as CodedError;
  }
  throw new Error('expected a rejection, got a value');
}

export function thrown(fn: () => unknown): CodedError {
  try {
    fn();
  } catch (err) {
    return err as CodedError;
  }
  throw new Error('expected a throw, got a value');
}
