package posthog

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"time"
)

// Organization is a PostHog organization: GET /api/organizations/{id}/.
type Organization struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	LogoMediaID *string   `json:"logo_media_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// MembershipLevel is the API key owner's level here (LevelMember, LevelAdmin,
	// LevelOwner), nil when not a member.
	MembershipLevel    *int              `json:"membership_level"`
	PluginsAccessLevel int               `json:"plugins_access_level"`
	Teams              []json.RawMessage `json:"teams"`
	Projects           []json.RawMessage `json:"projects"`
	// AvailableProductFeatures are the features of the organization's plan; see
	// [Organization.HasFeature].
	AvailableProductFeatures     []ProductFeature `json:"available_product_features"`
	IsMemberJoinEmailEnabled     bool             `json:"is_member_join_email_enabled"`
	Metadata                     json.RawMessage  `json:"metadata,omitempty"`
	CustomerID                   *string          `json:"customer_id"`
	Enforce2FA                   *bool            `json:"enforce_2fa"`
	MembersCanInvite             *bool            `json:"members_can_invite"`
	MembersCanUsePersonalAPIKeys bool             `json:"members_can_use_personal_api_keys"`
	AllowPubliclySharedResources bool             `json:"allow_publicly_shared_resources"`
	MemberCount                  int              `json:"member_count"`
	IsAIDataProcessingApproved   *bool            `json:"is_ai_data_processing_approved"`
	DefaultExperimentStatsMethod *string          `json:"default_experiment_stats_method"`
	DefaultAnonymizeIPs          bool             `json:"default_anonymize_ips"`
	// DefaultRoleID is the role new members join automatically, or nil.
	DefaultRoleID     *string `json:"default_role_id"`
	IsActive          *bool   `json:"is_active"`
	IsNotActiveReason *string `json:"is_not_active_reason"`
}

// FeatureRoleBasedAccess is the plan feature without which PostHog ignores role memberships
// when it decides access. The role and membership endpoints have no plan check: on a plan
// without it they still answer 201, and a membership grants nothing.
const FeatureRoleBasedAccess = "role_based_access"

// ProductFeature is an item of an organization's available_product_features, e.g.
// {"key": "role_based_access", "name": "Role-based access"}. PostHog sends more fields
// (description, limit, unit…) that this client does not need.
type ProductFeature struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// HasFeature reports whether the organization's plan includes the product feature key,
// e.g. [FeatureRoleBasedAccess].
func (o *Organization) HasFeature(key string) bool {
	for _, f := range o.AvailableProductFeatures {
		if f.Key == key {
			return true
		}
	}
	return false
}

// OrganizationCreate is the body of POST /api/organizations/. Name is required; nil fields
// are left to PostHog's defaults.
type OrganizationCreate struct {
	Name                         string  `json:"name"`
	LogoMediaID                  *string `json:"logo_media_id,omitempty"`
	IsMemberJoinEmailEnabled     *bool   `json:"is_member_join_email_enabled,omitempty"`
	Enforce2FA                   *bool   `json:"enforce_2fa,omitempty"`
	MembersCanInvite             *bool   `json:"members_can_invite,omitempty"`
	MembersCanUsePersonalAPIKeys *bool   `json:"members_can_use_personal_api_keys,omitempty"`
	AllowPubliclySharedResources *bool   `json:"allow_publicly_shared_resources,omitempty"`
	IsAIDataProcessingApproved   *bool   `json:"is_ai_data_processing_approved,omitempty"`
	DefaultExperimentStatsMethod *string `json:"default_experiment_stats_method,omitempty"`
	DefaultAnonymizeIPs          *bool   `json:"default_anonymize_ips,omitempty"`
	DefaultRoleID                *string `json:"default_role_id,omitempty"`
}

// OrganizationUpdate is the body of PATCH /api/organizations/{id}/. Only non-nil fields are
// sent. DefaultRoleID and LogoMediaID may be set to null with [SetNull]:
//
//	posthog.OrganizationUpdate{DefaultRoleID: posthog.Set(roleID)}
//	posthog.OrganizationUpdate{DefaultRoleID: posthog.SetNull[string]()}
type OrganizationUpdate struct {
	Name                         *string           `json:"name,omitempty"`
	LogoMediaID                  *Nullable[string] `json:"logo_media_id,omitempty"`
	IsMemberJoinEmailEnabled     *bool             `json:"is_member_join_email_enabled,omitempty"`
	Enforce2FA                   *bool             `json:"enforce_2fa,omitempty"`
	MembersCanInvite             *bool             `json:"members_can_invite,omitempty"`
	MembersCanUsePersonalAPIKeys *bool             `json:"members_can_use_personal_api_keys,omitempty"`
	AllowPubliclySharedResources *bool             `json:"allow_publicly_shared_resources,omitempty"`
	IsAIDataProcessingApproved   *bool             `json:"is_ai_data_processing_approved,omitempty"`
	DefaultExperimentStatsMethod *string           `json:"default_experiment_stats_method,omitempty"`
	DefaultAnonymizeIPs          *bool             `json:"default_anonymize_ips,omitempty"`
	// DefaultRoleID is a role UUID of this organization, or null for no default role.
	DefaultRoleID *Nullable[string] `json:"default_role_id,omitempty"`
}

// OrganizationsService is the organizations API, /api/organizations/ (API key scopes
// organization:read, organization:write).
type OrganizationsService service

// orgID resolves "" to the client's organization and validates anything else.
func (s *OrganizationsService) orgID(id string) (string, error) {
	if id == "" {
		return s.client.orgID, nil
	}
	return normalizeOrgID(id)
}

// List iterates over the organizations the API key owner belongs to:
// GET /api/organizations/, following pagination. Route name "organizations.list".
func (s *OrganizationsService) List(ctx context.Context) iter.Seq2[Organization, error] {
	return list[Organization](ctx, s.client, "organizations.list", "api/organizations/", nil)
}

// ListAll returns every organization: GET /api/organizations/ over all pages.
func (s *OrganizationsService) ListAll(ctx context.Context) ([]Organization, error) {
	return collect(s.List(ctx))
}

// Get returns an organization: GET /api/organizations/{id}/. Route name
// "organizations.get". id "" means the client's organization. An unknown organization is a
// 404 "Organization not found." ([IsNotFound]); at start-up this checks both the key and
// the organization id.
func (s *OrganizationsService) Get(ctx context.Context, id string) (*Organization, error) {
	id, err := s.orgID(id)
	if err != nil {
		return nil, err
	}
	var o Organization
	if err := s.client.get(ctx, "organizations.get", "api/organizations/"+id+"/", nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Create creates an organization owned by the API key's user: POST /api/organizations/.
// Route name "organizations.create". It has no natural key to look up after an ambiguous
// failure, so it is retried only after a 429 or a connection that was never established.
func (s *OrganizationsService) Create(ctx context.Context, o OrganizationCreate) (*Organization, error) {
	if o.DefaultRoleID != nil {
		id, err := normalizeUUID("default_role_id", *o.DefaultRoleID)
		if err != nil {
			return nil, err
		}
		o.DefaultRoleID = &id
	}
	var out Organization
	if _, err := s.client.send(ctx, "organizations.create", http.MethodPost, "api/organizations/", o, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Update changes the fields set in u: PATCH /api/organizations/{id}/. Route name
// "organizations.update". id "" means the client's organization. Needs an admin's key.
func (s *OrganizationsService) Update(ctx context.Context, id string, u OrganizationUpdate) (*Organization, error) {
	id, err := s.orgID(id)
	if err != nil {
		return nil, err
	}
	if u.DefaultRoleID != nil && !u.DefaultRoleID.Null {
		rid, err := normalizeUUID("default_role_id", u.DefaultRoleID.Value)
		if err != nil {
			return nil, err
		}
		u.DefaultRoleID = Set(rid)
	}
	var out Organization
	if _, err := s.client.send(ctx, "organizations.update", http.MethodPatch, "api/organizations/"+id+"/", u, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delete deletes an organization and everything in it: DELETE /api/organizations/{id}/.
// Route name "organizations.delete". Unlike Get and Update, id must be given explicitly
// (a UUID or "@current"), so an empty string can never delete the client's organization.
func (s *OrganizationsService) Delete(ctx context.Context, id string) error {
	if id == "" {
		return &ArgumentError{Field: "organization id", Reason: "is required to delete an organization"}
	}
	id, err := normalizeOrgID(id)
	if err != nil {
		return err
	}
	_, err = s.client.send(ctx, "organizations.delete", http.MethodDelete, "api/organizations/"+id+"/", nil, nil, nil)
	return err
}
