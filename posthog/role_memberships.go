package posthog

import (
	"context"
	"iter"
	"net/http"
	"time"
)

// RoleMembership is a user's membership of a role:
// GET /api/organizations/{org}/roles/{role_id}/role_memberships/{id}/.
type RoleMembership struct {
	ID     string `json:"id"`
	RoleID string `json:"role_id"`
	// OrganizationMember is the user's organization membership (its LastLogin is absent).
	OrganizationMember *OrganizationMember `json:"organization_member"`
	User               User                `json:"user"`
	JoinedAt           time.Time           `json:"joined_at"`
	UpdatedAt          time.Time           `json:"updated_at"`
}

// RoleMembershipsService is the role memberships API,
// /api/organizations/{org}/roles/{role_id}/role_memberships/ (API key scopes
// organization:read, organization:write; writes need an organization admin's key). There is
// no update.
type RoleMembershipsService service

type roleMembershipRequest struct {
	UserUUID string `json:"user_uuid"`
}

// List iterates over a role's memberships, ordered by joined_at:
// GET /api/organizations/{org}/roles/{role_id}/role_memberships/, following pagination.
// Route name "role_memberships.list". PostHog answers an unknown role with an empty list,
// not a 404.
func (s *RoleMembershipsService) List(ctx context.Context, roleID string) iter.Seq2[RoleMembership, error] {
	roleID, err := normalizeUUID("role id", roleID)
	if err != nil {
		return func(yield func(RoleMembership, error) bool) { yield(RoleMembership{}, err) }
	}
	return list[RoleMembership](ctx, s.client, "role_memberships.list", s.client.orgPath("roles", roleID, "role_memberships"), nil)
}

// ListAll returns every membership of a role:
// GET /api/organizations/{org}/roles/{role_id}/role_memberships/ over all pages.
func (s *RoleMembershipsService) ListAll(ctx context.Context, roleID string) ([]RoleMembership, error) {
	return collect(s.List(ctx, roleID))
}

// Get returns one membership:
// GET /api/organizations/{org}/roles/{role_id}/role_memberships/{id}/. Route name
// "role_memberships.get". An unknown id is a 404 ([IsNotFound]).
func (s *RoleMembershipsService) Get(ctx context.Context, roleID, id string) (*RoleMembership, error) {
	roleID, err := normalizeUUID("role id", roleID)
	if err != nil {
		return nil, err
	}
	if id, err = normalizeUUID("role membership id", id); err != nil {
		return nil, err
	}
	var m RoleMembership
	if err := s.client.get(ctx, "role_memberships.get", s.client.orgPath("roles", roleID, "role_memberships", id), nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Find returns the membership of the user with userUUID in a role. It reads the role
// (GET /api/organizations/{org}/roles/{role_id}/, which embeds every membership), so it
// costs one call whatever the size of the role, where paging through the memberships would
// cost one per hundred. When the user is not a member it returns nil and a
// [*NotFoundError] ([IsNotFound]).
func (s *RoleMembershipsService) Find(ctx context.Context, roleID, userUUID string) (*RoleMembership, error) {
	userUUID, err := normalizeUUID("user uuid", userUUID)
	if err != nil {
		return nil, err
	}
	role, err := s.client.Roles.Get(ctx, roleID)
	if err != nil {
		return nil, err
	}
	for i := range role.Members {
		if sameUUID(role.Members[i].User.UUID, userUUID) {
			return &role.Members[i], nil
		}
	}
	return nil, &NotFoundError{Resource: "role membership", Key: "user " + userUUID + " in role " + roleID}
}

// Create adds the user with userUUID (User.UUID, not the numeric id) to a role:
// POST /api/organizations/{org}/roles/{role_id}/role_memberships/ {"user_uuid"}. Route name
// "role_memberships.create". PostHog's errors, in order: 403 for a non-admin key; 400
// "Role does not exist."; 400 "User does not exist." (unknown, inactive or of another
// organization); 400 "User is already part of the role." ([IsAlreadyMember], also
// [IsConflict]).
//
// If an attempt fails in a way that may have created the membership (5xx, timeout, broken
// connection), the retry first calls [RoleMembershipsService.Find] and returns the
// membership if it now exists, so a lost response never creates a second one or reports a
// spurious "already a member".
func (s *RoleMembershipsService) Create(ctx context.Context, roleID, userUUID string) (*RoleMembership, error) {
	roleID, err := normalizeUUID("role id", roleID)
	if err != nil {
		return nil, err
	}
	if userUUID, err = normalizeUUID("user uuid", userUUID); err != nil {
		return nil, err
	}
	find := func(ctx context.Context) (*RoleMembership, error) {
		m, err := s.Find(ctx, roleID, userUUID)
		if IsNotFound(err) {
			return nil, nil
		}
		return m, err
	}
	path := s.client.orgPath("roles", roleID, "role_memberships")
	return create(ctx, s.client, "role_memberships.create", path, roleMembershipRequest{UserUUID: userUUID}, find)
}

// Delete removes a membership (by membership id, not user uuid):
// DELETE /api/organizations/{org}/roles/{role_id}/role_memberships/{id}/. Route name
// "role_memberships.delete". An unknown id is a 404, except after a retried attempt that may
// already have deleted it, which counts as success.
func (s *RoleMembershipsService) Delete(ctx context.Context, roleID, id string) error {
	roleID, err := normalizeUUID("role id", roleID)
	if err != nil {
		return err
	}
	if id, err = normalizeUUID("role membership id", id); err != nil {
		return err
	}
	_, err = s.client.send(ctx, "role_memberships.delete", http.MethodDelete, s.client.orgPath("roles", roleID, "role_memberships", id), nil, nil, nil)
	return err
}

// sameUUID compares two UUIDs ignoring case.
func sameUUID(a, b string) bool {
	na, err1 := normalizeUUID("", a)
	nb, err2 := normalizeUUID("", b)
	return err1 == nil && err2 == nil && na == nb
}
