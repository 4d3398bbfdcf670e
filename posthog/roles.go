package posthog

import (
	"context"
	"iter"
	"net/http"
	"strings"
	"time"
)

// Role is an organization role: GET /api/organizations/{org}/roles/{id}/.
type Role struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is nil for roles created with a personal API key.
	CreatedBy *User `json:"created_by"`
	// Members are the role's memberships.
	Members []RoleMembership `json:"members"`
	// IsDefault is true for the organization's default role (see
	// OrganizationUpdate.DefaultRoleID), which new members join automatically.
	IsDefault bool `json:"is_default"`
}

// RolesService is the roles API, /api/organizations/{org}/roles/ (API key scopes
// organization:read, organization:write; writes need an organization admin's key).
type RolesService service

type roleRequest struct {
	Name string `json:"name"`
}

// List iterates over the organization's roles: GET /api/organizations/{org}/roles/,
// following pagination. Route name "roles.list".
func (s *RolesService) List(ctx context.Context) iter.Seq2[Role, error] {
	return list[Role](ctx, s.client, "roles.list", s.client.orgPath("roles"), nil)
}

// ListAll returns every role: GET /api/organizations/{org}/roles/ over all pages.
func (s *RolesService) ListAll(ctx context.Context) ([]Role, error) {
	return collect(s.List(ctx))
}

// Get returns one role: GET /api/organizations/{org}/roles/{id}/. Route name "roles.get".
// An unknown id is a 404 ([IsNotFound]).
func (s *RolesService) Get(ctx context.Context, id string) (*Role, error) {
	id, err := normalizeUUID("role id", id)
	if err != nil {
		return nil, err
	}
	var r Role
	if err := s.client.get(ctx, "roles.get", s.client.orgPath("roles", id), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// FindByName returns the role named name, ignoring case and surrounding spaces as PostHog's
// uniqueness check does, scanning GET /api/organizations/{org}/roles/. No match gives a
// [*NotFoundError] ([IsNotFound]).
func (s *RolesService) FindByName(ctx context.Context, name string) (*Role, error) {
	want := strings.TrimSpace(name)
	for r, err := range s.List(ctx) {
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(strings.TrimSpace(r.Name), want) {
			return &r, nil
		}
	}
	return nil, &NotFoundError{Resource: "role", Key: "name " + want}
}

// Create creates a role: POST /api/organizations/{org}/roles/ {"name"}. Route name
// "roles.create". A name already used in the organization, in any case, is a 400 unique on
// "name" ([IsConflict]); a blank or over-long (200) name is a 400 ([IsValidation]).
//
// If an attempt fails in a way that may have created the role (5xx, timeout), the retry
// first looks for a role with that name and returns it instead of creating another.
func (s *RolesService) Create(ctx context.Context, name string) (*Role, error) {
	find := func(ctx context.Context) (*Role, error) {
		r, err := s.FindByName(ctx, name)
		if IsNotFound(err) {
			return nil, nil
		}
		return r, err
	}
	return create(ctx, s.client, "roles.create", s.client.orgPath("roles"), roleRequest{Name: name}, find)
}

// Update renames a role: PATCH /api/organizations/{org}/roles/{id}/ {"name"}. Route name
// "roles.update". Errors as for Create, plus 404; renaming a role to its own name in another
// case is allowed.
func (s *RolesService) Update(ctx context.Context, id, name string) (*Role, error) {
	id, err := normalizeUUID("role id", id)
	if err != nil {
		return nil, err
	}
	var r Role
	if _, err := s.client.send(ctx, "roles.update", http.MethodPatch, s.client.orgPath("roles", id), roleRequest{Name: name}, &r, nil); err != nil {
		return nil, err
	}
	return &r, nil
}

// Delete deletes a role: DELETE /api/organizations/{org}/roles/{id}/. Route name
// "roles.delete". PostHog also deletes its memberships and external references and clears
// the organization's default_role_id if it was this role. An unknown id is a 404.
func (s *RolesService) Delete(ctx context.Context, id string) error {
	id, err := normalizeUUID("role id", id)
	if err != nil {
		return err
	}
	_, err = s.client.send(ctx, "roles.delete", http.MethodDelete, s.client.orgPath("roles", id), nil, nil, nil)
	return err
}
