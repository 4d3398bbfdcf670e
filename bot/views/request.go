package views

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// StateLabel is a request state as people read it, with an emoji.
func StateLabel(s workflow.State) string {
	switch s {
	case workflow.StatePending:
		return ":large_yellow_circle: waiting for approval"
	case workflow.StateApproved:
		return ":large_blue_circle: approved"
	case workflow.StateExecuting:
		return ":gear: being applied in PostHog"
	case workflow.StateCompleted:
		return ":white_check_mark: done"
	case workflow.StateFailed:
		return ":warning: failed"
	case workflow.StateDenied:
		return ":x: denied"
	case workflow.StateCancelled:
		return ":heavy_minus_sign: cancelled"
	case workflow.StateExpired:
		return ":hourglass: expired"
	case workflow.StateRevoked:
		return ":lock: access ended"
	}
	return string(s)
}

// what says what a request asks for, in a sentence: "for access to *Eng*
// for 8 hours", "to remove <@U2> from *Eng*".
func what(r *workflow.Request) string {
	role := "*" + Escape(r.RoleName) + "*"
	if r.Kind == workflow.KindExtend {
		return fmt.Sprintf("to extend their access to %s (#%d) by %s", role, r.GrantID, DurationLabel(r.Duration))
	}
	if r.Kind == workflow.KindRemove {
		if r.SubjectID == r.RequesterID {
			return "to leave " + role
		}
		return "to remove " + Mention(r.SubjectID) + " from " + role
	}
	if r.SubjectID != "" && r.SubjectID != r.RequesterID {
		return "for access to " + role + " for " + Mention(r.SubjectID) + " " + durationPhrase(r.Duration)
	}
	return "for access to " + role + " " + durationPhrase(r.Duration)
}

// shortWhat names a request's change in a few words: "*Eng*, 8 hours",
// "leave *Eng*", "remove <@U2> from *Eng*".
func shortWhat(r *workflow.Request) string {
	role := "*" + Escape(r.RoleName) + "*"
	switch {
	case r.Kind == workflow.KindRemove && r.SubjectID == r.RequesterID:
		return "leave " + role
	case r.Kind == workflow.KindRemove:
		return "remove " + Mention(r.SubjectID) + " from " + role
	case r.Kind == workflow.KindExtend:
		return fmt.Sprintf("extend %s #%d by %s", role, r.GrantID, strings.ToLower(DurationLabel(r.Duration)))
	}
	return role + ", " + strings.ToLower(DurationLabel(r.Duration))
}

// summary is one line about a request, for lists.
func summary(r *workflow.Request) string {
	role := "*" + Escape(r.RoleName) + "*"
	if r.Kind == workflow.KindRemove {
		return fmt.Sprintf("*%s* · remove %s from %s", r.Ref(), Mention(r.SubjectID), role)
	}
	if r.Kind == workflow.KindExtend {
		return fmt.Sprintf("*%s* · extend %s #%d by %s", r.Ref(), role, r.GrantID, strings.ToLower(DurationLabel(r.Duration)))
	}
	return fmt.Sprintf("*%s* · %s → %s · %s", r.Ref(), Mention(r.SubjectID), role, DurationLabel(r.Duration))
}

// approvalsText is "1 of 2 (<@A>)".
func approvalsText(r *workflow.Request) string {
	need := max(r.ApprovalsRequired, 1)
	s := fmt.Sprintf("%d of %d", len(r.Approvals), need)
	if len(r.Approvals) > 0 {
		who := make([]string, 0, len(r.Approvals))
		for _, a := range r.Approvals {
			who = append(who, Mention(a.ApproverID))
		}
		s += " (" + strings.Join(who, ", ") + ")"
	}
	return s
}

// decidedBy names who moved a request out of pending.
func decidedBy(r *workflow.Request) string {
	if r.DecidedBy == "" || r.DecidedBy == workflow.SystemActor {
		if r.AutoApproved {
			return "automatically (policy)"
		}
		return "by accessbot"
	}
	return "by " + Mention(r.DecidedBy)
}

// Outcome is one line saying where a decided request ended up: what
// happened, who decided and when. "" while it is pending.
func Outcome(r *workflow.Request) string {
	at := func(t string) string {
		if t == "" {
			return ""
		}
		return " " + t
	}
	subject := Mention(r.SubjectID)
	role := "*" + Escape(r.RoleName) + "*"
	approved := ":white_check_mark: *Approved* " + decidedBy(r) + at(Date(r.DecidedAt))
	switch r.State {
	case workflow.StatePending:
		return ""
	case workflow.StateApproved, workflow.StateExecuting:
		if r.Kind == workflow.KindExtend {
			return approved + "."
		}
		if r.Kind == workflow.KindRemove {
			return approved + ". Removing " + subject + " from " + role + " in PostHog…"
		}
		return approved + ". Adding " + subject + " to " + role + " in PostHog…"
	case workflow.StateCompleted:
		if r.Kind == workflow.KindExtend {
			return approved + fmt.Sprintf(". %s's access to %s (#%d) now ends %s.", subject, role, r.GrantID, Date(r.RevokeAt))
		}
		if r.Overdue() {
			return ":rotating_light: *Revocation overdue* since " + Date(r.OverdueSince) + ": " + subject +
				" still has " + role + " although it should have ended; I keep retrying."
		}
		if r.Kind == workflow.KindRemove {
			return approved + ". " + subject + " was removed from " + role + at(Date(r.CompletedAt)) + "."
		}
		s := approved + ". " + subject + " is a member of " + role + " since" + at(Date(r.CompletedAt))
		if !r.RevokeAt.IsZero() {
			s += ", until " + Date(r.RevokeAt)
		}
		return s + "."
	case workflow.StateFailed:
		if r.RevokeQueued {
			return approved + ", then " + Escape(r.FailureReason) + ". Nothing was changed in PostHog."
		}
		return approved + ", but the change failed: " + Escape(r.FailureReason)
	case workflow.StateDenied:
		s := ":x: *Denied* " + decidedBy(r) + at(Date(r.DecidedAt))
		if r.DecisionReason != "" {
			s += ":\n" + quote(r.DecisionReason)
		}
		return s
	case workflow.StateCancelled:
		return ":heavy_minus_sign: *Cancelled* by the requester" + at(Date(r.DecidedAt)) + "."
	case workflow.StateExpired:
		return ":hourglass: *Expired*" + at(Date(r.DecidedAt)) + " without a decision."
	case workflow.StateRevoked:
		s := ":lock: *Access ended*" + at(Date(r.RevokedAt))
		if r.DecisionReason != "" {
			s += ": " + Escape(r.DecisionReason)
		}
		return s + "."
	}
	return StateLabel(r.State)
}

// decisionButtons are the Approve and Deny buttons of request id.
func decisionButtons(blockID string, id int64) *slack.ActionBlock {
	v := strconv.FormatInt(id, 10)
	approve := slack.NewButtonBlockElement(ActionApprove, v, plain("Approve")).WithStyle(slack.StylePrimary)
	deny := slack.NewButtonBlockElement(ActionDeny, v, plain("Deny")).WithStyle(slack.StyleDanger)
	return slack.NewActionBlock(blockID, approve, deny)
}

// ApproverOptions changes how ApproverMessage renders.
type ApproverOptions struct {
	// Reminder adds a line saying the request is still waiting.
	Reminder bool
}

// ApproverMessage is the message an approver sees about a request — the same
// rendering for the DM to each owner and the approvals channel copy: who
// asks (for whom), which role, why, for how long, the approvals so far, and
// Approve / Deny buttons while it is pending. Once decided, the buttons give
// way to the outcome, who decided and when.
func ApproverMessage(r *workflow.Request, opt ApproverOptions) Message {
	var blocks []slack.Block
	if opt.Reminder && r.State == workflow.StatePending {
		blocks = append(blocks, contextBlock(":bell: *Reminder:* this request is still waiting for a decision."))
	}
	lead := fmt.Sprintf("%s asks %s.", Mention(r.RequesterID), what(r))
	blocks = append(blocks, section(":key: "+lead))
	fields := []string{
		"*Role*\n" + Escape(r.RoleName),
		"*Request*\n" + r.Ref(),
	}
	switch r.Kind {
	case workflow.KindAdd:
		fields = append(fields, "*Duration*\n"+DurationLabel(r.Duration))
	case workflow.KindExtend:
		fields = append(fields, fmt.Sprintf("*Extend*\n#%d by %s", r.GrantID, strings.ToLower(DurationLabel(r.Duration))))
	default:
		fields = append(fields, "*Change*\nremove "+Mention(r.SubjectID))
	}
	fields = append(fields, "*Approvals*\n"+approvalsText(r))
	blocks = append(blocks, fieldsSection(fields...))
	blocks = append(blocks, section("*Reason*\n"+quote(r.Reason)))
	if r.State == workflow.StatePending {
		ctx := "Requested " + Date(r.CreatedAt)
		if !r.ExpiresAt.IsZero() {
			ctx += " · expires " + Date(r.ExpiresAt) + " without a decision"
		}
		blocks = append(blocks, contextBlock(ctx))
		blocks = append(blocks, decisionButtons(BlockDecision, r.ID))
	} else {
		blocks = append(blocks, section(Outcome(r)))
	}
	text := fmt.Sprintf("%s asks %s (%s)", Mention(r.RequesterID), what(r), r.Ref())
	if opt.Reminder && r.State == workflow.StatePending {
		text = "Reminder: " + text
	}
	if r.State != workflow.StatePending {
		text = fmt.Sprintf("%s: %s", r.Ref(), StateLabel(r.State))
	}
	return Message{Text: text, Blocks: blocks}
}

// RequesterMessage is the requester's own copy of their request: sent when
// it is created and updated as it moves on. While pending it names the
// owners asked and offers a Cancel button.
func RequesterMessage(r *workflow.Request, owners []string) Message {
	var blocks []slack.Block
	if r.State == workflow.StatePending {
		s := fmt.Sprintf(":outbox_tray: I sent your request %s (%s)", r.Ref(), shortWhat(r))
		if len(owners) > 0 {
			s += " to " + mentions(owners)
		} else {
			s += " to the role's owners"
		}
		s += ". I'll tell you when they decide."
		if r.ApprovalsRequired > 1 {
			s += fmt.Sprintf(" It needs %d approvals.", r.ApprovalsRequired)
		}
		cancel := slack.NewButtonBlockElement(ActionCancel, strconv.FormatInt(r.ID, 10), plain("Cancel request"))
		cancel.WithConfirm(slack.NewConfirmationBlockObject(plain("Cancel this request?"),
			plain(fmt.Sprintf("%s will be withdrawn; the owners won't be able to approve it.", r.Ref())),
			plain("Cancel it"), plain("Keep it")))
		blocks = append(blocks,
			slack.NewSectionBlock(mrkdwn(s), nil, slack.NewAccessory(cancel)),
			contextBlock("*Reason:* "+Escape(oneLine(r.Reason))+" · *Approvals:* "+approvalsText(r)))
		return Message{Text: fmt.Sprintf("Your request %s (%s) was sent.", r.Ref(), shortWhat(r)), Blocks: blocks}
	}
	blocks = append(blocks,
		section(fmt.Sprintf("Your request %s: %s.", r.Ref(), what(r))),
		section(Outcome(r)))
	return Message{Text: fmt.Sprintf("Your request %s: %s", r.Ref(), StateLabel(r.State)), Blocks: blocks}
}

func mentions(ids []string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, Mention(id))
	}
	return strings.Join(out, ", ")
}

func oneLine(s string) string {
	return truncate(strings.Join(strings.Fields(s), " "), 200)
}
