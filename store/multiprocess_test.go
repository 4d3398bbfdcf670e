package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
		for i := range jobs {
			enqueue(t, dbs[0], &workflow.Job{Kind: workflow.JobExecute, RunAt: t0, Payload: fmt.Sprint(i)})
		}
		var mu sync.Mutex
		claimed := map[int64]int{}
		var wg sync.WaitGroup
		for w := range 9 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := dbs[w%len(dbs)]
				for {
					j, err := db.ClaimJob(context.Background(), nil, t0, time.Hour)
					if err != nil {
						t.Errorf("ClaimJob: %v", err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					claimed[j.ID]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != jobs {
			t.Errorf("%d distinct jobs claimed, want %d", len(claimed), jobs)
		}
		for id, n := range claimed {
			if n != 1 {
				t.Errorf("job %d claimed %d times", id, n)
			}
		}
	})
}
