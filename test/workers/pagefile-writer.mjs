// A page file writer for test/page-file.test.ts, run in a child process:
//
//   node pagefile-writer.mjs '{"path": "/mnt/f", "mode": "write", "pages": 256, "perCall": 24}'
//
// mode 'write': opens the page file (strategy auto) and writes calls of
// `perCall` random pages, forever; after each call resolves it prints
// "ack <call>" on stdout, so the parent knows what was acknowledged when it
// kills this process. A page written by call c holds (page, c) in its first
// 8 bytes and the byte (page + c) & 0xff everywhere else.
// mode 'open': opens the page file for writing and prints "opened" or the
// error's code, then waits for stdin to close.
import { createRequire } from 'node:module';

const { openPageFile } = createRequire(import.meta.url)('../../dist/index.js');
const config = JSON.parse(process.argv[2]);

if (config.mode === 'open') {
  try {
    await openPageFile(config.path);
    process.stdout.write('opened\n');
  } catch (err) {
    process.stdout.write(`${err.code}\n`);
  }
  process.stdin.resume();
} else {
  const file = await openPageFile(config.path);
  process.stdout.write(`open ${file.strategy}\n`);
  for (let call = 1; ; call++) {
    const pages = new Set();
    while (pages.size < config.perCall) pages.add(Math.floor(Math.random() * config.pages));
    await file.writePages(
      [...pages].map((page) => {
        const data = Buffer.alloc(file.payloadSize, (page + call) & 0xff);
        data.writeUInt32LE(page, 0);
        data.writeUInt32LE(call, 4);
        return { page, data };
      }),
    );
    process.stdout.write(`ack ${call} ${[...pages].join(',')}\n`);
  }
}
