// untorn/pglite: a durable PostgreSQL (PGlite) whose relation pages are
// untorn. See docs/pglite.md. The package check comes first, on purpose.
import './require-pglite';

export { openPGlite, type OpenPGliteOptions, type UntornPGlite } from './open';
export { UntornFS, type UntornFSOptions, type UntornInfo } from './untorn-fs';
export { PGliteError, type PGliteErrorCode } from '../errors';
