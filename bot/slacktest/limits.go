package slacktest

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Slack's documented limits that the fake enforces.
const (
	// MaxSocketFrameBytes is the largest Socket Mode frame Slack accepts
	// from an app (20 KiB); a bigger acknowledgement closes the connection
	// with status 1009 (message too big) and is never delivered.
	MaxSocketFrameBytes = 20480
	// MaxBlockTextChars is how much text (the sum of every text field of
	// the blocks) chat.postMessage and chat.update accept before answering
	// msg_blocks_too_long.
	MaxBlockTextChars = 12000
	// maxMessageBlocks and maxViewBlocks are how many blocks a message
	// and a modal or home tab may have.
	maxMessageBlocks = 50
	maxViewBlocks    = 100
)

// DefaultScopes are the bot scopes the fake reports for a bot token in the
// X-OAuth-Scopes header (those manifest.yaml asks for).
var DefaultScopes = []string{"commands", "chat:write", "im:write", "users:read", "users:read.email", "files:write"}

// Limit is a Web API method's rate limit: PerMinute calls a minute on
// average, with bursts of up to Burst calls. PerChannel applies the limit
// to each channel on its own (chat.postMessage's "1 per second per channel").
type Limit struct {
	PerMinute  float64
	Burst      int
	PerChannel bool
}

// SlackLimits are Slack's published tiers for the methods accessbot calls
// (each method's reference page): Tier 1 (1+/min, a small burst) for
// apps.connections.open, Tier 3 (50+/min) for users.lookupByEmail,
// conversations.open, chat.update and chat.delete, Tier 4 (100+/min) for
// auth.test, users.info, chat.postEphemeral and views.*, and
// chat.postMessage's special limit of about one message a second per
// channel. The file upload methods are held
// to Tier 2 (20+/min): stricter than Slack, whose files.getUploadURLExternal
// is Tier 4.
var SlackLimits = map[string]Limit{
	"auth.test":                    {PerMinute: 100, Burst: 10},
	"apps.connections.open":        {PerMinute: 1, Burst: 2},
	"users.info":                   {PerMinute: 100, Burst: 10},
	"users.lookupByEmail":          {PerMinute: 50, Burst: 5},
	"conversations.open":           {PerMinute: 50, Burst: 5},
	"chat.postMessage":             {PerMinute: 60, Burst: 3, PerChannel: true},
	"chat.postEphemeral":           {PerMinute: 100, Burst: 10},
	"chat.update":                  {PerMinute: 50, Burst: 5},
	"chat.delete":                  {PerMinute: 50, Burst: 5},
	"views.open":                   {PerMinute: 100, Burst: 10},
	"views.update":                 {PerMinute: 100, Burst: 10},
	"views.publish":                {PerMinute: 100, Burst: 10},
	"files.getUploadURLExternal":   {PerMinute: 20, Burst: 3},
	"files.completeUploadExternal": {PerMinute: 20, Burst: 3},
}

// bucket is a token bucket: tokens refill at rate a second up to burst.
type bucket struct {
	tokens float64
	at     time.Time
}

// LimitLikeSlack makes every method in SlackLimits answer HTTP 429 with a
// Retry-After header once an app goes over its limit, as Slack does.
func (s *Server) LimitLikeSlack() {
	for m, l := range SlackLimits {
		s.SetRateLimit(m, l)
	}
}

// SetRateLimit sets (or, with a zero PerMinute, removes) one method's limit.
func (s *Server) SetRateLimit(method string, l Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		s.limits = map[string]Limit{}
		s.buckets = map[string]*bucket{}
	}
	if l.PerMinute <= 0 {
		delete(s.limits, method)
		return
	}
	if l.Burst < 1 {
		l.Burst = 1
	}
	s.limits[method] = l
}

// RateLimited reports how many calls of method were answered 429 because of
// its limit (not counting RateLimitNext's).
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited[method]
}

// overLimit takes a token for the call, or says how long until one is free.
func (s *Server) overLimit(method string, p map[string]string, now time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, limited := s.limits[method]
	if !limited {
		return 0, false
	}
	key := method
	if l.PerChannel {
		key += "/" + DMChannel(p["channel"])
	}
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(l.Burst), at: now}
		s.buckets[key] = b
	}
	rate := l.PerMinute / 60
	b.tokens = math.Min(float64(l.Burst), b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, false
	}
	if s.limited == nil {
		s.limited = map[string]int{}
	}
	s.limited[method]++
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return wait, true
}

func rateLimited(wait time.Duration) apiResult {
	// Slack's Retry-After is whole seconds, at least one.
	return apiResult{status: http.StatusTooManyRequests, retryAfter: max(wait, time.Second),
		body: map[string]any{"ok": false, "error": "ratelimited"}}
}

// RefuseToken makes every call made with token answer code
// ("invalid_auth", "account_inactive", "token_revoked"); an empty code
// accepts it again. Tokens that do not start with "xox" or "xapp-" are
// always refused with invalid_auth, as Slack refuses them.
func (s *Server) RefuseToken(token, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]string{}
	}
	if code == "" {
		delete(s.refused, token)
		return
	}
	s.refused[token] = code
}

// SetScopes sets the bot token's scopes: auth.test reports them in
// X-OAuth-Scopes, a method needing another answers missing_scope, and
// users.info leaves out emails without users:read.email.
func (s *Server) SetScopes(scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append([]string{}, scopes...)
}

func (s *Server) scopeHeader() string {
	return strings.Join(s.grantedScopes(), ",")
}

func (s *Server) grantedScopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scopes == nil {
		return DefaultScopes
	}
	return s.scopes
}

// methodScopes are the bot scopes a method needs (any one of them will
// do); Slack answers a bot token granted none of them missing_scope.
var methodScopes = map[string][]string{
	"users.info":                   {"users:read"},
	"users.lookupByEmail":          {"users:read.email"},
	"conversations.open":           {"im:write"}, // the fake opens 1:1 DMs only, which need im:write
	"chat.postMessage":             {"chat:write"},
	"chat.postEphemeral":           {"chat:write"},
	"chat.update":                  {"chat:write"},
	"chat.delete":                  {"chat:write"},
	"files.getUploadURLExternal":   {"files:write"},
	"files.completeUploadExternal": {"files:write"},
}

// missingScope is Slack's missing_scope answer when a bot token (see
// SetScopes) lacks every scope method needs.
func (s *Server) missingScope(method, token string) (apiResult, bool) {
	needed := methodScopes[method]
	if len(needed) == 0 || strings.HasPrefix(token, "xapp-") {
		return apiResult{}, false
	}
	granted := s.grantedScopes()
	for _, n := range needed {
		if slices.Contains(granted, n) {
			return apiResult{}, false
		}
	}
	res := fail("missing_scope")
	res.body["needed"] = strings.Join(needed, ",")
	res.body["provided"] = strings.Join(granted, ",")
	return res, true
}

// hasScope reports whether the bot token is granted scope.
func (s *Server) hasScope(scope string) bool {
	return slices.Contains(s.grantedScopes(), scope)
}

// tokenError is the error Slack answers a call made with token, or "".
func (s *Server) tokenError(method, token string) string {
	s.mu.Lock()
	code := s.refused[token]
	s.mu.Unlock()
	switch {
	case code != "":
		return code
	case !strings.HasPrefix(token, "xox") && !strings.HasPrefix(token, "xapp-"):
		return "invalid_auth"
	case method == "apps.connections.open" && !strings.HasPrefix(token, "xapp-"):
		return "not_allowed_token_type"
	case method != "apps.connections.open" && strings.HasPrefix(token, "xapp-"):
		return "not_allowed_token_type"
	}
	return ""
}

// Block Kit's limits on one block; Slack refuses a block over one with
// invalid_blocks.
const (
	maxBlockID         = 255 // a block's block_id, an element's action_id
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxContextElements = 10
	maxActionsElements = 25
	maxButtonText      = 75
	maxOptionText      = 75 // an option's text, and its description
	maxOptionValue     = 150
	maxConfirmTitle    = 100 // a confirmation dialog's title
	maxConfirmText     = 300
	maxConfirmButton   = 30 // its confirm and deny buttons
	maxButtonValue     = 2000
	maxInputLabel      = 2000 // an input block's label, and its hint
	maxPlaceholder     = 150
	maxTextInputLength = 3000 // a plain_text_input's max_length
	maxSelectOptions   = 100  // a static select's options (at least 1)
	maxChoiceOptions   = 10   // checkboxes' and radio buttons' options (at least 1)
	maxOverflowOptions = 5    // an overflow menu's options (at least 1)
)

// The limits of a view object (views.open, views.update, views.publish and
// a view_submission's update or push); Slack refuses a view over one with
// invalid_arguments.
const (
	maxViewTitle    = 24 // a modal's title, and its submit and close buttons
	maxViewMetadata = 3000
	maxCallbackID   = 255
)

// viewOverLimit reports whether view v (its blocks checked apart) breaks a
// view object's rules: a modal needs a plain_text title, plain_text submit
// and close buttons if any, and a submit button when it has an input
// block.
func viewOverLimit(v viewHead) bool {
	if utf8.RuneCountInString(v.PrivateMetadata) > maxViewMetadata || utf8.RuneCountInString(v.CallbackID) > maxCallbackID {
		return true
	}
	if v.Type != "modal" {
		return false
	}
	for _, t := range []map[string]any{v.Title, v.Submit, v.Close} {
		if t != nil && (t["type"] != "plain_text" || textLen(t) == 0 || textLen(t) > maxViewTitle) {
			return true
		}
	}
	hasInput := slices.ContainsFunc(v.Blocks, func(b map[string]any) bool { return b["type"] == "input" })
	return v.Title == nil || (hasInput && v.Submit == nil)
}

// blockOverLimit reports whether block b breaks one of Block Kit's limits
// on text length and element count.
func blockOverLimit(b map[string]any) bool {
	switch b["type"] {
	case "section":
		// A section needs text or fields; a text object present must not
		// be empty.
		fields, _ := b["fields"].([]any)
		_, hasText := b["text"]
		if (!hasText && len(fields) == 0) || (hasText && textLen(b["text"]) == 0) ||
			textLen(b["text"]) > maxSectionText || len(fields) > maxSectionFields {
			return true
		}
		for _, f := range fields {
			if textLen(f) == 0 || textLen(f) > maxFieldText {
				return true
			}
		}
		return elementOverLimit(b["accessory"])
	case "header":
		return textLen(b["text"]) == 0 || textLen(b["text"]) > maxHeaderText
	case "input":
		return textLen(b["label"]) == 0 || textLen(b["label"]) > maxInputLabel || textLen(b["hint"]) > maxInputLabel ||
			elementOverLimit(b["element"])
	case "context":
		els, _ := b["elements"].([]any)
		return len(els) == 0 || len(els) > maxContextElements
	case "actions":
		els, _ := b["elements"].([]any)
		return len(els) == 0 || len(els) > maxActionsElements || slices.ContainsFunc(els, elementOverLimit)
	}
	return false
}

func elementOverLimit(e any) bool {
	el, _ := e.(map[string]any)
	if el == nil {
		return false
	}
	actionID, _ := el["action_id"].(string)
	value, _ := el["value"].(string)
	if utf8.RuneCountInString(actionID) > maxBlockID || textLen(el["placeholder"]) > maxPlaceholder {
		return true
	}
	if el["type"] == "button" && (textLen(el["text"]) == 0 || textLen(el["text"]) > maxButtonText || utf8.RuneCountInString(value) > maxButtonValue) {
		return true
	}
	if el["type"] == "plain_text_input" {
		if n, ok := el["max_length"].(float64); ok && (n < 1 || n > maxTextInputLength) {
			return true
		}
	}
	if c, ok := el["confirm"].(map[string]any); ok && (textLen(c["title"]) > maxConfirmTitle || textLen(c["text"]) > maxConfirmText ||
		textLen(c["confirm"]) > maxConfirmButton || textLen(c["deny"]) > maxConfirmButton) {
		return true
	}
	opts, _ := el["options"].([]any)
	groups, grouped := el["option_groups"].([]any)
	if grouped {
		// A grouped select offers its groups' options: 1 to 100 groups.
		if len(groups) < 1 || len(groups) > maxSelectOptions {
			return true
		}
		opts = nil
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			inGroup, _ := gm["options"].([]any)
			opts = append(opts, inGroup...)
		}
	}
	if slices.ContainsFunc(opts, optionOverLimit) {
		return true
	}
	// How many options an element takes, and that its initial options are
	// among them (Slack refuses an initial_option it was not offered).
	most := 0
	switch el["type"] {
	case "static_select", "multi_static_select":
		most = maxSelectOptions
		if grouped {
			most = maxSelectOptions * maxSelectOptions // 100 groups of 100
		}
	case "checkboxes", "radio_buttons":
		most = maxChoiceOptions
	case "overflow":
		most = maxOverflowOptions
	default:
		return false
	}
	if len(opts) < 1 || len(opts) > most {
		return true
	}
	initial, _ := el["initial_options"].([]any)
	if o, ok := el["initial_option"]; ok {
		initial = append(initial, o)
	}
	for _, in := range initial {
		if !slices.ContainsFunc(opts, func(o any) bool { return sameOption(o, in) }) {
			return true
		}
	}
	return false
}

// sameOption reports whether options a and b have the same value and text.
func sameOption(a, b any) bool {
	x, _ := a.(map[string]any)
	y, _ := b.(map[string]any)
	xt, _ := x["text"].(map[string]any)
	yt, _ := y["text"].(map[string]any)
	return x["value"] == y["value"] && xt["text"] == yt["text"]
}

// optionOverLimit reports whether a select, checkbox or radio option is
// over its text, value or description limit.
func optionOverLimit(o any) bool {
	opt, _ := o.(map[string]any)
	value, _ := opt["value"].(string)
	return textLen(opt["text"]) == 0 || textLen(opt["text"]) > maxOptionText || textLen(opt["description"]) > maxOptionText ||
		utf8.RuneCountInString(value) > maxOptionValue
}

// textLen is the length of a text object's text.
func textLen(obj any) int {
	o, _ := obj.(map[string]any)
	s, _ := o["text"].(string)
	return utf8.RuneCountInString(s)
}

// blockTextChars counts the characters of every text in blocks, the way
// Slack measures a message against MaxBlockTextChars.
func blockTextChars(raw json.RawMessage) int {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	n := 0
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "text" {
				n += utf8.RuneCountInString(x)
			}
		}
	}
	walk(v, "")
	return n
}

// OversizedFrames reports how many Socket Mode frames from the app were
// over MaxSocketFrameBytes (each one closed the connection).
func (s *Server) OversizedFrames() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.oversized
}
