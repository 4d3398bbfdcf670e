package posthog_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

// env is a client wired to a fresh fake.
type env struct {
	srv *posthogtest.Server
	c   *posthog.Client
	obs *observer
}

// fastOpts make tests quick: no client-side throttle and millisecond backoff.
func fastOpts() []posthog.Option {
	return []posthog.Option{
		posthog.WithRateLimit(0, 0),
		posthog.WithBackoff(5*time.Millisecond, 40*time.Millisecond),
		posthog.WithRetry(5, 10*time.Second),
	}
}

func newEnv(t *testing.T, copts ...posthog.Option) *env {
	t.Helper()
	return newEnvWith(t, nil, copts...)
}

func newEnvWith(t *testing.T, sopts []posthogtest.Option, copts ...posthog.Option) *env {
	t.Helper()
	srv := posthogtest.NewServer(sopts...)
	t.Cleanup(srv.Close)
	obs := &observer{}
	opts := append(fastOpts(), posthog.WithObserver(obs.record))
	opts = append(opts, copts...)
	c, err := posthog.NewClient(srv.URL(), srv.APIKey(), srv.OrganizationID(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, c: c, obs: obs}
}

// orgPath is the path prefix of the organization's endpoints on the fake.
func (e *env) orgPath(rest string) string {
	return "/api/organizations/" + e.srv.OrganizationID() + "/" + rest
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// observer records CallInfo values.
type observer struct {
	mu    sync.Mutex
	calls []posthog.CallInfo
}

func (o *observer) record(ci posthog.CallInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, ci)
}

func (o *observer) all() []posthog.CallInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]posthog.CallInfo(nil), o.calls...)
}

// statuses returns endpoint:status for each observed attempt.
func (o *observer) statuses() []string {
	var out []string
	for _, c := range o.all() {
		out = append(out, c.Endpoint+":"+strconv.Itoa(c.Status))
	}
	return out
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
