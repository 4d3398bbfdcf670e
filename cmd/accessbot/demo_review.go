package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
)

// seedReview gives Finance two members added in PostHog's UI, outside
// accessbot, with what PostHog knows of their logins, for the review.
func (d *demo) seedReview() {
	fin := d.roles["Finance"]
	d.ph.AddMembership(fin, d.uuids[demoAlice])
	d.ph.AddMembership(fin, d.uuids[demoAdmin])
	d.ph.SetLastLogin(d.uuids[demoAlice], time.Date(2026, 3, 2, 16, 40, 0, 0, time.UTC))
	d.ph.SetLastLogin(d.uuids[demoAdmin], time.Date(2026, 11, 24, 9, 5, 0, 0, time.UTC))
	d.ph.SetTwoFactor(d.uuids[demoAdmin], true)
}

// playReviews is the demo's access review of Finance and break-glass on
// Incident Response.
func (d *demo) playReviews() error {
	// An access review: carol reviews Finance, removes alice, keeps the rest.
	d.say("carol (owner of Finance) types `/access review Finance`")
	if _, err := d.post("/slack/commands", d.slack.SlashCommand(demoCarol, "review Finance").Form()); err != nil {
		return err
	}
	page, err := d.waitMessage(slacktest.DMChannel(demoCarol), views.ActionReviewKeepRest)
	if err != nil {
		return fmt.Errorf("carol got no review: %w", err)
	}
	d.show("carol gets every member PostHog lists for Finance — also those added outside accessbot — with last login, 2FA and how they got access:")
	d.quote(shown(page))
	aliceValue := ""
	for _, m := range d.ph.Memberships(d.roles["Finance"]) {
		if m.User.UUID == d.uuids[demoAlice] {
			aliceValue = "1:" + m.ID
		}
	}
	d.say("carol clicks Remove on alice (who has not logged in since March), then Keep all remaining")
	if err := d.clickValue(demoCarol, page, views.ActionReviewRemove, aliceValue); err != nil {
		return err
	}
	if err := d.waitFor("alice to leave Finance", func() bool { return !d.ph.HasMember(d.roles["Finance"], d.uuids[demoAlice]) }); err != nil {
		return err
	}
	if err := d.expectMessage(demoAlice, "removed you from", "a removal job takes alice out of Finance in PostHog; alice is told why:"); err != nil {
		return err
	}
	if err := d.waitFor("the review page to show the answer", func() bool {
		m, _ := d.slack.Message(page.Channel, page.TS)
		return strings.Contains(string(m.Blocks), "*Removed* by")
	}); err != nil {
		return err
	}
	page, _ = d.slack.Message(page.Channel, page.TS)
	if err := d.click(demoCarol, page, views.ActionReviewKeepRest); err != nil {
		return err
	}
	if err := d.expectMessage(demoCarol, "is closed", "the review closes; carol gets the summary:"); err != nil {
		return err
	}
	closed, _ := d.slack.Message(page.Channel, page.TS)
	d.show("and her review message now reads:")
	d.quote(shown(closed))
	if !d.ph.HasMember(d.roles["Finance"], d.uuids[demoAdmin]) {
		return errors.New("a kept member lost Finance")
	}

	// Break-glass: dave takes Incident Response without approval; bob revokes.
	d.say("dave types `/access breakglass Incident Response checkout is down, paging INC-2240`")
	if _, err := d.post("/slack/commands", d.slack.SlashCommand(demoDave, "breakglass Incident Response checkout is down, paging INC-2240").Form()); err != nil {
		return err
	}
	if err := d.waitMember(demoDave, "Incident Response"); err != nil {
		return err
	}
	reply, err := d.waitEphemeral(demoDave, "Break-glass")
	if err != nil {
		return err
	}
	d.show("granted at once, no approval; dave sees:")
	d.quote(reply)
	alert, err := d.waitMessage(slacktest.DMChannel(demoBob), views.ActionBreakGlassStop)
	if err != nil {
		return fmt.Errorf("bob was not alerted: %w", err)
	}
	for _, ch := range []string{slacktest.DMChannel(demoAdmin), demoChan} {
		if _, err := d.waitMessage(ch, views.ActionBreakGlassStop); err != nil {
			return fmt.Errorf("no break-glass alert in %s: %w", ch, err)
		}
	}
	d.show("bob (owner), the admin and %s get at once:", demoChan)
	d.quote(shown(alert))
	d.say("bob clicks Revoke now")
	if err := d.click(demoBob, alert, views.ActionBreakGlassStop); err != nil {
		return err
	}
	if err := d.waitFor("dave to leave Incident Response", func() bool {
		return !d.ph.HasMember(d.roles["Incident Response"], d.uuids[demoDave])
	}); err != nil {
		return err
	}
	if err := d.waitFor("every alert to show the answer", func() bool {
		for _, ch := range []string{slacktest.DMChannel(demoBob), slacktest.DMChannel(demoAdmin), demoChan} {
			if m, err := d.waitMessage(ch, "Break-glass"); err != nil || !strings.Contains(string(m.Blocks), "*Revoked* by") {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	answered, _ := d.slack.Message(alert.Channel, alert.TS)
	d.show("the grant ends through the grant lifecycle; every copy of the alert now reads:")
	d.quote(shown(answered))
	if err := d.expectMessage(demoDave, "ended", "dave is told:"); err != nil {
		return err
	}

	d.say("an auditor exports the evidence: GET /audit/export?action=review_ (CLI: `accessbot audit export --action review_`)")
	for _, prefix := range []string{"review_", "break_glass_"} {
		body, err := d.get("/audit/export?format=jsonl&action=" + prefix)
		if err != nil {
			return err
		}
		n, err := printAudit(d.out, body)
		if err != nil {
			return err
		}
		if n < 2 || strings.Contains(body, `"action":"request_created"`) {
			return fmt.Errorf("the %s export has %d entries or others", prefix, n)
		}
	}
	return nil
}

// clickValue is user clicking the element with action (the one with value,
// when several share it) in m.
func (d *demo) clickValue(user string, m slacktest.Message, action, value string) error {
	payload, err := d.slack.ClickMessage(user, m, action, value)
	if err != nil {
		return err
	}
	_, err = d.post("/slack/interactions", slacktest.InteractionForm(payload))
	return err
}
