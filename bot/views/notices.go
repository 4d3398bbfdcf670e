package views

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Text is a message of one mrkdwn section.
func Text(s string) Message {
	return Message{Text: s, Blocks: []slack.Block{section(s)}}
}

// Error is a message telling someone why what they asked for did not
// happen. msg is already written for people (workflow.ErrorMessage).
func Error(msg string) Message {
	return Text(":warning: " + msg)
}

// RequesterUpdate is the DM telling the requester that their request moved
// on: approved, denied, cancelled, expired, completed, failed or revoked.
// ok is false for events the requester is not told about.
func RequesterUpdate(ev workflow.EventType, r *workflow.Request) (m Message, ok bool) {
	ref := r.Ref()
	var s string
	switch ev {
	case workflow.EventApproved:
		if r.AutoApproved && (r.DecidedBy == "" || r.DecidedBy == workflow.SystemActor) {
			s = fmt.Sprintf(":white_check_mark: Your request %s (%s) was approved automatically. I'm making the change in PostHog now.", ref, shortWhat(r))
		} else {
			s = fmt.Sprintf(":white_check_mark: %s approved your request %s (%s). I'm making the change in PostHog now.", Mention(r.DecidedBy), ref, shortWhat(r))
		}
	case workflow.EventDenied:
		s = fmt.Sprintf(":x: %s denied your request %s (%s).", Mention(r.DecidedBy), ref, shortWhat(r))
		if r.DecisionReason != "" {
			s += "\n" + quote(r.DecisionReason)
		}
	case workflow.EventCancelled:
		s = fmt.Sprintf(":heavy_minus_sign: Your request %s (%s) is cancelled.", ref, shortWhat(r))
	case workflow.EventExpired:
		s = fmt.Sprintf(":hourglass: Your request %s (%s) expired: nobody decided in time. You can ask again with `/access request %s`.",
			ref, shortWhat(r), Escape(r.RoleName))
	case workflow.EventCompleted:
		switch {
		case r.Kind == workflow.KindRemove && r.SubjectID == r.RequesterID:
			s = fmt.Sprintf(":white_check_mark: Done: you are no longer a member of *%s* in PostHog (%s).", Escape(r.RoleName), ref)
		case r.Kind == workflow.KindRemove:
			s = fmt.Sprintf(":white_check_mark: Done: %s is no longer a member of *%s* in PostHog (%s).", Mention(r.SubjectID), Escape(r.RoleName), ref)
		default:
			s = fmt.Sprintf(":tada: Done: you are now a member of *%s* in PostHog (%s).", Escape(r.RoleName), ref)
			if !r.RevokeAt.IsZero() {
				s += " The access ends " + Date(r.RevokeAt) + "."
			}
		}
	case workflow.EventFailed:
		if r.State == workflow.StateFailed {
			s = fmt.Sprintf(":warning: I couldn't carry out your request %s (%s). PostHog said: %s\nNothing was changed. The role's owners have been told.",
				ref, shortWhat(r), Escape(r.FailureReason))
		} else {
			// A revocation that failed: the grant stays, and the owners act.
			return Message{}, false
		}
	case workflow.EventRevoked:
		s = fmt.Sprintf(":lock: Your access to *%s* ended (%s)", Escape(r.RoleName), ref)
		if r.DecisionReason != "" {
			s += ": " + Escape(r.DecisionReason)
		}
		s += ". `/access request` asks for it again."
	default:
		return Message{}, false
	}
	return Message{Text: stripMrkdwn(s), Blocks: []slack.Block{section(s)}}, true
}

// OwnersFailure tells a role's owners that an approved request (or the
// revocation of a grant) could not be carried out.
func OwnersFailure(r *workflow.Request) Message {
	var s string
	if r.State == workflow.StateFailed {
		s = fmt.Sprintf(":warning: Request %s (%s, asked by %s) was approved, but PostHog refused the change: %s\nNothing was changed in PostHog; it may need to be done by hand.",
			r.Ref(), shortWhat(r), Mention(r.RequesterID), Escape(r.FailureReason))
	} else {
		s = fmt.Sprintf(":warning: I couldn't end %s's access to *%s* (%s) in PostHog. They still have it; please remove it by hand.",
			Mention(r.SubjectID), Escape(r.RoleName), r.Ref())
	}
	return Message{Text: stripMrkdwn(s), Blocks: []slack.Block{section(s)}}
}

// Drift tells a role's owners what changed in PostHog outside the bot.
func Drift(d *workflow.Drift) Message {
	var b strings.Builder
	fmt.Fprintf(&b, ":mag: Someone changed the members of *%s* in PostHog outside accessbot.", Escape(d.RoleName))
	list := func(title string, ms []workflow.Member) {
		if len(ms) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n*%s:*", title)
		for i, m := range ms {
			if i == 20 {
				fmt.Fprintf(&b, "\n• …and %d more", len(ms)-i)
				break
			}
			b.WriteString("\n• " + Escape(m.Email))
			if m.Name != "" {
				b.WriteString(" (" + Escape(m.Name) + ")")
			}
		}
	}
	list("Added", d.Added)
	list("Removed", d.Removed)
	b.WriteString("\nThis is in the audit log. If it wasn't expected, check the role in PostHog.")
	s := b.String()
	return Message{Text: fmt.Sprintf("Members of %s changed outside accessbot", Escape(d.RoleName)), Blocks: []slack.Block{section(s)}}
}

// stripMrkdwn makes notification text from a mrkdwn sentence: the first
// line, without emoji codes at the start.
func stripMrkdwn(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if strings.HasPrefix(s, ":") {
		if i := strings.Index(s[1:], ": "); i >= 0 {
			s = s[i+3:]
		}
	}
	return strings.ReplaceAll(s, "*", "")
}
