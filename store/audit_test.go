package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

func appendEntry(t testing.TB, db *store.DB, e *workflow.AuditEntry) {
	t.Helper()
	update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.AppendAudit(ctx, e) })
}

func entries(t testing.TB, db *store.DB, f workflow.AuditFilter) []*workflow.AuditEntry {
	t.Helper()
	var out []*workflow.AuditEntry
	if err := db.AuditEntries(context.Background(), f, func(e *workflow.AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("AuditEntries: %v", err)
	}
	return out
}

// checkChain verifies seq 1..n without gaps and the hash links.
func checkChain(t testing.TB, es []*workflow.AuditEntry) {
	t.Helper()
	prev := ""
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if e.PrevHash != prev {
			t.Fatalf("seq %d: PrevHash %q, want the previous Hash %q", e.Seq, e.PrevHash, prev)
		}
		if h := workflow.ComputeHash(e.PrevHash, e); h != e.Hash {
			t.Fatalf("seq %d: stored Hash %s, computed %s", e.Seq, e.Hash, h)
		}
		prev = e.Hash
	}
}

func TestAuditAppendRoundTrip(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		details := workflow.CanonicalDetails(map[string]any{"z": 1, "a": "x", "nested": map[string]any{"b": true, "a": nil}})
		e1 := &workflow.AuditEntry{
			Time: t0.Add(789 * time.Nanosecond).In(time.FixedZone("X", -5*3600)), ActorID: "U1", ActorEmail: "u1@example.com",
			Action: workflow.ActionRequestCreated, RequestID: 42, RoleID: "R1", RoleName: "Engineering",
			SubjectID: "U2", SubjectEmail: "u2@example.com", Details: details,
		}
		e2 := &workflow.AuditEntry{ActorID: workflow.SystemActor, Action: workflow.ActionRequestExpired} // Time from the clock, Details "{}"
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.AppendAudit(ctx, e1); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, e2)
		})
		if e1.Seq != 1 || e2.Seq != 2 || e1.PrevHash != "" || e2.PrevHash != e1.Hash || e2.Details != "{}" {
			t.Fatalf("sealed entries: %+v %+v", e1, e2)
		}
		if !e1.Time.Equal(t0) || e1.Time.Location() != time.UTC || !e2.Time.Equal(t0) {
			t.Errorf("times not normalized: %v %v", e1.Time, e2.Time)
		}
		got := entries(t, db, workflow.AuditFilter{})
		if len(got) != 2 || *got[0] != *e1 || *got[1] != *e2 {
			t.Fatalf("read back\n%+v\n%+v\nwant\n%+v\n%+v", got[0], got[1], e1, e2)
		}
		if got[0].Details != details {
			t.Errorf("details changed: %q -> %q", details, got[0].Details)
		}
		checkChain(t, got)
		seq, hash, err := db.AuditHead(ctx)
		if err != nil || seq != 2 || hash != e2.Hash {
			t.Errorf("AuditHead = %d, %s, %v", seq, hash, err)
		}
	}, store.WithClock(clock))
}

func TestAuditConcurrentAppends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 200
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				e := &workflow.AuditEntry{
					Time: t0.Add(time.Duration(i) * time.Microsecond), ActorID: fmt.Sprintf("U%d", i),
					Action: workflow.ActionApprovalRecorded, RequestID: int64(i),
					Details: workflow.CanonicalDetails(map[string]any{"i": i}),
				}
				if err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.AppendAudit(ctx, e)
				}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		got := entries(t, db, workflow.AuditFilter{})
		if len(got) != n {
			t.Fatalf("%d entries, want %d", len(got), n)
		}
		checkChain(t, got)
		seq, hash, err := db.AuditHead(context.Background())
		if err != nil || seq != n || hash != got[n-1].Hash {
			t.Errorf("AuditHead = %d, %s, %v", seq, hash, err)
		}
	})
}

func TestAuditEntriesFilter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Fractions of different lengths around whole seconds: exactly
		// what breaks text comparison when the format is not fixed-width.
		offsets := []time.Duration{
			0,
			500 * time.Millisecond,
			999999 * time.Microsecond,
			time.Second,
			time.Second + time.Microsecond,
			time.Second + 100*time.Millisecond,
			2 * time.Second,
			10 * time.Second,
		}
		for i, off := range offsets {
			appendEntry(t, db, &workflow.AuditEntry{Time: t0.Add(off), ActorID: "U", Action: workflow.ActionRequestCreated, RequestID: int64(i + 1)})
		}
		seqs := func(es []*workflow.AuditEntry) string {
			var s []string
			for _, e := range es {
				s = append(s, fmt.Sprint(e.Seq))
			}
			return strings.Join(s, ",")
		}
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		cases := []struct {
			name string
			f    workflow.AuditFilter
			want string
		}{
			{"all", workflow.AuditFilter{}, "1,2,3,4,5,6,7,8"},
			{"since inclusive", workflow.AuditFilter{Since: at(time.Second)}, "4,5,6,7,8"},
			{"since 1µs before", workflow.AuditFilter{Since: at(time.Second - time.Microsecond)}, "3,4,5,6,7,8"},
			{"until exclusive", workflow.AuditFilter{Until: at(time.Second)}, "1,2,3"},
			{"until 1µs after", workflow.AuditFilter{Until: at(time.Second + time.Microsecond)}, "1,2,3,4"},
			{"window", workflow.AuditFilter{Since: at(500 * time.Millisecond), Until: at(2 * time.Second)}, "2,3,4,5,6"},
			{"sub-millisecond window", workflow.AuditFilter{Since: at(time.Second), Until: at(time.Second + 2*time.Microsecond)}, "4,5"},
			{"empty window", workflow.AuditFilter{Since: at(3 * time.Second), Until: at(4 * time.Second)}, ""},
			{"since in another zone", workflow.AuditFilter{Since: at(2 * time.Second).In(time.FixedZone("Y", 3600))}, "7,8"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := seqs(entries(t, db, c.f)); got != c.want {
					t.Errorf("AuditEntries(%v..%v) = %s, want %s", c.f.Since, c.f.Until, got, c.want)
				}
			})
		}
		// fn's error stops the walk and comes back unwrapped.
		stop := errors.New("stop")
		calls := 0
		err := db.AuditEntries(context.Background(), workflow.AuditFilter{}, func(*workflow.AuditEntry) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 3 {
			t.Errorf("AuditEntries = %v after %d calls, want stop after 3", err, calls)
		}
	})
}

func TestAuditStreamAllowsWritesFromCallback(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for range 5 {
			appendEntry(t, db, &workflow.AuditEntry{Time: t0, ActorID: "U", Action: workflow.ActionRequestCreated})
		}
		// An export that audits itself while streaming must not deadlock.
		n := 0
		err := db.AuditEntries(context.Background(), workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
			n++
			if e.Seq == 2 {
				return db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.AppendAudit(ctx, &workflow.AuditEntry{Time: t0, ActorID: "U", Action: workflow.ActionAuditExported})
				})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 5 {
			t.Errorf("streamed %d entries", n)
		}
	})
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for range 3 {
			appendEntry(t, db, &workflow.AuditEntry{Time: t0, ActorID: "U", Action: workflow.ActionRequestCreated})
		}
		stmts := []string{
			"UPDATE audit_log SET actor_id = 'attacker' WHERE seq = 2",
			"DELETE FROM audit_log WHERE seq = 3",
			"DELETE FROM audit_log",
			"UPDATE audit_head SET seq = 2",
			"DELETE FROM audit_head",
		}
		if db.Dialect() == store.DialectPostgres {
			stmts = append(stmts, "TRUNCATE audit_log", "TRUNCATE audit_head")
		}
		for _, s := range stmts {
			if _, err := db.Bun().ExecContext(ctx, s); err == nil {
				t.Errorf("%s: succeeded, want the trigger to reject it", s)
			}
		}
		got := entries(t, db, workflow.AuditFilter{})
		if len(got) != 3 || got[1].ActorID != "U" {
			t.Fatalf("log changed: %d entries", len(got))
		}
		checkChain(t, got)

		// With the guards dropped (an attacker with database access), the
		// edit goes through and the chain shows it.
		storetest.DropAuditGuards(t, db)
		if _, err := db.Bun().ExecContext(ctx, "UPDATE audit_log SET actor_id = 'attacker' WHERE seq = 2"); err != nil {
			t.Fatalf("update without triggers: %v", err)
		}
		got = entries(t, db, workflow.AuditFilter{})
		if workflow.ComputeHash(got[1].PrevHash, got[1]) == got[1].Hash {
			t.Error("edited entry still matches its hash")
		}
		if _, err := db.Bun().ExecContext(ctx, "DELETE FROM audit_log WHERE seq = 3"); err != nil {
			t.Fatalf("delete without triggers: %v", err)
		}
		if seq, _, _ := db.AuditHead(ctx); seq != 3 {
			t.Errorf("AuditHead seq = %d after deleting the last entry, want 3 still", seq)
		}
	})
}

// eachBench runs fn on SQLite and, with TEST_DATABASE_URL, PostgreSQL.
func eachBench(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.Open(b)) })
	if u := os.Getenv(storetest.EnvPostgresURL); u != "" {
		b.Run("postgres", func(b *testing.B) { fn(b, storetest.OpenPostgres(b, u)) })
	}
}

func BenchmarkAuditAppend(b *testing.B) {
	eachBench(b, func(b *testing.B, db *store.DB) {
		details := workflow.CanonicalDetails(map[string]any{"reason": "benchmark", "duration": "8h"})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e := &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionRequestCreated, RequestID: int64(i), RoleID: "R1", Details: details}
			if err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
				return tx.AppendAudit(ctx, e)
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAuditStream(b *testing.B) {
	const n = 5000
	eachBench(b, func(b *testing.B, db *store.DB) {
		details := workflow.CanonicalDetails(map[string]any{"reason": "benchmark", "duration": "8h"})
		for start := 0; start < n; start += 500 {
			update(b, db, func(ctx context.Context, tx workflow.Tx) error {
				for i := start; i < start+500; i++ {
					e := &workflow.AuditEntry{Time: t0.Add(time.Duration(i) * time.Millisecond), ActorID: "U1",
						Action: workflow.ActionRequestCreated, RequestID: int64(i), Details: details}
					if err := tx.AppendAudit(ctx, e); err != nil {
						return err
					}
				}
				return nil
			})
		}
		b.ReportAllocs()
		for b.Loop() {
			count := 0
			if err := db.AuditEntries(context.Background(), workflow.AuditFilter{}, func(*workflow.AuditEntry) error {
				count++
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			if count != n {
				b.Fatalf("streamed %d entries, want %d", count, n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	})
}
