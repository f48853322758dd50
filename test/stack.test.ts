// The storage-stack helpers (lib/stack.ts): mountinfo, kernel versions and which path an atomic write takes.
import { describe, expect, it } from 'vitest';
import type { AtomicWriteInfo, BlockDeviceLimits } from '../lib/info';
import { atomicPathFor, atomicPaths, kernelAtLeast, kernelVersion, parseMountInfo } from '../lib/stack';

const KiB = 1024;
const MiB = 1024 * 1024;

describe('parseMountInfo', () => {
  const text = [
    '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro',
    '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '100 22 7:3 / /mnt/my\\040disk rw,relatime shared:1 master:2 - xfs /dev/loop3 rw,attr2,inode64,logbufs=8',
    '50 22 0:45 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,size=1024k,inode64',
    '51 22 0:46 / /mnt/back\\134slash\\011tab rw - tmpfs my\\040source rw',
    '',
    'not a mountinfo line',
    '52 22 0:47 / /truncated rw - tmpfs',
  ].join('\n');
  const mounts = parseMountInfo(text);

  it('reads every complete line and skips the rest', () => {
    expect(mounts).toHaveLength(5);
  });

  it('reads a line with one optional field', () => {
    expect(mounts[0]).toEqual({
      devMajor: 259,
      devMinor: 2,
      mountPoint: '/',
      mountOptions: 'rw,relatime',
      type: 'ext4',
      source: '/dev/nvme0n1p2',
      superOptions: 'rw,errors=remount-ro',
    });
    expect(mounts[1]).toEqual({
      devMajor: 98,
      devMinor: 0,
      mountPoint: '/mnt2',
      mountOptions: 'rw,noatime',
      type: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    });
  });

  it('reads a mount point with an escaped space and two optional fields', () => {
    expect(mounts[2]).toEqual({
      devMajor: 7,
      devMinor: 3,
      mountPoint: '/mnt/my disk',
      mountOptions: 'rw,relatime',
      type: 'xfs',
      source: '/dev/loop3',
      superOptions: 'rw,attr2,inode64,logbufs=8',
    });
  });

  it('reads a line with no optional fields', () => {
    expect(mounts[3]).toEqual({
      devMajor: 0,
      devMinor: 45,
      mountPoint: '/tmp',
      mountOptions: 'rw,nosuid,nodev',
      type: 'tmpfs',
      source: 'tmpfs',
      superOptions: 'rw,size=1024k,inode64',
    });
  });

  it('unescapes backslash, tab and space in the mount point and the source', () => {
    expect(mounts[4].mountPoint).toBe('/mnt/back\\slash\ttab');
    expect(mounts[4].source).toBe('my source');
  });

  it('reads nothing from nothing', () => {
    expect(parseMountInfo('')).toEqual([]);
    expect(parseMountInfo('\n\n')).toEqual([]);
  });
});

describe('kernelVersion / kernelAtLeast', () => {
  it('reads major and minor', () => {
    expect(kernelVersion('6.18.0-1-amd64')).toEqual([6, 18]);
    expect(kernelVersion('6.11.0')).toEqual([6, 11]);
    expect(kernelVersion('5.4.0-150-generic')).toEqual([5, 4]);
    expect(kernelVersion('6.16-rc3')).toEqual([6, 16]);
    expect(kernelVersion('10.2.1')).toEqual([10, 2]);
  });

  it('gives [0, 0] for what it cannot read', () => {
    expect(kernelVersion('')).toEqual([0, 0]);
    expect(kernelVersion('linux')).toEqual([0, 0]);
    expect(kernelVersion('6')).toEqual([0, 0]);
  });

  it('compares numerically, minor by minor', () => {
    expect(kernelAtLeast('6.11.0', 6, 11)).toBe(true);
    expect(kernelAtLeast('6.10.14', 6, 11)).toBe(false);
    expect(kernelAtLeast('6.9.0', 6, 11)).toBe(false);
    expect(kernelAtLeast('6.16.1', 6, 11)).toBe(true);
    expect(kernelAtLeast('7.0.0', 6, 11)).toBe(true);
    expect(kernelAtLeast('5.19.0', 6, 11)).toBe(false);
    expect(kernelAtLeast('10.0', 6, 11)).toBe(true);
    expect(kernelAtLeast('unknown', 6, 11)).toBe(false);
  });
});

describe('atomicPaths / atomicPathFor', () => {
  const xfsInfo: AtomicWriteInfo = {
    supported: true,
    unitMin: 4096,
    unitMax: 2 * MiB,
    unitMaxOpt: 0,
    segmentsMax: 1,
    dioMemAlign: 512,
    dioOffsetAlign: 512,
    blockSize: 4096,
  };
  const noDevice: BlockDeviceLimits = {
    device: 'loop3',
    unitMinBytes: 0,
    unitMaxBytes: 0,
    maxBytes: 0,
    boundaryBytes: 0,
  };
  const nvme = (unitMax: number): BlockDeviceLimits => ({
    device: 'nvme0n1',
    unitMinBytes: 512,
    unitMaxBytes: unitMax,
    maxBytes: unitMax,
    boundaryBytes: 0,
  });
  const pathsOf = (paths: ReturnType<typeof atomicPaths>, lengths: number[]) =>
    lengths.map((n) => atomicPathFor(paths, n));

  it('XFS on a device without atomic writes: software only, up to unitMax', () => {
    for (const device of [null, noDevice]) {
      const paths = atomicPaths('xfs', xfsInfo, device);
      expect(paths).toEqual({ unitMin: 4096, hardwareMin: 0, hardwareMax: 0, softwareMax: 2 * MiB });
      expect(pathsOf(paths, [2048, 4095, 4096, 16 * KiB, 2 * MiB, 2 * MiB + 4096, 4 * MiB])).toEqual([
        'none',
        'none',
        'software',
        'software',
        'software',
        'none',
        'none',
      ]);
    }
  });

  it('XFS with unitMaxOpt 64 KiB: hardware up to 64 KiB, then software', () => {
    const paths = atomicPaths('xfs', { ...xfsInfo, unitMaxOpt: 65536 }, nvme(65536));
    expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 65536, softwareMax: 2 * MiB });
    expect(
      pathsOf(paths, [512, 4095, 4096, 16 * KiB, 64 * KiB, 64 * KiB + 4096, 128 * KiB, 2 * MiB, 2 * MiB + 1]),
    ).toEqual(['none', 'none', 'hardware', 'hardware', 'hardware', 'software', 'software', 'software', 'none']);
  });

  it('XFS with unitMaxOpt trusts it over the device limits', () => {
    const paths = atomicPaths('xfs', { ...xfsInfo, unitMaxOpt: 65536 }, nvme(256 * KiB));
    expect(paths.hardwareMax).toBe(65536);
    expect(atomicPathFor(paths, 128 * KiB)).toBe('software');
  });

  it('XFS on a device with sysfs unitMax 16 KiB and no unitMaxOpt: hardware up to 16 KiB', () => {
    const paths = atomicPaths('xfs', xfsInfo, nvme(16384));
    expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 16384, softwareMax: 2 * MiB });
    expect(pathsOf(paths, [2048, 4096, 8192, 16384, 16384 + 4096, 32768, 2 * MiB, 4 * MiB])).toEqual([
      'none',
      'hardware',
      'hardware',
      'hardware',
      'software',
      'software',
      'software',
      'none',
    ]);
  });

  it('XFS on a device whose atomic unit is below the filesystem block: software only', () => {
    const paths = atomicPaths('xfs', xfsInfo, nvme(2048));
    expect(paths.hardwareMax).toBe(0);
    expect(atomicPathFor(paths, 2048)).toBe('none');
    expect(atomicPathFor(paths, 4096)).toBe('software');
  });

  it('XFS never claims hardware beyond statx unitMax', () => {
    const small = { ...xfsInfo, unitMax: 16384 };
    expect(atomicPaths('xfs', small, nvme(65536)).hardwareMax).toBe(16384);
    expect(atomicPaths('xfs', { ...small, unitMaxOpt: 65536 }, null).hardwareMax).toBe(16384);
  });

  it('XFS hardware starts at the larger of statx and device unitMin', () => {
    const paths = atomicPaths('xfs', xfsInfo, { ...nvme(65536), unitMinBytes: 8192 });
    expect(paths.hardwareMin).toBe(8192);
    expect(atomicPathFor(paths, 4096)).toBe('software');
    expect(atomicPathFor(paths, 8192)).toBe('hardware');
  });

  it('ext4 with atomic writes: hardware over the whole statx range, never software', () => {
    const info = { ...xfsInfo, unitMin: 4096, unitMax: 16384 };
    for (const device of [null, nvme(16384), nvme(65536), noDevice]) {
      const paths = atomicPaths('ext4', info, device);
      expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 16384, softwareMax: 0 });
      expect(pathsOf(paths, [2048, 4095, 4096, 8192, 16384, 16385, 32768, 2 * MiB])).toEqual([
        'none',
        'none',
        'hardware',
        'hardware',
        'hardware',
        'none',
        'none',
        'none',
      ]);
    }
  });

  it('a raw block device (no filesystem type) is hardware only', () => {
    const paths = atomicPaths(null, { ...xfsInfo, unitMin: 512, unitMax: 65536 }, nvme(65536));
    expect(paths).toEqual({ unitMin: 512, hardwareMin: 512, hardwareMax: 65536, softwareMax: 0 });
    expect(atomicPathFor(paths, 512)).toBe('hardware');
    expect(atomicPathFor(paths, 128 * KiB)).toBe('none');
  });

  it('unsupported: none, whatever the filesystem and device', () => {
    const info: AtomicWriteInfo = {
      ...xfsInfo,
      supported: false,
      unitMin: 0,
      unitMax: 0,
      unitMaxOpt: 0,
      segmentsMax: 0,
    };
    for (const fs of ['xfs', 'ext4', 'tmpfs', null]) {
      for (const device of [null, noDevice, nvme(65536)]) {
        const paths = atomicPaths(fs, info, device);
        expect(paths).toEqual({ unitMin: 0, hardwareMin: 0, hardwareMax: 0, softwareMax: 0 });
        expect(pathsOf(paths, [0, 512, 4096, 16384, 65536])).toEqual(['none', 'none', 'none', 'none', 'none']);
      }
    }
  });
});
