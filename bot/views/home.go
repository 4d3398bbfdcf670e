package views

import (
	"fmt"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Limits of the App Home tab, so it stays within Slack's 100 blocks.
const (
	HomeMaxPending = 15
	HomeMaxMine    = 20
)

// HomeInput is what the App Home tab shows one person.
type HomeInput struct {
	Mine    []*workflow.Request // their recent requests, newest first
	Pending []*workflow.Request // requests waiting for their decision
	Overdue []*workflow.Request // grants they manage whose revocation is overdue
}

// Home is the App Home tab: a button to ask for access, the requests waiting
// for the reader's decision (with buttons) and the reader's own recent
// requests with their states.
func Home(in HomeInput) slack.HomeTabViewRequest {
	newReq := slack.NewButtonBlockElement(ActionNewRequest, "request", plain("Request access")).WithStyle(slack.StylePrimary)
	blocks := []slack.Block{
		header("Access to PostHog"),
		slack.NewSectionBlock(mrkdwn("Ask for a PostHog role and its owners approve or deny it here in Slack. `/access help` lists everything I can do."),
			nil, slack.NewAccessory(newReq)),
		slack.NewDividerBlock(),
	}

	if len(in.Overdue) > 0 {
		blocks = append(blocks, header(fmt.Sprintf("Revocations overdue (%d)", len(in.Overdue))))
		for i, r := range in.Overdue {
			if i == HomeMaxPending {
				blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more. `/access pending` lists them all.", len(in.Overdue)-i)))
				break
			}
			blocks = append(blocks, overdueItem(r))
		}
		blocks = append(blocks, slack.NewDividerBlock())
	}
	blocks = append(blocks, header(fmt.Sprintf("Waiting for your decision (%d)", len(in.Pending))))
	if len(in.Pending) == 0 {
		blocks = append(blocks, contextBlock("Nothing is waiting for you."))
	}
	for i, r := range in.Pending {
		if i == HomeMaxPending {
			blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more. `/access pending` lists them all.", len(in.Pending)-i)))
			break
		}
		blocks = append(blocks, pendingItem(r)...)
	}
	blocks = append(blocks, slack.NewDividerBlock(), header("Your requests"))
	if len(in.Mine) == 0 {
		blocks = append(blocks, contextBlock("You have not asked for anything yet."))
	}
	for i, r := range in.Mine {
		if i == HomeMaxMine {
			blocks = append(blocks, contextBlock("Older requests are not shown."))
			break
		}
		blocks = append(blocks, requestLine(r))
	}
	return slack.HomeTabViewRequest{
		Type:       slack.VTHomeTab,
		CallbackID: "accessbot_home",
		Blocks:     slack.Blocks{BlockSet: blocks},
	}
}
