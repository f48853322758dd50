// The hardware lab's speed run, inside the guest on XFS over an NVMe
// namespace with 16 KiB atomic writes: 16 KiB pages, interleaved rounds. Each
// round runs `untorn bench` (atomic, doublewrite, unprotected; one round of
// its own, so the three are interleaved) and then the same page writes through
// two page files, one opened with 'auto' (atomic here) and one forced to
// 'doublewrite', in alternating order. Device bytes come from the guest's
// /sys/block/DEVICE/stat (sectors written). Prints one JSON document.
//
// usage (in the guest): node bench-guest.mjs REPO DIR DEVICE ROUNDS
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [repo, dir, device, roundsArg] = process.argv.slice(2);
const untorn = await import(path.join(repo, 'dist/index.js'));
const ROUNDS = Number(roundsArg);
const PAGE = 16 * 1024;
const PAGES = 1024; // working set: 16 MiB per file
const WRITES = 512; // page writes per strategy per round
const BATCH = 64; // pages per durability point (the bench's default)

const sectorsWritten = () => Number(fs.readFileSync(`/sys/block/${device}/stat`, 'utf8').trim().split(/\s+/)[6]);

const files = {
  auto: await untorn.openPageFile(path.join(dir, 'auto.pages'), { pageSize: PAGE }),
  doublewrite: await untorn.openPageFile(path.join(dir, 'dw.pages'), { pageSize: PAGE, strategy: 'doublewrite' }),
};
const payload = crypto.randomBytes(files.auto.payloadSize);
// Every page written once first: the rounds overwrite, as a database does.
for (const pf of Object.values(files))
  for (let p = 0; p < PAGES; p += BATCH)
    await pf.writePages(Array.from({ length: BATCH }, (_, i) => ({ page: p + i, data: payload })));

async function pageFileRound(pf) {
  const before = sectorsWritten();
  const start = process.hrtime.bigint();
  for (let n = 0; n < WRITES; n += BATCH) {
    const pages = new Set();
    while (pages.size < BATCH) pages.add(crypto.randomInt(PAGES));
    await pf.writePages([...pages].map((page) => ({ page, data: payload })));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { pagesPerSec: WRITES / seconds, deviceBytesPerPage: ((sectorsWritten() - before) * 512) / WRITES };
}

const rounds = [];
for (let r = 0; r < ROUNDS; r++) {
  const report = await untorn.bench({
    dir,
    strategies: ['atomic', 'doublewrite', 'unprotected'],
    rounds: 1,
    writes: WRITES,
    pages: PAGES,
  });
  const round = { bench: {}, pagefile: {} };
  for (const s of report.results)
    round.bench[s.strategy] = { pagesPerSec: s.pagesPerSec, deviceBytesPerPage: s.deviceBytesPerPage };
  const order = r % 2 === 0 ? ['auto', 'doublewrite'] : ['doublewrite', 'auto'];
  for (const name of order) round.pagefile[name] = await pageFileRound(files[name]);
  rounds.push(round);
  process.stderr.write(`hwlab bench: round ${r + 1} of ${ROUNDS}\n`);
}
const out = {
  pageFileStrategies: { auto: files.auto.strategy, doublewrite: files.doublewrite.strategy },
  autoReason: files.auto.strategyReason,
  rounds,
};
for (const pf of Object.values(files)) await pf.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
