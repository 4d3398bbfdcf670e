package views

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Ids of access reviews and break-glass alerts.
const (
	ActionReviewKeep      = "review_keep"      // Keep a member; value is ReviewItemValue
	ActionReviewRemove    = "review_remove"    // Remove a member; value is ReviewItemValue
	ActionReviewKeepRest  = "review_keep_rest" // Keep all remaining; value is the review id
	ActionBreakGlassAck   = "breakglass_ack"   // Acknowledge a break-glass use; value is the review id
	ActionBreakGlassStop  = "breakglass_stop"  // Revoke now; value is the review id
	ActionBreakGlassCheck = "breakglass_check" // the request modal's break-glass checkbox
	BlockBreakGlass       = "break_glass"      // its input block
	// BreakGlassValue is the value of the checkbox's one option.
	BreakGlassValue = "break_glass"
)

// ReviewPageSize is how many members one review message lists: two blocks
// each and four more keep a page under Slack's 50 blocks, and at most about
// 600 characters each (names and emails are cut) under 12,000 characters
// of text.
const ReviewPageSize = 15

// ReviewItemValue is the value of a member's Keep and Remove buttons.
func ReviewItemValue(reviewID int64, membershipID string) string {
	return strconv.FormatInt(reviewID, 10) + ":" + membershipID
}

// ParseReviewItemValue reads a ReviewItemValue.
func ParseReviewItemValue(v string) (int64, string, error) {
	id, member, ok := strings.Cut(v, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || member == "" {
		return 0, "", fmt.Errorf("review button value %q", v)
	}
	return n, member, nil
}

// ReviewPage is the page a member at position is shown on.
func ReviewPage(position int) int { return position / ReviewPageSize }

// ReviewPages renders an access review as the messages each owner gets,
// one per ReviewPageSize members: every member with name, email, last
// login, 2FA and how they got access, with Keep and Remove until answered
// and who answered after; Keep all remaining while the review is open.
func ReviewPages(rev *workflow.Review, items []workflow.ReviewItem) []Message {
	pages := max(1, (len(items)+ReviewPageSize-1)/ReviewPageSize)
	out := make([]Message, 0, pages)
	for p := 0; p < pages; p++ {
		out = append(out, reviewPage(rev, items, p, pages))
	}
	return out
}

func reviewPage(rev *workflow.Review, items []workflow.ReviewItem, page, pages int) Message {
	role := "*" + Escape(rev.RoleName) + "*"
	title := fmt.Sprintf("Access review #%d: %s", rev.ID, rev.RoleName)
	if pages > 1 {
		title += fmt.Sprintf(" (%d/%d)", page+1, pages)
	}
	blocks := []slack.Block{header(title)}
	open := rev.State == workflow.ReviewOpen
	if open {
		blocks = append(blocks, section(fmt.Sprintf(
			":clipboard: Does everyone below still need %s in PostHog? *Keep* or *Remove* each member, or *Keep all remaining*. Answer by %s: members nobody answers are then %s.",
			role, Date(rev.DeadlineAt), unansweredVerb(rev.Unanswered))))
	} else {
		blocks = append(blocks, section(fmt.Sprintf(":lock: Closed %s: %s.", Date(rev.ClosedAt), summaryText(items))))
	}
	started := "Started by " + Mention(rev.StartedBy)
	if rev.StartedBy == workflow.SystemActor {
		started = "Started on the role's review schedule"
	}
	blocks = append(blocks, contextBlock(fmt.Sprintf("%s %s · %d %s · the first owner's answer for a member counts, and every owner's copy shows it.",
		started, Date(rev.StartedAt), len(items), plural(len(items), "member", "members"))))
	from, to := page*ReviewPageSize, min((page+1)*ReviewPageSize, len(items))
	anyOpen := false
	for _, it := range items[from:to] {
		blocks = append(blocks, section(memberLine(it)))
		if it.Decision == "" && open && it.LeftToDeadline {
			blocks = append(blocks, contextBlock(fmt.Sprintf(
				":hourglass: Left to the deadline: the only owner or admin who could answer is this member, and nobody decides on their own access. It is then %s.",
				unansweredVerb(rev.Unanswered))))
			continue
		}
		if it.Decision == "" && open {
			anyOpen = true
			v := ReviewItemValue(rev.ID, it.MembershipID)
			keep := slack.NewButtonBlockElement(ActionReviewKeep, v, plain("Keep")).WithStyle(slack.StylePrimary)
			remove := slack.NewButtonBlockElement(ActionReviewRemove, v, plain("Remove")).WithStyle(slack.StyleDanger)
			remove.WithConfirm(slack.NewConfirmationBlockObject(plain("Remove this member?"),
				plain(truncate(fmt.Sprintf("%s leaves %s in PostHog now and is told why.", nameOrEmail(it), rev.RoleName), 150)),
				plain("Remove"), plain("Back")))
			blocks = append(blocks, slack.NewActionBlock("review_item_"+strconv.Itoa(it.Position), keep, remove))
			continue
		}
		blocks = append(blocks, contextBlock(answerLine(it)))
	}
	if open && (anyOpen || slices.ContainsFunc(items, func(it workflow.ReviewItem) bool { return it.Decision == "" && !it.LeftToDeadline })) {
		rest := slack.NewButtonBlockElement(ActionReviewKeepRest, strconv.FormatInt(rev.ID, 10), plain("Keep all remaining"))
		rest.WithConfirm(slack.NewConfirmationBlockObject(plain("Keep everyone not answered yet?"),
			plain(fmt.Sprintf("Every member of %s nobody has answered, on every page, is kept.", truncate(rev.RoleName, 150))),
			plain("Keep them"), plain("Back")))
		blocks = append(blocks, slack.NewActionBlock("review_rest", rest))
	}
	text := fmt.Sprintf("Access review #%d of %s", rev.ID, Escape(rev.RoleName))
	if pages > 1 {
		text += fmt.Sprintf(", page %d of %d", page+1, pages)
	}
	return Message{Text: text, Blocks: blocks}
}

// summaryText is the closing line of a review: "2 kept, 1 removed (1
// unanswered at the deadline)".
func summaryText(items []workflow.ReviewItem) string {
	s := workflow.Summarize(items)
	out := fmt.Sprintf("%d kept, %d removed, %d unanswered", s.Kept, s.Removed, s.Unanswered)
	if s.Open > 0 {
		out += fmt.Sprintf(", %d waiting", s.Open)
	}
	return out
}

func unansweredVerb(d workflow.Decision) string {
	if d == workflow.DecisionRemove {
		return "*removed*"
	}
	return "kept"
}

func nameOrEmail(it workflow.ReviewItem) string {
	if it.Name != "" {
		return it.Name
	}
	return it.Email
}

// memberLine is one member of a review: who, last login, 2FA, and how they
// got access.
func memberLine(it workflow.ReviewItem) string {
	who := "*" + Escape(truncate(nameOrEmail(it), 60)) + "*"
	if it.Name != "" {
		who += " · " + Escape(truncate(it.Email, 80))
	}
	login := "never"
	if !it.LastLogin.IsZero() {
		login = Date(it.LastLogin)
	}
	twoFA := "unknown"
	if it.TwoFactor != nil {
		twoFA = map[bool]string{true: "on", false: ":warning: off"}[*it.TwoFactor]
	}
	access := "outside accessbot"
	if it.GrantID != 0 {
		access = fmt.Sprintf("grant #%d, permanent", it.GrantID)
		if !it.GrantEndsAt.IsZero() {
			access = fmt.Sprintf("grant #%d, ends %s", it.GrantID, Date(it.GrantEndsAt))
		}
	}
	return fmt.Sprintf("%s\nLast login: %s · 2FA: %s · Access: %s", who, login, twoFA, access)
}

func answerLine(it workflow.ReviewItem) string {
	switch {
	case it.Decision == "":
		return ":lock: Not answered."
	case it.DecidedBy == workflow.SystemActor && it.Decision == workflow.DecisionRemove:
		return fmt.Sprintf(":no_entry: *Removed* at the deadline: nobody answered (request #%d).", it.RemovalID)
	case it.DecidedBy == workflow.SystemActor:
		return ":white_check_mark: *Kept* at the deadline: nobody answered."
	case it.Decision == workflow.DecisionRemove:
		return fmt.Sprintf(":no_entry: *Removed* by %s %s (request #%d).", Mention(it.DecidedBy), Date(it.DecidedAt), it.RemovalID)
	}
	return fmt.Sprintf(":white_check_mark: *Kept* by %s %s.", Mention(it.DecidedBy), Date(it.DecidedAt))
}

// ReviewReminder tells an owner a review still waits for answers.
func ReviewReminder(rev *workflow.Review, items []workflow.ReviewItem) Message {
	open := workflow.Summarize(items).Open
	s := fmt.Sprintf(":bell: *Reminder:* access review #%d of *%s* still has %d %s to answer, by %s. Members nobody answers are then %s. The review is in your DMs with me.",
		rev.ID, Escape(rev.RoleName), open, plural(open, "member", "members"), Date(rev.DeadlineAt), unansweredVerb(rev.Unanswered))
	return Message{Text: stripMrkdwn(s), Blocks: []slack.Block{section(s)}}
}

// ReviewClosed is the summary each owner gets when a review closes.
func ReviewClosed(rev *workflow.Review, items []workflow.ReviewItem) Message {
	s := fmt.Sprintf(":clipboard: Access review #%d of *%s* is closed: %s.", rev.ID, Escape(rev.RoleName), summaryText(items))
	var removed []string
	for _, it := range items {
		if it.Decision == workflow.DecisionRemove {
			removed = append(removed, fmt.Sprintf("%s (#%d)", Escape(it.Email), it.RemovalID))
		}
	}
	if len(removed) > 0 {
		if len(removed) > 20 {
			removed = append(removed[:20], fmt.Sprintf("…and %d more", len(removed)-20))
		}
		s += "\nRemoved: " + strings.Join(removed, ", ") + "."
	}
	s += "\nEvery answer is in the audit log (`accessbot audit export --action review_`)."
	return Message{Text: stripMrkdwn(s), Blocks: []slack.Block{section(s)}}
}

// KeptRemaining answers Keep all remaining: how many members it kept, and
// whether it left the clicker's own membership for someone else.
func KeptRemaining(reviewID int64, kept int, ownLeft bool) Message {
	s := fmt.Sprintf(":white_check_mark: Kept the %d %s nobody had answered in access review #%d.", kept, plural(kept, "member", "members"), reviewID)
	if ownLeft {
		if kept == 0 {
			s = fmt.Sprintf("Nobody else was left to answer in access review #%d.", reviewID)
		}
		s += " Your own membership is left to another owner or an admin: nobody decides on their own access."
	}
	return Text(s)
}

// ReviewStarted answers the owner or admin who started a review.
func ReviewStarted(rev *workflow.Review) Message {
	return Text(fmt.Sprintf(":clipboard: Started access review #%d of *%s*; its owners have it in their DMs. Answers are due %s.",
		rev.ID, Escape(rev.RoleName), Date(rev.DeadlineAt)))
}

// BreakGlassAlert is the loud message every owner, the admins and the
// approvals channel get when someone breaks glass: who, which role, why,
// until when, with Acknowledge and Revoke now while nobody answered and
// the answer after.
func BreakGlassAlert(rev *workflow.Review, r *workflow.Request, reminder bool) Message {
	until := "for at most " + strings.ToLower(DurationLabel(r.Duration)) + " from when it is added"
	if !r.RevokeAt.IsZero() {
		until = "until " + Date(r.RevokeAt)
	}
	lead := fmt.Sprintf(":rotating_light: *Break-glass:* %s took *%s* without approval (%s), %s.",
		Mention(r.SubjectID), Escape(r.RoleName), r.Ref(), until)
	var blocks []slack.Block
	if reminder && rev.State == workflow.ReviewOpen {
		blocks = append(blocks, contextBlock(fmt.Sprintf(":bell: *Reminder:* this break-glass use %s still needs an owner's answer.", Date(rev.StartedAt))))
	}
	blocks = append(blocks, section(lead), section("*Reason*\n"+quote(r.Reason)))
	if rev.State == workflow.ReviewOpen {
		v := strconv.FormatInt(rev.ID, 10)
		ack := slack.NewButtonBlockElement(ActionBreakGlassAck, v, plain("Acknowledge")).WithStyle(slack.StylePrimary)
		stop := slack.NewButtonBlockElement(ActionBreakGlassStop, v, plain("Revoke now")).WithStyle(slack.StyleDanger)
		stop.WithConfirm(slack.NewConfirmationBlockObject(plain("Revoke this access now?"),
			plain(truncate(fmt.Sprintf("%s ends at once and the person leaves %s in PostHog.", r.Ref(), r.RoleName), 300)),
			plain("Revoke now"), plain("Back")))
		blocks = append(blocks,
			contextBlock("Acknowledge if this was expected; Revoke now ends the access at once. This stays open until an owner or admin answers, with a reminder every day."),
			slack.NewActionBlock("breakglass_"+v, ack, stop))
	} else {
		verb := ":white_check_mark: *Acknowledged*"
		if rev.Outcome == workflow.BreakGlassRevoked {
			verb = ":no_entry: *Revoked*"
		}
		blocks = append(blocks, section(fmt.Sprintf("%s by %s %s.", verb, Mention(rev.ClosedBy), Date(rev.ClosedAt))))
	}
	text := fmt.Sprintf("Break-glass: %s took %s without approval (%s)", Mention(r.SubjectID), Escape(r.RoleName), r.Ref())
	if reminder && rev.State == workflow.ReviewOpen {
		text = "Reminder: " + text
	}
	return Message{Text: text, Blocks: blocks}
}

// BreakGlassGranted answers the person who broke glass.
func BreakGlassGranted(r *workflow.Request) Message {
	return Text(fmt.Sprintf(":rotating_light: Break-glass: you get *%s* now, without approval, for %s (%s). The role's owners, the admins and the approvals channel have been alerted, and an owner will review it. I'll tell you when you're in.",
		Escape(r.RoleName), strings.ToLower(DurationLabel(r.Duration)), r.Ref()))
}

// RemovedNotice tells a member that someone else removed them from a role,
// and why.
func RemovedNotice(r *workflow.Request) Message {
	by := Mention(r.RequesterID)
	if r.RequesterID == workflow.SystemActor {
		by = "accessbot"
	}
	s := fmt.Sprintf(":lock: %s removed you from *%s* in PostHog (%s): %s. `/access request %s` asks for it again.",
		by, Escape(r.RoleName), r.Ref(), Escape(r.Reason), Escape(r.RoleName))
	return Message{Text: stripMrkdwn(s), Blocks: []slack.Block{section(s)}}
}

// breakGlassCheckbox is the request modal's break-glass option for a role
// that allows it for at most d. An option's description holds at most
// maxOptionText characters (Slack refuses the view otherwise), so who is
// alerted is said in the block's hint.
func breakGlassCheckbox(d time.Duration) *slack.InputBlock {
	opt := slack.NewOptionBlockObject(BreakGlassValue, plain("Break glass: grant it now, without approval"),
		plain(truncate(fmt.Sprintf("Emergencies only: for at most %s.", strings.ToLower(DurationLabel(d))), maxOptionText)))
	hint := plain("The owners, the admins and the approvals channel are alerted at once and an owner reviews it.")
	block := slack.NewInputBlock(BlockBreakGlass, plain("Emergency?"), hint, slack.NewCheckboxGroupsBlockElement(ActionBreakGlassCheck, opt))
	block.Optional = true
	return block
}
