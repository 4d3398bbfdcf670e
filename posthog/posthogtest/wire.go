package posthogtest

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The JSON shapes PostHog sends, written out independently of the client's types so that a
// wrong tag on either side shows up in tests.

type wireUser struct {
	ID                 int     `json:"id"`
	UUID               string  `json:"uuid"`
	DistinctID         string  `json:"distinct_id"`
	FirstName          string  `json:"first_name"`
	LastName           string  `json:"last_name"`
	Email              string  `json:"email"`
	IsEmailVerified    *bool   `json:"is_email_verified"`
	HedgehogConfig     any     `json:"hedgehog_config"`
	RoleAtOrganization *string `json:"role_at_organization"`
}

// wireMember is an item of the members list: the nested member's fields, then last_login and
// is_guest.
type wireMember struct {
	wireNestedMember
	LastLogin *string `json:"last_login"`
	IsGuest   bool    `json:"is_guest"`
}

// wireNestedMember is the organization_member of a role membership: last_login is absent.
type wireNestedMember struct {
	ID            string   `json:"id"`
	User          wireUser `json:"user"`
	Level         int      `json:"level"`
	JoinedAt      string   `json:"joined_at"`
	UpdatedAt     string   `json:"updated_at"`
	Is2FAEnabled  bool     `json:"is_2fa_enabled"`
	HasSocialAuth bool     `json:"has_social_auth"`
}

type wireMembership struct {
	ID                 string            `json:"id"`
	RoleID             string            `json:"role_id"`
	OrganizationMember *wireNestedMember `json:"organization_member"`
	User               wireUser          `json:"user"`
	JoinedAt           string            `json:"joined_at"`
	UpdatedAt          string            `json:"updated_at"`
}

type wireRole struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	// CreatedBy is always null: the fake's roles are created with an API key or seeded.
	CreatedBy *wireUser        `json:"created_by"`
	Members   []wireMembership `json:"members"`
	IsDefault bool             `json:"is_default"`
}

type wireRef struct {
	ID                     string    `json:"id"`
	Provider               string    `json:"provider"`
	ProviderOrganizationID string    `json:"provider_organization_id"`
	ProviderRoleID         string    `json:"provider_role_id"`
	ProviderRoleSlug       *string   `json:"provider_role_slug"`
	ProviderRoleName       string    `json:"provider_role_name"`
	Role                   string    `json:"role"`
	CreatedAt              string    `json:"created_at"`
	CreatedBy              *wireUser `json:"created_by"`
}

type wireOrg struct {
	ID                           string            `json:"id"`
	Name                         string            `json:"name"`
	Slug                         string            `json:"slug"`
	LogoMediaID                  *string           `json:"logo_media_id"`
	CreatedAt                    string            `json:"created_at"`
	UpdatedAt                    string            `json:"updated_at"`
	MembershipLevel              *int              `json:"membership_level"`
	PluginsAccessLevel           int               `json:"plugins_access_level"`
	Teams                        []any             `json:"teams"`
	Projects                     []any             `json:"projects"`
	AvailableProductFeatures     []any             `json:"available_product_features"`
	IsMemberJoinEmailEnabled     bool              `json:"is_member_join_email_enabled"`
	Metadata                     map[string]string `json:"metadata"`
	CustomerID                   *string           `json:"customer_id"`
	Enforce2FA                   *bool             `json:"enforce_2fa"`
	MembersCanInvite             *bool             `json:"members_can_invite"`
	MembersCanUsePersonalAPIKeys bool              `json:"members_can_use_personal_api_keys"`
	AllowPubliclySharedResources bool              `json:"allow_publicly_shared_resources"`
	MemberCount                  int               `json:"member_count"`
	IsAIDataProcessingApproved   *bool             `json:"is_ai_data_processing_approved"`
	DefaultExperimentStatsMethod *string           `json:"default_experiment_stats_method"`
	DefaultAnonymizeIPs          bool              `json:"default_anonymize_ips"`
	DefaultRoleID                *string           `json:"default_role_id"`
	IsActive                     bool              `json:"is_active"`
	IsNotActiveReason            *string           `json:"is_not_active_reason"`
}

type wireIntegration struct {
	ID            string         `json:"id"`
	Kind          string         `json:"kind"`
	IntegrationID *string        `json:"integration_id"`
	Config        map[string]any `json:"config"`
	CreatedAt     string         `json:"created_at"`
	UpdatedAt     string         `json:"updated_at"`
	CreatedBy     *wireUser      `json:"created_by"`
}

type wirePage struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []any   `json:"results"`
}

// ts formats a time as Django REST framework does: ISO 8601 in UTC with "Z", microseconds
// when not zero.
func ts(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}

// The render helpers below are called with s.mu held.

func (s *Server) userJSON(u *user) wireUser {
	return wireUser{
		ID:              u.id,
		UUID:            u.uuid,
		DistinctID:      u.distinctID,
		FirstName:       u.first,
		LastName:        u.last,
		Email:           u.email,
		IsEmailVerified: ptr(true),
	}
}

func (s *Server) memberJSON(m *member) wireMember {
	out := wireMember{wireNestedMember: s.nestedMemberJSON(m)}
	if u := s.users[m.userUUID]; u.lastLogin != nil {
		out.LastLogin = ptr(ts(*u.lastLogin))
	}
	return out
}

func (s *Server) nestedMemberJSON(m *member) wireNestedMember {
	u := s.users[m.userUUID]
	return wireNestedMember{
		ID:            m.id,
		User:          s.userJSON(u),
		Level:         m.level,
		JoinedAt:      ts(m.joinedAt),
		UpdatedAt:     ts(m.updatedAt),
		Is2FAEnabled:  u.is2FA,
		HasSocialAuth: u.hasSocialAuth,
	}
}

func (s *Server) integrationJSON(x *integration) wireIntegration {
	out := wireIntegration{
		ID:            x.id,
		Kind:          x.kind,
		IntegrationID: x.integrationID,
		Config:        x.config,
		CreatedAt:     ts(x.createdAt),
		UpdatedAt:     ts(x.updatedAt),
	}
	if out.Config == nil {
		out.Config = map[string]any{}
	}
	if u := s.users[x.createdBy]; u != nil {
		w := s.userJSON(u)
		out.CreatedBy = &w
	}
	return out
}

func (s *Server) membershipJSON(rm *membership) wireMembership {
	out := wireMembership{
		ID:        rm.id,
		RoleID:    rm.roleID,
		User:      s.userJSON(s.users[rm.userUUID]),
		JoinedAt:  ts(rm.joinedAt),
		UpdatedAt: ts(rm.updatedAt),
	}
	if r := s.roles[rm.roleID]; r != nil {
		if m := s.memberOf(r.orgID, rm.userUUID); m != nil {
			out.OrganizationMember = ptr(s.nestedMemberJSON(m))
		}
	}
	return out
}

func (s *Server) roleJSON(r *role) wireRole {
	out := wireRole{
		ID:        r.id,
		Name:      r.name,
		CreatedAt: ts(r.createdAt),
		Members:   []wireMembership{},
	}
	for _, rm := range s.roleMemberships(r.id) {
		out.Members = append(out.Members, s.membershipJSON(rm))
	}
	if o := s.orgs[r.orgID]; o != nil && o.defaultRoleID != nil && *o.defaultRoleID == r.id {
		out.IsDefault = true
	}
	return out
}

func (s *Server) refJSON(x *extRef) wireRef {
	out := wireRef{
		ID:                     x.id,
		Provider:               x.provider,
		ProviderOrganizationID: x.providerOrganizationID,
		ProviderRoleID:         x.providerRoleID,
		ProviderRoleSlug:       x.providerRoleSlug,
		ProviderRoleName:       x.providerRoleName,
		Role:                   x.roleID,
		CreatedAt:              ts(x.createdAt),
	}
	if u := s.users[x.createdBy]; u != nil {
		w := s.userJSON(u)
		out.CreatedBy = &w
	}
	return out
}

func (s *Server) orgJSON(o *org, callerUUID string) wireOrg {
	out := wireOrg{
		ID:                           o.id,
		Name:                         o.name,
		Slug:                         o.slug,
		LogoMediaID:                  o.logoMediaID,
		CreatedAt:                    ts(o.createdAt),
		UpdatedAt:                    ts(o.updatedAt),
		PluginsAccessLevel:           9,
		Teams:                        []any{},
		Projects:                     []any{},
		AvailableProductFeatures:     []any{},
		IsMemberJoinEmailEnabled:     o.isMemberJoinEmailEnabled,
		Metadata:                     map[string]string{},
		Enforce2FA:                   o.enforce2FA,
		MembersCanInvite:             o.membersCanInvite,
		MembersCanUsePersonalAPIKeys: o.membersCanUsePersonalAPIKeys,
		AllowPubliclySharedResources: o.allowPubliclySharedResources,
		MemberCount:                  len(s.activeMembers(o.id)),
		IsAIDataProcessingApproved:   o.isAIDataProcessingApproved,
		DefaultExperimentStatsMethod: o.defaultExperimentStatsMethod,
		DefaultAnonymizeIPs:          o.defaultAnonymizeIPs,
		DefaultRoleID:                o.defaultRoleID,
		IsActive:                     true,
	}
	for _, f := range o.features {
		out.AvailableProductFeatures = append(out.AvailableProductFeatures, f)
	}
	if m := s.memberOf(o.id, callerUUID); m != nil {
		out.MembershipLevel = ptr(m.level)
	}
	return out
}

// roleMemberships returns a role's memberships ordered by joined_at, id.
func (s *Server) roleMemberships(roleID string) []*membership {
	var out []*membership
	for _, rm := range s.memberships {
		if rm.roleID == roleID {
			out = append(out, rm)
		}
	}
	slices.SortStableFunc(out, func(a, b *membership) int {
		if c := a.joinedAt.Compare(b.joinedAt); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// activeMembers returns an organization's members whose users are active, in joining order.
func (s *Server) activeMembers(orgID string) []*member {
	var out []*member
	for _, m := range s.members {
		if m.orgID == orgID && s.users[m.userUUID] != nil && s.users[m.userUUID].active {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) memberOf(orgID, userUUID string) *member {
	return s.memberIdx[memberKey{orgID, userUUID}]
}

// addMember makes a user a member of an organization, joining at t. As in
// PostHog, a new member joins the organization's default role, if it has
// one: access nobody asked for.
func (s *Server) addMember(orgID, userUUID string, level int, t time.Time) {
	m := &member{id: uuid.NewString(), orgID: orgID, userUUID: userUUID, level: level, joinedAt: t, updatedAt: t}
	s.members = append(s.members, m)
	s.memberIdx[memberKey{orgID, userUUID}] = m
	if o := s.orgs[orgID]; o != nil && o.defaultRoleID != nil && s.roleMembership(*o.defaultRoleID, userUUID) == nil {
		rm := s.insertMembership(*o.defaultRoleID, userUUID)
		rm.joinedAt, rm.updatedAt = t, t // joined the role as they joined
	}
}

// convert turns a wire value into the client's type, the way the client would decode it.
func convert[T any](v any) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
