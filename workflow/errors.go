package workflow

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each edge (Slack, HTTP, CLI) maps them once.
const (
	EINVALID     = "invalid"     // the input is wrong; the message says how
	ENOTFOUND    = "not_found"   // the thing named does not exist
	ECONFLICT    = "conflict"    // the state moved on (already decided, duplicate)
	EFORBIDDEN   = "forbidden"   // the actor may not do this
	EUNAVAILABLE = "unavailable" // a dependency (PostHog, Slack) is down; try again
	EINTERNAL    = "internal"    // a bug or an unexpected failure
)

// Error is the domain error. Message is plain words for the person who
// caused it, with no Slack markup: a Slack user it names is written @U123
// and listed in Users, and the adapter renders (and escapes) it. Field
// names the input at fault (for example "role", "reason", "duration") so a
// form can show the error beside it.
type Error struct {
	Code    string
	Field   string
	Message string
	Users   []string // Slack user ids the message names as @ID
	Err     error
}

// userRef is a Slack user named in an error message: formatted as @ID, and
// Errorf lists it in Error.Users.
type userRef string

func (u userRef) String() string { return "@" + string(u) }

// mentioning adds Slack user ids named in the message.
func (e *Error) mentioning(ids ...string) *Error {
	e.Users = append(e.Users, ids...)
	return e
}

// ErrorUsers returns the Slack user ids the message of err names.
func ErrorUsers(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Users
	}
	return nil
}

func refsIn(args []any) []string {
	var ids []string
	for _, a := range args {
		if u, ok := a.(userRef); ok {
			ids = append(ids, string(u))
		}
	}
	return ids
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	default:
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Users: refsIn(args)}
}

// FieldErrorf returns an EINVALID error about one input field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...), Users: refsIn(args)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of the first *Error in err's chain,
// or a generic sentence for internal errors, whose details are for logs only.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "Something went wrong on our side. The operators have been told; please try again later."
}

// ErrorField returns the field of the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// TemporaryError marks a failed call to an external system that is worth
// retrying later (rate limits, 5xx, timeouts). RetryAfter, when positive, is
// the earliest sensible retry. Any other error from a Directory is permanent.
type TemporaryError struct {
	Err        error
	RetryAfter time.Duration
	// Busy is true when the call was not made at all: the adapter's request
	// budget could not serve it in time. The system is healthy; try later.
	Busy bool
	// Reserved is true when RetryAfter is a turn the adapter has set aside
	// for this job (see JobFrom): the job comes back exactly then, without
	// the spread that keeps jobs told the same Retry-After apart.
	Reserved bool
}

func (e *TemporaryError) Error() string { return "temporary: " + e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// IsTemporary reports whether err is worth retrying.
func IsTemporary(err error) bool {
	var t *TemporaryError
	return errors.As(err, &t)
}
