package workflow_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// TestDeliveryHonoursRetryAfterAndDropsOnlyPermanentErrors: a temporary
// failure comes back no sooner than its Retry-After and is retried for up
// to a day; a permanent one is dropped at once; the requester's DM is its
// own delivery and does not wait on the approvers' copies.
func TestDeliveryHonoursRetryAfterAndDropsOnlyPermanentErrors(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		// The approvers' copies are rate limited (Retry-After 40s); the
		// requester's DM goes through.
		h.notes.failWith = func(e workflow.Event) error {
			if e.Audience == workflow.AudienceAll && e.Type != workflow.EventCreated {
				return &workflow.TemporaryError{Err: errors.New("ratelimited"), RetryAfter: 40 * time.Second}
			}
			return nil
		}
		r := h.mustCreate("Engineering", time.Hour)
		h.drain()
		if _, err := h.svc.Deny(ctx, r.ID, bob, "not now"); err != nil {
			t.Fatal(err)
		}
		h.drain()
		if got := h.notes.requesterTypes(r.ID); !slices.Equal(got, []workflow.EventType{workflow.EventDenied}) {
			t.Fatalf("requester told %v while the copies wait", got)
		}
		// Not due before Retry-After.
		h.clock.Advance(39 * time.Second)
		h.drain()
		if got := h.notes.types(r.ID); slices.Contains(got, workflow.EventDenied) {
			t.Fatalf("retried before Retry-After: %v", got)
		}
		// Still temporary 23 hours later: still retried, never dropped.
		for range 23 {
			h.clock.Advance(time.Hour)
			h.drain()
		}
		if c, _ := db.JobCounts(ctx, h.clock.Now()); c.Failed != 0 || c.Queued != 1 {
			t.Fatalf("after 23h: %+v", c)
		}
		h.notes.mu.Lock()
		h.notes.failWith = nil
		h.notes.mu.Unlock()
		h.clock.Advance(time.Minute)
		h.drain()
		if got := h.notes.types(r.ID); !slices.Equal(got, []workflow.EventType{workflow.EventCreated, workflow.EventDenied}) {
			t.Fatalf("delivered %v", got)
		}

		// A permanent error is dropped at once, counted as failed.
		h.notes.mu.Lock()
		h.notes.failWith = func(e workflow.Event) error {
			if e.Audience == workflow.AudienceAll {
				return errors.New("channel_not_found")
			}
			return nil
		}
		h.notes.mu.Unlock()
		r2 := h.mustCreate("Finance", 0)
		h.drain()
		if c, _ := db.JobCounts(ctx, h.clock.Now()); c.Failed != 1 || c.Queued != 0 {
			t.Fatalf("permanent error: %+v", c)
		}
		if got := h.notes.types(r2.ID); len(got) != 0 {
			t.Fatalf("delivered %v", got)
		}
	})
}

// TestDeliverySentAwayWithAReservedTurnComesBackExactlyThen: a notifier
// that keeps a turn for a job (Reserved) sees the same job id when it comes
// back, and the job comes back at that turn, with no spread after it.
func TestDeliverySentAwayWithAReservedTurnComesBackExactlyThen(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.notes.failWith = func(e workflow.Event) error {
			if e.Type == workflow.EventCreated {
				return &workflow.TemporaryError{Err: errors.New("waiting for its turn"), RetryAfter: 40 * time.Second, Reserved: true}
			}
			return nil
		}
		r := h.mustCreate("Engineering", time.Hour)
		h.drain()
		h.clock.Advance(40*time.Second - time.Millisecond)
		h.drain()
		h.notes.mu.Lock()
		tries := slices.Clone(h.notes.jobs)
		h.notes.failWith = nil
		h.notes.mu.Unlock()
		if len(tries) != 1 || tries[0] == 0 {
			t.Fatalf("deliveries tried before the turn, by job: %v", tries)
		}
		h.clock.Advance(time.Millisecond)
		h.drain()
		h.notes.mu.Lock()
		tries = slices.Clone(h.notes.jobs)
		h.notes.mu.Unlock()
		if got := h.notes.types(r.ID); !slices.Equal(got, []workflow.EventType{workflow.EventCreated}) || len(tries) != 2 || tries[1] != tries[0] {
			t.Fatalf("at its turn: delivered %v, tries by job %v", got, tries)
		}
	})
}

// TestDeliveryGivesUpAfterADay: a notification still failing temporarily a
// day after it was queued is dropped.
func TestDeliveryGivesUpAfterADay(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.notes.failWith = func(workflow.Event) error { return &workflow.TemporaryError{Err: errors.New("internal_error")} }
		h.mustCreate("Engineering", time.Hour)
		for range 30 {
			h.clock.Advance(time.Hour)
			h.drain()
		}
		if c, _ := db.JobCounts(context.Background(), h.clock.Now()); c.Failed != 1 || c.Queued != 0 {
			t.Fatalf("after 30h: %+v", c)
		}
	})
}

// TestNotifyWorkersTakeOnlyNotifications: workers started for NotifyKinds
// deliver while the PostHog execution waits for the other workers.
func TestNotifyWorkersTakeOnlyNotifications(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		for {
			ran, err := h.svc.RunJobOf(ctx, workflow.NotifyKinds)
			if err != nil {
				t.Fatal(err)
			}
			if !ran {
				break
			}
		}
		if got := h.notes.types(r.ID); !slices.Equal(got, []workflow.EventType{workflow.EventCreated, workflow.EventApproved}) {
			t.Fatalf("delivered %v", got)
		}
		if got := h.notes.requesterTypes(r.ID); !slices.Equal(got, []workflow.EventType{workflow.EventApproved}) {
			t.Fatalf("requester told %v", got)
		}
		if got := h.request(r.ID).State; got != workflow.StateApproved {
			t.Fatalf("notify workers ran the execution: %s", got)
		}
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateCompleted {
			t.Fatalf("state %s", got)
		}
	})
}
