package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/accessbot/accessbot/posthog"
)

// The PostHog preflight. Before the bot acts on PostHog it proves that the
// key and the organization can do what the bot needs, and stops start-up with
// one line saying what to fix when they can't:
//  1. the key is valid and not scoped to projects or to other organizations;
//  2. the organization exists for the key and is pinned by id (`@current`
//     follows the key owner's last-used organization in PostHog's UI);
//  3. the key's owner is an organization admin (level 8 or more);
//  4. the organization's plan has role-based access — without it PostHog
//     accepts memberships that grant nothing;
//  5. the three scopes work: organization:read (roles), organization_member:read
//     (members), organization:write (a create PostHog refuses as invalid, so
//     nothing is created).
//
// PostHog being unreachable is not a failure: readiness stays false and the
// check is retried; executions wait for it.

// preflightFailure is a permanent preflight failure: what to fix, in one line.
type preflightFailure struct{ msg string }

func (f *preflightFailure) Error() string { return f.msg }

func failf(format string, args ...any) error {
	return &preflightFailure{msg: fmt.Sprintf(format, args...)}
}

// preflight runs the checks and remembers the outcome for readiness.
type preflight struct {
	ph  *posthog.Client
	log zerolog.Logger

	mu     sync.Mutex
	passed bool
	last   error
	org    posthog.Organization
}

// Ready reports nil once the checks passed, else why not.
func (p *preflight) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.passed:
		return nil
	case p.last != nil:
		return fmt.Errorf("PostHog preflight not passed: %w", p.last)
	}
	return errors.New("PostHog preflight not run yet")
}

// Passed reports whether the checks passed.
func (p *preflight) Passed() bool { return p.Ready() == nil }

// run does the checks once: nil when they pass, a *preflightFailure when the
// configuration must change, any other error when PostHog could not be asked.
func (p *preflight) run(ctx context.Context) error {
	ctx = posthog.WithPriority(ctx, posthog.PriorityInteractive)
	org, err := p.check(ctx)
	p.mu.Lock()
	p.last, p.passed = err, err == nil
	if err == nil {
		p.org = org
	}
	p.mu.Unlock()
	if err == nil {
		p.log.Info().Str("organization", org.Name).Str("organization_id", org.ID).
			Msg("PostHog preflight passed: key of an organization admin, scopes, role-based access")
		if org.DefaultRoleID != nil {
			p.log.Warn().Str("organization_id", org.ID).Str("role_id", *org.DefaultRoleID).
				Msg("the PostHog organization has a default role: every new member joins it without a request or approval; " +
					"accessbot reports those memberships as drift, but cannot stop them; clear the default role in PostHog's organization settings unless that access is meant for everyone")
		}
	}
	return err
}

// await runs the checks until they pass (nil), fail for good, or ctx ends.
func (p *preflight) await(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = time.Second, time.Minute
	for {
		err := p.run(ctx)
		var f *preflightFailure
		if err == nil || errors.As(err, &f) {
			return err
		}
		wait := bo.NextBackOff()
		p.log.Warn().Err(err).Dur("retry_in", wait).Msg("PostHog is not reachable; preflight will retry (not ready)")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (p *preflight) check(ctx context.Context) (posthog.Organization, error) {
	org, err := p.ph.Organizations.Get(ctx, "")
	if err != nil {
		return posthog.Organization{}, keyError(err, "organization:read")
	}
	name := fmt.Sprintf("%q (%s)", org.Name, org.ID)
	switch {
	case org.MembershipLevel == nil || *org.MembershipLevel < posthog.LevelAdmin:
		return posthog.Organization{}, failf("POSTHOG_PERSONAL_API_KEY belongs to someone who is not an admin of the PostHog organization %s; "+
			"use a key of an organization admin (role memberships can only be changed by admins)", name)
	case !org.HasFeature(posthog.FeatureRoleBasedAccess):
		return posthog.Organization{}, failf("the PostHog organization %s has no role-based access on its plan (%s is not among its available_product_features): "+
			"PostHog would accept role memberships that grant nothing, so accessbot will not start; upgrade the plan or point POSTHOG_ORGANIZATION_ID at another organization", name, posthog.FeatureRoleBasedAccess)
	}
	probes := []struct {
		method, path, scope string
		body                any
		want                int
	}{
		{http.MethodGet, "api/organizations/" + org.ID + "/roles/?limit=1", "organization:read", nil, http.StatusOK},
		{http.MethodGet, "api/organizations/" + org.ID + "/members/?limit=1", "organization_member:read", nil, http.StatusOK},
		// Blank names are refused after the scope and level checks, so this
		// proves organization:write without creating anything.
		{http.MethodPost, "api/organizations/" + org.ID + "/roles/", "organization:write", map[string]string{"name": ""}, http.StatusBadRequest},
	}
	for _, pr := range probes {
		req, err := p.ph.NewRequest(pr.method, pr.path, pr.body)
		if err != nil {
			return posthog.Organization{}, err
		}
		_, err = p.ph.Do(ctx, req, nil)
		var apiErr *posthog.APIError
		switch {
		case err == nil && pr.want == http.StatusOK:
			continue
		case errors.As(err, &apiErr) && apiErr.StatusCode == pr.want:
			continue
		case err == nil:
			return posthog.Organization{}, failf("PostHog accepted a role with a blank name while checking organization:write; report this (nothing else was changed)")
		}
		return posthog.Organization{}, keyError(err, pr.scope)
	}
	return *org, nil
}

// keyError says what to fix for a refused preflight call, or passes a
// temporary failure on.
func keyError(err error, scope string) error {
	if posthog.IsTemporary(err) {
		return err
	}
	var apiErr *posthog.APIError
	if !errors.As(err, &apiErr) {
		return failf("checking PostHog at POSTHOG_HOST: %v", err)
	}
	detail := apiErr.Detail
	switch {
	case apiErr.StatusCode == http.StatusUnauthorized:
		return failf("POSTHOG_PERSONAL_API_KEY was refused by PostHog (%s); it needs the scopes organization:read, organization:write and organization_member:read", detail)
	case strings.Contains(detail, "scoped projects"):
		return failf("POSTHOG_PERSONAL_API_KEY is scoped to projects, which PostHog refuses on organization endpoints; create a key without a project scope (organization access)")
	case strings.Contains(detail, "does not have access to the requested organization"):
		return failf("POSTHOG_PERSONAL_API_KEY is limited to other organizations than POSTHOG_ORGANIZATION_ID; allow it this organization")
	case strings.Contains(detail, "missing required scope"):
		return failf("POSTHOG_PERSONAL_API_KEY lacks the scope %s (PostHog: %s); it needs organization:read, organization:write and organization_member:read", scope, detail)
	case strings.Contains(detail, "access level is insufficient"):
		return failf("POSTHOG_PERSONAL_API_KEY belongs to someone who is not an organization admin (PostHog: %s)", detail)
	case apiErr.StatusCode == http.StatusNotFound || apiErr.StatusCode == http.StatusForbidden:
		return failf("POSTHOG_ORGANIZATION_ID: PostHog has no such organization for this key (%s)", detail)
	}
	return failf("checking PostHog at POSTHOG_HOST: %v", err)
}
