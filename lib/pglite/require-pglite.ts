// untorn/pglite stands on @electric-sql/pglite, an optional peer dependency.
// Checked first (lib/pglite/index.ts imports this module before any other),
// so that a missing package is one error naming it, not a failed require
// somewhere down the chain.
try {
  require.resolve('@electric-sql/pglite');
} catch (cause) {
  throw Object.assign(
    new Error(
      'untorn/pglite needs the package @electric-sql/pglite (0.6.x or 0.5.x), which is not installed: npm install @electric-sql/pglite',
      { cause },
    ),
    { code: 'MODULE_NOT_FOUND' },
  );
}
