// The pure parts of the bench and the CLI: the page sequence and stamps,
// statistics, device counters, the verdict, option checks, the storage-stack
// helpers, text formatting and argument parsing. No filesystem, no kernel.
import { describe, expect, it } from 'vitest'
import { parseDeviceStat } from '../lib/bench/device-counters'
import { bytesNeeded, DEFAULTS, resolveBenchConfig, type BenchOptions } from '../lib/bench/options'
import { median, percentile, Samples } from '../lib/bench/stats'
import type { BenchStack, Strategy, StrategyResult } from '../lib/bench/types'
import { verdict } from '../lib/bench/verdict'
import { PageSequence, readStamp, stampPage } from '../lib/bench/workload'
import type { BlockDeviceLimits } from '../lib/capabilities'
import {
  parseChoice, parseCommandLine, parseInteger, parseList, parseSeconds, parseSize, UsageError,
} from '../lib/cli/args'
import { formatBytes, formatCount, formatRatio, table } from '../lib/format'
import type { AtomicWriteInfo } from '../lib/info'
import {
  atomicPathFor, atomicPaths, bestAtomicPath, kernelAtLeast, kernelVersion, parseMountInfo,
} from '../lib/stack'

const KiB = 1024
const MiB = 1024 * 1024

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error, got none')
}

describe('PageSequence', () => {
  it('gives the same batches for the same seed, in two instances', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      const a = new PageSequence(1000, pattern, 12345)
      const b = new PageSequence(1000, pattern, 12345)
      for (let i = 0; i < 50; i++) {
        const size = 1 + (i % 64)
        expect(Array.from(a.nextBatch(size))).toEqual(Array.from(b.nextBatch(size)))
      }
    }
  })

  it('gives other batches for another seed', () => {
    const a = new PageSequence(100000, 'random', 1).nextBatch(64)
    const b = new PageSequence(100000, 'random', 2).nextBatch(64)
    expect(Array.from(a)).not.toEqual(Array.from(b))
  })

  it('returns batches of the asked size, of distinct pages in [0, pages)', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      for (const [pages, size] of [[1000, 64], [100, 99], [17, 5], [1, 1], [2, 2]]) {
        const seq = new PageSequence(pages, pattern, 7)
        for (let i = 0; i < 200; i++) {
          const batch = seq.nextBatch(size)
          expect(batch).toBeInstanceOf(Uint32Array)
          expect(batch.length).toBe(size)
          expect(new Set(batch).size).toBe(size)
          for (const page of batch) {
            expect(Number.isInteger(page)).toBe(true)
            expect(page).toBeGreaterThanOrEqual(0)
            expect(page).toBeLessThan(pages)
          }
        }
      }
    }
  })

  it('spreads random pages over most of the working set', () => {
    const pages = 1000
    const seq = new PageSequence(pages, 'random', 42)
    const seen = new Set<number>()
    const counts = new Array<number>(pages).fill(0)
    for (let i = 0; i < 100; i++) {
      for (const page of seq.nextBatch(64)) {
        seen.add(page)
        counts[page]++
      }
    }
    // 6400 draws over 1000 pages: about 99.8% expected.
    expect(seen.size).toBeGreaterThan(0.95 * pages)
    // Neither half of the space is starved.
    const low = counts.slice(0, pages / 2).reduce((s, n) => s + n, 0)
    expect(low).toBeGreaterThan(0.4 * 6400)
    expect(low).toBeLessThan(0.6 * 6400)
  })

  it('does not start every random batch at the same pages', () => {
    const seq = new PageSequence(1000, 'random', 3)
    const first = Array.from(seq.nextBatch(16))
    const second = Array.from(seq.nextBatch(16))
    expect(second).not.toEqual(first)
  })

  it('walks sequential pages in order and wraps around modulo pages', () => {
    const seq = new PageSequence(10, 'sequential', 99)
    expect(Array.from(seq.nextBatch(4))).toEqual([0, 1, 2, 3])
    expect(Array.from(seq.nextBatch(4))).toEqual([4, 5, 6, 7])
    expect(Array.from(seq.nextBatch(4))).toEqual([8, 9, 0, 1])
    expect(Array.from(seq.nextBatch(4))).toEqual([2, 3, 4, 5])
    expect(Array.from(seq.nextBatch(10))).toEqual([6, 7, 8, 9, 0, 1, 2, 3, 4, 5])
    expect(Array.from(seq.nextBatch(3))).toEqual([6, 7, 8])
  })

  it('ignores the seed in sequential order', () => {
    const a = new PageSequence(50, 'sequential', 1)
    const b = new PageSequence(50, 'sequential', 2)
    expect(Array.from(a.nextBatch(20))).toEqual(Array.from(b.nextBatch(20)))
  })

  it('makes a permutation when the batch is the whole working set', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      const pages = 256
      const seq = new PageSequence(pages, pattern, 5)
      for (let i = 0; i < 5; i++) {
        const batch = Array.from(seq.nextBatch(pages))
        expect([...batch].sort((x, y) => x - y)).toEqual(Array.from({ length: pages }, (_, p) => p))
      }
    }
  })

  it('shuffles a whole-set random batch (not just 0..n-1 in order)', () => {
    const batch = Array.from(new PageSequence(256, 'random', 5).nextBatch(256))
    expect(batch).not.toEqual(Array.from({ length: 256 }, (_, p) => p))
  })
})

describe('stampPage / readStamp', () => {
  const SIZE = 4096

  function stamped(pageNumber: number, writeNumber: number, size = SIZE): Buffer {
    const page = Buffer.alloc(size, 0xa5)
    stampPage(page, pageNumber, writeNumber)
    return page
  }

  it('reads back the write number of a stamped page', () => {
    expect(readStamp(stamped(7, 42), 7)).toBe(42)
    expect(readStamp(stamped(0, 0), 0)).toBe(0)
    expect(readStamp(stamped(123456, 1), 123456)).toBe(1)
    expect(readStamp(stamped(2 ** 31 - 1, 2 ** 32 - 1), 2 ** 31 - 1)).toBe(2 ** 32 - 1)
    expect(readStamp(stamped(3, 9, 512), 3)).toBe(9)
    expect(readStamp(stamped(3, 9, 64 * KiB), 3)).toBe(9)
  })

  it('stamps only the first and the last 8 bytes', () => {
    const page = stamped(7, 42)
    expect(page.readUInt32LE(0)).toBe(7)
    expect(page.readUInt32LE(4)).toBe(42)
    expect(page.readUInt32LE(SIZE - 8)).toBe(7)
    expect(page.readUInt32LE(SIZE - 4)).toBe(42)
    expect(page.subarray(8, SIZE - 8).every((b) => b === 0xa5)).toBe(true)
  })

  it('works on a view into a larger buffer', () => {
    const chunk = Buffer.alloc(4 * SIZE)
    for (let i = 0; i < 4; i++) stampPage(chunk.subarray(i * SIZE, (i + 1) * SIZE), 10 + i, 100 + i)
    for (let i = 0; i < 4; i++) expect(readStamp(chunk.subarray(i * SIZE, (i + 1) * SIZE), 10 + i)).toBe(100 + i)
  })

  it('returns -1 when asked for another page number (a misplaced page)', () => {
    const page = stamped(7, 42)
    expect(readStamp(page, 8)).toBe(-1)
    expect(readStamp(page, 6)).toBe(-1)
    expect(readStamp(page, 0)).toBe(-1)
  })

  it('returns -1 for a torn page: new head, old tail', () => {
    const old = stamped(7, 41)
    const torn = stamped(7, 42)
    // The last sector kept the previous write.
    old.copy(torn, SIZE - 512, SIZE - 512)
    expect(readStamp(torn, 7)).toBe(-1)
    // And the other way round: only the first sector made it.
    const tornHead = stamped(7, 41)
    stamped(7, 42).copy(tornHead, 0, 0, 512)
    expect(readStamp(tornHead, 7)).toBe(-1)
  })

  it('returns -1 when only the tail stamp differs, by one byte at the very end', () => {
    const page = stamped(7, 42)
    page[SIZE - 1] ^= 0x01
    expect(readStamp(page, 7)).toBe(-1)
  })

  it('returns -1 when the tail page number differs', () => {
    const page = stamped(7, 42)
    page.writeUInt32LE(8, SIZE - 8)
    expect(readStamp(page, 7)).toBe(-1)
  })

  it('returns -1 when the head page number differs', () => {
    const page = stamped(7, 42)
    page.writeUInt32LE(8, 0)
    expect(readStamp(page, 7)).toBe(-1)
  })

  it('does not care about the bytes between the stamps', () => {
    const page = stamped(7, 42)
    page.fill(0, 8, SIZE - 8)
    expect(readStamp(page, 7)).toBe(42)
  })
})

describe('percentile / median', () => {
  const oneTo1000 = Array.from({ length: 1000 }, (_, i) => i + 1)

  it('takes the nearest rank', () => {
    expect(percentile(oneTo1000, 0.5)).toBe(500)
    expect(percentile(oneTo1000, 0.99)).toBe(990)
    expect(percentile(oneTo1000, 0.999)).toBe(999)
    expect(percentile(oneTo1000, 1)).toBe(1000)
    expect(percentile(oneTo1000, 0.001)).toBe(1)
    expect(percentile(oneTo1000, 0.0001)).toBe(1)
  })

  it('handles small arrays', () => {
    expect(percentile([], 0.5)).toBe(0)
    expect(percentile([7], 0.5)).toBe(7)
    expect(percentile([7], 0.999)).toBe(7)
    expect(percentile([1, 2], 0.5)).toBe(1)
    expect(percentile([1, 2], 0.51)).toBe(2)
    expect(percentile([10, 20, 30, 40], 0.75)).toBe(30)
    expect(percentile([10, 20, 30, 40], 0.76)).toBe(40)
    // 100 samples: p99 is the 99th, p99.9 the 100th.
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(hundred, 0.99)).toBe(99)
    expect(percentile(hundred, 0.999)).toBe(100)
  })

  it('takes typed arrays', () => {
    expect(percentile(Float64Array.from(oneTo1000), 0.99)).toBe(990)
  })

  it('has no floating-point off-by-one for the percentiles a bench reports', () => {
    for (let n = 1; n <= 5000; n++) {
      const a = Array.from({ length: n }, (_, i) => i + 1)
      expect(percentile(a, 0.5)).toBe(Math.ceil((n * 500) / 1000))
      expect(percentile(a, 0.99)).toBe(Math.ceil((n * 990) / 1000))
      expect(percentile(a, 0.999)).toBe(Math.ceil((n * 999) / 1000))
    }
  })

  it('takes the median of odd and even counts, unsorted input, without changing it', () => {
    expect(median([])).toBe(0)
    expect(median([5])).toBe(5)
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([100, 9, 10])).toBe(10)
    const input = [3, 1, 2]
    median(input)
    expect(input).toEqual([3, 1, 2])
  })
})

describe('Samples', () => {
  it('is empty at first', () => {
    const s = new Samples()
    expect(s.length).toBe(0)
    expect(s.percentiles()).toEqual({ p50: 0, p99: 0, p999: 0 })
  })

  it('keeps every value when it grows past its first 1024', () => {
    const s = new Samples()
    const n = 5000
    // Pushed in a scrambled order (a permutation of 1..n).
    for (let i = 0; i < n; i++) s.push(((i * 7919) % n) + 1)
    expect(s.length).toBe(n)
    expect(s.percentiles()).toEqual({ p50: 2500, p99: 4950, p999: 4995 })
  })

  it('keeps the values from before and after each growth', () => {
    const s = new Samples()
    for (let i = 0; i < 1024; i++) s.push(1000) // fills the first array
    for (let i = 0; i < 1024; i++) s.push(1) // all go into grown arrays
    expect(s.length).toBe(2048)
    // Sorted: 1024 ones, then 1024 thousands. Lost or zeroed halves would show here.
    expect(s.percentiles()).toEqual({ p50: 1, p99: 1000, p999: 1000 })
    for (let i = 0; i < 2048; i++) s.push(0.5) // a third growth
    expect(s.length).toBe(4096)
    expect(s.percentiles()).toEqual({ p50: 0.5, p99: 1000, p999: 1000 })
  })

  it('sorts numerically, not as text', () => {
    const s = new Samples()
    for (const v of [9, 100, 10, 1000, 2, 20, 3, 30, 4, 40]) s.push(v)
    // Sorted: 2 3 4 9 10 20 30 40 100 1000.
    expect(s.percentiles()).toEqual({ p50: 10, p99: 1000, p999: 1000 })
  })

  it('keeps fractions', () => {
    const s = new Samples()
    s.push(0.25)
    s.push(0.5)
    expect(s.percentiles().p50).toBe(0.25)
    expect(s.percentiles().p99).toBe(0.5)
  })
})

describe('parseDeviceStat', () => {
  const line = '   44673     9228  2590786    38880     9408    24919  1176280    35609        0     8936    76581    17194       54   723264     2077      264       13'

  it('reads sectors written (field 7) and flush requests (field 16)', () => {
    expect(parseDeviceStat(line)).toEqual({ bytesWritten: 1176280 * 512, flushes: 264 })
    expect(parseDeviceStat(`${line}\n`)).toEqual({ bytesWritten: 602255360, flushes: 264 })
  })

  it('reads a kernel without discard and flush fields (11 fields) as 0 flushes', () => {
    const old = line.trim().split(/\s+/).slice(0, 11).join(' ')
    expect(parseDeviceStat(`  ${old}\n`)).toEqual({ bytesWritten: 602255360, flushes: 0 })
  })

  it('reads a kernel with discard but no flush fields (15 fields) as 0 flushes', () => {
    const mid = line.trim().split(/\s+/).slice(0, 15).join(' ')
    expect(parseDeviceStat(mid)).toEqual({ bytesWritten: 602255360, flushes: 0 })
  })

  it('accepts tabs and runs of spaces', () => {
    expect(parseDeviceStat('1\t2  3 4 5 6 7 8 9 10 11 12 13 14 15 16 17')).toEqual({ bytesWritten: 7 * 512, flushes: 16 })
  })

  it('gives zeros for an idle device', () => {
    expect(parseDeviceStat(`${Array(17).fill('0').join(' ')}\n`)).toEqual({ bytesWritten: 0, flushes: 0 })
  })
})

describe('formatRatio', () => {
  it('says ratios as people say them', () => {
    expect(formatRatio(1.94)).toBe('1.9x')
    expect(formatRatio(1)).toBe('1.0x')
    expect(formatRatio(0.531)).toBe('0.53x')
    expect(formatRatio(0.05)).toBe('0.05x')
    expect(formatRatio(12.3)).toBe('12x')
    expect(formatRatio(10)).toBe('10x')
    expect(formatRatio(9.9)).toBe('9.9x')
    expect(formatRatio(150)).toBe('150x')
  })
})

describe('verdict', () => {
  const info: AtomicWriteInfo = {
    supported: true, unitMin: 4096, unitMax: 65536, unitMaxOpt: 65536, segmentsMax: 1,
    dioMemAlign: 512, dioOffsetAlign: 512, blockSize: 4096,
  }

  function stack(atomicPath: BenchStack['atomicPath'], filesystem = 'xfs'): BenchStack {
    return {
      kernel: '6.18.0-1-amd64', filesystem, mountPoint: '/mnt/bench', mountOptions: 'rw,relatime',
      statx: info, blockDevice: null, atomicPath, counterDevice: 'loop3',
    }
  }

  function result(strategy: Strategy, pagesPerSec: number): StrategyResult {
    const latencyUs = { p50: 100, p99: 200, p999: 300 }
    return {
      strategy, pagesWritten: 10000, pagesDigest: '0123456789abcdef', pagesPerSec, mibPerSec: pagesPerSec / 64,
      pagesPerSecRange: { min: pagesPerSec * 0.9, max: pagesPerSec * 1.1 }, latencyUs, batchLatencyUs: latencyUs,
      deviceBytesPerPage: null, flushesPerPage: 1 / 64, deviceFlushesPerPage: null, vsUnprotected: null,
    }
  }

  const vs = (atomic: number, doublewrite = 1000, path: BenchStack['atomicPath'] = 'hardware') =>
    verdict(stack(path), [result('atomic', atomic), result('doublewrite', doublewrite), result('unprotected', 3000)], null)

  it('says atomic is faster at 1.1x and above', () => {
    expect(vs(2000)).toBe('atomic writes are 2.0x faster than double-write here (hardware path); double-write can go')
    expect(vs(1100)).toMatch(/^atomic writes are 1\.1x faster than double-write/)
    expect(vs(1100)).toMatch(/double-write can go$/)
    expect(vs(15000)).toMatch(/^atomic writes are 15x faster/)
  })

  it('says as fast within ±10%', () => {
    for (const atomic of [1099, 1050, 1000, 950, 901]) {
      expect(vs(atomic)).toMatch(/^atomic writes are as fast as double-write here \(\d\.\d+x, hardware path\); they save double-write's extra copy$/)
    }
    expect(vs(1000)).toContain('(1.0x, hardware path)')
    expect(vs(910)).toContain('(0.91x, hardware path)')
  })

  it('says keep double-write below 0.9', () => {
    for (const atomic of [899, 500, 10]) {
      expect(vs(atomic)).toMatch(/slower than double-write here \(0\.\d+x\); keep double-write$/)
      expect(vs(atomic)).not.toMatch(/can go|as fast/)
    }
    expect(vs(500)).toContain('(0.50x)')
  })

  it('says "atomic writes are slower" (plural verb) on the hardware path', () => {
    // "atomic writes" is plural: "atomic writes is slower" is not English.
    expect(vs(500)).toBe('atomic writes are slower than double-write here (0.50x); keep double-write')
  })

  it('names the XFS software path when atomic writes go through it', () => {
    expect(vs(500, 1000, 'software')).toBe('the XFS software path is slower than double-write here (0.50x); keep double-write')
    expect(vs(2000, 1000, 'software')).toContain('(software path)')
    expect(vs(1000, 1000, 'software')).toContain('software path')
    expect(vs(500, 1000, 'hardware')).not.toContain('software')
  })

  it('uses the stack filesystem name, in capitals', () => {
    const text = verdict(stack('software', 'xfs'), [result('atomic', 100), result('doublewrite', 1000)], null)
    expect(text).toContain('XFS software path')
  })

  it('says unsupported and gives double-write against unprotected when atomic was left out', () => {
    const text = verdict(stack('none', 'ext4'), [result('doublewrite', 1500), result('unprotected', 3000)],
      'atomic: the file cannot be written atomically here')
    expect(text).toBe('atomic writes are unsupported here, so keep double-write; it runs at 0.50x the speed of unprotected writes')
  })

  it('gives double-write against unprotected alone when atomic was not asked for', () => {
    const text = verdict(stack('hardware'), [result('doublewrite', 1500), result('unprotected', 3000)], null)
    expect(text).toBe('double-write runs at 0.50x the speed of unprotected writes here')
    expect(text).not.toContain('unsupported')
  })

  it('compares atomic with unprotected when double-write was not run', () => {
    const text = verdict(stack('hardware'), [result('unprotected', 1000), result('atomic', 800)], null)
    expect(text).toBe('atomic writes run at 0.80x the speed of unprotected writes here (hardware path)')
  })

  it('does not depend on the order of the results', () => {
    const forward = [result('atomic', 2000), result('doublewrite', 1000), result('unprotected', 3000)]
    expect(verdict(stack('hardware'), [...forward].reverse(), null)).toBe(verdict(stack('hardware'), forward, null))
  })

  it('reports a lone strategy, and nothing', () => {
    expect(verdict(stack('hardware'), [result('unprotected', 1234.6)], null)).toBe('unprotected: 1235 pages/s (nothing to compare with)')
    expect(verdict(stack('hardware'), [], null)).toBe('nothing was measured')
  })
})

describe('resolveBenchConfig', () => {
  const resolve = (options: BenchOptions) => resolveBenchConfig(options)
  const code = (options: unknown) => codeOf(() => resolveBenchConfig(options as BenchOptions))

  it('fills in the defaults', () => {
    expect(resolve({})).toEqual({
      pageSize: 16384, batch: 64, depth: 1, sync: 'batch', pattern: 'random', pages: 4096,
      strategies: ['atomic', 'doublewrite', 'unprotected'], rounds: 5, writes: null, duration: 3,
      explicitStrategies: false,
    })
    expect(resolve({}).duration).toBe(DEFAULTS.duration)
  })

  it('takes every setting given', () => {
    expect(resolve({
      pageSize: 4096, batch: 8, depth: 4, sync: 'page', pattern: 'sequential', pages: 100,
      strategies: ['unprotected', 'atomic'], rounds: 2, writes: 1000,
    })).toEqual({
      pageSize: 4096, batch: 8, depth: 4, sync: 'page', pattern: 'sequential', pages: 100,
      strategies: ['unprotected', 'atomic'], rounds: 2, writes: 1000, duration: null, explicitStrategies: true,
    })
  })

  it('refuses options that are not an object', () => {
    for (const bad of [null, undefined, 'fast', 42, true]) {
      const err = thrown(() => resolveBenchConfig(bad as unknown as BenchOptions))
      expect(err).toBeInstanceOf(TypeError)
      expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_TYPE')
    }
  })

  it('takes page sizes that are powers of two in [512, 64 MiB]', () => {
    for (const pageSize of [512, 1024, 4096, 16384, 65536, 64 * MiB]) expect(resolve({ pageSize }).pageSize).toBe(pageSize)
    for (const pageSize of [256, 511, 513, 1000, 12288, 64 * MiB + 1, 128 * MiB, 0, -4096, 4096.5, NaN, Infinity]) {
      expect(code({ pageSize })).toBe('ERR_OUT_OF_RANGE')
    }
    const err = thrown(() => resolve({ pageSize: 12288 }))
    expect(err).toBeInstanceOf(RangeError)
    expect(err.message).toContain('"pageSize"')
    expect(err.message).toContain('power of two')
    for (const pageSize of ['16384', 16384n, null, {}]) expect(code({ pageSize })).toBe('ERR_INVALID_ARG_TYPE')
  })

  it('takes batch in [1, 4096]', () => {
    expect(resolve({ batch: 1 }).batch).toBe(1)
    expect(resolve({ batch: 4096 }).batch).toBe(4096)
    for (const batch of [0, -1, 4097, 1.5, NaN]) expect(code({ batch })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ batch: '64' })).toBe('ERR_INVALID_ARG_TYPE')
    expect(thrown(() => resolve({ batch: 0 })).message).toContain('"batch"')
  })

  it('takes depth in [1, 1024]', () => {
    expect(resolve({ depth: 1 }).depth).toBe(1)
    expect(resolve({ depth: 1024 }).depth).toBe(1024)
    for (const depth of [0, 1025, 2.5]) expect(code({ depth })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ depth: '4' })).toBe('ERR_INVALID_ARG_TYPE')
  })

  it('takes rounds in [1, 100]', () => {
    expect(resolve({ rounds: 1 }).rounds).toBe(1)
    expect(resolve({ rounds: 100 }).rounds).toBe(100)
    for (const rounds of [0, 101, 1.5]) expect(code({ rounds })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ rounds: '5' })).toBe('ERR_INVALID_ARG_TYPE')
  })

  it('takes pages from batch up to 2^31 - 1, and refuses a batch larger than the working set', () => {
    expect(resolve({ batch: 64, pages: 64 }).pages).toBe(64)
    expect(resolve({ batch: 1, pages: 1 }).pages).toBe(1)
    expect(resolve({ pages: 2 ** 31 - 1 }).pages).toBe(2 ** 31 - 1)
    expect(code({ batch: 64, pages: 63 })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ batch: 65, pages: 64 })).toBe('ERR_OUT_OF_RANGE')
    // The default batch (64) against a small working set.
    expect(code({ pages: 10 })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ pages: 2 ** 31 })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ pages: 0 })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ pages: 100.5 })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ pages: '4096' })).toBe('ERR_INVALID_ARG_TYPE')
    expect(thrown(() => resolve({ batch: 64, pages: 63 })).message).toContain('"pages"')
  })

  it('takes writes in [1, 2^31], and then no duration', () => {
    expect(resolve({ writes: 1 })).toMatchObject({ writes: 1, duration: null })
    expect(resolve({ writes: 2 ** 31 })).toMatchObject({ writes: 2 ** 31, duration: null })
    for (const writes of [0, -1, 2 ** 31 + 1, 1.5, NaN]) expect(code({ writes })).toBe('ERR_OUT_OF_RANGE')
    expect(code({ writes: '1000' })).toBe('ERR_INVALID_ARG_TYPE')
  })

  it('takes duration in [0.01, 86400] seconds, and then no writes', () => {
    expect(resolve({ duration: 0.01 })).toMatchObject({ duration: 0.01, writes: null })
    expect(resolve({ duration: 24 * 3600 })).toMatchObject({ duration: 86400, writes: null })
    expect(resolve({ duration: 1.5 }).duration).toBe(1.5)
    for (const duration of [0.0099, 0, -1, 86400.001, NaN, Infinity, -Infinity]) {
      expect(code({ duration })).toBe('ERR_OUT_OF_RANGE')
    }
    const err = thrown(() => resolve({ duration: 0 }))
    expect(err).toBeInstanceOf(RangeError)
    expect(err.message).toContain('"duration"')
    expect(code({ duration: '3' })).toBe('ERR_INVALID_ARG_TYPE')
  })

  it('refuses writes and duration together', () => {
    const err = thrown(() => resolve({ writes: 1000, duration: 3 }))
    expect(err).toBeInstanceOf(TypeError)
    expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_VALUE')
    expect(err.message).toContain('not both')
  })

  it('takes strategies in the order given, and says they were chosen', () => {
    expect(resolve({ strategies: ['doublewrite'] })).toMatchObject({ strategies: ['doublewrite'], explicitStrategies: true })
    expect(resolve({ strategies: ['unprotected', 'doublewrite', 'atomic'] }).strategies)
      .toEqual(['unprotected', 'doublewrite', 'atomic'])
  })

  it('does not share the strategies array with the caller or between calls', () => {
    const mine: Strategy[] = ['atomic']
    const config = resolve({ strategies: mine })
    config.strategies.push('unprotected')
    expect(mine).toEqual(['atomic'])
    resolve({}).strategies.pop()
    expect(resolve({}).strategies).toEqual(['atomic', 'doublewrite', 'unprotected'])
  })

  it('refuses an empty, non-array, unknown or repeated strategy list', () => {
    for (const strategies of [[], 'atomic', null, {}, ['fast'], ['atomic', 'Atomic'], ['atomic', 3]]) {
      expect(code({ strategies })).toBe('ERR_INVALID_ARG_VALUE')
    }
    const err = thrown(() => resolve({ strategies: ['atomic', 'doublewrite', 'atomic'] }))
    expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_VALUE')
    expect(err.message).toContain('twice')
  })

  it('takes sync and pattern from their sets only', () => {
    expect(resolve({ sync: 'page' }).sync).toBe('page')
    expect(resolve({ sync: 'batch' }).sync).toBe('batch')
    expect(resolve({ pattern: 'sequential' }).pattern).toBe('sequential')
    expect(resolve({ pattern: 'random' }).pattern).toBe('random')
    for (const sync of ['never', 'Page', '', 1, null]) expect(code({ sync })).toBe('ERR_INVALID_ARG_VALUE')
    for (const pattern of ['zigzag', 'RANDOM', 0]) expect(code({ pattern })).toBe('ERR_INVALID_ARG_VALUE')
    expect(thrown(() => resolve({ sync: 'never' as 'page' })).message).toContain('batch, page')
  })
})

describe('bytesNeeded', () => {
  it('counts a file per strategy, the double-write area, a batch of slack and 16 MiB', () => {
    const all = resolveBenchConfig({})
    expect(bytesNeeded(all)).toBe(3 * 4096 * 16384 + 64 * 16384 + 64 * 16384 + 16 * MiB)
  })

  it('leaves the double-write area out without double-write', () => {
    const config = resolveBenchConfig({ strategies: ['atomic', 'unprotected'], pageSize: 4096, pages: 1000, batch: 10 })
    expect(bytesNeeded(config)).toBe(2 * 1000 * 4096 + 10 * 4096 + 16 * MiB)
  })

  it('grows with every setting that matters', () => {
    const base = resolveBenchConfig({})
    const baseBytes = bytesNeeded(base)
    expect(bytesNeeded({ ...base, pages: base.pages * 2 })).toBeGreaterThan(baseBytes)
    expect(bytesNeeded({ ...base, pageSize: base.pageSize * 2 })).toBeGreaterThan(baseBytes)
    expect(bytesNeeded({ ...base, batch: base.batch * 2 })).toBeGreaterThan(baseBytes)
    expect(bytesNeeded({ ...base, strategies: ['atomic'] })).toBeLessThan(baseBytes)
  })
})

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
  ].join('\n')
  const mounts = parseMountInfo(text)

  it('reads every complete line and skips the rest', () => {
    expect(mounts).toHaveLength(5)
  })

  it('reads a line with one optional field', () => {
    expect(mounts[0]).toEqual({
      devMajor: 259, devMinor: 2, mountPoint: '/', mountOptions: 'rw,relatime', type: 'ext4',
      source: '/dev/nvme0n1p2', superOptions: 'rw,errors=remount-ro',
    })
    expect(mounts[1]).toEqual({
      devMajor: 98, devMinor: 0, mountPoint: '/mnt2', mountOptions: 'rw,noatime', type: 'ext3',
      source: '/dev/root', superOptions: 'rw,errors=continue',
    })
  })

  it('reads a mount point with an escaped space and two optional fields', () => {
    expect(mounts[2]).toEqual({
      devMajor: 7, devMinor: 3, mountPoint: '/mnt/my disk', mountOptions: 'rw,relatime', type: 'xfs',
      source: '/dev/loop3', superOptions: 'rw,attr2,inode64,logbufs=8',
    })
  })

  it('reads a line with no optional fields', () => {
    expect(mounts[3]).toEqual({
      devMajor: 0, devMinor: 45, mountPoint: '/tmp', mountOptions: 'rw,nosuid,nodev', type: 'tmpfs',
      source: 'tmpfs', superOptions: 'rw,size=1024k,inode64',
    })
  })

  it('unescapes backslash, tab and space in the mount point and the source', () => {
    expect(mounts[4].mountPoint).toBe('/mnt/back\\slash\ttab')
    expect(mounts[4].source).toBe('my source')
  })

  it('reads nothing from nothing', () => {
    expect(parseMountInfo('')).toEqual([])
    expect(parseMountInfo('\n\n')).toEqual([])
  })
})

describe('kernelVersion / kernelAtLeast', () => {
  it('reads major and minor', () => {
    expect(kernelVersion('6.18.0-1-amd64')).toEqual([6, 18])
    expect(kernelVersion('6.11.0')).toEqual([6, 11])
    expect(kernelVersion('5.4.0-150-generic')).toEqual([5, 4])
    expect(kernelVersion('6.16-rc3')).toEqual([6, 16])
    expect(kernelVersion('10.2.1')).toEqual([10, 2])
  })

  it('gives [0, 0] for what it cannot read', () => {
    expect(kernelVersion('')).toEqual([0, 0])
    expect(kernelVersion('linux')).toEqual([0, 0])
    expect(kernelVersion('6')).toEqual([0, 0])
  })

  it('compares numerically, minor by minor', () => {
    expect(kernelAtLeast('6.11.0', 6, 11)).toBe(true)
    expect(kernelAtLeast('6.10.14', 6, 11)).toBe(false)
    expect(kernelAtLeast('6.9.0', 6, 11)).toBe(false)
    expect(kernelAtLeast('6.16.1', 6, 11)).toBe(true)
    expect(kernelAtLeast('7.0.0', 6, 11)).toBe(true)
    expect(kernelAtLeast('5.19.0', 6, 11)).toBe(false)
    expect(kernelAtLeast('10.0', 6, 11)).toBe(true)
    expect(kernelAtLeast('unknown', 6, 11)).toBe(false)
  })
})

describe('atomicPaths / atomicPathFor / bestAtomicPath', () => {
  const xfsInfo: AtomicWriteInfo = {
    supported: true, unitMin: 4096, unitMax: 2 * MiB, unitMaxOpt: 0, segmentsMax: 1,
    dioMemAlign: 512, dioOffsetAlign: 512, blockSize: 4096,
  }
  const noDevice: BlockDeviceLimits = { device: 'loop3', unitMinBytes: 0, unitMaxBytes: 0, maxBytes: 0, boundaryBytes: 0 }
  const nvme = (unitMax: number): BlockDeviceLimits => ({
    device: 'nvme0n1', unitMinBytes: 512, unitMaxBytes: unitMax, maxBytes: unitMax, boundaryBytes: 0,
  })
  const pathsOf = (paths: ReturnType<typeof atomicPaths>, lengths: number[]) => lengths.map((n) => atomicPathFor(paths, n))

  it('XFS on a device without atomic writes: software only, up to unitMax', () => {
    for (const device of [null, noDevice]) {
      const paths = atomicPaths('xfs', xfsInfo, device)
      expect(paths).toEqual({ unitMin: 4096, hardwareMin: 0, hardwareMax: 0, softwareMax: 2 * MiB })
      expect(pathsOf(paths, [2048, 4095, 4096, 16 * KiB, 2 * MiB, 2 * MiB + 4096, 4 * MiB]))
        .toEqual(['none', 'none', 'software', 'software', 'software', 'none', 'none'])
      expect(bestAtomicPath(paths)).toBe('software')
    }
  })

  it('XFS with unitMaxOpt 64 KiB: hardware up to 64 KiB, then software', () => {
    const paths = atomicPaths('xfs', { ...xfsInfo, unitMaxOpt: 65536 }, nvme(65536))
    expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 65536, softwareMax: 2 * MiB })
    expect(pathsOf(paths, [512, 4095, 4096, 16 * KiB, 64 * KiB, 64 * KiB + 4096, 128 * KiB, 2 * MiB, 2 * MiB + 1]))
      .toEqual(['none', 'none', 'hardware', 'hardware', 'hardware', 'software', 'software', 'software', 'none'])
    expect(bestAtomicPath(paths)).toBe('hardware')
  })

  it('XFS with unitMaxOpt trusts it over the device limits', () => {
    const paths = atomicPaths('xfs', { ...xfsInfo, unitMaxOpt: 65536 }, nvme(256 * KiB))
    expect(paths.hardwareMax).toBe(65536)
    expect(atomicPathFor(paths, 128 * KiB)).toBe('software')
  })

  it('XFS on a device with sysfs unitMax 16 KiB and no unitMaxOpt: hardware up to 16 KiB', () => {
    const paths = atomicPaths('xfs', xfsInfo, nvme(16384))
    expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 16384, softwareMax: 2 * MiB })
    expect(pathsOf(paths, [2048, 4096, 8192, 16384, 16384 + 4096, 32768, 2 * MiB, 4 * MiB]))
      .toEqual(['none', 'hardware', 'hardware', 'hardware', 'software', 'software', 'software', 'none'])
    expect(bestAtomicPath(paths)).toBe('hardware')
  })

  it('XFS on a device whose atomic unit is below the filesystem block: software only', () => {
    const paths = atomicPaths('xfs', xfsInfo, nvme(2048))
    expect(paths.hardwareMax).toBe(0)
    expect(bestAtomicPath(paths)).toBe('software')
    expect(atomicPathFor(paths, 2048)).toBe('none')
    expect(atomicPathFor(paths, 4096)).toBe('software')
  })

  it('XFS never claims hardware beyond statx unitMax', () => {
    const small = { ...xfsInfo, unitMax: 16384 }
    expect(atomicPaths('xfs', small, nvme(65536)).hardwareMax).toBe(16384)
    expect(atomicPaths('xfs', { ...small, unitMaxOpt: 65536 }, null).hardwareMax).toBe(16384)
  })

  it('XFS hardware starts at the larger of statx and device unitMin', () => {
    const paths = atomicPaths('xfs', xfsInfo, { ...nvme(65536), unitMinBytes: 8192 })
    expect(paths.hardwareMin).toBe(8192)
    expect(atomicPathFor(paths, 4096)).toBe('software')
    expect(atomicPathFor(paths, 8192)).toBe('hardware')
  })

  it('ext4 with atomic writes: hardware over the whole statx range, never software', () => {
    const info = { ...xfsInfo, unitMin: 4096, unitMax: 16384 }
    for (const device of [null, nvme(16384), nvme(65536), noDevice]) {
      const paths = atomicPaths('ext4', info, device)
      expect(paths).toEqual({ unitMin: 4096, hardwareMin: 4096, hardwareMax: 16384, softwareMax: 0 })
      expect(pathsOf(paths, [2048, 4095, 4096, 8192, 16384, 16385, 32768, 2 * MiB]))
        .toEqual(['none', 'none', 'hardware', 'hardware', 'hardware', 'none', 'none', 'none'])
      expect(bestAtomicPath(paths)).toBe('hardware')
    }
  })

  it('a raw block device (no filesystem type) is hardware only', () => {
    const paths = atomicPaths(null, { ...xfsInfo, unitMin: 512, unitMax: 65536 }, nvme(65536))
    expect(paths).toEqual({ unitMin: 512, hardwareMin: 512, hardwareMax: 65536, softwareMax: 0 })
    expect(atomicPathFor(paths, 512)).toBe('hardware')
    expect(atomicPathFor(paths, 128 * KiB)).toBe('none')
  })

  it('unsupported: none, whatever the filesystem and device', () => {
    const info: AtomicWriteInfo = { ...xfsInfo, supported: false, unitMin: 0, unitMax: 0, unitMaxOpt: 0, segmentsMax: 0 }
    for (const fs of ['xfs', 'ext4', 'tmpfs', null]) {
      for (const device of [null, noDevice, nvme(65536)]) {
        const paths = atomicPaths(fs, info, device)
        expect(paths).toEqual({ unitMin: 0, hardwareMin: 0, hardwareMax: 0, softwareMax: 0 })
        expect(pathsOf(paths, [0, 512, 4096, 16384, 65536])).toEqual(['none', 'none', 'none', 'none', 'none'])
        expect(bestAtomicPath(paths)).toBe('none')
      }
    }
  })
})

describe('formatBytes', () => {
  it('says sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 bytes')
    expect(formatBytes(512)).toBe('512 bytes')
    expect(formatBytes(1023)).toBe('1023 bytes')
    expect(formatBytes(1024)).toBe('1 KiB')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(16384)).toBe('16 KiB')
    expect(formatBytes(65536)).toBe('64 KiB')
    expect(formatBytes(MiB)).toBe('1 MiB')
    expect(formatBytes(2.5 * MiB)).toBe('2.5 MiB')
    expect(formatBytes(64 * MiB)).toBe('64 MiB')
    expect(formatBytes(1024 * MiB)).toBe('1 GiB')
    expect(formatBytes(1024 ** 4)).toBe('1 TiB')
    expect(formatBytes(2048 * 1024 ** 4)).toBe('2048 TiB')
    expect(formatBytes(1025)).toBe('1 KiB')
    expect(formatBytes(-2048)).toBe('-2 KiB')
  })
})

describe('formatCount', () => {
  it('says counts in three figures or fewer', () => {
    expect(formatCount(14812)).toBe('14.8k')
    expect(formatCount(1234567)).toBe('1.23M')
    expect(formatCount(87.3)).toBe('87.3')
    expect(formatCount(100)).toBe('100')
    expect(formatCount(9999)).toBe('10k')
    expect(formatCount(10000)).toBe('10k')
    expect(formatCount(999.6)).toBe('1k')
    expect(formatCount(7800)).toBe('7.8k')
    expect(formatCount(10)).toBe('10')
    expect(formatCount(20)).toBe('20')
    expect(formatCount(1)).toBe('1')
    expect(formatCount(1.5)).toBe('1.5')
    expect(formatCount(0.25)).toBe('0.25')
    expect(formatCount(0)).toBe('0')
    expect(formatCount(-14812)).toBe('-14.8k')
  })

  it('does not lose two orders of magnitude just below 100', () => {
    // (99.99).toPrecision(3) is '100'; stripping trailing zeros then leaves '1'.
    expect(formatCount(99.99)).toBe('100')
    expect(formatCount(99.96)).toBe('100')
  })
})

describe('table', () => {
  it('left-aligns text columns and right-aligns number columns', () => {
    const rows = [
      ['strategy', 'pages/s', 'MiB/s', 'path'],
      ['atomic', '14.8k', '231', 'hardware'],
      ['doublewrite', '7.41k', '116', 'none'],
      ['unprotected', '23.1k', '1.05', 'none'],
    ]
    expect(table(rows).split('\n')).toEqual([
      'strategy     pages/s  MiB/s  path',
      'atomic         14.8k    231  hardware',
      'doublewrite    7.41k    116  none',
      'unprotected    23.1k   1.05  none',
    ])
  })

  it('indents every line and trims trailing space', () => {
    const text = table([['a', 'bb'], ['ccc', 'd']], '  ')
    expect(text).toBe('  a    bb\n  ccc  d')
    for (const line of text.split('\n')) expect(line).toBe(line.trimEnd())
  })

  it('right-aligns the last column when it holds numbers', () => {
    const lines = table([['name', 'n'], ['x', '1'], ['y', '1000'], ['z', '-5']]).split('\n')
    expect(lines).toEqual(['name     n', 'x        1', 'y     1000', 'z       -5'])
    expect(new Set(lines.map((l) => l.length)).size).toBe(1)
  })

  it('keeps the first column left-aligned even when it holds numbers', () => {
    expect(table([['n', 'v'], ['1', '10'], ['100', '2']]).split('\n')).toEqual(['n     v', '1    10', '100   2'])
  })

  it('takes rows of different lengths', () => {
    expect(table([['a', 'b', 'c'], ['d']]).split('\n')).toEqual(['a  b  c', 'd'])
  })
})

describe('parseSize', () => {
  it('takes bytes and binary units, in any case', () => {
    expect(parseSize('page-size', '16384')).toBe(16384)
    expect(parseSize('page-size', '16k')).toBe(16384)
    expect(parseSize('page-size', '16K')).toBe(16384)
    expect(parseSize('page-size', '16KiB')).toBe(16384)
    expect(parseSize('page-size', '16kib')).toBe(16384)
    expect(parseSize('page-size', '16KB')).toBe(16384)
    expect(parseSize('page-size', '1m')).toBe(MiB)
    expect(parseSize('page-size', '1MiB')).toBe(MiB)
    expect(parseSize('page-size', '2g')).toBe(2 * 1024 * MiB)
    expect(parseSize('page-size', ' 4k ')).toBe(4096)
    expect(parseSize('page-size', '4 k')).toBe(4096)
  })

  it('refuses zero, negatives, fractions and words with a UsageError', () => {
    for (const bad of ['0', '0k', 'abc', '-1', '-16k', '1.5k', '', 'k', '16x', '16kk', '1e3', '99999999999g']) {
      const err = thrown(() => parseSize('page-size', bad))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.name).toBe('UsageError')
      expect(err.message).toBe(`--page-size must be a positive size in bytes (e.g. 16384 or 16k), not '${bad}'`)
    }
  })
})

describe('parseInteger', () => {
  it('takes integers within the range', () => {
    expect(parseInteger('batch', '64')).toBe(64)
    expect(parseInteger('batch', '1')).toBe(1)
    expect(parseInteger('batch', ' 7 ')).toBe(7)
    expect(parseInteger('batch', '007')).toBe(7)
    expect(parseInteger('batch', '4096', 1, 4096)).toBe(4096)
    expect(parseInteger('depth', '0', 0, 10)).toBe(0)
  })

  it('refuses what is not an integer in the range', () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '', '1e3', '0x10', '9007199254740993']) {
      const err = thrown(() => parseInteger('batch', bad))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.message).toBe(`--batch must be an integer at least 1, not '${bad}'`)
    }
    expect(thrown(() => parseInteger('batch', '4097', 1, 4096)).message)
      .toBe("--batch must be an integer between 1 and 4096, not '4097'")
    expect(thrown(() => parseInteger('rounds', '2', 3, 100)).message)
      .toBe("--rounds must be an integer between 3 and 100, not '2'")
  })
})

describe('parseSeconds', () => {
  it('takes positive seconds, with fractions and an optional s', () => {
    expect(parseSeconds('duration', '3')).toBe(3)
    expect(parseSeconds('duration', '0.5')).toBe(0.5)
    expect(parseSeconds('duration', '2s')).toBe(2)
    expect(parseSeconds('duration', '1.25s')).toBe(1.25)
    expect(parseSeconds('duration', ' 10 ')).toBe(10)
  })

  it('refuses zero, negatives and words', () => {
    for (const bad of ['0', '0.0', '0s', '-1', 'abc', '', '.5', '1e3', '3m', 's', '1.']) {
      const err = thrown(() => parseSeconds('duration', bad))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.message).toBe(`--duration must be a positive number of seconds, not '${bad}'`)
    }
  })
})

describe('parseChoice / parseList', () => {
  const strategies = ['atomic', 'doublewrite', 'unprotected'] as const

  it('takes one word of the set', () => {
    expect(parseChoice('sync', 'page', ['batch', 'page'])).toBe('page')
    const err = thrown(() => parseChoice('sync', 'Page', ['batch', 'page']))
    expect(err).toBeInstanceOf(UsageError)
    expect(err.message).toBe("--sync must be one of batch, page, not 'Page'")
  })

  it('takes a comma-separated list in the order given', () => {
    expect(parseList('strategies', 'atomic', strategies)).toEqual(['atomic'])
    expect(parseList('strategies', 'unprotected,atomic', strategies)).toEqual(['unprotected', 'atomic'])
    expect(parseList('strategies', ' atomic , doublewrite ,', strategies)).toEqual(['atomic', 'doublewrite'])
  })

  it('refuses an empty list, an unknown word and a repeated one', () => {
    for (const bad of ['', ',', ' , ']) {
      const err = thrown(() => parseList('strategies', bad, strategies))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.message).toBe('--strategies needs at least one of atomic, doublewrite, unprotected')
    }
    const unknown = thrown(() => parseList('strategies', 'atomic,fast', strategies))
    expect(unknown).toBeInstanceOf(UsageError)
    expect(unknown.message).toBe("--strategies must be one of atomic, doublewrite, unprotected, not 'fast'")
    const twice = thrown(() => parseList('strategies', 'atomic,doublewrite,atomic', strategies))
    expect(twice).toBeInstanceOf(UsageError)
    expect(twice.message).toContain('twice')
  })
})

describe('parseCommandLine', () => {
  const options = {
    'page-size': { type: 'string' as const },
    json: { type: 'boolean' as const },
    help: { type: 'boolean' as const, short: 'h' },
  }

  it('reads options and positionals', () => {
    const { values, positionals } = parseCommandLine(['--page-size', '16k', '--json', '/mnt/x'], options)
    expect(values).toEqual({ 'page-size': '16k', json: true })
    expect(positionals).toEqual(['/mnt/x'])
    expect(parseCommandLine(['--page-size=4k', '-h'], options).values).toEqual({ 'page-size': '4k', help: true })
    expect(parseCommandLine([], options)).toEqual({ values: {}, positionals: [] })
  })

  it('makes an unknown option a UsageError in one line', () => {
    for (const args of [['--bogus'], ['/mnt/x', '--bogus'], ['-z']]) {
      const err = thrown(() => parseCommandLine(args, options))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.name).toBe('UsageError')
      expect(err.message).not.toContain('\n')
      expect(err.message).not.toContain('To specify a positional argument')
      expect(err.message).toMatch(/^Unknown option '(--bogus|-z)'$/)
    }
  })

  it('makes a missing or misplaced value a UsageError in one line', () => {
    for (const args of [['--page-size'], ['--json=yes']]) {
      const err = thrown(() => parseCommandLine(args, options))
      expect(err).toBeInstanceOf(UsageError)
      expect(err.message).not.toContain('\n')
      expect(err.message.length).toBeGreaterThan(0)
    }
  })
})
