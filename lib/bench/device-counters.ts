// What the block device under the bench files really did: its write and
// flush counters from /sys/dev/block/MAJ:MIN/stat (Documentation/block/stat.rst).
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export interface DeviceCounters {
  /** Bytes written (sectors are always 512 bytes here). */
  bytesWritten: number;
  /** Flush requests completed (0 on kernels before 5.5, which lack the field). */
  flushes: number;
}

const WRITE_SECTORS = 6;
const FLUSH_IOS = 15;

export function parseDeviceStat(text: string): DeviceCounters {
  const fields = text.trim().split(/\s+/).map(Number);
  return { bytesWritten: (fields[WRITE_SECTORS] ?? 0) * 512, flushes: fields[FLUSH_IOS] ?? 0 };
}

/** Reads the counters of the device whose sysfs directory is `sysfsDir`. */
export async function readDeviceCounters(sysfsDir: string): Promise<DeviceCounters> {
  return parseDeviceStat(await fsp.readFile(path.join(sysfsDir, 'stat'), 'utf8'));
}
