// PostgreSQL's start parameters under untorn: fsync on (PGlite's default list
// carries -F), full_page_writes as the untorn option says. A parameter that
// would break the promise is refused, not overridden.
import { invalidArgValue } from '../errors';

/** GUCs only untorn sets: fsync must stay on, full_page_writes follows untorn.fullPageWrites. */
const GUARDED = new Set(['fsync', 'full_page_writes']);

/** The GUC names a start parameter list sets (-c name=value, -cname=value, --name=value). */
function settings(params: readonly string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    let assignment: string | undefined;
    if (p === '-c') assignment = params[++i];
    else if (p.startsWith('-c')) assignment = p.slice(2);
    else if (p.startsWith('--') && p.includes('=')) assignment = p.slice(2);
    if (assignment !== undefined) names.push(assignment.split('=')[0].trim().toLowerCase().replace(/-/g, '_'));
  }
  return names;
}

/** Refuses -F, fsync and full_page_writes in a caller's start parameters. */
export function checkStartParams(
  params: unknown,
  name = 'options.startParams',
): asserts params is string[] | undefined {
  if (params === undefined) return;
  if (!Array.isArray(params) || params.some((p) => typeof p !== 'string'))
    throw invalidArgValue(name, params, 'must be an array of strings');
  if (params.includes('-F'))
    throw invalidArgValue(name, params, 'must not hold -F (fsync off): untorn/pglite runs PostgreSQL with fsync on');
  const guarded = settings(params).find((s) => GUARDED.has(s));
  if (guarded !== undefined)
    throw invalidArgValue(
      name,
      params,
      `must not set ${guarded}: untorn/pglite keeps fsync on and sets full_page_writes from untorn.fullPageWrites`,
    );
}

/** Refuses fsync and full_page_writes in the postgresql.conf text PGlite writes from options.postgresqlconf. */
export function checkPostgresqlConf(conf: unknown): void {
  if (conf === undefined) return;
  const lines = typeof conf === 'string' ? conf.split('\n') : Array.isArray(conf) ? conf : null;
  if (lines === null || lines.some((l) => typeof l !== 'string'))
    throw invalidArgValue('options.postgresqlconf', conf, 'must be a string or an array of strings');
  for (const line of lines as string[]) {
    const m = /^\s*([A-Za-z_.]+)\s*=?/.exec(line.replace(/#.*/, ''));
    if (m && GUARDED.has(m[1].toLowerCase()))
      throw invalidArgValue(
        'options.postgresqlconf',
        conf,
        `must not set ${m[1]}: untorn/pglite keeps fsync on and sets full_page_writes from untorn.fullPageWrites`,
      );
  }
}

/**
 * The start parameters PostgreSQL gets: the caller's (checked), or PGlite's
 * defaults without their -F; then full_page_writes.
 */
export function startParams(
  given: string[] | undefined,
  defaults: readonly string[],
  fullPageWrites: boolean,
): string[] {
  const base = given ?? defaults.filter((p) => p !== '-F');
  return [...base, '-c', `full_page_writes=${fullPageWrites ? 'on' : 'off'}`];
}
