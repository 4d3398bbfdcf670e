package posthog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/posthog"
)

func TestExternalReferencesCRUD(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	eng := e.srv.AddRole("Eng")
	sales := e.srv.AddRole("Sales")

	ref, err := e.c.RoleExternalReferences.Create(c, posthog.RoleExternalReferenceCreate{
		Provider: "okta", ProviderOrganizationID: "Org-1", ProviderRoleID: "g-eng", ProviderRoleSlug: posthog.Ptr("eng"), ProviderRoleName: "Engineering", Role: strings.ToUpper(eng.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID == "" || ref.Role != eng.ID || ref.ProviderRoleSlug == nil || *ref.ProviderRoleSlug != "eng" || ref.CreatedBy == nil || ref.CreatedAt.IsZero() {
		t.Errorf("ref = %+v", ref)
	}
	if _, err := e.c.RoleExternalReferences.Create(c, posthog.RoleExternalReferenceCreate{
		Provider: "github", ProviderOrganizationID: "acme", ProviderRoleID: "123", ProviderRoleName: "Sales team", Role: sales.ID,
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		opts posthog.ListExternalReferencesOptions
		want int
	}{
		{"all", posthog.ListExternalReferencesOptions{}, 2},
		{"provider", posthog.ListExternalReferencesOptions{Provider: "okta"}, 1},
		{"provider org, other case", posthog.ListExternalReferencesOptions{ProviderOrganizationID: "org-1"}, 1},
		{"role", posthog.ListExternalReferencesOptions{RoleID: sales.ID}, 1},
		{"no match", posthog.ListExternalReferencesOptions{Provider: "okta", RoleID: sales.ID}, 0},
	}
	for _, tc := range tests {
		t.Run("list "+tc.name, func(t *testing.T) {
			refs, err := e.c.RoleExternalReferences.ListAll(c, tc.opts)
			if err != nil || len(refs) != tc.want {
				t.Errorf("got %d, %v; want %d", len(refs), err, tc.want)
			}
		})
	}

	lookups := []struct {
		name string
		opts posthog.LookupOptions
		want string // role id, or "" for none
	}{
		{"by slug, other case", posthog.LookupOptions{Provider: "okta", ProviderOrganizationID: "org-1", ProviderRoleSlug: "ENG"}, eng.ID},
		{"by role id", posthog.LookupOptions{Provider: "github", ProviderOrganizationID: "acme", ProviderRoleID: "123"}, sales.ID},
		{"unknown slug", posthog.LookupOptions{Provider: "okta", ProviderOrganizationID: "org-1", ProviderRoleSlug: "nope"}, ""},
		{"other provider", posthog.LookupOptions{Provider: "azure", ProviderOrganizationID: "org-1", ProviderRoleID: "g-eng"}, ""},
	}
	for _, tc := range lookups {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			got, err := e.c.RoleExternalReferences.Lookup(c, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("got %+v, want nil", got)
			case tc.want != "" && (got == nil || got.Role != tc.want):
				t.Errorf("got %+v, want role %s", got, tc.want)
			}
		})
	}

	if err := e.c.RoleExternalReferences.Delete(c, ref.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RoleExternalReferences.Delete(c, ref.ID); !posthog.IsNotFound(err) {
		t.Errorf("second delete = %v", err)
	}
}

func TestExternalReferencesErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	eng := e.srv.AddRole("Eng")
	base := posthog.RoleExternalReferenceCreate{Provider: "okta", ProviderOrganizationID: "Org-1", ProviderRoleID: "g1", ProviderRoleSlug: posthog.Ptr("eng"), ProviderRoleName: "Eng", Role: eng.ID}
	if _, err := e.c.RoleExternalReferences.Create(c, base); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*posthog.RoleExternalReferenceCreate)) posthog.RoleExternalReferenceCreate {
		r := base
		f(&r)
		return r
	}
	missing := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"
	tests := []struct {
		name     string
		req      posthog.RoleExternalReferenceCreate
		code     string
		attr     string
		conflict bool
		client   bool
	}{
		{"duplicate slug", mod(func(r *posthog.RoleExternalReferenceCreate) {
			r.ProviderRoleID = "g2"
			r.ProviderRoleSlug = posthog.Ptr("ENG")
		}), "invalid_input", "", true, false},
		{"duplicate role id", mod(func(r *posthog.RoleExternalReferenceCreate) { r.ProviderRoleSlug = nil }), "invalid_input", "", true, false},
		{"role of no organization", mod(func(r *posthog.RoleExternalReferenceCreate) {
			r.Role = missing
			r.ProviderRoleID = "g3"
			r.ProviderRoleSlug = nil
		}), "does_not_exist", "role", false, false},
		{"blank provider", mod(func(r *posthog.RoleExternalReferenceCreate) { r.Provider = " " }), "blank", "provider", false, false},
		{"long provider", mod(func(r *posthog.RoleExternalReferenceCreate) { r.Provider = strings.Repeat("p", 33) }), "max_length", "provider", false, false},
		{"malformed role", mod(func(r *posthog.RoleExternalReferenceCreate) { r.Role = "eng" }), "", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.RoleExternalReferences.Create(c, tc.req)
			if tc.client {
				var ae *posthog.ArgumentError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != tc.code {
				t.Fatalf("err = %v, want 400 %s", err, tc.code)
			}
			if (apiErr.Attr == nil && tc.attr != "") || (apiErr.Attr != nil && *apiErr.Attr != tc.attr) {
				t.Errorf("attr = %v, want %q", apiErr.Attr, tc.attr)
			}
			if posthog.IsConflict(err) != tc.conflict || posthog.IsValidation(err) == tc.conflict {
				t.Errorf("IsConflict = %v IsValidation = %v", posthog.IsConflict(err), posthog.IsValidation(err))
			}
		})
	}

	lookupErrs := []struct {
		name string
		opts posthog.LookupOptions
		attr string
	}{
		{"no provider", posthog.LookupOptions{ProviderOrganizationID: "o", ProviderRoleID: "1"}, "provider"},
		{"no provider org", posthog.LookupOptions{Provider: "p", ProviderRoleID: "1"}, "provider_organization_id"},
		{"neither slug nor id", posthog.LookupOptions{Provider: "p", ProviderOrganizationID: "o"}, ""},
	}
	for _, tc := range lookupErrs {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			ref, err := e.c.RoleExternalReferences.Lookup(c, tc.opts)
			var apiErr *posthog.APIError
			if ref != nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !posthog.IsValidation(err) {
				t.Fatalf("got %v, %v", ref, err)
			}
			if (apiErr.Attr == nil) != (tc.attr == "") || (apiErr.Attr != nil && *apiErr.Attr != tc.attr) {
				t.Errorf("attr = %v", apiErr.Attr)
			}
		})
	}
}

func TestExternalReferenceCreateLostResponseDoesNotCreateTwice(t *testing.T) {
	e := newEnv(t)
	eng := e.srv.AddRole("Eng")
	e.srv.ApplyThenDropNext(1)
	ref, err := e.c.RoleExternalReferences.Create(ctx(t), posthog.RoleExternalReferenceCreate{
		Provider: "okta", ProviderOrganizationID: "o", ProviderRoleID: "g1", ProviderRoleName: "G", Role: eng.ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	refs := e.srv.ExternalReferences()
	if len(refs) != 1 || refs[0].ID != ref.ID {
		t.Errorf("server has %+v, client got %+v", refs, ref)
	}
	want := "role_external_references.create:0,role_external_references.lookup:200"
	if got := strings.Join(e.obs.statuses(), ","); got != want {
		t.Errorf("attempts = %s, want %s", got, want)
	}
}
