package posthogdir_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/workflow"
)

func newDirectory(t *testing.T, key string) (*posthogdir.Directory, *posthogtest.Server) {
	t.Helper()
	ph := posthogtest.NewServer()
	t.Cleanup(ph.Close)
	if key == "" {
		key = ph.APIKey()
	}
	c, err := posthog.NewClient(ph.URL(), key, ph.OrganizationID(), posthog.WithRateLimit(0, 0),
		posthog.WithRetry(2, time.Second), posthog.WithBackoff(time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return posthogdir.New(c), ph
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	d, ph := newDirectory(t, "")
	role := ph.AddRole("Engineering")
	alice := ph.AddUser("Alice@Example.com", "Alice", "Nguyen")

	m, err := d.FindMember(ctx, "alice@example.COM")
	if err != nil || m.UUID != alice.UUID || m.Name != "Alice Nguyen" {
		t.Fatalf("FindMember = %+v, %v", m, err)
	}
	if _, err := d.FindMember(ctx, "nobody@example.com"); workflow.ErrorCode(err) != workflow.ENOTFOUND {
		t.Fatalf("unknown member: %v", err)
	}
	id, already, err := d.AddRoleMember(ctx, role.ID, alice.UUID)
	if err != nil || id == "" || already {
		t.Fatalf("AddRoleMember = %q, %v, %v", id, already, err)
	}
	// Adding again is success with the same membership: PostHog's
	// "already part of the role" 400 is not an error here.
	again, already, err := d.AddRoleMember(ctx, role.ID, alice.UUID)
	if err != nil || again != id || !already {
		t.Fatalf("second AddRoleMember = %q, %v, %v (first %q)", again, already, err, id)
	}
	roles, err := d.Roles(ctx)
	if err != nil || len(roles) != 1 || roles[0].Members != 1 || roles[0].Name != "Engineering" ||
		len(roles[0].MemberList) != 1 || roles[0].MemberList[0].MembershipID != id || roles[0].MemberList[0].Email != "Alice@Example.com" {
		t.Fatalf("Roles = %+v, %v", roles, err)
	}
	found, ok, err := d.FindRoleMember(ctx, role.ID, alice.UUID)
	if err != nil || !ok || found.MembershipID != id {
		t.Fatalf("FindRoleMember = %+v, %v, %v", found, ok, err)
	}
	if existed, err := d.RemoveRoleMember(ctx, role.ID, id); err != nil || !existed {
		t.Fatalf("RemoveRoleMember = %v, %v", existed, err)
	}
	if existed, err := d.RemoveRoleMember(ctx, role.ID, id); err != nil || existed {
		t.Fatalf("removing a membership already gone: %v, %v", existed, err)
	}
	if _, ok, err := d.FindRoleMember(ctx, role.ID, alice.UUID); err != nil || ok {
		t.Fatalf("FindRoleMember after removal = %v, %v", ok, err)
	}
	if ph.HasMember(role.ID, alice.UUID) {
		t.Fatal("still a member")
	}
}

func TestDirectoryErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		key       string
		setup     func(ph *posthogtest.Server)
		temporary bool
		say       string
	}{
		{"bad key", "phx_wrong", nil, false, "refused the bot's API key"},
		{"server errors", "", func(ph *posthogtest.Server) { ph.FailNext(10, 500) }, true, "right now (HTTP 500)"},
		{"throttled", "", func(ph *posthogtest.Server) { ph.ThrottleNext(10, 30*time.Second) }, true, "right now (HTTP 429)"},
		{"user gone", "", nil, false, "User does not exist."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ph := newDirectory(t, c.key)
			role := ph.AddRole("Engineering")
			uuid := "0190b3e1-8b8a-7000-8000-00000000abcd" // no such user
			if c.setup != nil {
				c.setup(ph)
			}
			_, _, err := d.AddRoleMember(ctx, role.ID, uuid)
			if err == nil {
				t.Fatal("no error")
			}
			if workflow.IsTemporary(err) != c.temporary {
				t.Fatalf("temporary = %v for %v", workflow.IsTemporary(err), err)
			}
			if !strings.Contains(err.Error(), c.say) {
				t.Fatalf("error %q does not say %q", err, c.say)
			}
			if strings.Contains(err.Error(), ph.APIKey()) || strings.Contains(err.Error(), "phx_wrong") {
				t.Fatalf("the key leaked: %v", err)
			}
		})
	}
}

// An access review's members carry last_login and is_2fa_enabled from the
// organization members list, joined to the role's memberships.
func TestRoleMembersDetailed(t *testing.T) {
	ctx := context.Background()
	d, ph := newDirectory(t, "")
	role := ph.AddRole("Engineering")
	empty := ph.AddRole("Empty")
	alice := ph.AddUser("alice@example.com", "Alice", "Nguyen")
	bob := ph.AddUser("bob@example.com", "Bob", "")
	ph.AddUser("carol@example.com", "Carol", "") // not in the role
	login := time.Date(2026, 10, 1, 8, 30, 0, 0, time.UTC)
	ph.SetLastLogin(alice.UUID, login)
	ph.SetTwoFactor(alice.UUID, true)
	ma := ph.AddMembership(role.ID, alice.UUID)
	ph.AddMembership(role.ID, bob.UUID)

	got, err := d.RoleMembersDetailed(ctx, role.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("RoleMembersDetailed = %+v, %v", got, err)
	}
	byEmail := map[string]workflow.ReviewMember{}
	for _, m := range got {
		byEmail[m.Email] = m
	}
	a, b := byEmail["alice@example.com"], byEmail["bob@example.com"]
	if a.MembershipID != ma.ID || a.Name != "Alice Nguyen" || !a.LastLogin.Equal(login) || a.TwoFactor == nil || !*a.TwoFactor {
		t.Errorf("alice = %+v", a)
	}
	if !b.LastLogin.IsZero() || b.TwoFactor == nil || *b.TwoFactor {
		t.Errorf("bob (never logged in, no 2FA) = %+v", b)
	}
	// A 250-member role is one call (the role embeds its memberships), plus
	// the organization members list's pages.
	big := ph.AddRole("Big")
	for i := range 250 {
		ph.AddMembership(big.ID, ph.AddUser(fmt.Sprintf("m%03d@example.com", i), "M", "").UUID)
	}
	ph.ResetCalls()
	if got, err := d.RoleMembersDetailed(ctx, big.ID); err != nil || len(got) != 250 {
		t.Fatalf("big role: %d members, %v", len(got), err)
	}
	if n := len(ph.Calls()); n != 1+3 {
		t.Errorf("a 250-member role in a 253-member organization took %d calls, want 4 (the role, 3 pages of members)", n)
	}
	ph.ResetCalls()
	if got, err := d.RoleMembersDetailed(ctx, empty.ID); err != nil || len(got) != 0 {
		t.Fatalf("empty role: %+v, %v", got, err)
	}
	if n := len(ph.Calls()); n != 1 {
		t.Errorf("an empty role took %d calls, want 1 (no members list)", n)
	}
	// A role deleted meanwhile has no members, as the role list would say.
	if got, err := d.RoleMembersDetailed(ctx, "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"); err != nil || len(got) != 0 {
		t.Fatalf("deleted role: %+v, %v", got, err)
	}
}
