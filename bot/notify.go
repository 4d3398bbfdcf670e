package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// Notify tells people what happened to a request (workflow.Notifier). It
// returns an error only when trying again later could help (Slack rate
// limits, 5xx, timeouts); a delivery that cannot work (a deleted message, a
// channel the bot left) is logged and skipped. A retried delivery does not
// DM anybody twice: approver copies already stored for the request are
// skipped, and copies are updated before anybody is DMed.
func (b *Bot) Notify(ctx context.Context, e workflow.Event) error {
	if e.Review != nil {
		return b.notifyReview(ctx, e)
	}
	if e.Type == workflow.EventDrift {
		if e.Drift == nil {
			return nil
		}
		return b.toOwners(ctx, e.Owners, views.Drift(e.Drift), "drift")
	}
	r := e.Request
	if r == nil {
		b.log.Warn().Str("event", string(e.Type)).Msg("notification without a request")
		return nil
	}
	switch e.Type {
	case workflow.EventCreated:
		return b.notifyCreated(ctx, r, e.Owners)
	case workflow.EventReminder:
		return b.remind(ctx, r, e.Owners)
	case workflow.EventApprovalRecorded:
		return b.updateCopies(ctx, r, e.Owners)
	case workflow.EventExpiryWarning:
		if !r.Active() || r.RevokeQueued {
			return nil // ended meanwhile
		}
		if _, _, err := b.dm(ctx, r.SubjectID, views.ExpiryWarning(r, time.Now())); err != nil {
			return b.sendFailed(err, "DM expiry warning", r.SubjectID, r.ID)
		}
		return nil
	case workflow.EventRevocationOverdue:
		if !r.Overdue() {
			return nil // PostHog took it meanwhile
		}
		return b.toOwners(ctx, e.Owners, views.RevocationOverdue(r), "revocation overdue")
	case workflow.EventApproved, workflow.EventDenied, workflow.EventCancelled, workflow.EventExpired,
		workflow.EventCompleted, workflow.EventRevoked, workflow.EventFailed, workflow.EventExtended:
		if err := b.updateCopies(ctx, r, e.Owners); err != nil {
			return err
		}
		var errs []error
		if m, ok := views.RequesterUpdate(e.Type, r); ok && r.RequesterID != workflow.SystemActor {
			if _, _, err := b.dm(ctx, r.RequesterID, m); err != nil {
				errs = append(errs, b.sendFailed(err, "DM requester", r.RequesterID, r.ID))
			}
		}
		// Someone removed by another person (an owner, a review) is told why.
		if e.Type == workflow.EventCompleted && r.Kind == workflow.KindRemove && r.SubjectID != r.RequesterID {
			errs = append(errs, b.tellRemoved(ctx, r))
		}
		if e.Type == workflow.EventFailed && r.Kind != workflow.KindExtend {
			errs = append(errs, b.toOwners(ctx, deciders(r, e.Owners), views.OwnersFailure(r), "failure"))
		}
		return errors.Join(errs...)
	}
	b.log.Debug().Str("event", string(e.Type)).Msg("notification not shown in Slack")
	return nil
}

// deciders are the owners who get approver messages: the requester and the
// subject cannot decide their own request.
func deciders(r *workflow.Request, owners []string) []string {
	out := make([]string, 0, len(owners))
	for _, o := range owners {
		if o != r.RequesterID && o != r.SubjectID {
			out = append(out, o)
		}
	}
	return out
}

// sendFailed logs a failed Slack call and returns it when it is worth a retry.
func (b *Bot) sendFailed(err error, doing, user string, requestID int64) error {
	if retryable(err) {
		b.log.Warn().Err(err).Str("slack_user", user).Int64("request_id", requestID).Msg(doing + " failed; will retry")
		return fmt.Errorf("%s %s: %w", doing, user, err)
	}
	b.log.Error().Err(err).Str("slack_user", user).Int64("request_id", requestID).Msg(doing + " failed")
	return nil
}

// notifyCreated sends the approver message to each owner and the approvals
// channel, and the requester their own copy, storing every one.
func (b *Bot) notifyCreated(ctx context.Context, r *workflow.Request, owners []string) error {
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("read message refs of request %d: %w", r.ID, err)
	}
	sent := map[string]bool{}
	for _, ref := range refs {
		sent[ref.Channel] = true
	}
	var errs []error
	post := func(channel, who string, m views.Message) {
		if sent[channel] {
			return // delivered by an earlier attempt
		}
		ch, ts, err := b.api.PostMessageContext(ctx, channel, m.Options()...)
		if err != nil {
			errs = append(errs, b.sendFailed(err, "post approver message", who, r.ID))
			return
		}
		sent[channel] = true
		if err := b.wf.RecordMessage(ctx, workflow.MessageRef{RequestID: r.ID, Channel: ch, TS: ts}); err != nil {
			errs = append(errs, fmt.Errorf("record message of request %d: %w", r.ID, err))
		}
	}
	msg := views.ApproverMessage(r, views.ApproverOptions{})
	for _, owner := range deciders(r, owners) {
		ch, err := b.dmChannel(ctx, owner)
		if err != nil {
			errs = append(errs, b.sendFailed(err, "open DM", owner, r.ID))
			continue
		}
		post(ch, owner, msg)
	}
	if b.approvals != "" {
		post(b.approvals, b.approvals, msg)
	}
	ch, err := b.dmChannel(ctx, r.RequesterID)
	if err != nil {
		errs = append(errs, b.sendFailed(err, "open DM", r.RequesterID, r.ID))
	} else {
		post(ch, r.RequesterID, views.RequesterMessage(r, owners))
	}
	return errors.Join(errs...)
}

// updateCopies rewrites every stored message about r to show where it is
// now: the requester's own copy as theirs, every other as the approver
// message (without buttons once decided).
func (b *Bot) updateCopies(ctx context.Context, r *workflow.Request, owners []string) error {
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("read message refs of request %d: %w", r.ID, err)
	}
	if len(refs) == 0 {
		return nil
	}
	requesterDM, err := b.dmChannel(ctx, r.RequesterID)
	if err != nil {
		if err := b.sendFailed(err, "open DM", r.RequesterID, r.ID); err != nil {
			return err
		}
	}
	approver := views.ApproverMessage(r, views.ApproverOptions{})
	requester := views.RequesterMessage(r, owners)
	var errs []error
	for _, ref := range refs {
		m := approver
		if ref.Channel == requesterDM {
			m = requester
		}
		if _, _, _, err := b.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, m.Options()...); err != nil {
			errs = append(errs, b.sendFailed(err, "chat.update in "+ref.Channel, "", r.ID))
		}
	}
	return errors.Join(errs...)
}

// remind DMs each owner a fresh approver message, with the buttons, and
// deletes the one it replaces so each DM keeps one live copy.
func (b *Bot) remind(ctx context.Context, r *workflow.Request, owners []string) error {
	if r.State != workflow.StatePending {
		return nil
	}
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("read message refs of request %d: %w", r.ID, err)
	}
	old := map[string]string{}
	for _, ref := range refs {
		old[ref.Channel] = ref.TS
	}
	msg := views.ApproverMessage(r, views.ApproverOptions{Reminder: true})
	var errs []error
	for _, owner := range deciders(r, owners) {
		ch, ts, err := b.dm(ctx, owner, msg)
		if err != nil {
			errs = append(errs, b.sendFailed(err, "DM reminder", owner, r.ID))
			continue
		}
		if err := b.wf.RecordMessage(ctx, workflow.MessageRef{RequestID: r.ID, Channel: ch, TS: ts}); err != nil {
			errs = append(errs, fmt.Errorf("record reminder of request %d: %w", r.ID, err))
			continue
		}
		if prev, ok := old[ch]; ok && prev != ts {
			if _, _, err := b.api.DeleteMessageContext(ctx, ch, prev); err != nil {
				b.log.Debug().Err(err).Msg("delete the message a reminder replaced")
			}
		}
	}
	return errors.Join(errs...)
}

// toOwners DMs m to each owner.
func (b *Bot) toOwners(ctx context.Context, owners []string, m views.Message, what string) error {
	var errs []error
	for _, o := range owners {
		if _, _, err := b.dm(ctx, o, m); err != nil {
			errs = append(errs, b.sendFailed(err, "DM "+what, o, 0))
		}
	}
	return errors.Join(errs...)
}
