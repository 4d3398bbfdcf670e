package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Roles lists PostHog's roles, sorted by name. It answers from a cache that
// is refreshed in the background once older than RoleCacheTTL, so opening the
// request modal costs no PostHog call but the first.
func (s *Service) Roles(ctx context.Context) ([]Role, error) {
	return s.rolesList(WithPriority(ctx, PriorityInteractive), false)
}

// rolesList returns the cached roles (refreshing a stale cache in the
// background) or, when fresh or there is no cache yet, asks PostHog.
func (s *Service) rolesList(ctx context.Context, fresh bool) ([]Role, error) {
	if !fresh {
		s.rolesMu.Lock()
		roles, stale := s.roles, s.Now().Sub(s.rolesFetched) >= s.cfg.RoleCacheTTL
		if roles != nil && stale && !s.rolesRefreshing {
			s.rolesRefreshing = true
			go s.refreshRoles()
		}
		s.rolesMu.Unlock()
		if roles != nil {
			return roles, nil
		}
	}
	return s.fetchRoles(ctx, !fresh)
}

// refreshRoles renews the role cache in the background.
func (s *Service) refreshRoles() {
	ctx, cancel := context.WithTimeout(WithPriority(context.Background(), PriorityBackground), time.Minute)
	defer cancel()
	if _, err := s.fetchRoles(ctx, true); err != nil {
		s.log.Debug().Err(err).Msg("refreshing the role cache")
	}
	s.rolesMu.Lock()
	s.rolesRefreshing = false
	s.rolesMu.Unlock()
}

// fetchRoles lists the roles and caches them. When PostHog fails and
// allowStale is set it answers from the cache: an old list still lets people
// pick, and execution checks with PostHog anyway.
func (s *Service) fetchRoles(ctx context.Context, allowStale bool) ([]Role, error) {
	asked := s.Now()
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if allowStale {
		// Callers that queued behind a listing take its answer instead of
		// asking PostHog again.
		s.rolesMu.Lock()
		roles, fetched := s.roles, s.rolesFetched
		s.rolesMu.Unlock()
		if roles != nil && !fetched.Before(asked) {
			return roles, nil
		}
	}
	roles, err := s.dir.Roles(ctx)
	s.rolesMu.Lock()
	defer s.rolesMu.Unlock()
	if err != nil {
		if s.roles != nil && allowStale {
			s.log.Warn().Err(err).Msg("listing PostHog roles failed; using the cached list")
			return s.roles, nil
		}
		return nil, directoryError("list the PostHog roles", err)
	}
	sort.Slice(roles, func(i, j int) bool { return strings.ToLower(roles[i].Name) < strings.ToLower(roles[j].Name) })
	s.roles, s.rolesFetched = roles, s.Now()
	return roles, nil
}

// ResolveRole finds a role by id or by name (case-insensitive). The error is
// an EINVALID on field "role" when there is no such role.
func (s *Service) ResolveRole(ctx context.Context, nameOrID string) (Role, error) {
	if _, set := ctx.Value(priorityKey{}).(Priority); !set {
		ctx = WithPriority(ctx, PriorityInteractive)
	}
	want := strings.TrimSpace(nameOrID)
	if want == "" {
		return Role{}, FieldErrorf("role", "Pick a role.")
	}
	for _, fresh := range []bool{false, true} {
		roles, err := s.rolesList(ctx, fresh)
		if err != nil {
			return Role{}, err
		}
		for _, r := range roles {
			if r.ID == want || strings.EqualFold(r.Name, want) {
				return r, nil
			}
		}
	}
	return Role{}, FieldErrorf("role", "There is no PostHog role called “%s”. /access roles lists them.", want)
}

// RoleInfo is a role with what people need to know to ask for it.
type RoleInfo struct {
	Role
	Owners []string
	Rules  Rules
}

// RoleDetails lists every role with its owners and rules, for `/access roles`.
func (s *Service) RoleDetails(ctx context.Context) ([]RoleInfo, error) {
	roles, err := s.Roles(ctx)
	if err != nil {
		return nil, err
	}
	var overrides []OwnerOverride
	err = s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		overrides, err = tx.OwnerOverrides(ctx, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read owner overrides: %w", err)
	}
	out := make([]RoleInfo, 0, len(roles))
	for _, r := range roles {
		var mine []OwnerOverride
		for _, o := range overrides {
			if o.RoleID == r.ID {
				mine = append(mine, o)
			}
		}
		out = append(out, RoleInfo{Role: r, Owners: s.effectiveOwners(r, mine), Rules: s.policy.RulesFor(r)})
	}
	return out, nil
}

// Owners returns who decides requests for a role: the policy's owners of the
// role changed by the overrides made from Slack, or the default owners when
// that leaves nobody. Admins decide too but are not listed.
func (s *Service) Owners(ctx context.Context, role Role) ([]string, error) {
	var owners []string
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		owners, err = s.ownersTx(ctx, tx, role)
		return err
	})
	return owners, err
}

// mayManage reports whether actor is an admin or an owner of the role: who
// may decide on, revoke, or remove others from it.
func (s *Service) mayManage(ctx context.Context, tx Tx, role Role, actor string) (bool, error) {
	if s.admins[actor] {
		return true, nil
	}
	owners, err := s.ownersTx(ctx, tx, role)
	return slices.Contains(owners, actor), err
}

// decidersTx are who is asked to decide r: the role's owners other than
// its requester and subject, and the admins too when the requester or
// subject is an owner, or when the other owners are fewer than the
// approvals r needs. Admins may always decide; they are asked only then.
func (s *Service) decidersTx(ctx context.Context, tx Tx, r *Request) ([]string, error) {
	owners, err := s.ownersTx(ctx, tx, Role{ID: r.RoleID, Name: r.RoleName})
	if err != nil {
		return nil, err
	}
	self := func(id string) bool { return id == r.RequesterID || id == r.SubjectID }
	out := slices.DeleteFunc(slices.Clone(owners), self)
	if len(out) == len(owners) && len(out) >= r.ApprovalsRequired {
		return out, nil
	}
	return s.withAdmins(out, self), nil
}

// withAdmins appends to people the admins not already there and not skipped.
func (s *Service) withAdmins(people []string, skip func(string) bool) []string {
	for _, a := range s.adminList {
		if (skip == nil || !skip(a)) && !slices.Contains(people, a) {
			people = append(people, a)
		}
	}
	return people
}

// ownersAndAdmins are the role's owners and the admins, for alarms.
func (s *Service) ownersAndAdmins(ctx context.Context, tx Tx, role Role) ([]string, error) {
	out, err := s.ownersTx(ctx, tx, role)
	if err != nil {
		return nil, err
	}
	return s.withAdmins(out, nil), nil
}

func (s *Service) ownersTx(ctx context.Context, tx Tx, role Role) ([]string, error) {
	overrides, err := tx.OwnerOverrides(ctx, role.ID)
	if err != nil {
		return nil, fmt.Errorf("read owners of role %s: %w", role.ID, err)
	}
	return s.effectiveOwners(role, overrides), nil
}

func (s *Service) effectiveOwners(role Role, overrides []OwnerOverride) []string {
	owners := slices.Clone(s.policy.RulesFor(role).Owners)
	for _, o := range overrides {
		i := slices.Index(owners, o.UserID)
		switch {
		case o.Present && i < 0:
			owners = append(owners, o.UserID)
		case !o.Present && i >= 0:
			owners = slices.Delete(owners, i, i+1)
		}
	}
	if len(owners) == 0 {
		owners = slices.Clone(s.policy.Defaults.Owners)
	}
	return owners
}

// standardDurations are the grant lengths offered, 0 meaning permanent.
var standardDurations = []time.Duration{time.Hour, 8 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 0}

// DurationChoices lists the grant lengths a role allows, shortest first,
// permanent last when allowed. A cap that is not a standard length is offered
// itself.
func (s *Service) DurationChoices(role Role) []time.Duration {
	max := s.policy.RulesFor(role).MaxDuration
	if max <= 0 {
		return slices.Clone(standardDurations)
	}
	var out []time.Duration
	for _, d := range standardDurations {
		if d > 0 && d <= max {
			out = append(out, d)
		}
	}
	if !slices.Contains(out, max) {
		out = append(out, max)
	}
	return out
}

// directoryError maps a PostHog failure met while serving a person.
func directoryError(doing string, err error) error {
	var temp *TemporaryError
	if errors.As(err, &temp) && temp.Busy {
		wait := max(temp.RetryAfter.Round(time.Second), time.Second)
		return &Error{Code: EUNAVAILABLE, Message: fmt.Sprintf("accessbot is busy right now (it is pacing its calls to PostHog). Please try again in %s.", wait),
			Err: fmt.Errorf("%s: %w", doing, err)}
	}
	if IsTemporary(err) {
		return &Error{Code: EUNAVAILABLE, Message: "PostHog is not answering right now. Please try again in a minute.", Err: fmt.Errorf("%s: %w", doing, err)}
	}
	if ErrorCode(err) != EINTERNAL {
		return err
	}
	return &Error{Code: EINTERNAL, Message: fmt.Sprintf("I could not %s: %v", doing, err), Err: err}
}
