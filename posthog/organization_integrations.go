package posthog

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"time"
)

// OrganizationIntegration is an organization-level integration (e.g. Vercel, AWS
// Marketplace): GET /api/organizations/{org}/integrations/{id}/. PostHog creates them in
// its installation flows; the API only reads them.
type OrganizationIntegration struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// IntegrationID is the provider's id of the installation, nil when unknown.
	IntegrationID *string `json:"integration_id"`
	// Config is the integration's configuration as PostHog stores it (its shape depends
	// on Kind).
	Config    json.RawMessage `json:"config"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	CreatedBy *User           `json:"created_by"`
}

// EnvironmentMapping is the body of PATCH
// /api/organizations/{org}/integrations/{id}/environment-mapping/: which project (team id)
// serves each environment. Preview and Development default to Production when nil.
type EnvironmentMapping struct {
	Production  int  `json:"production"`
	Preview     *int `json:"preview,omitempty"`
	Development *int `json:"development,omitempty"`
}

// OrganizationIntegrationsService is the organization integrations API,
// /api/organizations/{org}/integrations/ (API key scope organization_integration:read).
type OrganizationIntegrationsService service

// List iterates over the organization's integrations:
// GET /api/organizations/{org}/integrations/, following pagination. Route name
// "organization_integrations.list".
func (s *OrganizationIntegrationsService) List(ctx context.Context) iter.Seq2[OrganizationIntegration, error] {
	return list[OrganizationIntegration](ctx, s.client, "organization_integrations.list", s.client.orgPath("integrations"), nil)
}

// ListAll returns every integration: GET /api/organizations/{org}/integrations/ over all
// pages.
func (s *OrganizationIntegrationsService) ListAll(ctx context.Context) ([]OrganizationIntegration, error) {
	return collect(s.List(ctx))
}

// Get returns one integration: GET /api/organizations/{org}/integrations/{id}/. Route name
// "organization_integrations.get". An unknown id, or another organization's, is a 404
// ([IsNotFound]).
func (s *OrganizationIntegrationsService) Get(ctx context.Context, id string) (*OrganizationIntegration, error) {
	id, err := normalizeUUID("integration id", id)
	if err != nil {
		return nil, err
	}
	var out OrganizationIntegration
	if err := s.client.get(ctx, "organization_integrations.get", s.client.orgPath("integrations", id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateEnvironmentMapping sets which projects serve a connectable integration's
// environments: PATCH /api/organizations/{org}/integrations/{id}/environment-mapping/.
// Route name "organization_integrations.environment_mapping".
//
// PostHog refuses this action to personal API keys: it has no API-key scope, so with the
// key this client sends it always answers 403 "This action does not support personal API
// key access" ([IsAuth]); only a logged-in session in PostHog's UI can change the
// mapping. The method exists so that callers get that answer as a typed error rather than
// discovering it. Its 400 bodies are just {"detail": …} (e.g. "Environment mapping is only
// supported for connectable integrations.").
func (s *OrganizationIntegrationsService) UpdateEnvironmentMapping(ctx context.Context, id string, m EnvironmentMapping) (*OrganizationIntegration, error) {
	id, err := normalizeUUID("integration id", id)
	if err != nil {
		return nil, err
	}
	var out OrganizationIntegration
	if _, err := s.client.send(ctx, "organization_integrations.environment_mapping", http.MethodPatch, s.client.orgPath("integrations", id, "environment-mapping"), m, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}
