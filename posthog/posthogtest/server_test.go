package posthogtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

// raw is a minimal HTTP client for the fake, so these tests check the wire format without
// going through the posthog package.
type raw struct {
	t   *testing.T
	srv *posthogtest.Server
	key string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func newRaw(t *testing.T, opts ...posthogtest.Option) *raw {
	t.Helper()
	srv := posthogtest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return &raw{t: t, srv: srv, key: srv.APIKey()}
}

func (r *raw) do(method, path string, body any) reply {
	r.t.Helper()
	return r.doAuth(method, path, body, "Bearer "+r.key)
}

func (r *raw) doAuth(method, path string, body any, auth string) reply {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			buf, err := json.Marshal(b)
			if err != nil {
				r.t.Fatal(err)
			}
			rd = strings.NewReader(string(buf))
		}
	}
	req, err := http.NewRequest(method, r.srv.URL()+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (r *raw) org(rest string) string {
	return "/api/organizations/" + r.srv.OrganizationID() + "/" + rest
}

// wantError checks status and the exact error body {"type","code","detail","attr"}.
func wantError(t *testing.T, got reply, status int, typ, code, detail string, attr any) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status = %d, want %d (body %s)", got.status, status, got.body)
	}
	m := got.json(t)
	want := map[string]any{"type": typ, "code": code, "detail": detail, "attr": attr}
	if len(m) != 4 {
		t.Errorf("body has %d keys, want exactly type/code/detail/attr: %s", len(m), got.body)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v (body %s)", k, m[k], v, got.body)
		}
	}
}

func TestAuthErrors(t *testing.T) {
	r := newRaw(t)
	memberKey := r.srv.AddAPIKey(posthog.LevelMember)
	noWriteKey := r.srv.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationRead)
	noMemberScope := r.srv.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationRead, posthogtest.ScopeOrganizationWrite)
	otherOrg := r.srv.AddOrganization("Other")
	role := r.srv.AddRole("Engineering")
	u := r.srv.AddUser("a@example.com", "A", "B")
	m := r.srv.AddMembership(role.ID, u.UUID)

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		auth   string
		status int
		code   string
		detail string
	}{
		{"no credentials", "GET", r.org("roles/"), nil, "", 401, "not_authenticated", posthogtest.DetailNotAuthenticated},
		{"not bearer", "GET", r.org("roles/"), nil, "Token " + r.key, 401, "not_authenticated", posthogtest.DetailNotAuthenticated},
		{"invalid key", "GET", r.org("roles/"), nil, "Bearer phx_nope", 401, "authentication_failed", posthogtest.DetailInvalidKey},
		{"scope missing", "POST", r.org("roles/"), map[string]any{"name": "x"}, "Bearer " + noWriteKey, 403, "permission_denied", "API key missing required scope 'organization:write'"},
		{"member scope missing", "GET", r.org("members/"), nil, "Bearer " + noMemberScope, 403, "permission_denied", "API key missing required scope 'organization_member:read'"},
		{"not a member of the org", "GET", "/api/organizations/" + otherOrg + "/roles/", nil, "Bearer " + r.key, 403, "permission_denied", posthogtest.DetailNoPermission},
		{"member writes role", "POST", r.org("roles/"), map[string]any{"name": "x"}, "Bearer " + memberKey, 403, "permission_denied", posthogtest.DetailLevelInsufficient},
		{"member deletes membership", "DELETE", r.org("roles/" + role.ID + "/role_memberships/" + m.ID + "/"), nil, "Bearer " + memberKey, 403, "permission_denied", posthogtest.DetailLevelInsufficient},
		{"member patches org", "PATCH", r.org(""), map[string]any{"name": "x"}, "Bearer " + memberKey, 403, "permission_denied", posthogtest.DetailLevelInsufficient},
		{"patch a membership", "PATCH", r.org("roles/" + role.ID + "/role_memberships/" + m.ID + "/"), map[string]any{}, "Bearer " + r.key, 403, "permission_denied", posthogtest.DetailNoAPIKeyAccess},
		{"unknown org", "GET", "/api/organizations/" + "0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e/roles/", nil, "Bearer " + r.key, 404, "not_found", posthogtest.DetailOrganizationNotFound},
		{"malformed org", "GET", "/api/organizations/not-an-org/roles/", nil, "Bearer " + r.key, 404, "not_found", posthogtest.DetailOrganizationNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.doAuth(tc.method, tc.path, tc.body, tc.auth)
			typ := "authentication_error"
			if tc.status == 404 {
				typ = "invalid_request"
			}
			wantError(t, got, tc.status, typ, tc.code, tc.detail, nil)
			if tc.status == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// A member can still read.
	if got := r.doAuth("GET", r.org("roles/"), nil, "Bearer "+memberKey); got.status != 200 {
		t.Errorf("member read: %d %s", got.status, got.body)
	}
}

func TestCurrentOrganizationAndTrailingSlash(t *testing.T) {
	r := newRaw(t)
	r.srv.AddRole("Eng")
	for _, p := range []string{"/api/organizations/@current/roles/", "/api/organizations/@current/roles", r.org("roles"), r.org("roles/")} {
		got := r.do("GET", p, nil)
		if got.status != 200 || got.json(t)["count"] != 1.0 {
			t.Errorf("GET %s = %d %s", p, got.status, got.body)
		}
	}
	got := r.do("GET", "/api/organizations/@current", nil)
	if got.status != 200 || got.json(t)["id"] != r.srv.OrganizationID() {
		t.Errorf("GET @current = %d %s", got.status, got.body)
	}
	wantError(t, r.do("GET", "/api/nothing/", nil), 404, "invalid_request", "not_found", "Not found.", nil)
}

func TestRoleErrors(t *testing.T) {
	r := newRaw(t)
	eng := r.srv.AddRole("Engineering")
	tests := []struct {
		name   string
		body   any
		code   string
		detail string
		attr   any
	}{
		{"duplicate, other case", map[string]any{"name": "engineering"}, "unique", posthogtest.DetailRoleNameTaken, "name"},
		{"duplicate, padded", map[string]any{"name": "  ENGINEERING "}, "unique", posthogtest.DetailRoleNameTaken, "name"},
		{"missing", map[string]any{}, "required", posthogtest.DetailRequired, "name"},
		{"blank", map[string]any{"name": "   "}, "blank", posthogtest.DetailBlank, "name"},
		{"null", map[string]any{"name": nil}, "null", posthogtest.DetailNull, "name"},
		{"too long", map[string]any{"name": strings.Repeat("x", 201)}, "max_length", "Ensure this field has no more than 200 characters.", "name"},
		{"not a string", map[string]any{"name": []int{1}}, "invalid_input", posthogtest.DetailNotAString, "name"},
		{"bad json", "{", "parse_error", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.do("POST", r.org("roles/"), tc.body)
			if tc.code == "parse_error" {
				if got.status != 400 || got.json(t)["code"] != "parse_error" || got.json(t)["type"] != "validation_error" {
					t.Fatalf("got %d %s", got.status, got.body)
				}
				return
			}
			wantError(t, got, 400, "validation_error", tc.code, tc.detail, tc.attr)
		})
	}
	if got := r.do("POST", r.org("roles/"), map[string]any{"name": strings.Repeat("x", 200)}); got.status != 201 {
		t.Errorf("200 chars: %d %s", got.status, got.body)
	}
	// Renaming a role to its own name in another case is allowed; to another's is not.
	if got := r.do("PATCH", r.org("roles/"+eng.ID+"/"), map[string]any{"name": "ENGINEERING"}); got.status != 200 || got.json(t)["name"] != "ENGINEERING" {
		t.Errorf("self-rename: %d %s", got.status, got.body)
	}
	other := r.srv.AddRole("Sales")
	wantError(t, r.do("PATCH", r.org("roles/"+other.ID+"/"), map[string]any{"name": "engineering"}), 400, "validation_error", "unique", posthogtest.DetailRoleNameTaken, "name")

	missing := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		wantError(t, r.do(m, r.org("roles/"+missing+"/"), map[string]any{"name": "x"}), 404, "invalid_request", "not_found", posthogtest.DetailNotFound, nil)
	}
	wantError(t, r.do("GET", r.org("roles/not-a-uuid/"), nil), 404, "invalid_request", "not_found", posthogtest.DetailNotFound, nil)
}

func TestRoleShapeAndCreate(t *testing.T) {
	r := newRaw(t)
	got := r.do("POST", r.org("roles/"), map[string]any{"name": " Data "})
	if got.status != 201 {
		t.Fatalf("create: %d %s", got.status, got.body)
	}
	m := got.json(t)
	for _, k := range []string{"id", "name", "created_at", "created_by", "members", "is_default"} {
		if _, ok := m[k]; !ok {
			t.Errorf("role has no %q: %s", k, got.body)
		}
	}
	if m["name"] != "Data" || m["created_by"] != nil || m["is_default"] != false {
		t.Errorf("role = %s", got.body)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}
}

func TestMembershipErrorsInOrder(t *testing.T) {
	r := newRaw(t)
	role := r.srv.AddRole("Eng")
	u := r.srv.AddUser("a@example.com", "A", "B")
	outsider := r.srv.AddUserOutsideOrganization("o@example.com", "O", "P")
	inactive := r.srv.AddUser("i@example.com", "I", "J")
	r.srv.DeactivateUser(inactive.UUID)
	r.srv.AddMembership(role.ID, u.UUID)
	missingRole := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"
	missingUser := "1c7a0d7e-5b1e-4c39-9a7f-8b2d4e6f0a13"
	path := func(roleID string) string { return r.org("roles/" + roleID + "/role_memberships/") }

	tests := []struct {
		name   string
		role   string
		body   any
		code   string
		detail string
		attr   any
	}{
		{"user_uuid missing", missingRole, map[string]any{}, "required", posthogtest.DetailRequired, "user_uuid"},
		{"user_uuid invalid (checked before the role)", missingRole, map[string]any{"user_uuid": "nope"}, "invalid_input", posthogtest.DetailInvalidUUID, "user_uuid"},
		{"role does not exist (checked before the user)", missingRole, map[string]any{"user_uuid": missingUser}, "invalid_input", posthogtest.DetailRoleDoesNotExist, nil},
		{"unknown user", role.ID, map[string]any{"user_uuid": missingUser}, "invalid_input", posthogtest.DetailUserDoesNotExist, nil},
		{"user of no org", role.ID, map[string]any{"user_uuid": outsider.UUID}, "invalid_input", posthogtest.DetailUserDoesNotExist, nil},
		{"inactive user", role.ID, map[string]any{"user_uuid": inactive.UUID}, "invalid_input", posthogtest.DetailUserDoesNotExist, nil},
		{"already member (400, not 409)", role.ID, map[string]any{"user_uuid": u.UUID}, "invalid_input", posthogtest.DetailAlreadyMember, nil},
		{"already member, upper-case uuid", role.ID, map[string]any{"user_uuid": strings.ToUpper(u.UUID)}, "invalid_input", posthogtest.DetailAlreadyMember, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, r.do("POST", path(tc.role), tc.body), 400, "validation_error", tc.code, tc.detail, tc.attr)
		})
	}

	t.Run("403 before validation", func(t *testing.T) {
		k := r.srv.AddAPIKey(posthog.LevelMember)
		wantError(t, r.doAuth("POST", path(missingRole), map[string]any{}, "Bearer "+k), 403, "authentication_error", "permission_denied", posthogtest.DetailLevelInsufficient, nil)
	})
	t.Run("list of unknown role is 200 empty", func(t *testing.T) {
		got := r.do("GET", path(missingRole), nil)
		if got.status != 200 || got.json(t)["count"] != 0.0 {
			t.Fatalf("got %d %s", got.status, got.body)
		}
		if res, ok := got.json(t)["results"].([]any); !ok || len(res) != 0 {
			t.Fatalf("results = %s", got.body)
		}
	})
	t.Run("malformed role id in path is a 500", func(t *testing.T) {
		wantError(t, r.do("GET", path("nope"), nil), 500, "server_error", "error", posthogtest.DetailServerError, nil)
	})
	t.Run("unknown membership is 404", func(t *testing.T) {
		for _, m := range []string{"GET", "DELETE"} {
			wantError(t, r.do(m, path(role.ID)+missingUser+"/", nil), 404, "invalid_request", "not_found", posthogtest.DetailNotFound, nil)
		}
	})
	t.Run("create, get, delete", func(t *testing.T) {
		v := r.srv.AddUser("v@example.com", "V", "W")
		got := r.do("POST", path(role.ID), map[string]any{"user_uuid": v.UUID})
		if got.status != 201 {
			t.Fatalf("create: %d %s", got.status, got.body)
		}
		m := got.json(t)
		if _, ok := m["user_uuid"]; ok {
			t.Error("user_uuid is write-only")
		}
		om := m["organization_member"].(map[string]any)
		if _, ok := om["last_login"]; ok {
			t.Error("organization_member.last_login should be absent")
		}
		if m["role_id"] != role.ID || m["user"].(map[string]any)["uuid"] != v.UUID {
			t.Errorf("membership = %s", got.body)
		}
		id := m["id"].(string)
		if got := r.do("GET", path(role.ID)+id, nil); got.status != 200 {
			t.Errorf("get: %d", got.status)
		}
		if got := r.do("DELETE", path(role.ID)+id+"/", nil); got.status != 204 || len(got.body) != 0 {
			t.Errorf("delete: %d %q", got.status, got.body)
		}
		if r.srv.HasMember(role.ID, v.UUID) {
			t.Error("still a member")
		}
	})
}

func TestDeleteRoleCascades(t *testing.T) {
	r := newRaw(t)
	role := r.srv.AddRole("Eng")
	keep := r.srv.AddRole("Keep")
	u := r.srv.AddUser("a@example.com", "A", "B")
	r.srv.AddMembership(role.ID, u.UUID)
	r.srv.AddMembership(keep.ID, u.UUID)
	if got := r.do("POST", r.org("role_external_references/"), map[string]any{
		"provider": "okta", "provider_organization_id": "o1", "provider_role_id": "g1", "provider_role_name": "G", "role": role.ID,
	}); got.status != 201 {
		t.Fatalf("ref: %d %s", got.status, got.body)
	}
	if got := r.do("PATCH", r.org(""), map[string]any{"default_role_id": role.ID}); got.status != 200 || got.json(t)["default_role_id"] != role.ID {
		t.Fatalf("default role: %d %s", got.status, got.body)
	}
	// PUT is a full update, as in Django REST framework: name is required.
	wantError(t, r.do("PUT", r.org(""), map[string]any{"default_role_id": role.ID}), 400, "validation_error", "required", posthogtest.DetailRequired, "name")
	if got := r.do("GET", r.org("roles/"+role.ID), nil); got.json(t)["is_default"] != true {
		t.Errorf("is_default: %s", got.body)
	}
	// A member who joins from now on is put in the default role, unasked;
	// those who were members before are not.
	joined := r.srv.AddUser("new@example.com", "New", "Member")
	if !r.srv.HasMember(role.ID, joined.UUID) || r.srv.HasMember(keep.ID, joined.UUID) {
		t.Errorf("a new member's roles: default %v, other %v", r.srv.HasMember(role.ID, joined.UUID), r.srv.HasMember(keep.ID, joined.UUID))
	}
	if n := len(r.srv.Memberships(role.ID)); n != 2 {
		t.Errorf("%d memberships of the default role, want 2", n)
	}
	if got := r.do("DELETE", r.org("roles/"+role.ID+"/"), nil); got.status != 204 {
		t.Fatalf("delete: %d %s", got.status, got.body)
	}
	if len(r.srv.Memberships(role.ID)) != 0 || len(r.srv.ExternalReferences()) != 0 {
		t.Error("memberships or references survived the role")
	}
	if !r.srv.HasMember(keep.ID, u.UUID) {
		t.Error("another role's membership was deleted")
	}
	if got := r.srv.Organization().DefaultRoleID; got != nil {
		t.Errorf("default_role_id = %v, want null", *got)
	}
}

func TestExternalReferences(t *testing.T) {
	r := newRaw(t)
	role := r.srv.AddRole("Eng")
	path := r.org("role_external_references/")
	base := func() map[string]any {
		return map[string]any{"provider": "okta", "provider_organization_id": "Org-1", "provider_role_id": "g1", "provider_role_slug": "eng", "provider_role_name": "Eng", "role": role.ID}
	}
	with := func(k string, v any) map[string]any {
		m := base()
		if v == "<delete>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	got := r.do("POST", path, base())
	if got.status != 201 {
		t.Fatalf("create: %d %s", got.status, got.body)
	}
	ref := got.json(t)
	if ref["created_by"] == nil || ref["role"] != role.ID {
		t.Errorf("ref = %s", got.body)
	}
	missingRole := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"
	tests := []struct {
		name   string
		body   map[string]any
		code   string
		detail string
		attr   any
	}{
		{"duplicate slug, other case", with("provider_role_id", "g2"), "invalid_input", posthogtest.DetailRefSlugExists, nil},
		{"duplicate org id in other case", func() map[string]any {
			m := with("provider_organization_id", "ORG-1")
			m["provider_role_slug"] = "ENG"
			m["provider_role_id"] = "g9"
			return m
		}(), "invalid_input", posthogtest.DetailRefSlugExists, nil},
		{"duplicate role id", with("provider_role_slug", "other"), "invalid_input", posthogtest.DetailRefRoleIDExists, nil},
		{"role does not exist", with("role", missingRole), "does_not_exist", fmt.Sprintf("Invalid pk %q - object does not exist.", missingRole), "role"},
		{"provider missing", with("provider", "<delete>"), "required", posthogtest.DetailRequired, "provider"},
		{"provider blank", with("provider", " "), "blank", posthogtest.DetailBlank, "provider"},
		{"provider too long", with("provider", strings.Repeat("p", 33)), "max_length", "Ensure this field has no more than 32 characters.", "provider"},
		{"role missing", with("role", "<delete>"), "required", posthogtest.DetailRequired, "role"},
		{"name missing", with("provider_role_name", "<delete>"), "required", posthogtest.DetailRequired, "provider_role_name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, r.do("POST", path, tc.body), 400, "validation_error", tc.code, tc.detail, tc.attr)
		})
	}
	t.Run("slug is optional", func(t *testing.T) {
		m := with("provider_role_slug", "<delete>")
		m["provider_role_id"] = "g3"
		if got := r.do("POST", path, m); got.status != 201 || got.json(t)["provider_role_slug"] != nil {
			t.Fatalf("got %d %s", got.status, got.body)
		}
	})
	t.Run("list filters", func(t *testing.T) {
		for q, want := range map[string]float64{"": 2, "?provider_organization_id=org-1": 2, "?provider=github": 0, "?role_id=" + role.ID: 2, "?role_id=" + missingRole: 0} {
			if got := r.do("GET", path+q, nil); got.json(t)["count"] != want {
				t.Errorf("%q: %s", q, got.body)
			}
		}
	})
	t.Run("lookup", func(t *testing.T) {
		lp := path + "lookup/?"
		cases := []struct {
			query string
			found bool
		}{
			{"provider=okta&provider_organization_id=org-1&provider_role_slug=ENG", true},
			{"provider=okta&provider_organization_id=Org-1&provider_role_id=g1", true},
			{"provider=okta&provider_organization_id=Org-1&provider_role_slug=nope", false},
			{"provider=okta&provider_organization_id=Org-2&provider_role_id=g1", false},
		}
		for _, c := range cases {
			got := r.do("GET", lp+c.query, nil)
			if got.status != 200 {
				t.Fatalf("%s: %d %s", c.query, got.status, got.body)
			}
			m := got.json(t)
			if _, ok := m["reference"]; !ok {
				t.Fatalf("%s: no reference key: %s", c.query, got.body)
			}
			if (m["reference"] != nil) != c.found {
				t.Errorf("%s: %s", c.query, got.body)
			}
		}
		wantError(t, r.do("GET", lp+"provider_organization_id=x&provider_role_id=1", nil), 400, "validation_error", "required", posthogtest.DetailRequired, "provider")
		wantError(t, r.do("GET", lp+"provider=x&provider_role_id=1", nil), 400, "validation_error", "required", posthogtest.DetailRequired, "provider_organization_id")
		wantError(t, r.do("GET", lp+"provider=x&provider_organization_id=y", nil), 400, "validation_error", "invalid_input", posthogtest.DetailLookupNeedsRole, nil)
	})
	t.Run("delete", func(t *testing.T) {
		id := ref["id"].(string)
		if got := r.do("DELETE", path+id+"/", nil); got.status != 204 {
			t.Fatalf("delete: %d %s", got.status, got.body)
		}
		wantError(t, r.do("DELETE", path+id+"/", nil), 404, "invalid_request", "not_found", posthogtest.DetailNotFound, nil)
	})
}

func TestPagination(t *testing.T) {
	r := newRaw(t)
	for i := range 250 {
		r.srv.AddUser(fmt.Sprintf("u%03d@example.com", i), "U", fmt.Sprint(i))
	}
	const total = 251 // with the key's owner

	got := r.do("GET", r.org("members/"), nil)
	m := got.json(t)
	if m["count"] != float64(total) || len(m["results"].([]any)) != 100 || m["previous"] != nil {
		t.Fatalf("first page: count %v, %d results, previous %v", m["count"], len(m["results"].([]any)), m["previous"])
	}
	next, _ := url.Parse(m["next"].(string))
	if next.Scheme != "http" || next.Host == "" || next.Query().Get("limit") != "100" || next.Query().Get("offset") != "100" {
		t.Fatalf("next = %v", m["next"])
	}

	for _, bad := range []string{"abc", "0", "-5", ""} {
		got := r.do("GET", r.org("members/?limit="+bad), nil)
		if n := len(got.json(t)["results"].([]any)); n != 100 {
			t.Errorf("limit=%q gave %d results, want 100", bad, n)
		}
	}

	got = r.do("GET", r.org("members/?limit=10&offset=15&email="), nil)
	m = got.json(t)
	if m["previous"] == nil || !strings.Contains(m["previous"].(string), "offset=5") {
		t.Errorf("previous = %v", m["previous"])
	}
	got = r.do("GET", r.org("members/?limit=10&offset=5"), nil)
	prev, _ := url.Parse(got.json(t)["previous"].(string))
	if prev.Query().Has("offset") || prev.Query().Get("limit") != "10" {
		t.Errorf("previous near the start = %v, want offset removed", prev)
	}

	// Walk it by next links; other parameters are kept.
	seen := 0
	link := r.srv.URL() + r.org("members/?limit=7&foo=bar")
	for pages := 0; link != ""; pages++ {
		u, _ := url.Parse(link)
		if u.Query().Get("foo") != "bar" {
			t.Fatalf("next lost foo: %s", link)
		}
		m := r.do("GET", u.RequestURI(), nil).json(t)
		seen += len(m["results"].([]any))
		link = ""
		if n, ok := m["next"].(string); ok {
			link = n
		}
		if pages > 100 {
			t.Fatal("no end")
		}
	}
	if seen != total {
		t.Errorf("walked %d members, want %d", seen, total)
	}

	r2 := newRaw(t, posthogtest.WithLinkBaseURL("https://public.example"))
	r2.srv.AddUser("x@example.com", "X", "Y")
	m = r2.do("GET", r2.org("members/?limit=1"), nil).json(t)
	if !strings.HasPrefix(m["next"].(string), "https://public.example/api/organizations/") {
		t.Errorf("next = %v", m["next"])
	}
}

func TestMembersEmailFilterIsExact(t *testing.T) {
	r := newRaw(t)
	r.srv.AddUser("Alice@Example.com", "Alice", "A")
	gone := r.srv.AddUser("gone@example.com", "Gone", "G")
	r.srv.DeactivateUser(gone.UUID)
	cases := map[string]float64{"Alice@Example.com": 1, "alice@example.com": 0, "gone@example.com": 0}
	for email, want := range cases {
		got := r.do("GET", r.org("members/?email="+url.QueryEscape(email)), nil)
		if got.json(t)["count"] != want {
			t.Errorf("email=%s: %s", email, got.body)
		}
	}
	m := r.do("GET", r.org("members/"), nil).json(t)
	if m["count"] != 2.0 { // key owner and Alice; not the inactive user
		t.Errorf("count = %v", m["count"])
	}
	item := m["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "user", "level", "joined_at", "updated_at", "is_2fa_enabled", "has_social_auth", "last_login"} {
		if _, ok := item[k]; !ok {
			t.Errorf("member has no %q", k)
		}
	}
}

func TestOrganizations(t *testing.T) {
	r := newRaw(t)
	got := r.do("GET", "/api/organizations/", nil)
	if got.json(t)["count"] != 1.0 {
		t.Fatalf("list: %s", got.body)
	}
	got = r.do("POST", "/api/organizations/", map[string]any{"name": "New Org"})
	if got.status != 201 {
		t.Fatalf("create: %d %s", got.status, got.body)
	}
	created := got.json(t)
	if created["membership_level"] != float64(posthog.LevelOwner) || created["slug"] != "new-org" {
		t.Errorf("created = %s", got.body)
	}
	wantError(t, r.do("POST", "/api/organizations/", map[string]any{"name": ""}), 400, "validation_error", "blank", posthogtest.DetailBlank, "name")
	id := created["id"].(string)
	got = r.do("PATCH", "/api/organizations/"+id+"/", map[string]any{"name": "Renamed", "enforce_2fa": true})
	if got.status != 200 || got.json(t)["name"] != "Renamed" || got.json(t)["enforce_2fa"] != true {
		t.Errorf("patch: %d %s", got.status, got.body)
	}
	wantError(t, r.do("PATCH", "/api/organizations/"+id+"/", map[string]any{"default_role_id": "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"}), 400, "validation_error", "invalid_input", posthogtest.DetailRoleDoesNotExist, "default_role_id")
	if got := r.do("GET", "/api/organizations/", nil); got.json(t)["count"] != 2.0 {
		t.Errorf("list after create: %s", got.body)
	}
	if got := r.do("DELETE", "/api/organizations/"+id+"/", nil); got.status != 204 {
		t.Errorf("delete: %d %s", got.status, got.body)
	}
	wantError(t, r.do("GET", "/api/organizations/"+id+"/", nil), 404, "invalid_request", "not_found", posthogtest.DetailOrganizationNotFound, nil)
	// Deleting needs an owner; the default key belongs to an admin.
	wantError(t, r.do("DELETE", r.org(""), nil), 403, "authentication_error", "permission_denied", posthogtest.DetailLevelInsufficient, nil)
}

func TestFaults(t *testing.T) {
	r := newRaw(t)
	t.Run("fail 500", func(t *testing.T) {
		r.srv.FailNext(1, 500)
		wantError(t, r.do("GET", r.org("roles/"), nil), 500, "server_error", "error", posthogtest.DetailServerError, nil)
		if got := r.do("GET", r.org("roles/"), nil); got.status != 200 {
			t.Errorf("after: %d", got.status)
		}
	})
	t.Run("fail 502 is HTML", func(t *testing.T) {
		r.srv.FailNext(1, 502)
		got := r.do("GET", r.org("roles/"), nil)
		if got.status != 502 || !strings.Contains(got.header.Get("Content-Type"), "text/html") {
			t.Errorf("got %d %s", got.status, got.header.Get("Content-Type"))
		}
	})
	t.Run("throttle", func(t *testing.T) {
		r.srv.ThrottleNext(2, 1500*time.Millisecond)
		got := r.do("GET", r.org("roles/"), nil)
		wantError(t, got, 429, "throttled_error", "throttled", "Request was throttled. Expected available in 2 seconds.", nil)
		if got.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", got.header.Get("Retry-After"))
		}
		r.srv.ThrottleNext(1, time.Second)
		got = r.do("GET", r.org("roles/"), nil)
		if got.header.Get("Retry-After") != "1" || got.json(t)["detail"] != "Request was throttled. Expected available in 1 second." {
			t.Errorf("got %s %s", got.header.Get("Retry-After"), got.body)
		}
	})
	t.Run("apply then drop", func(t *testing.T) {
		r.srv.ApplyThenDropNext(1)
		req, _ := http.NewRequest("POST", r.srv.URL()+r.org("roles/"), strings.NewReader(`{"name":"Dropped"}`))
		req.Header.Set("Authorization", "Bearer "+r.key)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("expected a broken connection")
		}
		if roles := r.srv.Roles(); roles[len(roles)-1].Name != "Dropped" {
			t.Error("the write was not applied")
		}
		calls := r.srv.CallsMatching("POST", r.org("roles"))
		if last := calls[len(calls)-1]; !last.Dropped || last.Status != 201 {
			t.Errorf("call = %+v", last)
		}
	})
	t.Run("apply then timeout", func(t *testing.T) {
		r.srv.ApplyThenTimeoutNext(1)
		hc := &http.Client{Timeout: 200 * time.Millisecond}
		req, _ := http.NewRequest("POST", r.srv.URL()+r.org("roles/"), strings.NewReader(`{"name":"Slow"}`))
		req.Header.Set("Authorization", "Bearer "+r.key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("expected a timeout")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		if roles := r.srv.Roles(); roles[len(roles)-1].Name != "Slow" {
			t.Error("the write was not applied")
		}
	})
	t.Run("calls record no Authorization", func(t *testing.T) {
		for _, c := range r.srv.Calls() {
			if c.Header.Get("Authorization") != "" {
				t.Fatal("Authorization recorded")
			}
		}
		r.srv.ResetCalls()
		if len(r.srv.Calls()) != 0 {
			t.Error("ResetCalls")
		}
	})
}

func TestRateLimitOption(t *testing.T) {
	r := newRaw(t, posthogtest.WithRateLimit(3, 100))
	for i := range 3 {
		if got := r.do("GET", r.org("roles/"), nil); got.status != 200 {
			t.Fatalf("request %d: %d", i, got.status)
		}
	}
	got := r.do("GET", r.org("roles/"), nil)
	if got.status != 429 {
		t.Fatalf("4th request: %d", got.status)
	}
	ra := got.header.Get("Retry-After")
	if ra != "60" && ra != "59" {
		t.Errorf("Retry-After = %q", ra)
	}
	if d := got.json(t)["detail"].(string); !strings.HasPrefix(d, "Request was throttled. Expected available in ") {
		t.Errorf("detail = %q", d)
	}
	// Another key has its own budget; authentication failures are not throttled.
	other := r.srv.AddAPIKey(posthog.LevelAdmin)
	if got := r.doAuth("GET", r.org("roles/"), nil, "Bearer "+other); got.status != 200 {
		t.Errorf("other key: %d", got.status)
	}
	if got := r.doAuth("GET", r.org("roles/"), nil, "Bearer phx_bad"); got.status != 401 {
		t.Errorf("bad key: %d", got.status)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := newRaw(t)
	role := r.srv.AddRole("Eng")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := r.srv.AddUser(fmt.Sprintf("c%d@example.com", i), "C", "D")
			r.do("POST", r.org("roles/"+role.ID+"/role_memberships/"), map[string]any{"user_uuid": u.UUID})
			r.do("GET", r.org("roles/"+role.ID+"/role_memberships/"), nil)
			_ = r.srv.Calls()
		}()
	}
	wg.Wait()
	if n := len(r.srv.Memberships(role.ID)); n != 20 {
		t.Errorf("memberships = %d", n)
	}
}
