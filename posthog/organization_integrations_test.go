package posthog_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

func integrationsEnv(t *testing.T, copts ...posthog.Option) *env {
	t.Helper()
	return newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyScopes(append(posthogtest.DefaultScopes, posthogtest.ScopeOrganizationIntegrationRead)...)}, copts...)
}

func TestOrganizationIntegrationsList(t *testing.T) {
	e := integrationsEnv(t, posthog.WithPageSize(2))
	var want []string
	for i := range 5 {
		x := e.srv.AddIntegration("vercel", fmt.Sprintf("icfg_%d", i), map[string]any{"type": "connectable", "n": i})
		want = append(want, x.ID)
	}
	all, err := e.c.OrganizationIntegrations.ListAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range all {
		got = append(got, x.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ids = %v, want %v", got, want)
	}
	calls := e.srv.CallsMatching("GET", e.orgPath("integrations/"))
	if len(calls) != 3 {
		t.Errorf("%d pages, want 3", len(calls))
	}
	if q, _ := url.ParseQuery(calls[0].Query); q.Get("limit") != "2" {
		t.Errorf("first page query %q", calls[0].Query)
	}
	x := all[1]
	var cfg map[string]any
	if err := json.Unmarshal(x.Config, &cfg); err != nil || cfg["type"] != "connectable" || cfg["n"] != 1.0 {
		t.Errorf("config = %s, %v", x.Config, err)
	}
	if x.Kind != "vercel" || x.IntegrationID == nil || *x.IntegrationID != "icfg_1" || x.CreatedAt.IsZero() || x.UpdatedAt.IsZero() ||
		x.CreatedBy == nil || x.CreatedBy.Email != "key-owner@posthog.test" {
		t.Errorf("integration = %+v", x)
	}
	n := 0
	for _, err := range e.c.OrganizationIntegrations.List(ctx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("List yielded %d", n)
	}
}

func TestOrganizationIntegrationsGet(t *testing.T) {
	e := integrationsEnv(t)
	x := e.srv.AddIntegration("aws-marketplace", "", nil)
	got, err := e.c.OrganizationIntegrations.Get(ctx(t), strings.ToUpper(x.ID))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != x.ID || got.Kind != "aws-marketplace" || got.IntegrationID != nil || string(got.Config) != "{}" {
		t.Errorf("got %+v (config %s)", got, got.Config)
	}
	if calls := e.srv.CallsMatching("GET", e.orgPath("integrations/"+x.ID+"/")); len(calls) != 1 {
		t.Errorf("calls = %+v", e.srv.Calls())
	}
	if _, err := e.c.OrganizationIntegrations.Get(ctx(t), "0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e"); !posthog.IsNotFound(err) {
		t.Errorf("unknown: %v", err)
	}
	e.srv.ResetCalls()
	if _, err := e.c.OrganizationIntegrations.Get(ctx(t), "../roles"); !posthog.IsValidation(err) {
		t.Errorf("malformed id: %v", err)
	}
	if len(e.srv.Calls()) != 0 {
		t.Error("a malformed id reached the server")
	}
}

func TestOrganizationIntegrationsNeedScope(t *testing.T) {
	e := newEnv(t) // DefaultScopes lack organization_integration:read
	e.srv.AddIntegration("vercel", "icfg", nil)
	_, err := e.c.OrganizationIntegrations.ListAll(ctx(t))
	if !posthog.IsAuth(err) || !strings.Contains(err.Error(), "API key missing required scope 'organization_integration:read'") {
		t.Errorf("err = %v", err)
	}
}

// PostHog refuses the environment mapping to personal API keys, whatever the scopes.
func TestOrganizationIntegrationsEnvironmentMappingRefusedToAPIKeys(t *testing.T) {
	e := newEnvWith(t, []posthogtest.Option{posthogtest.WithKeyScopes("*")})
	x := e.srv.AddIntegration("vercel", "icfg", map[string]any{"type": "connectable"})
	got, err := e.c.OrganizationIntegrations.UpdateEnvironmentMapping(ctx(t), x.ID, posthog.EnvironmentMapping{Production: 1, Preview: posthog.Ptr(2)})
	if got != nil || !posthog.IsAuth(err) || posthog.IsTemporary(err) || !strings.Contains(err.Error(), posthogtest.DetailNoAPIKeyAccess) {
		t.Fatalf("got %+v, %v", got, err)
	}
	calls := e.srv.CallsMatching("PATCH", e.orgPath("integrations/"+x.ID+"/environment-mapping/"))
	if len(calls) != 1 {
		t.Fatalf("calls = %+v (a 403 is not retried)", e.srv.Calls())
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(calls[0].Body), &body); err != nil || body["production"] != 1.0 || body["preview"] != 2.0 || len(body) != 2 {
		t.Errorf("body = %s", calls[0].Body)
	}
	if calls[0].Status != 403 {
		t.Errorf("status = %d", calls[0].Status)
	}
}
