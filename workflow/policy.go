package workflow

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Rules are the policy settings that apply to one role.
type Rules struct {
	Role              string   // PostHog role name or id as written in the policy ("" for defaults)
	Owners            []string // Slack user ids who decide
	ApprovalsRequired int
	PendingExpiry     time.Duration
	ReminderAfter     time.Duration // 0: no reminder
	MaxDuration       time.Duration // 0: permanent grants allowed
	AutoApprove       bool
	// ExpiryWarnings are how long before a grant ends its holder is warned,
	// longest first; only those shorter than the grant are sent.
	ExpiryWarnings []time.Duration
	ReviewRules    // access reviews and break-glass (review_policy.go)

	// RoleID is the PostHog role id the entry is bound to (Bind); once
	// bound, the entry matches that id only, so a rename changes nothing.
	RoleID string
	// Line and Column locate the entry's `role:` in the file, for messages.
	Line, Column int
}

// Policy says who decides what. It is read from the policy file at start.
type Policy struct {
	Source   string // file it was read from, "" for the built-in default
	Hash     string // hex SHA-256 of the file, to notice policy changes
	Defaults Rules
	Roles    []Rules
}

// Built-in defaults, used where the policy file is silent.
const (
	DefaultApprovalsRequired = 1
	DefaultPendingExpiry     = 72 * time.Hour
	DefaultReminderAfter     = 24 * time.Hour
	maxApprovalsRequired     = 10
)

// DefaultExpiryWarnings are the warnings a holder gets before a grant ends.
var DefaultExpiryWarnings = []time.Duration{24 * time.Hour, time.Hour}

// DefaultPolicy is the policy without a policy file: one approval from an
// admin, 72h expiry, reminders after 24h, any duration.
func DefaultPolicy() *Policy {
	return &Policy{Defaults: Rules{
		ApprovalsRequired: DefaultApprovalsRequired,
		PendingExpiry:     DefaultPendingExpiry,
		ReminderAfter:     DefaultReminderAfter,
		ExpiryWarnings:    DefaultExpiryWarnings,
		ReviewRules:       defaultReviewRules,
	}}
}

// RulesFor returns the rules of a role: its entry in the policy over the
// defaults. A bound entry (see Bind) matches its role id only; an unbound
// one the id or the name, case-insensitively. Owners are the entry's owners
// only; fallback to the default owners happens in Owners.
func (p *Policy) RulesFor(role Role) Rules {
	r := p.Defaults
	r.Owners = nil
	r.Role = ""
	for _, e := range p.Roles {
		if e.RoleID != "" {
			if e.RoleID == role.ID {
				return e
			}
			continue
		}
		if e.Role == role.ID || strings.EqualFold(e.Role, role.Name) {
			return e
		}
	}
	return r
}

// PolicyError is an invalid policy file: which file, where, and why.
type PolicyError struct {
	File   string
	Line   int
	Column int
	Reason string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &PolicyError{File: path, Reason: fmt.Sprintf("cannot read policy file: %v", err)}
	}
	return ParsePolicy(path, data)
}

// RawRules is one policy entry as written in YAML (exported only so the YAML
// decoder can fill the inline embedding).
type RawRules struct {
	Owners            []string `yaml:"owners"`
	ApprovalsRequired *int     `yaml:"approvals_required"`
	PendingExpiry     *string  `yaml:"pending_expiry"`
	ReminderAfter     *string  `yaml:"reminder_after"`
	MaxDuration       *string  `yaml:"max_duration"`
	AutoApprove       *bool    `yaml:"auto_approve"`
	ExpiryWarning     []string `yaml:"expiry_warning"`
	RawReviewRules    `yaml:",inline"`
}

type rawRole struct {
	Role     string `yaml:"role"`
	RawRules `yaml:",inline"`
}

type rawPolicy struct {
	Defaults *RawRules `yaml:"defaults"`
	Roles    []rawRole `yaml:"roles"`
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// ParsePolicy parses and validates policy YAML; file names it in errors.
func ParsePolicy(file string, data []byte) (*Policy, error) {
	var raw rawPolicy
	if err := yaml.UnmarshalWithOptions(data, &raw, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(file, err)
	}
	astFile, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(file, err)
	}
	if err := wholeNumbers(file, astFile); err != nil {
		return nil, err
	}
	at := func(path, reason string) error {
		pe := &PolicyError{File: file, Reason: reason}
		if p, err := yaml.PathString(path); err == nil {
			if n, err := p.FilterFile(astFile); err == nil && n != nil {
				pos := nodePosition(n)
				pe.Line, pe.Column = pos.Line, pos.Column
			}
		}
		return pe
	}

	sum := sha256.Sum256(data)
	p := DefaultPolicy()
	p.Source = file
	p.Hash = hex.EncodeToString(sum[:])

	if raw.Defaults != nil {
		d, err := applyRules(p.Defaults, *raw.Defaults, "$.defaults", at)
		if err != nil {
			return nil, err
		}
		p.Defaults = d
	}
	seen := map[string]int{}
	for i, rr := range raw.Roles {
		path := fmt.Sprintf("$.roles[%d]", i)
		name := strings.TrimSpace(rr.Role)
		if name == "" {
			return nil, at(path, "role entry needs a `role:` (PostHog role name or id)")
		}
		if j, dup := seen[strings.ToLower(name)]; dup {
			return nil, at(path+".role", fmt.Sprintf("role %q is listed twice (also entry %d)", name, j+1))
		}
		seen[strings.ToLower(name)] = i
		base := p.Defaults
		base.Owners = nil
		r, err := applyRules(base, rr.RawRules, path, at)
		if err != nil {
			return nil, err
		}
		r.Role = name
		if e, ok := at(path+".role", "").(*PolicyError); ok {
			r.Line, r.Column = e.Line, e.Column
		}
		p.Roles = append(p.Roles, r)
	}
	return p, nil
}

func applyRules(base Rules, raw RawRules, path string, at func(path, reason string) error) (Rules, error) {
	r := base
	if raw.Owners != nil {
		r.Owners = nil
		for i, o := range raw.Owners {
			o = strings.TrimSpace(o)
			if !slackUserID.MatchString(o) {
				return r, at(fmt.Sprintf("%s.owners[%d]", path, i),
					fmt.Sprintf("owner %q is not a Slack user id (like U012AB3CD)", o))
			}
			r.Owners = append(r.Owners, o)
		}
	}
	if raw.ApprovalsRequired != nil {
		n := *raw.ApprovalsRequired
		if n < 1 || n > maxApprovalsRequired {
			return r, at(path+".approvals_required",
				fmt.Sprintf("approvals_required must be between 1 and %d, got %d", maxApprovalsRequired, n))
		}
		r.ApprovalsRequired = n
	}
	durations := []struct {
		key       string
		val       *string
		dst       *time.Duration
		permanent bool // "permanent" allowed (stored as 0)
		never     bool // "never" / "0" allowed (stored as 0)
	}{
		{"pending_expiry", raw.PendingExpiry, &r.PendingExpiry, false, false},
		{"reminder_after", raw.ReminderAfter, &r.ReminderAfter, false, true},
		{"max_duration", raw.MaxDuration, &r.MaxDuration, true, false},
	}
	for _, d := range durations {
		if d.val == nil {
			continue
		}
		v := strings.TrimSpace(*d.val)
		switch {
		case d.permanent && strings.EqualFold(v, "permanent"):
			*d.dst = 0
			continue
		case d.never && (strings.EqualFold(v, "never") || v == "0"):
			*d.dst = 0
			continue
		}
		dur, err := ParseDuration(v)
		switch {
		case err != nil:
			want := "a duration such as 30m, 8h or 7d"
			if d.permanent {
				want += ", or permanent"
			}
			if d.never {
				want += ", or never"
			}
			return r, at(path+"."+d.key, fmt.Sprintf("%s must be %s, got %q", d.key, want, v))
		case dur == 0 && d.never:
			// "0s" reads as "0": never.
		case dur <= 0:
			reason := d.key + " must be positive"
			if d.never {
				reason += " (or never)"
			} else if d.permanent {
				reason += " (or permanent)"
			}
			return r, at(path+"."+d.key, fmt.Sprintf("%s, got %q", reason, v))
		}
		*d.dst = dur
	}
	if raw.AutoApprove != nil {
		r.AutoApprove = *raw.AutoApprove
	}
	if raw.ExpiryWarning != nil {
		r.ExpiryWarnings = nil
		for i, v := range raw.ExpiryWarning {
			d, err := ParseDuration(v)
			if err != nil || d <= 0 {
				return r, at(fmt.Sprintf("%s.expiry_warning[%d]", path, i),
					fmt.Sprintf("expiry_warning: %q is not a positive duration such as 24h or 30m", strings.TrimSpace(v)))
			}
			r.ExpiryWarnings = append(r.ExpiryWarnings, d)
		}
		slices.SortFunc(r.ExpiryWarnings, func(a, b time.Duration) int { return cmp.Compare(b, a) })
		r.ExpiryWarnings = slices.Compact(r.ExpiryWarnings)
	}
	return r, applyReviewRules(&r.ReviewRules, raw.RawReviewRules, path, at)
}

// ParseDuration reads Go durations ("90m", "8h") and whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func nodePosition(n ast.Node) (pos struct{ Line, Column int }) {
	if tok := n.GetToken(); tok != nil && tok.Position != nil {
		pos.Line, pos.Column = tok.Position.Line, tok.Position.Column
	}
	return pos
}

func yamlError(file string, err error) error {
	pe := &PolicyError{File: file, Reason: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		pe.Reason = ye.GetMessage()
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			pe.Line, pe.Column = tok.Position.Line, tok.Position.Column
			pe.Reason = plainYAMLReason(pe.Reason, tok)
		}
	}
	return pe
}

// plainYAMLReason rewords the YAML decoder's type errors ("cannot unmarshal
// string into Go struct field rawPolicy.Roles of type int") as what the
// setting must be, named by the key written before the offending value.
func plainYAMLReason(msg string, tok *token.Token) string {
	key := ""
	if tok.Type == token.MappingValueType && tok.Prev != nil {
		// A mapping where a list belongs points at the inner key's colon.
		tok = tok.Prev
	}
	if p := tok.Prev; p != nil && p.Type == token.MappingValueType && p.Prev != nil {
		key = p.Prev.Value
	}
	if key == "" {
		return msg
	}
	switch {
	case strings.HasSuffix(msg, "of type int"):
		return key + " must be a whole number"
	case strings.HasSuffix(msg, "of type bool"):
		return key + " must be true or false"
	case strings.HasSuffix(msg, "of type string"):
		return key + " must be a single value, not a list or a mapping"
	case strings.HasSuffix(msg, "where sequence is expected"), strings.HasSuffix(msg, "of type []string"):
		return key + " must be a list, like [a, b] or one `- item` per line"
	case strings.Contains(msg, "where mapping is expected"):
		return key + " must be a mapping of settings (key: value lines)"
	}
	return msg
}

// wholeNumbers refuses a fraction where a count is meant: the decoder would
// silently truncate approvals_required: 1.5 to 1.
func wholeNumbers(file string, f *ast.File) error {
	var bad *token.Token
	for _, doc := range f.Docs {
		ast.Walk(visitorFunc(func(n ast.Node) bool {
			if mv, ok := n.(*ast.MappingValueNode); ok && bad == nil && mv.Key != nil && mv.Value != nil &&
				mv.Key.GetToken() != nil && mv.Key.GetToken().Value == "approvals_required" &&
				mv.Value.Type() == ast.FloatType {
				bad = mv.Value.GetToken()
			}
			return bad == nil
		}), doc)
	}
	if bad == nil {
		return nil
	}
	pe := &PolicyError{File: file, Reason: "approvals_required must be a whole number"}
	if bad.Position != nil {
		pe.Line, pe.Column = bad.Position.Line, bad.Position.Column
	}
	return pe
}

type visitorFunc func(ast.Node) bool

func (f visitorFunc) Visit(n ast.Node) ast.Visitor {
	if !f(n) {
		return nil
	}
	return f
}
