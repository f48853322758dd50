// What every `untorn` subcommand is to the dispatcher in ./main.

/** A subcommand: parses its own arguments and writes its own output. */
export interface Command {
  name: string;
  usage: string;
  /** Resolves to the exit code. */
  run(args: string[]): Promise<number>;
}
