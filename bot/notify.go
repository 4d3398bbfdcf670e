package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// Notify tells people what happened to a request (workflow.Notifier).
//
// Every call is paced to Slack's tiers. It returns nil, a
// *workflow.TemporaryError carrying Slack's Retry-After when Slack
// rate-limits or briefly fails (the job comes back then), or a permanent
// error. A delivery that cannot work for one recipient (a deleted message,
// a channel the bot left) is logged as an error, counted, and skipped, and
// the others still get theirs.
//
// A retried delivery does not DM anybody twice and does not rewrite a copy
// that already shows the request's latest state: approver copies already
// posted are skipped, and each stored copy remembers what it shows. The
// requester's DM about a decision comes in its own delivery
// (AudienceRequester), so it never waits on the approvers' copies.
func (b *Bot) Notify(ctx context.Context, e workflow.Event) error {
	if e.Review != nil {
		return b.notifyReview(ctx, e)
	}
	if e.Type == workflow.EventDrift {
		if e.Drift == nil {
			return nil
		}
		return b.toOwners(ctx, "drift/"+digest(e.Drift), e.Owners, views.Drift(e.Drift), "drift")
	}
	r := e.Request
	if r == nil {
		b.log.Warn().Str("event", string(e.Type)).Msg("notification without a request")
		return nil
	}
	if e.Audience == workflow.AudienceRequester {
		m, ok := views.RequesterUpdate(e.Type, r)
		if !ok || r.RequesterID == workflow.SystemActor {
			return nil
		}
		return b.once(fmt.Sprintf("%s/%d/%s", e.Type, r.ID, r.RequesterID), func() error {
			return b.dropPermanent(b.dmNotify(ctx, r.RequesterID, m), "DM requester", r.RequesterID, r.ID)
		})
	}
	switch e.Type {
	case workflow.EventCreated:
		return b.notifyCreated(ctx, r, e.Owners)
	case workflow.EventReminder:
		return b.remind(ctx, r, e.Owners)
	case workflow.EventApprovalRecorded:
		return b.syncCopies(ctx, r, e.Owners)
	case workflow.EventExpiryWarning:
		if !r.Active() || r.RevokeQueued {
			return nil // ended meanwhile
		}
		return b.once(fmt.Sprintf("%s/%d/%d/%s", e.Type, r.ID, r.Version, r.SubjectID), func() error {
			return b.dropPermanent(b.dmNotify(ctx, r.SubjectID, views.ExpiryWarning(r, time.Now())), "DM expiry warning", r.SubjectID, r.ID)
		})
	case workflow.EventRevocationOverdue:
		if !r.Overdue() {
			return nil // PostHog took it meanwhile
		}
		return b.toOwners(ctx, fmt.Sprintf("%s/%d/%d", e.Type, r.ID, r.Version), e.Owners, views.RevocationOverdue(r), "revocation overdue")
	case workflow.EventApproved, workflow.EventDenied, workflow.EventCancelled, workflow.EventExpired,
		workflow.EventCompleted, workflow.EventRevoked, workflow.EventFailed, workflow.EventExtended:
		if err := b.syncCopies(ctx, r, e.Owners); err != nil {
			return err
		}
		// Someone removed by another person (an owner, a review) is told why.
		if e.Type == workflow.EventCompleted && r.Kind == workflow.KindRemove && r.SubjectID != r.RequesterID {
			if err := b.tellRemoved(ctx, r); err != nil {
				return err
			}
		}
		if e.Type == workflow.EventFailed && r.Kind != workflow.KindExtend {
			return b.toOwners(ctx, fmt.Sprintf("%s/%d", e.Type, r.ID), deciders(r, e.Owners), views.OwnersFailure(r), "failure")
		}
		return nil
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

// sendFailed classifies a failed Slack call of a delivery: worth a retry
// (rate limits with their Retry-After, 5xx, timeouts) → a
// *workflow.TemporaryError; anything else is logged, counted and dropped.
func (b *Bot) sendFailed(err error, doing, user string, requestID int64) error {
	if err == nil || workflow.IsTemporary(err) {
		return err
	}
	if temp := asTemporary(err); temp != nil {
		return temp
	}
	return b.dropPermanent(err, doing, user, requestID)
}

// dropPermanent logs and counts a delivery that can never work and
// swallows it; a temporary error is returned for the job to retry.
func (b *Bot) dropPermanent(err error, doing, user string, requestID int64) error {
	if err == nil || workflow.IsTemporary(err) || errors.Is(err, context.Canceled) {
		return err
	}
	b.log.Error().Err(err).Str("slack_user", user).Int64("request_id", requestID).Str("doing", doing).Msg("notification failed for good; dropped")
	if b.dropped != nil {
		b.dropped(slackErrorCode(err))
	}
	return nil
}

// dmChannelPaced is dmChannel for notifications: paced, with typed errors.
func (b *Bot) dmChannelPaced(ctx context.Context, user string) (string, error) {
	b.dmMu.Lock()
	ch, ok := b.dms[user]
	b.dmMu.Unlock()
	if ok {
		return ch, nil
	}
	err := b.call(ctx, "conversations.open", "", func(ctx context.Context) error {
		var err error
		ch, err = b.dmChannel(ctx, user)
		return err
	})
	return ch, err
}

// dmNotify posts m to user's DM, paced.
func (b *Bot) dmNotify(ctx context.Context, user string, m views.Message) error {
	_, _, err := b.postNotify(ctx, user, m)
	return err
}

func (b *Bot) postNotify(ctx context.Context, user string, m views.Message) (channel, ts string, err error) {
	ch, err := b.dmChannelPaced(ctx, user)
	if err != nil {
		return "", "", err
	}
	return b.post(ctx, ch, m)
}

// delete removes the message at ts in channel with chat.delete, paced.
func (b *Bot) delete(ctx context.Context, channel, ts string) error {
	return b.call(ctx, "chat.delete", channel, func(ctx context.Context) error {
		_, _, err := b.api.DeleteMessageContext(ctx, channel, ts)
		return err
	})
}

// post sends m to channel with chat.postMessage, paced.
func (b *Bot) post(ctx context.Context, channel string, m views.Message) (ch, ts string, err error) {
	err = b.call(ctx, "chat.postMessage", channel, func(ctx context.Context) error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, m.Options()...)
		return err
	})
	return ch, ts, err
}

// notifyCreated sends the approver message to each owner and the approvals
// channel, and the requester their own copy, storing every one with what
// it shows.
func (b *Bot) notifyCreated(ctx context.Context, r *workflow.Request, owners []string) error {
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read message refs of request %d: %w", r.ID, err)}
	}
	sent := map[string]bool{}
	for _, ref := range refs {
		sent[ref.Channel] = true
	}
	var temp error
	deliver := func(channel, who string, m views.Message) {
		if sent[channel] || temp != nil {
			return // delivered by an earlier attempt, or Slack is refusing now
		}
		ch, ts, err := b.post(ctx, channel, m)
		if err != nil {
			temp = b.dropPermanent(err, "post approver message", who, r.ID)
			return
		}
		sent[channel] = true
		if err := b.wf.RecordMessage(ctx, workflow.MessageRef{RequestID: r.ID, Channel: ch, TS: ts, Shown: shown(m)}); err != nil {
			temp = &workflow.TemporaryError{Err: fmt.Errorf("record message of request %d: %w", r.ID, err)}
		}
	}
	msg := views.ApproverMessage(r, views.ApproverOptions{})
	for _, owner := range deciders(r, owners) {
		b.warmEmail(owner)
		ch, err := b.dmChannelPaced(ctx, owner)
		if err != nil {
			if temp = b.dropPermanent(err, "open DM", owner, r.ID); temp != nil {
				return temp
			}
			continue
		}
		deliver(ch, owner, msg)
	}
	if b.approvals != "" {
		deliver(b.approvals, b.approvals, msg)
	}
	ch, err := b.dmChannelPaced(ctx, r.RequesterID)
	if err != nil {
		if err := b.dropPermanent(err, "open DM", r.RequesterID, r.ID); err != nil {
			return err
		}
		return temp
	}
	deliver(ch, r.RequesterID, views.RequesterMessage(r, owners))
	return temp
}

// syncCopies brings every stored message about r to r's state: the
// requester's own copy as theirs, every other as the approver message
// (without buttons once decided). r is read when the delivery starts, and
// one request's deliveries run one at a time (the job queue orders them,
// and copyLocks within this process), so whichever event's delivery runs
// first shows the newest state and the later ones find nothing left to do:
// a copy whose Shown already matches is not touched. It stops at the first
// rate limit (the next copy would hit it too) and returns it.
func (b *Bot) syncCopies(ctx context.Context, r *workflow.Request, owners []string) error {
	unlock := b.copyLocks.lock(r.ID)
	defer unlock()
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read message refs of request %d: %w", r.ID, err)}
	}
	if len(refs) == 0 {
		return nil
	}
	requesterDM, err := b.dmChannelPaced(ctx, r.RequesterID)
	if err != nil {
		if err := b.dropPermanent(err, "open DM", r.RequesterID, r.ID); err != nil {
			return err
		}
	}
	approver := views.ApproverMessage(r, views.ApproverOptions{})
	requester := views.RequesterMessage(r, owners)
	for _, ref := range refs {
		m := approver
		if ref.Channel == requesterDM {
			m = requester
		}
		want := shown(m)
		if ref.Shown == want {
			continue
		}
		err := b.call(ctx, "chat.update", ref.Channel, func(ctx context.Context) error {
			_, _, _, err := b.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, m.Options()...)
			return err
		})
		if err != nil {
			if err := b.dropPermanent(err, "update a copy in "+ref.Channel, "", r.ID); err != nil {
				return err
			}
			// Gone for good (deleted, channel archived): remember it so it
			// is not tried again.
		}
		ref.Shown = want
		if err := b.wf.RecordMessage(ctx, ref); err != nil {
			return &workflow.TemporaryError{Err: fmt.Errorf("record message of request %d: %w", r.ID, err)}
		}
	}
	return nil
}

// remind DMs each owner a fresh approver message, with the buttons, and
// deletes the one it replaces so each DM keeps one live copy.
func (b *Bot) remind(ctx context.Context, r *workflow.Request, owners []string) error {
	if r.State != workflow.StatePending {
		return nil
	}
	refs, err := b.wf.Messages(ctx, r.ID)
	if err != nil {
		return &workflow.TemporaryError{Err: fmt.Errorf("read message refs of request %d: %w", r.ID, err)}
	}
	old := map[string]string{}
	for _, ref := range refs {
		old[ref.Channel] = ref.TS
	}
	msg := views.ApproverMessage(r, views.ApproverOptions{Reminder: true})
	for _, owner := range deciders(r, owners) {
		key := fmt.Sprintf("reminder/%d/%d/%s", r.ID, r.Version, owner)
		if b.sent.has(key) {
			continue // reminded by an earlier attempt of this delivery
		}
		ch, ts, err := b.postNotify(ctx, owner, msg)
		if err != nil {
			if err := b.dropPermanent(err, "DM reminder", owner, r.ID); err != nil {
				return err
			}
			continue
		}
		b.sent.mark(key)
		if err := b.wf.RecordMessage(ctx, workflow.MessageRef{RequestID: r.ID, Channel: ch, TS: ts, Shown: shown(msg)}); err != nil {
			return &workflow.TemporaryError{Err: fmt.Errorf("record reminder of request %d: %w", r.ID, err)}
		}
		if prev, ok := old[ch]; ok && prev != ts {
			if err := b.delete(ctx, ch, prev); err != nil {
				b.log.Debug().Err(err).Msg("delete the message a reminder replaced")
			}
		}
	}
	return nil
}

// toOwners DMs m to each owner. key names the notification: an owner
// who got it in an earlier attempt of the same delivery is skipped, and a
// temporary failure for one owner does not keep the others waiting.
func (b *Bot) toOwners(ctx context.Context, key string, owners []string, m views.Message, what string) error {
	var first error
	for _, o := range owners {
		err := b.once(key+"/"+o, func() error { return b.sendFailed(b.dmNotify(ctx, o, m), "DM "+what, o, 0) })
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// once runs send unless a send under key succeeded before (in this
// process, within sentMemory), and remembers a success.
func (b *Bot) once(key string, send func() error) error {
	if b.sent.has(key) {
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	b.sent.mark(key)
	return nil
}

// slackErrorCode is Slack's error code in err ("channel_not_found"), or
// "other": a bounded label for the dropped-notifications metric.
func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && se.Err != "" {
		return se.Err
	}
	return "other"
}

// warmEmail looks up an owner's email ahead of their decision (see
// Config.Users); an answer already cached costs nothing.
func (b *Bot) warmEmail(user string) {
	if b.users == nil {
		return
	}
	b.spawn("warm email", func(ctx context.Context) {
		if _, err := b.users.Email(ctx, user); err != nil {
			b.log.Debug().Err(err).Str("slack_user", user).Msg("email of an owner not cached ahead")
		}
	})
}

// sentMemory is how long a delivered DM is remembered, so a retried
// delivery (the job comes back after a rate limit) does not DM anyone
// twice: longer than a notification is retried.
const sentMemory = workflow.NotifyRetryWindow + time.Hour

// sentSet remembers delivered DMs by key for sentMemory.
type sentSet struct {
	keys recentSet[string]
}

func (s *sentSet) has(key string) bool { return s.keys.has(key, time.Now(), sentMemory) }

func (s *sentSet) mark(key string) { s.keys.add(key, time.Now(), sentMemory) }
