// openPGlite: PGlite.create on an UntornFS, with the options that would break
// its promise refused before anything is opened.
import { PGlite, type PGliteInterfaceExtensions, type PGliteOptions } from '@electric-sql/pglite';
import { invalidArgType, invalidArgValue } from '../errors';
import { validatePath } from '../validate';
import { checkPostgresqlConf, checkStartParams } from './params';
import { UntornFS, type UntornFSOptions, type UntornInfo } from './untorn-fs';

/** Any PGliteOptions but fs and dataDir, plus untorn's own. */
export type OpenPGliteOptions = Omit<PGliteOptions, 'fs' | 'dataDir'> & { untorn?: UntornFSOptions };

export type UntornPGlite<O extends OpenPGliteOptions = OpenPGliteOptions> = PGlite &
  PGliteInterfaceExtensions<O['extensions']> & { readonly untorn: UntornInfo };

/** A durable PGlite on `dataDir`: relation pages untorn, every fsync real (docs/pglite.md). */
export async function openPGlite<O extends OpenPGliteOptions>(dataDir: string, options?: O): Promise<UntornPGlite<O>> {
  validatePath(dataDir, 'dataDir');
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw invalidArgType('options', 'of type object', options);
  const { untorn, ...rest } = (options ?? {}) as OpenPGliteOptions & Record<string, unknown>;
  for (const name of ['fs', 'dataDir'])
    if (rest[name] !== undefined)
      throw invalidArgValue(`options.${name}`, rest[name], 'is not taken: openPGlite gives PGlite its own filesystem');
  checkStartParams(rest.startParams);
  checkPostgresqlConf(rest.postgresqlconf);
  const fs = new UntornFS(dataDir, untorn);
  let db: PGlite;
  try {
    db = await PGlite.create({ ...rest, fs } as PGliteOptions);
  } catch (err) {
    fs.release();
    throw err;
  }
  Object.defineProperty(db, 'untorn', { value: fs.untorn, enumerable: true });
  return db as UntornPGlite<O>;
}
