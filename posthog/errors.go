package posthog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// ErrNotFound matches (with errors.Is) every "not found" outcome: a 404 [APIError] and the
// [NotFoundError] of the Find helpers.
var ErrNotFound = errors.New("posthog: not found")

// Texts PostHog uses for outcomes the helpers recognise.
const (
	detailAlreadyMember = "User is already part of the role."
	codeUnique          = "unique"
)

// APIError is an error response from PostHog. PostHog's body has the shape
// {"type", "code", "detail", "attr"} (type authentication_error, invalid_request,
// throttled_error, validation_error or server_error). Its text never contains the API key.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Type, Code and Detail come from the error body. For a body in another form, Type and
	// Code are empty and Detail summarises the body or is the status text.
	Type, Code, Detail string
	// Attr names the offending field of a validation error, or is nil.
	Attr *string
	// RetryAfter is the wait PostHog asked for (Retry-After header, or the throttling
	// detail), or 0.
	RetryAfter time.Duration
	// Method is the HTTP method and Endpoint the route name (e.g. "roles.create").
	Method, Endpoint string
	// Path is the URL path of the request (no query string).
	Path string
	// Body is the start of a body that was not PostHog's JSON error shape, else empty.
	Body string
}

// Error formats e as "posthog: POST roles.create: 400 validation_error/unique (attr name):
// There is already a role with this name.".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("posthog: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
	}
	if e.Endpoint != "" && e.Endpoint != "custom" {
		b.WriteString(e.Endpoint)
	} else if e.Path != "" {
		b.WriteString(e.Path)
	}
	if e.Method != "" || e.Endpoint != "" || e.Path != "" {
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d", e.StatusCode)
	switch {
	case e.Type != "" && e.Code != "":
		fmt.Fprintf(&b, " %s/%s", e.Type, e.Code)
	case e.Type != "" || e.Code != "":
		fmt.Fprintf(&b, " %s%s", e.Type, e.Code)
	}
	if e.Attr != nil {
		fmt.Fprintf(&b, " (attr %s)", *e.Attr)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// ArgumentError is a client-side validation failure, detected before any request (a
// malformed UUID, a missing required argument). [IsValidation] reports it.
type ArgumentError struct {
	// Field names the argument, e.g. "role_id".
	Field string
	// Value is the rejected value, empty when it must not be echoed (secrets).
	Value string
	// Reason says what is wrong, e.g. "must be a UUID".
	Reason string
}

// Error formats e as `posthog: invalid role_id "abc": must be a UUID`.
func (e *ArgumentError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("posthog: invalid %s %q: %s", e.Field, truncate(e.Value, 80), e.Reason)
	}
	return fmt.Sprintf("posthog: invalid %s: %s", e.Field, e.Reason)
}

// NotFoundError is returned by the Find helpers ([RoleMembershipsService.Find],
// [MembersService.FindByEmail], [RolesService.FindByName]) when nothing matches. It matches
// [ErrNotFound].
type NotFoundError struct {
	// Resource is what was looked for, e.g. "role membership".
	Resource string
	// Key says by what, e.g. `user 5b1c… in role 0f3a…`.
	Key string
}

// Error formats e as "posthog: role membership not found: user … in role …".
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("posthog: %s not found: %s", e.Resource, e.Key)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// RetryError is returned when a call gave up: its attempts or its time budget ran out
// ([WithRetry]). It wraps the last error, so errors.As finds the last [*APIError] and the
// helpers classify it as they would the last error.
type RetryError struct {
	// Attempts is the number of attempts made.
	Attempts int
	// Elapsed is the time spent in the call.
	Elapsed time.Duration
	// Reason, when set, says why the call stopped before using all attempts.
	Reason string
	// Err is the last error.
	Err error
}

// Error formats e as "posthog: gave up after 5 attempts in 3.2s: <last error>".
func (e *RetryError) Error() string {
	attempts := "attempts"
	if e.Attempts == 1 {
		attempts = "attempt"
	}
	if e.Reason != "" {
		return fmt.Sprintf("posthog: gave up after %d %s in %s (%s): %v", e.Attempts, attempts, e.Elapsed.Round(time.Millisecond), e.Reason, e.Err)
	}
	return fmt.Sprintf("posthog: gave up after %d %s in %s: %v", e.Attempts, attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last error.
func (e *RetryError) Unwrap() error { return e.Err }

func apiError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// IsNotFound reports a 404 (unknown role, membership, reference or organization) or a
// [NotFoundError] from a Find helper.
func IsNotFound(err error) bool {
	return err != nil && errors.Is(err, ErrNotFound)
}

// IsAlreadyMember reports PostHog's answer to adding a user to a role they already belong to:
// a 400 invalid_input "User is already part of the role." (not a 409).
func IsAlreadyMember(err error) bool {
	e := apiError(err)
	return e != nil && e.StatusCode == http.StatusBadRequest && strings.Contains(e.Detail, detailAlreadyMember)
}

// IsConflict reports a create or update that clashes with existing state: a duplicate role
// name (400 unique on "name"), a duplicate role external reference (400 "… already
// exists."), an existing role membership ([IsAlreadyMember]), or a 409.
func IsConflict(err error) bool {
	e := apiError(err)
	if e == nil {
		return false
	}
	switch {
	case e.StatusCode == http.StatusConflict:
		return true
	case e.StatusCode != http.StatusBadRequest:
		return false
	case e.Code == codeUnique,
		strings.HasSuffix(e.Detail, "already exists."),
		strings.Contains(e.Detail, detailAlreadyMember):
		return true
	}
	return false
}

// IsRateLimited reports a 429; [APIError.RetryAfter] says how long to wait.
func IsRateLimited(err error) bool {
	e := apiError(err)
	return e != nil && e.StatusCode == http.StatusTooManyRequests
}

// IsAuth reports a 401 (missing or invalid API key) or 403 (missing scope, not a member of
// the organization, organization level below admin for a write).
func IsAuth(err error) bool {
	e := apiError(err)
	return e != nil && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// IsValidation reports a request PostHog rejected as invalid (a 400 that is not a conflict,
// see [IsConflict]), or one rejected client-side before sending ([ArgumentError]).
func IsValidation(err error) bool {
	var ae *ArgumentError
	if errors.As(err, &ae) {
		return true
	}
	e := apiError(err)
	return e != nil && e.StatusCode == http.StatusBadRequest && !IsConflict(err)
}

// IsTemporary reports a failure worth retrying later: a 429, a 5xx, a timeout or a broken
// or refused connection, including when the client already gave up retrying it
// ([RetryError]). A cancelled context is not temporary.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var busy *BusyError
	if errors.As(err, &busy) {
		return true
	}
	if e := apiError(err); e != nil {
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF):
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	return false
}
