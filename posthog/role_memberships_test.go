package posthog_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

func TestRoleMembershipsCRUD(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	role := e.srv.AddRole("Eng")
	alice := e.srv.AddUser("alice@example.com", "Alice", "A")
	bob := e.srv.AddUser("bob@example.com", "Bob", "B")

	m, err := e.c.RoleMemberships.Create(c, role.ID, alice.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if m.RoleID != role.ID || m.User.UUID != alice.UUID || m.User.Email != "alice@example.com" ||
		m.OrganizationMember == nil || m.OrganizationMember.Level != posthog.LevelMember || m.OrganizationMember.LastLogin != nil || m.JoinedAt.IsZero() {
		t.Errorf("membership = %+v", m)
	}
	if _, err := e.c.RoleMemberships.Create(c, role.ID, strings.ToUpper(bob.UUID)); err != nil {
		t.Fatal(err)
	}

	all, err := e.c.RoleMemberships.ListAll(c, role.ID)
	if err != nil || len(all) != 2 || all[0].User.UUID != alice.UUID || all[1].User.UUID != bob.UUID {
		t.Fatalf("list = %+v, %v", all, err)
	}
	got, err := e.c.RoleMemberships.Get(c, role.ID, m.ID)
	if err != nil || got.ID != m.ID {
		t.Errorf("get = %+v, %v", got, err)
	}
	found, err := e.c.RoleMemberships.Find(c, role.ID, bob.UUID)
	if err != nil || found.User.UUID != bob.UUID {
		t.Errorf("find = %+v, %v", found, err)
	}

	if err := e.c.RoleMemberships.Delete(c, role.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	if e.srv.HasMember(role.ID, alice.UUID) {
		t.Error("alice is still a member")
	}
	found, err = e.c.RoleMemberships.Find(c, role.ID, alice.UUID)
	if found != nil || !posthog.IsNotFound(err) {
		t.Errorf("find after delete = %+v, %v", found, err)
	}
	var nf *posthog.NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, posthog.ErrNotFound) {
		t.Errorf("want a NotFoundError, got %T", err)
	}
}

func TestRoleMembershipsErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	role := e.srv.AddRole("Eng")
	alice := e.srv.AddUser("alice@example.com", "Alice", "A")
	outsider := e.srv.AddUserOutsideOrganization("o@example.com", "O", "P")
	e.srv.AddMembership(role.ID, alice.UUID)
	missing := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"

	type want struct {
		status                                        int // 0: rejected client-side
		detail                                        string
		notFound, validation, conflict, alreadyMember bool
	}
	tests := []struct {
		name string
		call func() error
		want want
	}{
		{"already a member (400, not 409)", func() error { _, err := e.c.RoleMemberships.Create(c, role.ID, alice.UUID); return err },
			want{status: 400, detail: "User is already part of the role.", conflict: true, alreadyMember: true}},
		{"role does not exist", func() error { _, err := e.c.RoleMemberships.Create(c, missing, alice.UUID); return err },
			want{status: 400, detail: "Role does not exist.", validation: true}},
		{"user does not exist", func() error { _, err := e.c.RoleMemberships.Create(c, role.ID, missing); return err },
			want{status: 400, detail: "User does not exist.", validation: true}},
		{"user of another org", func() error { _, err := e.c.RoleMemberships.Create(c, role.ID, outsider.UUID); return err },
			want{status: 400, detail: "User does not exist.", validation: true}},
		{"get unknown", func() error { _, err := e.c.RoleMemberships.Get(c, role.ID, missing); return err },
			want{status: 404, detail: "Not found.", notFound: true}},
		{"delete unknown", func() error { return e.c.RoleMemberships.Delete(c, role.ID, missing) },
			want{status: 404, detail: "Not found.", notFound: true}},
		{"find absent", func() error { _, err := e.c.RoleMemberships.Find(c, role.ID, missing); return err },
			want{notFound: true}},
		{"invalid user uuid", func() error { _, err := e.c.RoleMemberships.Create(c, role.ID, "alice"); return err },
			want{validation: true}},
		{"invalid role id", func() error { _, err := e.c.RoleMemberships.Create(c, "eng", alice.UUID); return err },
			want{validation: true}},
		{"invalid membership id", func() error { return e.c.RoleMemberships.Delete(c, role.ID, "x") },
			want{validation: true}},
		{"list with invalid role id", func() error { _, err := e.c.RoleMemberships.ListAll(c, "eng"); return err },
			want{validation: true}},
		{"find with invalid user uuid", func() error { _, err := e.c.RoleMemberships.Find(c, role.ID, "{"+alice.UUID+"}"); return err },
			want{validation: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.ResetCalls()
			err := tc.call()
			if err == nil {
				t.Fatal("expected an error")
			}
			var apiErr *posthog.APIError
			isAPI := errors.As(err, &apiErr)
			switch {
			case tc.want.status != 0 && (!isAPI || apiErr.StatusCode != tc.want.status || apiErr.Detail != tc.want.detail):
				t.Fatalf("err = %v, want %d %q", err, tc.want.status, tc.want.detail)
			case tc.want.status == 0 && tc.want.validation && (isAPI || len(e.srv.Calls()) != 0):
				t.Fatalf("err = %v after %d calls, want a client-side rejection", err, len(e.srv.Calls()))
			}
			if posthog.IsNotFound(err) != tc.want.notFound || posthog.IsValidation(err) != tc.want.validation ||
				posthog.IsConflict(err) != tc.want.conflict || posthog.IsAlreadyMember(err) != tc.want.alreadyMember {
				t.Errorf("helpers: notFound=%v validation=%v conflict=%v alreadyMember=%v for %v",
					posthog.IsNotFound(err), posthog.IsValidation(err), posthog.IsConflict(err), posthog.IsAlreadyMember(err), err)
			}
		})
	}

	t.Run("list of an unknown role is empty", func(t *testing.T) {
		ms, err := e.c.RoleMemberships.ListAll(c, missing)
		if err != nil || len(ms) != 0 {
			t.Errorf("got %v, %v", ms, err)
		}
	})
}

// TestMembershipCreateTimedOutAfterApply is the case the bot cares most about: PostHog
// applied the create but the client never saw the answer. The retry must find the membership
// instead of creating a second one or failing with "already a member".
func TestMembershipCreateTimedOutAfterApply(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*posthogtest.Server)
		hc     *http.Client
	}{
		{"client timeout", func(s *posthogtest.Server) { s.ApplyThenTimeoutNext(1) }, &http.Client{Timeout: 300 * time.Millisecond}},
		{"connection dropped", func(s *posthogtest.Server) { s.ApplyThenDropNext(1) }, &http.Client{Timeout: 5 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, posthog.WithHTTPClient(tc.hc))
			role := e.srv.AddRole("Eng")
			alice := e.srv.AddUser("alice@example.com", "Alice", "A")
			tc.inject(e.srv)

			m, err := e.c.RoleMemberships.Create(ctx(t), role.ID, alice.UUID)
			if err != nil {
				t.Fatal(err)
			}
			ms := e.srv.Memberships(role.ID)
			if len(ms) != 1 {
				t.Fatalf("%d memberships, want exactly 1", len(ms))
			}
			if m.ID != ms[0].ID || m.User.UUID != alice.UUID {
				t.Errorf("returned %+v, server has %+v", m, ms[0])
			}
			var seq []string
			for _, call := range e.srv.Calls() {
				seq = append(seq, fmt.Sprintf("%s %s dropped=%v", call.Method, strings.TrimPrefix(call.Path, e.orgPath("roles/"+role.ID+"/")), call.Dropped))
			}
			// The look-up reads the role (one call, whatever its size), not the memberships' pages.
			want := []string{"POST role_memberships/ dropped=true", "GET  dropped=false"}
			if strings.Join(seq, "\n") != strings.Join(want, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(seq, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestMembershipCreate500NotAppliedIsRetried(t *testing.T) {
	e := newEnv(t)
	role := e.srv.AddRole("Eng")
	alice := e.srv.AddUser("alice@example.com", "Alice", "A")
	e.srv.FailNext(1, 500)
	if _, err := e.c.RoleMemberships.Create(ctx(t), role.ID, alice.UUID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Memberships(role.ID)); n != 1 {
		t.Errorf("%d memberships", n)
	}
	want := "role_memberships.create:500,roles.get:200,role_memberships.create:201"
	if got := strings.Join(e.obs.statuses(), ","); got != want {
		t.Errorf("attempts = %s, want %s", got, want)
	}
}

func TestMembershipCreateGivesUpAfterBound(t *testing.T) {
	e := newEnv(t, posthog.WithRetry(3, 10*time.Second))
	role := e.srv.AddRole("Eng")
	alice := e.srv.AddUser("alice@example.com", "Alice", "A")
	e.srv.FailNext(100, 503)
	_, err := e.c.RoleMemberships.Create(ctx(t), role.ID, alice.UUID)
	var re *posthog.RetryError
	if !errors.As(err, &re) || !posthog.IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
	if e.srv.HasMember(role.ID, alice.UUID) {
		t.Error("created despite every attempt failing")
	}
}

func TestMembershipDeleteLostResponseIsSuccess(t *testing.T) {
	e := newEnv(t)
	role := e.srv.AddRole("Eng")
	alice := e.srv.AddUser("alice@example.com", "Alice", "A")
	m := e.srv.AddMembership(role.ID, alice.UUID)
	e.srv.ApplyThenDropNext(1)
	if err := e.c.RoleMemberships.Delete(ctx(t), role.ID, m.ID); err != nil {
		t.Fatalf("delete = %v, want success (the first attempt applied it)", err)
	}
	if e.srv.HasMember(role.ID, alice.UUID) {
		t.Error("still a member")
	}
	want := "role_memberships.delete:0,role_memberships.delete:404"
	if got := strings.Join(e.obs.statuses(), ","); got != want {
		t.Errorf("attempts = %s, want %s", got, want)
	}
}

func TestMembershipPagination(t *testing.T) {
	e := newEnv(t, posthog.WithPageSize(3))
	role := e.srv.AddRole("Eng")
	for i := range 10 {
		u := e.srv.AddUser(fmt.Sprintf("u%d@example.com", i), "U", fmt.Sprint(i))
		e.srv.AddMembership(role.ID, u.UUID)
	}
	ms, err := e.c.RoleMemberships.ListAll(ctx(t), role.ID)
	if err != nil || len(ms) != 10 {
		t.Fatalf("got %d, %v", len(ms), err)
	}
	for i, m := range ms {
		if m.User.Email != fmt.Sprintf("u%d@example.com", i) {
			t.Errorf("order: %d is %s", i, m.User.Email)
		}
	}
	if n := len(e.srv.CallsMatching("GET", e.orgPath("roles/"+role.ID+"/role_memberships"))); n != 4 {
		t.Errorf("pages = %d, want 4", n)
	}
}
