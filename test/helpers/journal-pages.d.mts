export function journalPage(size: number, file: number, index: number, version: number): Buffer;
export function isWholePage(b: Buffer): boolean;
