// Package posthogtest is an in-memory fake of PostHog's organization RBAC API served over
// real HTTP (httptest), for tests and for the demo binary. It follows
// docs/posthog-api.md: the same paths under /api/organizations/{org}/ with or without a
// trailing slash, the same JSON shapes, status codes and error bodies
// ({"type","code","detail","attr"}), the same check order (authentication, scopes,
// organization, membership, organization level, throttling), and limit/offset pagination
// with absolute next/previous links.
//
// Like PostHog it knows keys' scopes and their owners' organization levels, keys restricted
// to projects or organizations ([WithKeyScopedProjects], [WithKeyScopedOrganizations]), the
// plan's available_product_features ([WithoutRoleBasedAccess]), "@current" as the key
// owner's current organization ([Server.SetCurrentOrganization]), the members list's order
// (newest first) and filters (email=, search=, updated_after=), organization integrations,
// and the per-key minute and hour throttle windows ([WithRateLimit]).
//
// Besides serving the API it can be seeded from code ([Server.AddUser], [Server.AddRole],
// [Server.AddMembership], [Server.AddIntegration]), inspected ([Server.Memberships],
// [Server.HasMember], [Server.Calls]) and told to misbehave ([Server.FailNext],
// [Server.UnavailableNext], [Server.ThrottleNext], [Server.SetLatency],
// [Server.ApplyThenTimeoutNext], [Server.ApplyThenDropNext]). It is safe for concurrent use.
package posthogtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/accessbot/accessbot/posthog"
)

// Scopes PostHog personal API keys may carry that this fake checks.
const (
	ScopeOrganizationRead            = "organization:read"
	ScopeOrganizationWrite           = "organization:write"
	ScopeOrganizationMemberRead      = "organization_member:read"
	ScopeOrganizationIntegrationRead = "organization_integration:read"
	// ScopeOrganizationIntegrationWrite is needed to delete an organization integration.
	ScopeOrganizationIntegrationWrite = "organization_integration:write"
)

// Product features PostHog lists in an organization's available_product_features.
const (
	// FeatureRoleBasedAccess is the plan feature without which PostHog ignores role
	// memberships when it decides access (the membership endpoints still answer 201).
	FeatureRoleBasedAccess = "role_based_access"
)

// DefaultProductFeatures are the organization's available_product_features unless told
// otherwise: role-based access, as on a plan that has it.
var DefaultProductFeatures = []ProductFeature{{Key: FeatureRoleBasedAccess, Name: "Role-based access"}}

// ProductFeature is an item of an organization's available_product_features.
type ProductFeature struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// DefaultScopes are the scopes accessbot's key needs; keys get them unless told otherwise.
var DefaultScopes = []string{ScopeOrganizationRead, ScopeOrganizationWrite, ScopeOrganizationMemberRead}

// timeoutCap bounds how long ApplyThenTimeoutNext waits for a client that never gives up.
const timeoutCap = 30 * time.Second

// Call is one request the server received.
type Call struct {
	Method string
	// Path is the URL path as sent (the organization may appear as "@current").
	Path string
	// Query is the raw query string.
	Query string
	// Body is the request body.
	Body string
	// Status is the status the server answered, or would have answered for a dropped
	// response; 0 when the client gave up during injected latency (nothing was applied).
	Status int
	// Dropped is true when the response was never sent (ApplyThenTimeoutNext,
	// ApplyThenDropNext).
	Dropped bool
	// Header holds the request headers, without Authorization.
	Header http.Header
}

// Option configures a [Server] in [NewServer].
type Option func(*Server)

// WithAPIKey sets the main API key (default: a random "phx_test_…" key).
func WithAPIKey(key string) Option { return func(s *Server) { s.apiKey = key } }

// WithOrganizationID sets the organization's id (default: a random UUID).
func WithOrganizationID(id string) Option { return func(s *Server) { s.orgID = id } }

// WithOrganizationName sets the organization's name (default "Accessbot Test").
func WithOrganizationName(name string) Option { return func(s *Server) { s.orgName = name } }

// WithKeyLevel sets the organization level of the main key's owner (default
// posthog.LevelAdmin). With posthog.LevelMember every write answers 403 "Your organization
// access level is insufficient.".
func WithKeyLevel(level int) Option { return func(s *Server) { s.keyLevel = level } }

// WithKeyScopes sets the main key's scopes (default DefaultScopes; "*" grants all).
func WithKeyScopes(scopes ...string) Option {
	return func(s *Server) { s.keyScopes = slices.Clone(scopes) }
}

// WithKeyScopedProjects restricts the main key to these project (team) ids, as PostHog's
// "Organization & project access: projects" setting does. PostHog refuses such a key on
// every organization endpoint: 403 "API keys with scoped projects are only supported on
// project-based endpoints.".
func WithKeyScopedProjects(teamIDs ...int) Option {
	return func(s *Server) { s.keyScopedTeams = slices.Clone(teamIDs) }
}

// WithKeyScopedOrganizations restricts the main key to these organization ids. A request
// for any other organization answers 403 "API key does not have access to the requested
// organization: ID <id>.".
func WithKeyScopedOrganizations(orgIDs ...string) Option {
	return func(s *Server) { s.keyScopedOrgs = slices.Clone(orgIDs) }
}

// WithoutRoleBasedAccess gives the organization a plan without the role_based_access
// feature (see [Server.SetProductFeatures]). Role and membership endpoints still answer
// as usual, as PostHog's do.
func WithoutRoleBasedAccess() Option {
	return func(s *Server) { s.features = []ProductFeature{} }
}

// PostHog's limits for one personal API key, which the fake applies unless
// told otherwise with WithRateLimit.
const (
	PostHogPerMinute = 480
	PostHogPerHour   = 4800
)

// WithRateLimit makes the server throttle each key like PostHog does: at most perMinute
// requests in any minute and perHour in any hour (PostHog: 480 and 4800); over it, 429 with
// Retry-After. Zero or negative values disable that window. On by default at PostHog's limits. The windows
// slide like Django REST framework's SimpleRateThrottle: each keeps the times of the
// requests it let through, and Retry-After is the time until the oldest of them leaves it.
func WithRateLimit(perMinute, perHour int) Option {
	return func(s *Server) { s.rlPerMinute, s.rlPerHour = perMinute, perHour }
}

// WithThrottleClock gives the rate limiter its clock (default time.Now), so tests can
// slide the windows without waiting.
func WithThrottleClock(now func() time.Time) Option {
	return func(s *Server) { s.clock = now }
}

// WithLinkBaseURL builds the absolute next/previous pagination links on this scheme and host
// instead of the request's Host, as a PostHog behind a proxy may do. Clients must not send
// their key there.
func WithLinkBaseURL(base string) Option {
	return func(s *Server) {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" {
			panic(fmt.Sprintf("posthogtest: WithLinkBaseURL(%q): not an absolute URL", base))
		}
		s.linkBase = u
	}
}

// Server is the fake PostHog. Create it with [NewServer] and stop it with [Server.Close].
type Server struct {
	ts        *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu sync.Mutex

	// configuration
	apiKey      string
	orgID       string
	orgName     string
	keyLevel    int
	keyScopes   []string
	rlPerMinute int
	rlPerHour   int
	linkBase    *url.URL
	clock       func() time.Time

	keyScopedTeams []int
	keyScopedOrgs  []string
	features       []ProductFeature

	// state
	keys        map[string]*apiKey
	users       map[string]*user // by uuid
	orgs        map[string]*org
	orgOrder    []*org
	members     []*member
	memberIdx   map[memberKey]*member
	roles       map[string]*role
	roleOrder   []*role
	memberships []*membership
	refs        []*extRef
	integs      []*integration
	nextUserID  int
	lastTime    time.Time
	// history holds, per key and window, the times of the requests that window let through.
	history map[string][]time.Time

	// recording and faults
	calls         []Call
	failN         int
	failStatus    int
	throttleN     int
	throttleAfter time.Duration
	timeoutN      int
	dropN         int
	latency       time.Duration
	unavailN      int
	unavailAfter  time.Duration
}

type apiKey struct {
	key      string
	userUUID string
	scopes   []string
	// scopedTeams and scopedOrgs restrict the key (PostHog's scoped_teams and
	// scoped_organizations); empty means unrestricted.
	scopedTeams []int
	scopedOrgs  []string
}

type user struct {
	id         int
	uuid       string
	distinctID string
	first      string
	last       string
	email      string
	active     bool
	lastLogin  *time.Time
	// currentOrg is the organization the user last switched to in PostHog's UI: what
	// "@current" means for their keys.
	currentOrg    string
	is2FA         bool
	hasSocialAuth bool
}

type org struct {
	id                           string
	name                         string
	slug                         string
	createdAt, updatedAt         time.Time
	logoMediaID                  *string
	isMemberJoinEmailEnabled     bool
	enforce2FA                   *bool
	membersCanInvite             *bool
	membersCanUsePersonalAPIKeys bool
	allowPubliclySharedResources bool
	isAIDataProcessingApproved   *bool
	defaultExperimentStatsMethod *string
	defaultAnonymizeIPs          bool
	defaultRoleID                *string
	features                     []ProductFeature
}

type member struct {
	id                  string
	orgID               string
	userUUID            string
	level               int
	joinedAt, updatedAt time.Time
}

// memberKey indexes members by organization and user, so that rendering thousands of role
// memberships stays fast.
type memberKey struct{ orgID, userUUID string }

type role struct {
	id        string
	orgID     string
	name      string
	createdAt time.Time
}

type membership struct {
	id                  string
	roleID              string
	userUUID            string
	joinedAt, updatedAt time.Time
}

type extRef struct {
	id                     string
	orgID                  string
	provider               string
	providerOrganizationID string
	providerRoleID         string
	providerRoleSlug       *string
	providerRoleName       string
	roleID                 string
	createdAt              time.Time
	createdBy              string
}

type integration struct {
	id            string
	orgID         string
	kind          string
	integrationID *string
	config        map[string]any
	createdAt     time.Time
	updatedAt     time.Time
	createdBy     string
}

// NewServer starts a fake PostHog with one organization and one admin API key (see the
// options). It does not need a *testing.T; call Close when done.
func NewServer(opts ...Option) *Server {
	s := &Server{
		closed:    make(chan struct{}),
		orgName:   "Accessbot Test",
		keyLevel:  posthog.LevelAdmin,
		keyScopes: slices.Clone(DefaultScopes),
		keys:      map[string]*apiKey{},
		users:     map[string]*user{},
		memberIdx: map[memberKey]*member{},
		orgs:      map[string]*org{},
		roles:     map[string]*role{},
		history:   map[string][]time.Time{},
		clock:     time.Now,
		features:  slices.Clone(DefaultProductFeatures),
		// PostHog throttles every personal API key; so does the fake.
		rlPerMinute: PostHogPerMinute,
		rlPerHour:   PostHogPerHour,
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.apiKey == "" {
		s.apiKey = "phx_test_" + randomHex(20)
	}
	if s.orgID == "" {
		s.orgID = uuid.NewString()
	}
	s.orgID = strings.ToLower(s.orgID)
	s.newOrg(s.orgID, s.orgName)
	// The key's owner is a member like any other and shows up in the members list.
	owner := s.newUser("key-owner@posthog.test", "Key", "Owner", s.orgID, s.keyLevel)
	s.keys[s.apiKey] = &apiKey{key: s.apiKey, userUUID: owner.uuid, scopes: s.keyScopes, scopedTeams: s.keyScopedTeams, scopedOrgs: s.keyScopedOrgs}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Close shuts the server down, releasing requests held by ApplyThenTimeoutNext or latency.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ts.Close()
	})
}

// URL returns the base URL to give posthog.NewClient, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.ts.URL }

// Client returns an HTTP client for the server (the httptest client).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// APIKey returns the main personal API key ("phx_test_…" unless set with WithAPIKey).
func (s *Server) APIKey() string { return s.apiKey }

// OrganizationID returns the organization's UUID: the one the seed methods work on, and
// what "@current" routes to until [Server.SetCurrentOrganization] switches the key owner
// elsewhere.
func (s *Server) OrganizationID() string { return s.orgID }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// now returns a strictly increasing UTC time with microsecond precision, like PostHog's
// timestamps, so that orderings by time are stable. The caller holds s.mu.
func (s *Server) now() time.Time {
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(s.lastTime) {
		t = s.lastTime.Add(time.Microsecond)
	}
	s.lastTime = t
	return t
}

func (s *Server) newOrg(id, name string) *org {
	t := s.now()
	o := &org{
		id:                           id,
		name:                         name,
		slug:                         slugify(name),
		createdAt:                    t,
		updatedAt:                    t,
		isMemberJoinEmailEnabled:     true,
		membersCanInvite:             ptr(true),
		membersCanUsePersonalAPIKeys: true,
		allowPubliclySharedResources: true,
		defaultExperimentStatsMethod: ptr("bayesian"),
		features:                     slices.Clone(s.features),
	}
	s.orgs[id] = o
	s.orgOrder = append(s.orgOrder, o)
	return o
}

// newUser creates a user and, when orgID is not empty, makes them a member at level.
func (s *Server) newUser(email, first, last, orgID string, level int) *user {
	s.nextUserID++
	u := &user{
		id:         s.nextUserID,
		uuid:       uuid.NewString(),
		distinctID: randomHex(16),
		first:      first,
		last:       last,
		email:      email,
		active:     true,
		currentOrg: orgID,
	}
	s.users[u.uuid] = u
	if orgID != "" {
		t := s.now()
		s.addMember(orgID, u.uuid, level, t)
	}
	return u
}

func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func ptr[T any](v T) *T { return &v }

// serveHTTP records the call and answers it, applying faults.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	hdr := r.Header.Clone()
	hdr.Del("Authorization")
	call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Header: hdr}

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up first: nothing was applied.
			t.Stop()
			call.Dropped = true
			s.mu.Lock()
			s.calls = append(s.calls, call)
			s.mu.Unlock()
			return
		case <-s.closed:
			t.Stop()
			return
		}
	}

	s.mu.Lock()
	res, mode := s.respond(r, body)
	call.Status, call.Dropped = res.status, mode != deliver
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	switch mode {
	case deliver:
		res.write(w)
	case dropTimeout:
		t := time.NewTimer(timeoutCap)
		select {
		case <-r.Context().Done(): // the client gave up
		case <-s.closed:
		case <-t.C:
		}
		t.Stop()
		hangUp(w)
	case dropNow:
		hangUp(w)
	}
}

// hangUp closes the connection without writing a response.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type delivery int

const (
	deliver delivery = iota
	dropTimeout
	dropNow
)

// response is an answer computed under the lock and written after it.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) write(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if len(r.body) > 0 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return response{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

// respond applies the injected faults, then the API. The caller holds s.mu.
func (s *Server) respond(r *http.Request, body []byte) (response, delivery) {
	if s.failN > 0 {
		s.failN--
		return failure(s.failStatus), deliver
	}
	if s.unavailN > 0 {
		s.unavailN--
		return unavailable(s.unavailAfter), deliver
	}
	if s.throttleN > 0 {
		s.throttleN--
		return throttled(s.throttleAfter), deliver
	}
	res := s.api(r, body)
	switch {
	case s.timeoutN > 0:
		s.timeoutN--
		return res, dropTimeout
	case s.dropN > 0:
		s.dropN--
		return res, dropNow
	}
	return res, deliver
}
