package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// openHandles opens n *DB on one database. Each has its own pool (and, on
// SQLite, its own write connection), so together they behave like n
// processes sharing the database.
func openHandles(t *testing.T, url string, n int) []*store.DB {
	t.Helper()
	ctx := context.Background()
	var dbs []*store.DB
	for range n {
		db, err := store.Open(ctx, url, store.WithMaxOpenConns(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		dbs = append(dbs, db)
	}
	if err := dbs[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return dbs
}

func TestAuditOneChainAcrossProcesses(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		dbs := openHandles(t, url, 3)
		const n = 150
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := &workflow.AuditEntry{Time: t0, ActorID: fmt.Sprint(i), Action: workflow.ActionApprovalRecorded}
				if err := dbs[i%len(dbs)].Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.AppendAudit(ctx, e)
				}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			}()
		}
		wg.Wait()
		got := entries(t, dbs[1], workflow.AuditFilter{})
		if len(got) != n {
			t.Fatalf("%d entries, want %d", len(got), n)
		}
		checkChain(t, got)
	})
}

func TestJobClaimAcrossProcesses(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		dbs := openHandles(t, url, 3)
		const jobs = 60
		enqueue(t, dbs[0], dueJobs(jobs)...)
		claimEachOnce(t, dbs, 9, jobs, false)
	})
}
