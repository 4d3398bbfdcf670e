package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
)

// TestRequestsThatAreNotFromSlack: only signed, fresh, small requests get
// in; everything else is refused before anything is parsed or stored.
func TestRequestsThatAreNotFromSlack(t *testing.T) {
	h := newHarness(t)
	cmd := h.slack.SlashCommand(alice, "request Engineering").Form()
	submit := func() string {
		// A complete, valid submission: if any of these got through, a
		// request would be stored.
		v := h.openModal(alice, "request")
		p, err := h.slack.ViewSubmission(alice, v, map[string]string{views.BlockRole: h.roles["Engineering"].ID,
			views.BlockReason: "x", views.BlockDuration: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return slacktest.InteractionForm(p)
	}()
	h.slack.ResetCalls()
	now := time.Now()
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"unsigned command", func() *http.Request {
			r := slacktest.SignedRequest(secret, h.srv.URL+"/slack/commands", cmd, now)
			r.Header.Del("X-Slack-Signature")
			r.Header.Del("X-Slack-Request-Timestamp")
			return r
		}, http.StatusUnauthorized},
		{"wrong secret", func() *http.Request {
			return slacktest.SignedRequest("not-the-secret", h.srv.URL+"/slack/interactions", submit, now)
		}, http.StatusUnauthorized},
		{"body changed after signing", func() *http.Request {
			r := slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", submit, now)
			r2 := slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", submit+"&x=1", now)
			r2.Header = r.Header
			return r2
		}, http.StatusUnauthorized},
		{"signature without v0", func() *http.Request {
			r := slacktest.SignedRequest(secret, h.srv.URL+"/slack/commands", cmd, now)
			r.Header.Set("X-Slack-Signature", strings.TrimPrefix(r.Header.Get("X-Slack-Signature"), "v0="))
			return r
		}, http.StatusUnauthorized},
		{"stale (6 minutes old)", func() *http.Request {
			return slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", submit, now.Add(-6*time.Minute))
		}, http.StatusUnauthorized},
		{"from the future", func() *http.Request {
			return slacktest.SignedRequest(secret, h.srv.URL+"/slack/commands", cmd, now.Add(6*time.Minute))
		}, http.StatusUnauthorized},
		{"oversized", func() *http.Request {
			big := submit + "&pad=" + strings.Repeat("a", 1<<20)
			return slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", big, now)
		}, http.StatusRequestEntityTooLarge},
		{"unsigned event", func() *http.Request {
			r := slacktest.SignedRequest(secret, h.srv.URL+"/slack/events", string(slacktest.URLVerification("c")), now)
			r.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("0", 64))
			return r
		}, http.StatusUnauthorized},
		{"GET", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/slack/commands", nil)
			return r
		}, http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.do(c.req())
			if res.status != c.status {
				t.Errorf("status %d, want %d (%s)", res.status, c.status, res.body)
			}
			h.settle()
			if c.status != http.StatusMethodNotAllowed && h.events.last() != "command/rejected" &&
				h.events.last() != "block_actions/rejected" && h.events.last() != "event/rejected" {
				t.Errorf("observed %q", h.events.last())
			}
		})
	}
	if reqs, _ := h.svc.ListMine(context.Background(), alice, 5); len(reqs) != 0 {
		t.Errorf("%d requests stored", len(reqs))
	}
	if calls := h.slack.Calls(); len(calls) != 0 {
		t.Errorf("Slack was called: %v", calls[0].Method)
	}
}

// TestMalformedPayloads: signed garbage is a 400, never a panic.
func TestMalformedPayloads(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, path, body string
	}{
		{"command without user", "/slack/commands", "command=%2Faccess&text=list"},
		{"command bad form", "/slack/commands", "text=%zz"},
		{"no payload", "/slack/interactions", "foo=bar"},
		{"payload not JSON", "/slack/interactions", "payload=not-json"},
		{"payload JSON array", "/slack/interactions", "payload=%5B1%2C2%5D"},
		{"payload without type", "/slack/interactions", slacktest.InteractionForm([]byte(`{"user":{"id":"U0ALICE"}}`))},
		{"payload without user", "/slack/interactions", slacktest.InteractionForm([]byte(`{"type":"block_actions"}`))},
		{"payload wrong types", "/slack/interactions", slacktest.InteractionForm([]byte(`{"type":"block_actions","user":{"id":7},"actions":"x"}`))},
		{"approve with a bad id", "/slack/interactions", slacktest.InteractionForm([]byte(
			`{"type":"block_actions","user":{"id":"U0BOB"},"actions":[{"type":"button","action_id":"request_approve","block_id":"decision","value":"DROP TABLE"}]}`))},
		{"submission with bad metadata", "/slack/interactions", slacktest.InteractionForm([]byte(
			`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"accessbot_request","private_metadata":"{nope","state":{"values":{}}}}`))},
		{"deny without request", "/slack/interactions", slacktest.InteractionForm([]byte(
			`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"accessbot_deny","private_metadata":"{}"}}`))},
		{"options bad payload", "/slack/options", "payload=%7B"},
		{"event not JSON", "/slack/events", "{nope"},
		{"verification without challenge", "/slack/events", `{"type":"url_verification"}`},
		{"callback without event", "/slack/events", `{"type":"event_callback"}`},
		{"home opened by nobody", "/slack/events", `{"type":"event_callback","event":{"type":"app_home_opened"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.post(c.path, c.body)
			if res.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400 (%s)", res.status, res.body)
			}
		})
	}
	h.settle()
	if calls := h.slack.Calls(); len(calls) != 0 {
		t.Errorf("Slack was called: %v", calls[0].Method)
	}
}

// TestInteractionsNotOurs are acknowledged and ignored.
func TestInteractionsNotOurs(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{
		`{"type":"shortcut","user":{"id":"U0ALICE"},"callback_id":"x"}`,
		`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"someone_else"}}`,
		`{"type":"view_closed","user":{"id":"U0ALICE"},"view":{"callback_id":"accessbot_request"}}`,
		`{"type":"block_actions","user":{"id":"U0ALICE"},"actions":[{"type":"button","action_id":"unknown","block_id":"b","value":"1"}]}`,
	} {
		res := h.post("/slack/interactions", slacktest.InteractionForm([]byte(body)))
		if res.status != http.StatusOK {
			t.Errorf("%s: %d %s", body, res.status, res.body)
		}
	}
}
