package slacktest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func client(s *Server) *slack.Client {
	return slack.New("xoxb-test", slack.OptionAPIURL(s.URL()+"/api/"))
}

func TestWebAPIShapes(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.AddUser("U0ALICE", "alice", "alice@example.com")
	api := client(s)
	ctx := context.Background()

	auth, err := api.AuthTestContext(ctx)
	if err != nil || auth.UserID != BotUserID || auth.TeamID != TeamID {
		t.Fatalf("auth.test %+v %v", auth, err)
	}
	u, err := api.GetUserInfoContext(ctx, "U0ALICE")
	if err != nil || u.Profile.Email != "alice@example.com" {
		t.Fatalf("users.info %+v %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}
	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil || ch.ID != "D0ALICE" {
		t.Fatalf("conversations.open %+v %v", ch, err)
	}

	// A DM to a user id lands in their D… channel.
	blocks := slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "hi <@U0ALICE>", false, false), nil, nil))
	c, ts, err := api.PostMessageContext(ctx, "U0ALICE", slack.MsgOptionText("hi", false), blocks)
	if err != nil || c != "D0ALICE" || ts == "" {
		t.Fatalf("chat.postMessage %q %q %v", c, ts, err)
	}
	m, ok := s.Message("D0ALICE", ts)
	if !ok || m.Text != "hi" || !strings.Contains(string(m.Blocks), "hi <@U0ALICE>") {
		t.Fatalf("stored %+v", m)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, c, ts, slack.MsgOptionText("bye", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	if m, _ = s.Message(c, ts); m.Text != "bye" || string(m.Blocks) != "[]" || m.Updates != 1 {
		t.Errorf("updated %+v", m)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, c, "1.2", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update unknown: %v", err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U0ALICE", slack.MsgOptionText("psst", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U0ALICE", slack.MsgOptionText("", false)); err == nil || err.Error() != "no_text" {
		t.Errorf("empty ephemeral: %v", err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U0ALICE", slack.MsgOptionBlocks()); err == nil || err.Error() != "no_text" {
		t.Errorf("ephemeral with an empty blocks list: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks()); err == nil || err.Error() != "no_text" {
		t.Errorf("message with an empty blocks list: %v", err)
	}
	if e := s.Ephemerals("U0ALICE"); len(e) != 1 || e[0].Text != "psst" || e[0].Channel != "C1" {
		t.Errorf("ephemerals %+v", e)
	}
	if _, _, err := api.DeleteMessageContext(ctx, c, ts); err != nil {
		t.Fatal(err)
	}
	if m, _ = s.Message(c, ts); !m.Deleted {
		t.Error("not deleted")
	}

	call := s.CallsTo("chat.postMessage")[0]
	if call.Param("channel") != "U0ALICE" || call.Param("text") != "hi" {
		t.Errorf("recorded %+v", call.Params)
	}
	var decoded []map[string]any
	if err := call.Decode("blocks", &decoded); err != nil || decoded[0]["type"] != "section" {
		t.Errorf("blocks %v %v", decoded, err)
	}
	if _, ok := call.Params["token"]; ok {
		t.Error("the token was recorded")
	}
}

func TestViews(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	ctx := context.Background()
	modal := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject("plain_text", "T", false, false),
		Submit: slack.NewTextBlockObject("plain_text", "Go", false, false), CallbackID: "cb", PrivateMetadata: "meta",
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock("b", slack.NewTextBlockObject("plain_text", "L", false, false), nil,
			slack.NewPlainTextInputBlockElement(nil, "a"))}}}
	if _, err := api.OpenViewContext(ctx, "not-issued", modal); err == nil || err.Error() != "invalid_trigger_id" {
		t.Errorf("unknown trigger: %v", err)
	}
	trig := s.NewTrigger("U1")
	resp, err := api.OpenViewContext(ctx, trig, modal)
	if err != nil || resp.ID == "" || resp.Hash == "" {
		t.Fatalf("views.open %+v %v", resp, err)
	}
	if _, err := api.OpenViewContext(ctx, trig, modal); err == nil {
		t.Error("a trigger opened two views")
	}
	v, ok := s.LastModal("U1")
	if !ok || v.CallbackID != "cb" || v.PrivateMetadata != "meta" {
		t.Fatalf("modal %+v", v)
	}
	if _, err := api.UpdateViewContext(ctx, modal, "", "stale-hash", v.ID); err == nil || err.Error() != "hash_conflict" {
		t.Errorf("stale hash: %v", err)
	}
	if _, err := api.UpdateViewContext(ctx, modal, "", v.Hash, v.ID); err != nil {
		t.Fatal(err)
	}
	// Once the person closed the modal, Slack has nothing to update.
	s.CloseView(v.ID)
	if _, err := api.UpdateViewContext(ctx, modal, "", "", v.ID); err == nil || err.Error() != "not_found" {
		t.Errorf("update of a closed modal: %v", err)
	}
	s.SetTriggerTTL(10 * time.Millisecond)
	old := s.NewTrigger("U1")
	time.Sleep(20 * time.Millisecond)
	if _, err := api.OpenViewContext(ctx, old, modal); err == nil || err.Error() != "expired_trigger_id" {
		t.Errorf("expired trigger: %v", err)
	}

	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}}}
	for i := 0; i < 2; i++ {
		if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home}); err != nil {
			t.Fatal(err)
		}
	}
	if h, ok := s.HomeView("U1"); !ok || h.Updates != 1 {
		t.Errorf("home %+v", h)
	}
}

func TestUploadV2(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	content := "seq,time\n1,now\n"
	f, err := api.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Reader: strings.NewReader(content), FileSize: len(content), Filename: "audit.csv", Title: "Audit", Channel: "D0ADMIN",
		InitialComment: "here"})
	if err != nil {
		t.Fatal(err)
	}
	files := s.Files()
	if len(files) != 1 || files[0].ID != f.ID || string(files[0].Content) != content || files[0].Channels[0] != "D0ADMIN" ||
		!files[0].Completed || files[0].InitialComment != "here" {
		t.Errorf("files %+v", files)
	}
}

func TestFaults(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	ctx := context.Background()
	s.FailNext("chat.postMessage", 1, "channel_not_found")
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("fail: %v", err)
	}
	s.RateLimitNext("chat.postMessage", 1, 3*time.Second)
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
		t.Errorf("rate limit: %#v", err)
	}
	// Slack's Retry-After is a whole second at least, whatever was asked.
	s.RateLimitNext("chat.postMessage", 1, 0)
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Errorf("rate limit without a wait: %#v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("after faults: %v", err)
	}
	s.SetLatency("auth.test", 50*time.Millisecond)
	start := time.Now()
	_, _ = api.AuthTestContext(ctx)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("no latency")
	}
	if !s.WaitForCalls("auth.test", 1, time.Second) || s.WaitForCalls("auth.test", 5, 20*time.Millisecond) {
		t.Error("WaitForCalls")
	}
	res, err := http.Post(s.URL()+"/api/chat.postMessage", "application/x-www-form-urlencoded", strings.NewReader("channel=C1&text=x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "not_authed") {
		t.Errorf("no token: %s", b)
	}
}

func TestSignedRequest(t *testing.T) {
	ts := time.Unix(1531420618, 0)
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	// The example from Slack's documentation on verifying requests.
	const want = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if got := Sign("8f742231b10e8888abcd99yyyzzz85a5", ts, body); got != want {
		t.Errorf("signature %s", got)
	}
	r := SignedRequest("8f742231b10e8888abcd99yyyzzz85a5", "/slack/commands", body, ts)
	if _, err := slack.NewSecretsVerifier(r.Header, "8f742231b10e8888abcd99yyyzzz85a5"); err == nil {
		t.Error("a 2018 timestamp passed the freshness check")
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Error(r.Header)
	}
}
