package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// Access reviews and break-glass in Slack: the commands, the buttons and
// the messages. The rules are the workflow's (workflow/review.go,
// workflow/breakglass.go); this file decodes, calls and renders.

// splitRoleReason splits "ROLE REASON" where the role's name may have
// spaces: the longest role name (or id) the text starts with wins; without
// one, the first word is taken as the role, so the error names it.
func (b *Bot) splitRoleReason(ctx context.Context, text string) (role, reason string) {
	text = strings.TrimSpace(text)
	if roles, err := b.wf.Roles(ctx); err == nil {
		best := ""
		for _, r := range roles {
			for _, name := range []string{r.Name, r.ID} {
				if name == "" || len(name) <= len(best) || len(text) <= len(name) {
					continue
				}
				if strings.EqualFold(text[:len(name)], name) && text[len(name)] == ' ' {
					best = name
				}
			}
		}
		if best != "" {
			return best, strings.TrimSpace(text[len(best):])
		}
	}
	role, reason, _ = strings.Cut(text, " ")
	return role, strings.TrimSpace(reason)
}

// breakGlass runs `/access breakglass ROLE REASON`.
func (b *Bot) breakGlass(ctx context.Context, t target, text string) {
	role, reason := b.splitRoleReason(ctx, text)
	r, err := b.wf.BreakGlass().Use(ctx, workflow.NewRequest{Kind: workflow.KindAdd, RequesterID: t.user, Role: role, Reason: reason})
	if err != nil {
		b.replyError(ctx, t, "break glass", err)
		return
	}
	b.reply(ctx, t, views.BreakGlassGranted(r))
}

// startReview runs `/access review ROLE`.
func (b *Bot) startReview(ctx context.Context, t target, role string) {
	rev, err := b.wf.Reviews().Start(ctx, t.user, role)
	if err != nil {
		b.replyError(ctx, t, "start review", err)
		return
	}
	b.reply(ctx, t, views.ReviewStarted(rev))
}

// reviewAction turns a review or break-glass button into a commitment:
// the answer is stored before the click is acknowledged (commitThen), and
// every copy shows it once its notification runs.
func (b *Bot) reviewAction(t target, act *slack.BlockAction) (what string, c commitment, err error) {
	switch act.ActionID {
	case views.ActionReviewKeep, views.ActionReviewRemove:
		id, member, err := views.ParseReviewItemValue(act.Value)
		if err != nil {
			return "", nil, malformed("%v", err)
		}
		d := workflow.DecisionKeep
		if act.ActionID == views.ActionReviewRemove {
			d = workflow.DecisionRemove
		}
		return "review " + string(d), func(ctx context.Context) (func(context.Context), error) {
			_, err := b.wf.Reviews().Decide(ctx, id, member, t.user, d)
			return nil, err
		}, nil
	case views.ActionReviewKeepRest:
		id, err := requestID(act.Value)
		if err != nil {
			return "", nil, err
		}
		return "review keep remaining", func(ctx context.Context) (func(context.Context), error) {
			n, ownLeft, err := b.wf.Reviews().KeepRemaining(ctx, id, t.user)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) { b.reply(ctx, t, views.KeptRemaining(id, n, ownLeft)) }, nil
		}, nil
	case views.ActionBreakGlassAck, views.ActionBreakGlassStop:
		id, err := requestID(act.Value)
		if err != nil {
			return "", nil, err
		}
		answer := b.wf.BreakGlass().Acknowledge
		if act.ActionID == views.ActionBreakGlassStop {
			answer = b.wf.BreakGlass().RevokeNow
		}
		return "answer break-glass", func(ctx context.Context) (func(context.Context), error) {
			_, err := answer(ctx, id, t.user)
			return nil, err
		}, nil
	}
	return "", nil, malformed("action %q is not a review action", act.ActionID)
}

// notifyReview delivers the notifications of reviews and break-glass.
func (b *Bot) notifyReview(ctx context.Context, e workflow.Event) error {
	rev := e.Review
	switch e.Type {
	case workflow.EventReviewStarted:
		return b.postReview(ctx, rev, e.ReviewItems, e.Owners)
	case workflow.EventReviewDecided:
		pages := map[int]bool{}
		for _, pos := range e.Changed {
			pages[views.ReviewPage(pos)] = true
		}
		return b.updateReview(ctx, rev, e.ReviewItems, pages)
	case workflow.EventReviewReminder:
		if rev.State != workflow.ReviewOpen {
			return nil
		}
		return b.toOwners(ctx, fmt.Sprintf("%s/%d/%d", e.Type, rev.ID, rev.Version), e.Owners, views.ReviewReminder(rev, e.ReviewItems), "review reminder")
	case workflow.EventReviewClosed:
		err := b.updateReview(ctx, rev, e.ReviewItems, nil)
		return errors.Join(err, b.toOwners(ctx, fmt.Sprintf("%s/%d", e.Type, rev.ID), e.Owners, views.ReviewClosed(rev, e.ReviewItems), "review summary"))
	case workflow.EventBreakGlassUsed, workflow.EventBreakGlassReminder:
		if e.Request == nil || rev.State != workflow.ReviewOpen {
			return nil
		}
		return b.postBreakGlass(ctx, rev, e.Request, e.Owners, e.Type == workflow.EventBreakGlassReminder)
	case workflow.EventBreakGlassAnswered:
		if e.Request == nil {
			return nil
		}
		msg := views.BreakGlassAlert(rev, e.Request, false)
		return b.updateReviewCopies(ctx, rev.ID, func(workflow.ReviewMessage) (views.Message, bool) { return msg, true })
	}
	b.log.Debug().Str("event", string(e.Type)).Msg("review notification not shown in Slack")
	return nil
}

// postReview DMs every page of a review to each owner, recording each copy;
// copies an earlier attempt recorded are not sent again.
func (b *Bot) postReview(ctx context.Context, rev *workflow.Review, items []workflow.ReviewItem, owners []string) error {
	refs, err := b.wf.Reviews().Messages(ctx, rev.ID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read messages of review %d: %w", rev.ID, err)}
	}
	pages := views.ReviewPages(rev, items)
	var errs []error
	for _, owner := range owners {
		b.warmEmail(owner) // their answer checks it: not their own line
		ch, err := b.dmChannelPaced(ctx, owner)
		if err != nil {
			errs = append(errs, b.sendFailed(err, "open DM", owner, 0))
			continue
		}
		for p, m := range pages {
			if slices.ContainsFunc(refs, func(r workflow.ReviewMessage) bool { return r.Channel == ch && r.Page == p }) {
				continue
			}
			if err := b.postReviewCopy(ctx, rev.ID, ch, p, m); err != nil {
				errs = append(errs, b.sendFailed(err, "DM review", owner, 0))
				break // keep the pages in order: the retry sends the rest
			}
		}
	}
	return errors.Join(errs...)
}

func (b *Bot) postReviewCopy(ctx context.Context, reviewID int64, channel string, page int, m views.Message) error {
	ch, ts, err := b.post(ctx, channel, m)
	if err != nil {
		return err
	}
	if err := b.wf.Reviews().RecordMessage(ctx, workflow.ReviewMessage{ReviewID: reviewID, Channel: ch, Page: page, TS: ts}); err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("record message of review %d: %w", reviewID, err)}
	}
	return nil
}

// updateReview rewrites every owner's copy of the given pages (all pages
// when pages is nil).
func (b *Bot) updateReview(ctx context.Context, rev *workflow.Review, items []workflow.ReviewItem, pages map[int]bool) error {
	rendered := views.ReviewPages(rev, items)
	return b.updateReviewCopies(ctx, rev.ID, func(ref workflow.ReviewMessage) (views.Message, bool) {
		if (pages != nil && !pages[ref.Page]) || ref.Page >= len(rendered) {
			return views.Message{}, false
		}
		return rendered[ref.Page], true
	})
}

func (b *Bot) updateReviewCopies(ctx context.Context, reviewID int64, render func(workflow.ReviewMessage) (views.Message, bool)) error {
	refs, err := b.wf.Reviews().Messages(ctx, reviewID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read messages of review %d: %w", reviewID, err)}
	}
	var errs []error
	for _, ref := range refs {
		m, ok := render(ref)
		if !ok {
			continue
		}
		err := b.call(ctx, "chat.update", ref.Channel, func(ctx context.Context) error {
			_, _, _, err := b.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, m.Options()...)
			return err
		})
		if err != nil {
			errs = append(errs, b.sendFailed(err, "chat.update review in "+ref.Channel, "", 0))
		}
	}
	return errors.Join(errs...)
}

// postBreakGlass sends the break-glass alert to each owner and admin and
// the approvals channel, recording every copy. A reminder replaces each
// earlier copy with a fresh one, so the alert is on top of every DM.
func (b *Bot) postBreakGlass(ctx context.Context, rev *workflow.Review, r *workflow.Request, who []string, reminder bool) error {
	refs, err := b.wf.Reviews().Messages(ctx, rev.ID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read messages of review %d: %w", rev.ID, err)}
	}
	old := map[string]string{}
	for _, ref := range refs {
		old[ref.Channel] = ref.TS
	}
	msg := views.BreakGlassAlert(rev, r, reminder)
	var channels []string
	for _, o := range who {
		ch, err := b.dmChannelPaced(ctx, o)
		if err != nil {
			err = b.sendFailed(err, "open DM", o, r.ID)
			if err != nil {
				return err
			}
			continue
		}
		channels = append(channels, ch)
	}
	if b.approvals != "" {
		channels = append(channels, b.approvals)
	}
	var errs []error
	for _, ch := range channels {
		if _, sent := old[ch]; sent && !reminder {
			continue // delivered by an earlier attempt
		}
		// Each channel gets an alert or a reminder once, however often its
		// job comes back for the channels Slack held back.
		err := b.once(fmt.Sprintf("breakglass/%t/%d/%d/%s", reminder, rev.ID, rev.Version, ch), func() error {
			if err := b.postReviewCopy(ctx, rev.ID, ch, 0, msg); err != nil {
				return b.sendFailed(err, "post break-glass alert", ch, r.ID)
			}
			if prev, ok := old[ch]; ok && reminder {
				if err := b.delete(ctx, ch, prev); err != nil {
					b.log.Debug().Err(err).Msg("delete the alert a reminder replaced")
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tellRemoved DMs the member r removed why. A member the bot never saw in
// Slack (removed by an access review) is found by their email
// (users.lookupByEmail, scope users:read.email); one Slack does not know is
// left alone.
func (b *Bot) tellRemoved(ctx context.Context, r *workflow.Request) error {
	user := r.SubjectID
	if workflow.PostHogOnlySubject(user) {
		u, err := b.api.GetUserByEmailContext(ctx, r.SubjectEmail)
		if err != nil {
			return b.sendFailed(err, "find removed member by email", "", r.ID)
		}
		user = u.ID
	}
	return b.once(fmt.Sprintf("removed/%d/%s", r.ID, user), func() error {
		return b.sendFailed(b.dmNotify(ctx, user, views.RemovedNotice(r)), "DM removed member", user, r.ID)
	})
}

// breakGlassRequested reports whether the request modal's break-glass box
// is ticked.
func breakGlassRequested(cb *slack.InteractionCallback) bool {
	v, ok := stateOf(cb, views.BlockBreakGlass, views.ActionBreakGlassCheck)
	return ok && slices.ContainsFunc(v.SelectedOptions, func(o slack.OptionBlockObject) bool { return o.Value == views.BreakGlassValue })
}

// breakGlassLimit is the longest break-glass grant role allows (0: none).
func (b *Bot) breakGlassLimit(role workflow.Role) time.Duration {
	if ok, longest := b.wf.BreakGlass().Allowed(role); ok {
		return longest
	}
	return 0
}
