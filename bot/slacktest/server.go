// Package slacktest is a fake Slack: a real HTTP server answering the Web
// API methods accessbot uses with Slack's response shapes, recording every
// call, keeping the messages, views and files it was sent, and serving
// Socket Mode over a websocket. It also builds what Slack sends to an app —
// signed requests, slash command forms and interaction payloads — so tests
// (and the demo binary) can drive a bot exactly as Slack would.
//
// Point a slack-go client at it with
//
//	slack.New("xoxb-test", slack.OptionAPIURL(srv.URL()+"/api/"))
//
// It is safe for concurrent use and needs no *testing.T.
package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Identifiers of the fake workspace and app.
const (
	TeamID     = "T0TEST"
	TeamDomain = "accessbot-test"
	AppID      = "A0ACCESS"
	BotUserID  = "U0BOT"
	BotID      = "B0BOT"
)

// DefaultTriggerTTL is how long a trigger_id stays valid, as in Slack.
const DefaultTriggerTTL = 3 * time.Second

// A response_url takes at most ResponseURLUses posts within
// DefaultResponseURLTTL of being issued, as in Slack; past either it
// answers 404 with used_url or expired_url.
const (
	ResponseURLUses       = 5
	DefaultResponseURLTTL = 30 * time.Minute
)

// Call is one request the server received.
type Call struct {
	// Method is the Web API method ("chat.postMessage"), "response_url" for
	// a post to a response URL, or "upload" for file bytes sent to an
	// upload URL.
	Method string
	// Params are the decoded parameters: form values, or the top-level
	// fields of a JSON body (strings as they are, anything else as compact
	// JSON). The token is not kept.
	Params map[string]string
	// Body is the raw request body.
	Body []byte
	// At is when the call arrived.
	At time.Time
}

// Param returns one parameter ("" when absent).
func (c Call) Param(name string) string { return c.Params[name] }

// Decode JSON-decodes parameter name (such as "blocks" or "view") into v.
func (c Call) Decode(name string, v any) error {
	p, ok := c.Params[name]
	if !ok {
		return fmt.Errorf("slacktest: %s has no parameter %q", c.Method, name)
	}
	return json.Unmarshal([]byte(p), v)
}

// User is a seeded Slack user.
type User struct {
	ID    string
	Name  string
	Email string
}

// Message is a message the app posted.
type Message struct {
	Channel string
	TS      string
	Text    string
	Blocks  json.RawMessage // "[]" or null when none
	Updates int             // how many times chat.update changed it
	Deleted bool
	Posted  time.Time // when it was posted
	Edited  time.Time // when chat.update last changed it (zero if never)
}

// Ephemeral is a message only one person saw: from chat.postEphemeral or a
// post to a response URL.
type Ephemeral struct {
	Channel         string
	User            string
	Text            string
	Blocks          json.RawMessage
	ResponseURL     string // set when it came through a response URL
	ReplaceOriginal bool
	TS              string
	Posted          time.Time // when it was shown
}

// View is a modal or home tab the app opened, updated or published.
type View struct {
	ID              string
	Type            string // "modal" or "home"
	Hash            string
	CallbackID      string
	PrivateMetadata string
	User            string          // who sees it
	JSON            json.RawMessage // the view as the app sent it
	Updates         int
	// Closed is set when the person closed the modal or the app's answer
	// to its submission cleared it (see AnswerSubmission, CloseView).
	Closed bool
	// Errors are the field errors the app answered a submission with,
	// by block id, shown until the view changes.
	Errors map[string]string
	// RootID is the first view of a modal stack: a pushed view's is the
	// view it was pushed on's; "" for the first itself.
	RootID string
}

// File is an uploaded file.
type File struct {
	ID             string
	Name           string
	Title          string
	Length         int
	Content        []byte
	Channels       []string
	InitialComment string
	Completed      bool
	Posted         time.Time // when the upload was completed
}

type fault struct {
	n          int
	errCode    string
	retryAfter time.Duration
	rateLimit  bool
}

type trigger struct {
	user   string
	issued time.Time
}

type responseURL struct {
	channel, user string
	issued        time.Time
	uses          int
}

// Server is the fake Slack.
type Server struct {
	ts *httptest.Server

	mu          sync.Mutex
	calls       []Call
	users       map[string]User
	messages    []*Message
	ephemerals  []Ephemeral
	views       map[string]*View
	viewOrder   []string
	homes       map[string]string // user → view id
	files       map[string]*File
	fileOrder   []string
	faults      map[string]*fault
	latency     map[string]time.Duration
	triggers    map[string]trigger
	triggerTTL  time.Duration
	responseTTL time.Duration
	responses   map[string]*responseURL
	seq         int64
	clock       time.Time // base for message timestamps
	callWaiters []chan struct{}
	limits      map[string]Limit
	buckets     map[string]*bucket
	limited     map[string]int
	refused     map[string]string // token → error code
	scopes      []string

	sock socketState
}

// NewServer starts a fake Slack on a local port. Close it when done.
func NewServer() *Server {
	s := &Server{
		users:       map[string]User{},
		views:       map[string]*View{},
		homes:       map[string]string{},
		files:       map[string]*File{},
		faults:      map[string]*fault{},
		latency:     map[string]time.Duration{},
		triggers:    map[string]trigger{},
		triggerTTL:  DefaultTriggerTTL,
		responseTTL: DefaultResponseURLTTL,
		responses:   map[string]*responseURL{},
		clock:       time.Now(),
	}
	s.sock.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/upload/", s.serveUpload)
	mux.HandleFunc("/response/", s.serveResponseURL)
	mux.HandleFunc("/socket-mode", s.serveSocket)
	s.ts = httptest.NewServer(mux)
	return s
}

// URL is the server's base URL; the Web API is under URL()+"/api/".
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down.
func (s *Server) Close() {
	s.sock.close()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// AddUser seeds a user that users.info knows.
func (s *Server) AddUser(id, name, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = User{ID: id, Name: name, Email: email}
}

// DMChannel is the id of the DM channel between the app and a user, as
// conversations.open answers it: D… for U… and W… ids.
func DMChannel(userID string) string {
	if len(userID) > 1 && (userID[0] == 'U' || userID[0] == 'W') {
		return "D" + userID[1:]
	}
	return userID
}

// SetTriggerTTL changes how long trigger_ids stay valid (0: forever).
func (s *Server) SetTriggerTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggerTTL = d
}

// SetResponseURLTTL changes how long response URLs stay valid (0: forever).
func (s *Server) SetResponseURLTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responseTTL = d
}

// FailNext makes the next n calls of method answer {"ok":false,"error":errCode}
// (for "response_url", an HTTP 500).
func (s *Server) FailNext(method string, n int, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: n, errCode: errCode}
}

// RateLimitNext makes the next n calls of method answer HTTP 429 with
// Retry-After (whole seconds, one at least, as Slack sends it), as Slack
// does when an app goes over a method's limit.
func (s *Server) RateLimitNext(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: n, rateLimit: true, retryAfter: retryAfter}
}

// SetLatency delays every answer to method ("" for every method) by d.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency[method] = d
}

// Calls returns every call received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls of one method, oldest first.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded calls (not the messages, views or files).
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// WaitForCalls blocks until method has been called at least n times in
// all, or timeout passes; it reports whether that happened.
func (s *Server) WaitForCalls(method string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(s.CallsTo(method)) >= n {
			return true
		}
		s.mu.Lock()
		ch := make(chan struct{})
		s.callWaiters = append(s.callWaiters, ch)
		s.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-ch:
		case <-time.After(min(left, 50*time.Millisecond)):
		}
	}
}

// Messages returns the messages posted to channel ("" for all), oldest
// first, deleted ones included.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

// Message returns one message, deleted or not.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return *m, true
		}
	}
	return Message{}, false
}

// Ephemerals returns the ephemeral messages shown to user ("" for all).
func (s *Server) Ephemerals(user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if user == "" || e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// Views returns the views opened or published, oldest first, as they are now.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.viewOrder))
	for _, id := range s.viewOrder {
		out = append(out, *s.views[id])
	}
	return out
}

// LastModal returns the modal most recently opened for user.
func (s *Server) LastModal(user string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.viewOrder) - 1; i >= 0; i-- {
		v := s.views[s.viewOrder[i]]
		if v.Type == "modal" && (user == "" || v.User == user) {
			return *v, true
		}
	}
	return View{}, false
}

// HomeView returns the App Home tab published for user.
func (s *Server) HomeView(user string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.homes[user]
	if !ok {
		return View{}, false
	}
	return *s.views[id], true
}

// Files returns the uploaded files, oldest first.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, 0, len(s.fileOrder))
	for _, id := range s.fileOrder {
		f := *s.files[id]
		f.Content = slices.Clone(f.Content)
		out = append(out, f)
	}
	return out
}

// ---- Web API ----

type apiResult struct {
	status     int
	body       map[string]any
	retryAfter time.Duration
}

func ok(fields map[string]any) apiResult {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ok"] = true
	return apiResult{status: http.StatusOK, body: fields}
}

func fail(code string) apiResult {
	return apiResult{status: http.StatusOK, body: map[string]any{"ok": false, "error": code}}
}

// decodeParams reads a Web API call's parameters from a form or JSON body.
func decodeParams(r *http.Request, body []byte) (map[string]string, string, error) {
	params := map[string]string{}
	token := ""
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		token = strings.TrimPrefix(auth, "Bearer ")
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/json":
		if len(bytes.TrimSpace(body)) == 0 {
			break
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, "", err
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				params[k] = s
				continue
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, "", err
			}
			params[k] = buf.String()
		}
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "", err
		}
		for k, v := range r.URL.Query() {
			form[k] = append(form[k], v...)
		}
		for k, v := range form {
			if len(v) > 0 {
				params[k] = v[0]
			}
		}
	}
	if t, okTok := params["token"]; okTok {
		if token == "" {
			token = t
		}
		delete(params, "token")
	}
	return params, token, nil
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params, token, err := decodeParams(r, body)
	if err != nil {
		writeJSON(w, fail("invalid_form_data"))
		return
	}
	s.record(Call{Method: method, Params: params, Body: body, At: time.Now()})
	s.delay(method)

	if res, faulted := s.takeFault(method); faulted {
		writeJSON(w, res)
		return
	}
	if token == "" {
		writeJSON(w, fail("not_authed"))
		return
	}
	if code := s.tokenError(method, token); code != "" {
		writeJSON(w, fail(code))
		return
	}
	if res, missing := s.missingScope(method, token); missing {
		writeJSON(w, res)
		return
	}
	if wait, over := s.overLimit(method, params, time.Now()); over {
		writeJSON(w, rateLimited(wait))
		return
	}
	var res apiResult
	switch method {
	case "auth.test":
		w.Header().Set("X-OAuth-Scopes", s.scopeHeader())
		res = ok(map[string]any{"url": "https://" + TeamDomain + ".slack.com/", "team": "Accessbot Test",
			"user": "accessbot", "team_id": TeamID, "user_id": BotUserID, "bot_id": BotID, "is_enterprise_install": false})
	case "apps.connections.open":
		res = ok(map[string]any{"url": "ws" + strings.TrimPrefix(s.ts.URL, "http") + "/socket-mode?ticket=" + s.nextID("")})
	case "users.info":
		res = s.usersInfo(params)
	case "users.lookupByEmail":
		res = s.usersLookupByEmail(params)
	case "conversations.open":
		res = s.conversationsOpen(params)
	case "chat.postMessage":
		res = s.postMessage(params)
	case "chat.update":
		res = s.updateMessage(params)
	case "chat.delete":
		res = s.deleteMessage(params)
	case "chat.postEphemeral":
		res = s.postEphemeral(params)
	case "views.open":
		res = s.openView(params)
	case "views.update":
		res = s.updateView(params)
	case "views.publish":
		res = s.publishView(params)
	case "files.getUploadURLExternal":
		res = s.getUploadURL(params)
	case "files.completeUploadExternal":
		res = s.completeUpload(params)
	default:
		res = fail("unknown_method")
	}
	writeJSON(w, res)
}

func writeJSON(w http.ResponseWriter, res apiResult) {
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((res.retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	for _, ch := range s.callWaiters {
		close(ch)
	}
	s.callWaiters = nil
}

func (s *Server) delay(method string) {
	s.mu.Lock()
	d := s.latency[method] + s.latency[""]
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

func (s *Server) takeFault(method string) (apiResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[method]
	if f == nil || f.n <= 0 {
		return apiResult{}, false
	}
	f.n--
	if f.rateLimit {
		return rateLimited(f.retryAfter), true
	}
	return fail(f.errCode), true
}

// nextID returns prefix followed by a fresh number.
func (s *Server) nextID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextIDLocked(prefix)
}

func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%08d", prefix, s.seq)
}

// nextTSLocked returns a fresh message timestamp ("1712345678.000100").
func (s *Server) nextTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.clock.Unix(), s.seq)
}

func (s *Server) usersInfo(p map[string]string) apiResult {
	s.mu.Lock()
	u, found := s.users[p["user"]]
	s.mu.Unlock()
	if !found {
		return fail("user_not_found")
	}
	profile := map[string]any{"real_name": u.Name, "display_name": u.Name, "team": TeamID}
	if s.hasScope("users:read.email") {
		profile["email"] = u.Email
	}
	return ok(map[string]any{"user": map[string]any{
		"id": u.ID, "team_id": TeamID, "name": u.Name, "deleted": false, "real_name": u.Name, "tz": "Europe/London",
		"is_bot": false, "is_admin": false, "profile": profile,
	}})
}

// usersLookupByEmail finds a user by email, case-insensitively as Slack does.
func (s *Server) usersLookupByEmail(p map[string]string) apiResult {
	s.mu.Lock()
	var id string
	for uid, u := range s.users {
		if strings.EqualFold(u.Email, p["email"]) {
			id = uid
		}
	}
	s.mu.Unlock()
	if id == "" {
		return fail("users_not_found")
	}
	return s.usersInfo(map[string]string{"user": id})
}

func (s *Server) conversationsOpen(p map[string]string) apiResult {
	if ch := p["channel"]; ch != "" {
		return ok(map[string]any{"channel": map[string]any{"id": ch}})
	}
	users := strings.Split(p["users"], ",")
	if len(users) != 1 || users[0] == "" {
		return fail("users_list_not_supplied")
	}
	ch := DMChannel(strings.TrimSpace(users[0]))
	if ch == users[0] {
		return fail("user_not_found")
	}
	return ok(map[string]any{"no_op": true, "already_open": true, "channel": map[string]any{
		"id": ch, "is_im": true, "user": users[0], "created": s.clock.Unix()}})
}

// checkBlocks validates a blocks parameter the way Slack refuses bad ones.
func checkBlocks(raw string, maxBlocks int) (json.RawMessage, string) {
	if raw == "" {
		return nil, ""
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, "invalid_blocks_format"
	}
	if bad := checkBlockList(blocks, maxBlocks); bad != "" {
		return nil, bad
	}
	return readable(raw), ""
}

// noBlocks reports whether checked blocks hold none ("[]" holds none): a
// message then needs its text.
func noBlocks(blocks json.RawMessage) bool {
	return len(blocks) == 0 || string(blocks) == "[]"
}

// checkBlockList is checkBlocks for decoded blocks: invalid_blocks when
// there are more than maxBlocks, one breaks a Block Kit limit, or two
// share a block_id.
func checkBlockList(blocks []map[string]any, maxBlocks int) string {
	if len(blocks) > maxBlocks {
		return "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, b := range blocks {
		if _, typed := b["type"].(string); !typed || blockOverLimit(b) {
			return "invalid_blocks"
		}
		if id, has := b["block_id"].(string); has {
			if ids[id] || id == "" || utf8.RuneCountInString(id) > maxBlockID {
				return "invalid_blocks"
			}
			ids[id] = true
		}
	}
	return ""
}

// checkMessageBlocks is checkBlocks for a message: at most
// maxMessageBlocks blocks and MaxBlockTextChars of text.
func checkMessageBlocks(raw string) (json.RawMessage, string) {
	blocks, bad := checkBlocks(raw, maxMessageBlocks)
	if bad == "" && blocks != nil && blockTextChars(blocks) > MaxBlockTextChars {
		return nil, "msg_blocks_too_long"
	}
	return blocks, bad
}

// readable re-encodes JSON without the HTML escaping encoding/json applies
// (\u003c for <), so what tests and people read is what Slack shows.
func readable(raw string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return json.RawMessage(raw)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage(raw)
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes()))
}

func (s *Server) postMessage(p map[string]string) apiResult {
	channel := DMChannel(p["channel"])
	if channel == "" {
		return fail("channel_not_found")
	}
	blocks, bad := checkMessageBlocks(p["blocks"])
	if bad != "" {
		return fail(bad)
	}
	if p["text"] == "" && noBlocks(blocks) {
		return fail("no_text")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Channel: channel, TS: s.nextTSLocked(), Text: p["text"], Blocks: blocks, Posted: time.Now()}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": messageJSON(m)})
}

func messageJSON(m *Message) map[string]any {
	out := map[string]any{"type": "message", "user": BotUserID, "bot_id": BotID, "app_id": AppID, "text": m.Text, "ts": m.TS, "team": TeamID}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	return out
}

func (s *Server) findMessage(channel, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts && !m.Deleted {
			return m
		}
	}
	return nil
}

func (s *Server) updateMessage(p map[string]string) apiResult {
	blocks, bad := checkMessageBlocks(p["blocks"])
	if bad != "" {
		return fail(bad)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessage(p["channel"], p["ts"])
	if m == nil {
		return fail("message_not_found")
	}
	if t, set := p["text"]; set {
		m.Text = t
	}
	if _, set := p["blocks"]; set {
		m.Blocks = blocks
	}
	m.Updates++
	m.Edited = time.Now()
	return ok(map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

func (s *Server) deleteMessage(p map[string]string) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessage(p["channel"], p["ts"])
	if m == nil {
		return fail("message_not_found")
	}
	m.Deleted = true
	return ok(map[string]any{"channel": m.Channel, "ts": m.TS})
}

func (s *Server) postEphemeral(p map[string]string) apiResult {
	if p["channel"] == "" {
		return fail("channel_not_found")
	}
	if p["user"] == "" {
		return fail("user_not_in_channel")
	}
	blocks, bad := checkMessageBlocks(p["blocks"])
	if bad != "" {
		return fail(bad)
	}
	if p["text"] == "" && noBlocks(blocks) {
		return fail("no_text")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Ephemeral{Channel: p["channel"], User: p["user"], Text: p["text"], Blocks: blocks, TS: s.nextTSLocked(), Posted: time.Now()}
	s.ephemerals = append(s.ephemerals, e)
	return ok(map[string]any{"message_ts": e.TS})
}

// viewHead reads a view JSON: what the fake keeps of it, and what it
// checks.
type viewHead struct {
	Type            string           `json:"type"`
	CallbackID      string           `json:"callback_id"`
	PrivateMetadata string           `json:"private_metadata"`
	Title           map[string]any   `json:"title"`
	Submit          map[string]any   `json:"submit"`
	Close           map[string]any   `json:"close"`
	Blocks          []map[string]any `json:"blocks"`
}

// parseView reads a view the app sent. Slack answers every problem with a
// view — its fields, and the Block Kit limits of its blocks —
// invalid_arguments (chat.* answer invalid_blocks for the latter).
func parseView(raw string) (viewHead, json.RawMessage, string) {
	var v viewHead
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil || v.Blocks == nil ||
		checkBlockList(v.Blocks, maxViewBlocks) != "" || viewOverLimit(v) {
		return v, nil, "invalid_arguments"
	}
	return v, readable(raw), ""
}

// viewResponse answers views.open, views.update and views.publish with the
// view as Slack describes it, its state empty.
func viewResponse(v *View) apiResult {
	return ok(map[string]any{"view": viewJSON(*v, map[string]any{})})
}

// addViewLocked keeps a view the app opened or published.
func (s *Server) addViewLocked(typ, user string, head viewHead, raw json.RawMessage) *View {
	v := &View{ID: s.nextIDLocked("V"), Type: typ, Hash: s.nextIDLocked("h."), CallbackID: head.CallbackID,
		PrivateMetadata: head.PrivateMetadata, User: user, JSON: raw}
	s.views[v.ID] = v
	s.viewOrder = append(s.viewOrder, v.ID)
	return v
}

// replaceViewLocked makes v the view the app sent, with a fresh hash.
func (s *Server) replaceViewLocked(v *View, head viewHead, raw json.RawMessage) {
	v.JSON, v.CallbackID, v.PrivateMetadata, v.Hash = raw, head.CallbackID, head.PrivateMetadata, s.nextIDLocked("h.")
	v.Updates++
	v.Errors = nil
}

func (s *Server) openView(p map[string]string) apiResult {
	head, raw, bad := parseView(p["view"])
	if bad != "" {
		return fail(bad)
	}
	if head.Type != "modal" {
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tr, known := s.triggers[p["trigger_id"]]
	switch {
	case !known:
		return fail("invalid_trigger_id")
	case s.triggerTTL > 0 && time.Since(tr.issued) > s.triggerTTL:
		return fail("expired_trigger_id")
	}
	delete(s.triggers, p["trigger_id"]) // a trigger opens one view
	return viewResponse(s.addViewLocked("modal", tr.user, head, raw))
}

func (s *Server) updateView(p map[string]string) apiResult {
	head, raw, bad := parseView(p["view"])
	if bad != "" {
		return fail(bad)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[p["view_id"]]
	if v == nil || v.Closed {
		return fail("not_found") // as Slack answers for a modal that was closed
	}
	if h := p["hash"]; h != "" && h != v.Hash {
		return fail("hash_conflict")
	}
	s.replaceViewLocked(v, head, raw)
	return viewResponse(v)
}

func (s *Server) publishView(p map[string]string) apiResult {
	head, raw, bad := parseView(p["view"])
	if bad != "" {
		return fail(bad)
	}
	if head.Type != "home" {
		return fail("invalid_arguments")
	}
	user := p["user_id"]
	if user == "" {
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, had := s.homes[user]; had {
		v := s.views[id]
		s.replaceViewLocked(v, head, raw)
		return viewResponse(v)
	}
	v := s.addViewLocked("home", user, head, raw)
	s.homes[user] = v.ID
	return viewResponse(v)
}

func (s *Server) getUploadURL(p map[string]string) apiResult {
	n, err := strconv.Atoi(p["length"])
	if p["filename"] == "" || err != nil || n <= 0 {
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &File{ID: s.nextIDLocked("F"), Name: p["filename"], Length: n}
	s.files[f.ID] = f
	s.fileOrder = append(s.fileOrder, f.ID)
	return ok(map[string]any{"file_id": f.ID, "upload_url": s.ts.URL + "/upload/" + f.ID})
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.record(Call{Method: "upload", Params: map[string]string{"file_id": id}, Body: body, At: time.Now()})
	content := body
	if ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && strings.HasPrefix(ct, "multipart/") {
		content = nil
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			if part.FormName() == "file" {
				content, _ = io.ReadAll(part)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	f.Content = content
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

func (s *Server) completeUpload(p map[string]string) apiResult {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p["files"]), &files); err != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	var channels []string
	if c := p["channel_id"]; c != "" {
		channels = append(channels, c)
	}
	if c := p["channels"]; c != "" {
		channels = append(channels, strings.Split(c, ",")...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, fr := range files {
		f := s.files[fr.ID]
		if f == nil || f.Content == nil {
			return fail("file_not_found")
		}
		if len(f.Content) != f.Length {
			return fail("file_upload_size_mismatch")
		}
		f.Title, f.Channels, f.InitialComment, f.Completed = fr.Title, channels, p["initial_comment"], true
		f.Posted = time.Now()
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	return ok(map[string]any{"files": out})
}

// serveResponseURL takes a post to a response URL: an ephemeral reply
// (the default), a replacement of the original message, or a message in
// the channel.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params, _, err := decodeParams(r, body)
	if err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.record(Call{Method: "response_url", Params: params, Body: body, At: time.Now()})
	s.delay("response_url")
	if res, faulted := s.takeFault("response_url"); faulted {
		// Response URLs answer errors with HTTP statuses, not JSON.
		status := http.StatusInternalServerError
		if res.status == http.StatusTooManyRequests {
			status = res.status
		}
		http.Error(w, "failed", status)
		return
	}
	u := s.ts.URL + r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	dest, known := s.responses[u]
	switch {
	case !known:
		http.Error(w, "invalid_token", http.StatusNotFound)
		return
	case s.responseTTL > 0 && time.Since(dest.issued) > s.responseTTL:
		http.Error(w, "expired_url", http.StatusNotFound)
		return
	case dest.uses >= ResponseURLUses:
		http.Error(w, "used_url", http.StatusNotFound)
		return
	}
	blocks, bad := checkMessageBlocks(params["blocks"])
	if bad == "" && params["text"] == "" && noBlocks(blocks) {
		bad = "no_text"
	}
	if bad != "" {
		http.Error(w, bad, http.StatusBadRequest)
		return
	}
	dest.uses++
	e := Ephemeral{Channel: dest.channel, User: dest.user, Text: params["text"], Blocks: blocks, ResponseURL: u,
		ReplaceOriginal: params["replace_original"] == "true", TS: s.nextTSLocked(), Posted: time.Now()}
	s.ephemerals = append(s.ephemerals, e)
	_, _ = io.WriteString(w, "ok")
}
