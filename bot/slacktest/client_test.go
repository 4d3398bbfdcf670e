package slacktest

import (
	"context"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestShowReply(t *testing.T) {
	s := NewServer()
	defer s.Close()
	if _, shown, err := s.ShowReply("D0ALICE", "U0ALICE", nil); shown || err != nil {
		t.Errorf("an empty ack showed something: %v %v", shown, err)
	}
	if _, shown, err := s.ShowReply("D0ALICE", "U0ALICE", []byte(`{"response_type":"ephemeral"}`)); shown || err != nil {
		t.Errorf("an ack without text showed something: %v %v", shown, err)
	}
	e, shown, err := s.ShowReply("D0ALICE", "U0ALICE",
		[]byte(`{"response_type":"ephemeral","text":"How to use","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*help* <@U0BOB>"}}]}`))
	if err != nil || !shown || e.Text != "How to use" || !strings.Contains(string(e.Blocks), "*help* <@U0BOB>") || e.Posted.IsZero() {
		t.Fatalf("reply %+v %v %v", e, shown, err)
	}
	if got := s.Ephemerals("U0ALICE"); len(got) != 1 || got[0].TS != e.TS || got[0].Channel != "D0ALICE" {
		t.Errorf("ephemerals %+v", got)
	}
	if _, _, err := s.ShowReply("D0ALICE", "U0ALICE", []byte(`{"blocks":[{"text":"no type"}]}`)); err == nil {
		t.Error("invalid blocks accepted")
	}
}

func TestAnswerSubmission(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	modal := slack.ModalViewRequest{Type: slack.VTModal, Title: &slack.TextBlockObject{Type: "plain_text", Text: "Ask"},
		Submit: &slack.TextBlockObject{Type: "plain_text", Text: "Send"}, CallbackID: "cb", Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock("reason",
			slack.NewTextBlockObject("plain_text", "Why?", false, false), nil,
			slack.NewPlainTextInputBlockElement(nil, "reason_input"))}}}
	resp, err := api.OpenViewContext(context.Background(), s.NewTrigger("U1"), modal)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.View.ID

	if _, err := s.AnswerSubmission(id, []byte(`{"response_action":"errors","errors":{"reason_input":"Please give a reason."}}`)); err == nil {
		t.Error("errors naming an action id, not an input block, were accepted")
	}
	v, err := s.AnswerSubmission(id, []byte(`{"response_action":"errors","errors":{"reason":"Please give a reason."}}`))
	if err != nil || v.Closed || v.Errors["reason"] != "Please give a reason." {
		t.Fatalf("errors answer: %+v %v", v, err)
	}
	// The app updating the view clears the errors, as Slack does.
	if _, err := api.UpdateViewContext(context.Background(), modal, "", "", id); err != nil {
		t.Fatal(err)
	}
	if v, _ = s.View(id); v.Errors != nil || v.Updates != 1 {
		t.Errorf("after views.update: %+v", v)
	}
	pushed, err := s.AnswerSubmission(id, []byte(`{"response_action":"push","view":{"type":"modal","title":{"type":"plain_text","text":"Next"},"callback_id":"next","blocks":[]}}`))
	if err != nil || pushed.ID == id || pushed.CallbackID != "next" || pushed.User != "U1" {
		t.Fatalf("push: %+v %v", pushed, err)
	}
	if last, _ := s.LastModal("U1"); last.ID != pushed.ID {
		t.Errorf("the pushed view is not on top: %+v", last)
	}
	updated, err := s.AnswerSubmission(pushed.ID, []byte(`{"response_action":"update","view":{"type":"modal","title":{"type":"plain_text","text":"Third"},"callback_id":"third","blocks":[]}}`))
	if err != nil || updated.ID != pushed.ID || updated.CallbackID != "third" {
		t.Fatalf("update: %+v %v", updated, err)
	}
	if v, err := s.AnswerSubmission(pushed.ID, nil); err != nil || !v.Closed {
		t.Errorf("an empty answer did not close the view: %+v %v", v, err)
	}
	if root, _ := s.View(id); root.Closed {
		t.Error("an empty answer to a pushed view closed the view under it")
	}
	if _, err := s.AnswerSubmission(id, []byte(`{"response_action":"explode"}`)); err == nil || !strings.Contains(err.Error(), "unknown response_action") {
		t.Errorf("unknown response_action: %v", err)
	}
	// clear closes the whole stack, from whichever view of it.
	top, err := s.AnswerSubmission(id, []byte(`{"response_action":"push","view":{"type":"modal","title":{"type":"plain_text","text":"Top"},"blocks":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.AnswerSubmission(top.ID, []byte(`{"response_action":"clear"}`)); err != nil || !v.Closed || v.Errors != nil {
		t.Errorf("clear: %+v %v", v, err)
	}
	if root, _ := s.View(id); !root.Closed {
		t.Error("clear left the view under the top one open")
	}
	if _, err := s.AnswerSubmission("V404", nil); err == nil {
		t.Error("unknown view accepted")
	}
}

func TestCloseView(t *testing.T) {
	s := NewServer()
	defer s.Close()
	api := client(s)
	resp, err := api.OpenViewContext(context.Background(), s.NewTrigger("U1"), slack.ModalViewRequest{Type: slack.VTModal,
		Title: &slack.TextBlockObject{Type: "plain_text", Text: "Ask"}, Blocks: slack.Blocks{BlockSet: []slack.Block{}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.CloseView(resp.View.ID); !ok || !v.Closed {
		t.Errorf("close: %+v %v", v, ok)
	}
	if _, ok := s.CloseView("V404"); ok {
		t.Error("closed an unknown view")
	}
}
