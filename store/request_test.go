package store_test

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

func TestRequestInsertGetRoundTrip(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		local := time.FixedZone("CEST", 2*3600)
		r := newRequest("U1", "R1")
		r.AutoApproved = true
		r.RevokeQueued = true
		r.DecidedBy = "U_OWNER"
		r.DecisionReason = "ok"
		r.FailureReason = "none"
		r.MembershipID = "m-1"
		r.Duration = 90*time.Minute + 7*time.Nanosecond
		// Every time field, with nanoseconds and a non-UTC zone: stored
		// UTC with µs precision.
		r.ExpiresAt = t0.Add(72 * time.Hour).In(local).Add(789 * time.Nanosecond)
		r.RemindAt = t0.Add(24 * time.Hour).Add(1 * time.Microsecond)
		r.RemindedAt = t0.Add(25 * time.Hour)
		r.DecidedAt = t0.Add(time.Second)
		r.CompletedAt = t0.Add(2 * time.Second)
		r.RevokeAt = t0.Add(8 * time.Hour)
		r.RevokedAt = t0.Add(9 * time.Hour)
		insert(t, db, r)

		if r.ID == 0 || r.Version != 1 {
			t.Fatalf("after insert ID=%d Version=%d", r.ID, r.Version)
		}
		if !r.CreatedAt.Equal(t0) || !r.UpdatedAt.Equal(t0) {
			t.Errorf("CreatedAt=%v UpdatedAt=%v, want the clock's %v", r.CreatedAt, r.UpdatedAt, t0)
		}
		if r.ExpiresAt.Location() != time.UTC || r.ExpiresAt.Nanosecond()%1000 != 0 {
			t.Errorf("caller's ExpiresAt not normalized: %v", r.ExpiresAt)
		}
		got := get(t, db, r.ID)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, r)
		}
		if got.ExpiresAt.Location() != time.UTC {
			t.Errorf("ExpiresAt location %v", got.ExpiresAt.Location())
		}
		// Zero times stay zero (NULL).
		r2 := insert(t, db, newRequest("U2", "R1"))
		got = get(t, db, r2.ID)
		if !got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() || got.Approvals != nil {
			t.Errorf("zero fields came back as %v, %v, %v", got.ExpiresAt, got.RevokedAt, got.Approvals)
		}

		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			_, err := tx.Request(ctx, 999999)
			return err
		})
		errorsAsCode(t, err, workflow.ENOTFOUND)
	}, store.WithClock(clock))
}

func TestOpenRequestUniqueness(t *testing.T) {
	cases := []struct {
		name     string
		first    func(r *workflow.Request)
		second   func(r *workflow.Request)
		wantCode string
	}{
		{"same subject kind role", nil, nil, workflow.ECONFLICT},
		{"approved blocks", func(r *workflow.Request) { r.State = workflow.StateApproved }, nil, workflow.ECONFLICT},
		{"executing blocks", func(r *workflow.Request) { r.State = workflow.StateExecuting }, nil, workflow.ECONFLICT},
		{"completed does not block", func(r *workflow.Request) { r.State = workflow.StateCompleted }, nil, ""},
		{"denied does not block", func(r *workflow.Request) { r.State = workflow.StateDenied }, nil, ""},
		{"other kind blocks too", nil, func(r *workflow.Request) { r.Kind = workflow.KindRemove }, workflow.ECONFLICT},
		{"extension blocks too", nil, func(r *workflow.Request) { r.Kind, r.GrantID = workflow.KindExtend, 1 }, workflow.ECONFLICT},
		{"other role", nil, func(r *workflow.Request) { r.RoleID = "R2" }, ""},
		{"other subject", nil, func(r *workflow.Request) { r.SubjectID = "U9" }, ""},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				subject := "U_" + c.name // each case its own subject
				a, b := newRequest(subject, "R1"), newRequest(subject, "R1")
				if c.first != nil {
					c.first(a)
				}
				if c.second != nil {
					c.second(b)
				}
				insert(t, db, a)
				err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.InsertRequest(ctx, b)
				})
				errorsAsCode(t, err, c.wantCode)
			})
		}
		// Re-opening through UpdateRequest is caught by the same index.
		a := insert(t, db, newRequest("U_REOPEN", "R1"))
		a.State = workflow.StateDenied
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, a) })
		insert(t, db, newRequest("U_REOPEN", "R1"))
		a.State = workflow.StatePending
		err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, a) })
		errorsAsCode(t, err, workflow.ECONFLICT)
	})
}

func TestUpdateRequestCompareAndSet(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U1", "R1"))
		stale := *r

		clock.Set(t0.Add(time.Minute))
		r.State = workflow.StateApproved
		r.DecidedBy = "U_OWNER"
		r.DecidedAt = t0.Add(time.Minute)
		r.SubjectUUID = "uuid-resolved"
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, r) })
		if r.Version != 2 || !r.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after update Version=%d UpdatedAt=%v", r.Version, r.UpdatedAt)
		}
		got := get(t, db, r.ID)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("after update\n got %+v\nwant %+v", got, r)
		}

		// The stale copy still says version 1.
		stale.State = workflow.StateDenied
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, &stale) })
		errorsAsCode(t, err, workflow.ECONFLICT)
		if stale.Version != 1 {
			t.Errorf("failed update changed Version to %d", stale.Version)
		}

		missing := newRequest("U404", "R1")
		missing.ID, missing.Version = 999999, 1
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, missing) })
		errorsAsCode(t, err, workflow.ENOTFOUND)

		// Identity columns are not rewritten.
		r.RequesterID, r.Kind = "U_SOMEONE_ELSE", workflow.KindRemove
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, r) })
		got = get(t, db, r.ID)
		if got.RequesterID != "U_REQ" || got.Kind != workflow.KindAdd || got.Version != 3 {
			t.Errorf("identity changed: %+v", got)
		}
	}, store.WithClock(clock))
}

func TestUpdateRequestRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := insert(t, db, newRequest("U1", "R1"))
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		var others []error
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := *r
				mine.DecidedBy = "U_OWNER_" + string(rune('A'+i%26))
				mine.State = workflow.StateApproved
				<-start
				err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.UpdateRequest(ctx, &mine)
				})
				mu.Lock()
				defer mu.Unlock()
				switch code(err) {
				case "":
					wins++
				case workflow.ECONFLICT:
					conflicts++
				default:
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || conflicts != n-1 || len(others) > 0 {
			t.Fatalf("wins=%d conflicts=%d others=%v, want 1, %d, none", wins, conflicts, others, n-1)
		}
	})
}

func TestApprovals(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U1", "R1"))
		a1 := workflow.Approval{RequestID: r.ID, ApproverID: "U_A", ApproverEmail: "a@example.com", At: t0.Add(2 * time.Second)}
		a2 := workflow.Approval{RequestID: r.ID, ApproverID: "U_B", ApproverEmail: "b@example.com"} // At from the clock
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.InsertApproval(ctx, a1); err != nil {
				return err
			}
			return tx.InsertApproval(ctx, a2)
		})
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			return tx.InsertApproval(ctx, workflow.Approval{RequestID: r.ID, ApproverID: "U_A"})
		})
		errorsAsCode(t, err, workflow.ECONFLICT)
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			return tx.InsertApproval(ctx, workflow.Approval{RequestID: 999999, ApproverID: "U_A"})
		})
		errorsAsCode(t, err, workflow.ENOTFOUND)

		got := get(t, db, r.ID)
		a2.At = t0
		want := []workflow.Approval{a2, a1} // ordered by time
		if !reflect.DeepEqual(got.Approvals, want) {
			t.Errorf("Approvals = %+v, want %+v", got.Approvals, want)
		}
		if !got.HasApproved("U_A") || got.HasApproved("U_C") {
			t.Error("HasApproved wrong")
		}
	}, store.WithClock(clock))
}

func TestFindRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		ms := time.Millisecond
		mk := func(subject, role string, f func(r *workflow.Request)) *workflow.Request {
			r := newRequest(subject, role)
			if f != nil {
				f(r)
			}
			return insert(t, db, r)
		}
		// Sub-second due times on purpose: 1.5s vs 1.25s vs 1s must order
		// correctly as stored text on SQLite.
		r1 := mk("U1", "R1", func(r *workflow.Request) { r.ExpiresAt = at(1500 * ms); r.RemindAt = at(1250 * ms) })
		r2 := mk("U2", "R1", func(r *workflow.Request) {
			r.ExpiresAt = at(time.Second)
			r.RemindAt = at(time.Second)
			r.RemindedAt = at(1100 * ms)
			r.RequesterID = "U_OTHER"
		})
		r3 := mk("U1", "R2", func(r *workflow.Request) {
			r.State = workflow.StateCompleted
			r.RevokeAt = at(2*time.Second + time.Microsecond)
			r.Kind = workflow.KindRemove
		})
		r4 := mk("U3", "R2", func(r *workflow.Request) {
			r.State = workflow.StateCompleted
			r.RevokeAt = at(1999 * ms)
			r.RevokeQueued = true
		})
		r5 := mk("U4", "R3", func(r *workflow.Request) { r.State = workflow.StateDenied; r.ExpiresAt = at(0) })
		r6 := mk("U5", "R3", func(r *workflow.Request) {
			r.RemindAt = at(500 * ms)
			r.RemindedAt = at(100 * ms) // reminded before the reminder now due
		})
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			return tx.InsertApproval(ctx, workflow.Approval{RequestID: r1.ID, ApproverID: "U_OWNER"})
		})

		ids := func(rs ...*workflow.Request) []int64 {
			out := []int64{}
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		cases := []struct {
			name string
			f    workflow.RequestFilter
			want []int64
		}{
			{"all", workflow.RequestFilter{}, ids(r1, r2, r3, r4, r5, r6)},
			{"requester", workflow.RequestFilter{RequesterID: "U_OTHER"}, ids(r2)},
			{"subject uuid", workflow.RequestFilter{SubjectUUID: "uuid-U1"}, ids(r1, r3)},
			{"role", workflow.RequestFilter{RoleID: "R2"}, ids(r3, r4)},
			{"kind", workflow.RequestFilter{Kind: workflow.KindRemove}, ids(r3)},
			{"one state", workflow.RequestFilter{States: []workflow.State{workflow.StateDenied}}, ids(r5)},
			{"states", workflow.RequestFilter{States: []workflow.State{workflow.StateCompleted, workflow.StateDenied}}, ids(r3, r4, r5)},
			{"expires before 1s (inclusive)", workflow.RequestFilter{ExpiresBefore: at(time.Second)}, ids(r2)},
			{"expires before 1.499999s", workflow.RequestFilter{ExpiresBefore: at(1500*ms - time.Microsecond)}, ids(r2)},
			{"expires before 1.5s", workflow.RequestFilter{ExpiresBefore: at(1500 * ms)}, ids(r1, r2)},
			{"remind before 1.25s", workflow.RequestFilter{RemindBefore: at(1250 * ms)}, ids(r1, r6)},
			{"remind before 1.2s", workflow.RequestFilter{RemindBefore: at(1200 * ms)}, ids(r6)},
			{"revoke before 2s", workflow.RequestFilter{RevokeBefore: at(2 * time.Second)}, ids()},
			{"revoke before 2s+1µs", workflow.RequestFilter{RevokeBefore: at(2*time.Second + time.Microsecond)}, ids(r3)},
			{"limit", workflow.RequestFilter{Limit: 2}, ids(r1, r2)},
			{"newest first", workflow.RequestFilter{NewestFirst: true, Limit: 2}, ids(r6, r5)},
			{"combined", workflow.RequestFilter{SubjectUUID: "uuid-U1", States: []workflow.State{workflow.StatePending}, RoleID: "R1", Kind: workflow.KindAdd}, ids(r1)},
			{"none", workflow.RequestFilter{RoleID: "nope"}, ids()},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var got []*workflow.Request
				update(t, db, func(ctx context.Context, tx workflow.Tx) (err error) {
					got, err = tx.FindRequests(ctx, c.f)
					return err
				})
				if g := ids(got...); !reflect.DeepEqual(g, c.want) {
					t.Errorf("FindRequests(%+v) = %v, want %v", c.f, g, c.want)
				}
				for _, r := range got {
					wantApprovals := 0
					if r.ID == r1.ID {
						wantApprovals = 1
					}
					if len(r.Approvals) != wantApprovals {
						t.Errorf("request %d has %d approvals, want %d", r.ID, len(r.Approvals), wantApprovals)
					}
				}
			})
		}
	})
}

func TestCountRequestsByState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for i, s := range []workflow.State{workflow.StatePending, workflow.StatePending, workflow.StateDenied} {
			r := newRequest("U"+string(rune('A'+i)), "R1")
			r.State = s
			insert(t, db, r)
		}
		got, err := db.CountRequestsByState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(workflow.AllStates) {
			keys := []string{}
			for k := range got {
				keys = append(keys, string(k))
			}
			sort.Strings(keys)
			t.Errorf("states reported: %v, want all %d", keys, len(workflow.AllStates))
		}
		if got[workflow.StatePending] != 2 || got[workflow.StateDenied] != 1 || got[workflow.StateCompleted] != 0 {
			t.Errorf("counts = %v", got)
		}
	})
}
