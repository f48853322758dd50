/** What statx says a file can write atomically (docs/api.md, "Capabilities"). */
export interface AtomicWriteInfo {
  /** STATX_ATTR_WRITE_ATOMIC is set and the kernel gave a non-zero unit_min. */
  supported: boolean;
  unitMin: number;
  unitMax: number;
  /** 0 where the kernel knows no hardware-optimised limit (or predates 6.16). */
  unitMaxOpt: number;
  segmentsMax: number;
  /** 0 = the filesystem did not say. */
  dioMemAlign: number;
  /** 0 = the filesystem did not say. */
  dioOffsetAlign: number;
  blockSize: number;
}

/** A block device's atomic-write limits from sysfs, in bytes (0 = unsupported). */
export interface BlockDeviceLimits {
  /** The kernel's name for the whole disk, e.g. "nvme0n1" (never the partition). */
  device: string;
  unitMinBytes: number;
  unitMaxBytes: number;
  maxBytes: number;
  boundaryBytes: number;
}
