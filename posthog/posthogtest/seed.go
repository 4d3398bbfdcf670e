package posthogtest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/accessbot/accessbot/posthog"
)

// ---- seeding ----

// AddUser creates an active user who is a member of the organization at level
// posthog.LevelMember (see SetUserLevel), and returns it as the API shows it. Use its UUID
// as user_uuid for role memberships.
func (s *Server) AddUser(email, first, last string) posthog.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return convert[posthog.User](s.userJSON(s.newUser(email, first, last, s.orgID, posthog.LevelMember)))
}

// AddUserOutsideOrganization creates an active user who is not a member of the
// organization: adding them to a role answers "User does not exist.".
func (s *Server) AddUserOutsideOrganization(email, first, last string) posthog.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return convert[posthog.User](s.userJSON(s.newUser(email, first, last, "", 0)))
}

// SetUserLevel sets a user's organization level (posthog.LevelMember, LevelAdmin,
// LevelOwner). It panics for a user who is not a member.
func (s *Server) SetUserLevel(userUUID string, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.memberOf(s.orgID, s.mustUser(userUUID).uuid)
	if m == nil {
		panic(fmt.Sprintf("posthogtest: SetUserLevel: user %s is not a member", userUUID))
	}
	m.level = level
	m.updatedAt = s.now()
}

// DeactivateUser marks a user inactive: they leave the members list, adding them to a role
// answers "User does not exist.", and API keys they own become invalid.
func (s *Server) DeactivateUser(userUUID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser(userUUID).active = false
}

// SetLastLogin sets a user's last_login as shown in the members list; the zero time sets it
// back to null (never logged in).
func (s *Server) SetLastLogin(userUUID string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser(userUUID)
	if t.IsZero() {
		u.lastLogin = nil
		return
	}
	t = t.UTC().Truncate(time.Microsecond)
	u.lastLogin = &t
}

// SetTwoFactor sets a user's is_2fa_enabled as shown in the members list.
func (s *Server) SetTwoFactor(userUUID string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser(userUUID).is2FA = enabled
}

// SetSocialAuth sets a user's has_social_auth as shown in the members list.
func (s *Server) SetSocialAuth(userUUID string, has bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser(userUUID).hasSocialAuth = has
}

// SetCurrentOrganization switches the main key's owner to orgID, as choosing another
// organization in PostHog's UI does: from then on "@current" means orgID for their key.
// PostHog only lets people switch to organizations they belong to, so the owner joins orgID
// (at their level in the main organization) if they are not a member yet. It panics for an
// unknown organization.
func (s *Server) SetCurrentOrganization(orgID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := parseUUID(orgID)
	if s.orgs[id] == nil {
		panic(fmt.Sprintf("posthogtest: SetCurrentOrganization: unknown organization %q", orgID))
	}
	owner := s.users[s.keys[s.apiKey].userUUID]
	if s.memberOf(id, owner.uuid) == nil {
		level := posthog.LevelMember
		if m := s.memberOf(s.orgID, owner.uuid); m != nil {
			level = m.level
		}
		t := s.now()
		s.addMember(id, owner.uuid, level, t)
	}
	owner.currentOrg = id
}

// CurrentOrganizationID returns the organization "@current" means for the main key now.
func (s *Server) CurrentOrganizationID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.currentOrg(s.users[s.keys[s.apiKey].userUUID]); o != nil {
		return o.id
	}
	return ""
}

// SetProductFeatures replaces the organization's available_product_features (none: a plan
// without any, e.g. without role-based access).
func (s *Server) SetProductFeatures(features ...ProductFeature) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[s.orgID].features = append([]ProductFeature{}, features...)
}

// SetRoleBasedAccess adds or removes FeatureRoleBasedAccess in the organization's
// available_product_features, as a plan change would. Without it PostHog still accepts
// role memberships (201) but ignores them when it decides access.
func (s *Server) SetRoleBasedAccess(available bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[s.orgID]
	o.features = slices.DeleteFunc(o.features, func(f ProductFeature) bool { return f.Key == FeatureRoleBasedAccess })
	if available {
		o.features = append(o.features, DefaultProductFeatures[0])
	}
}

// SetKeyScopedProjects restricts an API key to these project ids (none: unrestricted); see
// [WithKeyScopedProjects]. It panics for an unknown key.
func (s *Server) SetKeyScopedProjects(key string, teamIDs ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustKey(key).scopedTeams = slices.Clone(teamIDs)
}

// SetKeyScopedOrganizations restricts an API key to these organization ids (none:
// unrestricted); see [WithKeyScopedOrganizations]. It panics for an unknown key.
func (s *Server) SetKeyScopedOrganizations(key string, orgIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustKey(key).scopedOrgs = slices.Clone(orgIDs)
}

// SetKeyScopes replaces an API key's scopes. It panics for an unknown key.
func (s *Server) SetKeyScopes(key string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustKey(key).scopes = slices.Clone(scopes)
}

func (s *Server) mustKey(key string) *apiKey {
	k := s.keys[key]
	if k == nil {
		panic("posthogtest: unknown API key")
	}
	return k
}

// AddIntegration adds an organization-level integration (as an installation flow such as
// Vercel's would) created by the main key's owner, and returns it as the API shows it.
// integrationID "" is null.
func (s *Server) AddIntegration(kind, integrationID string, config map[string]any) posthog.OrganizationIntegration {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	x := &integration{
		id:        uuid.NewString(),
		orgID:     s.orgID,
		kind:      kind,
		config:    config,
		createdAt: t,
		updatedAt: t,
		createdBy: s.keys[s.apiKey].userUUID,
	}
	if integrationID != "" {
		x.integrationID = &integrationID
	}
	s.integs = append(s.integs, x)
	return convert[posthog.OrganizationIntegration](s.integrationJSON(x))
}

// AddAPIKey creates another personal API key, owned by a new user who is a member of the
// organization at level, with the given scopes (DefaultScopes when none are given), and
// returns it.
func (s *Server) AddAPIKey(level int, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	n := len(s.keys) + 1
	owner := s.newUser(fmt.Sprintf("key-owner-%d@posthog.test", n), "Key", fmt.Sprintf("Owner %d", n), s.orgID, level)
	key := "phx_test_" + randomHex(20)
	s.keys[key] = &apiKey{key: key, userUUID: owner.uuid, scopes: slices.Clone(scopes)}
	return key
}

// AddOrganization creates another organization that no API key's owner belongs to (requests
// to it answer 403 "You do not have permission to perform this action.") and returns its id.
func (s *Server) AddOrganization(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newOrg(uuid.NewString(), name).id
}

// AddRole creates a role in the organization. It panics if the name is taken (ignoring
// case), as PostHog would refuse it.
func (s *Server) AddRole(name string) posthog.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.TrimSpace(name)
	for _, r := range s.orgRoles(s.orgID) {
		if strings.EqualFold(r.name, name) {
			panic(fmt.Sprintf("posthogtest: AddRole(%q): name taken", name))
		}
	}
	return convert[posthog.Role](s.roleJSON(s.insertRole(s.orgID, name)))
}

// AddMembership adds a user to a role and returns the membership; if the user is already a
// member it returns the existing one. It panics for an unknown role or user.
func (s *Server) AddMembership(roleID, userUUID string) posthog.RoleMembership {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRole(roleID)
	u := s.mustUser(userUUID)
	rm := s.roleMembership(r.id, u.uuid)
	if rm == nil {
		rm = s.insertMembership(r.id, u.uuid)
	}
	return convert[posthog.RoleMembership](s.membershipJSON(rm))
}

// RemoveMembership removes a user from a role, as a change made in PostHog's UI would, and
// reports whether they were a member.
func (s *Server) RemoveMembership(roleID, userUUID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rid, _ := parseUUID(roleID)
	uid, _ := parseUUID(userUUID)
	n := len(s.memberships)
	s.memberships = slices.DeleteFunc(s.memberships, func(rm *membership) bool { return rm.roleID == rid && rm.userUUID == uid })
	return len(s.memberships) != n
}

// SetDefaultRole sets (or, with "", clears) the organization's
// default_role_id: members who join from then on are added to that role.
func (s *Server) SetDefaultRole(roleID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if roleID == "" {
		s.orgs[s.orgID].defaultRoleID = nil
		return
	}
	s.orgs[s.orgID].defaultRoleID = ptr(s.mustRole(roleID).id)
}

func (s *Server) mustUser(id string) *user {
	norm, _ := parseUUID(id)
	u := s.users[norm]
	if u == nil {
		panic(fmt.Sprintf("posthogtest: unknown user %q", id))
	}
	return u
}

func (s *Server) mustRole(id string) *role {
	norm, _ := parseUUID(id)
	r := s.roles[norm]
	if r == nil {
		panic(fmt.Sprintf("posthogtest: unknown role %q", id))
	}
	return r
}

// ---- inspection ----

// Memberships returns a role's memberships ordered by joined_at (none for an unknown role).
func (s *Server) Memberships(roleID string) []posthog.RoleMembership {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := parseUUID(roleID)
	out := []posthog.RoleMembership{}
	for _, rm := range s.roleMemberships(id) {
		out = append(out, convert[posthog.RoleMembership](s.membershipJSON(rm)))
	}
	return out
}

// HasMember reports whether the user is a member of the role.
func (s *Server) HasMember(roleID, userUUID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rid, _ := parseUUID(roleID)
	uid, _ := parseUUID(userUUID)
	return s.roleMembership(rid, uid) != nil
}

// Roles returns the organization's roles in creation order.
func (s *Server) Roles() []posthog.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []posthog.Role{}
	for _, r := range s.orgRoles(s.orgID) {
		out = append(out, convert[posthog.Role](s.roleJSON(r)))
	}
	return out
}

// ExternalReferences returns the organization's role external references.
func (s *Server) ExternalReferences() []posthog.RoleExternalReference {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []posthog.RoleExternalReference{}
	for _, x := range s.refs {
		if x.orgID == s.orgID {
			out = append(out, convert[posthog.RoleExternalReference](s.refJSON(x)))
		}
	}
	return out
}

// Organization returns the organization as the main key's owner sees it. It panics if the
// organization was deleted.
func (s *Server) Organization() posthog.Organization {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[s.orgID]
	if o == nil {
		panic("posthogtest: the organization was deleted")
	}
	return convert[posthog.Organization](s.orgJSON(o, s.keys[s.apiKey].userUUID))
}

// ---- calls ----

// Calls returns every request received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsMatching returns the calls with the method ("" for any) whose path starts with
// pathPrefix. "@current" in a recorded path also matches the organization's id, and the
// other way round.
func (s *Server) CallsMatching(method, pathPrefix string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := "/api/organizations/" + posthog.CurrentOrganization + "/"
	byID := "/api/organizations/" + s.orgID + "/"
	norm := func(p string) string { return strings.Replace(p, cur, byID, 1) }
	prefix := norm(pathPrefix)
	var out []Call
	for _, c := range s.calls {
		if (method == "" || c.Method == method) && strings.HasPrefix(norm(c.Path), prefix) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// ---- faults ----

// FailNext makes the next n requests fail with status before anything else is checked, so
// nothing is applied: 500 answers PostHog's JSON server_error, 502/503/504 a proxy's HTML
// page (a non-JSON error body), and other statuses PostHog's error shape.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// UnavailableNext makes the next n requests answer as PostHog does on a transient database
// error: 503 with Retry-After (retryAfter rounded up to whole seconds, at least 1) and a JSON
// server_error body. Nothing is applied.
func (s *Server) UnavailableNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailN, s.unavailAfter = n, retryAfter
}

// ThrottleNext makes the next n requests answer 429 with Retry-After (retryAfter rounded up
// to whole seconds) and PostHog's throttled body. Nothing is applied.
func (s *Server) ThrottleNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleN, s.throttleAfter = n, retryAfter
}

// SetLatency delays every response by d (0 to stop).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// ApplyThenTimeoutNext makes the next n requests take effect as usual but never get an
// answer: the server holds the response until the client gives up (its timeout or context),
// then closes the connection (after at most 30s, or at Close). The client thus sees a
// timeout for a write the server did apply.
func (s *Server) ApplyThenTimeoutNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeoutN = n
}

// ApplyThenDropNext makes the next n requests take effect as usual, then closes the
// connection at once without answering: the client sees a broken connection (EOF) for a
// write the server did apply.
func (s *Server) ApplyThenDropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}
