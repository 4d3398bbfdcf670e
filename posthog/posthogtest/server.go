// Package posthogtest is an in-memory fake of PostHog's organization RBAC API served over
// real HTTP (httptest), for tests and for the demo binary. It follows
// docs/posthog-api.md: the same paths under /api/organizations/{org}/ with or without a
// trailing slash, the same JSON shapes, status codes and error bodies
// ({"type","code","detail","attr"}), the same check order (authentication, scopes,
// organization, membership, organization level, throttling), and limit/offset pagination
// with absolute next/previous links.
//
// Besides serving the API it can be seeded from code ([Server.AddUser], [Server.AddRole],
// [Server.AddMembership]), inspected ([Server.Memberships], [Server.HasMember],
// [Server.Calls]) and told to misbehave ([Server.FailNext], [Server.ThrottleNext],
// [Server.SetLatency], [Server.ApplyThenTimeoutNext], [Server.ApplyThenDropNext]).
// It is safe for concurrent use.
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
	ScopeOrganizationRead       = "organization:read"
	ScopeOrganizationWrite      = "organization:write"
	ScopeOrganizationMemberRead = "organization_member:read"
)

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

// WithRateLimit makes the server throttle each key like PostHog does: at most perMinute
// requests in any minute and perHour in any hour (PostHog: 480 and 4800); over it, 429 with
// Retry-After. Zero or negative values disable that window. Off by default.
func WithRateLimit(perMinute, perHour int) Option {
	return func(s *Server) { s.rlPerMinute, s.rlPerHour = perMinute, perHour }
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

	// state
	keys        map[string]*apiKey
	users       map[string]*user // by uuid
	orgs        map[string]*org
	orgOrder    []*org
	members     []*member
	roles       map[string]*role
	roleOrder   []*role
	memberships []*membership
	refs        []*extRef
	nextUserID  int
	lastTime    time.Time
	history     map[string][]time.Time

	// recording and faults
	calls         []Call
	failN         int
	failStatus    int
	throttleN     int
	throttleAfter time.Duration
	timeoutN      int
	dropN         int
	latency       time.Duration
}

type apiKey struct {
	key      string
	userUUID string
	scopes   []string
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
	twoFactor  bool
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
}

type member struct {
	id                  string
	orgID               string
	userUUID            string
	level               int
	joinedAt, updatedAt time.Time
}

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
		orgs:      map[string]*org{},
		roles:     map[string]*role{},
		history:   map[string][]time.Time{},
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
	s.keys[s.apiKey] = &apiKey{key: s.apiKey, userUUID: owner.uuid, scopes: s.keyScopes}
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

// OrganizationID returns the organization's UUID. "@current" routes to it too.
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
	}
	s.users[u.uuid] = u
	if orgID != "" {
		t := s.now()
		s.members = append(s.members, &member{id: uuid.NewString(), orgID: orgID, userUUID: u.uuid, level: level, joinedAt: t, updatedAt: t})
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
