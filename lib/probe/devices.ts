// The block devices under a probed path, from sysfs: a partition and its
// disk, a device-mapper or md device and the devices it is built on, a loop
// device and its backing file, each with its atomic-write limits.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { diskOf, queueAtomicLimits, readSysfs, sysfsEntries, sysfsHas } from '../sysfs';

export type DeviceKind = 'disk' | 'partition' | 'dm' | 'md' | 'loop';

/** One block device under the target, with its sysfs atomic-write limits (bytes, 0 = none). */
export interface ProbeDevice {
  /** Kernel name, e.g. "nvme0n1p2", "dm-0", "loop3". */
  name: string;
  kind: DeviceKind;
  /** "MAJ:MIN". */
  majorMinor: string;
  /** From queue/atomic_write_*_bytes (a partition's are its disk's). */
  unitMinBytes: number;
  unitMaxBytes: number;
  maxBytes: number;
  boundaryBytes: number;
  /** Names of the devices this one is built on: a partition's disk, a dm or md device's slaves. */
  members: string[];
  /** A loop device's backing file. */
  backingFile?: string;
  /** A device-mapper device's name, e.g. "vg0-data". */
  dmName?: string;
}

async function deviceKind(dir: string, isPartition: boolean): Promise<DeviceKind> {
  if (isPartition) return 'partition';
  if (await sysfsHas(path.join(dir, 'dm'))) return 'dm';
  if (await sysfsHas(path.join(dir, 'md'))) return 'md';
  // An unbound loop device has no loop/ folder: go by the name too.
  if (/^loop\d+$/.test(path.basename(dir)) || (await sysfsHas(path.join(dir, 'loop')))) return 'loop';
  return 'disk';
}

/**
 * The block devices from the sysfs device folder `top` down, depth first: a
 * partition, then its disk; a dm or md device, then its slaves (and theirs).
 */
export async function devicesUnder(top: string): Promise<ProbeDevice[]> {
  const devices: ProbeDevice[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const name = path.basename(dir);
    if (seen.has(name)) return;
    seen.add(name);
    const { disk, isPartition } = await diskOf(dir);
    const slaves = path.join(dir, 'slaves');
    const memberDirs = isPartition
      ? [disk]
      : await Promise.all((await sysfsEntries(slaves)).map((slave) => fsp.realpath(path.join(slaves, slave))));
    const device: ProbeDevice = {
      name,
      kind: await deviceKind(dir, isPartition),
      majorMinor: (await readSysfs(path.join(dir, 'dev'))) ?? '',
      ...(await queueAtomicLimits(disk)),
      members: memberDirs.map((member) => path.basename(member)),
    };
    const backingFile = await readSysfs(path.join(dir, 'loop', 'backing_file'));
    if (backingFile !== null) device.backingFile = backingFile;
    const dmName = await readSysfs(path.join(dir, 'dm', 'name'));
    if (dmName !== null) device.dmName = dmName;
    devices.push(device);
    for (const member of memberDirs) await visit(member);
  };
  await visit(top);
  return devices;
}
