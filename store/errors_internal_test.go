package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetryable(t *testing.T) {
	busy := sqliteBusyError(t)
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"pg serialization", &pgconn.PgError{Code: "40001"}, true},
		{"pg deadlock wrapped", fmt.Errorf("store: x: %w", &pgconn.PgError{Code: "40P01"}), true},
		{"pg unique", &pgconn.PgError{Code: "23505"}, false},
		{"sqlite busy", busy, true},
		{"sqlite busy wrapped", fmt.Errorf("store: begin: %w", busy), true},
		{"other", fmt.Errorf("boom"), false},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// sqliteBusyError returns a real SQLITE_BUSY: a second connection with no
// busy timeout tries to write while the first holds the write lock.
func sqliteBusyError(t *testing.T) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busy.db")
	ctx := context.Background()
	a, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	txA, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = txA.Rollback() }()
	txB, err := b.BeginTx(ctx, nil)
	if err == nil {
		_ = txB.Rollback()
		t.Fatal("second BEGIN IMMEDIATE succeeded while the first held the lock")
	}
	return err
}

func TestSQLiteDSN(t *testing.T) {
	// The write pool must begin IMMEDIATE; the read pool must not write.
	if w := sqliteDSN("/x/a.db", true); !strings.Contains(w, "_txlock=immediate") || !strings.Contains(w, "journal_mode%28WAL%29") || !strings.Contains(w, "foreign_keys%281%29") || !strings.Contains(w, "busy_timeout%2810000%29") {
		t.Errorf("write DSN %s", w)
	}
	if r := sqliteDSN("/x/a.db", false); !strings.Contains(r, "query_only%281%29") || strings.Contains(r, "_txlock") {
		t.Errorf("read DSN %s", r)
	}
}
