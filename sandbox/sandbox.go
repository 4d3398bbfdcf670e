// Package sandbox is the web page of `accessbot sandbox`: it lets a person
// act as any seeded user of a fake Slack workspace, and shows what Slack
// would show them — their DMs with the bot, replies only they see, the
// approvals channel, their App Home tab and open modals — rendered from
// the Block Kit the bot sent to the fake Slack (bot/slacktest). What they
// type and click goes to the bot's real endpoints as the signed payloads
// Slack sends. A side panel shows the fake PostHog's roles and members and
// the audit log with its verification.
//
// Pages are rendered on the server with html/template; a little
// JavaScript polls for changes and sends clicks. Nothing is built.
package sandbox

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/workflow"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Person is a seeded user someone can act as.
type Person struct {
	ID    string // Slack user id
	Name  string // full name, as mentions show it
	Email string // the same in Slack and PostHog
	About string // who they are in the scenario ("owner of Engineering")
}

// AuditView is the audit log as the side panel shows it.
type AuditView struct {
	Entries []workflow.AuditEntry // oldest first
	Verdict string                // `accessbot audit verify`'s words
	OK      bool
}

// Config is what New needs. Every field but Guide, Logger, HTTPClient and
// Now is required.
type Config struct {
	Slack         *slacktest.Server
	PostHog       *posthogtest.Server
	BotURL        string // the service's base URL (its /slack/* endpoints)
	SigningSecret string // what the bot verifies requests with
	People        []Person
	Channel       string // the approvals channel id
	ChannelName   string // its name, without #
	// Audit reads the audit log and verifies it.
	Audit func(ctx context.Context) (AuditView, error)
	// Scenario names the seeded data; Guide lists what to try (mrkdwn).
	Scenario string
	Guide    []string
	Logger   zerolog.Logger
	// HTTPClient posts to the bot; nil: a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock dates are shown against; nil: time.Now.
	Now func() time.Time
}

// Server serves the sandbox pages. It is an http.Handler.
type Server struct {
	cfg    Config
	text   text
	tmpl   *template.Template
	mux    *http.ServeMux
	hc     *http.Client
	log    zerolog.Logger
	people map[string]Person
	byMail map[string]Person

	mu    sync.Mutex
	local map[string][]item // per person: what they typed, and the sandbox's own notes
	seq   int64
}

// New checks cfg and returns the page server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Slack == nil || cfg.PostHog == nil:
		return nil, errors.New("sandbox: Slack and PostHog fakes are required")
	case cfg.BotURL == "" || cfg.SigningSecret == "":
		return nil, errors.New("sandbox: BotURL and SigningSecret are required")
	case len(cfg.People) == 0:
		return nil, errors.New("sandbox: no people to act as")
	case cfg.Audit == nil:
		return nil, errors.New("sandbox: Audit is required")
	}
	s := &Server{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger, people: map[string]Person{}, byMail: map[string]Person{},
		local: map[string][]item{}}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 10 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	for _, p := range cfg.People {
		s.people[p.ID] = p
		s.byMail[strings.ToLower(p.Email)] = p
	}
	s.text = text{name: s.name, now: now, loc: time.Local}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"mrkdwn": s.text.mrkdwn,
		"initial": func(name string) string {
			for _, r := range name {
				return strings.ToUpper(string(r))
			}
			return "?"
		},
		"color": avatarColor,
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("sandbox templates: %w", err)
	}
	s.tmpl = tmpl
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /as/{id}", s.page)
	mux.HandleFunc("GET /as/{id}/panes", s.panes)
	mux.HandleFunc("GET /as/{id}/files/{file}", s.file)
	mux.HandleFunc("POST /as/{id}/command", s.command)
	mux.HandleFunc("POST /as/{id}/action", s.action)
	mux.HandleFunc("POST /as/{id}/submit", s.submit)
	mux.HandleFunc("POST /as/{id}/close", s.closeModal)
	mux.HandleFunc("POST /as/{id}/suggest", s.suggest)
	mux.HandleFunc("POST /as/{id}/home", s.homeOpened)
	s.mux = mux
	return s, nil
}

// ServeHTTP serves the pages, their assets and what the pages post, with
// headers that keep the page's own script the only one that runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

// name is how a Slack id reads in a mention.
func (s *Server) name(id string) string {
	if p, ok := s.people[id]; ok {
		return p.Name
	}
	if id == slacktest.BotUserID {
		return "accessbot"
	}
	return id
}

// ---- pages ----

type indexData struct {
	People   []Person
	Scenario string
	Guide    []template.HTML
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	s.render(w, "index.html", indexData{People: s.cfg.People, Scenario: s.cfg.Scenario, Guide: s.guide()})
}

func (s *Server) guide() []template.HTML {
	var out []template.HTML
	for _, g := range s.cfg.Guide {
		out = append(out, s.text.mrkdwn(g))
	}
	return out
}

type pageData struct {
	Me          Person
	People      []Person
	Scenario    string
	Guide       []template.HTML
	ChannelName string
	Panes       map[string]pane
}

// pane is one region of a person's page, with a hash so the page replaces
// only what changed.
type pane struct {
	Hash string        `json:"hash"`
	HTML template.HTML `json:"html"`
}

func (s *Server) person(w http.ResponseWriter, r *http.Request) (Person, bool) {
	p, ok := s.people[r.PathValue("id")]
	if !ok {
		http.Error(w, "no such person in this sandbox; see / for who is here", http.StatusNotFound)
	}
	return p, ok
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	// Opening the page is opening Slack on the app: the App Home tab is
	// rendered afresh.
	s.openHome(r.Context(), me.ID)
	panes, err := s.renderPanes(r.Context(), me)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.render(w, "page.html", pageData{Me: me, People: s.cfg.People, Scenario: s.cfg.Scenario, Guide: s.guide(),
		ChannelName: s.cfg.ChannelName, Panes: panes})
}

func (s *Server) panes(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	panes, err := s.renderPanes(r.Context(), me)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(panes)
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error().Err(err).Str("template", name).Msg("sandbox page")
		http.Error(w, "rendering failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

// item is one entry of a conversation.
type item struct {
	Kind   string // "bot", "ephemeral", "you", "note", "file"
	Time   string
	Edited bool
	Blocks []rBlock
	Text   template.HTML
	File   *fileItem
	Broken string // why the blocks could not be shown

	at  time.Time
	seq int64
}

type fileItem struct {
	Name, Title, URL string
	Size             int
	Comment          template.HTML
}

type conversation struct {
	Me    Person
	Items []item
	Empty string
}

func (s *Server) renderPanes(ctx context.Context, me Person) (map[string]pane, error) {
	panes := []struct {
		name, tmpl string
		data       any
	}{
		{"dm", "conversation", s.conversation(me, slacktest.DMChannel(me.ID), true,
			"Nothing yet. Type /access below — try /access help.")},
		{"channel", "conversation", s.conversation(me, s.cfg.Channel, false,
			"Every request is posted here too. Nothing yet.")},
		{"home", "home", s.home(me)},
		{"modal", "modal", s.openModal(me)},
		{"posthog", "posthog", s.posthog()},
		{"audit", "audit", s.audit(ctx)},
	}
	out := make(map[string]pane, len(panes))
	for _, p := range panes {
		var buf bytes.Buffer
		if err := s.tmpl.ExecuteTemplate(&buf, p.tmpl, p.data); err != nil {
			return nil, fmt.Errorf("render %s: %w", p.name, err)
		}
		h := fnv.New64a()
		h.Write(buf.Bytes())
		out[p.name] = pane{Hash: strconv.FormatUint(h.Sum64(), 36), HTML: template.HTML(buf.String())}
	}
	return out, nil
}

// conversation is a channel as me sees it: the bot's messages, the
// ephemeral replies me got there, and (in the DM) what me typed and the
// files sent to them.
func (s *Server) conversation(me Person, channel string, isDM bool, empty string) conversation {
	var items []item
	for _, m := range s.cfg.Slack.Messages(channel) {
		if m.Deleted {
			continue
		}
		it := item{Kind: "bot", at: m.Posted, seq: tsSeq(m.TS), Edited: !m.Edited.IsZero()}
		s.fill(&it, m.Text, m.Blocks, surface{Kind: "message", Channel: m.Channel, TS: m.TS})
		items = append(items, it)
	}
	for _, e := range s.cfg.Slack.Ephemerals(me.ID) {
		here := e.Channel == channel || (isDM && e.Channel != s.cfg.Channel)
		if !here {
			continue
		}
		it := item{Kind: "ephemeral", at: e.Posted, seq: tsSeq(e.TS)}
		s.fill(&it, e.Text, e.Blocks, surface{Kind: "ephemeral", Channel: e.Channel, TS: e.TS})
		items = append(items, it)
	}
	if isDM {
		for _, f := range s.cfg.Slack.Files() {
			if !f.Completed || !slices.Contains(f.Channels, channel) {
				continue
			}
			items = append(items, item{Kind: "file", at: f.Posted, File: &fileItem{Name: f.Name, Title: f.Title, Size: len(f.Content),
				URL: "/as/" + url.PathEscape(me.ID) + "/files/" + url.PathEscape(f.ID), Comment: s.text.mrkdwn(f.InitialComment)}})
		}
		s.mu.Lock()
		items = append(items, s.local[me.ID]...)
		s.mu.Unlock()
	}
	sort.SliceStable(items, func(i, j int) bool {
		if !items[i].at.Equal(items[j].at) {
			return items[i].at.Before(items[j].at)
		}
		return items[i].seq < items[j].seq
	})
	for i := range items {
		if !items[i].at.IsZero() {
			items[i].Time = items[i].at.In(s.text.loc).Format("15:04:05")
		}
	}
	return conversation{Me: me, Items: items, Empty: empty}
}

// fill renders a message's blocks, or its text when it has none.
func (s *Server) fill(it *item, txt string, blocks json.RawMessage, sf surface) {
	rb, err := s.text.blocks(blocks, sf, nil)
	if err != nil {
		it.Broken = err.Error()
	}
	if len(rb) > 0 {
		it.Blocks = rb
		return
	}
	it.Text = s.text.mrkdwn(txt)
}

// tsSeq is the sequence part of a fake Slack timestamp, which orders
// messages posted in the same instant.
func tsSeq(ts string) int64 {
	_, frac, _ := strings.Cut(ts, ".")
	n, _ := strconv.ParseInt(frac, 10, 64)
	return n
}

type homeData struct {
	Blocks []rBlock
	Broken string
	Has    bool
}

func (s *Server) home(me Person) homeData {
	v, ok := s.cfg.Slack.HomeView(me.ID)
	if !ok {
		return homeData{}
	}
	bs, err := s.text.viewBlocks(v.ID, v.JSON)
	if err != nil {
		return homeData{Has: true, Broken: err.Error()}
	}
	return homeData{Has: true, Blocks: bs}
}

type modalData struct {
	Me     string
	Modal  *rModal
	Broken string
}

// openModal is the modal on top for me: the newest one not closed.
func (s *Server) openModal(me Person) modalData {
	views := s.cfg.Slack.Views()
	for i := len(views) - 1; i >= 0; i-- {
		v := views[i]
		if v.Type != "modal" || v.User != me.ID || v.Closed {
			continue
		}
		m, err := s.text.modal(v.ID, v.JSON, v.Errors)
		if err != nil {
			return modalData{Me: me.ID, Broken: err.Error()}
		}
		return modalData{Me: me.ID, Modal: m}
	}
	return modalData{Me: me.ID}
}

type phRole struct {
	Name    string
	Members []string
}

func (s *Server) posthog() []phRole {
	var out []phRole
	for _, r := range s.cfg.PostHog.Roles() {
		pr := phRole{Name: r.Name}
		for _, m := range s.cfg.PostHog.Memberships(r.ID) {
			name := strings.TrimSpace(m.User.FirstName + " " + m.User.LastName)
			if p, ok := s.byMail[strings.ToLower(m.User.Email)]; ok {
				name = p.Name
			}
			if name == "" {
				name = m.User.Email
			}
			pr.Members = append(pr.Members, name)
		}
		out = append(out, pr)
	}
	return out
}

type auditRow struct {
	Seq     int64
	Time    string
	Action  string
	Actor   string
	Subject string
	Role    string
	Request string
}

type auditData struct {
	Verdict string
	OK      bool
	Rows    []auditRow
	More    int
	Error   string
}

// auditShown is how many of the newest entries the panel lists.
const auditShown = 40

func (s *Server) audit(ctx context.Context) auditData {
	v, err := s.cfg.Audit(ctx)
	if err != nil {
		return auditData{Error: err.Error()}
	}
	d := auditData{Verdict: v.Verdict, OK: v.OK}
	who := func(id, email string) string {
		switch {
		case id == "":
			return ""
		case id == workflow.SystemActor:
			return "system"
		}
		if p, ok := s.people[id]; ok {
			return p.Name
		}
		if email != "" {
			return email
		}
		return id
	}
	for i := len(v.Entries) - 1; i >= 0 && len(d.Rows) < auditShown; i-- {
		e := v.Entries[i]
		row := auditRow{Seq: e.Seq, Time: e.Time.In(s.text.loc).Format("15:04:05"), Action: string(e.Action),
			Actor: who(e.ActorID, e.ActorEmail), Subject: who(e.SubjectID, e.SubjectEmail), Role: e.RoleName}
		if e.RequestID != 0 {
			row.Request = "#" + strconv.FormatInt(e.RequestID, 10)
		}
		d.Rows = append(d.Rows, row)
	}
	d.More = len(v.Entries) - len(d.Rows)
	return d
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	for _, f := range s.cfg.Slack.Files() {
		if f.ID == r.PathValue("file") && slices.Contains(f.Channels, slacktest.DMChannel(me.ID)) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(f.Name, `"`, "")+`"`)
			_, _ = w.Write(f.Content)
			return
		}
	}
	http.NotFound(w, r)
}

// avatarColor gives each name a stable colour class (c0…c6 in app.css).
func avatarColor(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return "c" + strconv.Itoa(int(h.Sum32()%7))
}

// ---- what people do ----

// note adds a line only the sandbox writes to me's DM: what they typed,
// or why something they did could not be delivered.
func (s *Server) note(me, kind string, html template.HTML) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.local[me] = append(s.local[me], item{Kind: kind, Text: html, at: time.Now(), seq: s.seq})
}

// post sends body to the bot's path signed as Slack signs it and returns
// the answer's body.
func (s *Server) post(ctx context.Context, path, body string) ([]byte, error) {
	req := slacktest.SignedRequest(s.cfg.SigningSecret, strings.TrimRight(s.cfg.BotURL, "/")+path, body, time.Now())
	req = req.WithContext(ctx)
	res, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return b, fmt.Errorf("POST %s: the bot answered HTTP %d: %s", path, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// done answers a form post: 204 for the page's script, a redirect back
// to the person's page otherwise.
func done(w http.ResponseWriter, r *http.Request, me Person) {
	if r.Header.Get("X-Sandbox") != "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/as/"+url.PathEscape(me.ID), http.StatusSeeOther)
}

// failed tells me, in their DM, what went wrong, and answers the post.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, me Person, doing string, err error) {
	s.log.Warn().Err(err).Str("slack_user", me.ID).Str("doing", doing).Msg("sandbox")
	s.note(me.ID, "note", template.HTML("Slack could not deliver that ("+template.HTMLEscapeString(doing)+"): "+
		template.HTMLEscapeString(err.Error())))
	done(w, r, me)
}

func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	line := strings.TrimSpace(r.FormValue("command"))
	if line == "" {
		done(w, r, me)
		return
	}
	s.note(me.ID, "you", template.HTML(template.HTMLEscapeString(line)))
	name, rest, _ := strings.Cut(line, " ")
	switch {
	case !strings.HasPrefix(line, "/"):
		s.note(me.ID, "note", "accessbot only answers its slash command here: type <code>/access help</code>.")
		done(w, r, me)
		return
	case name != "/access":
		s.note(me.ID, "note", template.HTML("This workspace has no "+template.HTMLEscapeString(name)+" command. Try <code>/access help</code>."))
		done(w, r, me)
		return
	}
	cmd := s.cfg.Slack.SlashCommand(me.ID, strings.TrimSpace(rest))
	ack, err := s.post(r.Context(), "/slack/commands", cmd.Form())
	if err != nil {
		s.failed(w, r, me, "/access", err)
		return
	}
	if _, _, err := s.cfg.Slack.ShowReply(cmd.ChannelID, me.ID, ack); err != nil {
		s.failed(w, r, me, "/access", err)
		return
	}
	done(w, r, me)
}

// action is a click on a button or a choice in a select.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	kind, actionID, value := r.FormValue("kind"), r.FormValue("action_id"), r.FormValue("value")
	var payload []byte
	var err error
	switch kind {
	case "message":
		m, found := s.cfg.Slack.Message(r.FormValue("channel"), r.FormValue("ts"))
		if !found || m.Deleted {
			err = errors.New("that message is gone")
			break
		}
		payload, err = s.cfg.Slack.ClickMessage(me.ID, m, actionID, value)
	case "ephemeral":
		err = errors.New("that reply is gone")
		for _, e := range s.cfg.Slack.Ephemerals(me.ID) {
			if e.TS == r.FormValue("ts") {
				payload, err = s.cfg.Slack.ClickEphemeral(me.ID, e, actionID, value)
				break
			}
		}
	case "view":
		v, found := s.cfg.Slack.View(r.FormValue("view"))
		if !found || v.User != me.ID {
			err = errors.New("that view is gone")
			break
		}
		payload, err = s.cfg.Slack.ClickView(me.ID, v, actionID, value)
	default:
		err = fmt.Errorf("unknown surface %q", kind)
	}
	if err != nil {
		s.failed(w, r, me, "click", err)
		return
	}
	if _, err := s.post(r.Context(), "/slack/interactions", slacktest.InteractionForm(payload)); err != nil {
		s.failed(w, r, me, "click", err)
		return
	}
	done(w, r, me)
}

// submitAnswer is what the page's script learns from a submission.
type submitAnswer struct {
	Closed bool              `json:"closed"`
	Errors map[string]string `json:"errors,omitempty"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, found := s.cfg.Slack.View(r.PostForm.Get("__view"))
	if !found || v.User != me.ID || v.Closed {
		s.failed(w, r, me, "submit", errors.New("that form is no longer open"))
		return
	}
	values := map[string]string{}
	for k, vs := range r.PostForm {
		if k != "__view" && len(vs) > 0 {
			values[k] = vs[0]
		}
	}
	payload, err := s.cfg.Slack.ViewSubmission(me.ID, v, values)
	if err != nil {
		s.failed(w, r, me, "submit", err)
		return
	}
	ack, err := s.post(r.Context(), "/slack/interactions", slacktest.InteractionForm(payload))
	if err != nil {
		s.failed(w, r, me, "submit", err)
		return
	}
	after, err := s.cfg.Slack.AnswerSubmission(v.ID, ack)
	if err != nil {
		s.failed(w, r, me, "submit", err)
		return
	}
	if r.Header.Get("X-Sandbox") != "" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(submitAnswer{Closed: after.Closed, Errors: after.Errors})
		return
	}
	done(w, r, me)
}

func (s *Server) closeModal(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	v, found := s.cfg.Slack.View(r.FormValue("__view"))
	if !found || v.User != me.ID {
		done(w, r, me)
		return
	}
	s.cfg.Slack.CloseView(v.ID)
	var head struct {
		NotifyOnClose bool `json:"notify_on_close"`
	}
	if json.Unmarshal(v.JSON, &head) == nil && head.NotifyOnClose {
		payload, err := s.cfg.Slack.ViewClosed(me.ID, v)
		if err == nil {
			_, err = s.post(r.Context(), "/slack/interactions", slacktest.InteractionForm(payload))
		}
		if err != nil {
			s.failed(w, r, me, "close", err)
			return
		}
	}
	done(w, r, me)
}

// suggestion is one option of an external select, for the page's script.
type suggestion struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// suggest asks the bot's options endpoint for an external select's
// options matching what the person typed (block_suggestion).
func (s *Server) suggest(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	v, found := s.cfg.Slack.View(r.FormValue("__view"))
	if !found || v.User != me.ID {
		http.Error(w, "no such view", http.StatusNotFound)
		return
	}
	payload, err := s.cfg.Slack.BlockSuggestion(me.ID, v, r.FormValue("action_id"), r.FormValue("q"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ack, err := s.post(r.Context(), "/slack/options", slacktest.InteractionForm(payload))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var body struct {
		Options []option `json:"options"`
		Groups  []struct {
			Options []option `json:"options"`
		} `json:"option_groups"`
	}
	if err := json.Unmarshal(ack, &body); err != nil && len(bytes.TrimSpace(ack)) > 0 {
		http.Error(w, "the bot's options answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	out := []suggestion{}
	for _, g := range body.Groups {
		body.Options = append(body.Options, g.Options...)
	}
	for _, o := range body.Options {
		out = append(out, suggestion{Label: o.Text.Text, Value: o.Value})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) homeOpened(w http.ResponseWriter, r *http.Request) {
	me, ok := s.person(w, r)
	if !ok {
		return
	}
	s.openHome(r.Context(), me.ID)
	done(w, r, me)
}

// openHome is the person looking at the App Home tab: Slack sends
// app_home_opened and the bot publishes the tab.
func (s *Server) openHome(ctx context.Context, user string) {
	if _, err := s.post(ctx, "/slack/events", string(s.cfg.Slack.AppHomeOpened(user))); err != nil {
		s.log.Warn().Err(err).Str("slack_user", user).Msg("sandbox: app_home_opened")
	}
}
