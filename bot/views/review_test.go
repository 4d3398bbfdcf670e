package views

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

func reviewFixture() (*workflow.Review, []workflow.ReviewItem) {
	rev := &workflow.Review{ID: 3, Kind: workflow.ReviewAccess, State: workflow.ReviewOpen, RoleID: roleEng.ID, RoleName: "Eng & <Ops>",
		StartedBy: "U0BOB", StartedAt: t0, DeadlineAt: t0.Add(7 * 24 * time.Hour), Unanswered: workflow.DecisionKeep}
	on, off := true, false
	items := []workflow.ReviewItem{
		{ReviewID: 3, Position: 0, MembershipID: "m-alice", Email: "alice@example.com", Name: "Alice <b> Nguyen",
			LastLogin: t0.Add(-48 * time.Hour), TwoFactor: &on, GrantID: 7, GrantEndsAt: t0.Add(8 * time.Hour)},
		{ReviewID: 3, Position: 1, MembershipID: "m-dave", Email: "dave@example.com", TwoFactor: &off},
		{ReviewID: 3, Position: 2, MembershipID: "m-erin", Email: "erin@example.com", Name: "Erin", GrantID: 5,
			Decision: workflow.DecisionRemove, DecidedBy: "U0CAROL", DecidedAt: t0.Add(time.Hour), RemovalID: 12},
	}
	return rev, items
}

func TestReviewViewsGolden(t *testing.T) {
	rev, items := reviewFixture()
	golden(t, "review_open", ReviewPages(rev, items)[0])
	golden(t, "review_reminder", ReviewReminder(rev, items))
	closed := *rev
	closed.State, closed.ClosedAt, closed.ClosedBy = workflow.ReviewClosed, rev.DeadlineAt, workflow.SystemActor
	done := append([]workflow.ReviewItem(nil), items...)
	done[0].Decision, done[0].DecidedBy, done[0].DecidedAt = workflow.DecisionKeep, "U0BOB", t0.Add(2*time.Hour)
	done[1].Decision, done[1].DecidedBy, done[1].DecidedAt = workflow.DecisionKeep, workflow.SystemActor, rev.DeadlineAt
	golden(t, "review_closed", ReviewPages(&closed, done)[0])
	golden(t, "review_closed_summary", ReviewClosed(&closed, done))

	r := fixture()
	r.State, r.DecidedBy, r.Duration, r.Reason = workflow.StateCompleted, r.RequesterID, time.Hour, "prod <down> & paging"
	r.CompletedAt, r.RevokeAt = t0, t0.Add(time.Hour)
	bg := &workflow.Review{ID: 4, Kind: workflow.ReviewBreakGlass, State: workflow.ReviewOpen, RoleID: roleEng.ID, RoleName: "Engineering",
		RequestID: r.ID, StartedBy: r.RequesterID, StartedAt: t0}
	golden(t, "breakglass_alert", BreakGlassAlert(bg, r, false))
	golden(t, "breakglass_reminder", BreakGlassAlert(bg, r, true))
	answered := *bg
	answered.State, answered.Outcome, answered.ClosedBy, answered.ClosedAt = workflow.ReviewClosed, workflow.BreakGlassRevoked, "U0BOB", t0.Add(5*time.Minute)
	golden(t, "breakglass_revoked", BreakGlassAlert(&answered, r, true))
	golden(t, "breakglass_granted", BreakGlassGranted(r))
	golden(t, "modal_request_breakglass", RequestModal(RequestModalInput{Kind: workflow.KindAdd, Requester: "U0ALICE",
		Roles: []workflow.Role{roleEng}, Role: &roleEng, Durations: []time.Duration{time.Hour}, BreakGlass: time.Hour}))
}

// A large role's review is paged within Slack's limits, every member on
// exactly one page, with unique block ids.
func TestReviewPagesStayWithinSlackLimits(t *testing.T) {
	rev, _ := reviewFixture()
	var items []workflow.ReviewItem
	long := strings.Repeat("x", 300)
	for i := 0; i < 47; i++ {
		on := i%2 == 0
		items = append(items, workflow.ReviewItem{ReviewID: 3, Position: i, MembershipID: fmt.Sprintf("m-%02d", i),
			Email: fmt.Sprintf("user%02d@%s.example.com", i, long), Name: "Person " + long, TwoFactor: &on,
			LastLogin: t0, GrantID: int64(i), GrantEndsAt: t0})
	}
	pages := ReviewPages(rev, items)
	if len(pages) != 4 {
		t.Fatalf("%d pages for 47 members, want 4", len(pages))
	}
	seen := map[string]int{}
	for p, m := range pages {
		if len(m.Blocks) > maxMessageBlocks {
			t.Errorf("page %d has %d blocks", p, len(m.Blocks))
		}
		n := textLength(t, m)
		if n > 12000 {
			t.Errorf("page %d has %d characters of text", p, n)
		}
		t.Logf("page %d of the worst case: %d blocks, %d characters of text", p+1, len(m.Blocks), n)
		ids := map[string]bool{}
		for _, b := range m.Blocks {
			if a, ok := b.(*slack.ActionBlock); ok {
				if ids[a.BlockID] {
					t.Errorf("page %d repeats block id %s", p, a.BlockID)
				}
				ids[a.BlockID] = true
				for _, el := range a.Elements.ElementSet {
					if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.ActionID == ActionReviewKeep {
						seen[btn.Value]++
					}
				}
			}
		}
		if !ids["review_rest"] {
			t.Errorf("page %d has no Keep all remaining", p)
		}
	}
	if len(seen) != 47 {
		t.Errorf("%d members have a Keep button, want 47", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s shown %d times", v, n)
		}
		if id, m, err := ParseReviewItemValue(v); err != nil || id != 3 || !strings.HasPrefix(m, "m-") {
			t.Errorf("value %q: %d %q %v", v, id, m, err)
		}
	}
	if ReviewPage(ReviewPageSize-1) != 0 || ReviewPage(ReviewPageSize) != 1 {
		t.Error("ReviewPage disagrees with the pages")
	}
}

// textLength counts the characters of every text object of m.
func textLength(t *testing.T, m Message) int {
	b, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any) int
	walk = func(v any) int {
		n := 0
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				n += len([]rune(s))
			}
			for _, c := range x {
				n += walk(c)
			}
		case []any:
			for _, c := range x {
				n += walk(c)
			}
		}
		return n
	}
	var v any
	_ = json.Unmarshal(b, &v)
	return walk(v) + len([]rune(m.Text))
}

// A member only they themself could answer for shows no buttons but the
// deadline's rule, and Keep all remaining goes once nobody else is open.
func TestReviewPageLeavesTheOnlyDecidersOwnLineToTheDeadline(t *testing.T) {
	rev, items := reviewFixture()
	items[0].Decision, items[0].DecidedBy, items[0].DecidedAt = workflow.DecisionKeep, "U0BOB", t0
	items[1].LeftToDeadline = true
	m := ReviewPages(rev, items)[0]
	raw, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.Contains(s, "Left to the deadline: the only owner or admin who could answer is this member, and nobody decides on their own access. It is then kept.") {
		t.Errorf("no deadline note: %s", s)
	}
	for _, id := range []string{ActionReviewKeep, ActionReviewRemove, ActionReviewKeepRest} {
		if strings.Contains(s, `"`+id+`"`) {
			t.Errorf("page offers %s though only the member could answer: %s", id, s)
		}
	}
	if got := KeptRemaining(3, 0, true).Text; got != "Nobody else was left to answer in access review #3. Your own membership is left to another owner or an admin: nobody decides on their own access." {
		t.Errorf("keep remaining reply %q", got)
	}
}
