package posthog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/posthog"
)

func TestRolesCRUD(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	u := e.srv.AddUser("a@example.com", "A", "B")

	role, err := e.c.Roles.Create(c, "Engineering")
	if err != nil {
		t.Fatal(err)
	}
	if role.ID == "" || role.Name != "Engineering" || role.CreatedBy != nil || role.CreatedAt.IsZero() || len(role.Members) != 0 {
		t.Errorf("created = %+v", role)
	}
	e.srv.AddMembership(role.ID, u.UUID)

	got, err := e.c.Roles.Get(c, strings.ToUpper(role.ID))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != role.ID || len(got.Members) != 1 || got.Members[0].User.UUID != u.UUID {
		t.Errorf("get = %+v", got)
	}

	renamed, err := e.c.Roles.Update(c, role.ID, "Platform")
	if err != nil || renamed.Name != "Platform" {
		t.Fatalf("update: %v %+v", err, renamed)
	}
	if _, err := e.c.Roles.Update(c, role.ID, "PLATFORM"); err != nil {
		t.Errorf("renaming to its own name in another case: %v", err)
	}

	all, err := e.c.Roles.ListAll(c)
	if err != nil || len(all) != 1 || all[0].Name != "PLATFORM" {
		t.Fatalf("list: %v %+v", err, all)
	}
	found, err := e.c.Roles.FindByName(c, " platform ")
	if err != nil || found.ID != role.ID {
		t.Errorf("FindByName: %v %+v", err, found)
	}
	if _, err := e.c.Roles.FindByName(c, "nope"); !posthog.IsNotFound(err) {
		t.Errorf("FindByName(nope) = %v", err)
	}

	if err := e.c.Roles.Delete(c, role.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Roles.Get(c, role.ID); !posthog.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
	if err := e.c.Roles.Delete(c, role.ID); !posthog.IsNotFound(err) {
		t.Errorf("second delete = %v, want not found", err)
	}
}

func TestRolesErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	eng := e.srv.AddRole("Engineering")
	sales := e.srv.AddRole("Sales")
	missing := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"

	tests := []struct {
		name     string
		call     func() error
		status   int // 0: rejected client-side
		code     string
		conflict bool
	}{
		{"create duplicate, other case", func() error { _, err := e.c.Roles.Create(c, "engineering"); return err }, 400, "unique", true},
		{"create blank", func() error { _, err := e.c.Roles.Create(c, "  "); return err }, 400, "blank", false},
		{"create too long", func() error { _, err := e.c.Roles.Create(c, strings.Repeat("r", 201)); return err }, 400, "max_length", false},
		{"rename onto another role", func() error { _, err := e.c.Roles.Update(c, sales.ID, "ENGINEERING"); return err }, 400, "unique", true},
		{"get unknown", func() error { _, err := e.c.Roles.Get(c, missing); return err }, 404, "not_found", false},
		{"update unknown", func() error { _, err := e.c.Roles.Update(c, missing, "x"); return err }, 404, "not_found", false},
		{"get malformed id", func() error { _, err := e.c.Roles.Get(c, "eng"); return err }, 0, "", false},
		{"delete malformed id", func() error { return e.c.Roles.Delete(c, eng.ID+"x") }, 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.ResetCalls()
			err := tc.call()
			if err == nil {
				t.Fatal("expected an error")
			}
			if tc.status == 0 {
				var ae *posthog.ArgumentError
				if !errors.As(err, &ae) || !posthog.IsValidation(err) {
					t.Fatalf("err = %v, want a client-side ArgumentError", err)
				}
				if n := len(e.srv.Calls()); n != 0 {
					t.Errorf("%d calls made for an invalid id", n)
				}
				return
			}
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code {
				t.Fatalf("err = %v, want %d %s", err, tc.status, tc.code)
			}
			if posthog.IsConflict(err) != tc.conflict {
				t.Errorf("IsConflict = %v", !tc.conflict)
			}
			if tc.status == 400 && posthog.IsValidation(err) == tc.conflict {
				t.Errorf("IsValidation = %v for conflict=%v", posthog.IsValidation(err), tc.conflict)
			}
			if tc.code == "unique" && (apiErr.Attr == nil || *apiErr.Attr != "name") {
				t.Errorf("attr = %v", apiErr.Attr)
			}
		})
	}
}

func TestRolesNonAdminCannotWrite(t *testing.T) {
	e := newEnvWith(t, nil)
	role := e.srv.AddRole("Eng")
	key := e.srv.AddAPIKey(posthog.LevelMember)
	member, err := posthog.NewClient(e.srv.URL(), key, "@current", fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	if _, err := member.Roles.ListAll(c); err != nil {
		t.Errorf("a member can read: %v", err)
	}
	for name, err := range map[string]error{
		"create": func() error { _, err := member.Roles.Create(c, "X"); return err }(),
		"update": func() error { _, err := member.Roles.Update(c, role.ID, "X"); return err }(),
		"delete": member.Roles.Delete(c, role.ID),
	} {
		var apiErr *posthog.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Detail != "Your organization access level is insufficient." || !posthog.IsAuth(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestRoleDeleteCascades(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	role := e.srv.AddRole("Eng")
	u := e.srv.AddUser("a@example.com", "A", "B")
	e.srv.AddMembership(role.ID, u.UUID)
	if _, err := e.c.RoleExternalReferences.Create(c, posthog.RoleExternalReferenceCreate{
		Provider: "okta", ProviderOrganizationID: "o", ProviderRoleID: "g", ProviderRoleName: "G", Role: role.ID,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Organizations.Update(c, "", posthog.OrganizationUpdate{DefaultRoleID: posthog.Set(role.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Roles.Delete(c, role.ID); err != nil {
		t.Fatal(err)
	}
	ms, err := e.c.RoleMemberships.ListAll(c, role.ID)
	if err != nil || len(ms) != 0 {
		t.Errorf("memberships after delete: %v %v", ms, err)
	}
	refs, err := e.c.RoleExternalReferences.ListAll(c, posthog.ListExternalReferencesOptions{})
	if err != nil || len(refs) != 0 {
		t.Errorf("references after delete: %v %v", refs, err)
	}
	org, err := e.c.Organizations.Get(c, "")
	if err != nil || org.DefaultRoleID != nil {
		t.Errorf("default role after delete: %v %v", org.DefaultRoleID, err)
	}
}

func TestRoleCreateLostResponseDoesNotCreateTwice(t *testing.T) {
	e := newEnv(t)
	e.srv.AddRole("Other")
	e.srv.ApplyThenDropNext(1)
	role, err := e.c.Roles.Create(ctx(t), "Eng")
	if err != nil {
		t.Fatal(err)
	}
	if role.Name != "Eng" {
		t.Errorf("role = %+v", role)
	}
	n := 0
	for _, r := range e.srv.Roles() {
		if strings.EqualFold(r.Name, "eng") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d roles named Eng, want 1", n)
	}
	var seq []string
	for _, call := range e.srv.Calls() {
		seq = append(seq, fmt.Sprintf("%s %d", call.Method, call.Status))
	}
	if strings.Join(seq, ",") != "POST 201,GET 200" {
		t.Errorf("calls = %v, want the POST then the look-up by name", seq)
	}
}

func TestRoleCreate500IsRetriedAfterLookup(t *testing.T) {
	e := newEnv(t)
	e.srv.FailNext(1, 500)
	role, err := e.c.Roles.Create(ctx(t), "Eng")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.srv.Roles()) != 1 || e.srv.Roles()[0].ID != role.ID {
		t.Errorf("roles = %+v", e.srv.Roles())
	}
	want := []string{"roles.create:500", "roles.list:200", "roles.create:201"}
	if got := e.obs.statuses(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("attempts = %v, want %v", got, want)
	}
}
