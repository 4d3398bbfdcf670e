package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startTestSandbox runs `accessbot sandbox` on a free port.
func startTestSandbox(t *testing.T, scenario string) *runningSandbox {
	t.Helper()
	sb, err := startSandbox(context.Background(), "127.0.0.1:0", scenario, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return sb
}

// page acts on the sandbox page as its script does.
type page struct {
	t    *testing.T
	base string
}

func (p page) post(user, path string, form url.Values) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.base+"/as/"+user+path, strings.NewReader(form.Encode()))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Sandbox", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (p page) get(path string) (int, string) {
	p.t.Helper()
	res, err := http.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (p page) command(user, line string) {
	p.t.Helper()
	if code, body := p.post(user, "/command", url.Values{"command": {line}}); code != http.StatusNoContent {
		p.t.Fatalf("command %q: HTTP %d %s", line, code, body)
	}
}

// panes returns user's panes' HTML by name.
func (p page) panes(user string) map[string]string {
	p.t.Helper()
	code, body := p.get("/as/" + user + "/panes")
	if code != http.StatusOK {
		p.t.Fatalf("panes: HTTP %d %s", code, body)
	}
	var raw map[string]struct{ HTML string }
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		p.t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range raw {
		out[k] = v.HTML
	}
	return out
}

var tags = regexp.MustCompile(`<[^>]+>`)

// text is what a person reads in some HTML.
func text(html string) string {
	s := tags.ReplaceAllString(html, " ")
	s = strings.NewReplacer("&#39;", "'", "&#34;", `"`, "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// wait polls user's pane until cond holds of its HTML, and returns it.
func (p page) wait(user, pane, what string, cond func(html string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var html string
	for time.Now().Before(deadline) {
		html = p.panes(user)[pane]
		if cond(html) {
			return html
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s's %s pane never showed %s; it reads:\n%s", user, pane, what, text(html))
	return ""
}

func (p page) waitText(user, pane, want string) string {
	p.t.Helper()
	return p.wait(user, pane, "“"+want+"”", func(html string) bool { return strings.Contains(text(html), want) })
}

var (
	viewIDRE   = regexp.MustCompile(`data-view="(V[0-9]+)"`)
	approveRE  = regexp.MustCompile(`data-action="request_approve" data-value="([0-9]+)" data-kind="message" data-channel="([^"]+)" data-ts="([^"]+)"`)
	roleOptRE  = regexp.MustCompile(`<option value="([^"]+)" selected>Engineering</option>`)
	engMembers = regexp.MustCompile(`Engineering <span class="count">[0-9]+</span></div><ul class="members">(.*?)</ul>`)
)

func engineering(html string) string {
	m := engMembers.FindStringSubmatch(html)
	if m == nil {
		return ""
	}
	return text(m[1])
}

// TestSandboxFlow is the newcomer's path through the page's endpoints:
// Alice asks through the modal, Bob approves, PostHog shows the
// membership, Bob revokes it, and the audit log verifies.
func TestSandboxFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	sb := startTestSandbox(t, "default")
	p := page{t, sb.url}

	code, index := p.get("/")
	if code != http.StatusOK {
		t.Fatalf("index: %d", code)
	}
	for _, want := range []string{`href="/as/U0ALICE01"`, `href="/as/U0BOB0001"`, `href="/as/U0ADMIN01"`, "Alice Nguyen", "What to try"} {
		if !strings.Contains(index, want) {
			t.Errorf("index lacks %s", want)
		}
	}
	code, alicePage := p.get("/as/" + demoAlice)
	if code != http.StatusOK || !strings.Contains(alicePage, `<input type="text" name="command"`) ||
		!strings.Contains(alicePage, `<button type="submit" class="btn btn-primary">Send</button>`) {
		t.Fatalf("Alice's page (HTTP %d) lacks the command box:\n%s", code, alicePage)
	}
	if code, _ := p.get("/as/U0NOBODY"); code != http.StatusNotFound {
		t.Errorf("unknown person: HTTP %d", code)
	}

	// Help is answered in the command's ack: shown to Alice only.
	p.command(demoAlice, "/access help")
	dm := p.waitText(demoAlice, "dm", "What /access can do")
	if !strings.Contains(text(dm), "Only visible to you") {
		t.Errorf("help is not marked as only visible to Alice: %s", text(dm))
	}
	p.command(demoAlice, "hello")
	p.waitText(demoAlice, "dm", "accessbot only answers its slash command here")

	// The modal: an empty reason is refused beside its field.
	p.command(demoAlice, "/access request Engineering")
	modal := p.wait(demoAlice, "modal", "the request modal", func(h string) bool { return strings.Contains(h, "Send request") })
	for _, want := range []string{`<form class="modal"`, `>Role</label>`, `>Why do you need it?</label>`, `>For how long?</label>`, `<select id=`} {
		if !strings.Contains(modal, want) {
			t.Errorf("modal lacks %s", want)
		}
	}
	view := viewIDRE.FindStringSubmatch(modal)[1]
	role := roleOptRE.FindStringSubmatch(modal)
	if role == nil {
		t.Fatalf("Engineering is not prefilled:\n%s", modal)
	}
	// Choosing a role tells the bot (dispatch_action), which offers that
	// role's durations: Incident Response's grants last at most 2 minutes.
	ir := regexp.MustCompile(`<option value="([^"]+)">Incident Response</option>`).FindStringSubmatch(modal)
	if code, body := p.post(demoAlice, "/action", url.Values{"kind": {"view"}, "view": {view}, "action_id": {"role_select"},
		"value": {ir[1]}}); code != http.StatusNoContent {
		t.Fatalf("choose a role: HTTP %d %s", code, body)
	}
	p.wait(demoAlice, "modal", "Incident Response's durations", func(h string) bool {
		return strings.Contains(h, `>2 minutes</option>`) && !strings.Contains(h, `>8 hours</option>`)
	})
	if code, body := p.post(demoAlice, "/action", url.Values{"kind": {"view"}, "view": {view}, "action_id": {"role_select"},
		"value": {role[1]}}); code != http.StatusNoContent {
		t.Fatalf("choose a role: HTTP %d %s", code, body)
	}
	p.wait(demoAlice, "modal", "Engineering's durations", func(h string) bool { return strings.Contains(h, `>8 hours</option>`) })

	code, body := p.post(demoAlice, "/submit", url.Values{"__view": {view}, "role": {role[1]}, "reason": {""}, "duration": {"8h"}})
	if code != http.StatusOK || !strings.Contains(body, `"closed":false`) || !strings.Contains(body, `"reason"`) {
		t.Fatalf("empty reason: HTTP %d %s", code, body)
	}
	p.waitText(demoAlice, "modal", "Please give a reason")
	code, body = p.post(demoAlice, "/submit", url.Values{"__view": {view}, "role": {role[1]},
		"reason": {"Debug the <checkout> funnel & INC-2231"}, "duration": {"8h"}})
	if code != http.StatusOK || !strings.Contains(body, `"closed":true`) {
		t.Fatalf("submission: HTTP %d %s", code, body)
	}
	if m := p.panes(demoAlice)["modal"]; strings.Contains(m, "<form") {
		t.Errorf("the modal is still open after a clear: %s", text(m))
	}
	p.waitText(demoAlice, "dm", "request #1")

	// Bob approves from his DM; PostHog shows Alice in Engineering.
	bob := p.wait(demoBob, "dm", "an Approve button", func(h string) bool { return approveRE.MatchString(h) })
	if !strings.Contains(text(bob), "Debug the <checkout> funnel & INC-2231") {
		t.Errorf("Bob does not read Alice's reason as she typed it: %s", text(bob))
	}
	a := approveRE.FindStringSubmatch(bob)
	if code, body := p.post(demoBob, "/action", url.Values{"kind": {"message"}, "channel": {a[2]}, "ts": {a[3]},
		"action_id": {"request_approve"}, "value": {a[1]}}); code != http.StatusNoContent {
		t.Fatalf("approve: HTTP %d %s", code, body)
	}
	p.wait(demoAlice, "posthog", "Alice in Engineering", func(h string) bool { return strings.Contains(engineering(h), "Alice Nguyen") })
	p.waitText(demoAlice, "dm", "you are now a member of Engineering")
	p.waitText(demoBob, "channel", "Approved by @Bob Okafor")

	// Bob revokes; the membership disappears and the audit log verifies.
	p.command(demoBob, "/access revoke 1")
	p.wait(demoBob, "posthog", "Alice gone from Engineering", func(h string) bool {
		return engineering(h) != "" && !strings.Contains(engineering(h), "Alice Nguyen")
	})
	audit := p.waitText(demoBob, "audit", "grant_revoked")
	if !strings.Contains(text(audit), "audit log intact") {
		t.Errorf("audit verdict: %s", text(audit))
	}

	// The App Home tab, as Bob opens it.
	if code, _ := p.post(demoBob, "/home", nil); code != http.StatusNoContent {
		t.Errorf("home: HTTP %d", code)
	}
	p.waitText(demoBob, "home", "Access to PostHog")
}

// TestSandboxTypeahead: with more roles than a static select holds, the
// role picker asks the bot's options endpoint (block_suggestion).
func TestSandboxTypeahead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	sb := startTestSandbox(t, "many-roles")
	p := page{t, sb.url}
	p.command(demoAlice, "/access request")
	modal := p.wait(demoAlice, "modal", "the request modal", func(h string) bool { return strings.Contains(h, `class="typeahead"`) })
	view := viewIDRE.FindStringSubmatch(modal)[1]
	code, body := p.post(demoAlice, "/suggest", url.Values{"__view": {view}, "action_id": {"role_select"}, "q": {"project 04"}})
	if code != http.StatusOK {
		t.Fatalf("suggest: HTTP %d %s", code, body)
	}
	var opts []struct{ Label, Value string }
	if err := json.Unmarshal([]byte(body), &opts); err != nil {
		t.Fatal(err)
	}
	if len(opts) != 10 || opts[0].Label != "Project 040" || opts[0].Value == "" {
		t.Errorf("options for “project 04”: %+v", opts)
	}
}

// TestSandboxCommand runs the subcommand as a person does: it prints the
// page's address, serves it, and stops cleanly on SIGINT (the context).
func TestSandboxCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, &cli{stdout: out, stderr: errOut}, []string{"sandbox", "--listen", "127.0.0.1:0"})
	}()
	addr := regexp.MustCompile(`running at (http://127\.0\.0\.1:[0-9]+)`)
	deadline := time.Now().Add(20 * time.Second)
	for addr.FindStringSubmatch(out.String()) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout %q, stderr %q", out.String(), errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := page{t, addr.FindStringSubmatch(out.String())[1]}
	if code, body := p.get("/"); code != http.StatusOK || !strings.Contains(body, "Alice Nguyen") {
		t.Errorf("the printed address answers HTTP %d", code)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after SIGINT; stderr %q", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sandbox did not stop after SIGINT")
	}
	code, help, _ := runCLI(t, nil, "sandbox", "--help")
	if code != 0 || !strings.Contains(help, "Scenarios: default, many-roles, quick-grants.") || !strings.Contains(help, "-listen") {
		t.Errorf("--help: exit %d\n%s", code, help)
	}
}

func TestSandboxUnknownScenario(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "sandbox", "--scenario", "nope", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, `unknown scenario "nope" (known: default, many-roles, quick-grants)`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
