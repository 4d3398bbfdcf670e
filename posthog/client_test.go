package posthog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

const orgUUID = "0b8e3f0e-7d43-4c6b-9d1e-2f9a4b0c1d2e"

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		key     string
		org     string
		opts    []posthog.Option
		wantErr string
	}{
		{"ok", "https://us.posthog.com", "phx_k", orgUUID, nil, ""},
		{"ok current", "https://eu.posthog.com/", "phx_k", "@current", nil, ""},
		{"ok with path", "http://localhost:8000/posthog", "phx_k", strings.ToUpper(orgUUID), nil, ""},
		{"empty base", "", "phx_k", orgUUID, nil, "base URL"},
		{"not http", "ftp://x.example", "phx_k", orgUUID, nil, "http or https"},
		{"no host", "https://", "phx_k", orgUUID, nil, "no host"},
		{"relative", "us.posthog.com", "phx_k", orgUUID, nil, "http or https"},
		{"credentials", "https://user:secret@us.posthog.com", "phx_k", orgUUID, nil, "credentials"},
		{"query", "https://us.posthog.com?x=1", "phx_k", orgUUID, nil, "query"},
		{"empty key", "https://us.posthog.com", "", orgUUID, nil, "api key"},
		{"key with space", "https://us.posthog.com", "phx_k x", orgUUID, nil, "api key"},
		{"empty org", "https://us.posthog.com", "phx_k", "", nil, "organization id"},
		{"bad org", "https://us.posthog.com", "phx_k", "acme", nil, "organization id"},
		{"nil http client", "https://us.posthog.com", "phx_k", orgUUID, []posthog.Option{posthog.WithHTTPClient(nil)}, "http client"},
		{"bad backoff", "https://us.posthog.com", "phx_k", orgUUID, []posthog.Option{posthog.WithBackoff(time.Second, time.Millisecond)}, "backoff"},
		{"bad page size", "https://us.posthog.com", "phx_k", orgUUID, []posthog.Option{posthog.WithPageSize(0)}, "page size"},
		{"blank user agent", "https://us.posthog.com", "phx_k", orgUUID, []posthog.Option{posthog.WithUserAgent(" ")}, "user agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := posthog.NewClient(tc.base, tc.key, tc.org, tc.opts...)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("NewClient: %v", err)
				}
				if !strings.HasSuffix(c.BaseURL().Path, "/") {
					t.Errorf("base path %q has no trailing slash", c.BaseURL().Path)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want mention of %q", err, tc.wantErr)
			}
			if !posthog.IsValidation(err) {
				t.Errorf("IsValidation(%v) = false", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error echoes credentials: %v", err)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	e := newEnv(t)
	if _, err := e.c.Roles.Create(ctx(t), "Eng"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Roles.ListAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	calls := e.srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v", calls)
	}
	post, get := calls[0].Header, calls[1].Header
	if post.Get("Content-Type") != "application/json" || post.Get("Accept") != "application/json" {
		t.Errorf("POST headers = %v", post)
	}
	if get.Get("Content-Type") != "" || get.Get("Accept") != "application/json" {
		t.Errorf("GET headers = %v", get)
	}
	if ua := post.Get("User-Agent"); ua != "accessbot/"+posthog.Version {
		t.Errorf("User-Agent = %q", ua)
	}
	if calls[0].Body != `{"name":"Eng"}` {
		t.Errorf("body = %s", calls[0].Body)
	}

	e2 := newEnv(t, posthog.WithUserAgent("accessbot/1.2.3 (test)"))
	if _, err := e2.c.Roles.ListAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if ua := e2.srv.Calls()[0].Header.Get("User-Agent"); ua != "accessbot/1.2.3 (test)" {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	var got atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"`+orgUUID+`","name":"X","unknown_field":{"a":1}}`)
	}))
	defer ts.Close()
	c, err := posthog.NewClient(ts.URL, "phx_secret", "@current", fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Organizations.Get(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != "Bearer phx_secret" {
		t.Errorf("Authorization = %v", got.Load())
	}
	if o.Name != "X" {
		t.Errorf("org = %+v", o)
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t)
			role := e.srv.AddRole("Eng")
			e.srv.FailNext(2, status)
			got, err := e.c.Roles.Get(ctx(t), role.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != role.ID {
				t.Errorf("role = %+v", got)
			}
			s := strconv.Itoa(status)
			want := []string{"roles.get:" + s, "roles.get:" + s, "roles.get:200"}
			if st := e.obs.statuses(); !slices.Equal(st, want) {
				t.Errorf("attempts = %v, want %v", st, want)
			}
			for i, ci := range e.obs.all() {
				if ci.Attempt != i+1 || ci.Method != "GET" || ci.Duration <= 0 {
					t.Errorf("call info %d = %+v", i, ci)
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t)
	role := e.srv.AddRole("Eng")
	e.srv.ThrottleNext(1, time.Second)
	start := time.Now()
	if _, err := e.c.Roles.Get(ctx(t), role.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 950*time.Millisecond {
		t.Errorf("retried after %v, want at least Retry-After (1s)", d)
	}
	if st := e.obs.statuses(); !slices.Equal(st, []string{"roles.get:429", "roles.get:200"}) {
		t.Errorf("attempts = %v", st)
	}
}

func TestGiveUpAfterBound(t *testing.T) {
	for _, status := range []int{500, 502} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := newEnv(t, posthog.WithRetry(3, 10*time.Second))
			e.srv.FailNext(100, status)
			_, err := e.c.Roles.ListAll(ctx(t))
			var re *posthog.RetryError
			if !errors.As(err, &re) || re.Attempts != 3 {
				t.Fatalf("err = %v, want a RetryError after 3 attempts", err)
			}
			if !strings.Contains(err.Error(), "gave up after 3 attempts") {
				t.Errorf("error = %q", err)
			}
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Endpoint != "roles.list" || apiErr.Method != "GET" {
				t.Errorf("last error = %#v", apiErr)
			}
			if status == 502 && apiErr.Detail != "502 Bad Gateway" {
				t.Errorf("non-JSON detail = %q", apiErr.Detail)
			}
			if !posthog.IsTemporary(err) {
				t.Error("IsTemporary = false")
			}
			if n := len(e.srv.Calls()); n != 3 {
				t.Errorf("server saw %d calls, want 3", n)
			}
		})
	}
}

func TestRetryAfterBeyondBudgetGivesUpAtOnce(t *testing.T) {
	e := newEnv(t, posthog.WithRetry(5, 2*time.Second))
	e.srv.ThrottleNext(5, 10*time.Second)
	start := time.Now()
	_, err := e.c.Roles.ListAll(ctx(t))
	if d := time.Since(start); d > time.Second {
		t.Errorf("waited %v before giving up", d)
	}
	var re *posthog.RetryError
	if !errors.As(err, &re) || re.Attempts != 1 || re.Reason == "" {
		t.Fatalf("err = %v", err)
	}
	var apiErr *posthog.APIError
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 10*time.Second {
		t.Errorf("RetryAfter = %v", apiErr)
	}
	if !posthog.IsRateLimited(err) || !posthog.IsTemporary(err) {
		t.Error("should be rate limited and temporary")
	}
}

func TestCreateWithoutLookupIsNotBlindlyRetried(t *testing.T) {
	t.Run("500 is not retried", func(t *testing.T) {
		e := newEnv(t)
		e.srv.FailNext(1, 500)
		_, err := e.c.Organizations.Create(ctx(t), posthog.OrganizationCreate{Name: "New"})
		var apiErr *posthog.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
			t.Fatalf("err = %v", err)
		}
		if n := len(e.srv.CallsMatching("POST", "/api/organizations")); n != 1 {
			t.Errorf("POSTs = %d, want 1", n)
		}
	})
	t.Run("broken connection is not retried", func(t *testing.T) {
		e := newEnv(t)
		e.srv.ApplyThenDropNext(1)
		_, err := e.c.Organizations.Create(ctx(t), posthog.OrganizationCreate{Name: "New"})
		if err == nil || !posthog.IsTemporary(err) {
			t.Fatalf("err = %v", err)
		}
		if n := len(e.srv.CallsMatching("POST", "/api/organizations")); n != 1 {
			t.Errorf("POSTs = %d, want 1", n)
		}
	})
	t.Run("429 is retried", func(t *testing.T) {
		e := newEnv(t)
		e.srv.ThrottleNext(1, time.Second)
		o, err := e.c.Organizations.Create(ctx(t), posthog.OrganizationCreate{Name: "New"})
		if err != nil || o.Name != "New" {
			t.Fatalf("create: %v %+v", err, o)
		}
		if n := len(e.srv.CallsMatching("POST", "/api/organizations")); n != 2 {
			t.Errorf("POSTs = %d, want 2", n)
		}
	})
	t.Run("connection refused is retried", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		obs := &observer{}
		c, err := posthog.NewClient("http://"+addr, "phx_k", orgUUID, append(fastOpts(), posthog.WithRetry(3, 5*time.Second), posthog.WithObserver(obs.record))...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Organizations.Create(ctx(t), posthog.OrganizationCreate{Name: "New"})
		var re *posthog.RetryError
		if !errors.As(err, &re) || re.Attempts != 3 || !posthog.IsTemporary(err) {
			t.Fatalf("err = %v", err)
		}
		if st := obs.statuses(); !slices.Equal(st, []string{"organizations.create:0", "organizations.create:0", "organizations.create:0"}) {
			t.Errorf("attempts = %v", st)
		}
	})
}

func TestBudgetHoldsItsWindow(t *testing.T) {
	e := newEnv(t, posthog.WithBudget(posthog.NewBudget(posthog.Window{Limit: 5, Per: 300 * time.Millisecond})))
	role := e.srv.AddRole("Eng")
	const n = 12
	start := time.Now()
	for range n {
		if _, err := e.c.Roles.Get(ctx(t), role.ID); err != nil {
			t.Fatal(err)
		}
	}
	// 12 calls at 5 per 300ms: the 6th waits for the 1st to age out, the 11th for the 6th.
	if d := time.Since(start); d < 550*time.Millisecond {
		t.Errorf("%d calls took %v; the budget did not hold 5 per 300ms", n, d)
	}
}

func TestBudgetAppliesToRetriesAndPages(t *testing.T) {
	e := newEnv(t, posthog.WithBudget(posthog.NewBudget(posthog.Window{Limit: 2, Per: 200 * time.Millisecond})), posthog.WithPageSize(1))
	for _, n := range []string{"a", "b", "c"} {
		e.srv.AddRole(n)
	}
	e.srv.FailNext(2, 500)
	start := time.Now()
	roles, err := e.c.Roles.ListAll(ctx(t))
	if err != nil || len(roles) != 3 {
		t.Fatalf("roles = %v, %v", roles, err)
	}
	// 2 failures + 3 pages = 5 attempts at 2 per 200ms: at least 0.4s.
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Errorf("took %v", d)
	}
}

func TestBudgetSaysBusyBeforeTheDeadlineAndHonoursCancel(t *testing.T) {
	e := newEnv(t, posthog.WithBudget(posthog.NewBudget(posthog.Window{Limit: 1, Per: 5 * time.Second})))
	if _, err := e.c.Roles.ListAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.c.Roles.ListAll(c)
	var busy *posthog.BusyError
	if !errors.As(err, &busy) || busy.RetryAfter < 4*time.Second || !posthog.IsTemporary(err) {
		t.Fatalf("err = %v, want a BusyError saying about 5s", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a call that could not be served in time waited %v instead of saying so", d)
	}
	if len(e.srv.Calls()) != 1 {
		t.Errorf("calls = %d", len(e.srv.Calls()))
	}

	c2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	_, err = e.c.Roles.ListAll(c2)
	if !errors.Is(err, context.Canceled) || posthog.IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	e := newEnv(t, posthog.WithRetry(5, time.Minute))
	e.srv.ThrottleNext(5, 30*time.Second)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.c.Roles.ListAll(c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestErrorHelpersOnServerErrors(t *testing.T) {
	e := newEnv(t)
	role := e.srv.AddRole("Eng")
	memberKey := e.srv.AddAPIKey(posthog.LevelMember)
	member, err := posthog.NewClient(e.srv.URL(), memberKey, e.srv.OrganizationID(), fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	badKey, err := posthog.NewClient(e.srv.URL(), "phx_wrong_key", e.srv.OrganizationID(), fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	otherOrg, err := posthog.NewClient(e.srv.URL(), e.srv.APIKey(), e.srv.AddOrganization("Other"), fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	unknownOrg, err := posthog.NewClient(e.srv.URL(), e.srv.APIKey(), orgUUID, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	missing := "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11"

	type helpers struct{ notFound, auth, validation, conflict, temporary, rateLimited bool }
	tests := []struct {
		name   string
		call   func() error
		status int
		want   helpers
	}{
		{"401 invalid key", func() error { _, err := badKey.Roles.ListAll(ctx(t)); return err }, 401, helpers{auth: true}},
		{"403 level", func() error { _, err := member.Roles.Create(ctx(t), "X"); return err }, 403, helpers{auth: true}},
		{"403 not a member", func() error { _, err := otherOrg.Roles.ListAll(ctx(t)); return err }, 403, helpers{auth: true}},
		{"404 org", func() error { _, err := unknownOrg.Organizations.Get(ctx(t), ""); return err }, 404, helpers{notFound: true}},
		{"404 role", func() error { _, err := e.c.Roles.Get(ctx(t), missing); return err }, 404, helpers{notFound: true}},
		{"400 blank name", func() error { _, err := e.c.Roles.Create(ctx(t), " "); return err }, 400, helpers{validation: true}},
		{"400 unique name", func() error { _, err := e.c.Roles.Create(ctx(t), "ENG"); return err }, 400, helpers{conflict: true}},
		{"400 role does not exist", func() error { _, err := e.c.RoleMemberships.Create(ctx(t), missing, missing); return err }, 400, helpers{validation: true}},
		{"429", func() error {
			e.srv.ThrottleNext(1, 5*time.Second)
			c, _ := posthog.NewClient(e.srv.URL(), e.srv.APIKey(), e.srv.OrganizationID(), append(fastOpts(), posthog.WithRetry(1, 0))...)
			_, err := c.Roles.Get(ctx(t), role.ID)
			return err
		}, 429, helpers{temporary: true, rateLimited: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
				t.Fatalf("err = %v, want status %d", err, tc.status)
			}
			got := helpers{
				notFound:    posthog.IsNotFound(err),
				auth:        posthog.IsAuth(err),
				validation:  posthog.IsValidation(err),
				conflict:    posthog.IsConflict(err),
				temporary:   posthog.IsTemporary(err),
				rateLimited: posthog.IsRateLimited(err),
			}
			if got != tc.want {
				t.Errorf("helpers = %+v, want %+v (err %v)", got, tc.want, err)
			}
		})
	}
}

// TestAPIKeyNeverInErrorsOrLogs collects errors from every failure path and checks that
// none mentions the key, and that the debug log never does either.
func TestAPIKeyNeverInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
	e := newEnv(t, posthog.WithLogger(logger), posthog.WithRetry(2, 5*time.Second))
	key := e.srv.APIKey()
	role := e.srv.AddRole("Eng")
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Helper()
			t.Fatal("expected an error")
		}
		errs = append(errs, err)
	}

	_, err := e.c.Roles.Get(ctx(t), "6f1f6a4e-3c59-4c86-8f0e-3a3c2b9b7d11")
	collect(err)
	_, err = e.c.Roles.Create(ctx(t), "")
	collect(err)
	e.srv.FailNext(10, 500)
	_, err = e.c.Roles.ListAll(ctx(t))
	collect(err)
	e.srv.FailNext(10, 503)
	_, err = e.c.Roles.Get(ctx(t), role.ID)
	collect(err)
	e.srv.FailNext(0, 0)
	_, err = e.c.Roles.Get(ctx(t), "not-a-uuid")
	collect(err)

	// A wrong key of the same form must not leak either.
	wrong, _ := posthog.NewClient(e.srv.URL(), key+"x", e.srv.OrganizationID(), append(fastOpts(), posthog.WithLogger(logger))...)
	_, err = wrong.Roles.ListAll(ctx(t))
	collect(err)

	// A server that echoes the Authorization header in its error body.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/roles/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"type":"validation_error","code":"invalid","detail":"bad header `+r.Header.Get("Authorization")+`","attr":null}`)
			return
		}
		w.WriteHeader(502)
		_, _ = io.WriteString(w, "<html>upstream said "+r.Header.Get("Authorization")+"</html>")
	}))
	defer echo.Close()
	ec, _ := posthog.NewClient(echo.URL, key, "@current", append(fastOpts(), posthog.WithLogger(logger), posthog.WithRetry(2, time.Second))...)
	_, err = ec.Roles.ListAll(ctx(t))
	collect(err)
	_, err = ec.Members.ListAll(ctx(t))
	collect(err)

	// Network failure.
	echo.Close()
	_, err = ec.Roles.ListAll(ctx(t))
	collect(err)

	for _, err := range errs {
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "phx_test") {
			t.Errorf("error leaks the key: %v", err)
		}
		var apiErr *posthog.APIError
		if errors.As(err, &apiErr) && (strings.Contains(apiErr.Body, key) || strings.Contains(apiErr.Detail, key)) {
			t.Errorf("APIError fields leak the key: %#v", apiErr)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("expected debug logs")
	}
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), "Bearer") || strings.Contains(logs.String(), "Authorization") {
		t.Errorf("logs leak the key or header:\n%s", logs.String())
	}
}

func TestDoAndNewRequest(t *testing.T) {
	e := newEnv(t)
	e.srv.AddRole("Eng")
	req, err := e.c.NewRequest("GET", "api/organizations/@current/roles/?limit=5", nil)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Count   int            `json:"count"`
		Results []posthog.Role `json:"results"`
	}
	resp, err := e.c.Do(ctx(t), req, &page)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Attempts != 1 || page.Count != 1 || page.Results[0].Name != "Eng" {
		t.Errorf("resp %d attempts %d page %+v", resp.StatusCode, resp.Attempts, page)
	}
	if st := e.obs.statuses(); !slices.Equal(st, []string{"custom:200"}) {
		t.Errorf("observed %v", st)
	}
	if _, err := e.c.NewRequest("GET", "https://evil.example/api/", nil); !posthog.IsValidation(err) {
		t.Errorf("foreign host: err = %v", err)
	}
	if _, err := e.c.NewRequest("GET", "//evil.example/api/", nil); !posthog.IsValidation(err) {
		t.Errorf("scheme-relative foreign host: err = %v", err)
	}
}

func TestCheckResponse(t *testing.T) {
	mk := func(status int, body string, hdr map[string]string) *http.Response {
		h := http.Header{}
		for k, v := range hdr {
			h.Set(k, v)
		}
		req, _ := http.NewRequest("GET", "http://x/api/organizations/@current/roles/", nil)
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}
	}
	if err := posthog.CheckResponse(mk(204, "", nil)); err != nil {
		t.Errorf("204: %v", err)
	}
	tests := []struct {
		name       string
		resp       *http.Response
		detail     string
		code       string
		attr       string
		retryAfter time.Duration
	}{
		{"json", mk(400, `{"type":"validation_error","code":"unique","detail":"There is already a role with this name.","attr":"name"}`, nil), "There is already a role with this name.", "unique", "name", 0},
		{"html", mk(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", nil), "502 Bad Gateway", "", "", 0},
		{"empty", mk(503, "", nil), "Service Unavailable", "", "", 0},
		{"json without our shape", mk(500, `{"error":"boom"}`, nil), `{"error":"boom"}`, "", "", 0},
		{"retry-after seconds", mk(429, `{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 7 seconds.","attr":null}`, map[string]string{"Retry-After": "3"}), "Request was throttled. Expected available in 7 seconds.", "throttled", "", 3 * time.Second},
		{"retry-after from detail", mk(429, `{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 7 seconds.","attr":null}`, nil), "Request was throttled. Expected available in 7 seconds.", "throttled", "", 7 * time.Second},
		{"retry-after date", mk(429, `{}`, map[string]string{"Retry-After": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}), "Too Many Requests", "", "", time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := posthog.CheckResponse(tc.resp)
			var apiErr *posthog.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v", err)
			}
			if apiErr.Detail != tc.detail || apiErr.Code != tc.code {
				t.Errorf("detail %q code %q", apiErr.Detail, apiErr.Code)
			}
			if (apiErr.Attr == nil) != (tc.attr == "") || (apiErr.Attr != nil && *apiErr.Attr != tc.attr) {
				t.Errorf("attr = %v", apiErr.Attr)
			}
			if tc.retryAfter == time.Hour {
				if apiErr.RetryAfter < 59*time.Minute || apiErr.RetryAfter > time.Hour {
					t.Errorf("RetryAfter = %v", apiErr.RetryAfter)
				}
			} else if apiErr.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v", apiErr.RetryAfter)
			}
			if apiErr.Method != "GET" || apiErr.Path == "" {
				t.Errorf("method/path = %q %q", apiErr.Method, apiErr.Path)
			}
		})
	}
}

func TestNextLinkOnAnotherHostNeverGetsTheKey(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(500)
	}))
	defer elsewhere.Close()
	e := newEnvWith(t, []posthogtest.Option{posthogtest.WithLinkBaseURL(elsewhere.URL)}, posthog.WithPageSize(2))
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		e.srv.AddRole(n)
	}
	roles, err := e.c.Roles.ListAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 5 {
		t.Errorf("roles = %d", len(roles))
	}
	if hits.Load() != 0 {
		t.Errorf("the other host got %d requests", hits.Load())
	}
	if n := len(e.srv.CallsMatching("GET", e.orgPath("roles"))); n != 3 {
		t.Errorf("pages fetched = %d, want 3", n)
	}
}

func TestRedirectToAnotherHostIsNotFollowed(t *testing.T) {
	var leaked atomic.Value
	leaked.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer redir.Close()
	c, _ := posthog.NewClient(redir.URL, "phx_secret", "@current", fastOpts()...)
	_, err := c.Roles.ListAll(ctx(t))
	var apiErr *posthog.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusFound {
		t.Fatalf("err = %v", err)
	}
	if leaked.Load() != "" {
		t.Errorf("key sent to the redirect target")
	}
}

func TestObserverRouteNames(t *testing.T) {
	e := newEnv(t)
	u := e.srv.AddUser("a@example.com", "A", "B")
	c := ctx(t)
	role := must[*posthog.Role](t)(e.c.Roles.Create(c, "Eng"))
	m := must[*posthog.RoleMembership](t)(e.c.RoleMemberships.Create(c, role.ID, u.UUID))
	must[*posthog.RoleMembership](t)(e.c.RoleMemberships.Get(c, role.ID, m.ID))
	if err := e.c.RoleMemberships.Delete(c, role.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	must[[]posthog.OrganizationMember](t)(e.c.Members.ListAll(c))
	must[*posthog.Organization](t)(e.c.Organizations.Get(c, ""))
	must[*posthog.RoleExternalReference](t)(e.c.RoleExternalReferences.Lookup(c, posthog.LookupOptions{Provider: "p", ProviderOrganizationID: "o", ProviderRoleID: "r"}))
	want := []string{"roles.create:201", "role_memberships.create:201", "role_memberships.get:200", "role_memberships.delete:204", "members.list:200", "organizations.get:200", "role_external_references.lookup:200"}
	if st := e.obs.statuses(); !slices.Equal(st, want) {
		t.Errorf("observed %v\nwant     %v", st, want)
	}
}

func TestTimeoutIsRetriedForReads(t *testing.T) {
	e := newEnv(t, posthog.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}), posthog.WithRetry(3, 10*time.Second))
	role := e.srv.AddRole("Eng")
	e.srv.SetLatency(300 * time.Millisecond)
	_, err := e.c.Roles.Get(ctx(t), role.ID)
	var re *posthog.RetryError
	if !errors.As(err, &re) || re.Attempts != 3 || !posthog.IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
	if st := e.obs.statuses(); !slices.Equal(st, []string{"roles.get:0", "roles.get:0", "roles.get:0"}) {
		t.Errorf("attempts = %v", st)
	}
	e.srv.SetLatency(0)
	if _, err := e.c.Roles.Get(ctx(t), role.ID); err != nil {
		t.Errorf("after latency removed: %v", err)
	}
}

func TestServerRateLimitSurfacesRetryAfter(t *testing.T) {
	e := newEnvWith(t, []posthogtest.Option{posthogtest.WithRateLimit(2, 0)}, posthog.WithRetry(3, 5*time.Second))
	for range 2 {
		if _, err := e.c.Roles.ListAll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.c.Roles.ListAll(ctx(t))
	var apiErr *posthog.APIError
	if !posthog.IsRateLimited(err) || !errors.As(err, &apiErr) || apiErr.RetryAfter < 50*time.Second {
		t.Fatalf("err = %v; want a 429 whose Retry-After (about a minute) exceeds the budget", err)
	}
}

func TestConcurrentUseOfOneClient(t *testing.T) {
	e := newEnv(t, posthog.WithRateLimit(0, 0))
	role := e.srv.AddRole("Eng")
	users := make([]posthog.User, 20)
	for i := range users {
		users[i] = e.srv.AddUser("c"+strconv.Itoa(i)+"@example.com", "C", "")
	}
	errs := make(chan error, len(users))
	for _, u := range users {
		go func() {
			_, err := e.c.RoleMemberships.Create(ctx(t), role.ID, u.UUID)
			if err == nil {
				_, err = e.c.Members.FindByEmail(ctx(t), strings.ToUpper(u.Email))
			}
			errs <- err
		}()
	}
	for range users {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := len(e.srv.Memberships(role.ID)); n != len(users) {
		t.Errorf("memberships = %d", n)
	}
}

func TestLatencyTimeoutsAreRecorded(t *testing.T) {
	e := newEnv(t, posthog.WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}), posthog.WithRetry(2, 5*time.Second))
	e.srv.SetLatency(200 * time.Millisecond)
	_, _ = e.c.Roles.ListAll(ctx(t))
	deadline := time.Now().Add(2 * time.Second)
	for len(e.srv.Calls()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the server notices the client leaving asynchronously
	}
	calls := e.srv.Calls()
	if len(calls) != 2 || !calls[0].Dropped || calls[0].Status != 0 {
		t.Errorf("calls = %+v", calls)
	}
}
