package slacktest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// What a Slack client does with an app's answers: the body an app
// acknowledges a command or a click with is shown to that person only, and
// its answer to a modal submission closes, updates or annotates the modal.
// Tests that post to an app themselves hand those bodies back here so the
// fake holds everything a person would see.

// ShowReply shows user the body an app acknowledged a command or a click
// with (`{"response_type":"ephemeral","text":…,"blocks":…}`), as Slack
// does: an ephemeral message in channel. An empty body, or one with
// neither text nor blocks, shows nothing and reports false.
func (s *Server) ShowReply(channel, user string, ack []byte) (Ephemeral, bool, error) {
	if len(bytes.TrimSpace(ack)) == 0 {
		return Ephemeral{}, false, nil
	}
	var body struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ReplaceOriginal bool            `json:"replace_original"`
	}
	if err := json.Unmarshal(ack, &body); err != nil {
		return Ephemeral{}, false, fmt.Errorf("slacktest: reply body: %w", err)
	}
	blocks, bad := checkMessageBlocks(string(body.Blocks))
	if len(body.Blocks) == 0 || string(body.Blocks) == "null" {
		blocks, bad = nil, ""
	}
	if bad != "" {
		return Ephemeral{}, false, fmt.Errorf("slacktest: reply body: %s", bad)
	}
	if body.Text == "" && len(blocks) == 0 {
		return Ephemeral{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Ephemeral{Channel: channel, User: user, Text: body.Text, Blocks: blocks, ReplaceOriginal: body.ReplaceOriginal,
		TS: s.nextTSLocked(), Posted: time.Now()}
	s.ephemerals = append(s.ephemerals, e)
	return e, true, nil
}

// AnswerSubmission applies an app's answer to the submission of modal
// viewID as Slack does: an empty body closes it (back to the view it was
// pushed on, if any); `"response_action":"clear"` closes the whole stack;
// `"errors"` keeps it open with the errors beside the fields; `"update"`
// replaces it with the view given; `"push"` opens that view on top of it.
// It returns the view the person sees afterwards (closed or not).
func (s *Server) AnswerSubmission(viewID string, ack []byte) (View, error) {
	var body struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if len(bytes.TrimSpace(ack)) > 0 {
		if err := json.Unmarshal(ack, &body); err != nil {
			return View{}, fmt.Errorf("slacktest: submission answer: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[viewID]
	if v == nil || v.Closed {
		return View{}, fmt.Errorf("slacktest: no open view %q", viewID)
	}
	switch body.ResponseAction {
	case "":
		v.Closed, v.Errors = true, nil // back to the view under it, if any
	case "clear":
		// Slack closes the whole stack.
		root := cmp.Or(v.RootID, v.ID)
		for _, w := range s.views {
			if w.ID == root || w.RootID == root {
				w.Closed, w.Errors = true, nil
			}
		}
	case "errors":
		// Slack shows each error beside the input block it names, and
		// refuses an answer naming anything else.
		inputs := inputBlockIDs(v.JSON)
		for id := range body.Errors {
			if !inputs[id] {
				return *v, fmt.Errorf("slacktest: submission answer: errors names %q, not an input block of the view", id)
			}
		}
		v.Errors = maps.Clone(body.Errors)
	case "update", "push":
		head, raw, bad := parseView(string(body.View))
		if bad != "" {
			return *v, fmt.Errorf("slacktest: submission answer: %s", bad)
		}
		if body.ResponseAction == "update" {
			s.replaceViewLocked(v, head, raw)
			return *v, nil
		}
		pushed := s.addViewLocked("modal", v.User, head, raw)
		pushed.RootID = cmp.Or(v.RootID, v.ID)
		return *pushed, nil
	default:
		return *v, fmt.Errorf("slacktest: unknown response_action %q", body.ResponseAction)
	}
	return *v, nil
}

// inputBlockIDs returns the block_id of every input block of a view.
func inputBlockIDs(view json.RawMessage) map[string]bool {
	var v struct {
		Blocks []struct {
			Type    string `json:"type"`
			BlockID string `json:"block_id"`
		} `json:"blocks"`
	}
	_ = json.Unmarshal(view, &v)
	ids := map[string]bool{}
	for _, b := range v.Blocks {
		if b.Type == "input" {
			ids[b.BlockID] = true
		}
	}
	return ids
}

// CloseView is the person closing modal viewID (its close button or Esc).
func (s *Server) CloseView(viewID string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[viewID]
	if v == nil || v.Type != "modal" {
		return View{}, false
	}
	v.Closed = true
	return *v, true
}

// View returns one view by id.
func (s *Server) View(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[id]
	if v == nil {
		return View{}, false
	}
	return *v, true
}
