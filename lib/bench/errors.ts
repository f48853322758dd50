/** An error a bench run ends with, in one line, with a code to tell them apart. */
export class BenchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BenchError';
    this.code = code;
  }
}
