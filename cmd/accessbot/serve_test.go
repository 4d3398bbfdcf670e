package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

const (
	e2eSecret = "e2e-signing-secret"
	e2eToken  = "e2e-audit-token"
	e2eAlice  = "U0ALICE01"
	e2eBob    = "U0BOB0001"
)

// world is a fake Slack and a fake PostHog for accessbot processes.
type world struct {
	t     *testing.T
	slack *slacktest.Server
	ph    *posthogtest.Server
	dir   string
	roles map[string]string
	uuids map[string]string
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, slack: slacktest.NewServer(), ph: posthogtest.NewServer(), dir: t.TempDir(),
		roles: map[string]string{}, uuids: map[string]string{}}
	t.Cleanup(w.slack.Close)
	t.Cleanup(w.ph.Close)
	for id, name := range map[string]string{e2eAlice: "alice", e2eBob: "bob"} {
		w.slack.AddUser(id, name, name+"@example.com")
		w.uuids[id] = w.ph.AddUser(name+"@example.com", name, "E2E").UUID
	}
	w.roles["Engineering"] = w.ph.AddRole("Engineering").ID
	policy := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("roles:\n  - role: Engineering\n    owners: [U0BOB0001]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) env(port int) []string {
	return []string{
		fmt.Sprintf("ACCESSBOT_LISTEN=127.0.0.1:%d", port),
		"DATABASE_URL=sqlite:" + filepath.Join(w.dir, "accessbot.db"),
		"SLACK_BOT_TOKEN=xoxb-e2e",
		"SLACK_SIGNING_SECRET=" + e2eSecret,
		"SLACK_API_URL=" + w.slack.URL() + "/api/",
		"POSTHOG_HOST=" + w.ph.URL(),
		"POSTHOG_PERSONAL_API_KEY=" + w.ph.APIKey(),
		"POSTHOG_ORGANIZATION_ID=" + w.ph.OrganizationID(),
		"ACCESSBOT_POLICY_FILE=" + filepath.Join(w.dir, "policy.yaml"),
		"ACCESSBOT_AUDIT_TOKEN=" + e2eToken,
		"ACCESSBOT_SHUTDOWN_TIMEOUT=3s",
		"ACCESSBOT_SCHEDULER_INTERVAL=200ms",
		"ACCESSBOT_LOG_LEVEL=debug",
		"PATH=" + os.Getenv("PATH"),
	}
}

// process is a running `accessbot serve`.
type process struct {
	t     *testing.T
	cmd   *exec.Cmd
	base  string // the Slack-facing listener
	admin string // the operator listener
	mu    sync.Mutex
	log   strings.Builder
	done  chan error
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs `accessbot serve` and waits until it serves.
func (w *world) start(extra ...string) *process {
	w.t.Helper()
	port, adminPort := freePort(w.t), freePort(w.t)
	p := &process{t: w.t, base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Env = append(append(w.env(port), fmt.Sprintf("ACCESSBOT_ADMIN_LISTEN=127.0.0.1:%d", adminPort)), extra...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "accessbot serving") {
				once.Do(func() { close(serving) })
			}
		}
	}()
	go func() { p.done <- p.cmd.Wait() }()
	w.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if w.t.Failed() {
			w.t.Logf("accessbot log:\n%s", p.logs())
		}
	})
	select {
	case <-serving:
	case err := <-p.done:
		w.t.Fatalf("accessbot exited at start: %v\n%s", err, p.logs())
	case <-time.After(60 * time.Second):
		w.t.Fatalf("accessbot did not start\n%s", p.logs())
	}
	return p
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop() time.Duration {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("accessbot exited with %v after SIGTERM\n%s", err, p.logs())
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("accessbot did not stop after SIGTERM\n%s", p.logs())
	}
	return time.Since(start)
}

func (p *process) post(path, body string) (int, string) {
	p.t.Helper()
	res, err := http.DefaultClient.Do(slacktest.SignedRequest(e2eSecret, p.base+path, body, time.Now()))
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// get asks the operator listener.
func (p *process) get(path, token string) (int, string) {
	p.t.Helper()
	return p.getFrom(p.admin, path, token)
}

func (p *process) getFrom(base, path, token string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requestEngineering has alice ask for Engineering through the modal and
// returns bob's approver message.
func (w *world) requestEngineering(p *process) slacktest.Message {
	w.t.Helper()
	if code, body := p.post("/slack/commands", w.slack.SlashCommand(e2eAlice, "request Engineering").Form()); code != 200 {
		w.t.Fatalf("/access: %d %s", code, body)
	}
	var modal slacktest.View
	waitUntil(w.t, "the modal", 10*time.Second, func() bool {
		var ok bool
		modal, ok = w.slack.LastModal(e2eAlice)
		return ok
	})
	payload, err := w.slack.ViewSubmission(e2eAlice, modal, map[string]string{views.BlockRole: w.roles["Engineering"],
		views.BlockReason: "on call", views.BlockDuration: views.DurationValue(8 * time.Hour)})
	if err != nil {
		w.t.Fatal(err)
	}
	if code, body := p.post("/slack/interactions", slacktest.InteractionForm(payload)); code != 200 || !strings.Contains(body, "clear") {
		w.t.Fatalf("submit: %d %s", code, body)
	}
	var msg slacktest.Message
	waitUntil(w.t, "bob's approver message", 10*time.Second, func() bool {
		for _, m := range w.slack.Messages(slacktest.DMChannel(e2eBob)) {
			if strings.Contains(string(m.Blocks), views.ActionApprove) {
				msg = m
				return true
			}
		}
		return false
	})
	return msg
}

func (w *world) approve(p *process, m slacktest.Message) {
	w.t.Helper()
	payload, err := w.slack.ClickMessage(e2eBob, m, views.ActionApprove, "")
	if err != nil {
		w.t.Fatal(err)
	}
	if code, body := p.post("/slack/interactions", slacktest.InteractionForm(payload)); code != 200 {
		w.t.Fatalf("approve: %d %s", code, body)
	}
}

// TestServeEndToEnd runs `accessbot serve` as a process and drives it over
// HTTP: request → approve → PostHog membership → audit export.
func TestServeEndToEnd(t *testing.T) {
	w := newWorld(t)
	p := w.start()

	// The Slack-facing listener serves Slack and liveness only; metrics,
	// readiness and the audit log are on the operator listener.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 404, "/metrics": 404, "/audit/export": 404} {
		if code, body := p.getFrom(p.base, path, e2eToken); code != want {
			t.Errorf("Slack listener GET %s = %d %s, want %d", path, code, body, want)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/audit/export": 401, "/slack/commands": 404} {
		if code, body := p.get(path, ""); code != want {
			t.Fatalf("GET %s = %d %s, want %d", path, code, body, want)
		}
	}
	if code, _ := p.get("/audit/export", "wrong-token"); code != 401 {
		t.Fatalf("wrong audit token: %d", code)
	}
	help := w.slack.SlashCommand(e2eAlice, "help").Form()
	if code, body := p.post("/slack/commands", help); code != 200 || !strings.Contains(body, "/access") {
		t.Fatalf("signed help: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+"/slack/commands", strings.NewReader(help))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Fatalf("unsigned command: %v %v", res.StatusCode, err)
	}

	msg := w.requestEngineering(p)
	w.approve(p, msg)
	waitUntil(t, "the PostHog membership", 15*time.Second, func() bool {
		return w.ph.HasMember(w.roles["Engineering"], w.uuids[e2eAlice])
	})
	var export string
	waitUntil(t, "membership_added in the audit export", 10*time.Second, func() bool {
		code, body := p.get("/audit/export?format=jsonl", e2eToken)
		export = body
		return code == 200 && strings.Contains(body, `"action":"membership_added"`)
	})
	if !strings.Contains(export, `"role_name":"Engineering"`) || !strings.Contains(export, "alice@example.com") {
		t.Fatalf("export:\n%s", export)
	}
	code, csvBody := p.get("/audit/export?format=csv&since=2000-01-01T00:00:00Z", e2eToken)
	if code != 200 || !strings.HasPrefix(csvBody, "seq,time,actor") {
		t.Fatalf("csv export: %d %s", code, csvBody)
	}
	if code, body := p.get("/audit/export?format=jsonl&action=membership_", e2eToken); code != 200 ||
		!strings.Contains(body, `"action":"membership_added"`) || strings.Contains(body, `"action":"request_created"`) {
		t.Fatalf("export filtered by action: %d %s", code, body)
	}
	if code, _ := p.get("/audit/export?format=xml", e2eToken); code != 400 {
		t.Fatalf("bad format: %d", code)
	}
	_, metricsBody := p.get("/metrics", "")
	for _, name := range []string{"accessbot_slack_requests_total", "accessbot_slack_ack_seconds", "accessbot_posthog_calls_total",
		`accessbot_requests{state="completed"} 1`, "accessbot_jobs", "accessbot_job_runs_total", "accessbot_audit_entries",
		"accessbot_revocations_overdue 0"} {
		if !strings.Contains(metricsBody, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// The holder ends the grant with /access done: PostHog's membership goes.
	if code, body := p.post("/slack/commands", w.slack.SlashCommand(e2eAlice, "done 1").Form()); code != 200 {
		t.Fatalf("/access done: %d %s", code, body)
	}
	waitUntil(t, "the membership deleted by /access done", 15*time.Second, func() bool {
		return !w.ph.HasMember(w.roles["Engineering"], w.uuids[e2eAlice])
	})
	if strings.Contains(p.logs(), w.ph.APIKey()) || strings.Contains(p.logs(), e2eSecret) || strings.Contains(p.logs(), e2eToken) {
		t.Fatal("a secret appears in the log")
	}
	if d := p.stop(); d > 10*time.Second {
		t.Fatalf("shutdown took %v", d)
	}

	// The CLI reads the same database.
	env := w.env(0)
	code, out, errOut := runCLI(t, env, "audit", "verify")
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %d %s %s", code, out, errOut)
	}
	outFile := filepath.Join(w.dir, "audit.csv")
	if code, _, errOut := runCLI(t, env, "audit", "export", "--format", "csv", "--out", outFile); code != 0 {
		t.Fatalf("audit export: %d %s", code, errOut)
	}
	if b, err := os.ReadFile(outFile); err != nil || !strings.Contains(string(b), "membership_added") {
		t.Fatalf("exported file: %v\n%s", err, b)
	}
	code, out, errOut = runCLI(t, env, "audit", "export", "--format", "jsonl", "--action", "request_")
	if code != 0 || !strings.Contains(out, `"action":"request_created"`) || strings.Contains(out, "membership_added") {
		t.Fatalf("audit export --action request_: %d %s %s", code, out, errOut)
	}
}

// TestSIGTERMMidFlightLosesNothing stops the process while PostHog is
// answering slowly; the interrupted job completes after a restart, once.
func TestSIGTERMMidFlightLosesNothing(t *testing.T) {
	w := newWorld(t)
	p := w.start()
	msg := w.requestEngineering(p)
	w.ph.SetLatency(30 * time.Second)
	w.approve(p, msg)
	waitUntil(t, "execution to reach PostHog", 10*time.Second, func() bool {
		return strings.Contains(p.logs(), "execution_started") || strings.Contains(p.logs(), "approval recorded")
	})
	time.Sleep(300 * time.Millisecond) // the worker is now waiting on PostHog
	if d := p.stop(); d > 8*time.Second {
		t.Fatalf("shutdown took %v with a job in flight", d)
	}
	if !strings.Contains(p.logs(), "execution interrupted by shutdown; job released") {
		t.Fatalf("the in-flight job was not released on shutdown:\n%s", p.logs())
	}
	w.ph.SetLatency(0)

	p2 := w.start()
	waitUntil(t, "the membership after restart", 20*time.Second, func() bool {
		return w.ph.HasMember(w.roles["Engineering"], w.uuids[e2eAlice])
	})
	waitUntil(t, "the request to complete", 10*time.Second, func() bool {
		_, body := p2.get("/audit/export?format=jsonl", e2eToken)
		return strings.Contains(body, `"action":"membership_added"`)
	})
	_, body := p2.get("/audit/export?format=jsonl", e2eToken)
	if n := strings.Count(body, `"action":"membership_added"`); n != 1 {
		t.Fatalf("%d membership_added entries", n)
	}
	if strings.Contains(body, `"action":"execution_failed"`) {
		t.Fatal("the interrupted execution was marked failed")
	}
	if n := len(w.ph.Memberships(w.roles["Engineering"])); n != 1 {
		t.Fatalf("%d memberships in PostHog", n)
	}
	p2.stop()
}

func TestServeRefusesInvalidPolicy(t *testing.T) {
	w := newWorld(t)
	bad := filepath.Join(w.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("roles:\n  - role: Engineering\n    approvals_required: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(w.env(freePort(t)), "ACCESSBOT_POLICY_FILE="+bad)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad+":3:") || !strings.Contains(string(out), "approvals_required") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// A policy entry for a role renamed in PostHog since the last start stops
// start-up in one line naming the new name; one PostHog never had, too.
func TestServeRefusesPolicyRoleRenamedOrUnknownInPostHog(t *testing.T) {
	w := newWorld(t)
	w.start().stop() // binds Engineering to its id
	ph, err := posthog.NewClient(w.ph.URL(), w.ph.APIKey(), w.ph.OrganizationID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ph.Roles.Update(context.Background(), w.roles["Engineering"], "Eng"); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(w.dir, "policy.yaml")
	cmd := exec.Command(binary, "serve")
	cmd.Env = w.env(freePort(t))
	out, err := cmd.CombinedOutput()
	want := policy + `:2:11: role "Engineering" was renamed to "Eng" in PostHog; update ` + policy + ":2"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("err %v, output:\n%s\nwant a line with %s", err, out, want)
	}
	if err := os.WriteFile(policy, []byte("roles:\n  - role: Sales\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(binary, "serve")
	cmd.Env = w.env(freePort(t))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), policy+`:2:11: PostHog has no role "Sales" (it has "Eng")`) {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestServeRefusesBadPostHogKey(t *testing.T) {
	w := newWorld(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(w.env(freePort(t)), "POSTHOG_PERSONAL_API_KEY=phx_wrong")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "POSTHOG_PERSONAL_API_KEY was refused") || strings.Contains(string(out), "phx_wrong") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
