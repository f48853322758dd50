// No module of lib/ imports itself back through others, not even for a type:
// a shared type lives in a module both sides import (lib/info.ts, lib/cli/command.ts).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const LIB = path.resolve(__dirname, '../lib');

/** lib's .ts files and the lib files each one imports or re-exports from. */
function importGraph(): Map<string, string[]> {
  const files = (fs.readdirSync(LIB, { recursive: true }) as string[]).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.d.ts'),
  );
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(LIB, file), 'utf8');
    const deps = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gs)].map((m) => {
      const base = path.relative(LIB, path.resolve(LIB, path.dirname(file), m[1]));
      return [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(path.join(LIB, f))) ?? `${base}?`;
    });
    graph.set(file, deps);
  }
  return graph;
}

/** Each cycle found by a depth-first walk, as "a.ts -> b.ts -> a.ts". */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (state.get(dep) === 'open') found.push([...stack.slice(stack.indexOf(dep)), dep].join(' -> '));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('lib/ imports', () => {
  const graph = importGraph();

  it('resolve to files of lib/', () => {
    const unresolved = [...graph].flatMap(([file, deps]) =>
      deps.filter((d) => d.endsWith('?')).map((d) => `${file}: ${d}`),
    );
    expect(unresolved).toEqual([]);
    expect(graph.get('index.ts')).toContain('capabilities.ts');
  });

  it('form no cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('would catch a cycle', () => {
    expect(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['a.ts']],
        ]),
      ),
    ).toEqual(['a.ts -> b.ts -> a.ts']);
  });
});
