package views

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Limits of the lists, so a message stays within Slack's 50 blocks.
const (
	MaxListed  = 20 // requests in `/access list`
	MaxPending = 12 // requests with buttons in `/access pending`
	// maxOverdueListed bounds the overdue revocations shown above them.
	maxOverdueListed = 6
)

// RequestList is the caller's requests and their states (`/access list`).
func RequestList(reqs []*workflow.Request) Message {
	if len(reqs) == 0 {
		return Text("You have no requests yet. `/access request` asks for a role.")
	}
	b := newBudget()
	blocks := b.add(section("*Your requests* (newest first)"))
	for i, r := range reqs {
		line := requestLine(r)
		if i == MaxListed || !b.fits(line) {
			blocks = append(blocks, contextBlock(fmt.Sprintf("Showing your %d newest requests; older ones are not shown.", i)))
			break
		}
		blocks = append(blocks, line)
	}
	return Message{Text: fmt.Sprintf("Your requests: %d", len(reqs)), Blocks: blocks}
}

// requestLine is one request in a list, with a Cancel button while pending.
func requestLine(r *workflow.Request) slack.Block {
	s := summary(r) + "\n"
	if o := Outcome(r); o != "" {
		s += firstLine(o)
	} else {
		s += StateLabel(r.State) + " · approvals " + approvalsText(r)
	}
	var acc *slack.Accessory
	switch {
	case r.State == workflow.StatePending:
		acc = slack.NewAccessory(slack.NewButtonBlockElement(ActionCancel, strconv.FormatInt(r.ID, 10), plain("Cancel")))
	case r.Active() && !r.RevokeQueued:
		acc = slack.NewAccessory(doneButton(r.ID))
	}
	return slack.NewSectionBlock(mrkdwn(s), nil, acc)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(s, ":")
}

// pendingItem is a request waiting for the reader's decision, with buttons.
func pendingItem(r *workflow.Request) []slack.Block {
	s := fmt.Sprintf("*%s* · %s asks %s.\n%s", r.Ref(), Mention(r.RequesterID), what(r), quote(oneLine(r.Reason)))
	return []slack.Block{
		section(s),
		contextBlock("Approvals " + approvalsText(r) + " · requested " + Date(r.CreatedAt)),
		decisionButtons(DecisionBlockID(r.ID), r.ID),
	}
}

// overdueItem is a grant whose revocation is overdue, with a Retry button.
func overdueItem(r *workflow.Request) slack.Block {
	s := fmt.Sprintf(":rotating_light: *%s* · *revocation overdue* since %s: %s still has *%s*; I keep retrying.",
		r.Ref(), Date(r.OverdueSince), Mention(r.SubjectID), Escape(r.RoleName))
	retry := slack.NewButtonBlockElement(ActionRetryRevoke, strconv.FormatInt(r.ID, 10), plain("Retry now")).WithStyle(slack.StyleDanger)
	return slack.NewSectionBlock(mrkdwn(s), nil, slack.NewAccessory(retry))
}

// PendingList is the requests waiting for the caller's decision, each with
// Approve / Deny buttons, and the grants the caller manages whose
// revocation is overdue (`/access pending`).
func PendingList(reqs, overdue []*workflow.Request) Message {
	if len(reqs) == 0 && len(overdue) == 0 {
		return Text(":relaxed: Nothing is waiting for your decision.")
	}
	var blocks []slack.Block
	b := newBudget()
	for i, r := range overdue {
		item := overdueItem(r)
		if i == maxOverdueListed || !b.fits(item) {
			blocks = append(blocks, b.add(contextBlock(fmt.Sprintf("Showing %d of %d overdue revocations.", i, len(overdue))))...)
			break
		}
		blocks = append(blocks, item)
	}
	if len(reqs) == 0 {
		return Message{Text: fmt.Sprintf("%d revocations overdue", len(overdue)), Blocks: blocks}
	}
	blocks = append(blocks, b.add(section(fmt.Sprintf("*%d %s waiting for your decision*", len(reqs), plural(len(reqs), "request is", "requests are"))))...)
	for i, r := range reqs {
		item := append([]slack.Block{slack.NewDividerBlock()}, pendingItem(r)...)
		if i == MaxPending || !b.fits(item...) {
			blocks = append(blocks, contextBlock(fmt.Sprintf("Showing %d of %d. Decide on these first, then run `/access pending` again.", i, len(reqs))))
			break
		}
		blocks = append(blocks, item...)
	}
	return Message{Text: fmt.Sprintf("%d requests waiting for your decision", len(reqs)), Blocks: blocks}
}

// RolesList is every PostHog role with its owners, member count and rules
// (`/access roles`).
func RolesList(roles []workflow.RoleInfo) Message {
	if len(roles) == 0 {
		return Text("PostHog has no roles yet.")
	}
	var lines []string
	for _, r := range roles {
		s := "*" + Escape(r.Name) + "*"
		s += fmt.Sprintf(" · %d %s", r.Members, plural(r.Members, "member", "members"))
		if len(r.Owners) > 0 {
			s += " · owners " + mentions(r.Owners)
		} else {
			s += " · no owners (admins decide)"
		}
		if r.Rules.AutoApprove {
			s += " · approved automatically"
		} else if r.Rules.ApprovalsRequired > 1 {
			s += fmt.Sprintf(" · needs %d approvals", r.Rules.ApprovalsRequired)
		}
		if r.Rules.MaxDuration > 0 {
			s += " · at most " + strings.ToLower(DurationLabel(r.Rules.MaxDuration))
		}
		lines = append(lines, s)
	}
	b := newBudget()
	blocks := b.add(section(fmt.Sprintf("*PostHog roles* (%d). `/access request ROLE` asks for one.", len(roles))))
	shown := len(lines)
	for shown > 0 {
		packed := packLines(lines[:shown], maxMessageBlocks-noteReserveBlocks-len(blocks))
		if TextChars(packed...) <= b.chars-noteReserveChars && len(packed) <= b.blocks-noteReserveBlocks {
			blocks = append(blocks, packed...)
			break
		}
		// Too long: show fewer, keeping whole lines.
		shown = shown * 9 / 10
	}
	if shown < len(lines) {
		blocks = append(blocks, contextBlock(fmt.Sprintf("Showing %d of %d roles: Slack takes no more in one message. `/access owners ROLE` shows one role.", shown, len(roles))))
	}
	return Message{Text: fmt.Sprintf("%d PostHog roles", len(roles)), Blocks: blocks}
}

// packLines puts lines into as few sections as Slack's text limit allows,
// at most maxBlocks, noting what did not fit.
func packLines(lines []string, maxBlocks int) []slack.Block {
	var blocks []slack.Block
	var cur strings.Builder
	limit := maxSectionText - 100
	for i, l := range lines {
		if cur.Len() > 0 && cur.Len()+len(l)+1 > limit {
			if len(blocks) == maxBlocks-1 {
				blocks = append(blocks, section(cur.String()), contextBlock(fmt.Sprintf("…and %d more.", len(lines)-i)))
				return blocks
			}
			blocks = append(blocks, section(cur.String()))
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	if cur.Len() > 0 {
		blocks = append(blocks, section(cur.String()))
	}
	return blocks
}

// OwnersList says who decides requests for a role (`/access owners ROLE`).
func OwnersList(role workflow.Role, owners []string) Message {
	if len(owners) == 0 {
		return Text(fmt.Sprintf("*%s* has no owners: bot admins decide its requests.", Escape(role.Name)))
	}
	return Text(fmt.Sprintf("*%s* is owned by %s.", Escape(role.Name), mentions(owners)))
}

// OwnersChanged confirms an owner change.
func OwnersChanged(role workflow.Role, user string, added bool, owners []string) Message {
	verb := "is now an owner of"
	if !added {
		verb = "is no longer an owner of"
	}
	s := fmt.Sprintf(":white_check_mark: %s %s *%s*.", Mention(user), verb, Escape(role.Name))
	if len(owners) > 0 {
		s += " Owners: " + mentions(owners) + "."
	} else {
		s += " It has no owners left, so the default owners decide."
	}
	return Text(s)
}

// Help is the usage of `/access`.
func Help() Message {
	s := "*What `/access` can do*\n" +
		"`/access` or `/access request [ROLE]` — ask for a PostHog role\n" +
		"`/access remove ROLE` — ask to leave a role (owners and admins can add `@user` to remove someone else)\n" +
		"`/access list` — your requests and where they are\n" +
		"`/access pending` — requests waiting for your decision\n" +
		"`/access cancel ID` — withdraw your pending request, e.g. `/access cancel 7`\n" +
		"`/access extend ID [DURATION]` — ask to extend your grant, e.g. `/access extend 7 8h`\n" +
		"`/access done ID` — end your own grant now\n" +
		"`/access revoke ID [REASON]` — owners and admins: end a granted access early (retries an overdue revocation)\n" +
		"`/access breakglass ROLE REASON` — emergencies, on roles that allow it: the role now, without approval, for a short time; owners are alerted and review it\n" +
		"`/access review ROLE` — owners and admins: start an access review of a role's members now\n" +
		"`/access roles` — PostHog roles, their owners and members\n" +
		"`/access owners ROLE` — who decides for a role\n" +
		"`/access owners add ROLE @user` / `/access owners remove ROLE @user` — change owners (admins)\n" +
		"`/access audit [SINCE]` — admins: the audit log as a CSV file in your DMs (SINCE: `2024-05-01`, an RFC 3339 time, or `7d`)\n" +
		"`/access help` — this message"
	return Message{Text: "How to use /access", Blocks: []slack.Block{section(s)}}
}

// Usage is Help preceded by what was wrong with the command.
func Usage(problem string) Message {
	h := Help()
	blocks := append([]slack.Block{section(":thinking_face: " + problem)}, h.Blocks...)
	return Message{Text: problem, Blocks: blocks}
}
