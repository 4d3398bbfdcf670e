package posthogtest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The exact texts PostHog answers with (docs/posthog-api.md).
const (
	DetailNotAuthenticated     = "Authentication credentials were not provided."
	DetailInvalidKey           = "Personal API key found in request Authorization header is invalid."
	DetailNoPermission         = "You do not have permission to perform this action."
	DetailLevelInsufficient    = "Your organization access level is insufficient."
	DetailNoAPIKeyAccess       = "This action does not support personal API key access"
	DetailOrganizationNotFound = "Organization not found."
	DetailNotFound             = "Not found."
	DetailServerError          = "A server error occurred."
	DetailRequired             = "This field is required."
	DetailBlank                = "This field may not be blank."
	DetailNull                 = "This field may not be null."
	DetailNotAString           = "Not a valid string."
	DetailInvalidUUID          = "Must be a valid UUID."
	DetailRoleNameTaken        = "There is already a role with this name."
	DetailRoleDoesNotExist     = "Role does not exist."
	DetailUserDoesNotExist     = "User does not exist."
	DetailAlreadyMember        = "User is already part of the role."
	DetailRefSlugExists        = "A role external reference with this provider, organization, and role slug already exists."
	DetailRefRoleIDExists      = "A role external reference with this provider, organization, and role ID already exists."
	DetailLookupNeedsRole      = "Either provider_role_slug or provider_role_id must be provided."
	DetailScopedProjects       = "API keys with scoped projects are only supported on project-based endpoints."
	DetailServiceUnavailable   = "Service temporarily unavailable, try again later."
)

// ScopedOrganizationDetail is PostHog's 403 detail for a key restricted to other
// organizations than orgID.
func ScopedOrganizationDetail(orgID string) string {
	return fmt.Sprintf("API key does not have access to the requested organization: ID %s.", orgID)
}

// Error is PostHog's error body: one error, {"type","code","detail","attr"}.
type Error struct {
	Type   string  `json:"type"`
	Code   string  `json:"code"`
	Detail string  `json:"detail"`
	Attr   *string `json:"attr"`
}

func errorResponse(status int, typ, code, detail string, attr string) response {
	e := Error{Type: typ, Code: code, Detail: detail}
	if attr != "" {
		e.Attr = &attr
	}
	return jsonResponse(status, e)
}

func notAuthenticated() response {
	r := errorResponse(http.StatusUnauthorized, "authentication_error", "not_authenticated", DetailNotAuthenticated, "")
	r.header.Set("WWW-Authenticate", "Bearer")
	return r
}

func invalidKey() response {
	r := errorResponse(http.StatusUnauthorized, "authentication_error", "authentication_failed", DetailInvalidKey, "")
	r.header.Set("WWW-Authenticate", "Bearer")
	return r
}

func permissionDenied(detail string) response {
	return errorResponse(http.StatusForbidden, "authentication_error", "permission_denied", detail, "")
}

func missingScope(scope string) response {
	return permissionDenied(fmt.Sprintf("API key missing required scope '%s'", scope))
}

func notFound(detail string) response {
	return errorResponse(http.StatusNotFound, "invalid_request", "not_found", detail, "")
}

func validation(code, detail, attr string) response {
	return errorResponse(http.StatusBadRequest, "validation_error", code, detail, attr)
}

func serverError() response {
	return errorResponse(http.StatusInternalServerError, "server_error", "error", DetailServerError, "")
}

// ThrottledDetail is DRF's throttling detail for a wait of n seconds ("second" when n is 1,
// as DRF's ngettext gives; PostHog's docs write "N seconds").
func ThrottledDetail(n int) string {
	unit := "seconds"
	if n == 1 {
		unit = "second"
	}
	return fmt.Sprintf("Request was throttled. Expected available in %d %s.", n, unit)
}

// throttled is a 429 with Retry-After, the wait rounded up to whole seconds as DRF does.
func throttled(wait time.Duration) response {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 0 {
		secs = 0
	}
	r := errorResponse(http.StatusTooManyRequests, "throttled_error", "throttled", ThrottledDetail(secs), "")
	r.header.Set("Retry-After", strconv.Itoa(secs))
	return r
}

// unavailable is PostHog's answer to a transient database error: 503 with Retry-After
// (rounded up to whole seconds, at least 1) and a JSON server_error body.
func unavailable(retryAfter time.Duration) response {
	secs := max(int(math.Ceil(retryAfter.Seconds())), 1)
	r := errorResponse(http.StatusServiceUnavailable, "server_error", "service_unavailable", DetailServiceUnavailable, "")
	r.header.Set("Retry-After", strconv.Itoa(secs))
	return r
}

// failure is what FailNext answers: PostHog's JSON for 500, a proxy's HTML page for 502, 503
// and 504, and PostHog's error shape for anything else.
func failure(status int) response {
	switch status {
	case http.StatusInternalServerError:
		return serverError()
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		text := fmt.Sprintf("%d %s", status, http.StatusText(status))
		page := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n</body>\r\n</html>\r\n"
		return response{status: status, header: http.Header{"Content-Type": {"text/html"}}, body: []byte(page)}
	}
	typ := "server_error"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		typ = "authentication_error"
	case status == http.StatusTooManyRequests:
		typ = "throttled_error"
	case status == http.StatusBadRequest:
		typ = "validation_error"
	case status < 500:
		typ = "invalid_request"
	}
	return errorResponse(status, typ, "error", http.StatusText(status), "")
}
