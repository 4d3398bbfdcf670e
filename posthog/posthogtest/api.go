package posthogtest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/accessbot/accessbot/posthog"
)

const defaultLimit = 100

// route is what a method and path resolve to, and what the request needs to be let through.
type route struct {
	// noAPIKey marks a method the viewset does not offer: PostHog answers personal API keys
	// with 403 "This action does not support personal API key access".
	noAPIKey bool
	scope    string
	// org is true for paths under /api/organizations/{org}/.
	org bool
	// minLevel is the organization level the caller needs (0: any member).
	minLevel int
	handle   func(*reqCtx) response
}

// reqCtx is one authenticated request, handled with s.mu held.
type reqCtx struct {
	r      *http.Request
	body   []byte
	segs   []string
	key    *apiKey
	caller *user
	org    *org
}

// api answers one request in PostHog's order: routing (404), authentication (401), action
// support, the key's project and organization restrictions, and scopes (403), organization
// (404), membership and level (403), throttling (429), then the view (validation: 400).
func (s *Server) api(r *http.Request, body []byte) response {
	segs := splitPath(r.URL.Path)
	rt, ok := s.match(r.Method, segs)
	if !ok {
		return notFound(DetailNotFound)
	}
	key, caller, res := s.authenticate(r)
	if res != nil {
		return *res
	}
	if rt.noAPIKey {
		return permissionDenied(DetailNoAPIKeyAccess)
	}
	if res := s.keyRestrictions(key, caller, rt, segs); res != nil {
		return *res
	}
	if !hasScope(key.scopes, rt.scope) {
		return missingScope(rt.scope)
	}
	c := &reqCtx{r: r, body: body, segs: segs, key: key, caller: caller}
	if rt.org {
		c.org = s.resolveOrg(segs[2], caller)
		if c.org == nil {
			return notFound(DetailOrganizationNotFound)
		}
		m := s.memberOf(c.org.id, caller.uuid)
		if m == nil {
			return permissionDenied(DetailNoPermission)
		}
		if m.level < rt.minLevel {
			return permissionDenied(DetailLevelInsufficient)
		}
	}
	if wait, limited := s.rateLimit(key.key); limited {
		return throttled(wait)
	}
	return rt.handle(c)
}

// splitPath splits "/api/organizations/x/roles/" into its segments; the trailing slash is
// optional.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (s *Server) match(method string, segs []string) (route, bool) {
	if len(segs) < 2 || segs[0] != "api" || segs[1] != "organizations" {
		return route{}, false
	}
	read, write := ScopeOrganizationRead, ScopeOrganizationWrite
	type methods map[string]route
	var m methods
	rest := segs[2:]
	switch {
	case len(rest) == 0:
		m = methods{
			http.MethodGet:  {scope: read, handle: s.listOrganizations},
			http.MethodPost: {scope: write, handle: s.createOrganization},
		}
	case len(rest) == 1:
		m = methods{
			http.MethodGet:    {scope: read, org: true, handle: s.getOrganization},
			http.MethodPatch:  {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.updateOrganization},
			http.MethodPut:    {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.updateOrganization},
			http.MethodDelete: {scope: write, org: true, minLevel: posthog.LevelOwner, handle: s.deleteOrganization},
		}
	case rest[1] == "roles" && len(rest) == 2:
		m = methods{
			http.MethodGet:  {scope: read, org: true, handle: s.listRoles},
			http.MethodPost: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.createRole},
		}
	case rest[1] == "roles" && len(rest) == 3:
		m = methods{
			http.MethodGet:    {scope: read, org: true, handle: s.getRole},
			http.MethodPatch:  {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.updateRole},
			http.MethodPut:    {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.updateRole},
			http.MethodDelete: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.deleteRole},
		}
	case rest[1] == "roles" && len(rest) == 4 && rest[3] == "role_memberships":
		m = methods{
			http.MethodGet:  {scope: read, org: true, handle: s.listMemberships},
			http.MethodPost: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.createMembership},
		}
	case rest[1] == "roles" && len(rest) == 5 && rest[3] == "role_memberships":
		m = methods{
			http.MethodGet:    {scope: read, org: true, handle: s.getMembership},
			http.MethodDelete: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.deleteMembership},
		}
	case rest[1] == "role_external_references" && len(rest) == 2:
		m = methods{
			http.MethodGet:  {scope: read, org: true, handle: s.listRefs},
			http.MethodPost: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.createRef},
		}
	case rest[1] == "role_external_references" && len(rest) == 3 && rest[2] == "lookup":
		m = methods{
			http.MethodGet: {scope: read, org: true, handle: s.lookupRef},
		}
	case rest[1] == "role_external_references" && len(rest) == 3:
		m = methods{
			http.MethodDelete: {scope: write, org: true, minLevel: posthog.LevelAdmin, handle: s.deleteRef},
		}
	case rest[1] == "members" && len(rest) == 2:
		m = methods{
			http.MethodGet: {scope: ScopeOrganizationMemberRead, org: true, handle: s.listMembers},
		}
	case rest[1] == "integrations" && len(rest) == 2:
		m = methods{
			http.MethodGet: {scope: ScopeOrganizationIntegrationRead, org: true, handle: s.listIntegrations},
		}
	case rest[1] == "integrations" && len(rest) == 3:
		m = methods{
			http.MethodGet:    {scope: ScopeOrganizationIntegrationRead, org: true, handle: s.getIntegration},
			http.MethodDelete: {scope: ScopeOrganizationIntegrationWrite, org: true, minLevel: posthog.LevelAdmin, handle: s.deleteIntegration},
		}
	case rest[1] == "integrations" && len(rest) == 4 && rest[3] == "environment-mapping":
		// A custom action with no API-key scope: every method is refused to personal API
		// keys (routes with no methods fall through to that answer below).
		m = methods{}
	default:
		return route{}, false
	}
	if rt, ok := m[method]; ok {
		return rt, true
	}
	return route{noAPIKey: true}, true
}

// authenticate checks "Authorization: Bearer <key>". Without that header PostHog sees an
// anonymous request; with an unknown key (or a deactivated owner) the key is invalid.
func (s *Server) authenticate(r *http.Request) (*apiKey, *user, *response) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		res := notAuthenticated()
		return nil, nil, &res
	}
	k := s.keys[token]
	if k == nil || s.users[k.userUUID] == nil || !s.users[k.userUUID].active {
		res := invalidKey()
		return nil, nil, &res
	}
	return k, s.users[k.userUUID], nil
}

// hasScope applies PostHog's rule that "*" grants everything and X:write implies X:read.
func hasScope(scopes []string, need string) bool {
	if need == "" {
		return true
	}
	for _, sc := range scopes {
		if sc == "*" || sc == need {
			return true
		}
		if obj, ok := strings.CutSuffix(need, ":read"); ok && sc == obj+":write" {
			return true
		}
	}
	return false
}

// keyRestrictions applies a key's scoped_teams and scoped_organizations as PostHog's
// APIScopePermission does, after the action check and before the scopes: a key restricted
// to projects is refused on every organization endpoint (the fake serves no project-based
// ones), a key restricted to organizations on any other organization.
func (s *Server) keyRestrictions(key *apiKey, caller *user, rt route, segs []string) *response {
	if len(key.scopedTeams) > 0 {
		res := permissionDenied(DetailScopedProjects)
		return &res
	}
	if len(key.scopedOrgs) == 0 || !rt.org {
		return nil
	}
	o := s.resolveOrg(segs[2], caller)
	if o == nil {
		res := notFound(DetailOrganizationNotFound)
		return &res
	}
	for _, id := range key.scopedOrgs {
		if norm, ok := parseUUID(id); ok && norm == o.id {
			return nil
		}
	}
	res := permissionDenied(ScopedOrganizationDetail(o.id))
	return &res
}

// currentOrg returns the organization "@current" means for u: the one they last switched
// to, or, when that is gone or they left it, the first they belong to (as PostHog's
// User.organization falls back), remembered from then on. nil when they belong to none.
func (s *Server) currentOrg(u *user) *org {
	if o := s.orgs[u.currentOrg]; o != nil && s.memberOf(o.id, u.uuid) != nil {
		return o
	}
	for _, o := range s.orgOrder {
		if s.memberOf(o.id, u.uuid) != nil {
			u.currentOrg = o.id
			return o
		}
	}
	return nil
}

// resolveOrg maps "@current" to the caller's current organization and a UUID in any case
// to its organization; anything else is unknown.
func (s *Server) resolveOrg(ref string, caller *user) *org {
	if ref == posthog.CurrentOrganization {
		return s.currentOrg(caller)
	}
	id, ok := parseUUID(ref)
	if !ok {
		return nil
	}
	return s.orgs[id]
}

// parseUUID accepts the 36-character form in any case, as Django's UUID lookups do.
func parseUUID(v string) (string, bool) {
	if len(v) != 36 {
		return "", false
	}
	u, err := uuid.Parse(v)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// rateLimit applies the per-key minute and hour budgets the way DRF's throttles do: each
// window (BurstRateThrottle, SustainedRateThrottle) keeps its own history of the requests it
// allowed, drops entries older than the window, and refuses when the history is full. Every
// window is consulted, so a request refused by one is still recorded by another that let it
// through (DRF's check_throttles does not stop at the first refusal). The wait is the
// longest of the refusing windows' waits: window minus the age of its oldest entry.
func (s *Server) rateLimit(key string) (time.Duration, bool) {
	if s.rlPerMinute <= 0 && s.rlPerHour <= 0 {
		return 0, false
	}
	now := s.clock()
	var wait time.Duration
	limited := false
	windows := []struct {
		name   string
		limit  int
		window time.Duration
	}{{"minute", s.rlPerMinute, time.Minute}, {"hour", s.rlPerHour, time.Hour}}
	for _, w := range windows {
		if w.limit <= 0 {
			continue
		}
		hk := key + "\x00" + w.name
		hist := s.history[hk]
		i := 0
		for i < len(hist) && now.Sub(hist[i]) >= w.window {
			i++
		}
		hist = hist[i:]
		if len(hist) >= w.limit {
			// DRF: remaining = duration - (now - oldest); available = limit - len + 1.
			remaining := w.window - now.Sub(hist[0])
			available := w.limit - len(hist) + 1
			wait = max(wait, remaining/time.Duration(available))
			limited = true
		} else {
			hist = append(hist, now)
		}
		s.history[hk] = hist
	}
	return wait, limited
}

// paginateFunc answers a list with DRF's LimitOffsetPagination: default limit 100, a bad or
// non-positive limit falls back to 100, no maximum; next and previous are absolute URLs with
// limit and offset replaced and the other parameters kept. It renders only the items of the
// page: a page of a 5,000-member role renders 100 memberships, not 5,000.
func paginateFunc[T any](s *Server, c *reqCtx, all []T, render func(T) any) response {
	q := c.r.URL.Query()
	limit := defaultLimit
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = v
	}
	offset := 0
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		offset = v
	}
	count := len(all)
	start, end := min(offset, count), min(offset+limit, count)
	p := wirePage{Count: count, Results: []any{}}
	for _, v := range all[start:end] {
		p.Results = append(p.Results, render(v))
	}
	if offset+limit < count {
		p.Next = ptr(s.link(c.r, q, limit, offset+limit))
	}
	if offset > 0 {
		if offset-limit <= 0 {
			p.Previous = ptr(s.link(c.r, q, limit, -1))
		} else {
			p.Previous = ptr(s.link(c.r, q, limit, offset-limit))
		}
	}
	return jsonResponse(http.StatusOK, p)
}

// link builds an absolute URL for the request with limit and offset replaced (offset < 0
// removes it), as DRF's replace_query_param does (parameters sorted).
func (s *Server) link(r *http.Request, q url.Values, limit, offset int) string {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = slices.Clone(v)
	}
	q2.Set("limit", strconv.Itoa(limit))
	if offset < 0 {
		q2.Del("offset")
	} else {
		q2.Set("offset", strconv.Itoa(offset))
	}
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q2.Encode()}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if s.linkBase != nil {
		u.Scheme, u.Host = s.linkBase.Scheme, s.linkBase.Host
	}
	return u.String()
}

// parseBody decodes a JSON (or form) object body.
func parseBody(c *reqCtx) (map[string]any, *response) {
	data := map[string]any{}
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return data, nil
	}
	ct, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(c.body))
		if err != nil {
			res := validation("parse_error", "Form parse error - "+err.Error(), "")
			return nil, &res
		}
		for k := range vals {
			data[k] = vals.Get(k)
		}
		return data, nil
	}
	var v any
	if err := json.Unmarshal(c.body, &v); err != nil {
		res := validation("parse_error", "JSON parse error - "+err.Error(), "")
		return nil, &res
	}
	obj, ok := v.(map[string]any)
	if !ok {
		res := validation("invalid_input", fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyType(v)), "")
		return nil, &res
	}
	return obj, nil
}

func pyType(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case float64:
		return "int"
	case bool:
		return "bool"
	case nil:
		return "NoneType"
	}
	return "object"
}

// charField validates a DRF CharField (whitespace trimmed). present is false when the field
// is absent or null (null only when allowNull).
type charSpec struct {
	required, allowNull, allowBlank bool
	maxLen                          int
}

func charField(data map[string]any, name string, spec charSpec) (val string, present bool, res *response) {
	v, ok := data[name]
	if !ok {
		if spec.required {
			r := validation("required", DetailRequired, name)
			return "", false, &r
		}
		return "", false, nil
	}
	if v == nil {
		if spec.allowNull {
			return "", false, nil
		}
		r := validation("null", DetailNull, name)
		return "", false, &r
	}
	var str string
	switch x := v.(type) {
	case string:
		str = x
	case float64:
		str = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		r := validation("invalid_input", DetailNotAString, name)
		return "", false, &r
	}
	str = strings.TrimSpace(str)
	if str == "" && !spec.allowBlank {
		r := validation("blank", DetailBlank, name)
		return "", false, &r
	}
	if spec.maxLen > 0 && utf8.RuneCountInString(str) > spec.maxLen {
		r := validation("max_length", fmt.Sprintf("Ensure this field has no more than %d characters.", spec.maxLen), name)
		return "", false, &r
	}
	return str, true, nil
}

// boolField validates a DRF BooleanField.
func boolField(data map[string]any, name string, allowNull bool) (val *bool, present bool, res *response) {
	v, ok := data[name]
	if !ok {
		return nil, false, nil
	}
	switch x := v.(type) {
	case nil:
		if allowNull {
			return nil, true, nil
		}
		r := validation("null", DetailNull, name)
		return nil, false, &r
	case bool:
		return &x, true, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on", "t", "y":
			return ptr(true), true, nil
		case "false", "0", "no", "off", "f", "n":
			return ptr(false), true, nil
		}
	case float64:
		if x == 1 || x == 0 {
			return ptr(x == 1), true, nil
		}
	}
	r := validation("invalid_input", "Must be a valid boolean.", name)
	return nil, false, &r
}

// ---- organizations ----

func (s *Server) listOrganizations(c *reqCtx) response {
	var orgs []*org
	for _, o := range s.orgOrder {
		if s.memberOf(o.id, c.caller.uuid) != nil {
			orgs = append(orgs, o)
		}
	}
	return paginateFunc(s, c, orgs, func(o *org) any { return s.orgJSON(o, c.caller.uuid) })
}

func (s *Server) createOrganization(c *reqCtx) response {
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	name, _, res := charField(data, "name", charSpec{required: true, maxLen: 64})
	if res != nil {
		return *res
	}
	o := s.newOrg(uuid.NewString(), name)
	if r := s.applyOrgFields(o, data); r != nil {
		delete(s.orgs, o.id)
		s.orgOrder = s.orgOrder[:len(s.orgOrder)-1]
		return *r
	}
	t := s.now()
	s.addMember(o.id, c.caller.uuid, posthog.LevelOwner, t)
	// PostHog switches its creator to the new organization: "@current" now means it.
	c.caller.currentOrg = o.id
	return jsonResponse(http.StatusCreated, s.orgJSON(o, c.caller.uuid))
}

func (s *Server) getOrganization(c *reqCtx) response {
	return jsonResponse(http.StatusOK, s.orgJSON(c.org, c.caller.uuid))
}

func (s *Server) updateOrganization(c *reqCtx) response {
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	// Validate everything on a copy before changing anything.
	probe := *c.org
	if _, ok := data["name"]; ok || c.r.Method == http.MethodPut { // PUT is a full update: name is required
		name, _, res := charField(data, "name", charSpec{required: true, maxLen: 64})
		if res != nil {
			return *res
		}
		probe.name = name
	}
	if r := s.applyOrgFields(&probe, data); r != nil {
		return *r
	}
	probe.updatedAt = s.now()
	*c.org = probe
	return jsonResponse(http.StatusOK, s.orgJSON(c.org, c.caller.uuid))
}

// applyOrgFields sets the writable organization fields present in data, other than name.
// Unknown and read-only fields are ignored, as DRF does.
func (s *Server) applyOrgFields(o *org, data map[string]any) *response {
	bools := []struct {
		name      string
		allowNull bool
		set       func(*bool)
	}{
		{"is_member_join_email_enabled", false, func(b *bool) { o.isMemberJoinEmailEnabled = *b }},
		{"enforce_2fa", true, func(b *bool) { o.enforce2FA = b }},
		{"members_can_invite", true, func(b *bool) { o.membersCanInvite = b }},
		{"members_can_use_personal_api_keys", false, func(b *bool) { o.membersCanUsePersonalAPIKeys = *b }},
		{"allow_publicly_shared_resources", false, func(b *bool) { o.allowPubliclySharedResources = *b }},
		{"is_ai_data_processing_approved", true, func(b *bool) { o.isAIDataProcessingApproved = b }},
		{"default_anonymize_ips", false, func(b *bool) { o.defaultAnonymizeIPs = *b }},
	}
	for _, f := range bools {
		v, present, res := boolField(data, f.name, f.allowNull)
		if res != nil {
			return res
		}
		if present {
			f.set(v)
		}
	}
	if v, ok := data["default_experiment_stats_method"]; ok {
		str, _ := v.(string)
		if str != "bayesian" && str != "frequentist" {
			r := validation("invalid_choice", fmt.Sprintf("%q is not a valid choice.", fmt.Sprint(v)), "default_experiment_stats_method")
			return &r
		}
		o.defaultExperimentStatsMethod = ptr(str)
	}
	if v, ok := data["logo_media_id"]; ok {
		if v == nil {
			o.logoMediaID = nil
		} else if id, ok := v.(string); ok {
			if norm, ok := parseUUID(id); ok {
				o.logoMediaID = &norm
			} else {
				r := validation("invalid_input", DetailInvalidUUID, "logo_media_id")
				return &r
			}
		}
	}
	if v, ok := data["default_role_id"]; ok {
		if v == nil {
			o.defaultRoleID = nil
		} else {
			str, _ := v.(string)
			id, ok := parseUUID(str)
			if !ok {
				r := validation("invalid_input", DetailInvalidUUID, "default_role_id")
				return &r
			}
			if r := s.roles[id]; r == nil || r.orgID != o.id {
				res := validation("invalid_input", DetailRoleDoesNotExist, "default_role_id")
				return &res
			}
			o.defaultRoleID = &id
		}
	}
	return nil
}

func (s *Server) deleteOrganization(c *reqCtx) response {
	id := c.org.id
	for _, r := range slices.Clone(s.roleOrder) {
		if r.orgID == id {
			s.removeRole(r.id)
		}
	}
	s.members = slices.DeleteFunc(s.members, func(m *member) bool {
		if m.orgID == id {
			delete(s.memberIdx, memberKey{m.orgID, m.userUUID})
			return true
		}
		return false
	})
	s.orgOrder = slices.DeleteFunc(s.orgOrder, func(o *org) bool { return o.id == id })
	delete(s.orgs, id)
	return response{status: http.StatusNoContent}
}

// ---- roles ----

func (s *Server) orgRoles(orgID string) []*role {
	var out []*role
	for _, r := range s.roleOrder {
		if r.orgID == orgID {
			out = append(out, r)
		}
	}
	return out
}

// roleIn returns the role with id (any case) in the organization, or nil.
func (s *Server) roleIn(o *org, ref string) *role {
	id, ok := parseUUID(ref)
	if !ok {
		return nil
	}
	if r := s.roles[id]; r != nil && r.orgID == o.id {
		return r
	}
	return nil
}

func (s *Server) listRoles(c *reqCtx) response {
	return paginateFunc(s, c, s.orgRoles(c.org.id), func(r *role) any { return s.roleJSON(r) })
}

// roleName validates a role name: required, trimmed, not blank, at most 200 characters,
// unique in the organization ignoring case (except for the role itself).
func (s *Server) roleName(data map[string]any, orgID, self string) (string, *response) {
	name, _, res := charField(data, "name", charSpec{required: true, maxLen: 200})
	if res != nil {
		return "", res
	}
	for _, r := range s.orgRoles(orgID) {
		if r.id != self && strings.EqualFold(r.name, name) {
			res := validation("unique", DetailRoleNameTaken, "name")
			return "", &res
		}
	}
	return name, nil
}

func (s *Server) createRole(c *reqCtx) response {
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	name, res := s.roleName(data, c.org.id, "")
	if res != nil {
		return *res
	}
	r := s.insertRole(c.org.id, name)
	return jsonResponse(http.StatusCreated, s.roleJSON(r))
}

func (s *Server) insertRole(orgID, name string) *role {
	r := &role{id: uuid.NewString(), orgID: orgID, name: name, createdAt: s.now()}
	s.roles[r.id] = r
	s.roleOrder = append(s.roleOrder, r)
	return r
}

func (s *Server) getRole(c *reqCtx) response {
	r := s.roleIn(c.org, c.segs[4])
	if r == nil {
		return notFound(DetailNotFound)
	}
	return jsonResponse(http.StatusOK, s.roleJSON(r))
}

func (s *Server) updateRole(c *reqCtx) response {
	r := s.roleIn(c.org, c.segs[4])
	if r == nil {
		return notFound(DetailNotFound)
	}
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	if _, ok := data["name"]; ok || c.r.Method == http.MethodPut {
		name, res := s.roleName(data, c.org.id, r.id)
		if res != nil {
			return *res
		}
		r.name = name
	}
	return jsonResponse(http.StatusOK, s.roleJSON(r))
}

func (s *Server) deleteRole(c *reqCtx) response {
	r := s.roleIn(c.org, c.segs[4])
	if r == nil {
		return notFound(DetailNotFound)
	}
	s.removeRole(r.id)
	return response{status: http.StatusNoContent}
}

// removeRole deletes a role with its memberships and external references, and clears any
// organization's default role that pointed at it.
func (s *Server) removeRole(id string) {
	s.memberships = slices.DeleteFunc(s.memberships, func(m *membership) bool { return m.roleID == id })
	s.refs = slices.DeleteFunc(s.refs, func(x *extRef) bool { return x.roleID == id })
	for _, o := range s.orgs {
		if o.defaultRoleID != nil && *o.defaultRoleID == id {
			o.defaultRoleID = nil
		}
	}
	s.roleOrder = slices.DeleteFunc(s.roleOrder, func(r *role) bool { return r.id == id })
	delete(s.roles, id)
}

// ---- role memberships ----

// membershipRole parses the role id of a role_memberships path. A malformed id makes
// PostHog's queryset filter raise, which is a 500 (the docs mark this unconfirmed).
func (s *Server) membershipRole(c *reqCtx) (string, *response) {
	id, ok := parseUUID(c.segs[4])
	if !ok {
		res := serverError()
		return "", &res
	}
	return id, nil
}

func (s *Server) listMemberships(c *reqCtx) response {
	roleID, res := s.membershipRole(c)
	if res != nil {
		return *res
	}
	var rms []*membership
	if r := s.roles[roleID]; r != nil && r.orgID == c.org.id {
		rms = s.roleMemberships(roleID)
	}
	// An unknown role, or another organization's, is an empty list, not a 404.
	return paginateFunc(s, c, rms, func(rm *membership) any { return s.membershipJSON(rm) })
}

func (s *Server) createMembership(c *reqCtx) response {
	roleID, res := s.membershipRole(c)
	if res != nil {
		return *res
	}
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	raw, _, res := charField(data, "user_uuid", charSpec{required: true})
	if res != nil {
		return *res
	}
	userUUID, ok := parseUUID(raw)
	if !ok {
		return validation("invalid_input", DetailInvalidUUID, "user_uuid")
	}
	r := s.roles[roleID]
	if r == nil || r.orgID != c.org.id {
		return validation("invalid_input", DetailRoleDoesNotExist, "")
	}
	u := s.users[userUUID]
	if u == nil || !u.active || s.memberOf(c.org.id, userUUID) == nil {
		return validation("invalid_input", DetailUserDoesNotExist, "")
	}
	if s.roleMembership(roleID, userUUID) != nil {
		return validation("invalid_input", DetailAlreadyMember, "")
	}
	rm := s.insertMembership(roleID, userUUID)
	return jsonResponse(http.StatusCreated, s.membershipJSON(rm))
}

func (s *Server) insertMembership(roleID, userUUID string) *membership {
	t := s.now()
	rm := &membership{id: uuid.NewString(), roleID: roleID, userUUID: userUUID, joinedAt: t, updatedAt: t}
	s.memberships = append(s.memberships, rm)
	return rm
}

// roleMembership returns the user's membership of the role, or nil.
func (s *Server) roleMembership(roleID, userUUID string) *membership {
	for _, rm := range s.memberships {
		if rm.roleID == roleID && rm.userUUID == userUUID {
			return rm
		}
	}
	return nil
}

// findMembership resolves .../roles/{role_id}/role_memberships/{id}/.
func (s *Server) findMembership(c *reqCtx) (*membership, *response) {
	roleID, res := s.membershipRole(c)
	if res != nil {
		return nil, res
	}
	r := s.roles[roleID]
	id, ok := parseUUID(c.segs[6])
	if r == nil || r.orgID != c.org.id || !ok {
		res := notFound(DetailNotFound)
		return nil, &res
	}
	for _, rm := range s.memberships {
		if rm.id == id && rm.roleID == roleID {
			return rm, nil
		}
	}
	nf := notFound(DetailNotFound)
	return nil, &nf
}

func (s *Server) getMembership(c *reqCtx) response {
	rm, res := s.findMembership(c)
	if res != nil {
		return *res
	}
	return jsonResponse(http.StatusOK, s.membershipJSON(rm))
}

func (s *Server) deleteMembership(c *reqCtx) response {
	rm, res := s.findMembership(c)
	if res != nil {
		return *res
	}
	s.memberships = slices.DeleteFunc(s.memberships, func(x *membership) bool { return x == rm })
	return response{status: http.StatusNoContent}
}

// ---- role external references ----

// from reports whether x is in the organization and maps a role of provider's organization
// providerOrg, both compared ignoring case.
func (x *extRef) from(orgID, provider, providerOrg string) bool {
	return x.orgID == orgID && strings.EqualFold(x.provider, provider) && strings.EqualFold(x.providerOrganizationID, providerOrg)
}

func (s *Server) listRefs(c *reqCtx) response {
	q := c.r.URL.Query()
	provider, providerOrg, roleFilter := q.Get("provider"), q.Get("provider_organization_id"), q.Get("role_id")
	var refs []*extRef
	for _, x := range s.refs {
		if x.orgID != c.org.id {
			continue
		}
		if provider != "" && !strings.EqualFold(x.provider, provider) {
			continue
		}
		if providerOrg != "" && !strings.EqualFold(x.providerOrganizationID, providerOrg) {
			continue
		}
		if roleFilter != "" {
			if id, ok := parseUUID(roleFilter); !ok || id != x.roleID {
				continue
			}
		}
		refs = append(refs, x)
	}
	// Ordered by provider, provider_organization_id, provider_role_slug (nulls last).
	slices.SortStableFunc(refs, func(a, b *extRef) int {
		if c := strings.Compare(a.provider, b.provider); c != 0 {
			return c
		}
		if c := strings.Compare(a.providerOrganizationID, b.providerOrganizationID); c != 0 {
			return c
		}
		switch {
		case a.providerRoleSlug == nil && b.providerRoleSlug == nil:
			return 0
		case a.providerRoleSlug == nil:
			return 1
		case b.providerRoleSlug == nil:
			return -1
		}
		return strings.Compare(*a.providerRoleSlug, *b.providerRoleSlug)
	})
	return paginateFunc(s, c, refs, func(x *extRef) any { return s.refJSON(x) })
}

func (s *Server) createRef(c *reqCtx) response {
	data, res := parseBody(c)
	if res != nil {
		return *res
	}
	provider, _, res := charField(data, "provider", charSpec{required: true, maxLen: 32})
	if res != nil {
		return *res
	}
	providerOrg, _, res := charField(data, "provider_organization_id", charSpec{required: true, maxLen: 255})
	if res != nil {
		return *res
	}
	providerRoleID, _, res := charField(data, "provider_role_id", charSpec{required: true, maxLen: 255})
	if res != nil {
		return *res
	}
	slugVal, slugPresent, res := charField(data, "provider_role_slug", charSpec{allowNull: true, allowBlank: true, maxLen: 255})
	if res != nil {
		return *res
	}
	var slug *string
	if slugPresent && slugVal != "" {
		slug = &slugVal
	}
	providerRoleName, _, res := charField(data, "provider_role_name", charSpec{required: true, maxLen: 255})
	if res != nil {
		return *res
	}
	roleRaw, ok := data["role"]
	if !ok {
		return validation("required", DetailRequired, "role")
	}
	if roleRaw == nil {
		return validation("null", DetailNull, "role")
	}
	roleStr := fmt.Sprint(roleRaw)
	r := s.roleIn(c.org, roleStr)
	if r == nil {
		return validation("does_not_exist", fmt.Sprintf("Invalid pk %q - object does not exist.", roleStr), "role")
	}
	for _, x := range s.refs {
		if x.from(c.org.id, provider, providerOrg) && slug != nil && x.providerRoleSlug != nil && strings.EqualFold(*x.providerRoleSlug, *slug) {
			return validation("invalid_input", DetailRefSlugExists, "")
		}
	}
	for _, x := range s.refs {
		if x.from(c.org.id, provider, providerOrg) && strings.EqualFold(x.providerRoleID, providerRoleID) {
			return validation("invalid_input", DetailRefRoleIDExists, "")
		}
	}
	x := &extRef{
		id:                     uuid.NewString(),
		orgID:                  c.org.id,
		provider:               provider,
		providerOrganizationID: providerOrg,
		providerRoleID:         providerRoleID,
		providerRoleSlug:       slug,
		providerRoleName:       providerRoleName,
		roleID:                 r.id,
		createdAt:              s.now(),
		createdBy:              c.caller.uuid,
	}
	s.refs = append(s.refs, x)
	return jsonResponse(http.StatusCreated, s.refJSON(x))
}

func (s *Server) deleteRef(c *reqCtx) response {
	id, ok := parseUUID(c.segs[4])
	if ok {
		for _, x := range s.refs {
			if x.id == id && x.orgID == c.org.id {
				s.refs = slices.DeleteFunc(s.refs, func(y *extRef) bool { return y == x })
				return response{status: http.StatusNoContent}
			}
		}
	}
	return notFound(DetailNotFound)
}

// lookupRef always answers 200 once its parameters are valid: {"reference": object|null}.
// A slug is matched first (case-insensitively), then the provider's role id.
func (s *Server) lookupRef(c *reqCtx) response {
	q := c.r.URL.Query()
	for _, f := range []string{"provider", "provider_organization_id"} {
		if strings.TrimSpace(q.Get(f)) == "" {
			return validation("required", DetailRequired, f)
		}
	}
	slug, roleID := strings.TrimSpace(q.Get("provider_role_slug")), strings.TrimSpace(q.Get("provider_role_id"))
	if slug == "" && roleID == "" {
		return validation("invalid_input", DetailLookupNeedsRole, "")
	}
	provider, providerOrg := strings.TrimSpace(q.Get("provider")), strings.TrimSpace(q.Get("provider_organization_id"))
	var found *extRef
	for _, x := range s.refs {
		if x.from(c.org.id, provider, providerOrg) && slug != "" && x.providerRoleSlug != nil && strings.EqualFold(*x.providerRoleSlug, slug) {
			found = x
			break
		}
	}
	if found == nil && roleID != "" {
		for _, x := range s.refs {
			if x.from(c.org.id, provider, providerOrg) && x.providerRoleID == roleID {
				found = x
				break
			}
		}
	}
	out := struct {
		Reference *wireRef `json:"reference"`
	}{}
	if found != nil {
		w := s.refJSON(found)
		out.Reference = &w
	}
	return jsonResponse(http.StatusOK, out)
}

// ---- members ----

// maxSearchLen is the longest search= PostHog's members list accepts.
const maxSearchLen = 200

// listMembers lists active members, newest first unless order=joined_at. Filters: email= is
// an exact, case-sensitive match; search= a case-insensitive substring of first name, last
// name or email; updated_after= keeps members updated strictly after that time. Empty values
// do not filter, as with django-filter.
func (s *Server) listMembers(c *reqCtx) response {
	q := c.r.URL.Query()
	email := q.Get("email")
	search := strings.TrimSpace(q.Get("search"))
	if utf8.RuneCountInString(search) > maxSearchLen {
		return validation("max_length", fmt.Sprintf("Ensure this field has no more than %d characters.", maxSearchLen), "search")
	}
	var updatedAfter time.Time
	if v := q.Get("updated_after"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return validation("invalid", "Enter a valid date/time.", "updated_after")
		}
		updatedAfter = t
	}
	needle := strings.ToLower(search)
	members := s.activeMembers(c.org.id)
	if q.Get("order") != "joined_at" {
		slices.Reverse(members) // -joined_at, PostHog's default
	}
	var matched []*member
	for _, m := range members {
		u := s.users[m.userUUID]
		if email != "" && u.email != email {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(u.first), needle) &&
			!strings.Contains(strings.ToLower(u.last), needle) && !strings.Contains(strings.ToLower(u.email), needle) {
			continue
		}
		if !updatedAfter.IsZero() && !m.updatedAt.After(updatedAfter) {
			continue
		}
		matched = append(matched, m)
	}
	return paginateFunc(s, c, matched, func(m *member) any { return s.memberJSON(m) })
}

// parseTime accepts the ISO 8601 forms Django's DateTimeField does: with or without a zone
// (UTC assumed), a date alone at midnight.
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", v)
}

// ---- organization integrations ----

func (s *Server) orgIntegrations(orgID string) []*integration {
	var out []*integration
	for _, x := range s.integs {
		if x.orgID == orgID {
			out = append(out, x)
		}
	}
	return out
}

func (s *Server) listIntegrations(c *reqCtx) response {
	return paginateFunc(s, c, s.orgIntegrations(c.org.id), func(x *integration) any { return s.integrationJSON(x) })
}

func (s *Server) integrationIn(c *reqCtx) *integration {
	id, ok := parseUUID(c.segs[4])
	if !ok {
		return nil
	}
	for _, x := range s.orgIntegrations(c.org.id) {
		if x.id == id {
			return x
		}
	}
	return nil
}

func (s *Server) getIntegration(c *reqCtx) response {
	x := s.integrationIn(c)
	if x == nil {
		return notFound(DetailNotFound)
	}
	return jsonResponse(http.StatusOK, s.integrationJSON(x))
}

func (s *Server) deleteIntegration(c *reqCtx) response {
	x := s.integrationIn(c)
	if x == nil {
		return notFound(DetailNotFound)
	}
	s.integs = slices.DeleteFunc(s.integs, func(y *integration) bool { return y == x })
	return response{status: http.StatusNoContent}
}
