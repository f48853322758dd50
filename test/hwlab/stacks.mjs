// The lab's disks and the storage stacks built on them: which NVMe geometry
// (logical block, atomic unit, boundary) each stack gets, how many fresh
// namespaces it takes, and the commands that build it in the guest. Shared by
// the host (which makes the disks) and the guest suite (which builds on them).
const KiB = 1024;
const MiB = 1024 * KiB;

export const DISK_BYTES = 512 * MiB;
// Where a partition starts: 1 MiB, aligned for every atomic unit here.
export const PARTITION_START = 1 * MiB;

/** NVMe geometries: one controller each, its namespaces one per stack disk. */
export const GEOMETRIES = {
  g16k: { blockSize: 4096, atomicBytes: 16 * KiB, label: '4K LBA, 16 KiB atomic' },
  g64k: { blockSize: 4096, atomicBytes: 64 * KiB, label: '4K LBA, 64 KiB atomic' },
  g512: { blockSize: 512, atomicBytes: 16 * KiB, label: '512 B LBA, 16 KiB atomic' },
  gbound: {
    blockSize: 4096,
    atomicBytes: 16 * KiB,
    boundaryBytes: 64 * KiB,
    label: '4K LBA, 16 KiB atomic, 64 KiB boundary',
  },
};

const xfs = (extra = []) => ({ fs: 'xfs', mkfs: (dev) => ['mkfs.xfs', '-q', '-f', ...extra, dev] });
const ext4 = (extra = []) => ({
  fs: 'ext4',
  // lazy_itable_init=0: no background zeroing thread writing while the checks run.
  mkfs: (dev) => ['mkfs.ext4', '-q', '-F', '-b', '4096', '-E', 'lazy_itable_init=0', ...extra, dev],
});

/**
 * kinds: 'raw' (the namespace), 'partition', 'fs' (on the namespace), 'md0'
 * and 'md1' (md raid0/raid1 over two namespaces, then XFS), 'dm' (dm-linear,
 * then XFS). `control` stacks exist to show the device-log checker catches a
 * split write, not to be judged as untorn.
 */
const STACK_KINDS = {
  raw: { disks: 1, kind: 'raw' },
  partition: { disks: 1, kind: 'partition' },
  'xfs-4k': { disks: 1, kind: 'fs', ...xfs() },
  'xfs-16k': { disks: 1, kind: 'fs', ...xfs(['-b', 'size=16384']) },
  'ext4-4k': { disks: 1, kind: 'fs', ...ext4() },
  'ext4-bigalloc-16k': { disks: 1, kind: 'fs', ...ext4(['-O', 'bigalloc', '-C', '16384']) },
  'ext4-bigalloc-64k': { disks: 1, kind: 'fs', ...ext4(['-O', 'bigalloc', '-C', '65536']) },
  'md-raid0+xfs': { disks: 2, kind: 'md', level: 0, chunkKiB: 64, ...xfs() },
  'md-raid1+xfs': { disks: 2, kind: 'md', level: 1, ...xfs() },
  'dm-linear+xfs': { disks: 1, kind: 'dm', ...xfs() },
  'control: md-raid0 4K chunk': { disks: 2, kind: 'md', level: 0, chunkKiB: 4, control: true },
};

/** Every stack of a lab run, each with its geometry and disks (filled in by planDisks). */
export function labStacks() {
  const on = (geometry, names) => names.map((name) => ({ name, geometry, ...STACK_KINDS[name] }));
  return [
    ...on('g16k', [
      'raw',
      'partition',
      'xfs-4k',
      'xfs-16k',
      'ext4-4k',
      'ext4-bigalloc-16k',
      'ext4-bigalloc-64k',
      'md-raid0+xfs',
      'md-raid1+xfs',
      'dm-linear+xfs',
      'control: md-raid0 4K chunk',
    ]),
    ...on('g64k', ['raw', 'xfs-4k', 'ext4-bigalloc-64k']),
    ...on('g512', ['raw', 'xfs-4k', 'ext4-bigalloc-16k']),
    ...on('gbound', ['raw', 'xfs-4k']),
  ];
}

/** An MBR with one Linux partition from PARTITION_START to the end (LBAs in the disk's logical blocks). */
export function mbr(blockSize, diskBytes) {
  const sector = Buffer.alloc(512);
  const entry = 446;
  sector[entry + 4] = 0x83;
  // CHS fields unused (LBA only): the conventional "beyond CHS" values.
  sector.set([0xfe, 0xff, 0xff], entry + 1);
  sector.set([0xfe, 0xff, 0xff], entry + 5);
  sector.writeUInt32LE(PARTITION_START / blockSize, entry + 8);
  sector.writeUInt32LE((diskBytes - PARTITION_START) / blockSize, entry + 12);
  sector.writeUInt16LE(0xaa55, 510);
  return sector;
}

/**
 * Assigns each stack its namespaces: one controller per geometry, namespaces
 * in stack order. Returns the controllers for runGuest and the stacks with
 * `disks: [{ serial, nsid }]`.
 */
export function planDisks(stacks, initDisk) {
  const controllers = new Map();
  const planned = stacks.map((stack) => {
    const geometry = GEOMETRIES[stack.geometry];
    if (!controllers.has(stack.geometry)) {
      controllers.set(stack.geometry, { id: stack.geometry, ...geometry, namespaces: [] });
    }
    const controller = controllers.get(stack.geometry);
    const disks = [];
    for (let i = 0; i < stack.disks; i++) {
      const ns = { sizeBytes: DISK_BYTES, stack: stack.name };
      if (stack.kind === 'partition') ns.init = (image) => initDisk(image, mbr(geometry.blockSize, DISK_BYTES));
      controller.namespaces.push(ns);
      disks.push({ serial: controller.id, nsid: controller.namespaces.length, blockSize: geometry.blockSize });
    }
    return { ...stack, ...geometry, diskRefs: disks };
  });
  return { controllers: [...controllers.values()], stacks: planned };
}
