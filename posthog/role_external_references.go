package posthog

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RoleExternalReference maps a role to a group or role in an identity provider:
// /api/organizations/{org}/role_external_references/.
type RoleExternalReference struct {
	ID                     string  `json:"id"`
	Provider               string  `json:"provider"`
	ProviderOrganizationID string  `json:"provider_organization_id"`
	ProviderRoleID         string  `json:"provider_role_id"`
	ProviderRoleSlug       *string `json:"provider_role_slug"`
	ProviderRoleName       string  `json:"provider_role_name"`
	// Role is the PostHog role's UUID.
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy *User     `json:"created_by"`
}

// RoleExternalReferenceCreate is the body of
// POST /api/organizations/{org}/role_external_references/. Every field but
// ProviderRoleSlug is required and must not be blank.
type RoleExternalReferenceCreate struct {
	// Provider names the identity provider (at most 32 characters).
	Provider               string  `json:"provider"`
	ProviderOrganizationID string  `json:"provider_organization_id"`
	ProviderRoleID         string  `json:"provider_role_id"`
	ProviderRoleSlug       *string `json:"provider_role_slug,omitempty"`
	ProviderRoleName       string  `json:"provider_role_name"`
	// Role is the UUID of a role of this organization.
	Role string `json:"role"`
}

// ListExternalReferencesOptions filters
// GET /api/organizations/{org}/role_external_references/. Empty fields do not filter.
type ListExternalReferencesOptions struct {
	Provider string
	// ProviderOrganizationID is matched case-insensitively by PostHog.
	ProviderOrganizationID string
	// RoleID is a role UUID.
	RoleID string
}

// LookupOptions are the query of
// GET /api/organizations/{org}/role_external_references/lookup/. Provider and
// ProviderOrganizationID are required, and one of ProviderRoleSlug or ProviderRoleID.
type LookupOptions struct {
	Provider               string
	ProviderOrganizationID string
	ProviderRoleSlug       string
	ProviderRoleID         string
}

// RoleExternalReferencesService is the role external references API,
// /api/organizations/{org}/role_external_references/ (API key scopes organization:read,
// organization:write; writes need an organization admin's key).
type RoleExternalReferencesService service

// List iterates over the organization's external references, ordered by provider, provider
// organization id and slug: GET /api/organizations/{org}/role_external_references/ with the
// filters of opts, following pagination. Route name "role_external_references.list".
func (s *RoleExternalReferencesService) List(ctx context.Context, opts ListExternalReferencesOptions) iter.Seq2[RoleExternalReference, error] {
	q := url.Values{}
	if opts.Provider != "" {
		q.Set("provider", opts.Provider)
	}
	if opts.ProviderOrganizationID != "" {
		q.Set("provider_organization_id", opts.ProviderOrganizationID)
	}
	if opts.RoleID != "" {
		id, err := normalizeUUID("role id", opts.RoleID)
		if err != nil {
			return func(yield func(RoleExternalReference, error) bool) { yield(RoleExternalReference{}, err) }
		}
		q.Set("role_id", id)
	}
	return list[RoleExternalReference](ctx, s.client, "role_external_references.list", s.client.orgPath("role_external_references"), q)
}

// ListAll returns every matching external reference:
// GET /api/organizations/{org}/role_external_references/ over all pages.
func (s *RoleExternalReferencesService) ListAll(ctx context.Context, opts ListExternalReferencesOptions) ([]RoleExternalReference, error) {
	return collect(s.List(ctx, opts))
}

// Create creates an external reference:
// POST /api/organizations/{org}/role_external_references/. Route name
// "role_external_references.create". Errors: 400 attr "role" code does_not_exist for a role
// of no role of this organization; 400 "A role external reference with this provider,
// organization, and role slug already exists." (or "… and role ID already exists.",
// [IsConflict]); 400 for a missing or blank field; 403 for a non-admin key.
//
// If an attempt fails in a way that may have created the reference (5xx, timeout), the
// retry first asks the lookup endpoint and returns an existing reference for the same
// provider, organization, slug or id and role instead of creating another.
func (s *RoleExternalReferencesService) Create(ctx context.Context, ref RoleExternalReferenceCreate) (*RoleExternalReference, error) {
	roleID, err := normalizeUUID("role", ref.Role)
	if err != nil {
		return nil, err
	}
	ref.Role = roleID
	opts := LookupOptions{Provider: ref.Provider, ProviderOrganizationID: ref.ProviderOrganizationID, ProviderRoleID: ref.ProviderRoleID}
	if ref.ProviderRoleSlug != nil {
		opts.ProviderRoleSlug = *ref.ProviderRoleSlug
	}
	find := func(ctx context.Context) (*RoleExternalReference, error) {
		found, err := s.Lookup(ctx, opts)
		if err != nil {
			return nil, err
		}
		if found == nil || !sameUUID(found.Role, ref.Role) || found.ProviderRoleID != ref.ProviderRoleID {
			return nil, nil
		}
		return found, nil
	}
	return create(ctx, s.client, "role_external_references.create", s.client.orgPath("role_external_references"), ref, find)
}

// Delete deletes an external reference:
// DELETE /api/organizations/{org}/role_external_references/{id}/. Route name
// "role_external_references.delete". An unknown id (or another organization's) is a 404,
// except after a retried attempt that may already have deleted it.
func (s *RoleExternalReferencesService) Delete(ctx context.Context, id string) error {
	id, err := normalizeUUID("role external reference id", id)
	if err != nil {
		return err
	}
	_, err = s.client.send(ctx, "role_external_references.delete", http.MethodDelete, s.client.orgPath("role_external_references", id), nil, nil, nil)
	return err
}

// Lookup finds the external reference for an identity provider's role:
// GET /api/organizations/{org}/role_external_references/lookup/. Route name
// "role_external_references.lookup". PostHog always answers 200; when nothing matches
// ({"reference": null}) Lookup returns nil, nil. A missing provider or provider organization
// id, or neither slug nor id, is a 400 ([IsValidation]).
func (s *RoleExternalReferencesService) Lookup(ctx context.Context, opts LookupOptions) (*RoleExternalReference, error) {
	q := url.Values{}
	set := func(k, v string) {
		if strings.TrimSpace(v) != "" {
			q.Set(k, v)
		}
	}
	set("provider", opts.Provider)
	set("provider_organization_id", opts.ProviderOrganizationID)
	set("provider_role_slug", opts.ProviderRoleSlug)
	set("provider_role_id", opts.ProviderRoleID)
	var out struct {
		Reference *RoleExternalReference `json:"reference"`
	}
	if err := s.client.get(ctx, "role_external_references.lookup", s.client.orgPath("role_external_references", "lookup"), q, &out); err != nil {
		return nil, err
	}
	return out.Reference, nil
}
