// Package store keeps accessbot's requests, jobs, owner overrides and audit
// log in SQLite (the default, pure Go) or PostgreSQL (for several replicas),
// through bun. It implements workflow.Store.
//
// Update, View and ClaimJob open a transaction and call small private
// helpers that take a bun.IDB, so several steps share one transaction;
// one-statement reads (counts, the audit log) go straight to the read
// pool. Row structs stay in this package and convert to and from workflow
// types. Unique violations become workflow ECONFLICT errors and missing rows
// ENOTFOUND.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/accessbot/accessbot/workflow"
)

// Dialect names returned by (*DB).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

const (
	// sqliteBusyTimeout is how long a connection waits for another
	// process's write lock before failing with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	// defaultMaxOpenConns bounds each process's PostgreSQL pool, so many
	// goroutines queue in the pool instead of exhausting max_connections.
	defaultMaxOpenConns = 10
	// maxAttempts is how often Update and ClaimJob run their transaction
	// when the database reports a serialization failure, a deadlock or
	// SQLITE_BUSY.
	maxAttempts = 5
)

var _ workflow.Store = (*DB)(nil)

// DB is an open database. It is safe for concurrent use.
type DB struct {
	// db takes every read-write transaction. On SQLite its pool has one
	// connection: writers queue fairly in database/sql instead of polling
	// SQLite's lock, and every transaction begins IMMEDIATE, taking the
	// write lock at BEGIN so read-then-write transactions never fail
	// half-way with SQLITE_BUSY.
	db *bun.DB
	// read serves read-only work (audit streaming, counts, View). On SQLite
	// it is a second pool of query_only connections, which WAL lets read
	// while a writer writes; on PostgreSQL it is db.
	read *bun.DB

	dialect string
	clock   workflow.Clock
	log     zerolog.Logger
}

// Option configures Open.
type Option func(*options)

type options struct {
	log          zerolog.Logger
	clock        workflow.Clock
	maxOpenConns int
}

// WithLogger sets the logger for migrations and retried transactions. The
// default discards everything.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock that stamps CreatedAt, UpdatedAt and other times
// the caller leaves zero. The default is workflow.SystemClock.
func WithClock(c workflow.Clock) Option { return func(o *options) { o.clock = c } }

// WithMaxOpenConns bounds the connection pool (PostgreSQL: per process; the
// sum over replicas must stay under the server's max_connections; SQLite:
// the read pool, writes always use one connection). Default 10.
func WithMaxOpenConns(n int) Option { return func(o *options) { o.maxOpenConns = n } }

// Open connects to the database named by databaseURL: "sqlite:PATH" (also
// "sqlite://PATH" and "file:PATH"; PATH is used as written, relative to the
// working directory unless absolute), or a "postgres://" or
// "postgresql://" URL (any libpq/pgx parameter, such as sslmode or
// search_path, may be given). It does not migrate; call Migrate. Errors
// never contain the password of the URL.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*DB, error) {
	o := options{log: zerolog.Nop(), clock: workflow.SystemClock{}, maxOpenConns: defaultMaxOpenConns}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxOpenConns < 2 {
		o.maxOpenConns = 2
	}
	t, err := parseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	db := &DB{dialect: t.dialect, clock: o.clock, log: o.log}
	switch t.dialect {
	case DialectSQLite:
		err = db.openSQLite(ctx, t.path, o)
	default:
		err = db.openPostgres(ctx, t, o)
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

// sqliteDSN is the modernc.org/sqlite DSN for path. Pragmas go in _pragma
// parameters so that every connection the pool opens gets them, not just
// the first.
func sqliteDSN(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL (SQLite's default, stated so nobody "optimizes" it): with
		// NORMAL a power loss may drop the last committed transactions, and
		// a committed decision may already have changed PostHog.
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	// A plain path, not a file: URI, so SQLite does not decode %XX in it;
	// the driver takes its parameters off before opening the file.
	return path + "?" + q.Encode()
}

func (db *DB) openSQLite(ctx context.Context, path string, o options) error {
	w, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Connect the writer first: it switches the file to WAL, which the
	// query_only readers could not do.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(o.maxOpenConns)
	r.SetMaxIdleConns(o.maxOpenConns)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	db.db = bun.NewDB(w, sqlitedialect.New())
	db.read = bun.NewDB(r, sqlitedialect.New())
	return nil
}

func (db *DB) openPostgres(ctx context.Context, t target, o options) error {
	cfg, err := pgx.ParseConfig(t.url)
	if err != nil {
		return scrub(fmt.Errorf("store: invalid postgres URL: %w", err))
	}
	// bun renders arguments into the SQL text itself, so there is nothing
	// to prepare: the simple protocol saves a round trip per query, keeps
	// pgx's statement cache from filling with one-off statements, and lets
	// a migration file hold several statements.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(o.maxOpenConns)
	sqldb.SetMaxIdleConns(o.maxOpenConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return scrub(fmt.Errorf("store: connect to postgres: %w", err))
	}
	db.db = bun.NewDB(sqldb, pgdialect.New())
	db.read = db.db
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	err := db.db.Close()
	if db.read != db.db {
		err = errors.Join(err, db.read.Close())
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// Bun returns the read-write bun handle, for tests and tools that need raw
// SQL. On SQLite it has a single connection: do not hold it while calling
// other methods of db.
func (db *DB) Bun() *bun.DB { return db.db }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Update runs fn in one read-write transaction (READ COMMITTED on
// PostgreSQL; BEGIN IMMEDIATE on SQLite), committed when fn returns nil and
// rolled back otherwise. fn runs again, up to a few times, when the
// database reports a serialization failure or deadlock (PostgreSQL 40001,
// 40P01) or SQLITE_BUSY; it must have no side effects outside tx. When an
// attempt is rolled back, the fields tx methods set on the caller's values
// (IDs, Version, UpdatedAt, audit Seq and hashes) are restored, so a retry
// or a later Update starts from what is actually stored. fn must not call
// db.Update, ClaimJob or Migrate: on SQLite the one write connection is
// busy with fn's transaction.
func (db *DB) Update(ctx context.Context, fn func(ctx context.Context, tx workflow.Tx) error) error {
	return db.inTx(ctx, false, func(ctx context.Context, t *tx) error { return fn(ctx, t) })
}

// View runs fn in a read-only transaction, which on SQLite neither waits
// for nor blocks writers. The write methods of tx fail with EINTERNAL.
func (db *DB) View(ctx context.Context, fn func(ctx context.Context, tx workflow.Tx) error) error {
	return db.inTx(ctx, true, func(ctx context.Context, t *tx) error { return fn(ctx, t) })
}

// inTx runs fn in a transaction, retrying when the database asks for it.
func (db *DB) inTx(ctx context.Context, readOnly bool, fn func(ctx context.Context, t *tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.txOnce(ctx, readOnly, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		wait := time.Duration(attempt) * (5*time.Millisecond + rand.N(10*time.Millisecond))
		db.log.Debug().Err(err).Int("attempt", attempt).Dur("wait", wait).Msg("store: retrying transaction")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (db *DB) txOnce(ctx context.Context, readOnly bool, fn func(ctx context.Context, t *tx) error) (err error) {
	pool := db.db
	opts := &sql.TxOptions{ReadOnly: readOnly}
	if readOnly {
		pool = db.read
	}
	if db.dialect == DialectPostgres {
		opts.Isolation = sql.LevelReadCommitted
	}
	btx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	t := &tx{db: db, btx: btx, readOnly: readOnly}
	committed := false
	defer func() {
		if !committed {
			_ = btx.Rollback()
			t.restore()
		}
	}()
	if err := fn(ctx, t); err != nil {
		return err
	}
	if err := btx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	committed = true
	return nil
}

// now is the injected clock's time as stored.
func (db *DB) now() time.Time { return normTime(db.clock.Now()) }

// tx is one transaction. It implements workflow.Tx.
type tx struct {
	db       *DB
	btx      bun.Tx // helpers take it as a bun.IDB
	readOnly bool
	// undo restores the caller's values that methods changed, run in
	// reverse when the transaction does not commit.
	undo []func()
}

// onRollback registers f to run if the transaction does not commit.
func (t *tx) onRollback(f func()) { t.undo = append(t.undo, f) }

func (t *tx) restore() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
}

var _ workflow.Tx = (*tx)(nil)

// writable fails the write methods of a View transaction.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return &workflow.Error{Code: workflow.EINTERNAL, Message: "store: " + op + " in a read-only transaction"}
	}
	return nil
}
