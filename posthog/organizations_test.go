package posthog_test

import (
	"encoding/json"
	"errors"
	"testing"

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
