package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/migrations"
)

// schemaMigrations records each applied migration. The runner creates it,
// not a migration, because it must exist before the first one runs.
var createSchemaMigrations = map[string]string{
	DialectSQLite: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	checksum   TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`,
	DialectPostgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	checksum   TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL
)`,
}

// migrationRow is a row of schema_migrations.
type migrationRow struct {
	bun.BaseModel `bun:"table:schema_migrations,alias:sm"`

	Version   string `bun:"version,pk"`
	Checksum  string `bun:"checksum"`
	AppliedAt dbTime `bun:"applied_at"`
}

func checksum(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(sum[:])
}

// Migrate applies the embedded migrations (package migrations) that the
// database has not seen yet, in order, each recorded in schema_migrations in
// the transaction that applies it (PostgreSQL: one transaction per
// migration; SQLite: one for all pending ones). It is safe to call from
// several processes at once: the second waits for the first and then finds
// nothing left to do.
//
// On PostgreSQL a session-level pg_advisory_lock, keyed by the current
// schema and held on one dedicated connection, serializes migrators; on
// SQLite the migrating transaction holds the database's write lock from
// BEGIN IMMEDIATE, and a second process waits for it under busy_timeout.
// (bun's migrate package was not used: its lock is a row that makes a
// second process fail instead of wait, and stays behind after a crash.)
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations.List(db.dialect)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if db.dialect == DialectPostgres {
		return db.migratePostgres(ctx, ms)
	}
	return db.migrateSQLite(ctx, ms)
}

func (db *DB) migrateSQLite(ctx context.Context, ms []migrations.Migration) error {
	// All pending migrations run in one IMMEDIATE transaction: SQLite's DDL
	// is transactional, and holding the write lock from the first read of
	// schema_migrations to the commit is what makes a concurrent Migrate wait.
	return db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		if _, err := t.btx.Tx.ExecContext(ctx, createSchemaMigrations[DialectSQLite]); err != nil {
			return wrap("migrate: create schema_migrations", err)
		}
		return db.applyPending(ctx, t.btx, ms)
	})
}

func (db *DB) migratePostgres(ctx context.Context, ms []migrations.Migration) (err error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return wrap("migrate: connect", err)
	}
	const lockKey = "hashtextextended('accessbot.migrate:' || current_schema(), 0)"
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+lockKey+")"); err != nil {
		_ = conn.Close()
		return wrap("migrate: take advisory lock", err)
	}
	defer func() {
		// Unlock even when ctx has ended. If that fails, drop the
		// connection instead of returning it to the pool: ending the
		// session releases the lock.
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")"); uerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			db.log.Warn().Err(uerr).Msg("store: migrate: advisory unlock failed; connection dropped")
		}
		_ = conn.Close()
	}()
	if _, err := conn.Conn.ExecContext(ctx, createSchemaMigrations[DialectPostgres]); err != nil {
		return wrap("migrate: create schema_migrations", err)
	}
	// One transaction per migration: a failure leaves the earlier ones
	// applied and recorded, and the failing one not at all.
	for _, m := range ms {
		err := func() error {
			btx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
			if err != nil {
				return wrap("migrate: begin", err)
			}
			defer func() { _ = btx.Rollback() }()
			if err := db.applyPending(ctx, btx, []migrations.Migration{m}); err != nil {
				return err
			}
			return wrap("migrate: commit", btx.Commit())
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// applyPending runs each migration of ms not yet in schema_migrations and
// records it, in btx.
func (db *DB) applyPending(ctx context.Context, btx bun.Tx, ms []migrations.Migration) error {
	var rows []migrationRow
	if err := btx.NewSelect().Model(&rows).Scan(ctx); err != nil && !noRows(err) {
		return wrap("migrate: read schema_migrations", err)
	}
	applied := make(map[string]string, len(rows))
	for _, r := range rows {
		applied[r.Version] = r.Checksum
	}
	for _, m := range ms {
		sum := checksum(m.SQL)
		if old, ok := applied[m.Version]; ok {
			if old != sum {
				// Editing an applied migration changes nothing in the
				// database; say so instead of failing start-up.
				db.log.Warn().Str("version", m.Version).Msg("store: applied migration differs from the embedded file; it is not run again")
			}
			continue
		}
		// The raw *sql.Tx, not bun: the file is SQL as written, with
		// several statements and no bun placeholders.
		if _, err := btx.Tx.ExecContext(ctx, m.SQL); err != nil {
			return wrap("migrate: apply "+m.Version, err)
		}
		row := &migrationRow{Version: m.Version, Checksum: sum, AppliedAt: newTime(db.clock.Now())}
		if _, err := btx.NewInsert().Model(row).Exec(ctx); err != nil {
			return wrap("migrate: record "+m.Version, err)
		}
		db.log.Info().Str("version", m.Version).Str("dialect", db.dialect).Msg("store: applied migration")
	}
	return nil
}

// Ready reports whether the database answers and every embedded migration
// has been applied, for /readyz.
func (db *DB) Ready(ctx context.Context) error {
	ms, err := migrations.List(db.dialect)
	if err != nil {
		return fmt.Errorf("store: ready: %w", err)
	}
	var exists bool
	check := "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')"
	if db.dialect == DialectPostgres {
		check = "SELECT to_regclass('schema_migrations') IS NOT NULL"
	}
	if err := db.read.NewRaw(check).Scan(ctx, &exists); err != nil {
		return wrap("ready", err)
	}
	if !exists {
		return fmt.Errorf("store: ready: database is not migrated (%d migrations pending)", len(ms))
	}
	var versions []string
	if err := db.read.NewSelect().Model((*migrationRow)(nil)).Column("version").Scan(ctx, &versions); err != nil && !noRows(err) {
		return wrap("ready: read schema_migrations", err)
	}
	have := make(map[string]bool, len(versions))
	for _, v := range versions {
		have[v] = true
	}
	var missing []string
	for _, m := range ms {
		if !have[m.Version] {
			missing = append(missing, m.Version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("store: ready: migrations not applied: %s", strings.Join(missing, ", "))
	}
	return nil
}
