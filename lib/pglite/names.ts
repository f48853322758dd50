// Which files of a PGlite data directory are what. PostgreSQL's relation files
// go through the journal; untorn's own files sit beside PostgreSQL's, hidden
// from it (lib/pglite/routing.ts).

/** PostgreSQL's block size (BLCKSZ), the journal's page size. */
export const RELATION_PAGE_SIZE = 8192;

/** The OFD lock that keeps a data directory to one opener. */
export const LOCK_FILE = 'untorn.lock';
/** The journal of the relation files. */
export const JOURNAL_FILE = 'untorn.journal';
/** Present while the first open copies the fresh cluster in: a directory holding it is redone. */
export const INIT_FILE = 'untorn.init';

export const UNTORN_FILES: ReadonlySet<string> = new Set([LOCK_FILE, JOURNAL_FILE, INIT_FILE]);

// base/<db>/<relfilenode>[_fsm|_vm|_init][.<segment>] and global/<relfilenode>:
// every fork, every segment. Not pgsql_tmp, pg_internal.init, pg_filenode.map,
// PG_VERSION (not relation pages, not written in whole pages).
const RELATION = /^(?:base\/\d+|global)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

/** Whether `relative` (a path inside the data directory, '/'-separated) is a relation file. */
export function isRelationFile(relative: string): boolean {
  return RELATION.test(relative);
}
