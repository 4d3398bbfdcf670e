// Package storetest gives tests a real, migrated database: SQLite always,
// and PostgreSQL too when TEST_DATABASE_URL is set.
//
//	func TestX(t *testing.T) {
//		storetest.Each(t, func(t *testing.T, db *store.DB) { … })
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/accessbot/accessbot/store"
)

// EnvPostgresURL names the environment variable that enables the PostgreSQL
// subtests, for example
// postgres://postgres@127.0.0.1:5432/accessbot_test?sslmode=disable.
const EnvPostgresURL = "TEST_DATABASE_URL"

// pgMaxConns keeps each test database's pool small, so many parallel tests
// fit in the server's max_connections.
const pgMaxConns = 4

// Open returns a migrated SQLite database in a file under t.TempDir(),
// closed when the test ends. A file, not :memory:, because each pooled
// connection to :memory: would see its own empty database.
func Open(t testing.TB, opts ...store.Option) *store.DB {
	t.Helper()
	return open(t, sqliteURL(t), opts)
}

// OpenPostgres returns a migrated database in a fresh PostgreSQL schema of
// the server at baseURL, dropped when the test ends.
func OpenPostgres(t testing.TB, baseURL string, opts ...store.Option) *store.DB {
	t.Helper()
	return open(t, postgresURL(t, baseURL), append([]store.Option{store.WithMaxOpenConns(pgMaxConns)}, opts...))
}

// Each runs fn as subtest "sqlite" on a database from Open and, when
// TEST_DATABASE_URL is set, as subtest "postgres" on one from OpenPostgres.
// Every call gets fresh databases, so fn may call t.Parallel.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB), opts ...store.Option) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, Open(t, opts...))
	})
	if base := os.Getenv(EnvPostgresURL); base != "" {
		t.Run("postgres", func(t *testing.T) {
			fn(t, OpenPostgres(t, base, opts...))
		})
	}
}

// EachURL is Each for tests that open the database themselves (migrations,
// start-up): fn gets the DATABASE_URL of an empty, unmigrated database.
func EachURL(t *testing.T, fn func(t *testing.T, databaseURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, sqliteURL(t))
	})
	if base := os.Getenv(EnvPostgresURL); base != "" {
		t.Run("postgres", func(t *testing.T) {
			fn(t, postgresURL(t, base))
		})
	}
}

// sqliteURL returns the URL of a new SQLite file under t.TempDir().
func sqliteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "accessbot.db")
}

// postgresURL creates a uniquely named schema on the server at baseURL and
// returns baseURL with search_path set to it, so everything a test creates
// lands there. The schema is dropped when the test ends.
func postgresURL(t testing.TB, baseURL string) string {
	t.Helper()
	schema := "test_" + randomHex(t, 8)
	admin, err := sql.Open("pgx", baseURL)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", EnvPostgresURL, err)
	}
	defer func() { _ = admin.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		// Registered before the store's Close, so it runs after it.
		admin, err := sql.Open("pgx", baseURL)
		if err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = admin.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("storetest: %s is not a URL", EnvPostgresURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, databaseURL string, opts []store.Option) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, databaseURL, opts...)
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: close: %v", err)
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return db
}

// DropAuditGuards drops the triggers that keep audit_log append-only and
// audit_head moving forward, as an attacker with database access could, so
// tamper tests can edit the log and check that verification notices.
func DropAuditGuards(t testing.TB, db *store.DB) {
	t.Helper()
	stmts := []string{
		"DROP TRIGGER audit_log_no_update",
		"DROP TRIGGER audit_log_no_delete",
		"DROP TRIGGER audit_head_forward_only",
		"DROP TRIGGER audit_head_no_delete",
	}
	if db.Dialect() == store.DialectPostgres {
		stmts = []string{
			"DROP TRIGGER audit_log_no_update ON audit_log",
			"DROP TRIGGER audit_log_no_delete ON audit_log",
			"DROP TRIGGER audit_log_no_truncate ON audit_log",
			"DROP TRIGGER audit_head_forward_only ON audit_head",
			"DROP TRIGGER audit_head_no_delete ON audit_head",
			"DROP TRIGGER audit_head_no_truncate ON audit_head",
		}
	}
	for _, s := range stmts {
		if _, err := db.Bun().ExecContext(context.Background(), s); err != nil {
			t.Fatalf("storetest: %s: %v", s, err)
		}
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storetest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
