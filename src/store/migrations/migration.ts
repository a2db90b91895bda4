/**
 * A versioned schema migration. Migrations are TypeScript modules (not .sql files)
 * because tsc copies only .ts output into dist/. Each backend keeps its own ordered
 * list (`sqlite.ts`, `postgres.ts`); to change the schema, append an entry with the
 * next version to BOTH lists. Never edit or renumber an entry that has shipped.
 */
export interface Migration {
  /** Strictly increasing, starting at 1; recorded in `schema_migrations.version`. */
  version: number;
  /** Short snake_case label, recorded in `schema_migrations.name`. */
  name: string;
  /** The SQL to apply; may hold several statements. Runs inside the migration transaction. */
  up: string;
}

/**
 * Throws (a programmer fault) unless the versions are integers, start at 1 and
 * increase by one, so a mis-numbered append fails the first test run.
 */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration "${m.name}" has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/** The migrations in `list` whose version is not in `applied`, in order. */
export function pendingMigrations(list: readonly Migration[], applied: ReadonlySet<number>): Migration[] {
  checkMigrations(list);
  return list.filter((m) => !applied.has(m.version));
}
