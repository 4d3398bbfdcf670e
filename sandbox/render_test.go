package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func testText() text {
	names := map[string]string{"U0ALICE": "Alice Nguyen", "U0BOB": "Bob Okafor"}
	return text{
		name: func(id string) string {
			if n, ok := names[id]; ok {
				return n
			}
			return id
		},
		now: func() time.Time { return time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC) },
		loc: time.UTC,
	}
}

func TestMrkdwn(t *testing.T) {
	x := testText()
	cases := []struct{ in, want string }{
		{"*Approved* by <@U0BOB>", `<b>Approved</b> by <span class="mention" title="U0BOB">@Bob Okafor</span>`},
		{"_soon_ and ~gone~", `<i>soon</i> and <s>gone</s>`},
		{"snake_case_name stays", `snake_case_name stays`},
		{"2*3*4 is not bold", `2*3*4 is not bold`},
		{"run `/access help` now", `run <code>/access help</code> now`},
		{"```a *b*\n<c>```", "<pre>a *b*\n&lt;c&gt;</pre>"},
		{"*Reason*\n> Debug the &lt;billing&gt; funnel &amp; fix\n> second line", `<b>Reason</b><blockquote>Debug the &lt;billing&gt; funnel &amp; fix<br>second line</blockquote>`},
		{":white_check_mark: done :nosuchemoji:", `✅ done :nosuchemoji:`},
		{"<https://example.com/a?b=1&amp;c=2|the docs>", `<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">the docs</a>`},
		{"<javascript:alert(1)|click>", `&lt;javascript:alert(1)|click&gt;`},
		{"<@U0NOBODY|someone>", `<span class="mention" title="U0NOBODY">@someone</span>`},
		{"<!here> <#C0APPROVALS|approvals>", `<span class="mention">@here</span> <span class="mention">#approvals</span>`},
		{"requested <!date^1741080600^{date_short_pretty} at {time}|2025-03-04 09:30 UTC>",
			`requested <time datetime="2025-03-04T09:30:00Z" title="2025-03-04 09:30 UTC">today at 09:30</time>`},
		{"<!date^1741257000^{date_short_pretty}|x>", `<time datetime="2025-03-06T10:30:00Z" title="x">Mar 6, 2025</time>`},
		{"<!date^1741076400^{ago}|x>", `<time datetime="2025-03-04T08:20:00Z" title="x">3 hours ago</time>`},
		// Text a person typed reaches the page escaped, never as markup.
		{`"><script>alert(1)</script> &amp;lt;b&amp;gt;`, `&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt;b&amp;gt;`},
		{"a\uE0000\uE001b", `a0b`},
	}
	for _, c := range cases {
		if got := string(x.mrkdwn(c.in)); got != c.want {
			t.Errorf("mrkdwn(%q)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	if got := string(x.plain("<b> :tada:", true)); got != "&lt;b&gt; 🎉" {
		t.Errorf("plain with emoji: %s", got)
	}
	if got := string(x.plain(":tada:", false)); got != ":tada:" {
		t.Errorf("plain without emoji: %s", got)
	}
}

// golden reads one of the bot's golden Block Kit files: what the bot
// really sends.
func golden(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "bot", "views", "testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var tagRE = regexp.MustCompile(`<[^>]+>`)

// visible is the text of rendered HTML with the tags removed.
func visible(html string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(html, " ")), " ")
}

func renderMessage(t *testing.T, name string) string {
	t.Helper()
	var m struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(golden(t, name), &m); err != nil {
		t.Fatal(err)
	}
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	s.text = testText()
	bs, err := s.text.blocks(m.Blocks, surface{Kind: "message", Channel: "D0BOB", TS: "1.000001"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, "blocks", bs); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestApproverMessageRendering(t *testing.T) {
	html := renderMessage(t, "approver_pending")
	for _, want := range []string{
		`data-action="request_approve" data-value="7" data-kind="message" data-channel="D0BOB" data-ts="1.000001">Approve</button>`,
		`>Deny</button>`, `class="btn btn-primary"`, `class="btn btn-danger"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("approver message lacks %s\n%s", want, html)
		}
	}
	text := visible(html)
	for _, want := range []string{"@Alice Nguyen asks for access to Engineering", "Reason", "Approvals"} {
		if !strings.Contains(text, want) {
			t.Errorf("approver message reads %q, lacking %q", text, want)
		}
	}
	if strings.Contains(text, "<@") || strings.Contains(text, "<!date") || strings.Contains(text, "&amp;lt;") {
		t.Errorf("raw Slack markup shown: %s", text)
	}

	done := renderMessage(t, "approver_completed")
	if strings.Contains(done, "<button") {
		t.Errorf("a decided request still shows buttons:\n%s", done)
	}
}

func TestHomeAndListRendering(t *testing.T) {
	var v struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(golden(t, "home"), &v); err != nil {
		t.Fatal(err)
	}
	x := testText()
	bs, err := x.blocks(v.Blocks, surface{Kind: "view", ViewID: "V1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, b := range bs {
		types[b.Type]++
		if b.Unsupported != "" {
			t.Errorf("home block %q not rendered", b.Unsupported)
		}
	}
	if types["header"] != 3 || types["divider"] != 2 || types["context"] == 0 || types["actions"] != 1 {
		t.Errorf("home block types %v", types)
	}
	if bs[1].Accessory == nil || string(bs[1].Accessory.Label) != "Request access" || bs[1].Accessory.Surface.ViewID != "V1" {
		t.Errorf("home accessory %+v", bs[1].Accessory)
	}
}

func TestModalRendering(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.text.modal("V9", golden(t, "modal_request_prefilled"), map[string]string{"reason": "Please give a reason."})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, "modal", modalData{Me: "U0ALICE", Modal: m}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`<form class="modal" method="post" action="/as/U0ALICE/submit" data-view="V9"`,
		`<h2>Request access</h2>`,
		`<label for="el-role-1-role_select">Role</label>`,
		`<select id="el-role-1-role_select" name="role"`,
		`data-action="role_select"`, // dispatch_action: a choice goes to the bot at once
		`<label for="el-reason-2-reason_input">Why do you need it?</label><textarea id="el-reason-2-reason_input" name="reason"`,
		`<select id="el-duration-3-duration_select" name="duration" data-select="duration_select">`,
		`<div class="error" role="alert">Please give a reason.</div>`,
		`<button type="submit" class="btn btn-primary">Send request</button>`,
		`>Cancel</button>`,
		` selected>Engineering</option>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("modal lacks %s\n%s", want, html)
		}
	}

	ext, err := s.text.modal("V10", golden(t, "modal_request_external"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var role *rElement
	for _, b := range ext.Blocks {
		if b.BlockID == "role" {
			role = b.Input
		}
	}
	if role == nil || !role.External || role.Name != "role" {
		t.Fatalf("external role picker %+v", role)
	}
}

// The request modal's break-glass checkbox is a real checkbox whose form
// field is its block id, as a submission needs it.
func TestBreakGlassCheckboxRendering(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.text.modal("V11", golden(t, "modal_request_breakglass"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, "modal", modalData{Me: "U0ALICE", Modal: m}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`<label for="el-break_glass-4-breakglass_check">Emergency? <span class="muted">(optional)</span></label>`,
		`<input type="checkbox" name="break_glass" value="break_glass"> Break glass: grant it now, without approval`,
		`Emergencies only: for at most 1 hour.`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("modal lacks %s\n%s", want, html)
		}
	}
}

func TestUnknownBlocksAreShownAsSuch(t *testing.T) {
	x := testText()
	bs, err := x.blocks(json.RawMessage(`[{"type":"video","title":{"type":"plain_text","text":"x"}},{"type":"actions","elements":[{"type":"datepicker","action_id":"d"}]}]`),
		surface{Kind: "message"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bs[0].Unsupported != "video" || bs[1].Elements[0].Unsupported != "datepicker" {
		t.Errorf("unknown types not marked: %+v", bs)
	}
	if _, err := x.blocks(json.RawMessage(`{"not":"an array"}`), surface{}, nil); err == nil {
		t.Error("malformed blocks accepted")
	}
}

// TestExpiryWarningRendering: the Extend and I'm done buttons, and the
// confirmation I'm done asks for, come through as any buttons do.
func TestExpiryWarningRendering(t *testing.T) {
	html := renderMessage(t, "expiry_warning")
	for _, want := range []string{
		`data-action="grant_extend" data-value="7" data-kind="message" data-channel="D0BOB" data-ts="1.000001">Extend</button>`,
		`data-action="grant_done" data-value="7"`,
		`data-confirm-title="End this access now?" data-confirm-text="#7 ends now and you leave the role in PostHog." data-confirm-yes="End it" data-confirm-no="Keep it">I&#39;m done</button>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("expiry warning lacks %s\n%s", want, html)
		}
	}
	if text := visible(html); !strings.Contains(text, "⌛ Your access to Engineering (#7) ends") {
		t.Errorf("expiry warning reads %q", text)
	}
}
