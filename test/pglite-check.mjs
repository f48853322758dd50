// amcheck over a whole PGlite database, for the crash tests
// (test/pglite-helpers.ts) and the hardware lab's smoke test
// (test/pglite-hwlab-smoke.mjs): verify_heapam on every table,
// bt_index_check(..., heapallindexed => true) on every valid B-tree index,
// catalogs included. The database must have been opened with the amcheck
// extension (@electric-sql/pglite/contrib/amcheck). Returns the findings, one
// line each (a checksum failure is an error of the check, and a finding).
export async function amcheckAll(db) {
  const damage = [];
  await db.exec('CREATE EXTENSION IF NOT EXISTS amcheck');
  const tables = await db.query(
    "SELECT oid, oid::regclass::text AS name FROM pg_class WHERE relkind IN ('r', 'm', 't') AND relpersistence = 'p'",
  );
  for (const t of tables.rows) {
    try {
      const r = await db.query('SELECT blkno, msg FROM verify_heapam($1)', [t.oid]);
      for (const row of r.rows) damage.push(`${t.name} block ${row.blkno}: ${row.msg}`);
    } catch (err) {
      damage.push(`${t.name}: ${err.message}`);
    }
  }
  const indexes = await db.query(
    `SELECT c.oid, c.oid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'btree' AND c.relpersistence = 'p' AND i.indisvalid`,
  );
  for (const i of indexes.rows) {
    try {
      await db.query('SELECT bt_index_check($1, true)', [i.oid]);
    } catch (err) {
      damage.push(`${i.name}: ${err.message}`);
    }
  }
  return { damage, tables: tables.rows.length, indexes: indexes.rows.length };
}
