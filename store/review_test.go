package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// Reviews: one open access review per role, compare-and-set on the review
// and on each member's answer, filters, and message refs upserted per page.
func TestReviews(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		on := true
		rev := &workflow.Review{Kind: workflow.ReviewAccess, State: workflow.ReviewOpen, RoleID: "R1", RoleName: "Eng",
			StartedBy: "U1", StartedAt: t0, DeadlineAt: t0.Add(48 * time.Hour), RemindAt: t0.Add(24 * time.Hour), Unanswered: workflow.DecisionRemove}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.InsertReview(ctx, rev); err != nil {
				return err
			}
			return tx.InsertReviewItems(ctx, []workflow.ReviewItem{
				{ReviewID: rev.ID, Position: 0, MembershipID: "m1", UserUUID: "u1", Email: "a@x", LastLogin: t0, TwoFactor: &on, GrantID: 4, GrantEndsAt: t0},
				{ReviewID: rev.ID, Position: 1, MembershipID: "m2", UserUUID: "u2", Email: "b@x"},
			})
		})
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			return tx.InsertReview(ctx, &workflow.Review{Kind: workflow.ReviewAccess, State: workflow.ReviewOpen, RoleID: "R1", StartedBy: "U2", StartedAt: t0})
		})
		if workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second open access review of a role: %v", err)
		}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			// Break-glass reviews of the same role are not limited.
			for i := 0; i < 2; i++ {
				if err := tx.InsertReview(ctx, &workflow.Review{Kind: workflow.ReviewBreakGlass, State: workflow.ReviewOpen, RoleID: "R1",
					RequestID: int64(10 + i), StartedBy: "U3", StartedAt: t0.Add(time.Duration(i) * time.Hour), RemindAt: t0}); err != nil {
					return err
				}
			}
			return nil
		})
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			got, err := tx.Review(ctx, rev.ID)
			if err != nil || *got != *rev {
				t.Errorf("Review = %+v, %v; want %+v", got, err, rev)
			}
			items, err := tx.ReviewItems(ctx, rev.ID)
			if err != nil || len(items) != 2 || !items[0].LastLogin.Equal(t0) || items[0].TwoFactor == nil || !*items[0].TwoFactor ||
				items[1].TwoFactor != nil || items[0].GrantID != 4 {
				t.Errorf("ReviewItems = %+v, %v", items, err)
			}
			for f, want := range map[string]struct {
				f workflow.ReviewFilter
				n int
			}{
				"due reminders":   {workflow.ReviewFilter{RemindBefore: t0.Add(24 * time.Hour)}, 3},
				"due deadlines":   {workflow.ReviewFilter{DeadlineBefore: t0.Add(47 * time.Hour)}, 0},
				"uses in a day":   {workflow.ReviewFilter{Kind: workflow.ReviewBreakGlass, StartedBy: "U3", StartedAfter: t0}, 1},
				"by grant":        {workflow.ReviewFilter{RequestID: 11}, 1},
				"open of a role":  {workflow.ReviewFilter{Kind: workflow.ReviewAccess, RoleID: "R1", State: workflow.ReviewOpen}, 1},
				"newest, limited": {workflow.ReviewFilter{NewestFirst: true, Limit: 1}, 1},
			} {
				got, err := tx.FindReviews(ctx, want.f)
				if err != nil || len(got) != want.n {
					t.Errorf("%s: %d reviews, %v; want %d", f, len(got), err, want.n)
				}
			}
			return nil
		})
		// The first answer for a member wins.
		first := workflow.ReviewItem{ReviewID: rev.ID, MembershipID: "m2", Decision: workflow.DecisionRemove, DecidedBy: "U1", DecidedAt: t0, RemovalID: 9}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.DecideReviewItem(ctx, &first) })
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			late := first
			late.Decision, late.DecidedBy = workflow.DecisionKeep, "U2"
			return tx.DecideReviewItem(ctx, &late)
		})
		if workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second answer: %v", err)
		}
		// Compare-and-set on the review.
		stale := *rev
		rev.State, rev.ClosedBy, rev.ClosedAt, rev.RemindAt = workflow.ReviewClosed, "U1", t0.Add(time.Hour), time.Time{}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateReview(ctx, rev) })
		err = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateReview(ctx, &stale) })
		if workflow.ErrorCode(err) != workflow.ECONFLICT || rev.Version != 2 {
			t.Fatalf("stale update: %v (version %d)", err, rev.Version)
		}
		// Message refs: one per review, channel and page; a repost replaces the ts.
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			for _, m := range []workflow.ReviewMessage{{ReviewID: rev.ID, Channel: "D1", Page: 0, TS: "1"}, {ReviewID: rev.ID, Channel: "D1", Page: 1, TS: "2"},
				{ReviewID: rev.ID, Channel: "D1", Page: 0, TS: "3"}} {
				if err := tx.PutReviewMessage(ctx, m); err != nil {
					return err
				}
			}
			got, err := tx.ReviewMessages(ctx, rev.ID)
			if err != nil || len(got) != 2 || got[0].TS != "3" || got[1].Page != 1 {
				t.Errorf("ReviewMessages = %+v, %v", got, err)
			}
			return err
		})
	})
}
