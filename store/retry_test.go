package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// TestUpdateRetriesDeadlock makes two transactions lock two rows in opposite
// order. PostgreSQL aborts one with a deadlock (40P01); Update runs its fn
// again and both succeed. SQLite cannot deadlock: its transactions take the
// write lock at BEGIN, so the second simply waits.
func TestUpdateRetriesDeadlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.PutSetting(ctx, "a", "0"); err != nil {
				return err
			}
			return tx.PutSetting(ctx, "b", "0")
		})
		// The request is loaded outside fn, as a caller holding it from an
		// earlier transaction would: a retried attempt must not see the
		// Version the rolled-back attempt set.
		r := insert(t, db, newRequest("U1", "R1"))
		var calls atomic.Int32
		var firstHalf sync.WaitGroup
		firstHalf.Add(2)
		var once [2]sync.Once
		run := func(i int, first, second string) error {
			return db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
				calls.Add(1)
				if err := tx.PutSetting(ctx, first, "x"); err != nil {
					return err
				}
				// On the first attempt, wait (briefly: on SQLite the other
				// is blocked at BEGIN) until both hold their first row.
				once[i].Do(func() {
					firstHalf.Done()
					done := make(chan struct{})
					go func() { firstHalf.Wait(); close(done) }()
					select {
					case <-done:
					case <-time.After(200 * time.Millisecond):
					}
				})
				if err := tx.PutSetting(ctx, second, "x"); err != nil {
					return err
				}
				if i == 0 {
					r.Reason = "updated after a deadlock"
					return tx.UpdateRequest(ctx, r)
				}
				return nil
			})
		}
		errs := make(chan error, 2)
		go func() { errs <- run(0, "a", "b") }()
		go func() { errs <- run(1, "b", "a") }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Update: %v", err)
			}
		}
		if r.Version != 2 {
			t.Errorf("request Version = %d, want 2", r.Version)
		}
		if db.Dialect() == store.DialectPostgres && calls.Load() < 3 {
			t.Errorf("fn ran %d times, want a retry after the deadlock", calls.Load())
		}
	})
}

// TestUpdateRetriesSerializationFailure fails the first attempt with a
// serialization failure after fn has updated a request it holds from
// outside: the retry must start from the stored Version, and Update gives
// up after a few attempts.
func TestUpdateRetriesSerializationFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U1", "R1"))
		calls := 0
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			calls++
			r.Reason = fmt.Sprintf("attempt %d", calls)
			if err := tx.UpdateRequest(ctx, r); err != nil {
				return err
			}
			if calls == 1 {
				return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001"})
			}
			return nil
		})
		if err != nil || calls != 2 || r.Version != 2 {
			t.Fatalf("Update = %v after %d calls, Version %d; want success on the 2nd call and Version 2", err, calls, r.Version)
		}

		calls = 0
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			calls++
			return &pgconn.PgError{Code: "40P01"}
		})
		if err == nil || calls < 2 || calls > 10 {
			t.Errorf("always-failing Update = %v after %d calls", err, calls)
		}
		// Other errors are not retried.
		calls = 0
		_ = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			calls++
			return &pgconn.PgError{Code: "23505"}
		})
		if calls != 1 {
			t.Errorf("unique violation retried: %d calls", calls)
		}
	})
}
