package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// The people of the test workspace.
const (
	alice    = "U0ALICE"   // asks for access
	bob      = "U0BOB"     // owns Engineering and Finance
	carol    = "U0CAROL"   // owns Engineering and Finance
	mallory  = "U0MALLORY" // owns nothing
	admin    = "U0ADMIN"   // bot admin, the default owner
	channel  = "C0APPROVALS"
	secret   = "8f742231b10e8888abcd99yyyzzz85a5"
	appToken = "xapp-1-A0ACCESS-test"
)

const testPolicy = `
defaults:
  owners: [U0ADMIN]
  approvals_required: 1
  pending_expiry: 72h
  reminder_after: 24h
roles:
  - role: Engineering
    owners: [U0BOB, U0CAROL]
    max_duration: 168h
  - role: Finance
    owners: [U0BOB, U0CAROL]
    approvals_required: 2
  - role: Viewer
    auto_approve: true
`

// harness wires a fake Slack, a fake PostHog, a real SQLite store, the
// workflow service and the bot behind a real HTTP server, as in production.
type harness struct {
	t      testing.TB
	slack  *slacktest.Server
	ph     *posthogtest.Server
	db     *store.DB
	svc    *workflow.Service
	bot    *bot.Bot
	srv    *httptest.Server
	roles  map[string]posthog.Role // by name
	uuids  map[string]string       // Slack id → PostHog user uuid
	api    *slack.Client
	events *observed
}

type harnessOption func(*workflow.Config, *bot.Config)

// withBudget shortens the view_submission budget.
func withBudget(d time.Duration) harnessOption {
	return func(_ *workflow.Config, b *bot.Config) { b.SubmitBudget = d }
}

// paced turns on the bot's pacing to Slack's tiers, off by default here
// because the fake has no limits unless a test sets them.
func paced() harnessOption {
	return func(_ *workflow.Config, b *bot.Config) { b.Unpaced = false }
}

// observed collects what the bot reports to Config.Observe.
type observed struct {
	mu   sync.Mutex
	seen []string
}

func (o *observed) add(kind, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, kind+"/"+outcome)
}

func (o *observed) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		return ""
	}
	return o.seen[len(o.seen)-1]
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, slack: slacktest.NewServer(), ph: posthogtest.NewServer(), roles: map[string]posthog.Role{},
		uuids: map[string]string{}, events: &observed{}}
	t.Cleanup(h.slack.Close)
	t.Cleanup(h.ph.Close)
	log := testLogger(t)

	for _, u := range []struct{ id, name string }{{alice, "alice"}, {bob, "bob"}, {carol, "carol"}, {mallory, "mallory"}, {admin, "admin"}} {
		email := u.name + "@example.com"
		h.slack.AddUser(u.id, u.name, email)
		h.uuids[u.id] = h.ph.AddUser(email, strings.ToUpper(u.name[:1])+u.name[1:], "Test").UUID
	}
	for _, name := range []string{"Engineering", "Finance", "Viewer", "Data & Analytics"} {
		h.roles[name] = h.ph.AddRole(name)
	}

	h.db = storetest.Open(t)
	phc, err := posthog.NewClient(h.ph.URL(), h.ph.APIKey(), h.ph.OrganizationID(),
		posthog.WithRateLimit(0, 0), posthog.WithRetry(3, 5*time.Second), posthog.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := workflow.ParsePolicy("test-policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	h.api = slack.New("xoxb-test", slack.OptionAPIURL(h.slack.URL()+"/api/"))
	users := bot.NewUsers(h.api, time.Minute)
	wcfg := workflow.Config{
		Store: h.db, Directory: posthogdir.New(phc), Users: users,
		Policy: pol, Admins: []string{admin}, Logger: log,
		RetryBase: time.Millisecond, RetryMax: time.Millisecond,
	}
	bcfg := bot.Config{Slack: h.api, SigningSecret: secret, ApprovalsChannel: channel, Logger: log,
		Observe: h.events.add, WorkTimeout: 20 * time.Second, Unpaced: true, Users: users}
	for _, o := range opts {
		o(&wcfg, &bcfg)
	}
	h.svc, err = workflow.NewService(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	bcfg.Workflow = h.svc
	h.bot, err = bot.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.SetNotifier(h.bot)
	r := mux.NewRouter()
	h.bot.Routes(r)
	h.srv = httptest.NewServer(r)
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = h.bot.Wait(ctx)
	})
	return h
}

// testLogger logs to t until the test ends (background work may log later).
func testLogger(t testing.TB) zerolog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// response is an HTTP answer from the bot.
type response struct {
	status int
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %q is not JSON: %v", r.body, err)
	}
	return m
}

// post sends a signed request to the bot, as Slack would.
func (h *harness) post(path, body string) response {
	h.t.Helper()
	return h.do(slacktest.SignedRequest(secret, h.srv.URL+path, body, time.Now()))
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: b}
}

func (h *harness) command(user, text string) response {
	h.t.Helper()
	return h.post("/slack/commands", h.slack.SlashCommand(user, text).Form())
}

func (h *harness) interact(payload []byte, err error) response {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	return h.post("/slack/interactions", slacktest.InteractionForm(payload))
}

// settle waits for the bot's background work and runs every due job, until
// nothing is left to do.
func (h *harness) settle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	retries := 0
	for {
		if err := h.bot.Wait(ctx); err != nil {
			h.t.Fatalf("bot work: %v", err)
		}
		ran := false
		for {
			did, err := h.svc.RunJob(ctx)
			if err != nil {
				h.t.Fatalf("job: %v", err)
			}
			if !did {
				break
			}
			ran = true
		}
		if !ran {
			// Retried jobs come due a moment later (RetryBase is 1ms here).
			counts, err := h.db.JobCounts(ctx, time.Now())
			if err != nil {
				h.t.Fatal(err)
			}
			if counts.Queued > 0 && retries < 200 {
				retries++
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
	}
}

// openModal runs `/access text` as user and returns the modal it opened.
func (h *harness) openModal(user, text string) slacktest.View {
	h.t.Helper()
	before := len(h.slack.CallsTo("views.open"))
	res := h.command(user, text)
	if res.status != http.StatusOK || len(bytes.TrimSpace(res.body)) != 0 {
		h.t.Fatalf("/access %s: %d %s", text, res.status, res.body)
	}
	h.settle()
	if n := len(h.slack.CallsTo("views.open")); n != before+1 {
		h.t.Fatalf("/access %s: %d views.open calls, want %d", text, n, before+1)
	}
	v, ok := h.slack.LastModal(user)
	if !ok {
		h.t.Fatal("no modal opened")
	}
	return v
}

// submit submits a modal and returns the bot's answer.
//
// Slack applies the answer to the modal: one it would refuse (errors
// beside a block that is not an input, a view over its limits) fails the
// test. A modal closed already (a second submission) is not checked.
func (h *harness) submit(user string, v slacktest.View, values map[string]string) response {
	h.t.Helper()
	res := h.interact(h.slack.ViewSubmission(user, v, values))
	if res.status == http.StatusOK {
		if cur, open := h.slack.View(v.ID); open && !cur.Closed {
			if _, err := h.slack.AnswerSubmission(v.ID, res.body); err != nil {
				h.t.Errorf("Slack would refuse the answer to %s's submission: %v", user, err)
			}
		}
	}
	return res
}

// request has user ask for role through the modal and returns the stored request.
func (h *harness) request(user, role, reason, duration string) *workflow.Request {
	h.t.Helper()
	v := h.openModal(user, "request")
	res := h.submit(user, v, map[string]string{views.BlockRole: h.roles[role].ID, views.BlockReason: reason, views.BlockDuration: duration})
	if res.status != http.StatusOK || res.json(h.t)["response_action"] != "clear" {
		h.t.Fatalf("submit: %d %s", res.status, res.body)
	}
	h.settle()
	reqs, err := h.svc.ListMine(context.Background(), user, 1)
	if err != nil || len(reqs) == 0 {
		h.t.Fatalf("no request stored: %v", err)
	}
	return reqs[0]
}

// approverMessage returns the approver message about r in channel ch.
func (h *harness) approverMessage(r *workflow.Request, ch string) slacktest.Message {
	h.t.Helper()
	refs, err := h.svc.Messages(context.Background(), r.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, ref := range refs {
		if ref.Channel == ch {
			m, ok := h.slack.Message(ref.Channel, ref.TS)
			if !ok {
				h.t.Fatalf("stored message %s/%s is not in Slack", ref.Channel, ref.TS)
			}
			return m
		}
	}
	h.t.Fatalf("no message about %s in %s (refs %+v)", r.Ref(), ch, refs)
	return slacktest.Message{}
}

func (h *harness) click(user string, m slacktest.Message, actionID string) response {
	h.t.Helper()
	return h.interact(h.slack.ClickMessage(user, m, actionID, ""))
}

func (h *harness) get(id int64) *workflow.Request {
	h.t.Helper()
	r, err := h.svc.Request(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// membershipCreates counts the POSTs that create role memberships in PostHog.
func (h *harness) membershipCreates() int {
	n := 0
	for _, c := range h.ph.Calls() {
		if c.Method == http.MethodPost && strings.Contains(c.Path, "/role_memberships") {
			n++
		}
	}
	return n
}

func (h *harness) ephemeralTo(user string) []string {
	var out []string
	for _, e := range h.slack.Ephemerals(user) {
		out = append(out, e.Text+" "+string(e.Blocks))
	}
	return out
}
