package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/accessbot/accessbot/workflow"
)

// PostgreSQL SQLSTATE codes the store reacts to.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// sqliteCode returns the extended SQLite result code in err's chain, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// pgCode returns the SQLSTATE in err's chain, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique reports a unique or primary-key violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return pgCode(err) == pgUniqueViolation ||
		c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports a reference to a row that does not exist.
func isForeignKey(err error) bool {
	return pgCode(err) == pgForeignKeyViolation || sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// retryable reports errors after which running the whole transaction again
// may succeed.
func retryable(err error) bool {
	switch pgCode(err) {
	case pgSerializationFailure, pgDeadlockDetected:
		return true
	}
	switch sqliteCode(err) & 0xff { // primary code of an extended code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// conflictf returns an ECONFLICT error; the message is for people.
func conflictf(err error, format string, args ...any) error {
	return &workflow.Error{Code: workflow.ECONFLICT, Message: fmt.Sprintf(format, args...), Err: err}
}

// notFoundf returns an ENOTFOUND error; the message is for people.
func notFoundf(err error, format string, args ...any) error {
	return &workflow.Error{Code: workflow.ENOTFOUND, Message: fmt.Sprintf(format, args...), Err: err}
}

// wrap gives an unexpected database error its context: "store: op: err".
// sql.ErrNoRows is never passed here; callers turn it into ENOTFOUND.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// noRows reports sql.ErrNoRows.
func noRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
