package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// TestViewSubmissionsAndShownMessages: a view creates at most one request;
// a message ref remembers what it shows.
func TestViewSubmissionsAndShownMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U0ALICE", "role-1"))
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.PutViewSubmission(ctx, "V123", r.ID) })
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.PutViewSubmission(ctx, "V123", r.ID) })
		if workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second submission of a view: %v", err)
		}
		err = db.View(ctx, func(ctx context.Context, tx workflow.Tx) error {
			id, ok, err := tx.ViewSubmission(ctx, "V123")
			if err != nil || !ok || id != r.ID {
				return fmt.Errorf("V123: %d %v %v", id, ok, err)
			}
			if _, ok, err := tx.ViewSubmission(ctx, "V999"); err != nil || ok {
				return fmt.Errorf("V999: %v %v", ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		ref := workflow.MessageRef{RequestID: r.ID, Channel: "D1", TS: "1.1", Shown: "aaa"}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.PutMessageRef(ctx, ref) })
		ref.Shown = "bbb"
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.PutMessageRef(ctx, ref) })
		err = db.View(ctx, func(ctx context.Context, tx workflow.Tx) error {
			refs, err := tx.MessageRefs(ctx, r.ID)
			if err != nil || len(refs) != 1 || refs[0].Shown != "bbb" || refs[0].TS != "1.1" {
				return fmt.Errorf("refs %+v %v", refs, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestRequesterNotificationsDoNotWaitOnApproverCopies: notify_requester
// jobs are ordered per request among themselves, and never held back by
// the request's notify jobs.
func TestRequesterNotificationsDoNotWaitOnApproverCopies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		job := func(kind workflow.JobKind, payload string) *workflow.Job {
			return &workflow.Job{Kind: kind, RequestID: 1, Payload: payload, RunAt: t0}
		}
		enqueue(t, db, job(workflow.JobNotify, "copies1"), job(workflow.JobNotify, "copies2"),
			job(workflow.JobNotifyRequester, "dm1"), job(workflow.JobNotifyRequester, "dm2"))
		var got []string
		for {
			j := claim(t, db, workflow.NotifyKinds, t0)
			if j == nil {
				break
			}
			got = append(got, j.Payload)
		}
		if want := "[copies1 dm1]"; fmt.Sprint(got) != want {
			t.Fatalf("claimed %v, want %s", got, want)
		}
	})
}
