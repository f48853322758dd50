// docs/api.md is written by hand: every name lib/index.ts exports, at run
// time or as a type, must appear in it as `name`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as untorn from '../dist/index.js';

const root = path.resolve(__dirname, '..');
const doc = readFileSync(path.join(root, 'docs', 'api.md'), 'utf8');
const index = readFileSync(path.join(root, 'lib', 'index.ts'), 'utf8');

function typeExports(source: string): string[] {
  const names = new Set<string>();
  for (const m of source.matchAll(/\btype\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
  for (const block of source.matchAll(/export\s+type\s*\{([^}]*)\}/g)) {
    for (const part of block[1].split(',')) {
      const name = part
        .trim()
        .split(/\s+as\s+/)
        .pop();
      if (name) names.add(name);
    }
  }
  return [...names];
}

const missing = (names: string[]) => names.filter((name) => !doc.includes(`\`${name}\``));

describe('docs/api.md', () => {
  it('mentions every runtime export', () => {
    const names = Object.keys(untorn).filter((name) => name !== 'default' && name !== '__esModule');
    expect(names.length).toBeGreaterThan(10);
    expect(missing(names)).toEqual([]);
  });

  it('mentions every type export', () => {
    const names = typeExports(index);
    expect(names).toContain('PageFileOptions');
    expect(missing(names)).toEqual([]);
  });
});
