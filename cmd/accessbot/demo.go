package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// The demo's cast: Slack user ids and their emails.
const (
	demoAlice = "U0ALICE01" // engineer asking for access
	demoBob   = "U0BOB0001" // owner of Engineering
	demoCarol = "U0CAROL01" // owner of Finance
	demoDave  = "U0DAVE001" // analyst
	demoAdmin = "U0ADMIN01" // bot admin
	demoChan  = "C0APPROVALS"
	demoAudit = "C0AUDITLOG"
)

const demoPolicy = `# the demo's policy file
defaults:
  owners: [U0ADMIN01]
  approvals_required: 1
  pending_expiry: 72h
  reminder_after: 24h
roles:
  - role: Engineering
    owners: [U0BOB0001]
    max_duration: 7d
  - role: Finance
    owners: [U0CAROL01]
  - role: Incident Response
    owners: [U0BOB0001]
    max_duration: 6s       # so the demo sees a grant end without waiting an hour
    expiry_warning: [4s]   # and its holder warned before it does
    break_glass: true      # /access breakglass: at once, owners alerted
    break_glass_max_duration: 1h
`

func runDemo(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "demo", "demo [--keep DIR] [--verbose]",
		"Runs accessbot end to end with no credentials and no network: starts a fake Slack and a fake\n"+
			"PostHog in this process, runs the real `serve` wiring against them, and plays a scenario\n"+
			"through the real HTTP endpoints with requests signed as Slack signs them. Prints each step,\n"+
			"the audit log and the result of `audit verify`. Exits 0 only if every step behaved as expected.")
	keep := fs.String("keep", "", "keep the demo's SQLite database in this directory")
	verbose := fs.Bool("verbose", false, "show the service's own log lines")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	d, err := startDemo(ctx, c, *keep, *verbose)
	if err != nil {
		return fail(c, "demo", err)
	}
	defer d.close()
	if err := d.play(ctx); err != nil {
		fmt.Fprintf(c.stdout, "\n✗ demo failed: %v\n", err)
		if !*verbose {
			fmt.Fprintf(c.stdout, "\nservice log (last lines):\n%s", tail(d.logs.String(), 40))
		}
		return 1
	}
	fmt.Fprintln(c.stdout, "\n✓ every step behaved as expected")
	return 0
}

// demo is a running accessbot against fakes, and the scenario's progress.
type demo struct {
	*fakeStack
	out  io.Writer
	step int
}

// demoSeed is the demo's cast, roles and policy.
func demoSeed() fakeSeed {
	return fakeSeed{
		people: []fakePerson{
			{demoAlice, "alice", "Alice", "Nguyen"}, {demoBob, "bob", "Bob", "Okafor"},
			{demoCarol, "carol", "Carol", "Schmidt"}, {demoDave, "dave", "Dave", "Silva"}, {demoAdmin, "admin", "Ada", "Admin"},
		},
		roles:     []string{"Engineering", "Finance", "Incident Response", "Viewer"},
		policy:    demoPolicy,
		admins:    []string{demoAdmin},
		channel:   demoChan,
		scheduler: 250 * time.Millisecond,
		// Signed audit checkpoints, posted to an audit channel every second.
		auditChannel: demoAudit,
		checkpoint:   time.Second,
	}
}

func startDemo(ctx context.Context, c *cli, keep string, verbose bool) (*demo, error) {
	var logOut io.Writer
	if verbose {
		logOut = c.stderr
	}
	f, err := startFakeStack(ctx, demoSeed(), keep, logOut)
	if err != nil {
		return nil, err
	}
	d := &demo{fakeStack: f, out: c.stdout}
	d.seedReview()
	fmt.Fprintf(d.out, "accessbot demo — the real service at %s (operator endpoints at %s), a fake Slack at %s, a fake PostHog at %s\n",
		d.base, d.admin, d.slack.URL(), d.ph.URL())
	fmt.Fprintf(d.out, "PostHog roles: Engineering, Finance, Incident Response, Viewer. Owners (policy.yaml): Engineering → bob, Finance → carol.\n")
	return d, nil
}

// play is the scenario. Each step checks what a person would see.
func (d *demo) play(ctx context.Context) error {
	// 1. Alice asks for Engineering.
	d.say("alice types `/access request Engineering`, gives a reason and picks 8 hours in the modal")
	eng, err := d.ask(demoAlice, "Engineering", "Debugging the checkout funnel dashboard (INC-2231)", 8*time.Hour)
	if err != nil {
		return err
	}
	bobMsg, err := d.waitMessage(slacktest.DMChannel(demoBob), "Approve")
	if err != nil {
		return fmt.Errorf("bob got no approver message: %w", err)
	}
	d.show("request %s is pending; bob (owner) gets a DM with Approve / Deny buttons:", eng)
	d.quote(shown(bobMsg))
	chanMsg, err := d.waitMessage(demoChan, "Approve")
	if err != nil {
		return fmt.Errorf("no copy in the approvals channel: %w", err)
	}
	d.show("a copy is posted to the approvals channel %s", demoChan)

	// 2. Alice tries to approve her own request from the channel copy.
	d.say("alice clicks Approve on her own request in %s", demoChan)
	if err := d.click(demoAlice, chanMsg, views.ActionApprove); err != nil {
		return err
	}
	refusal, err := d.waitEphemeral(demoAlice, "own request")
	if err != nil {
		return fmt.Errorf("self-approval was not refused: %w", err)
	}
	d.show("refused; only alice sees:")
	d.quote(refusal)
	if st := d.state(eng); st != workflow.StatePending {
		return fmt.Errorf("request %s is %s after a self-approval attempt", eng, st)
	}

	// 3. Bob approves; the membership appears in PostHog.
	d.say("bob clicks Approve in his DM")
	if err := d.click(demoBob, bobMsg, views.ActionApprove); err != nil {
		return err
	}
	if err := d.waitMember(demoAlice, "Engineering"); err != nil {
		return err
	}
	if _, err := d.waitRequest(demoAlice, "Engineering", workflow.StateCompleted); err != nil {
		return err
	}
	d.show("PostHog now lists alice as a member of Engineering (POST …/role_memberships/ made %d time(s))", d.membershipCreates())
	if err := d.waitFor("both approver messages to be updated", func() bool {
		b, _ := d.slack.Message(bobMsg.Channel, bobMsg.TS)
		ch, _ := d.slack.Message(chanMsg.Channel, chanMsg.TS)
		return b.Updates > 0 && ch.Updates > 0 && !strings.Contains(string(b.Blocks), views.ActionApprove)
	}); err != nil {
		return err
	}
	updated, _ := d.slack.Message(bobMsg.Channel, bobMsg.TS)
	d.show("every copy of the approver message is updated in place, buttons gone:")
	d.quote(shown(updated))
	if err := d.expectMessage(demoAlice, "member of", "alice is told:"); err != nil {
		return err
	}

	// 4. Dave asks for Finance; Carol denies with a reason.
	d.say("dave asks for Finance; carol clicks Deny and gives a reason")
	fin, err := d.ask(demoDave, "Finance", "Quarter-end revenue report", 0)
	if err != nil {
		return err
	}
	carolMsg, err := d.waitMessage(slacktest.DMChannel(demoCarol), "Approve")
	if err != nil {
		return err
	}
	if err := d.click(demoCarol, carolMsg, views.ActionDeny); err != nil {
		return err
	}
	denyModal, err := d.waitModal(demoCarol, views.CallbackDeny)
	if err != nil {
		return fmt.Errorf("no deny modal: %w", err)
	}
	payload, err := d.slack.ViewSubmission(demoCarol, denyModal, map[string]string{views.BlockDenyReason: "Use the finance-readonly dashboard share instead"})
	if err != nil {
		return err
	}
	if _, err := d.post("/slack/interactions", slacktest.InteractionForm(payload)); err != nil {
		return err
	}
	if _, err := d.waitRequest(demoDave, "Finance", workflow.StateDenied); err != nil {
		return err
	}
	if err := d.expectMessage(demoDave, "denied", fmt.Sprintf("request %s denied; dave is told:", fin)); err != nil {
		return err
	}
	if d.ph.HasMember(d.roles["Finance"], d.uuids[demoDave]) {
		return errors.New("a denied request changed PostHog")
	}

	// 5. A time-bound grant: warned, extended, then it ends and is revoked.
	d.say("alice asks for Incident Response, capped at 6 seconds by policy; bob approves")
	ir, err := d.ask(demoAlice, "Incident Response", "On call tonight", 6*time.Second)
	if err != nil {
		return err
	}
	irMsg, err := d.waitMessageAbout(slacktest.DMChannel(demoBob), ir)
	if err != nil {
		return err
	}
	if err := d.click(demoBob, irMsg, views.ActionApprove); err != nil {
		return err
	}
	if err := d.waitMember(demoAlice, "Incident Response"); err != nil {
		return err
	}
	d.show("granted; PostHog lists alice in Incident Response")
	warning, err := d.waitMessage(slacktest.DMChannel(demoAlice), views.ActionExtend)
	if err != nil {
		return fmt.Errorf("no expiry warning: %w", err)
	}
	d.show("4 seconds before the end (policy expiry_warning), alice is warned, with buttons:")
	d.quote(shown(warning))
	d.say("alice clicks Extend; bob approves the extension")
	if err := d.click(demoAlice, warning, views.ActionExtend); err != nil {
		return err
	}
	ext, err := d.waitMessage(slacktest.DMChannel(demoBob), "to extend their access")
	if err != nil {
		return fmt.Errorf("bob was not asked to approve the extension: %w", err)
	}
	d.show("bob gets an approver message for the extension:")
	d.quote(shown(ext))
	if err := d.click(demoBob, ext, views.ActionApprove); err != nil {
		return err
	}
	if err := d.expectMessage(demoAlice, "was extended", "the end moves (capped at 6 seconds from the approval; no PostHog call); alice is told:"); err != nil {
		return err
	}
	if _, err := d.waitRequest(demoAlice, "Incident Response", workflow.StateRevoked); err != nil {
		return err
	}
	if d.ph.HasMember(d.roles["Incident Response"], d.uuids[demoAlice]) {
		return errors.New("the revoked grant is still a PostHog membership")
	}
	if err := d.expectMessage(demoAlice, "ended", "at the new end the scheduler revokes it: the membership is gone from PostHog and alice is told:"); err != nil {
		return err
	}

	// 6 and 7. An access review and a break-glass use (demo_review.go).
	if err := d.playReviews(); err != nil {
		return err
	}

	// 8. The audit log, exported over HTTP, and its verification.
	d.say("an admin exports the audit log from the operator listener (GET /audit/export, bearer token)")
	body, err := d.get("/audit/export?format=jsonl")
	if err != nil {
		return err
	}
	entries, err := printAudit(d.out, body)
	if err != nil {
		return err
	}
	if entries < 12 || !strings.Contains(body, `"action":"membership_added"`) || !strings.Contains(body, `"action":"grant_revoked"`) ||
		!strings.Contains(body, `"action":"grant_extended"`) ||
		!strings.Contains(body, `"action":"request_denied"`) {
		return fmt.Errorf("the audit log lacks expected entries (%d entries)", entries)
	}
	if _, err := d.get("/audit/export?format=csv&since=not-a-time"); err == nil {
		return errors.New("a malformed export query was accepted")
	}
	d.say("the service signs a checkpoint of the audit log (every ACCESSBOT_AUDIT_CHECKPOINT_INTERVAL, 1s here) and posts it to the audit channel")
	msg, err := d.waitMessage(demoAudit, "Audit checkpoint")
	if err != nil {
		return err
	}
	kept, err := workflow.ParseCheckpoint([]byte(msg.Text))
	if err != nil {
		return fmt.Errorf("the audit channel's checkpoint: %w", err)
	}
	d.show("%s", tail(msg.Text, 1))
	d.say("accessbot audit verify --public-key audit-signing.key.pub --checkpoint (the message above)")
	return d.verify(ctx, workflow.VerifyOptions{PublicKey: d.pub, Kept: &kept})
}

// verify runs the same check as `accessbot audit verify` on the demo's database.
func (d *demo) verify(ctx context.Context, o workflow.VerifyOptions) error {
	rep, err := workflow.VerifyAuditWith(ctx, d.db, o)
	if err != nil {
		return err
	}
	d.show("%s", rep)
	if !rep.OK {
		return errors.New("audit chain broken")
	}
	return nil
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) show(format string, args ...any) {
	fmt.Fprintf(d.out, "   → %s\n", fmt.Sprintf(format, args...))
}

// slackMarkup matches a mention (<@U…>) or a date token (<!date^…|fallback>).
var slackMarkup = regexp.MustCompile(`<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|<!date\^[^|>]*\|([^>]*)>`)

// quote prints what Slack would show, with mentions and dates rendered.
func (d *demo) quote(text string) {
	text = slackMarkup.ReplaceAllStringFunc(text, func(m string) string {
		parts := slackMarkup.FindStringSubmatch(m)
		if parts[1] != "" {
			return "@" + d.names[parts[1]]
		}
		return parts[2]
	})
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(d.out, "     │ %s\n", line)
	}
}

// post sends a request to the service signed as Slack signs it.
func (d *demo) post(path, body string) (string, error) {
	req := slacktest.SignedRequest(d.secret, d.base+path, body, time.Now())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("POST %s: HTTP %d %s", path, res.StatusCode, b)
	}
	return string(b), nil
}

func (d *demo) get(path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, d.admin+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: HTTP %d %s", path, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// ask has user run `/access request ROLE` and submit the modal; it returns
// the pending request's ref.
func (d *demo) ask(user, role, reason string, dur time.Duration) (string, error) {
	modal, err := d.openModal(user, "request "+role)
	if err != nil {
		return "", err
	}
	if err := d.submit(user, modal, role, reason, dur); err != nil {
		return "", err
	}
	return d.waitRequest(user, role, workflow.StatePending)
}

func (d *demo) openModal(user, text string) (slacktest.View, error) {
	before, _ := d.slack.LastModal(user)
	if _, err := d.post("/slack/commands", d.slack.SlashCommand(user, text).Form()); err != nil {
		return slacktest.View{}, err
	}
	var v slacktest.View
	err := d.waitFor("the request modal to open", func() bool {
		var ok bool
		v, ok = d.slack.LastModal(user)
		return ok && v.ID != before.ID && v.CallbackID == views.CallbackRequest
	})
	return v, err
}

func (d *demo) waitModal(user, callback string) (slacktest.View, error) {
	var v slacktest.View
	err := d.waitFor("a modal", func() bool {
		var ok bool
		v, ok = d.slack.LastModal(user)
		return ok && v.CallbackID == callback
	})
	return v, err
}

func (d *demo) submit(user string, v slacktest.View, role, reason string, dur time.Duration) error {
	values := map[string]string{views.BlockRole: d.roles[role], views.BlockReason: reason, views.BlockDuration: views.DurationValue(dur)}
	payload, err := d.slack.ViewSubmission(user, v, values)
	if err != nil {
		return err
	}
	body, err := d.post("/slack/interactions", slacktest.InteractionForm(payload))
	if err != nil {
		return err
	}
	if !strings.Contains(body, `"clear"`) {
		return fmt.Errorf("the modal was not accepted: %s", body)
	}
	return nil
}

func (d *demo) click(user string, m slacktest.Message, action string) error {
	return d.clickValue(user, m, action, "")
}

// waitRequest waits for user's request for role to reach state and returns its ref.
func (d *demo) waitRequest(user, role string, state workflow.State) (string, error) {
	var ref string
	err := d.waitFor(fmt.Sprintf("%s's %s request to be %s", user, role, state), func() bool {
		var found bool
		_ = d.db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
			rs, err := tx.FindRequests(ctx, workflow.RequestFilter{RequesterID: user, RoleID: d.roles[role], Kind: workflow.KindAdd, NewestFirst: true, Limit: 1})
			if err == nil && len(rs) == 1 && rs[0].State == state {
				found, ref = true, rs[0].Ref()
			}
			return err
		})
		return found
	})
	return ref, err
}

func (d *demo) state(ref string) workflow.State {
	var id int64
	fmt.Sscanf(ref, "#%d", &id)
	var st workflow.State
	_ = d.db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
		r, err := tx.Request(ctx, id)
		if err == nil {
			st = r.State
		}
		return err
	})
	return st
}

// expectMessage waits for a DM to user mentioning want and shows it.
func (d *demo) expectMessage(user, want, intro string) error {
	m, err := d.waitMessage(slacktest.DMChannel(user), want)
	if err != nil {
		return fmt.Errorf("%s was not told: %w", user, err)
	}
	d.show("%s", intro)
	d.quote(shown(m))
	return nil
}

// shown is the text of a message as people see it: its blocks' text, or
// the fallback text when it has no blocks.
func shown(m slacktest.Message) string {
	var blocks []struct {
		Text     *struct{ Text string }  `json:"text"`
		Fields   []struct{ Text string } `json:"fields"`
		Elements []struct {
			Text any `json:"text"`
		} `json:"elements"`
	}
	if json.Unmarshal(m.Blocks, &blocks) != nil || len(blocks) == 0 {
		return m.Text
	}
	var lines []string
	for _, b := range blocks {
		if b.Text != nil {
			lines = append(lines, b.Text.Text)
		}
		for _, f := range b.Fields {
			lines = append(lines, f.Text)
		}
		for _, e := range b.Elements {
			switch t := e.Text.(type) {
			case string:
				lines = append(lines, t)
			case map[string]any:
				if s, ok := t["text"].(string); ok {
					lines = append(lines, "["+s+"]")
				}
			}
		}
	}
	return strings.Join(lines, "\n")
}

// waitMessage waits for a message in channel whose text or blocks mention want.
func (d *demo) waitMessage(channel, want string) (slacktest.Message, error) {
	var m slacktest.Message
	err := d.waitFor(fmt.Sprintf("a message in %s mentioning %q", channel, want), func() bool {
		msgs := d.slack.Messages(channel)
		for i := len(msgs) - 1; i >= 0; i-- {
			if strings.Contains(msgs[i].Text, want) || strings.Contains(string(msgs[i].Blocks), want) {
				m = msgs[i]
				return true
			}
		}
		return false
	})
	return m, err
}

func (d *demo) waitMessageAbout(channel, ref string) (slacktest.Message, error) {
	var m slacktest.Message
	err := d.waitFor("the approver message about "+ref, func() bool {
		for _, msg := range d.slack.Messages(channel) {
			if strings.Contains(msg.Text, ref) && strings.Contains(string(msg.Blocks), views.ActionApprove) {
				m = msg
				return true
			}
		}
		return false
	})
	return m, err
}

func (d *demo) waitEphemeral(user, want string) (string, error) {
	var text string
	err := d.waitFor("an ephemeral reply", func() bool {
		for _, e := range d.slack.Ephemerals(user) {
			if strings.Contains(e.Text, want) || strings.Contains(string(e.Blocks), want) {
				text = e.Text
				return true
			}
		}
		return false
	})
	return text, err
}

func (d *demo) membershipCreates() int {
	n := 0
	for _, c := range d.ph.Calls() {
		if c.Method == http.MethodPost && strings.Contains(c.Path, "role_memberships") {
			n++
		}
	}
	return n
}

// waitMember waits for PostHog to list user as a member of role.
func (d *demo) waitMember(user, role string) error {
	return d.waitFor(d.names[user]+" to join "+role+" in PostHog", func() bool {
		return d.ph.HasMember(d.roles[role], d.uuids[user])
	})
}

func (d *demo) waitFor(what string, cond func() bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("timed out waiting for %s", what)
}

// printAudit prints a JSON Lines export as a table and returns its length.
func printAudit(w io.Writer, jsonl string) (int, error) {
	n := 0
	fmt.Fprintf(w, "   %-4s %-8s %-26s %-6s %-18s %-18s %s\n", "seq", "time", "action", "req", "actor", "role", "hash")
	for _, line := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var e struct {
			Seq       int64  `json:"seq"`
			Time      string `json:"time"`
			Actor     string `json:"actor"`
			Email     string `json:"actor_email"`
			Action    string `json:"action"`
			RequestID int64  `json:"request_id"`
			RoleName  string `json:"role_name"`
			Hash      string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return n, fmt.Errorf("audit export line %q: %w", line, err)
		}
		n++
		actor := e.Actor
		if e.Email != "" {
			actor = e.Email
		}
		req := ""
		if e.RequestID != 0 {
			req = fmt.Sprintf("#%d", e.RequestID)
		}
		t := e.Time
		if len(t) >= 19 {
			t = t[11:19]
		}
		fmt.Fprintf(w, "   %-4d %-8s %-26s %-6s %-18s %-18s %s…\n", e.Seq, t, e.Action, req, trunc(actor, 18), trunc(e.RoleName, 18), e.Hash[:12])
	}
	return n, nil
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
