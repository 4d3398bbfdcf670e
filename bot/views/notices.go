package views

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

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

// Failure tells someone why what they did was refused, from a workflow
// error: its plain words are escaped, so text a person or PostHog supplied
// (a role name, a reason) can never mention anyone or link anywhere, and
// only the users the workflow named (workflow.ErrorUsers) become mentions.
func Failure(err error) Message {
	return Error(ErrorText(err))
}

var userRefRe = regexp.MustCompile(`@([UW][A-Z0-9]{1,30})\b`)

// ErrorText renders a workflow error's message as safe mrkdwn.
func ErrorText(err error) string {
	msg := Escape(workflow.ErrorMessage(err))
	users := workflow.ErrorUsers(err)
	if len(users) == 0 {
		return msg
	}
	named := map[string]bool{}
	for _, u := range users {
		named[u] = true
	}
	return userRefRe.ReplaceAllStringFunc(msg, func(m string) string {
		if id := m[1:]; named[id] {
			return Mention(id)
		}
		return m
	})
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
		switch {
		case r.State == workflow.StateFailed && r.RevokeQueued:
			// FailureReason: "revoked before it was carried out[: reason]".
			s = fmt.Sprintf(":lock: Your request %s (%s) was %s. Nothing was changed in PostHog.", ref, shortWhat(r), Escape(r.FailureReason))
		case r.State == workflow.StateFailed && r.Kind == workflow.KindExtend:
			s = fmt.Sprintf(":warning: Your request %s (%s) could not be carried out: %s", ref, shortWhat(r), Escape(r.FailureReason))
		case r.State == workflow.StateFailed:
			s = fmt.Sprintf(":warning: I couldn't carry out your request %s (%s). PostHog said: %s\nNothing was changed. The role's owners have been told.",
				ref, shortWhat(r), Escape(r.FailureReason))
		default:
			// A revocation that failed: the grant stays, and the owners act.
			return Message{}, false
		}
	case workflow.EventExtended:
		s = fmt.Sprintf(":hourglass_flowing_sand: Your access to *%s* (#%d) was extended: it now ends %s (%s).", Escape(r.RoleName), r.GrantID, Date(r.RevokeAt), ref)
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

func doneButton(id int64) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(ActionDone, strconv.FormatInt(id, 10), plain("I'm done"))
	b.WithConfirm(slack.NewConfirmationBlockObject(plain("End this access now?"),
		plain(fmt.Sprintf("#%d ends now and you leave the role in PostHog.", id)), plain("End it"), plain("Keep it")))
	return b
}

// ExpiryWarning tells a holder their grant ends soon, with Extend and I'm
// done buttons. now is when the warning is sent.
func ExpiryWarning(r *workflow.Request, now time.Time) Message {
	left := r.RevokeAt.Sub(now).Round(time.Minute)
	s := fmt.Sprintf(":hourglass: Your access to *%s* (%s) ends %s (in %s).", Escape(r.RoleName), r.Ref(), Date(r.RevokeAt), leftText(left))
	id := strconv.FormatInt(r.ID, 10)
	extend := slack.NewButtonBlockElement(ActionExtend, id, plain("Extend")).WithStyle(slack.StylePrimary)
	blocks := []slack.Block{
		section(s),
		contextBlock("Extend asks the role's owners for " + strings.ToLower(DurationLabel(r.Duration)) + " more (`/access extend " + id + " DURATION` for another length). I'm done ends it now."),
		slack.NewActionBlock("grant_"+id, extend, doneButton(r.ID)),
	}
	return Message{Text: stripMrkdwn(s), Blocks: blocks}
}

func leftText(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	return "about " + strings.ToLower(DurationLabel(d.Truncate(time.Minute)))
}

// RevocationOverdue alarms owners and admins: a grant outlives its end
// because PostHog refuses or cannot take its revocation.
func RevocationOverdue(r *workflow.Request) Message {
	s := fmt.Sprintf(":rotating_light: *Revocation overdue:* %s still has *%s* (%s) although it should have ended (%s). PostHog has not taken the removal since %s; I keep retrying at least every 15 minutes.",
		Mention(r.SubjectID), Escape(r.RoleName), r.Ref(), Escape(r.DecisionReason), Date(r.OverdueSince))
	retry := slack.NewButtonBlockElement(ActionRetryRevoke, strconv.FormatInt(r.ID, 10), plain("Retry now")).WithStyle(slack.StyleDanger)
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(s), nil, slack.NewAccessory(retry)),
		contextBlock(fmt.Sprintf("Check the bot's PostHog key (an organization admin's, with organization:write), or remove the member by hand in PostHog. `/access revoke %d` retries now.", r.ID)),
	}
	return Message{Text: stripMrkdwn(s), Blocks: blocks}
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

// RevokeAccepted tells an owner what their /access revoke of r does: a
// grant still being carried out will not be kept, an overdue revocation is
// retried now, a grant in force is removed shortly.
func RevokeAccepted(r *workflow.Request) Message {
	who, role := Mention(r.SubjectID), Escape(r.RoleName)
	switch {
	case !r.Active():
		return Text(fmt.Sprintf(":lock: Revoking %s, which is still being carried out: %s will not keep %s; the requester will be told.", r.Ref(), who, role))
	case r.Overdue():
		return Text(fmt.Sprintf(":arrows_counterclockwise: Retrying the overdue revocation of %s (%s on %s) now; you'll hear when PostHog takes it.", r.Ref(), who, role))
	}
	return Text(fmt.Sprintf(":hourglass_flowing_sand: Revoking %s: %s leaves %s shortly; the requester will be told.", r.Ref(), who, role))
}
