package views

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// RequestMetadata is what the request modal carries in private_metadata:
// whether it asks to add or remove, and for whom. Slack hands it back
// unchanged with the submission (people cannot edit it).
type RequestMetadata struct {
	Kind    workflow.Kind `json:"kind"`
	Subject string        `json:"subject,omitempty"` // "" = the requester
}

// DenyMetadata is what the deny modal carries in private_metadata.
type DenyMetadata struct {
	RequestID int64 `json:"request_id"`
}

func encodeMetadata(v any) string {
	b, _ := json.Marshal(v) // small structs of strings and ints: cannot fail
	return string(b)
}

// ParseRequestMetadata reads a request modal's private_metadata.
func ParseRequestMetadata(s string) (RequestMetadata, error) {
	var m RequestMetadata
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return m, fmt.Errorf("request modal metadata: %w", err)
	}
	if !m.Kind.Valid() {
		return m, fmt.Errorf("request modal metadata: unknown kind %q", m.Kind)
	}
	return m, nil
}

// ParseDenyMetadata reads a deny modal's private_metadata.
func ParseDenyMetadata(s string) (DenyMetadata, error) {
	var m DenyMetadata
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return m, fmt.Errorf("deny modal metadata: %w", err)
	}
	if m.RequestID <= 0 {
		return m, errors.New("deny modal metadata: no request id")
	}
	return m, nil
}

// RequestModalInput is what the request modal shows.
type RequestModalInput struct {
	Kind      workflow.Kind
	Requester string // Slack id of who opens it
	Subject   string // Slack id of whose access changes; "" or Requester = themselves
	// Roles to choose from. With more than MaxStaticOptions, or when
	// External is set, the picker is an external_select served by the
	// options endpoint instead.
	Roles     []workflow.Role
	External  bool
	Role      *workflow.Role  // prefilled role, if any
	Durations []time.Duration // grant lengths offered (add only)
	Notice    string          // mrkdwn shown above the form, e.g. why the role is not prefilled
	// BreakGlass, when set, is the longest break-glass grant the chosen role
	// allows: the form offers a break-glass checkbox (add only).
	BreakGlass time.Duration
}

// RequestModal is the modal that asks for a role (or, with KindRemove, to
// leave one): role, reason, and for additions the duration.
func RequestModal(in RequestModalInput) slack.ModalViewRequest {
	remove := in.Kind == workflow.KindRemove
	subject := in.Subject
	if subject == in.Requester {
		subject = ""
	}
	title, submit, intro := "Request access", "Send request", "Ask for a PostHog role. Its owners will approve or deny it, and I'll tell you what they decide."
	reasonLabel, reasonHint := "Why do you need it?", "What will you use it for? A ticket link helps the owners decide."
	if remove {
		title = "Remove access"
		intro = "Ask to leave a PostHog role. Its owners approve the change."
		if subject != "" {
			intro = fmt.Sprintf("Ask to remove %s from a PostHog role. Its owners approve the change.", Mention(subject))
		}
		reasonLabel, reasonHint = "Why should it be removed?", "The owners and the audit log see this."
	}
	var blocks []slack.Block
	blocks = append(blocks, section(intro))
	if in.Notice != "" {
		blocks = append(blocks, contextBlock(":information_source: "+in.Notice))
	}

	// Slack refuses a static select without options, with more than
	// MaxStaticOptions, or whose initial option is not among them: the
	// picker loads its options by typeahead then.
	var opts []*slack.OptionBlockObject
	for _, r := range in.Roles {
		opts = append(opts, RoleOption(r))
	}
	var chosen *slack.OptionBlockObject
	if in.Role != nil {
		chosen = RoleOption(*in.Role)
		if !slices.ContainsFunc(opts, func(o *slack.OptionBlockObject) bool {
			return o.Value == chosen.Value && o.Text.Text == chosen.Text.Text
		}) {
			opts = append(opts, chosen)
		}
	}
	var picker *slack.SelectBlockElement
	if in.External || len(opts) == 0 || len(opts) > MaxStaticOptions {
		picker = slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Type to search roles"), ActionRoleSelect)
		zero := 0
		picker.MinQueryLength = &zero
	} else {
		picker = slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a role"), ActionRoleSelect, opts...)
	}
	picker.InitialOption = chosen
	roleHint := plain("PostHog roles.")
	if picker.Type == slack.OptTypeExternal {
		roleHint = plain("PostHog roles. Type part of a name to search.")
	}
	roleBlock := slack.NewInputBlock(BlockRole, plain("Role"), roleHint, picker)
	// Choosing a role tells the bot, which offers that role's durations.
	roleBlock.DispatchAction = !remove
	blocks = append(blocks, roleBlock)

	reason := slack.NewPlainTextInputBlockElement(plain("Be specific"), ActionReasonInput).
		WithMultiline(true).WithMaxLength(workflow.MaxReasonLength)
	blocks = append(blocks, slack.NewInputBlock(BlockReason, plain(reasonLabel), plain(reasonHint), reason))

	if !remove {
		opts := make([]*slack.OptionBlockObject, 0, len(in.Durations))
		for _, d := range in.Durations {
			opts = append(opts, slack.NewOptionBlockObject(DurationValue(d), plain(DurationLabel(d)), nil))
		}
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a duration"), ActionDurationSelect, opts...)
		blocks = append(blocks, slack.NewInputBlock(BlockDuration, plain("For how long?"),
			plain("Access ends by itself after this time. Shorter requests are easier to approve."), sel))
		if in.BreakGlass > 0 {
			blocks = append(blocks, breakGlassCheckbox(in.BreakGlass))
		}
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackRequest,
		Title:           plain(title),
		Submit:          plain(submit),
		Close:           plain("Cancel"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: encodeMetadata(RequestMetadata{Kind: in.Kind, Subject: subject}),
	}
}

// RoleOption is a role as a select option: its name shown, its id as the
// value (ids are stable; names may change).
func RoleOption(r workflow.Role) *slack.OptionBlockObject {
	value := r.ID
	if value == "" || len(value) > maxOptionValue {
		value = truncate(r.Name, maxOptionValue)
	}
	return slack.NewOptionBlockObject(value, plain(truncate(r.Name, maxOptionText)), nil)
}

// RoleOptions answers a block_suggestion for the role picker: the roles
// whose name contains query (case-insensitive), those starting with it
// first, at most MaxStaticOptions.
func RoleOptions(roles []workflow.Role, query string) slack.OptionsResponse {
	q := strings.ToLower(strings.TrimSpace(query))
	type hit struct {
		r      workflow.Role
		prefix bool
	}
	var hits []hit
	for _, r := range roles {
		name := strings.ToLower(r.Name)
		if q == "" || strings.Contains(name, q) || strings.EqualFold(r.ID, q) {
			hits = append(hits, hit{r, strings.HasPrefix(name, q)})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].prefix && !hits[j].prefix })
	out := slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	size := len(`{"options":[]}`)
	for _, h := range hits {
		if len(out.Options) == MaxStaticOptions {
			break
		}
		opt := RoleOption(h.r)
		// Measured as encoding/json writes it: & < > become six-byte
		// escapes, so a name full of them costs far more than its length.
		js, err := json.Marshal(opt)
		if err != nil || size+len(js)+1 > MaxOptionsBytes {
			break
		}
		size += len(js) + 1
		out.Options = append(out.Options, opt)
	}
	return out
}

// MaxOptionsBytes bounds the JSON of a typeahead answer, leaving room for
// the Socket Mode envelope within Slack's 20,480-byte frame limit.
const MaxOptionsBytes = 19 * 1024

// DenyModal asks an owner why they deny a request.
func DenyModal(r *workflow.Request) slack.ModalViewRequest {
	blocks := []slack.Block{
		section(fmt.Sprintf("%s asks %s (%s).", Mention(r.RequesterID), what(r), r.Ref())),
		section("*Their reason*\n" + quote(r.Reason)),
		slack.NewInputBlock(BlockDenyReason, plain("Why are you denying it?"),
			plain("The requester sees this, and it goes in the audit log."),
			slack.NewPlainTextInputBlockElement(plain("For example: use the Viewer role instead"), ActionReasonInput).
				WithMultiline(true).WithMaxLength(workflow.MaxReasonLength)),
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackDeny,
		Title:           plain("Deny " + r.Ref()),
		Submit:          plain("Deny"),
		Close:           plain("Back"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: encodeMetadata(DenyMetadata{RequestID: r.ID}),
	}
}
