package workflow_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// BenchmarkCreateRequest measures requests created per second on SQLite,
// including the PostHog lookups against the fake server over loopback HTTP.
func BenchmarkCreateRequest(b *testing.B) {
	db := storetest.Open(b)
	h := newHarness(b, db)
	u := h.cfg.Users.(users)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("UBENCH%06d", i)
		email := fmt.Sprintf("bench%d@example.com", i)
		h.ph.AddUser(email, "Bench", "User")
		u[ids[i]] = email
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.create(workflow.KindAdd, ids[i], "", "Engineering", "benchmark", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkAuditExport streams a 200,000-entry audit log as CSV and as JSON
// Lines and reports rows per second and the peak live heap during the
// export, which stays flat however large the log is.
func BenchmarkAuditExport(b *testing.B) {
	const entries = 200_000
	db := storetest.Open(b)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for batch := 0; batch < entries/10_000; batch++ {
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			for i := 0; i < 10_000; i++ {
				at = at.Add(time.Second)
				e := &workflow.AuditEntry{Time: at, ActorID: "U0LEAD01", ActorEmail: "lead@example.com",
					Action: workflow.ActionRequestApproved, RequestID: int64(batch*10_000 + i), RoleID: "0190b3e1-8b8a-7000-8000-000000000001",
					RoleName: "Engineering", SubjectID: "U0ALICE1", SubjectEmail: "alice@example.com",
					Details: workflow.CanonicalDetails(map[string]any{"approvals": 1, "approvals_required": 1})}
				if err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, format := range []string{"csv", "jsonl"} {
		b.Run(format, func(b *testing.B) {
			var rows int64
			var peak atomic.Uint64
			runtime.GC()
			stop := samplePeakHeap(&peak)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, err := workflow.WriteAudit(ctx, db, workflow.AuditFilter{}, format, io.Discard)
				if err != nil || n != entries {
					b.Fatalf("exported %d: %v", n, err)
				}
				rows += n
			}
			b.StopTimer()
			stop()
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}

// samplePeakHeap records the largest live heap seen until stop is called.
func samplePeakHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
