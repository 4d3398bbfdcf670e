// Package posthogdir adapts the PostHog client to the workflow's Directory:
// it maps PostHog's types to the workflow's and its errors to plain words
// that a requester can read, marking the ones worth retrying.
package posthogdir

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/workflow"
)

// Directory is workflow.Directory over a PostHog organization.
type Directory struct {
	client *posthog.Client
}

var _ workflow.Directory = (*Directory)(nil)

// New returns a Directory using client.
func New(client *posthog.Client) *Directory { return &Directory{client: client} }

// priority carries the workflow's priority over to the client's budget.
func priority(ctx context.Context) context.Context {
	p := posthog.PriorityExecution
	switch workflow.PriorityFrom(ctx) {
	case workflow.PriorityInteractive:
		p = posthog.PriorityInteractive
	case workflow.PriorityBackground:
		p = posthog.PriorityBackground
	}
	return posthog.WithPriority(ctx, p)
}

// Roles lists the organization's roles with their memberships, which PostHog
// embeds in each role: one call per hundred roles, whatever their size.
func (d *Directory) Roles(ctx context.Context) ([]workflow.Role, error) {
	roles, err := d.client.Roles.ListAll(priority(ctx))
	if err != nil {
		return nil, mapError("list roles", err)
	}
	out := make([]workflow.Role, 0, len(roles))
	for _, r := range roles {
		out = append(out, workflow.Role{ID: r.ID, Name: r.Name, Members: len(r.Members), MemberList: roleMembers(r.Members)})
	}
	return out, nil
}

func roleMembers(ms []posthog.RoleMembership) []workflow.RoleMember {
	out := make([]workflow.RoleMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, roleMember(m))
	}
	return out
}

func roleMember(m posthog.RoleMembership) workflow.RoleMember {
	return workflow.RoleMember{MembershipID: m.ID, Member: member(m.User)}
}

// FindMember finds an organization member by email, case-insensitively, in
// at most two calls.
func (d *Directory) FindMember(ctx context.Context, email string) (workflow.Member, error) {
	m, err := d.client.Members.FindByEmail(priority(ctx), email)
	if err != nil {
		if errors.Is(err, posthog.ErrNotFound) {
			return workflow.Member{}, workflow.Errorf(workflow.ENOTFOUND, "No PostHog member has the email %s.", email)
		}
		return workflow.Member{}, mapError("find member", err)
	}
	return member(m.User), nil
}

// FindRoleMember returns the user's membership of the role, reading the role
// (one call, whatever its size).
func (d *Directory) FindRoleMember(ctx context.Context, roleID, userUUID string) (workflow.RoleMember, bool, error) {
	m, err := d.client.RoleMemberships.Find(priority(ctx), roleID, userUUID)
	switch {
	case err == nil:
		return roleMember(*m), true, nil
	case posthog.IsNotFound(err):
		return workflow.RoleMember{}, false, nil
	}
	return workflow.RoleMember{}, false, mapError("find the role membership", err)
}

// AddRoleMember adds the user to the role; an existing membership counts as
// success (the client's create already re-checks before a retry).
func (d *Directory) AddRoleMember(ctx context.Context, roleID, userUUID string) (string, bool, error) {
	ctx = priority(ctx)
	m, err := d.client.RoleMemberships.Create(ctx, roleID, userUUID)
	if err == nil {
		return m.ID, false, nil
	}
	if posthog.IsAlreadyMember(err) {
		existing, ferr := d.client.RoleMemberships.Find(ctx, roleID, userUUID)
		if ferr == nil {
			return existing.ID, true, nil
		}
		return "", false, mapError("find existing membership", ferr)
	}
	return "", false, mapError("add role member", err)
}

// RemoveRoleMember deletes a membership; existed is false when PostHog had
// no such membership.
func (d *Directory) RemoveRoleMember(ctx context.Context, roleID, membershipID string) (bool, error) {
	err := d.client.RoleMemberships.Delete(priority(ctx), roleID, membershipID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, posthog.ErrNotFound):
		return false, nil
	}
	return false, mapError("remove role member", err)
}

func member(u posthog.User) workflow.Member {
	return workflow.Member{UUID: u.UUID, Email: u.Email, Name: strings.TrimSpace(u.FirstName + " " + u.LastName)}
}

// failure is a PostHog error in words for people; Unwrap keeps the
// client's error, with status and endpoint, for logs.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

// mapError turns a PostHog failure into words for people and marks failures
// worth retrying as temporary.
func mapError(doing string, err error) error {
	var apiErr *posthog.APIError
	errors.As(err, &apiErr)
	var busy *posthog.BusyError
	switch {
	case errors.As(err, &busy):
		return &workflow.TemporaryError{Busy: true, RetryAfter: busy.RetryAfter,
			Err: &failure{fmt.Sprintf("accessbot's PostHog request budget could not %s in time", doing), err}}
	case posthog.IsTemporary(err):
		te := &workflow.TemporaryError{Err: &failure{fmt.Sprintf("PostHog could not %s right now", doing), err}}
		if apiErr != nil {
			te.RetryAfter = apiErr.RetryAfter
			te.Err = &failure{fmt.Sprintf("PostHog could not %s right now (HTTP %d)", doing, apiErr.StatusCode), err}
		}
		return te
	case posthog.IsAuth(err):
		return &failure{fmt.Sprintf("PostHog refused the bot's API key (%s). An operator must check POSTHOG_PERSONAL_API_KEY, its scopes, and that its owner is an organization admin.", apiErr.Detail), err}
	case apiErr != nil && apiErr.StatusCode == 404:
		return &failure{fmt.Sprintf("PostHog could not %s: not found (the role or organization may have been deleted).", doing), err}
	case apiErr != nil && apiErr.Detail != "":
		return &failure{fmt.Sprintf("PostHog refused to %s: %s", doing, apiErr.Detail), err}
	default:
		return &failure{fmt.Sprintf("PostHog could not %s: %v", doing, err), err}
	}
}

var _ workflow.ReviewDirectory = (*Directory)(nil)

// RoleMembersDetailed lists a role's memberships with each member's
// last_login and is_2fa_enabled, which only the organization members list
// carries (a role membership's nested member has no last_login). It reads
// the role (memberships embedded) and the members list, page by page: background
// work for access reviews, never a person's request.
func (d *Directory) RoleMembersDetailed(ctx context.Context, roleID string) ([]workflow.ReviewMember, error) {
	ctx = priority(ctx)
	role, err := d.client.Roles.Get(ctx, roleID) // embeds every membership: one call
	switch {
	case posthog.IsNotFound(err):
		return nil, nil // a role deleted meanwhile has no members, as Roles tells it
	case err != nil:
		return nil, mapError("list role members", err)
	}
	ms := roleMembers(role.Members)
	if len(ms) == 0 {
		return nil, nil
	}
	org, err := d.client.Members.ListAll(ctx)
	if err != nil {
		return nil, mapError("list organization members", err)
	}
	byUser := make(map[string]posthog.OrganizationMember, len(org))
	for _, m := range org {
		byUser[m.User.UUID] = m
	}
	out := make([]workflow.ReviewMember, 0, len(ms))
	for _, m := range ms {
		rm := workflow.ReviewMember{RoleMember: m}
		if om, ok := byUser[m.UUID]; ok {
			twoFA := om.Is2FAEnabled
			rm.TwoFactor = &twoFA
			if om.LastLogin != nil {
				rm.LastLogin = om.LastLogin.UTC()
			}
		}
		out = append(out, rm)
	}
	return out, nil
}
