package slacktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ---- signing ----

// Sign returns Slack's X-Slack-Signature for body sent at ts: "v0=" and
// the hex HMAC-SHA256 of "v0:<unix ts>:<body>" keyed with the signing secret.
func Sign(secret string, ts time.Time, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts.Unix(), body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignedRequest builds the POST Slack would send to path (a path, or a
// full URL to send it with an http.Client) with body, signed with secret
// at ts. Bodies starting with "{" are sent as JSON (Events API), others as
// a form.
func SignedRequest(secret, path, body string, ts time.Time) *http.Request {
	req, err := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if err != nil {
		panic(fmt.Sprintf("slacktest: bad path %q: %v", path, err))
	}
	if strings.HasPrefix(strings.TrimSpace(body), "{") {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
	return req
}

// ---- what Slack sends ----

// SlashCommand is a slash command invocation.
type SlashCommand struct {
	Command     string // "/access"
	Text        string
	UserID      string
	UserName    string
	ChannelID   string
	ChannelName string
	TriggerID   string
	ResponseURL string
}

// SlashCommand returns user's invocation of `/access text` in their DM
// with the app, with a fresh trigger_id (valid for the trigger TTL) and a
// response_url on this server.
func (s *Server) SlashCommand(userID, text string) SlashCommand {
	ch := DMChannel(userID)
	return SlashCommand{
		Command: "/access", Text: text, UserID: userID, UserName: s.userName(userID),
		ChannelID: ch, ChannelName: "directmessage",
		TriggerID: s.newTrigger(userID), ResponseURL: s.newResponseURL(ch, userID),
	}
}

func (c SlashCommand) fields() map[string]string {
	return map[string]string{
		"token": "verification-token-unused", "team_id": TeamID, "team_domain": TeamDomain,
		"channel_id": c.ChannelID, "channel_name": c.ChannelName, "user_id": c.UserID, "user_name": c.UserName,
		"command": c.Command, "text": c.Text, "api_app_id": AppID, "is_enterprise_install": "false",
		"response_url": c.ResponseURL, "trigger_id": c.TriggerID,
	}
}

// Form is the body Slack posts for the command (form-encoded).
func (c SlashCommand) Form() string {
	v := url.Values{}
	for k, f := range c.fields() {
		v.Set(k, f)
	}
	return v.Encode()
}

// JSON is the command as Socket Mode carries it.
func (c SlashCommand) JSON() []byte {
	b, _ := json.Marshal(c.fields())
	return b
}

// InteractionForm is the body Slack posts for an interaction payload.
func InteractionForm(payload []byte) string {
	return url.Values{"payload": {string(payload)}}.Encode()
}

func (s *Server) userName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[id]; ok && u.Name != "" {
		return u.Name
	}
	return strings.ToLower(id)
}

// newTrigger issues a trigger_id for user, valid for the trigger TTL.
func (s *Server) newTrigger(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("%d.%d.%x", s.clock.Unix(), s.seq, sha256.Sum256([]byte(strconv.FormatInt(s.seq, 10))))[:48]
	s.triggers[id] = trigger{user: user, issued: time.Now()}
	return id
}

// NewTrigger issues a trigger_id for user, as Slack does with each
// command or click.
func (s *Server) NewTrigger(user string) string { return s.newTrigger(user) }

func (s *Server) newResponseURL(channel, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextIDLocked("")
	sum := sha256.Sum256([]byte(user + "/" + channel + "/" + id))
	u := fmt.Sprintf("%s/response/%s/%s/%s", s.ts.URL, TeamID, id, hex.EncodeToString(sum[:12]))
	s.responses[u] = &responseURL{channel: channel, user: user, issued: time.Now()}
	return u
}

func (s *Server) userJSON(id string) map[string]any {
	name := s.userName(id)
	return map[string]any{"id": id, "username": name, "name": name, "team_id": TeamID}
}

func team() map[string]any { return map[string]any{"id": TeamID, "domain": TeamDomain} }

// element is an interactive element found in blocks.
type element struct {
	blockID string
	raw     map[string]any
}

// findElement finds the element with actionID in blocks (and, when value
// is set, the button with that value), in actions blocks, section
// accessories and input blocks.
func findElement(blocks json.RawMessage, actionID, value string) (element, error) {
	var bs []map[string]any
	if err := json.Unmarshal(blocks, &bs); err != nil {
		return element{}, fmt.Errorf("slacktest: blocks: %w", err)
	}
	for _, b := range bs {
		blockID, _ := b["block_id"].(string)
		var candidates []any
		if els, ok := b["elements"].([]any); ok && b["type"] == "actions" {
			candidates = append(candidates, els...)
		}
		if acc, ok := b["accessory"]; ok {
			candidates = append(candidates, acc)
		}
		if el, ok := b["element"]; ok {
			candidates = append(candidates, el)
		}
		for _, c := range candidates {
			m, ok := c.(map[string]any)
			if !ok || m["action_id"] != actionID {
				continue
			}
			if value != "" && m["type"] == "button" && m["value"] != value {
				continue
			}
			return element{blockID: blockID, raw: m}, nil
		}
	}
	if value != "" {
		return element{}, fmt.Errorf("slacktest: no element %q with value %q", actionID, value)
	}
	return element{}, fmt.Errorf("slacktest: no element %q", actionID)
}

// option finds the option with value among a select's options.
func option(el map[string]any, value string) map[string]any {
	var opts []any
	if o, ok := el["options"].([]any); ok {
		opts = o
	}
	if groups, ok := el["option_groups"].([]any); ok {
		for _, g := range groups {
			if gm, ok := g.(map[string]any); ok {
				if o, ok := gm["options"].([]any); ok {
					opts = append(opts, o...)
				}
			}
		}
	}
	for _, o := range opts {
		if om, ok := o.(map[string]any); ok && om["value"] == value {
			return om
		}
	}
	// An external select's options come from the app; anything goes.
	return map[string]any{"text": map[string]any{"type": "plain_text", "text": value, "emoji": true}, "value": value}
}

func (s *Server) actionJSON(el element, value string) map[string]any {
	typ, _ := el.raw["type"].(string)
	a := map[string]any{"type": typ, "action_id": el.raw["action_id"], "block_id": el.blockID,
		"action_ts": s.actionTS()}
	switch typ {
	case "button":
		a["text"], a["value"] = el.raw["text"], el.raw["value"]
		if st, ok := el.raw["style"]; ok {
			a["style"] = st
		}
	case "static_select", "external_select":
		a["selected_option"] = option(el.raw, value)
		if ph, ok := el.raw["placeholder"]; ok {
			a["placeholder"] = ph
		}
	default:
		a["value"] = value
	}
	return a
}

func (s *Server) actionTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextTSLocked()
}

// ClickMessage is user clicking the element with actionID (the one with
// value, when several buttons share the action id) in a message the app
// posted: a block_actions payload.
func (s *Server) ClickMessage(user string, m Message, actionID, value string) ([]byte, error) {
	el, err := findElement(m.Blocks, actionID, value)
	if err != nil {
		return nil, err
	}
	chName := "directmessage"
	if !strings.HasPrefix(m.Channel, "D") {
		chName = "approvals"
	}
	msg := messageJSON(&m)
	p := map[string]any{
		"type": "block_actions", "user": s.userJSON(user), "api_app_id": AppID, "token": "verification-token-unused",
		"container":  map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"trigger_id": s.newTrigger(user), "team": team(), "enterprise": nil, "is_enterprise_install": false,
		"channel": map[string]any{"id": m.Channel, "name": chName}, "message": msg,
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": s.newResponseURL(m.Channel, user),
		"actions":      []any{s.actionJSON(el, value)},
	}
	return json.Marshal(p)
}

// ClickEphemeral is user clicking an element of an ephemeral message they
// were shown (a reply to a command, for instance).
func (s *Server) ClickEphemeral(user string, e Ephemeral, actionID, value string) ([]byte, error) {
	el, err := findElement(e.Blocks, actionID, value)
	if err != nil {
		return nil, err
	}
	p := map[string]any{
		"type": "block_actions", "user": s.userJSON(user), "api_app_id": AppID, "token": "verification-token-unused",
		"container":  map[string]any{"type": "message", "message_ts": e.TS, "channel_id": e.Channel, "is_ephemeral": true},
		"trigger_id": s.newTrigger(user), "team": team(), "enterprise": nil, "is_enterprise_install": false,
		"channel":      map[string]any{"id": e.Channel, "name": "directmessage"},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": s.newResponseURL(e.Channel, user),
		"actions":      []any{s.actionJSON(el, value)},
	}
	return json.Marshal(p)
}

// viewJSON is a view as Slack describes it in payloads and Web API answers,
// with state.
func viewJSON(v View, state map[string]any) map[string]any {
	var full map[string]any
	_ = json.Unmarshal(v.JSON, &full)
	if full == nil {
		full = map[string]any{}
	}
	full["id"], full["team_id"], full["hash"], full["app_id"], full["bot_id"] = v.ID, TeamID, v.Hash, AppID, BotID
	full["app_installed_team_id"], full["root_view_id"], full["previous_view_id"], full["external_id"] = TeamID, v.ID, nil, ""
	if _, has := full["private_metadata"]; !has {
		full["private_metadata"] = ""
	}
	if _, has := full["callback_id"]; !has {
		full["callback_id"] = ""
	}
	full["state"] = map[string]any{"values": state}
	return full
}

// ClickView is user acting on an element of a view — a button on the App
// Home tab, or choosing value in a select of a modal (with dispatch_action).
func (s *Server) ClickView(user string, v View, actionID, value string) ([]byte, error) {
	blocks, err := viewBlocks(v)
	if err != nil {
		return nil, err
	}
	el, err := findElement(blocks, actionID, value)
	if err != nil {
		return nil, err
	}
	state := map[string]any{}
	if v.Type == "modal" {
		state = inputState(blocks, nil)
		if _, isInput := state[el.blockID]; isInput {
			state[el.blockID] = map[string]any{actionID: stateValue(el.raw, value)}
		}
	}
	p := map[string]any{
		"type": "block_actions", "user": s.userJSON(user), "api_app_id": AppID, "token": "verification-token-unused",
		"container":  map[string]any{"type": "view", "view_id": v.ID},
		"trigger_id": s.newTrigger(user), "team": team(), "enterprise": nil, "is_enterprise_install": false,
		"view":    viewJSON(v, state),
		"actions": []any{s.actionJSON(el, value)},
	}
	return json.Marshal(p)
}

func viewBlocks(v View) (json.RawMessage, error) {
	var head struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(v.JSON, &head); err != nil {
		return nil, fmt.Errorf("slacktest: view %s: %w", v.ID, err)
	}
	return head.Blocks, nil
}

// stateValue is one input's entry in view.state.values.
func stateValue(el map[string]any, value string) map[string]any {
	typ, _ := el["type"].(string)
	out := map[string]any{"type": typ}
	switch typ {
	case "static_select", "external_select":
		if value == "" {
			out["selected_option"] = nil
		} else {
			out["selected_option"] = option(el, value)
		}
	case "checkboxes":
		// value ticks the option with that value; "" ticks none.
		out["selected_options"] = []any{}
		if value != "" {
			out["selected_options"] = []any{option(el, value)}
		}
	default:
		if value == "" {
			out["value"] = nil
		} else {
			out["value"] = value
		}
	}
	return out
}

// inputState is view.state.values for the input blocks of blocks, filled
// from values (by block id); inputs without a value are null, as Slack
// sends them.
func inputState(blocks json.RawMessage, values map[string]string) map[string]any {
	var bs []map[string]any
	_ = json.Unmarshal(blocks, &bs)
	state := map[string]any{}
	for _, b := range bs {
		if b["type"] != "input" {
			continue
		}
		el, _ := b["element"].(map[string]any)
		blockID, _ := b["block_id"].(string)
		actionID, _ := el["action_id"].(string)
		value := values[blockID]
		if value == "" {
			if init, ok := el["initial_option"].(map[string]any); ok {
				value, _ = init["value"].(string)
			} else if init, ok := el["initial_value"].(string); ok {
				value = init
			}
		}
		state[blockID] = map[string]any{actionID: stateValue(el, value)}
	}
	return state
}

// ViewSubmission is user submitting a modal with values for its input
// blocks, keyed by block id: the text typed, or the chosen option's value.
// Inputs left out keep their initial value, or are sent empty.
func (s *Server) ViewSubmission(user string, v View, values map[string]string) ([]byte, error) {
	blocks, err := viewBlocks(v)
	if err != nil {
		return nil, err
	}
	p := map[string]any{
		"type": "view_submission", "team": team(), "user": s.userJSON(user), "api_app_id": AppID,
		"token": "verification-token-unused", "trigger_id": s.newTrigger(user),
		"view":          viewJSON(v, inputState(blocks, values)),
		"response_urls": []any{}, "is_enterprise_install": false, "enterprise": nil,
	}
	return json.Marshal(p)
}

// ViewClosed is user closing a modal (sent when it has notify_on_close).
func (s *Server) ViewClosed(user string, v View) ([]byte, error) {
	p := map[string]any{"type": "view_closed", "team": team(), "user": s.userJSON(user), "api_app_id": AppID,
		"token": "verification-token-unused", "view": viewJSON(v, map[string]any{}), "is_cleared": false}
	return json.Marshal(p)
}

// BlockSuggestion is Slack asking for the options of an external select
// while user types query into it.
func (s *Server) BlockSuggestion(user string, v View, actionID, query string) ([]byte, error) {
	blocks, err := viewBlocks(v)
	if err != nil {
		return nil, err
	}
	el, err := findElement(blocks, actionID, "")
	if err != nil {
		return nil, err
	}
	p := map[string]any{
		"type": "block_suggestion", "user": s.userJSON(user), "container": map[string]any{"type": "view", "view_id": v.ID},
		"api_app_id": AppID, "token": "verification-token-unused", "action_id": actionID, "block_id": el.blockID,
		"value": query, "team": team(), "enterprise": nil, "is_enterprise_install": false,
		"view": viewJSON(v, inputState(blocks, nil)),
	}
	return json.Marshal(p)
}

// ---- Events API ----

// URLVerification is the challenge Slack sends when the events URL is set.
func URLVerification(challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"})
	return b
}

// EventCallback wraps an inner event as Slack delivers it.
func (s *Server) EventCallback(event map[string]any) []byte {
	id := s.nextID("Ev")
	b, _ := json.Marshal(map[string]any{
		"token": "verification-token-unused", "team_id": TeamID, "api_app_id": AppID, "event": event,
		"type": "event_callback", "event_id": id, "event_time": time.Now().Unix(),
		"authorizations":        []any{map[string]any{"team_id": TeamID, "user_id": BotUserID, "is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false, "event_context": "4-" + id,
	})
	return b
}

// AppHomeOpened is user opening the app's Home tab.
func (s *Server) AppHomeOpened(user string) []byte {
	return s.EventCallback(map[string]any{"type": "app_home_opened", "user": user, "channel": DMChannel(user),
		"tab": "home", "event_ts": s.actionTS()})
}
