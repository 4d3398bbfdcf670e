package posthog

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strings"
	"time"
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
	// LastLogin is nil when null or absent (it is absent inside role memberships).
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

// FindByEmail returns the active member whose email matches email, ignoring case and
// surrounding spaces (Slack and PostHog may disagree on case). It first asks
// GET /api/organizations/{org}/members/?email=… (an exact, case-sensitive match on PostHog's
// side), then falls back to scanning every page. When several members differ only by case,
// the exact match wins, then the first listed. Nobody matching gives a [*NotFoundError]
// ([IsNotFound]).
func (s *MembersService) FindByEmail(ctx context.Context, email string) (*OrganizationMember, error) {
	want := strings.TrimSpace(email)
	if want == "" {
		return nil, &ArgumentError{Field: "email", Reason: "is required"}
	}
	m, err := matchEmail(list[OrganizationMember](ctx, s.client, "members.list", s.client.orgPath("members"), url.Values{"email": {want}}), want)
	if err == nil && m == nil {
		// PostHog's filter is exact and case-sensitive: scan every member.
		m, err = matchEmail(s.List(ctx), want)
	}
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, &NotFoundError{Resource: "organization member", Key: "email " + want}
	}
	return m, nil
}

// matchEmail returns the first member of seq whose trimmed email equals want, else the first
// whose email equals it ignoring case, else nil.
func matchEmail(seq iter.Seq2[OrganizationMember, error], want string) (*OrganizationMember, error) {
	var fold *OrganizationMember
	for m, err := range seq {
		if err != nil {
			return nil, err
		}
		got := strings.TrimSpace(m.User.Email)
		if got == want {
			return &m, nil
		}
		if fold == nil && strings.EqualFold(got, want) {
			fold = &m
		}
	}
	return fold, nil
}
