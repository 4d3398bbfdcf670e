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

func enqueue(t testing.TB, db *store.DB, jobs ...*workflow.Job) {
	t.Helper()
	update(t, db, func(ctx context.Context, tx workflow.Tx) error {
		for _, j := range jobs {
			if err := tx.EnqueueJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
}

func claim(t testing.TB, db *store.DB, kinds []workflow.JobKind, now time.Time) *workflow.Job {
	t.Helper()
	j, err := db.ClaimJob(context.Background(), kinds, now, time.Minute)
	if err != nil {
		t.Fatalf("ClaimJob: %v", err)
	}
	return j
}

func TestJobEnqueueClaimFinish(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ms := time.Millisecond
		later := &workflow.Job{Kind: workflow.JobExecute, RequestID: 7, Payload: `{"a":1}`, RunAt: t0.Add(1500 * ms)}
		sooner := &workflow.Job{Kind: workflow.JobRevoke, RunAt: t0.Add(1250 * ms)}
		now := &workflow.Job{Kind: workflow.JobExecute} // RunAt from the clock
		enqueue(t, db, later, sooner, now)
		if later.ID == 0 || sooner.ID == 0 || !now.RunAt.Equal(t0) || !now.CreatedAt.Equal(t0) {
			t.Fatalf("enqueue did not fill ID/RunAt/CreatedAt: %+v %+v", later, now)
		}

		if j := claim(t, db, []workflow.JobKind{workflow.JobRevoke}, t0.Add(1249*ms)); j != nil {
			t.Fatalf("claimed %+v before its RunAt", j)
		}
		got := claim(t, db, nil, t0)
		if got == nil || got.ID != now.ID {
			t.Fatalf("claim at t0 = %+v, want job %d", got, now.ID)
		}
		if got.Attempts != 1 || got.LeaseToken == "" || !got.LeaseUntil.Equal(t0.Add(time.Minute)) {
			t.Errorf("claimed job %+v", got)
		}
		// Kinds filter, and run_at order with sub-second values.
		if j := claim(t, db, []workflow.JobKind{workflow.JobNotify}, t0.Add(time.Hour)); j != nil {
			t.Errorf("claimed %+v for a kind with no jobs", j)
		}
		j2 := claim(t, db, []workflow.JobKind{workflow.JobExecute, workflow.JobRevoke}, t0.Add(1500*ms))
		j3 := claim(t, db, nil, t0.Add(1500*ms))
		if j2 == nil || j3 == nil || j2.ID != sooner.ID || j3.ID != later.ID {
			t.Fatalf("claims = %+v, %+v; want %d then %d", j2, j3, sooner.ID, later.ID)
		}
		if j3.Payload != `{"a":1}` || j3.RequestID != 7 || j3.Kind != workflow.JobExecute || !j3.RunAt.Equal(later.RunAt) {
			t.Errorf("claimed job fields: %+v", j3)
		}
		if j := claim(t, db, nil, t0.Add(time.Second*30)); j != nil {
			t.Errorf("claimed leased job %+v", j)
		}

		counts, err := db.JobCounts(ctx, t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if counts != (workflow.JobCounts{Running: 3}) {
			t.Errorf("JobCounts = %+v", counts)
		}

		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.FinishJob(ctx, got.ID, got.LeaseToken); err != nil {
				return err
			}
			if err := tx.RetryJob(ctx, j2.ID, j2.LeaseToken, t0.Add(time.Hour), "429"); err != nil {
				return err
			}
			return tx.FailJob(ctx, j3.ID, j3.LeaseToken, "permanent")
		})
		counts, err = db.JobCounts(ctx, t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if counts != (workflow.JobCounts{Queued: 1, Failed: 1}) {
			t.Errorf("JobCounts after finish/retry/fail = %+v", counts)
		}
		// The retried job comes back at its new time with its error; the
		// failed one never does.
		if j := claim(t, db, nil, t0.Add(time.Hour-time.Microsecond)); j != nil {
			t.Errorf("claimed %+v before its retry time", j)
		}
		j4 := claim(t, db, nil, t0.Add(time.Hour))
		if j4 == nil || j4.ID != j2.ID || j4.Attempts != 2 || j4.LastError != "429" || j4.LeaseToken == j2.LeaseToken {
			t.Errorf("retried job = %+v", j4)
		}
		if j := claim(t, db, nil, t0.Add(100*time.Hour)); j != nil && j.ID == j3.ID {
			t.Errorf("failed job claimed again")
		}
		// Finishing twice: the lease is gone.
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.FinishJob(ctx, got.ID, got.LeaseToken) })
		errorsAsCode(t, err, workflow.ECONFLICT)
	}, store.WithClock(clock))
}

func TestJobLeaseExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		enqueue(t, db, &workflow.Job{Kind: workflow.JobExecute, RunAt: t0})
		first := claim(t, db, nil, t0)
		if first == nil {
			t.Fatal("nothing claimed")
		}
		// The lease runs until t0+1m; at exactly that time it still holds.
		if j := claim(t, db, nil, t0.Add(time.Minute)); j != nil {
			t.Fatalf("claimed %+v while leased", j)
		}
		second := claim(t, db, nil, t0.Add(time.Minute+time.Microsecond))
		if second == nil || second.ID != first.ID || second.LeaseToken == first.LeaseToken || second.Attempts != 2 {
			t.Fatalf("after expiry claimed %+v (first %+v)", second, first)
		}
		counts, err := db.JobCounts(ctx, t0.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if counts != (workflow.JobCounts{Queued: 1}) {
			t.Errorf("JobCounts with an ended lease = %+v, want it counted as queued", counts)
		}

		stale := []struct {
			name string
			fn   func(ctx context.Context, tx workflow.Tx) error
		}{
			{"finish", func(ctx context.Context, tx workflow.Tx) error { return tx.FinishJob(ctx, first.ID, first.LeaseToken) }},
			{"retry", func(ctx context.Context, tx workflow.Tx) error {
				return tx.RetryJob(ctx, first.ID, first.LeaseToken, t0, "x")
			}},
			{"fail", func(ctx context.Context, tx workflow.Tx) error {
				return tx.FailJob(ctx, first.ID, first.LeaseToken, "x")
			}},
			{"unknown job", func(ctx context.Context, tx workflow.Tx) error { return tx.FinishJob(ctx, 999999, "t") }},
		}
		for _, c := range stale {
			t.Run(c.name, func(t *testing.T) {
				errorsAsCode(t, db.Update(ctx, c.fn), workflow.ECONFLICT)
			})
		}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			return tx.FinishJob(ctx, second.ID, second.LeaseToken)
		})
		if j := claim(t, db, nil, t0.Add(time.Hour)); j != nil {
			t.Errorf("finished job claimed again: %+v", j)
		}
	})
}

func TestJobClaimConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const jobs, workers = 100, 20
		enqueue(t, db, dueJobs(jobs)...)
		claimEachOnce(t, []*store.DB{db}, workers, jobs, true)
	})
}

// dueJobs returns n execute jobs due at t0.
func dueJobs(n int) []*workflow.Job {
	out := make([]*workflow.Job, n)
	for i := range out {
		out[i] = &workflow.Job{Kind: workflow.JobExecute, RunAt: t0, Payload: fmt.Sprint(i)}
	}
	return out
}

// claimEachOnce starts workers goroutines together, worker w on
// dbs[w%len(dbs)], each claiming jobs due at t0 (and finishing them when
// finish is set) until none is left, and fails unless exactly want distinct
// jobs were claimed, each once.
func claimEachOnce(t *testing.T, dbs []*store.DB, workers, want int, finish bool) {
	t.Helper()
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[w%len(dbs)]
			<-start
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
				if !finish {
					continue
				}
				if err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
					return tx.FinishJob(ctx, j.ID, j.LeaseToken)
				}); err != nil {
					t.Errorf("FinishJob: %v", err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(claimed) != want {
		t.Errorf("%d distinct jobs claimed, want %d", len(claimed), want)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
}

func TestNotifyJobsInOrderPerRequest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		notify := func(req int64, payload string) *workflow.Job {
			return &workflow.Job{Kind: workflow.JobNotify, RequestID: req, Payload: payload, RunAt: t0}
		}
		a1, a2, a3 := notify(1, "a1"), notify(1, "a2"), notify(1, "a3")
		b1 := notify(2, "b1")
		free1, free2 := notify(0, "free1"), notify(0, "free2") // no request: no ordering
		enqueue(t, db, a1, a2, a3, b1, free1, free2)

		var got []string
		var held []*workflow.Job
		for {
			j := claim(t, db, []workflow.JobKind{workflow.JobNotify}, t0)
			if j == nil {
				break
			}
			got = append(got, j.Payload)
			held = append(held, j)
		}
		// While a1 runs, a2 and a3 wait; the others are free.
		want := []string{"a1", "b1", "free1", "free2"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("first round claimed %v, want %v", got, want)
		}
		// A retry with backoff keeps a1 first.
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			return tx.RetryJob(ctx, held[0].ID, held[0].LeaseToken, t0.Add(time.Minute), "slack down")
		})
		if j := claim(t, db, nil, t0.Add(time.Second)); j != nil {
			t.Fatalf("claimed %s while an older notify job of its request waits", j.Payload)
		}
		j := claim(t, db, nil, t0.Add(time.Minute))
		if j == nil || j.Payload != "a1" {
			t.Fatalf("claimed %+v, want a1 again", j)
		}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.FinishJob(ctx, j.ID, j.LeaseToken) })
		j = claim(t, db, nil, t0.Add(time.Minute))
		if j == nil || j.Payload != "a2" {
			t.Fatalf("claimed %+v, want a2", j)
		}
		// A notify job that failed for good does not block the rest.
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.FailJob(ctx, j.ID, j.LeaseToken, "gone") })
		j = claim(t, db, nil, t0.Add(time.Minute))
		if j == nil || j.Payload != "a3" {
			t.Fatalf("claimed %+v, want a3", j)
		}
		// An expired lease on an older job lets that job, not a newer one,
		// be claimed again.
		enqueue(t, db, notify(1, "a4"))
		j = claim(t, db, nil, t0.Add(time.Hour))
		if j == nil || j.Payload != "a3" {
			t.Fatalf("after lease expiry claimed %+v, want a3", j)
		}
	})
}

// BenchmarkClaimJobBehindBacklog: a requester-DM worker claims and finishes
// its job while a backlog of notifications (one per request, all due, as
// when hundreds of approver copies wait on Slack's chat.update limit) sits
// in the queue. The claim's "older notification of the same request" check
// must look up the request's own jobs, not scan the backlog for each
// candidate.
func BenchmarkClaimJobBehindBacklog(b *testing.B) {
	for _, backlog := range []int{100, 1000} {
		b.Run(fmt.Sprint(backlog), func(b *testing.B) {
			eachBench(b, func(b *testing.B, db *store.DB) {
				jobs := make([]*workflow.Job, 0, 2*backlog)
				for i := 1; i <= backlog; i++ {
					jobs = append(jobs, &workflow.Job{Kind: workflow.JobNotify, RequestID: int64(i), RunAt: t0},
						&workflow.Job{Kind: workflow.JobNotifyRequester, RequestID: int64(i), RunAt: t0})
				}
				enqueue(b, db, jobs...)
				kinds := []workflow.JobKind{workflow.JobNotifyRequester}
				next := int64(backlog)
				b.ReportAllocs()
				for b.Loop() {
					j := claim(b, db, kinds, t0.Add(time.Second))
					if j == nil {
						b.Fatal("nothing to claim")
					}
					// Finish it and queue the next request's, so the backlog
					// stays as it was.
					next++
					update(b, db, func(ctx context.Context, tx workflow.Tx) error {
						if err := tx.FinishJob(ctx, j.ID, j.LeaseToken); err != nil {
							return err
						}
						return tx.EnqueueJob(ctx, &workflow.Job{Kind: workflow.JobNotifyRequester, RequestID: next, RunAt: t0})
					})
				}
			})
		})
	}
}
