package posthogtest_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

// These tests cover what the fake learned for issue 9: scoped keys, the plan feature,
// "@current" following the key owner, the members list's order and filters, 503s and the
// sliding throttle windows, and organization integrations.

func TestKeyScopedProjects(t *testing.T) {
	r := newRaw(t, posthogtest.WithKeyScopedProjects(42))
	role := r.srv.AddRole("Eng")
	paths := []struct{ method, path string }{
		{"GET", "/api/organizations/"},
		{"GET", r.org("")},
		{"GET", "/api/organizations/@current/"},
		{"GET", r.org("roles/")},
		{"GET", r.org("roles/" + role.ID + "/")},
		{"POST", r.org("roles/")},
		{"GET", r.org("roles/" + role.ID + "/role_memberships/")},
		{"GET", r.org("members/")},
		{"GET", r.org("integrations/")},
		{"GET", r.org("role_external_references/")},
	}
	for _, p := range paths {
		wantError(t, r.do(p.method, p.path, map[string]any{"name": "x"}), 403, "authentication_error", "permission_denied", posthogtest.DetailScopedProjects, nil)
	}
	// The restriction is the key's: another key of the same organization works, and
	// lifting it makes the main key work again.
	other := r.srv.AddAPIKey(posthog.LevelAdmin)
	if got := r.doAuth("GET", r.org("roles/"), nil, "Bearer "+other); got.status != 200 {
		t.Errorf("unscoped key: %d %s", got.status, got.body)
	}
	r.srv.SetKeyScopedProjects(r.key)
	if got := r.do("GET", r.org("roles/"), nil); got.status != 200 {
		t.Errorf("after lifting: %d %s", got.status, got.body)
	}
	if len(r.srv.Roles()) != 1 {
		t.Error("a refused POST created a role")
	}
}

func TestKeyScopedOrganizations(t *testing.T) {
	r := newRaw(t)
	other := r.srv.AddOrganization("Other")
	r.srv.SetCurrentOrganization(other) // the owner belongs to both
	r.srv.SetCurrentOrganization(r.srv.OrganizationID())

	r.srv.SetKeyScopedOrganizations(r.key, strings.ToUpper(r.srv.OrganizationID()))
	for _, p := range []string{r.org(""), r.org("roles/"), "/api/organizations/@current/members/"} {
		if got := r.do("GET", p, nil); got.status != 200 {
			t.Errorf("GET %s: %d %s", p, got.status, got.body)
		}
	}
	detail := posthogtest.ScopedOrganizationDetail(other)
	if detail != "API key does not have access to the requested organization: ID "+other+"." {
		t.Errorf("detail = %q", detail)
	}
	wantError(t, r.do("GET", "/api/organizations/"+other+"/roles/", nil), 403, "authentication_error", "permission_denied", detail, nil)
	// "@current" is checked after it is resolved: once the owner switches, it is refused.
	r.srv.SetCurrentOrganization(other)
	wantError(t, r.do("GET", "/api/organizations/@current/", nil), 403, "authentication_error", "permission_denied", detail, nil)
	// An unknown organization is still a 404.
	wantError(t, r.do("GET", "/api/organizations/0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e/", nil), 404, "invalid_request", "not_found", posthogtest.DetailOrganizationNotFound, nil)

	r2 := newRaw(t, posthogtest.WithKeyScopedOrganizations("0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e"))
	wantError(t, r2.do("GET", r2.org("members/"), nil), 403, "authentication_error", "permission_denied", posthogtest.ScopedOrganizationDetail(r2.srv.OrganizationID()), nil)
}

func TestProductFeatures(t *testing.T) {
	r := newRaw(t)
	features := func() []any { return r.do("GET", r.org(""), nil).json(t)["available_product_features"].([]any) }
	got := features()
	if len(got) != 1 || got[0].(map[string]any)["key"] != "role_based_access" || got[0].(map[string]any)["name"] != "Role-based access" {
		t.Errorf("default features = %v", got)
	}
	r.srv.SetRoleBasedAccess(false)
	if got := features(); len(got) != 0 {
		t.Errorf("after removing: %v", got)
	}
	// PostHog has no plan check on memberships: still 201.
	role := r.srv.AddRole("Eng")
	u := r.srv.AddUser("a@example.com", "A", "")
	if got := r.do("POST", r.org("roles/"+role.ID+"/role_memberships/"), map[string]any{"user_uuid": u.UUID}); got.status != 201 {
		t.Errorf("membership without the feature: %d %s", got.status, got.body)
	}
	r.srv.SetRoleBasedAccess(true)
	r.srv.SetRoleBasedAccess(true)
	if got := features(); len(got) != 1 {
		t.Errorf("after adding twice: %v", got)
	}
	r.srv.SetProductFeatures(posthogtest.ProductFeature{Key: "sso_enforcement", Name: "SSO enforcement"})
	if got := features(); len(got) != 1 || got[0].(map[string]any)["key"] != "sso_enforcement" {
		t.Errorf("replaced: %v", got)
	}

	r2 := newRaw(t, posthogtest.WithoutRoleBasedAccess())
	if got := r2.do("GET", r2.org(""), nil).json(t)["available_product_features"]; len(got.([]any)) != 0 {
		t.Errorf("WithoutRoleBasedAccess: %v", got)
	}
}

func TestMembershipLevelFollowsKeyLevel(t *testing.T) {
	for _, level := range []int{posthog.LevelMember, posthog.LevelAdmin, posthog.LevelOwner} {
		r := newRaw(t, posthogtest.WithKeyLevel(level))
		if got := r.do("GET", r.org(""), nil).json(t)["membership_level"]; got != float64(level) {
			t.Errorf("level %d: membership_level = %v", level, got)
		}
	}
	// Another key's owner sees their own level.
	r := newRaw(t)
	member := r.srv.AddAPIKey(posthog.LevelMember)
	if got := r.doAuth("GET", r.org(""), nil, "Bearer "+member).json(t)["membership_level"]; got != float64(posthog.LevelMember) {
		t.Errorf("member key: %v", got)
	}
}

func TestCurrentFollowsKeyOwner(t *testing.T) {
	r := newRaw(t)
	mainRole := r.srv.AddRole("Main role")
	other := r.srv.AddOrganization("Other")
	if got := r.do("GET", "/api/organizations/@current/", nil).json(t)["id"]; got != r.srv.OrganizationID() {
		t.Fatalf("@current = %v", got)
	}
	r.srv.SetCurrentOrganization(other)
	if r.srv.CurrentOrganizationID() != other {
		t.Errorf("CurrentOrganizationID = %s", r.srv.CurrentOrganizationID())
	}
	org := r.do("GET", "/api/organizations/@current/", nil).json(t)
	if org["id"] != other || org["name"] != "Other" || org["membership_level"] != float64(posthog.LevelAdmin) {
		t.Errorf("@current after switching = %v", org)
	}
	if got := r.do("GET", "/api/organizations/@current/roles/", nil).json(t)["count"]; got != 0.0 {
		t.Errorf("@current roles = %v, want the other organization's (none)", got)
	}
	// The pinned id still reaches the main organization.
	if got := r.do("GET", r.org("roles/"+mainRole.ID+"/"), nil); got.status != 200 {
		t.Errorf("by id: %d", got.status)
	}
	// Creating an organization switches its creator to it, as PostHog does.
	created := r.do("POST", "/api/organizations/", map[string]any{"name": "Brand new"}).json(t)
	if got := r.do("GET", "/api/organizations/@current/", nil).json(t)["id"]; got != created["id"] {
		t.Errorf("@current after create = %v, want %v", got, created["id"])
	}
	// Deleting it (its creator is its owner) falls back to the first organization the
	// owner belongs to.
	if got := r.do("DELETE", "/api/organizations/"+created["id"].(string)+"/", nil); got.status != 204 {
		t.Fatalf("delete: %d %s", got.status, got.body)
	}
	if got := r.do("GET", "/api/organizations/@current/", nil).json(t)["id"]; got != r.srv.OrganizationID() {
		t.Errorf("@current after deleting it = %v", got)
	}
}

func TestMembersOrderAndFilters(t *testing.T) {
	r := newRaw(t)
	a := r.srv.AddUser("Alice.Smith@Example.com", "Alice", "Smith")
	b := r.srv.AddUser("bob@example.com", "Bob", "Jones")
	c := r.srv.AddUser("carol@other.org", "Carol", "Alicea")
	emails := func(path string) []string {
		t.Helper()
		got := r.do("GET", r.org(path), nil)
		if got.status != 200 {
			t.Fatalf("%s: %d %s", path, got.status, got.body)
		}
		var out []string
		for _, it := range got.json(t)["results"].([]any) {
			out = append(out, it.(map[string]any)["user"].(map[string]any)["email"].(string))
		}
		return out
	}
	check := func(path string, want ...string) {
		t.Helper()
		if got := emails(path); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	check("members/", "carol@other.org", "bob@example.com", "Alice.Smith@Example.com", "key-owner@posthog.test")
	check("members/?order=-joined_at", "carol@other.org", "bob@example.com", "Alice.Smith@Example.com", "key-owner@posthog.test")
	check("members/?order=joined_at", "key-owner@posthog.test", "Alice.Smith@Example.com", "bob@example.com", "carol@other.org")
	check("members/?limit=2&offset=2", "Alice.Smith@Example.com", "key-owner@posthog.test")
	check("members/?email=Alice.Smith@Example.com", "Alice.Smith@Example.com")
	check("members/?email=alice.smith@example.com")
	check("members/?search=ALICE", "carol@other.org", "Alice.Smith@Example.com") // last name Alicea, email
	check("members/?search=alice.smith%40example.COM", "Alice.Smith@Example.com")
	check("members/?search=jones", "bob@example.com")
	check("members/?search=example.com&order=joined_at", "Alice.Smith@Example.com", "bob@example.com")
	check("members/?search=nobody")
	wantError(t, r.do("GET", r.org("members/?search="+strings.Repeat("a", 201)), nil), 400, "validation_error", "max_length", "Ensure this field has no more than 200 characters.", "search")
	check("members/?search=" + strings.Repeat("a", 200))

	// updated_after keeps members updated strictly after it.
	time.Sleep(2 * time.Millisecond)
	cut := time.Now().UTC()
	time.Sleep(2 * time.Millisecond)
	r.srv.SetUserLevel(b.UUID, posthog.LevelAdmin)
	check("members/?updated_after="+url.QueryEscape(cut.Format(time.RFC3339Nano)), "bob@example.com")
	wantError(t, r.do("GET", r.org("members/?updated_after=yesterday"), nil), 400, "validation_error", "invalid", "Enter a valid date/time.", "updated_after")

	// Review fields.
	login := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.srv.SetLastLogin(a.UUID, login)
	r.srv.SetTwoFactor(a.UUID, true)
	r.srv.SetSocialAuth(c.UUID, true)
	byEmail := map[string]map[string]any{}
	for _, it := range r.do("GET", r.org("members/"), nil).json(t)["results"].([]any) {
		m := it.(map[string]any)
		byEmail[m["user"].(map[string]any)["email"].(string)] = m
	}
	if m := byEmail["Alice.Smith@Example.com"]; m["last_login"] != "2026-01-02T03:04:05Z" || m["is_2fa_enabled"] != true || m["has_social_auth"] != false {
		t.Errorf("alice = %v", m)
	}
	if m := byEmail["carol@other.org"]; m["last_login"] != nil || m["is_2fa_enabled"] != false || m["has_social_auth"] != true {
		t.Errorf("carol = %v", m)
	}
	r.srv.SetLastLogin(a.UUID, time.Time{})
	check("members/?email=Alice.Smith@Example.com", "Alice.Smith@Example.com")
	for _, it := range r.do("GET", r.org("members/?email=Alice.Smith@Example.com"), nil).json(t)["results"].([]any) {
		if it.(map[string]any)["last_login"] != nil {
			t.Error("last_login not cleared")
		}
	}
}

func TestUnavailableNext(t *testing.T) {
	r := newRaw(t)
	r.srv.UnavailableNext(2, 1500*time.Millisecond)
	for range 2 {
		got := r.do("POST", r.org("roles/"), map[string]any{"name": "Eng"})
		wantError(t, got, 503, "server_error", "service_unavailable", posthogtest.DetailServiceUnavailable, nil)
		if got.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", got.header.Get("Retry-After"))
		}
	}
	if len(r.srv.Roles()) != 0 {
		t.Error("a 503 applied the write")
	}
	if got := r.do("POST", r.org("roles/"), map[string]any{"name": "Eng"}); got.status != 201 {
		t.Errorf("third: %d", got.status)
	}
	r.srv.UnavailableNext(1, 0)
	if got := r.do("GET", r.org("roles/"), nil); got.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After for 0 = %q", got.header.Get("Retry-After"))
	}
}

// fakeClock is a settable clock for the throttle.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimitSlidingWindows(t *testing.T) {
	status := func(r *raw) (int, string) {
		got := r.do("GET", r.org("roles/"), nil)
		return got.status, got.header.Get("Retry-After")
	}
	t.Run("minute", func(t *testing.T) {
		clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		r := newRaw(t, posthogtest.WithRateLimit(3, 0), posthogtest.WithThrottleClock(clk.now))
		for range 3 { // at 0s, 20s, 40s
			if st, _ := status(r); st != 200 {
				t.Fatalf("status %d", st)
			}
			clk.advance(20 * time.Second)
		}
		// At 60s the first request has left the window: a sliding window, not a fixed one.
		if st, _ := status(r); st != 200 {
			t.Fatalf("at 60s: %d", st)
		}
		// Now 20s, 40s, 60s are in the window; at 65s the oldest leaves at 80s.
		clk.advance(5 * time.Second)
		if st, ra := status(r); st != 429 || ra != "15" {
			t.Errorf("at 65s: %d Retry-After %q, want 429 15", st, ra)
		}
		clk.advance(14*time.Second + 500*time.Millisecond)
		if st, ra := status(r); st != 429 || ra != "1" {
			t.Errorf("at 79.5s: %d Retry-After %q, want 429 1", st, ra)
		}
		clk.advance(500 * time.Millisecond)
		if st, _ := status(r); st != 200 {
			t.Errorf("at 80s: %d", st)
		}
	})
	t.Run("hour", func(t *testing.T) {
		clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		r := newRaw(t, posthogtest.WithRateLimit(100, 4), posthogtest.WithThrottleClock(clk.now))
		for range 4 { // at 0, 10, 20, 30 minutes
			if st, _ := status(r); st != 200 {
				t.Fatalf("status %d", st)
			}
			clk.advance(10 * time.Minute)
		}
		// At 40 min: the oldest (0 min) leaves the hour at 60 min.
		if st, ra := status(r); st != 429 || ra != "1200" {
			t.Errorf("at 40min: %d Retry-After %q, want 429 1200", st, ra)
		}
		clk.advance(20 * time.Minute)
		if st, _ := status(r); st != 200 {
			t.Errorf("at 60min: %d", st)
		}
	})
	t.Run("a request refused by one window counts in the other", func(t *testing.T) {
		// DRF consults every throttle: the hour window records a request the minute window
		// refused.
		clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		r := newRaw(t, posthogtest.WithRateLimit(2, 4), posthogtest.WithThrottleClock(clk.now))
		want := []int{200, 200, 429, 429}
		for i, w := range want {
			if st, _ := status(r); st != w {
				t.Errorf("request %d: %d, want %d", i, st, w)
			}
		}
		clk.advance(time.Minute)
		// The hour window holds 4 requests (2 allowed, 2 refused by the minute window).
		if st, ra := status(r); st != 429 || ra != "3540" {
			t.Errorf("after a minute: %d Retry-After %q, want 429 3540", st, ra)
		}
	})
	t.Run("each key has its own budget", func(t *testing.T) {
		clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		r := newRaw(t, posthogtest.WithRateLimit(1, 0), posthogtest.WithThrottleClock(clk.now))
		other := r.srv.AddAPIKey(posthog.LevelAdmin)
		status(r)
		if st, _ := status(r); st != 429 {
			t.Errorf("main key: %d", st)
		}
		if got := r.doAuth("GET", r.org("roles/"), nil, "Bearer "+other); got.status != 200 {
			t.Errorf("other key: %d", got.status)
		}
	})
}

func TestRolesEmbedMembers(t *testing.T) {
	r := newRaw(t)
	role := r.srv.AddRole("Eng")
	r.srv.AddRole("Empty")
	u := r.srv.AddUser("a@example.com", "A", "B")
	m := r.srv.AddMembership(role.ID, u.UUID)
	check := func(obj map[string]any, wantN int) {
		t.Helper()
		members := obj["members"].([]any)
		if len(members) != wantN {
			t.Fatalf("members = %v", members)
		}
		if wantN == 0 {
			return
		}
		rm := members[0].(map[string]any)
		if rm["id"] != m.ID || rm["role_id"] != role.ID || rm["user"].(map[string]any)["uuid"] != u.UUID ||
			rm["user"].(map[string]any)["email"] != "a@example.com" || rm["organization_member"].(map[string]any)["user"].(map[string]any)["uuid"] != u.UUID {
			t.Errorf("membership = %v", rm)
		}
	}
	check(r.do("GET", r.org("roles/"+role.ID+"/"), nil).json(t), 1)
	results := r.do("GET", r.org("roles/"), nil).json(t)["results"].([]any)
	check(results[0].(map[string]any), 1)
	check(results[1].(map[string]any), 0)
}

// TestChecksBeforeValidation: scope, then level, then validation, so an invalid create is a
// write probe that creates nothing.
func TestChecksBeforeValidation(t *testing.T) {
	r := newRaw(t)
	noWrite := r.srv.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationRead, posthogtest.ScopeOrganizationMemberRead)
	member := r.srv.AddAPIKey(posthog.LevelMember)
	blank := map[string]any{"name": ""}
	wantError(t, r.doAuth("POST", r.org("roles/"), blank, "Bearer "+noWrite), 403, "authentication_error", "permission_denied", "API key missing required scope 'organization:write'", nil)
	wantError(t, r.doAuth("POST", r.org("roles/"), blank, "Bearer "+member), 403, "authentication_error", "permission_denied", posthogtest.DetailLevelInsufficient, nil)
	wantError(t, r.do("POST", r.org("roles/"), blank), 400, "validation_error", "blank", posthogtest.DetailBlank, "name")
	if len(r.srv.Roles()) != 0 {
		t.Error("a probe created a role")
	}
}

func TestOrganizationIntegrations(t *testing.T) {
	r := newRaw(t, posthogtest.WithKeyScopes(append(posthogtest.DefaultScopes, posthogtest.ScopeOrganizationIntegrationRead)...))
	var ids []string
	for i := range 3 {
		x := r.srv.AddIntegration("vercel", fmt.Sprintf("icfg_%d", i), map[string]any{"type": "connectable"})
		ids = append(ids, x.ID)
	}
	page := r.do("GET", r.org("integrations/?limit=2"), nil).json(t)
	if page["count"] != 3.0 || len(page["results"].([]any)) != 2 || page["next"] == nil {
		t.Errorf("page = %v", page)
	}
	got := r.do("GET", r.org("integrations/"+ids[1]+"/"), nil)
	obj := got.json(t)
	if got.status != 200 || obj["id"] != ids[1] || obj["kind"] != "vercel" || obj["integration_id"] != "icfg_1" ||
		obj["config"].(map[string]any)["type"] != "connectable" || obj["created_by"].(map[string]any)["email"] != "key-owner@posthog.test" {
		t.Errorf("get = %d %s", got.status, got.body)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	wantError(t, r.do("GET", r.org("integrations/0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e/"), nil), 404, "invalid_request", "not_found", posthogtest.DetailNotFound, nil)
	for _, method := range []string{"PATCH", "POST", "GET"} {
		wantError(t, r.do(method, r.org("integrations/"+ids[0]+"/environment-mapping/"), map[string]any{"production": 1}), 403, "authentication_error", "permission_denied", posthogtest.DetailNoAPIKeyAccess, nil)
	}
	// Read needs organization_integration:read; DELETE needs :write and an admin.
	plain := r.srv.AddAPIKey(posthog.LevelAdmin)
	wantError(t, r.doAuth("GET", r.org("integrations/"), nil, "Bearer "+plain), 403, "authentication_error", "permission_denied", "API key missing required scope 'organization_integration:read'", nil)
	wantError(t, r.do("DELETE", r.org("integrations/"+ids[0]+"/"), nil), 403, "authentication_error", "permission_denied", "API key missing required scope 'organization_integration:write'", nil)
	writer := r.srv.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationIntegrationWrite)
	if got := r.doAuth("GET", r.org("integrations/"), nil, "Bearer "+writer); got.status != 200 {
		t.Errorf("write implies read: %d", got.status)
	}
	if got := r.doAuth("DELETE", r.org("integrations/"+ids[0]+"/"), nil, "Bearer "+writer); got.status != 204 {
		t.Errorf("delete: %d %s", got.status, got.body)
	}
	if got := r.do("GET", r.org("integrations/"), nil).json(t)["count"]; got != 2.0 {
		t.Errorf("count after delete = %v", got)
	}
	// Another organization's integrations are not listed.
	other := r.srv.AddOrganization("Other")
	r.srv.SetCurrentOrganization(other)
	if got := r.do("GET", "/api/organizations/@current/integrations/", nil).json(t)["count"]; got != 0.0 {
		t.Errorf("other org count = %v", got)
	}
}
