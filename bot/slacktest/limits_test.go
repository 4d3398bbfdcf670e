package slacktest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// TestRateLimitsLikeSlack: over a method's tier the fake answers 429 with
// Retry-After, per method, and chat.postMessage per channel.
func TestRateLimitsLikeSlack(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.LimitLikeSlack()
	api := client(s)
	ctx := context.Background()
	ch, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
	if err != nil {
		t.Fatal(err)
	}
	var rl *slack.RateLimitedError
	n := 0
	for ; n < 20; n++ {
		if _, _, _, err = api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("x", false)); err != nil {
			break
		}
	}
	if n != SlackLimits["chat.update"].Burst || !errors.As(err, &rl) || rl.RetryAfter < time.Second {
		t.Fatalf("chat.update: %d went, then %v", n, err)
	}
	if s.RateLimited("chat.update") != 1 {
		t.Errorf("counted %d", s.RateLimited("chat.update"))
	}
	// Another method, and another channel, are not held back.
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, _, err = api.PostMessageContext(ctx, "C1", slack.MsgOptionText("more", false)); err != nil {
			break
		}
	}
	if !errors.As(err, &rl) {
		t.Fatalf("chat.postMessage per channel: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Fatalf("another channel: %v", err)
	}
}

// TestMessageTextLimit: more than 12,000 characters of block text is
// refused with msg_blocks_too_long.
func TestMessageTextLimit(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	var blocks []slack.Block
	for i := 0; i < 5; i++ {
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("x", 2500), false, false), nil, nil))
	}
	_, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionBlocks(blocks...))
	if err == nil || err.Error() != "msg_blocks_too_long" {
		t.Fatalf("12,500 characters: %v", err)
	}
	if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionBlocks(blocks[:4]...)); err != nil {
		t.Fatalf("10,000 characters: %v", err)
	}
}

// TestBlockLimits: a block over one of Block Kit's limits (section text,
// header text, button text, element counts) is refused with
// invalid_blocks; one at the limit is taken.
func TestBlockLimits(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	text := func(typ string, n int) *slack.TextBlockObject {
		return slack.NewTextBlockObject(typ, strings.Repeat("x", n), false, false)
	}
	text1 := func() *slack.TextBlockObject { return text(slack.PlainTextType, 1) }
	button := func(n int) slack.BlockElement {
		return slack.NewButtonBlockElement("a", "v", text(slack.PlainTextType, n))
	}
	option := func(text, description *slack.TextBlockObject) slack.Block {
		opt := slack.NewOptionBlockObject("v", text, description)
		return slack.NewInputBlock("b", text1(), nil, slack.NewCheckboxGroupsBlockElement("a", opt))
	}
	confirmed := func(n int) slack.Block {
		b := slack.NewButtonBlockElement("a", "v", text(slack.PlainTextType, 1))
		b.WithConfirm(slack.NewConfirmationBlockObject(text(slack.PlainTextType, 1), text(slack.PlainTextType, n),
			text(slack.PlainTextType, 1), text(slack.PlainTextType, 1)))
		return slack.NewActionBlock("", b)
	}
	// ok is at a limit, over is past it (or below a minimum: Slack refuses
	// empty texts and blocks without their content as well).
	cases := []struct {
		name     string
		ok, over slack.Block
	}{
		{"section text", slack.NewSectionBlock(text(slack.MarkdownType, 3000), nil, nil), slack.NewSectionBlock(text(slack.MarkdownType, 3001), nil, nil)},
		{"empty section text", slack.NewSectionBlock(text(slack.MarkdownType, 1), nil, nil), slack.NewSectionBlock(text(slack.MarkdownType, 0), nil, nil)},
		{"section without text or fields", slack.NewSectionBlock(nil, []*slack.TextBlockObject{text1()}, nil), slack.NewSectionBlock(nil, nil, nil)},
		{"section field", slack.NewSectionBlock(nil, []*slack.TextBlockObject{text(slack.MarkdownType, 2000)}, nil),
			slack.NewSectionBlock(nil, []*slack.TextBlockObject{text(slack.MarkdownType, 2001)}, nil)},
		{"header", slack.NewHeaderBlock(text(slack.PlainTextType, 150)), slack.NewHeaderBlock(text(slack.PlainTextType, 151))},
		{"empty header", slack.NewHeaderBlock(text1()), slack.NewHeaderBlock(text(slack.PlainTextType, 0))},
		{"button", slack.NewActionBlock("", button(75)), slack.NewActionBlock("", button(76))},
		{"empty button", slack.NewActionBlock("", button(1)), slack.NewActionBlock("", button(0))},
		{"actions without elements", slack.NewActionBlock("", button(1)), slack.NewActionBlock("")},
		{"context without elements", slack.NewContextBlock("", text1()), slack.NewContextBlock("")},
		{"accessory", slack.NewSectionBlock(text(slack.MarkdownType, 1), nil, slack.NewAccessory(button(75).(*slack.ButtonBlockElement))),
			slack.NewSectionBlock(text(slack.MarkdownType, 1), nil, slack.NewAccessory(button(76).(*slack.ButtonBlockElement)))},
		{"confirm text", confirmed(300), confirmed(301)},
		{"option description", option(text1(), text(slack.PlainTextType, 75)), option(text1(), text(slack.PlainTextType, 76))},
		{"empty option text", option(text1(), nil), option(text(slack.PlainTextType, 0), nil)},
	}
	for _, c := range cases {
		if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionBlocks(c.ok)); err != nil {
			t.Errorf("%s at the limit: %v", c.name, err)
		}
		if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionBlocks(c.over)); err == nil || err.Error() != "invalid_blocks" {
			t.Errorf("%s over the limit: %v", c.name, err)
		}
	}
	var els []slack.MixedElement
	for range 11 {
		els = append(els, text(slack.PlainTextType, 1))
	}
	if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionBlocks(slack.NewContextBlock("", els...))); err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("11 context elements: %v", err)
	}
}

// TestRefusedTokens: a token that is not a Slack token, or one the test
// refuses, gets Slack's error from auth.test and apps.connections.open;
// auth.test reports the token's scopes.
func TestRefusedTokens(t *testing.T) {
	s := NewServer()
	defer s.Close()
	ctx := context.Background()
	bad := slack.New("notatoken", slack.OptionAPIURL(s.URL()+"/api/"))
	if _, err := bad.AuthTestContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("notatoken: %v", err)
	}
	app := slack.New("xoxb-x", slack.OptionAPIURL(s.URL()+"/api/"), slack.OptionAppLevelToken("xapp-1"))
	s.RefuseToken("xapp-1", "account_inactive")
	if _, _, err := app.StartSocketModeContext(ctx); err == nil || err.Error() != "account_inactive" {
		t.Errorf("refused app token: %v", err)
	}
	s.RefuseToken("xapp-1", "")
	if _, _, err := app.StartSocketModeContext(ctx); err != nil {
		t.Errorf("accepted again: %v", err)
	}
	s.SetScopes([]string{"chat:write"})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/auth.test", nil)
	req.Header.Set("Authorization", "Bearer xoxb-x")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-OAuth-Scopes"); got != "chat:write" {
		t.Errorf("scopes %q", got)
	}
}

// TestScopesLikeSlack: a method whose scope the bot token lacks answers
// missing_scope, and users.info leaves out the email without
// users:read.email, as Slack does.
func TestScopesLikeSlack(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.AddUser("U1", "ana", "ana@example.com")
	ctx := context.Background()
	api := slack.New("xoxb-x", slack.OptionAPIURL(s.URL()+"/api/"))
	if u, err := api.GetUserInfoContext(ctx, "U1"); err != nil || u.Profile.Email != "ana@example.com" {
		t.Fatalf("default scopes: %v %+v", err, u)
	}
	s.SetScopes([]string{"users:read", "im:write"})
	if u, err := api.GetUserInfoContext(ctx, "U1"); err != nil || u.Profile.Email != "" {
		t.Errorf("without users:read.email: %v, email %q", err, u.Profile.Email)
	}
	if _, err := api.GetUserByEmailContext(ctx, "ana@example.com"); err == nil || err.Error() != "missing_scope" {
		t.Errorf("lookupByEmail without users:read.email: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err == nil || err.Error() != "missing_scope" {
		t.Errorf("postMessage without chat:write: %v", err)
	}
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); err != nil {
		t.Errorf("conversations.open with im:write: %v", err)
	}
	// A 1:1 DM needs im:write; the scopes for channels and group DMs do not do.
	s.SetScopes([]string{"channels:manage", "groups:write", "mpim:write"})
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); err == nil || err.Error() != "missing_scope" {
		t.Errorf("conversations.open of a DM without im:write: %v", err)
	}
}

// TestSocketFrameLimit: an acknowledgement over 20 KiB closes the
// connection and is never delivered.
func TestSocketFrameLimit(t *testing.T) {
	s := NewServer()
	defer s.Close()
	conn := openSocket(t, s)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() {
		var env struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if conn.ReadJSON(&env) == nil {
			_ = conn.WriteJSON(map[string]any{"envelope_id": env.EnvelopeID, "payload": map[string]string{"text": strings.Repeat("x", MaxSocketFrameBytes)}})
		}
	}()
	if _, err := s.PushEnvelope(ctx, "slash_commands", map[string]string{"command": "/access"}); err == nil {
		t.Fatal("an oversized ack was delivered")
	}
	if s.OversizedFrames() != 1 {
		t.Errorf("%d oversized frames", s.OversizedFrames())
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.OpenSockets() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.OpenSockets() != 0 {
		t.Error("the connection stayed open")
	}
}

// TestSocketAckDeadline: an envelope acked after 3 seconds is refused as
// Slack refuses it (the person saw an error; the late payload is dropped),
// and one acked in time is delivered.
func TestSocketAckDeadline(t *testing.T) {
	s := NewServer()
	defer s.Close()
	conn := openSocket(t, s)
	defer conn.Close()
	delays := make(chan time.Duration, 2)
	delays <- AckDeadline + 200*time.Millisecond
	delays <- 0
	go func() {
		for {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if conn.ReadJSON(&env) != nil {
				return
			}
			time.Sleep(<-delays)
			_ = conn.WriteJSON(map[string]any{"envelope_id": env.EnvelopeID, "payload": map[string]string{"text": "hi"}})
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.PushEnvelope(ctx, "slash_commands", map[string]string{"command": "/access"}); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("late ack: %v, want ErrAckTimeout", err)
	}
	if ack, err := s.PushEnvelope(ctx, "slash_commands", map[string]string{"command": "/access"}); err != nil || !strings.Contains(string(ack.Payload), "hi") {
		t.Fatalf("ack in time: %+v, %v", ack, err)
	}
}

// openSocket opens a Socket Mode connection to s as an app would and reads
// its hello.
func openSocket(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	api := client(s)
	slack.OptionAppLevelToken("xapp-1")(api)
	_, url, err := api.StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	var hello map[string]any
	if err := conn.ReadJSON(&hello); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn
}

// TestConnectionsOpenIsTier1: apps.connections.open is Tier 1 (1+ a
// minute, a small burst): a third connection in a row waits most of a
// minute.
func TestConnectionsOpenIsTier1(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.LimitLikeSlack()
	api := slack.New("xoxb-test", slack.OptionAPIURL(s.URL()+"/api/"), slack.OptionAppLevelToken("xapp-1-test"))
	ctx := context.Background()
	for i := 0; i < SlackLimits["apps.connections.open"].Burst; i++ {
		if _, _, err := api.StartSocketModeContext(ctx); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	var rl *slack.RateLimitedError
	if _, _, err := api.StartSocketModeContext(ctx); !errors.As(err, &rl) || rl.RetryAfter < 30*time.Second {
		t.Fatalf("a third connection at once: %v", err)
	}
}
