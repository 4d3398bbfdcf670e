package posthog_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

func TestOrganizations(t *testing.T) {
	e := newEnvWith(t, []posthogtest.Option{posthogtest.WithOrganizationName("Acme")})
	c := ctx(t)

	org, err := e.c.Organizations.Get(c, "")
	if err != nil {
		t.Fatal(err)
	}
	if org.ID != e.srv.OrganizationID() || org.Name != "Acme" || org.Slug != "acme" || org.MembershipLevel == nil ||
		*org.MembershipLevel != posthog.LevelAdmin || org.MemberCount != 1 || org.DefaultRoleID != nil || org.CreatedAt.IsZero() {
		t.Errorf("org = %+v", org)
	}
	if cur, err := e.c.Organizations.Get(c, "@current"); err != nil || cur.ID != org.ID {
		t.Errorf("@current = %+v, %v", cur, err)
	}

	created, err := e.c.Organizations.Create(c, posthog.OrganizationCreate{Name: "Second", Enforce2FA: posthog.Ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "Second" || created.Enforce2FA == nil || !*created.Enforce2FA || *created.MembershipLevel != posthog.LevelOwner {
		t.Errorf("created = %+v", created)
	}
	all, err := e.c.Organizations.ListAll(c)
	if err != nil || len(all) != 2 {
		t.Fatalf("list = %d, %v", len(all), err)
	}

	renamed, err := e.c.Organizations.Update(c, created.ID, posthog.OrganizationUpdate{Name: posthog.Ptr("Renamed")})
	if err != nil || renamed.Name != "Renamed" || !*renamed.Enforce2FA {
		t.Fatalf("update = %+v, %v", renamed, err)
	}
	if err := e.c.Organizations.Delete(c, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Organizations.Get(c, created.ID); !posthog.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
}

func TestOrganizationDefaultRole(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	role := e.srv.AddRole("Everyone")

	org, err := e.c.Organizations.Update(c, "", posthog.OrganizationUpdate{DefaultRoleID: posthog.Set(role.ID)})
	if err != nil || org.DefaultRoleID == nil || *org.DefaultRoleID != role.ID {
		t.Fatalf("set default = %+v, %v", org, err)
	}
	if r, _ := e.c.Roles.Get(c, role.ID); !r.IsDefault {
		t.Error("role.is_default = false")
	}
	org, err = e.c.Organizations.Update(c, "", posthog.OrganizationUpdate{DefaultRoleID: posthog.SetNull[string]()})
	if err != nil || org.DefaultRoleID != nil {
		t.Fatalf("clear default = %+v, %v", org, err)
	}

	// Only the fields that were set are sent; null is sent as null.
	patches := e.srv.CallsMatching("PATCH", "/api/organizations/")
	if len(patches) != 2 {
		t.Fatalf("patches = %+v", patches)
	}
	for i, want := range []map[string]any{{"default_role_id": role.ID}, {"default_role_id": nil}} {
		var got map[string]any
		if err := json.Unmarshal([]byte(patches[i].Body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["default_role_id"] != want["default_role_id"] {
			t.Errorf("patch %d body = %s", i, patches[i].Body)
		}
	}

	if _, err := e.c.Organizations.Update(c, "", posthog.OrganizationUpdate{DefaultRoleID: posthog.Set("nope")}); !posthog.IsValidation(err) {
		t.Errorf("bad uuid: %v", err)
	}
	_, err = e.c.Organizations.Update(c, "", posthog.OrganizationUpdate{DefaultRoleID: posthog.Set("6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11")})
	var apiErr *posthog.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Attr == nil || *apiErr.Attr != "default_role_id" {
		t.Errorf("unknown role: %v", err)
	}
}

func TestOrganizationsErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	memberKey := e.srv.AddAPIKey(posthog.LevelMember)
	member, _ := posthog.NewClient(e.srv.URL(), memberKey, "@current", fastOpts()...)

	tests := []struct {
		name   string
		call   func() error
		status int
		detail string
	}{
		{"unknown org", func() error { _, err := e.c.Organizations.Get(c, orgUUID); return err }, 404, "Organization not found."},
		{"other org", func() error { _, err := e.c.Organizations.Get(c, e.srv.AddOrganization("Other")); return err }, 403, "You do not have permission to perform this action."},
		{"member patches", func() error {
			_, err := member.Organizations.Update(c, "", posthog.OrganizationUpdate{Name: posthog.Ptr("x")})
			return err
		}, 403, "Your organization access level is insufficient."},
		{"admin deletes (needs owner)", func() error { return e.c.Organizations.Delete(c, "@current") }, 403, "Your organization access level is insufficient."},
		{"blank name", func() error { _, err := e.c.Organizations.Create(c, posthog.OrganizationCreate{}); return err }, 400, "This field may not be blank."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Detail != tc.detail {
				t.Fatalf("err = %v, want %d %q", err, tc.status, tc.detail)
			}
		})
	}
	if err := e.c.Organizations.Delete(c, ""); !posthog.IsValidation(err) {
		t.Errorf(`Delete("") = %v, want a client-side refusal`, err)
	}
	if _, err := e.c.Organizations.Get(c, "acme"); !posthog.IsValidation(err) {
		t.Errorf(`Get("acme") = %v`, err)
	}
}

func TestOrganizationPlanAndLevel(t *testing.T) {
	e := newEnv(t)
	org := must[*posthog.Organization](t)(e.c.Organizations.Get(ctx(t), ""))
	if !org.HasFeature(posthog.FeatureRoleBasedAccess) || org.HasFeature("sso_enforcement") {
		t.Errorf("features = %+v", org.AvailableProductFeatures)
	}
	if f := org.AvailableProductFeatures; len(f) != 1 || f[0].Name != "Role-based access" {
		t.Errorf("features = %+v", f)
	}
	e.srv.SetRoleBasedAccess(false)
	org = must[*posthog.Organization](t)(e.c.Organizations.Get(ctx(t), ""))
	if org.HasFeature(posthog.FeatureRoleBasedAccess) {
		t.Error("feature still there")
	}

	for _, level := range []int{posthog.LevelMember, posthog.LevelAdmin, posthog.LevelOwner} {
		e := newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyLevel(level)})
		org := must[*posthog.Organization](t)(e.c.Organizations.Get(ctx(t), ""))
		if org.MembershipLevel == nil || *org.MembershipLevel != level {
			t.Errorf("level %d: membership_level = %v", level, org.MembershipLevel)
		}
	}
}

func TestOrganizationCurrentFollowsKeyOwner(t *testing.T) {
	e := newEnv(t)
	other := e.srv.AddOrganization("Elsewhere")
	e.srv.SetCurrentOrganization(other)
	cur := must[*posthog.Organization](t)(e.c.Organizations.Get(ctx(t), posthog.CurrentOrganization))
	if cur.ID != other || cur.Name != "Elsewhere" {
		t.Errorf("@current = %s %s, want the organization the owner switched to", cur.ID, cur.Name)
	}
	// A client pinned to the id keeps reading its organization.
	pinned := must[*posthog.Organization](t)(e.c.Organizations.Get(ctx(t), ""))
	if pinned.ID != e.srv.OrganizationID() {
		t.Errorf("pinned = %s", pinned.ID)
	}
}

func TestOrganizationScopedKeys(t *testing.T) {
	t.Run("projects", func(t *testing.T) {
		e := newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyScopedProjects(7)})
		_, err := e.c.Organizations.Get(ctx(t), "")
		if !posthog.IsAuth(err) || !strings.Contains(err.Error(), posthogtest.DetailScopedProjects) {
			t.Errorf("get: %v", err)
		}
		if _, err := e.c.Members.FindByEmail(ctx(t), "a@example.com"); !posthog.IsAuth(err) {
			t.Errorf("members: %v", err)
		}
	})
	t.Run("other organizations", func(t *testing.T) {
		e := newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyScopedOrganizations("0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e")})
		_, err := e.c.Roles.ListAll(ctx(t))
		if !posthog.IsAuth(err) || !strings.Contains(err.Error(), posthogtest.ScopedOrganizationDetail(e.srv.OrganizationID())) {
			t.Errorf("roles: %v", err)
		}
	})
	t.Run("its own organization", func(t *testing.T) {
		e := newEnv(t)
		e.srv.SetKeyScopedOrganizations(e.srv.APIKey(), e.srv.OrganizationID())
		if _, err := e.c.Roles.ListAll(ctx(t)); err != nil {
			t.Errorf("roles: %v", err)
		}
	})
}

// A transient database error (503 with Retry-After) is retried after the wait PostHog asks.
func TestUnavailableIsRetriedAfterRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.srv.AddRole("Eng")
	e.srv.UnavailableNext(1, time.Second)
	start := time.Now()
	roles, err := e.c.Roles.ListAll(ctx(t))
	if err != nil || len(roles) != 1 {
		t.Fatalf("got %d roles, %v", len(roles), err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want the 1s Retry-After", d)
	}
	if got := strings.Join(e.obs.statuses(), ","); got != "roles.list:503,roles.list:200" {
		t.Errorf("attempts = %s", got)
	}
}

// Scope and level are checked before the body: an invalid create is a write probe that
// creates nothing, and its answer tells which of the three is missing.
func TestRoleCreateProbe(t *testing.T) {
	e := newEnv(t)
	noWrite := e.srv.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationRead, posthogtest.ScopeOrganizationMemberRead)
	member := e.srv.AddAPIKey(posthog.LevelMember)
	probe := func(key string) error {
		c, err := posthog.NewClient(e.srv.URL(), key, e.srv.OrganizationID(), fastOpts()...)
		if err != nil {
			t.Fatal(err)
		}
		req, err := c.NewRequest("POST", "api/organizations/"+e.srv.OrganizationID()+"/roles/", map[string]string{"name": ""})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Do(ctx(t), req, nil)
		return err
	}
	if err := probe(noWrite); !posthog.IsAuth(err) || !strings.Contains(err.Error(), "organization:write") {
		t.Errorf("no write scope: %v", err)
	}
	if err := probe(member); !posthog.IsAuth(err) || !strings.Contains(err.Error(), "Your organization access level is insufficient.") {
		t.Errorf("member: %v", err)
	}
	if err := probe(e.srv.APIKey()); !posthog.IsValidation(err) || !strings.Contains(err.Error(), "blank") {
		t.Errorf("admin: %v", err)
	}
	if len(e.srv.Roles()) != 0 {
		t.Error("a probe created a role")
	}
}

func TestRolesEmbedMembersThroughClient(t *testing.T) {
	e := newEnv(t)
	role := e.srv.AddRole("Eng")
	u := e.srv.AddUser("a@example.com", "A", "B")
	m := e.srv.AddMembership(role.ID, u.UUID)
	got := must[*posthog.Role](t)(e.c.Roles.Get(ctx(t), role.ID))
	if len(got.Members) != 1 || got.Members[0].ID != m.ID || got.Members[0].User.UUID != u.UUID || got.Members[0].User.Email != "a@example.com" {
		t.Errorf("get members = %+v", got.Members)
	}
	all := must[[]posthog.Role](t)(e.c.Roles.ListAll(ctx(t)))
	if len(all) != 1 || len(all[0].Members) != 1 || all[0].Members[0].User.UUID != u.UUID {
		t.Errorf("list = %+v", all)
	}
}
