package posthog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
)

func TestAPIErrorFormat(t *testing.T) {
	attr := "name"
	tests := []struct {
		err  *posthog.APIError
		want string
	}{
		{&posthog.APIError{StatusCode: 400, Type: "validation_error", Code: "unique", Detail: "There is already a role with this name.", Attr: &attr, Method: "POST", Endpoint: "roles.create"},
			"posthog: POST roles.create: 400 validation_error/unique (attr name): There is already a role with this name."},
		{&posthog.APIError{StatusCode: 429, Type: "throttled_error", Code: "throttled", Detail: "Request was throttled.", RetryAfter: 3 * time.Second, Method: "GET", Endpoint: "roles.list"},
			"posthog: GET roles.list: 429 throttled_error/throttled: Request was throttled. (retry after 3s)"},
		{&posthog.APIError{StatusCode: 502, Detail: "502 Bad Gateway", Method: "GET", Endpoint: "custom", Path: "/api/x/"},
			"posthog: GET /api/x/: 502: 502 Bad Gateway"},
		{&posthog.APIError{StatusCode: 404}, "posthog: 404"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestHelpers(t *testing.T) {
	api := func(status int, code, detail string) error {
		return &posthog.APIError{StatusCode: status, Code: code, Detail: detail}
	}
	wrap := func(err error) error { return fmt.Errorf("outer: %w", err) }
	type flags struct{ notFound, alreadyMember, conflict, rateLimited, auth, validation, temporary bool }
	tests := []struct {
		name string
		err  error
		want flags
	}{
		{"nil", nil, flags{}},
		{"404", api(404, "not_found", "Not found."), flags{notFound: true}},
		{"wrapped 404", wrap(api(404, "not_found", "Not found.")), flags{notFound: true}},
		{"not found error", &posthog.NotFoundError{Resource: "role", Key: "x"}, flags{notFound: true}},
		{"already member", api(400, "invalid_input", "User is already part of the role."), flags{alreadyMember: true, conflict: true}},
		{"unique", api(400, "unique", "There is already a role with this name."), flags{conflict: true}},
		{"ref exists", api(400, "invalid_input", "A role external reference with this provider, organization, and role slug already exists."), flags{conflict: true}},
		{"409", api(409, "conflict", "Conflict"), flags{conflict: true}},
		{"400 other", api(400, "invalid_input", "Role does not exist."), flags{validation: true}},
		{"argument", &posthog.ArgumentError{Field: "role id", Value: "x", Reason: "must be a UUID"}, flags{validation: true}},
		{"401", api(401, "authentication_failed", ""), flags{auth: true}},
		{"403", api(403, "permission_denied", ""), flags{auth: true}},
		{"429", api(429, "throttled", ""), flags{rateLimited: true, temporary: true}},
		{"500", api(500, "error", ""), flags{temporary: true}},
		{"503 after retries", &posthog.RetryError{Attempts: 5, Err: api(503, "", "")}, flags{temporary: true}},
		{"timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, flags{temporary: true}},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, flags{temporary: true}},
		{"reset", wrap(syscall.ECONNRESET), flags{temporary: true}},
		{"eof", wrap(io.ErrUnexpectedEOF), flags{temporary: true}},
		{"deadline", wrap(context.DeadlineExceeded), flags{temporary: true}},
		{"canceled", wrap(context.Canceled), flags{}},
		{"plain", errors.New("boom"), flags{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := flags{
				notFound:      posthog.IsNotFound(tc.err),
				alreadyMember: posthog.IsAlreadyMember(tc.err),
				conflict:      posthog.IsConflict(tc.err),
				rateLimited:   posthog.IsRateLimited(tc.err),
				auth:          posthog.IsAuth(tc.err),
				validation:    posthog.IsValidation(tc.err),
				temporary:     posthog.IsTemporary(tc.err),
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRetryErrorFormat(t *testing.T) {
	err := &posthog.RetryError{Attempts: 3, Elapsed: 1234 * time.Millisecond, Err: errors.New("last")}
	if got := err.Error(); got != "posthog: gave up after 3 attempts in 1.234s: last" {
		t.Errorf("got %q", got)
	}
	if !errors.Is(err, err.Err) {
		t.Error("RetryError does not unwrap")
	}
}
