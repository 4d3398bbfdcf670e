// Package posthog is a typed client for PostHog's organization RBAC API: organizations,
// roles, role memberships, role external references and organization members, all under
// /api/organizations/{organization_id}/.
//
// It is shaped like google/go-github: [NewClient] with functional options, [Client.NewRequest],
// [Client.Do] and [CheckResponse], one service per API area sharing one [Client], typed errors
// ([APIError], [RetryError], [ArgumentError], [NotFoundError]) and helpers that classify them
// ([IsNotFound], [IsConflict], [IsTemporary], ...).
//
// Every call is throttled client-side (golang.org/x/time/rate) and retried with exponential
// backoff with jitter (github.com/cenkalti/backoff/v5) when that is safe; see [WithRetry] for
// the rules. The personal API key is sent only to the configured host, in the Authorization
// header, and never appears in an error string or a log line.
package posthog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Version is the version of accessbot reported in the default User-Agent
// ("accessbot/<Version>"). The build may override it with
// -ldflags "-X github.com/accessbot/accessbot/posthog.Version=1.2.3".
var Version = "dev"

// CurrentOrganization is the organization id PostHog resolves to the API key owner's
// current organization.
const CurrentOrganization = "@current"

const (
	defaultPageSize    = 100
	defaultMaxAttempts = 5
	defaultMaxElapsed  = 30 * time.Second
	// DefaultPerMinute and DefaultPerHour are the client's budget, a little
	// under PostHog's 480 requests a minute and 4800 an hour per key.
	DefaultPerMinute      = 450
	DefaultPerHour        = 4500
	defaultHTTPTimeout    = 10 * time.Second
	defaultBackoffInitial = 500 * time.Millisecond
	defaultBackoffMax     = 10 * time.Second

	// maxErrorBody bounds how much of an error response is read and kept.
	maxErrorBody = 64 << 10
	// maxErrorDetail bounds the text kept from a non-JSON error body.
	maxErrorDetail = 200
)

// CallInfo describes one HTTP attempt; it is handed to the function given to [WithObserver]
// after every attempt (retries, page fetches and the look-ups a create makes before retrying
// each count as one), so the service can export metrics without this package importing a
// metrics library.
type CallInfo struct {
	// Endpoint is a stable route name such as "roles.list" or "role_memberships.create"
	// ("custom" for requests sent through [Client.Do] directly). It never contains ids, so it
	// is safe as a metric label.
	Endpoint string
	// Method is the HTTP method.
	Method string
	// Status is the HTTP status code, or 0 when no response arrived (network error, timeout).
	Status int
	// Duration is how long the attempt took, excluding time spent waiting for the throttle.
	Duration time.Duration
	// Attempt counts from 1 for each logical call.
	Attempt int
}

// Client talks to one PostHog organization with one personal API key. It is safe for
// concurrent use. Create it with [NewClient].
type Client struct {
	baseURL     *url.URL // always ends with "/"
	apiKey      string
	orgID       string
	hc          *http.Client
	budget      *Budget // nil: no client-side budget
	maxAttempts int
	maxElapsed  time.Duration // <= 0: bounded by attempts only
	boInitial   time.Duration
	boMax       time.Duration
	pageSize    int
	userAgent   string
	log         zerolog.Logger
	observer    func(CallInfo)

	common service

	// Organizations is the API under /api/organizations/.
	Organizations *OrganizationsService
	// Roles is the API under /api/organizations/{org}/roles/.
	Roles *RolesService
	// RoleMemberships is the API under /api/organizations/{org}/roles/{role_id}/role_memberships/.
	RoleMemberships *RoleMembershipsService
	// RoleExternalReferences is the API under /api/organizations/{org}/role_external_references/.
	RoleExternalReferences *RoleExternalReferencesService
	// Members is the API under /api/organizations/{org}/members/.
	Members *MembersService
	// OrganizationIntegrations is the API under /api/organizations/{org}/integrations/.
	OrganizationIntegrations *OrganizationIntegrationsService
}

// service is embedded by every API area; they all share one Client.
type service struct {
	client *Client
}

// Option configures a [Client] in [NewClient].
type Option func(*Client) error

// WithHTTPClient sets the HTTP client used for every attempt (default: a client with a 10s
// timeout). Its Timeout bounds one attempt; the retry budget of [WithRetry] bounds the call.
// The client is copied, and the copy refuses redirects to another host so the API key never
// follows one.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return &ArgumentError{Field: "http client", Reason: "must not be nil"}
		}
		cp := *hc
		c.hc = &cp
		return nil
	}
}

// WithRateLimit sets the client-side budget every attempt waits for, including retries and
// page fetches: at most perMinute requests in any minute and perHour in any hour, counted
// like PostHog counts them (default DefaultPerMinute and DefaultPerHour, a little under
// PostHog's 480 and 4800 per personal API key). A value <= 0 drops that window; both <= 0
// drop the budget. Calls wait for their turn by the priority their context carries
// ([WithPriority]); one that could not be served before its context's deadline fails at once
// with a [*BusyError].
func WithRateLimit(perMinute, perHour int) Option {
	return func(c *Client) error {
		if perMinute <= 0 && perHour <= 0 {
			c.budget = nil
			return nil
		}
		c.budget = NewBudget(Window{perMinute, time.Minute}, Window{perHour, time.Hour})
		return nil
	}
}

// WithBudget makes the client spend b, which several clients of the same API key may share.
func WithBudget(b *Budget) Option {
	return func(c *Client) error {
		c.budget = b
		return nil
	}
}

// Budget returns the client's budget (nil when it has none).
func (c *Client) Budget() *Budget { return c.budget }

// WithRetry bounds retries: at most maxAttempts attempts (default 5; values below 1 mean 1)
// and, when maxElapsed > 0, no wait that would end past maxElapsed after the call began
// (default 30s).
//
// What is retried:
//   - 429 responses, always (the server did not apply the request), after the Retry-After
//     delay. When Retry-After would end past maxElapsed the call gives up at once, and the
//     error still carries RetryAfter so a durable job can reschedule itself.
//   - 5xx responses, timeouts and broken connections, for GET, PATCH and DELETE. Every PATCH
//     this package sends assigns absolute values, so repeating it is harmless. A DELETE that
//     answers 404 after an earlier attempt may have been applied counts as success.
//   - Connection failures before the request was sent (connection refused, DNS), always.
//   - Creates (POST) are never repeated blindly. After an ambiguous failure (5xx, timeout,
//     broken connection) a role membership create first looks the membership up, a role
//     create looks the role up by name (case-insensitive) and a role external reference
//     create uses the lookup endpoint; an existing object is returned instead of creating a
//     second one. An organization create has no such check and is retried only after 429 or
//     a connection that was never established.
func WithRetry(maxAttempts int, maxElapsed time.Duration) Option {
	return func(c *Client) error {
		if maxAttempts < 1 {
			maxAttempts = 1
		}
		c.maxAttempts = maxAttempts
		c.maxElapsed = maxElapsed
		return nil
	}
}

// WithBackoff sets the exponential backoff between retries: the first wait is about initial
// (±50% jitter), doubling up to max (defaults 500ms and 10s). A 429's Retry-After replaces
// the backoff wait.
func WithBackoff(initial, max time.Duration) Option {
	return func(c *Client) error {
		if initial <= 0 || max < initial {
			return &ArgumentError{Field: "backoff", Reason: "need 0 < initial <= max"}
		}
		c.boInitial, c.boMax = initial, max
		return nil
	}
}

// WithPageSize sets the limit sent on list endpoints (default 100, PostHog's default).
func WithPageSize(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return &ArgumentError{Field: "page size", Reason: "must be at least 1"}
		}
		c.pageSize = n
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "accessbot/<Version>").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if strings.TrimSpace(ua) == "" {
			return &ArgumentError{Field: "user agent", Reason: "must not be blank"}
		}
		c.userAgent = ua
		return nil
	}
}

// WithLogger sets the logger for attempts (debug) and retries (warn). The API key and the
// Authorization header are never logged. Default: no logging.
func WithLogger(l zerolog.Logger) Option {
	return func(c *Client) error {
		c.log = l
		return nil
	}
}

// WithObserver registers a function called synchronously after every attempt, e.g. to
// export Prometheus metrics. It must be fast and safe for concurrent use.
func WithObserver(f func(CallInfo)) Option {
	return func(c *Client) error {
		c.observer = f
		return nil
	}
}

// NewClient returns a client for PostHog at baseURL (e.g. "https://us.posthog.com"),
// authenticating with a personal API key, for the organization organizationID (a UUID, or
// "@current" for the key owner's current organization). It validates its arguments and
// makes no request.
func NewClient(baseURL, apiKey, organizationID string, opts ...Option) (*Client, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if apiKey == "" {
		return nil, &ArgumentError{Field: "api key", Reason: "is required"}
	}
	if strings.ContainsFunc(apiKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// The value is deliberately not echoed.
		return nil, &ArgumentError{Field: "api key", Reason: "contains whitespace or control characters"}
	}
	orgID, err := normalizeOrgID(organizationID)
	if err != nil {
		return nil, err
	}
	c := &Client{
		baseURL:     u,
		apiKey:      apiKey,
		orgID:       orgID,
		hc:          &http.Client{Timeout: defaultHTTPTimeout},
		budget:      NewBudget(Window{DefaultPerMinute, time.Minute}, Window{DefaultPerHour, time.Hour}),
		maxAttempts: defaultMaxAttempts,
		maxElapsed:  defaultMaxElapsed,
		boInitial:   defaultBackoffInitial,
		boMax:       defaultBackoffMax,
		pageSize:    defaultPageSize,
		userAgent:   "accessbot/" + Version,
		log:         zerolog.Nop(),
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	userCheck := c.hc.CheckRedirect
	c.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !c.sameHost(req.URL) {
			return http.ErrUseLastResponse
		}
		if userCheck != nil {
			return userCheck(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	c.common.client = c
	c.Organizations = (*OrganizationsService)(&c.common)
	c.Roles = (*RolesService)(&c.common)
	c.RoleMemberships = (*RoleMembershipsService)(&c.common)
	c.RoleExternalReferences = (*RoleExternalReferencesService)(&c.common)
	c.Members = (*MembersService)(&c.common)
	c.OrganizationIntegrations = (*OrganizationIntegrationsService)(&c.common)
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, &ArgumentError{Field: "base URL", Reason: "is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &ArgumentError{Field: "base URL", Reason: "is not a URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &ArgumentError{Field: "base URL", Value: raw, Reason: "must use http or https"}
	case u.Host == "":
		return nil, &ArgumentError{Field: "base URL", Value: raw, Reason: "has no host"}
	case u.User != nil:
		// Do not echo it: it holds credentials.
		return nil, &ArgumentError{Field: "base URL", Reason: "must not contain credentials"}
	case u.RawQuery != "" || u.Fragment != "":
		return nil, &ArgumentError{Field: "base URL", Value: raw, Reason: "must not have a query or fragment"}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

func normalizeOrgID(id string) (string, error) {
	if id == CurrentOrganization {
		return id, nil
	}
	if id == "" {
		return "", &ArgumentError{Field: "organization id", Reason: `is required (a UUID or "@current")`}
	}
	norm, err := normalizeUUID("organization id", id)
	if err != nil {
		return "", &ArgumentError{Field: "organization id", Value: id, Reason: `must be a UUID or "@current"`}
	}
	return norm, nil
}

// normalizeUUID checks that v is a UUID in its 36-character form and returns it in
// lower case. PostHog may answer a malformed id in a path with a 500 rather than a 404, so
// ids are checked before any request is made.
func normalizeUUID(field, v string) (string, error) {
	if len(v) != 36 {
		return "", &ArgumentError{Field: field, Value: v, Reason: "must be a UUID"}
	}
	u, err := uuid.Parse(v)
	if err != nil {
		return "", &ArgumentError{Field: field, Value: v, Reason: "must be a UUID"}
	}
	return u.String(), nil
}

// OrganizationID returns the organization id the client was created with ("@current" or a
// UUID).
func (c *Client) OrganizationID() string { return c.orgID }

// BaseURL returns a copy of the base URL requests are sent to.
func (c *Client) BaseURL() *url.URL {
	u := *c.baseURL
	return &u
}

func (c *Client) sameHost(u *url.URL) bool {
	return u != nil && strings.EqualFold(u.Scheme, c.baseURL.Scheme) && strings.EqualFold(u.Host, c.baseURL.Host)
}

// orgPath returns the unescaped path "api/organizations/{org}/" followed by segments, each
// with a trailing slash. Segments are fixed names or validated UUIDs, so none needs
// escaping.
func (c *Client) orgPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("api/organizations/")
	b.WriteString(c.orgID)
	b.WriteString("/")
	for _, s := range segments {
		b.WriteString(s)
		b.WriteString("/")
	}
	return b.String()
}

// NewRequest builds a request for path, which is resolved against the base URL and must stay
// on its host (e.g. "api/organizations/@current/roles/"). A non-nil body is encoded as JSON.
// The Authorization header is not set here: [Client.Do] adds it to each attempt.
func (c *Client) NewRequest(method, path string, body any) (*http.Request, error) {
	rel, err := url.Parse(path)
	if err != nil {
		return nil, &ArgumentError{Field: "path", Value: path, Reason: "is not a URL path"}
	}
	u := c.baseURL.ResolveReference(rel)
	if !c.sameHost(u) {
		return nil, &ArgumentError{Field: "path", Value: path, Reason: "must stay on the configured host"}
	}
	return c.newRequest(method, u, body)
}

func (c *Client) newRequest(method string, u *url.URL, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("posthog: encode request body: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	// The context is set per attempt by Do.
	req, err := http.NewRequestWithContext(context.Background(), method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("posthog: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// Response wraps the last HTTP response of a call. Its body has been read and closed.
type Response struct {
	*http.Response
	// Attempts is how many attempts the call made.
	Attempts int
}

// call is one logical API call, possibly made of several attempts.
type call struct {
	endpoint string
	req      *http.Request
	out      any
	// reconcile, set on creates, is run before retrying after a failure that may have been
	// applied by the server (5xx, timeout, broken connection), and when such a retry is
	// rejected as a conflict. It reports whether the object now exists; if so the call ends
	// successfully without decoding into out (the closure keeps what it found).
	reconcile func(ctx context.Context) (bool, error)
}

// Do sends req with the retry rules of [WithRetry] (GET, PATCH and DELETE are treated as
// idempotent; a POST is retried only when it cannot have been applied), checks the response
// with [CheckResponse], and decodes a successful JSON body into v when v is not nil.
func (c *Client) Do(ctx context.Context, req *http.Request, v any) (*Response, error) {
	return c.do(ctx, &call{endpoint: "custom", req: req, out: v})
}

// get runs a GET on path (relative to the base URL) with query parameters.
func (c *Client) get(ctx context.Context, endpoint, path string, q url.Values, out any) error {
	u := c.baseURL.ResolveReference(&url.URL{Path: path, RawQuery: q.Encode()})
	req, err := c.newRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, &call{endpoint: endpoint, req: req, out: out})
	return err
}

// send runs a request with a body (or none) on path.
func (c *Client) send(ctx context.Context, endpoint, method, path string, body, out any, reconcile func(context.Context) (bool, error)) (*Response, error) {
	u := c.baseURL.ResolveReference(&url.URL{Path: path})
	req, err := c.newRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, &call{endpoint: endpoint, req: req, out: out, reconcile: reconcile})
}

// create runs a POST that is retried after an ambiguous failure only behind a look-up: find
// returns the object an earlier attempt may have created, or nil when there is none. An object
// found that way is returned instead of creating a second one.
func create[T any](ctx context.Context, c *Client, endpoint, path string, body any, find func(context.Context) (*T, error)) (*T, error) {
	var existing *T
	reconcile := func(ctx context.Context) (bool, error) {
		found, err := find(ctx)
		if err != nil || found == nil {
			return false, err
		}
		existing = found
		return true, nil
	}
	var out T
	if _, err := c.send(ctx, endpoint, http.MethodPost, path, body, &out, reconcile); err != nil {
		return nil, err
	}
	if existing != nil {
		return existing, nil
	}
	return &out, nil
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func (c *Client) do(ctx context.Context, cl *call) (*Response, error) {
	if ctx == nil {
		return nil, &ArgumentError{Field: "context", Reason: "must not be nil"}
	}
	start := time.Now()
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     c.boInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         c.boMax,
	}
	bo.Reset()
	idempotent := isIdempotent(cl.req.Method)
	mayHaveApplied := false
	var resp *Response
	for attempt := 1; ; attempt++ {
		var err error
		fromReconcile := false
		if attempt > 1 && mayHaveApplied && cl.reconcile != nil {
			found, rerr := cl.reconcile(ctx)
			switch {
			case rerr == nil && found:
				c.log.Info().Str("endpoint", cl.endpoint).Int("attempt", attempt).
					Msg("posthog: create had been applied before its response was lost; using the existing object")
				return &Response{Attempts: attempt - 1}, nil
			case rerr != nil && (!IsTemporary(rerr) || ctx.Err() != nil):
				return resp, fmt.Errorf("posthog: %s: checking whether an earlier attempt was applied: %w", cl.endpoint, rerr)
			case rerr != nil:
				// A temporary failure of the look-up counts as a failed attempt.
				err, fromReconcile = rerr, true
			}
		}
		if err == nil {
			resp, err = c.attempt(ctx, cl, attempt)
			if err == nil {
				resp.Attempts = attempt
				return resp, nil
			}
		}
		if ctx.Err() != nil {
			return resp, err
		}
		var apiErr *APIError
		isAPI := errors.As(err, &apiErr)
		if isAPI && apiErr.StatusCode == http.StatusNotFound && cl.req.Method == http.MethodDelete && mayHaveApplied {
			// An earlier attempt may have deleted it: the desired state holds.
			c.log.Info().Str("endpoint", cl.endpoint).Int("attempt", attempt).
				Msg("posthog: retried delete found nothing; an earlier attempt applied it")
			if resp != nil {
				resp.Attempts = attempt
			}
			return resp, nil
		}
		if isAPI && cl.reconcile != nil && mayHaveApplied && IsConflict(err) {
			// The earlier attempt landed after our look-up; look again.
			if found, rerr := cl.reconcile(ctx); rerr == nil && found {
				return &Response{Attempts: attempt}, nil
			}
			return resp, err
		}
		retry, ambiguous := fromReconcile, false
		if !fromReconcile {
			retry, ambiguous = classify(err, idempotent || cl.reconcile != nil)
		}
		if ambiguous {
			mayHaveApplied = true
		}
		if !retry {
			return resp, err
		}
		if attempt >= c.maxAttempts {
			return resp, &RetryError{Attempts: attempt, Elapsed: time.Since(start), Err: err}
		}
		delay := bo.NextBackOff()
		if isAPI && apiErr.RetryAfter > 0 {
			delay = apiErr.RetryAfter
		}
		if c.maxElapsed > 0 && time.Since(start)+delay > c.maxElapsed {
			return resp, &RetryError{Attempts: attempt, Elapsed: time.Since(start), Err: err,
				Reason: fmt.Sprintf("next wait of %s would exceed the retry budget of %s", delay.Round(time.Millisecond), c.maxElapsed)}
		}
		c.log.Warn().Str("endpoint", cl.endpoint).Str("method", cl.req.Method).Int("attempt", attempt).
			Dur("wait", delay).Err(err).Msg("posthog: retrying")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, fmt.Errorf("posthog: %s: %w (last error: %v)", cl.endpoint, context.Cause(ctx), err)
		case <-t.C:
		}
	}
}

// classify reports whether err may be retried and whether the failed attempt may have been
// applied by the server. mayRepeat is true when repeating the request is harmless or guarded
// by a reconcile step.
func classify(err error, mayRepeat bool) (retry, ambiguous bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
			return true, false // throttled before the view ran
		case apiErr.StatusCode >= 500:
			return mayRepeat, true
		}
		return false, false
	}
	var te *transportError
	if !errors.As(err, &te) {
		// A response that arrived but could not be decoded, a throttle wait that would
		// outlast the context, ...: repeating would not help, and for a create the server
		// did apply it.
		return false, false
	}
	if notSent(te.err) {
		return true, false
	}
	if IsTemporary(te.err) {
		return mayRepeat, true
	}
	return false, false
}

// notSent reports whether a transport error proves the request never reached the server:
// the connection could not be established.
func notSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return false
}

// transportError is a failure to get any HTTP response.
type transportError struct {
	method, endpoint string
	err              error
}

// Error names the method and route; the URL in the wrapped error never holds the key.
func (e *transportError) Error() string {
	return fmt.Sprintf("posthog: %s %s: %v", e.method, e.endpoint, e.err)
}

// Unwrap returns the transport's error.
func (e *transportError) Unwrap() error { return e.err }

// attempt makes one HTTP round trip, after waiting for the throttle.
func (c *Client) attempt(ctx context.Context, cl *call, n int) (*Response, error) {
	if err := c.budget.Wait(ctx, PriorityFrom(ctx)); err != nil {
		return nil, fmt.Errorf("posthog: %s: waiting for the request budget: %w", cl.endpoint, err)
	}
	req := cl.req.Clone(ctx)
	if cl.req.GetBody != nil {
		body, err := cl.req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("posthog: %s: rewind body: %w", cl.endpoint, err)
		}
		req.Body = body
	}
	if !c.sameHost(req.URL) {
		// Never send the key anywhere else.
		return nil, &ArgumentError{Field: "request URL", Reason: "is not on the configured host"}
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)

	began := time.Now()
	hresp, err := c.hc.Do(req)
	if err != nil {
		c.observe(cl, 0, time.Since(began), n)
		c.log.Debug().Str("endpoint", cl.endpoint).Str("method", req.Method).Int("attempt", n).
			Dur("duration", time.Since(began)).Err(err).Msg("posthog call failed")
		if ctx.Err() != nil {
			return nil, fmt.Errorf("posthog: %s %s: %w", req.Method, cl.endpoint, context.Cause(ctx))
		}
		return nil, &transportError{method: req.Method, endpoint: cl.endpoint, err: err}
	}
	defer hresp.Body.Close()
	resp := &Response{Response: hresp}

	if cerr := CheckResponse(hresp); cerr != nil {
		dur := time.Since(began)
		c.observe(cl, hresp.StatusCode, dur, n)
		c.log.Debug().Str("endpoint", cl.endpoint).Str("method", req.Method).Int("attempt", n).
			Int("status", hresp.StatusCode).Dur("duration", dur).Msg("posthog call")
		var apiErr *APIError
		if errors.As(cerr, &apiErr) {
			if apiErr.StatusCode == http.StatusTooManyRequests {
				// PostHog counts the key's budget: everyone waits.
				c.budget.Pause(max(apiErr.RetryAfter, time.Second))
			}
			apiErr.Method = req.Method
			apiErr.Endpoint = cl.endpoint
			apiErr.Path = req.URL.Path
			apiErr.Detail = c.redact(apiErr.Detail)
			apiErr.Body = c.redact(apiErr.Body)
		}
		return resp, cerr
	}

	var derr error
	if cl.out != nil && hresp.StatusCode != http.StatusNoContent {
		if w, ok := cl.out.(io.Writer); ok {
			_, derr = io.Copy(w, hresp.Body)
		} else if derr = json.NewDecoder(hresp.Body).Decode(cl.out); derr == io.EOF {
			derr = nil // empty body
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(hresp.Body, maxErrorBody))
	dur := time.Since(began)
	c.observe(cl, hresp.StatusCode, dur, n)
	c.log.Debug().Str("endpoint", cl.endpoint).Str("method", req.Method).Int("attempt", n).
		Int("status", hresp.StatusCode).Dur("duration", dur).Msg("posthog call")
	if derr != nil {
		return resp, fmt.Errorf("posthog: %s %s: decode response: %w", req.Method, cl.endpoint, derr)
	}
	return resp, nil
}

func (c *Client) observe(cl *call, status int, d time.Duration, attempt int) {
	if c.observer == nil {
		return
	}
	c.observer(CallInfo{Endpoint: cl.endpoint, Method: cl.req.Method, Status: status, Duration: d, Attempt: attempt})
}

// redact removes the API key from text that came from the server, in case it echoes it.
func (c *Client) redact(s string) string {
	if c.apiKey == "" || !strings.Contains(s, c.apiKey) {
		return s
	}
	s = strings.ReplaceAll(s, "Bearer "+c.apiKey, "[REDACTED]")
	return strings.ReplaceAll(s, c.apiKey, "[REDACTED]")
}

// CheckResponse returns nil for a 2xx response and an [*APIError] otherwise, parsed from
// PostHog's error body {"type","code","detail","attr"}. A body in any other form (an HTML
// page from a proxy, plain text) still produces an APIError, with Detail taken from the
// start of the body or the status text. Retry-After (seconds or an HTTP date) is parsed into
// RetryAfter; on a 429 without the header, the wait is read from the detail ("Expected
// available in N seconds.").
func CheckResponse(r *http.Response) error {
	if r.StatusCode >= 200 && r.StatusCode <= 299 {
		return nil
	}
	e := &APIError{StatusCode: r.StatusCode}
	if r.Request != nil {
		e.Method = r.Request.Method
		e.Path = r.Request.URL.Path
	}
	var raw []byte
	if r.Body != nil {
		raw, _ = io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	}
	var body struct {
		Type   string  `json:"type"`
		Code   string  `json:"code"`
		Detail *string `json:"detail"`
		Attr   *string `json:"attr"`
	}
	if err := json.Unmarshal(raw, &body); err == nil && (body.Detail != nil || body.Type != "" || body.Code != "") {
		e.Type, e.Code, e.Attr = body.Type, body.Code, body.Attr
		if body.Detail != nil {
			e.Detail = *body.Detail
		}
	} else {
		text := strings.TrimSpace(string(raw))
		e.Body = truncate(text, maxErrorDetail)
		e.Detail = summarize(text)
		if e.Detail == "" {
			e.Detail = http.StatusText(r.StatusCode)
		}
	}
	e.RetryAfter = parseRetryAfter(r.Header.Get("Retry-After"), time.Now())
	if e.RetryAfter == 0 && r.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = retryAfterFromDetail(e.Detail)
	}
	return e
}

// summarize turns a non-JSON body into one short line: an HTML page's title, or the text
// with tags stripped.
func summarize(text string) string {
	if text == "{}" || text == "null" {
		return ""
	}
	lower := strings.ToLower(text)
	if i := strings.Index(lower, "<title>"); i >= 0 {
		if j := strings.Index(lower[i:], "</title>"); j > len("<title>") {
			if title := strings.TrimSpace(text[i+len("<title>") : i+j]); title != "" {
				return truncate(strings.Join(strings.Fields(title), " "), maxErrorDetail)
			}
		}
	}
	var b strings.Builder
	inTag := false
	for _, r := range text {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
			b.WriteByte(' ')
		case !inTag:
			b.WriteRune(r)
		}
	}
	return truncate(strings.Join(strings.Fields(b.String()), " "), maxErrorDetail)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// retryAfterFromDetail reads N from DRF's "Request was throttled. Expected available in N
// seconds." detail.
func retryAfterFromDetail(detail string) time.Duration {
	const marker = "available in "
	i := strings.Index(detail, marker)
	if i < 0 {
		return 0
	}
	rest := detail[i+len(marker):]
	end := strings.IndexByte(rest, ' ')
	if end < 0 {
		return 0
	}
	secs, err := strconv.ParseFloat(rest[:end], 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// Ptr returns a pointer to v, for the optional fields of request types.
func Ptr[T any](v T) *T { return &v }

// Nullable is a field of a partial update (PATCH) that is either set to a value or set to
// JSON null. A nil *Nullable leaves the field out of the request. Build one with [Set] or
// [SetNull].
type Nullable[T any] struct {
	// Value is sent when Null is false.
	Value T
	// Null sends JSON null.
	Null bool
}

// Set returns a Nullable that sets a field to v.
func Set[T any](v T) *Nullable[T] { return &Nullable[T]{Value: v} }

// SetNull returns a Nullable that sets a field to null.
func SetNull[T any]() *Nullable[T] { return &Nullable[T]{Null: true} }

// MarshalJSON encodes null or the value.
func (n Nullable[T]) MarshalJSON() ([]byte, error) {
	if n.Null {
		return []byte("null"), nil
	}
	return json.Marshal(n.Value)
}
