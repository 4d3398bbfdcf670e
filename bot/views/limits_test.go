package views

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// longRequest is a request with the longest reason and role name people
// can give, full of characters that need escaping.
func longRequest(id int64, state workflow.State) *workflow.Request {
	return &workflow.Request{ID: id, Kind: workflow.KindAdd, State: state, RequesterID: "U0ALICE", SubjectID: "U0ALICE",
		RoleID: fmt.Sprint("role-", id), RoleName: strings.Repeat("R&D <ops> ", 20), Reason: strings.Repeat("because <!channel> & more ", 40),
		Duration: time.Hour, ApprovalsRequired: 1, CreatedAt: time.Unix(1700000000, 0), ExpiresAt: time.Unix(1700300000, 0)}
}

func checkLimits(t *testing.T, what string, blocks []slack.Block) string {
	t.Helper()
	if len(blocks) > 50 {
		t.Errorf("%s: %d blocks", what, len(blocks))
	}
	if n := TextChars(blocks...); n > MaxMessageChars {
		t.Errorf("%s: %d characters of text", what, n)
	}
	js, _ := json.Marshal(blocks)
	return string(js)
}

// TestListsStayWithinSlackLimits: `/access list`, `pending`, `roles` and
// App Home never exceed 50 blocks or 12,000 characters, and say how much
// they show.
func TestListsStayWithinSlackLimits(t *testing.T) {
	var reqs, pending, overdue []*workflow.Request
	for i := int64(1); i <= 63; i++ {
		reqs = append(reqs, longRequest(i, workflow.StateDenied))
		pending = append(pending, longRequest(100+i, workflow.StatePending))
		o := longRequest(200+i, workflow.StateCompleted)
		o.OverdueSince = time.Unix(1700000000, 0)
		overdue = append(overdue, o)
	}
	var roles []workflow.RoleInfo
	for i := 0; i < 400; i++ {
		roles = append(roles, workflow.RoleInfo{Role: workflow.Role{ID: fmt.Sprint(i), Name: fmt.Sprintf("Team %03d & <friends> of the data platform", i), Members: i},
			Owners: []string{"U0BOB", "U0CAROL", "U0DAVE"}, Rules: workflow.Rules{ApprovalsRequired: 2, MaxDuration: time.Hour}})
	}
	if js := checkLimits(t, "list", RequestList(reqs).Blocks); !strings.Contains(js, "Showing your") {
		t.Errorf("list does not say what it shows: %.300s", js)
	}
	if js := checkLimits(t, "pending", PendingList(pending, overdue).Blocks); !strings.Contains(js, "of 63") {
		t.Errorf("pending does not say what it shows")
	}
	if js := checkLimits(t, "roles", RolesList(roles).Blocks); !strings.Contains(js, "of 400 roles") {
		t.Errorf("roles does not say what it shows")
	}
	home := Home(HomeInput{Mine: reqs, Pending: pending, Overdue: overdue})
	if js := checkLimits(t, "home", home.Blocks.BlockSet); !strings.Contains(js, "Showing") {
		t.Errorf("home does not say what it shows")
	}
	if js := checkLimits(t, "roles", RolesList(roles[:3]).Blocks); strings.Contains(js, "Showing") {
		t.Errorf("a short list says it is cut: %s", js)
	}
}

// TestTruncateKeepsEntitiesWhole: a cut never lands inside &amp; or a
// <…> sequence, nor inside a character.
func TestTruncateKeepsEntitiesWhole(t *testing.T) {
	for n := 2; n < 40; n++ {
		for _, s := range []string{
			Escape(strings.Repeat("a&b<c>", 10)),
			"hi <@U0BOB> and <!date^1700000000^{date}|x> " + strings.Repeat("x", 40),
			strings.Repeat("😀é", 30),
		} {
			got := truncate(s, n)
			body := strings.TrimSuffix(got, "…")
			if !strings.HasPrefix(s, body) {
				t.Fatalf("truncate(%q, %d) = %q is not a prefix", s, n, got)
			}
			if i := strings.LastIndexByte(body, '&'); i >= 0 && !strings.Contains(body[i:], ";") {
				t.Errorf("truncate(%q, %d) = %q splits an entity", s, n, got)
			}
			if i := strings.LastIndexByte(body, '<'); i >= 0 && !strings.Contains(body[i:], ">") {
				t.Errorf("truncate(%q, %d) = %q splits a <…> sequence", s, n, got)
			}
			if !json.Valid([]byte(fmt.Sprintf("%q", got))) || strings.ContainsRune(got, '\uFFFD') {
				t.Errorf("truncate(%q, %d) = %q splits a character", s, n, got)
			}
		}
	}
}

// TestRoleOptionsFitASocketFrame: 150 roles named with &<> give a
// typeahead answer under Slack's 20,480-byte frame, however Go escapes it.
func TestRoleOptionsFitASocketFrame(t *testing.T) {
	var roles []workflow.Role
	for i := 0; i < 150; i++ {
		roles = append(roles, workflow.Role{ID: fmt.Sprintf("0190a1b2-c3d4-7e5f-8a9b-%012d", i), Name: fmt.Sprintf("R&D <%03d> & <ops> && <<data>>", i)})
	}
	opts := RoleOptions(roles, "")
	js, _ := json.Marshal(opts)
	frame, _ := json.Marshal(map[string]any{"envelope_id": "0123456789abcdef0123456789abcdef01234567", "payload": opts})
	if len(frame) >= 20480 || len(js) > MaxOptionsBytes {
		t.Fatalf("answer %d bytes, frame %d", len(js), len(frame))
	}
	if len(opts.Options) < 20 {
		t.Errorf("only %d options", len(opts.Options))
	}
}

// TestFailureEscapesAndMentionsOnlyNamedUsers: a workflow error's words
// are escaped; only the users the workflow named become mentions.
func TestFailureEscapesAndMentionsOnlyNamedUsers(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &workflow.Error{Code: workflow.ECONFLICT,
		Message: "@U0BOB already owns <!channel> & <@U0EVE> @U0EVE.", Users: []string{"U0BOB"}})
	got := Failure(err).Text
	if !strings.Contains(got, "<@U0BOB> already owns &lt;!channel&gt; &amp; &lt;@U0EVE&gt; @U0EVE.") {
		t.Errorf("rendered %q", got)
	}
	if got := ErrorText(errors.New("boom")); strings.Contains(got, "boom") {
		t.Errorf("internal error shown: %q", got)
	}
}
