package posthog

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Organization membership levels, as in OrganizationMember.Level and
// Organization.MembershipLevel. Writes to roles, role memberships and role external
// references need LevelAdmin or more.
const (
	LevelMember = 1
	LevelAdmin  = 8
	LevelOwner  = 15
)

// User is PostHog's UserBasic, nested in members, role memberships and created_by fields.
type User struct {
	ID                 int             `json:"id"`
	UUID               string          `json:"uuid"`
	DistinctID         *string         `json:"distinct_id"`
	FirstName          string          `json:"first_name"`
	LastName           string          `json:"last_name"`
	Email              string          `json:"email"`
	IsEmailVerified    *bool           `json:"is_email_verified"`
	HedgehogConfig     json.RawMessage `json:"hedgehog_config,omitempty"`
	RoleAtOrganization *string         `json:"role_at_organization"`
}

// OrganizationMember is an item of GET /api/organizations/{org}/members/, also nested in
// role memberships.
type OrganizationMember struct {
	// ID is the organization membership's UUID (not the user's).
	ID   string `json:"id"`
	User User   `json:"user"`
	// Level is LevelMember, LevelAdmin or LevelOwner.
	Level         int       `json:"level"`
	JoinedAt      time.Time `json:"joined_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Is2FAEnabled  bool      `json:"is_2fa_enabled"`
	HasSocialAuth bool      `json:"has_social_auth"`
	// LastLogin is nil when the user never logged in, and absent inside role memberships;
	// with Is2FAEnabled it is what access reviews show.
	LastLogin *time.Time `json:"last_login,omitempty"`
	// IsGuest is sent by newer PostHog versions only.
	IsGuest *bool `json:"is_guest,omitempty"`
}

// MembersService is the organization members API, GET /api/organizations/{org}/members/
// (API key scope organization_member:read). Only active users are listed.
type MembersService service

// List iterates over the organization's members: GET /api/organizations/{org}/members/,
// following pagination. Route name "members.list".
func (s *MembersService) List(ctx context.Context) iter.Seq2[OrganizationMember, error] {
	return list[OrganizationMember](ctx, s.client, "members.list", s.client.orgPath("members"), nil)
}

// ListAll returns every member: GET /api/organizations/{org}/members/ over all pages.
func (s *MembersService) ListAll(ctx context.Context) ([]OrganizationMember, error) {
	return collect(s.List(ctx))
}

// maxSearchLen is the longest search= PostHog's members list accepts.
const maxSearchLen = 200

// searchPageSize is the page size of FindByEmail's search call. A search for a whole email
// address matches few members; one large page keeps the lookup to a single call.
const searchPageSize = 500

// Search iterates over the members whose first name, last name or email contains q,
// ignoring case: GET /api/organizations/{org}/members/?search=…, following pagination.
// Route name "members.search". q is trimmed and must be 1 to 200 characters, as PostHog
// accepts.
func (s *MembersService) Search(ctx context.Context, q string) iter.Seq2[OrganizationMember, error] {
	q = strings.TrimSpace(q)
	if q == "" || utf8.RuneCountInString(q) > maxSearchLen {
		return func(yield func(OrganizationMember, error) bool) {
			yield(OrganizationMember{}, &ArgumentError{Field: "search", Value: q, Reason: fmt.Sprintf("must be 1 to %d characters", maxSearchLen)})
		}
	}
	return list[OrganizationMember](ctx, s.client, "members.search", s.client.orgPath("members"), url.Values{"search": {q}})
}

// FindByEmail returns the active member whose email matches email, ignoring case and
// surrounding spaces (Slack and PostHog may disagree on case), in at most two calls and
// never by scanning the organization:
//
//  1. GET /api/organizations/{org}/members/?email=… (route "members.list"): PostHog's
//     filter is exact and case-sensitive, so this finds the member whose case agrees;
//  2. otherwise GET /api/organizations/{org}/members/?search=… (route "members.search"): a
//     case-insensitive substring match on name and email, of which only an email equal to
//     email ignoring case is taken (an email longer than PostHog's 200-character search
//     limit is searched by its first 200 characters).
//
// Each call reads one page. When several members differ only by case, an exact match wins,
// then the first listed (the newest). Nobody matching gives a [*NotFoundError]
// ([IsNotFound]).
func (s *MembersService) FindByEmail(ctx context.Context, email string) (*OrganizationMember, error) {
	want := strings.TrimSpace(email)
	if want == "" {
		return nil, &ArgumentError{Field: "email", Reason: "is required"}
	}
	exact, err := s.page(ctx, "members.list", url.Values{"email": {want}, "limit": {strconv.Itoa(s.client.pageSize)}})
	if err != nil {
		return nil, err
	}
	if m := matchEmail(exact.Results, want); m != nil {
		return m, nil
	}
	needle := want
	if r := []rune(needle); len(r) > maxSearchLen {
		needle = string(r[:maxSearchLen])
	}
	found, err := s.page(ctx, "members.search", url.Values{"search": {needle}, "limit": {strconv.Itoa(searchPageSize)}})
	if err != nil {
		return nil, err
	}
	if m := matchEmail(found.Results, want); m != nil {
		return m, nil
	}
	if found.Count > len(found.Results) {
		// Not a single page: more members match than a whole email should. Say so rather
		// than scan the organization or claim nobody matches.
		return nil, fmt.Errorf("posthog: members.search: %d members match %q, more than one page of %d: no exact email match among the first", found.Count, needle, len(found.Results))
	}
	return nil, &NotFoundError{Resource: "organization member", Key: "email " + want}
}

// page reads one page of the members list with the query q.
func (s *MembersService) page(ctx context.Context, endpoint string, q url.Values) (*page[OrganizationMember], error) {
	var p page[OrganizationMember]
	if err := s.client.get(ctx, endpoint, s.client.orgPath("members"), q, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// matchEmail returns the first member whose trimmed email equals want, else the first whose
// email equals it ignoring case, else nil.
func matchEmail(members []OrganizationMember, want string) *OrganizationMember {
	var fold *OrganizationMember
	for i := range members {
		got := strings.TrimSpace(members[i].User.Email)
		if got == want {
			return &members[i]
		}
		if fold == nil && strings.EqualFold(got, want) {
			fold = &members[i]
		}
	}
	return fold
}
