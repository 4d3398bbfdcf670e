package posthog_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

func TestMembersPaginationOverManyPages(t *testing.T) {
	tests := []struct {
		name     string
		pageSize int
		users    int
		pages    int
	}{
		{"350 members, default limit", 100, 350, 4}, // 351 with the key's owner
		{"small pages", 7, 40, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, posthog.WithPageSize(tc.pageSize))
			for i := range tc.users {
				e.srv.AddUser(fmt.Sprintf("user%03d@example.com", i), "User", fmt.Sprint(i))
			}
			all, err := e.c.Members.ListAll(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != tc.users+1 {
				t.Fatalf("got %d members, want %d", len(all), tc.users+1)
			}
			seen := map[string]bool{}
			for _, m := range all {
				if seen[m.User.UUID] {
					t.Fatalf("duplicate %s", m.User.Email)
				}
				seen[m.User.UUID] = true
			}
			calls := e.srv.CallsMatching("GET", e.orgPath("members"))
			if len(calls) != tc.pages {
				t.Fatalf("fetched %d pages, want %d", len(calls), tc.pages)
			}
			for i, call := range calls {
				q, _ := url.ParseQuery(call.Query)
				if q.Get("limit") != fmt.Sprint(tc.pageSize) {
					t.Errorf("page %d limit = %q", i, q.Get("limit"))
				}
				if want := fmt.Sprint(i * tc.pageSize); i > 0 && q.Get("offset") != want {
					t.Errorf("page %d offset = %q, want %s (from next)", i, q.Get("offset"), want)
				}
			}
		})
	}
}

func TestMembersIteratorStopsEarly(t *testing.T) {
	e := newEnv(t, posthog.WithPageSize(5))
	for i := range 30 {
		e.srv.AddUser(fmt.Sprintf("u%d@example.com", i), "U", "")
	}
	n := 0
	for m, err := range e.c.Members.List(ctx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		_ = m
		n++
		if n == 3 {
			break
		}
	}
	if calls := len(e.srv.Calls()); calls != 1 {
		t.Errorf("%d page fetches after breaking on page 1", calls)
	}
}

func TestMembersIteratorYieldsErrorOnce(t *testing.T) {
	e := newEnv(t, posthog.WithPageSize(2), posthog.WithRetry(1, time.Second))
	for i := range 5 {
		e.srv.AddUser(fmt.Sprintf("u%d@example.com", i), "U", "")
	}
	n, errs := 0, 0
	first := true
	for _, err := range e.c.Members.List(ctx(t)) {
		if first {
			e.srv.FailNext(1, 500) // fail the second page
			first = false
		}
		if err != nil {
			errs++
			continue
		}
		n++
	}
	if n != 2 || errs != 1 {
		t.Errorf("got %d members and %d errors, want 2 and 1", n, errs)
	}
}

func TestFindByEmail(t *testing.T) {
	tests := []struct {
		name      string
		stored    string
		query     string
		wantCalls []string // query string of each members call: "email" or "scan"
	}{
		{"exact", "alice@example.com", "alice@example.com", []string{"email"}},
		{"exact with spaces", "alice@example.com", "  alice@example.com ", []string{"email"}},
		{"case differs: fallback scan", "Alice.Smith@Example.com", "alice.smith@example.com", []string{"email", "scan", "scan"}},
		{"upper-case query", "bob@example.com", "BOB@EXAMPLE.COM", []string{"email", "scan", "scan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, posthog.WithPageSize(4))
			for i := range 5 {
				e.srv.AddUser(fmt.Sprintf("filler%d@example.com", i), "F", "")
			}
			want := e.srv.AddUser(tc.stored, "Target", "T")
			e.srv.ResetCalls()

			m, err := e.c.Members.FindByEmail(ctx(t), tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if m.User.UUID != want.UUID {
				t.Errorf("found %s, want %s", m.User.Email, tc.stored)
			}
			var kinds []string
			for _, call := range e.srv.CallsMatching("GET", e.orgPath("members")) {
				q, _ := url.ParseQuery(call.Query)
				if q.Has("email") {
					kinds = append(kinds, "email")
					if q.Get("email") != strings.TrimSpace(tc.query) {
						t.Errorf("email= %q", q.Get("email"))
					}
				} else {
					kinds = append(kinds, "scan")
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.wantCalls, ",") {
				t.Errorf("calls = %v, want %v", kinds, tc.wantCalls)
			}
		})
	}

	t.Run("nobody", func(t *testing.T) {
		e := newEnv(t)
		e.srv.AddUser("alice@example.com", "A", "")
		m, err := e.c.Members.FindByEmail(ctx(t), "carol@example.com")
		if m != nil || !posthog.IsNotFound(err) {
			t.Errorf("got %+v, %v", m, err)
		}
	})
	t.Run("inactive user is not found", func(t *testing.T) {
		e := newEnv(t)
		u := e.srv.AddUser("gone@example.com", "G", "")
		e.srv.DeactivateUser(u.UUID)
		if _, err := e.c.Members.FindByEmail(ctx(t), "gone@example.com"); !posthog.IsNotFound(err) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("blank", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.c.Members.FindByEmail(ctx(t), "  "); !posthog.IsValidation(err) {
			t.Errorf("err = %v", err)
		}
		if len(e.srv.Calls()) != 0 {
			t.Error("called the server")
		}
	})
}

func TestMemberShape(t *testing.T) {
	e := newEnv(t)
	u := e.srv.AddUser("admin@example.com", "Ad", "Min")
	e.srv.SetUserLevel(u.UUID, posthog.LevelAdmin)
	login := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	e.srv.SetLastLogin(u.UUID, login)
	m, err := e.c.Members.FindByEmail(ctx(t), "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m.Level != posthog.LevelAdmin || m.User.FirstName != "Ad" || m.User.LastName != "Min" || m.User.ID == 0 ||
		m.LastLogin == nil || !m.LastLogin.Equal(login) || m.ID == "" || m.JoinedAt.IsZero() || m.IsGuest == nil {
		t.Errorf("member = %+v", m)
	}
}

func TestMemberTwoFactor(t *testing.T) {
	e := newEnv(t)
	on := e.srv.AddUser("on@example.com", "On", "")
	e.srv.AddUser("off@example.com", "Off", "")
	e.srv.SetTwoFactor(on.UUID, true)
	for email, want := range map[string]bool{"on@example.com": true, "off@example.com": false} {
		m, err := e.c.Members.FindByEmail(ctx(t), email)
		if err != nil {
			t.Fatal(err)
		}
		if m.Is2FAEnabled != want {
			t.Errorf("%s: is_2fa_enabled = %v, want %v", email, m.Is2FAEnabled, want)
		}
	}
}

func TestMembersNeedScope(t *testing.T) {
	e := newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyScopes(posthogtest.ScopeOrganizationRead, posthogtest.ScopeOrganizationWrite)})
	_, err := e.c.Members.ListAll(ctx(t))
	if !posthog.IsAuth(err) || !strings.Contains(err.Error(), "organization_member:read") {
		t.Errorf("err = %v", err)
	}
}
