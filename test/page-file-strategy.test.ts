// Which strategy 'auto' takes, and the sentence that says why, for stacks
// these machines do not have (hardware atomic writes) as well as those they
// do: pure, from the facts a page file's open gathers.
import { describe, expect, it } from 'vitest';
import { chooseStrategy } from '../lib/page-file/strategy';
import type { StackFacts } from '../lib/page-io';

const info = (unitMin: number, unitMax: number, unitMaxOpt = 0) => ({
  supported: unitMax > 0,
  unitMin,
  unitMax,
  unitMaxOpt,
  segmentsMax: unitMax > 0 ? 1 : 0,
  dioMemAlign: 512,
  dioOffsetAlign: 512,
  blockSize: 4096,
});
const device = (name: string, unitMax: number) => ({
  device: name,
  unitMinBytes: unitMax ? 4096 : 0,
  unitMaxBytes: unitMax,
  maxBytes: unitMax,
  boundaryBytes: 0,
});

const NVME_EXT4: StackFacts = { fsType: 'ext4', info: info(4096, 65536), device: device('nvme0n1', 65536) };
const NVME_XFS: StackFacts = { fsType: 'xfs', info: info(4096, 1048576, 65536), device: device('nvme0n1', 65536) };
const LOOP_XFS: StackFacts = { fsType: 'xfs', info: info(4096, 1048576), device: device('loop3', 0) };
const LOOP_EXT4: StackFacts = { fsType: 'ext4', info: info(0, 0), device: device('loop5', 0) };
const TMPFS: StackFacts = { fsType: 'tmpfs', info: info(0, 0), device: null };

describe('chooseStrategy', () => {
  it('auto takes atomic where the page size takes the hardware path, and says so', () => {
    for (const facts of [NVME_EXT4, NVME_XFS]) {
      const { strategy, reason } = chooseStrategy('auto', facts, 16384, '/db');
      expect(strategy).toBe('atomic');
      expect(reason).toMatch(
        /^16 KiB atomic writes take the hardware path here \((ext4|xfs) on nvme0n1, up to 64 KiB\): each page is one RWF_ATOMIC write$/,
      );
    }
  });

  it('auto double-writes beyond the hardware: XFS software path, ext4 without support, tmpfs', () => {
    // 64 KiB pages on XFS over a device that does 16 KiB in hardware: the rest is software.
    const nvme16k: StackFacts = { fsType: 'xfs', info: info(4096, 1048576, 16384), device: device('nvme0n1', 16384) };
    expect(chooseStrategy('auto', nvme16k, 16384, '/db').strategy).toBe('atomic');
    expect(chooseStrategy('auto', nvme16k, 65536, '/db').strategy).toBe('doublewrite');
    const software = chooseStrategy('auto', LOOP_XFS, 16384, '/db');
    expect(software).toEqual({
      strategy: 'doublewrite',
      reason: expect.stringMatching(
        /XFS software \(copy-on-write\) path.*no hardware atomic writes on loop3.*slower than double-write/,
      ),
    });
    expect(chooseStrategy('auto', LOOP_EXT4, 16384, '/db').reason).toBe(
      'ext4 on loop5 cannot write atomically here (statx reports no atomic write support): pages are double-written',
    );
    expect(chooseStrategy('auto', TMPFS, 16384, '/db').reason).toMatch(
      /^tmpfs with no block device under it cannot write atomically here/,
    );
    // ext4 on a device whose atomic writes stop below the page size.
    const small: StackFacts = { fsType: 'ext4', info: info(4096, 8192), device: device('nvme0n1', 8192) };
    expect(chooseStrategy('auto', small, 16384, '/db')).toEqual({
      strategy: 'doublewrite',
      reason: expect.stringMatching(/cannot write 16 KiB atomically here \(its atomic writes are 4 KiB to 8 KiB\)/),
    });
  });

  it("'atomic' is refused only where no path writes the page size atomically", () => {
    expect(chooseStrategy('atomic', LOOP_XFS, 16384, '/db').strategy).toBe('atomic');
    for (const facts of [LOOP_EXT4, TMPFS]) {
      const err = (() => {
        try {
          chooseStrategy('atomic', facts, 16384, '/db');
        } catch (e) {
          return e as Error & { code: string; length: number; path: string };
        }
        throw new Error('not refused');
      })();
      expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
      expect(err.length).toBe(16384);
      expect(err.path).toBe('/db');
    }
  });

  it("'doublewrite' and 'unprotected' are taken as asked, with the facts", () => {
    expect(chooseStrategy('doublewrite', NVME_EXT4, 16384, '/db').reason).toMatch(
      /^strategy 'doublewrite' as asked: 16 KiB atomic writes take the hardware path/,
    );
    expect(chooseStrategy('unprotected', TMPFS, 16384, '/db').strategy).toBe('unprotected');
  });

  // Issue 15, as seen in the hardware lab on NVMe disks with 16 KiB atomic writes.
  it('names the limits the file gets, not the device sysfs limit and not "no hardware"', () => {
    // XFS, 64 KiB pages: the software path, over a device that does 16 KiB in hardware.
    const xfs: StackFacts = { fsType: 'xfs', info: info(4096, 1048576, 16384), device: device('nvme0n1', 16384) };
    const software = chooseStrategy('auto', xfs, 65536, '/db');
    expect(software.strategy).toBe('doublewrite');
    expect(software.reason).toMatch(
      /^64 KiB atomic writes take the XFS software \(copy-on-write\) path here \(hardware atomic writes on nvme0n1 cover 4 KiB\.\.16 KiB\)/,
    );
    expect(software.reason).not.toMatch(/no hardware/);
    // ext4 with 4 KiB blocks on that device: statx says one block, whatever the device does.
    const ext4: StackFacts = { fsType: 'ext4', info: info(4096, 4096), device: device('nvme0n1', 16384) };
    expect(chooseStrategy('auto', ext4, 4096, '/db')).toEqual({
      strategy: 'atomic',
      reason:
        '4 KiB atomic writes take the hardware path here (ext4 on nvme0n1, up to 4 KiB): each page is one RWF_ATOMIC write',
    });
  });
});
