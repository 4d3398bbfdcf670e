package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawCall posts a Web API method with form params, as slack-go does, and
// returns Slack's error ("" when ok).
func rawCall(t *testing.T, s *Server, method string, params url.Values) string {
	t.Helper()
	params.Set("token", "xoxb-test")
	res, err := http.PostForm(s.URL()+"/api/"+method, params)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Error
}

func plainText(s string) map[string]any { return map[string]any{"type": "plain_text", "text": s} }

func opt(v string) map[string]any { return map[string]any{"text": plainText(v), "value": v} }

func options(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = opt(fmt.Sprint("o", i))
	}
	return out
}

func input(id string, el map[string]any) map[string]any {
	return map[string]any{"type": "input", "block_id": id, "label": plainText("Label"), "element": el}
}

// TestViewLimits: views.open, views.update and views.publish refuse a view
// the way Slack does: over a view object's limits (title, submit and close
// at most 24 characters, private_metadata 3,000, callback_id 255; a modal
// with an input block needs a submit button; title, submit and close are
// plain_text), and blocks or elements over Block Kit's (a static select
// offers 1 to 100 options, or groups of them, and its initial option is
// one of them; checkboxes 1 to 10; block_id 1 to 255 characters), all with
// invalid_arguments: views.* do not answer invalid_blocks as chat.* do.
func TestViewLimits(t *testing.T) {
	s := NewServer()
	defer s.Close()
	text := map[string]any{"type": "plain_text_input", "action_id": "a"}
	modal := func(edit func(v map[string]any)) map[string]any {
		v := map[string]any{"type": "modal", "title": plainText("Request access"), "submit": plainText("Send"),
			"close": plainText("Cancel"), "callback_id": "cb", "blocks": []any{input("b", text)}}
		edit(v)
		return v
	}
	withBlocks := func(blocks ...any) func(map[string]any) {
		return func(v map[string]any) { v["blocks"] = blocks }
	}
	selectOf := func(typ string, opts []any, initial any) map[string]any {
		el := map[string]any{"type": typ, "action_id": "pick", "options": opts}
		if initial != nil {
			el["initial_option"] = initial
		}
		return el
	}
	grouped := func(initial any) map[string]any {
		return map[string]any{"type": "static_select", "action_id": "pick", "initial_option": initial,
			"option_groups": []any{map[string]any{"label": plainText("G"), "options": options(3)}}}
	}
	cases := []struct {
		name string
		view map[string]any
		want string
	}{
		{"fits", modal(func(map[string]any) {}), ""},
		{"title of 24", modal(func(v map[string]any) { v["title"] = plainText(strings.Repeat("t", 24)) }), ""},
		{"title of 25", modal(func(v map[string]any) { v["title"] = plainText(strings.Repeat("t", 25)) }), "invalid_arguments"},
		{"no title", modal(func(v map[string]any) { delete(v, "title") }), "invalid_arguments"},
		{"mrkdwn title", modal(func(v map[string]any) { v["title"] = map[string]any{"type": "mrkdwn", "text": "T"} }), "invalid_arguments"},
		{"submit of 25", modal(func(v map[string]any) { v["submit"] = plainText(strings.Repeat("s", 25)) }), "invalid_arguments"},
		{"close of 25", modal(func(v map[string]any) { v["close"] = plainText(strings.Repeat("c", 25)) }), "invalid_arguments"},
		{"input without submit", modal(func(v map[string]any) { delete(v, "submit") }), "invalid_arguments"},
		{"no input, no submit", modal(func(v map[string]any) {
			delete(v, "submit")
			v["blocks"] = []any{map[string]any{"type": "section", "text": plainText("hi")}}
		}), ""},
		{"private_metadata of 3000", modal(func(v map[string]any) { v["private_metadata"] = strings.Repeat("m", 3000) }), ""},
		{"private_metadata of 3001", modal(func(v map[string]any) { v["private_metadata"] = strings.Repeat("m", 3001) }), "invalid_arguments"},
		{"callback_id of 256", modal(func(v map[string]any) { v["callback_id"] = strings.Repeat("c", 256) }), "invalid_arguments"},
		{"select of 100", modal(withBlocks(input("b", selectOf("static_select", options(100), nil)))), ""},
		{"select of 101", modal(withBlocks(input("b", selectOf("static_select", options(101), nil)))), "invalid_arguments"},
		{"select of none", modal(withBlocks(input("b", selectOf("static_select", options(0), nil)))), "invalid_arguments"},
		{"initial option offered", modal(withBlocks(input("b", selectOf("static_select", options(3), opt("o1"))))), ""},
		{"initial option not offered", modal(withBlocks(input("b", selectOf("static_select", options(3), opt("o9"))))), "invalid_arguments"},
		{"checkboxes of 11", modal(withBlocks(input("b", selectOf("checkboxes", options(11), nil)))), "invalid_arguments"},
		{"checkboxes of none", modal(withBlocks(input("b", selectOf("checkboxes", options(0), nil)))), "invalid_arguments"},
		{"empty block_id", modal(withBlocks(input("", text))), "invalid_arguments"},
		{"block_id of 256", modal(withBlocks(input(strings.Repeat("b", 256), text))), "invalid_arguments"},
		{"input without label", modal(withBlocks(map[string]any{"type": "input", "block_id": "b", "element": text})), "invalid_arguments"},
		{"mrkdwn submit", modal(func(v map[string]any) { v["submit"] = map[string]any{"type": "mrkdwn", "text": "Send"} }), "invalid_arguments"},
		{"no blocks", modal(func(v map[string]any) { delete(v, "blocks") }), "invalid_arguments"},
		{"grouped initial option offered", modal(withBlocks(input("b", grouped(opt("o1"))))), ""},
		{"grouped initial option not offered", modal(withBlocks(input("b", grouped(opt("o9"))))), "invalid_arguments"},
		{"max_length over 3000", modal(withBlocks(input("b", map[string]any{"type": "plain_text_input", "action_id": "a", "max_length": 3001}))), "invalid_arguments"},
		{"placeholder of 151", modal(withBlocks(input("b", map[string]any{"type": "plain_text_input", "action_id": "a", "placeholder": plainText(strings.Repeat("p", 151))}))), "invalid_arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := json.Marshal(c.view)
			if got := rawCall(t, s, "views.open", url.Values{"trigger_id": {s.NewTrigger("U1")}, "view": {string(raw)}}); got != c.want {
				t.Fatalf("views.open answered %q, want %q", got, c.want)
			}
		})
	}
	// views.update holds an update to the same rules.
	raw, _ := json.Marshal(cases[0].view)
	if got := rawCall(t, s, "views.open", url.Values{"trigger_id": {s.NewTrigger("U1")}, "view": {string(raw)}}); got != "" {
		t.Fatal(got)
	}
	v, _ := s.LastModal("U1")
	bad, _ := json.Marshal(modal(func(v map[string]any) { v["title"] = plainText(strings.Repeat("t", 25)) }))
	if got := rawCall(t, s, "views.update", url.Values{"view_id": {v.ID}, "view": {string(bad)}}); got != "invalid_arguments" {
		t.Errorf("views.update with a long title: %q", got)
	}
	// A home tab has no title, but the same metadata and callback limits.
	home := func(meta string) string {
		b, _ := json.Marshal(map[string]any{"type": "home", "private_metadata": meta, "blocks": []any{}})
		return string(b)
	}
	if got := rawCall(t, s, "views.publish", url.Values{"user_id": {"U1"}, "view": {home("m")}}); got != "" {
		t.Errorf("home: %q", got)
	}
	if got := rawCall(t, s, "views.publish", url.Values{"user_id": {"U1"}, "view": {home(strings.Repeat("m", 3001))}}); got != "invalid_arguments" {
		t.Errorf("home with 3001 characters of metadata: %q", got)
	}
}

// TestResponseURLLimits: a response_url takes five posts within 30 minutes,
// as Slack's does; past either it answers 404.
func TestResponseURLLimits(t *testing.T) {
	s := NewServer()
	defer s.Close()
	post := func(u string) (int, string) {
		t.Helper()
		res, err := http.Post(u, "application/json", strings.NewReader(`{"text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, res.Body)
		return res.StatusCode, strings.TrimSpace(b.String())
	}
	u := s.SlashCommand("U1", "").ResponseURL
	res, err := http.Post(u, "application/json", strings.NewReader(`{"response_type":"ephemeral"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("a post with neither text nor blocks: %d", res.StatusCode)
	}
	for i := 1; i <= ResponseURLUses; i++ {
		if code, body := post(u); code != http.StatusOK {
			t.Fatalf("post %d: %d %s", i, code, body)
		}
	}
	if code, body := post(u); code != http.StatusNotFound || body != "used_url" {
		t.Errorf("post %d: %d %s", ResponseURLUses+1, code, body)
	}
	if n := len(s.Ephemerals("U1")); n != ResponseURLUses {
		t.Errorf("%d ephemerals shown, want %d", n, ResponseURLUses)
	}
	s.SetResponseURLTTL(10 * time.Millisecond)
	old := s.SlashCommand("U1", "").ResponseURL
	time.Sleep(20 * time.Millisecond)
	if code, body := post(old); code != http.StatusNotFound || body != "expired_url" {
		t.Errorf("post after the TTL: %d %s", code, body)
	}
}
