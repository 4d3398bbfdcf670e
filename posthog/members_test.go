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

// memberCalls names each members call the fake received: "email", "search" or "scan".
func memberCalls(t *testing.T, e *env) []string {
	t.Helper()
	var kinds []string
	for _, call := range e.srv.CallsMatching("GET", e.orgPath("members")) {
		q, _ := url.ParseQuery(call.Query)
		switch {
		case q.Has("email"):
			kinds = append(kinds, "email")
		case q.Has("search"):
			kinds = append(kinds, "search")
		default:
			kinds = append(kinds, "scan")
		}
	}
	return kinds
}

func TestFindByEmail(t *testing.T) {
	tests := []struct {
		name      string
		stored    string
		query     string
		wantCalls []string
	}{
		{"exact", "alice@example.com", "alice@example.com", []string{"email"}},
		{"exact with spaces", "alice@example.com", "  alice@example.com ", []string{"email"}},
		{"case differs: search", "Alice.Smith@Example.com", "alice.smith@example.com", []string{"email", "search"}},
		{"upper-case query", "bob@example.com", "BOB@EXAMPLE.COM", []string{"email", "search"}},
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
			if got := memberCalls(t, e); strings.Join(got, ",") != strings.Join(tc.wantCalls, ",") {
				t.Errorf("calls = %v, want %v", got, tc.wantCalls)
			}
			for _, call := range e.srv.CallsMatching("GET", e.orgPath("members")) {
				q, _ := url.ParseQuery(call.Query)
				if v := q.Get("email") + q.Get("search"); v != strings.TrimSpace(tc.query) {
					t.Errorf("filter value %q, want the trimmed query", v)
				}
			}
		})
	}

	t.Run("two calls in a 10,000-member organization", func(t *testing.T) {
		e := newEnv(t)
		for i := range 5000 {
			e.srv.AddUser(fmt.Sprintf("person%04d@example.com", i), "Person", fmt.Sprint(i))
		}
		want := e.srv.AddUser("Zed.Last@Example.com", "Zed", "Last")
		for i := range 5000 {
			e.srv.AddUser(fmt.Sprintf("later%04d@example.com", i), "Later", fmt.Sprint(i))
		}
		e.srv.ResetCalls()
		m, err := e.c.Members.FindByEmail(ctx(t), "zed.last@example.com")
		if err != nil || m.User.UUID != want.UUID {
			t.Fatalf("got %+v, %v", m, err)
		}
		if got := memberCalls(t, e); strings.Join(got, ",") != "email,search" {
			t.Errorf("calls = %v", got)
		}
		e.srv.ResetCalls()
		if _, err := e.c.Members.FindByEmail(ctx(t), "nobody@example.com"); !posthog.IsNotFound(err) {
			t.Errorf("nobody: %v", err)
		}
		if n := len(e.srv.Calls()); n != 2 {
			t.Errorf("nobody: %d calls, want 2", n)
		}
	})
	t.Run("substring matches are not taken", func(t *testing.T) {
		e := newEnv(t)
		e.srv.AddUser("jimbob@example.com", "Jim", "Bob")
		e.srv.AddUser("bob@example.com.au", "Bob", "Au")
		e.srv.AddUser("x@y.z", "bob@example.com", "") // the name matches the search too
		if m, err := e.c.Members.FindByEmail(ctx(t), "BOB@example.com"); !posthog.IsNotFound(err) {
			t.Fatalf("got %+v, %v", m, err)
		}
		want := e.srv.AddUser("Bob@Example.com", "Bob", "B")
		if m, err := e.c.Members.FindByEmail(ctx(t), "BOB@example.com"); err != nil || m.User.UUID != want.UUID {
			t.Errorf("got %+v, %v", m, err)
		}
	})
	t.Run("several differing by case: exact, else newest", func(t *testing.T) {
		e := newEnv(t)
		older := e.srv.AddUser("Dup@example.com", "Old", "")
		newer := e.srv.AddUser("DUP@example.com", "New", "")
		if m, err := e.c.Members.FindByEmail(ctx(t), "Dup@example.com"); err != nil || m.User.UUID != older.UUID {
			t.Errorf("exact: %+v, %v", m, err)
		}
		if m, err := e.c.Members.FindByEmail(ctx(t), "dup@example.com"); err != nil || m.User.UUID != newer.UUID {
			t.Errorf("folded: %+v, %v", m, err)
		}
	})
	t.Run("email longer than the search limit", func(t *testing.T) {
		e := newEnv(t)
		long := strings.Repeat("a", 230) + "@Example.com"
		want := e.srv.AddUser(long, "Long", "")
		e.srv.ResetCalls()
		m, err := e.c.Members.FindByEmail(ctx(t), strings.ToLower(long))
		if err != nil || m.User.UUID != want.UUID {
			t.Fatalf("got %+v, %v", m, err)
		}
		calls := e.srv.CallsMatching("GET", e.orgPath("members"))
		q, _ := url.ParseQuery(calls[len(calls)-1].Query)
		if len(q.Get("search")) != 200 {
			t.Errorf("search= has %d characters", len(q.Get("search")))
		}
	})
	t.Run("too many search matches is an error, not a scan", func(t *testing.T) {
		e := newEnv(t)
		for i := range 501 {
			e.srv.AddUser(fmt.Sprintf("%dq@e.co%d", i, i), "Q", "")
		}
		e.srv.ResetCalls()
		_, err := e.c.Members.FindByEmail(ctx(t), "Q@E.CO")
		if err == nil || posthog.IsNotFound(err) || !strings.Contains(err.Error(), "501 members match") {
			t.Errorf("err = %v", err)
		}
		if n := len(e.srv.Calls()); n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
	})
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

func TestMembersSearch(t *testing.T) {
	e := newEnv(t, posthog.WithPageSize(2))
	for i := range 5 {
		e.srv.AddUser(fmt.Sprintf("eng%d@example.com", i), "Engineer", fmt.Sprint(i))
	}
	e.srv.AddUser("sales@example.com", "Sam", "Sales")
	var got []string
	for m, err := range e.c.Members.Search(ctx(t), "  ENG ") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.User.Email)
	}
	// Newest first, all pages followed.
	if strings.Join(got, ",") != "eng4@example.com,eng3@example.com,eng2@example.com,eng1@example.com,eng0@example.com" {
		t.Errorf("search = %v", got)
	}
	calls := e.srv.CallsMatching("GET", e.orgPath("members"))
	if len(calls) != 3 {
		t.Errorf("%d pages", len(calls))
	}
	for _, c := range calls {
		if q, _ := url.ParseQuery(c.Query); q.Get("search") != "ENG" {
			t.Errorf("search= %q", q.Get("search"))
		}
	}
	e.srv.ResetCalls()
	for _, q := range []string{" ", strings.Repeat("x", 201)} {
		for _, err := range e.c.Members.Search(ctx(t), q) {
			if !posthog.IsValidation(err) {
				t.Errorf("search %q: %v", q, err)
			}
		}
	}
	if len(e.srv.Calls()) != 0 {
		t.Error("an invalid search called the server")
	}
}

func TestMemberShape(t *testing.T) {
	e := newEnv(t)
	u := e.srv.AddUser("admin@example.com", "Ad", "Min")
	e.srv.SetUserLevel(u.UUID, posthog.LevelAdmin)
	login := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	e.srv.SetLastLogin(u.UUID, login)
	e.srv.SetTwoFactor(u.UUID, true)
	e.srv.SetSocialAuth(u.UUID, true)
	m, err := e.c.Members.FindByEmail(ctx(t), "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m.Level != posthog.LevelAdmin || m.User.FirstName != "Ad" || m.User.LastName != "Min" || m.User.ID == 0 ||
		m.LastLogin == nil || !m.LastLogin.Equal(login) || m.ID == "" || m.JoinedAt.IsZero() || m.IsGuest == nil ||
		!m.Is2FAEnabled || !m.HasSocialAuth {
		t.Errorf("member = %+v", m)
	}
	never := e.srv.AddUser("new@example.com", "New", "")
	m, err = e.c.Members.FindByEmail(ctx(t), never.Email)
	if err != nil || m.LastLogin != nil || m.Is2FAEnabled || m.HasSocialAuth {
		t.Errorf("never logged in = %+v, %v", m, err)
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
