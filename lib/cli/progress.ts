// The progress line `untorn bench` keeps on stderr while it runs (only when
// stderr is a terminal: logs and pipes get no carriage returns).
import type { BenchProgress } from '../bench/options';

export interface ProgressLine {
  update(progress: BenchProgress): void;
  clear(): void;
}

const PHASES: Record<BenchProgress['phase'], string> = {
  prepare: 'preparing files',
  warmup: 'warming up',
  measure: 'measuring',
  verify: 'checking files',
};

export function progressLine(stream: NodeJS.WriteStream): ProgressLine | null {
  if (!stream.isTTY) return null;
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const round = p.phase === 'measure' ? ` round ${p.round}/${p.rounds}` : '';
      const text = `untorn bench: ${PHASES[p.phase]}${round} ${p.strategy ?? ''} ${Math.floor(p.fraction * 100)}%`;
      stream.write(`\r${text.slice(0, (stream.columns || 80) - 1)}\x1b[K`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}
