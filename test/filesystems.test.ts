// Proves the real-filesystem fixtures are what they claim to be.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMountInfo, type MountLine } from '../lib/stack';
import { describeFs, filesystems, fixture, tempPath, type FixtureName, type FsType } from './helpers/filesystems';

/** The topmost mount at exactly dir, from /proc/self/mountinfo as lib/stack.ts parses it. */
function mountAt(dir: string): MountLine | undefined {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((m) => m.mountPoint === dir)
    .pop();
}

// tmpfs reports the page size as its block size; not checked.
const expected: Record<FixtureName, { type: FsType; bsize?: number; loop: boolean }> = {
  xfs4k: { type: 'xfs', bsize: 4096, loop: true },
  xfs16k: { type: 'xfs', bsize: 16384, loop: true },
  ext4: { type: 'ext4', bsize: 4096, loop: true },
  tmpfs: { type: 'tmpfs', loop: false },
};

describeFs('real-filesystem fixtures', () => {
  it('provides all four fixtures', () => {
    expect(filesystems.ok).toBe(true);
    for (const name of Object.keys(expected) as FixtureName[]) expect(fixture(name).name).toBe(name);
  });

  for (const [name, want] of Object.entries(expected) as [FixtureName, (typeof expected)[FixtureName]][]) {
    describe(name, () => {
      it(`is a ${want.type} mount point`, () => {
        const fx = fixture(name);
        expect(fx.type).toBe(want.type);
        const mount = mountAt(fx.dir);
        expect(mount, `${fx.dir} is not a mount point`).toBeDefined();
        expect(mount!.type).toBe(want.type);
        expect(fx.dir).toMatch(/\/untorn-fs-[^/]+\//);
      });

      if (want.bsize !== undefined) {
        it(`has ${want.bsize}-byte blocks`, () => {
          expect(fs.statfsSync(fixture(name).dir).bsize).toBe(want.bsize);
        });
      }

      if (want.loop) {
        it('is backed by a loop device on a sparse image', () => {
          const fx = fixture(name);
          expect(fx.device).toMatch(/^\/dev\/loop\d+$/);
          expect(mountAt(fx.dir)!.source).toBe(fx.device);
          expect(fs.statSync(fx.device!).isBlockDevice()).toBe(true);
          expect(fx.image).toMatch(/\/untorn-img-[^/]+\//);
          const st = fs.statSync(fx.image!);
          expect(st.isFile()).toBe(true);
          expect(st.blocks * 512).toBeLessThan(st.size); // sparse
        });
      } else {
        it('has no device or image', () => {
          const fx = fixture(name);
          expect(fx.device).toBeNull();
          expect(fx.image).toBeNull();
        });
      }

      it('round-trips a file written with node fs', () => {
        const fx = fixture(name);
        const p = tempPath(fx);
        expect(p.startsWith(fx.dir + '/')).toBe(true);
        expect(fs.existsSync(p)).toBe(false);
        expect(tempPath(fx)).not.toBe(p);
        const data = Buffer.alloc(3 * 16384 + 123);
        for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
        fs.writeFileSync(p, data);
        try {
          expect(fs.readFileSync(p).equals(data)).toBe(true);
          // and through the device, not only the page cache
          const fd = fs.openSync(p, 'r+');
          try {
            fs.fsyncSync(fd);
          } finally {
            fs.closeSync(fd);
          }
          expect(fs.readFileSync(p).equals(data)).toBe(true);
        } finally {
          fs.rmSync(p, { force: true });
        }
      });
    });
  }
});
