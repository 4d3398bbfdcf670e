package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// slowMessage is shown on the form when the workflow did not answer within
// the submission budget. Nothing was stored: CreateRequest had not returned.
const slowMessage = "PostHog is slow to answer right now, so nothing was sent. Please try again in a minute."

// onInteraction routes an interaction payload by type.
func (b *Bot) onInteraction(received time.Time, cb *slack.InteractionCallback) (ack, error) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		return ack{kind: KindBlockActions}, b.onBlockActions(received, cb)
	case slack.InteractionTypeViewSubmission:
		return b.onViewSubmission(received, cb)
	case slack.InteractionTypeBlockSuggestion:
		return b.onSuggestion(received, cb), nil
	case slack.InteractionTypeViewClosed:
		return ack{kind: KindViewSubmission}, nil
	}
	// Shortcuts and the like are not used; acknowledge and ignore them.
	b.log.Debug().Str("type", string(cb.Type)).Msg("ignored interaction")
	return ack{kind: KindBlockActions}, nil
}

// clickTarget is where replies to a click go.
func clickTarget(cb *slack.InteractionCallback) target {
	ch := cb.Channel.ID
	if ch == "" {
		ch = cb.Container.ChannelID
	}
	return target{user: cb.User.ID, channel: ch, responseURL: cb.ResponseURL}
}

func fromHome(cb *slack.InteractionCallback) bool {
	return cb.View.Type == slack.VTHomeTab
}

func requestID(value string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(value, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, malformed("request id %q", value)
	}
	return id, nil
}

// onBlockActions acts on the first action of a click (Slack sends one; a
// payload carrying more is not from Slack's UI). A decision — Approve,
// Cancel, Extend, I'm done, retry a revocation, a review or break-glass
// answer — is committed to the
// database before the click is acknowledged, within the ack budget, so an
// acknowledged click survives a crash; what the clicker is told comes after
// the ack. Modals are opened first thing after the ack: the trigger_id is
// valid for three seconds.
func (b *Bot) onBlockActions(received time.Time, cb *slack.InteractionCallback) error {
	t := clickTarget(cb)
	actions := cb.ActionCallback.BlockActions
	if len(actions) == 0 {
		return nil
	}
	if len(actions) > 1 {
		b.log.Warn().Int("actions", len(actions)).Str("slack_user", t.user).Msg("block_actions with several actions; acting on the first only")
	}
	act := actions[0]
	switch act.ActionID {
	case views.ActionApprove, views.ActionDeny, views.ActionCancel, views.ActionExtend, views.ActionDone, views.ActionRetryRevoke:
		id, err := requestID(act.Value)
		if err != nil {
			return err
		}
		switch act.ActionID {
		case views.ActionApprove:
			b.commitThen(received, "approve", t, func(ctx context.Context) (func(context.Context), error) {
				r, err := b.wf.Approve(ctx, id, t.user)
				if err != nil {
					return nil, err
				}
				// Every stored copy of the approver message is updated by
				// the notification the approval queued.
				return func(ctx context.Context) {
					switch {
					case fromHome(cb):
						b.publishHome(ctx, t.user)
					case cb.Container.IsEphemeral:
						b.reply(ctx, t, views.Text(fmt.Sprintf(":white_check_mark: You approved %s.", r.Ref())))
					}
				}, nil
			})
		case views.ActionDeny:
			b.spawn("open deny modal", func(ctx context.Context) { b.openDenyModal(ctx, cb.TriggerID, t, id) })
		case views.ActionCancel:
			b.commitThen(received, "cancel", t, b.home(cb, t, func(ctx context.Context) (func(context.Context), error) {
				_, err := b.wf.Cancel(ctx, id, t.user)
				return nil, err
			}))
		case views.ActionExtend:
			b.commitThen(received, "extend grant", t, b.extend(t, id, 0))
		case views.ActionDone:
			b.commitThen(received, "end grant", t, b.home(cb, t, b.done(t, id)))
		default:
			b.commitThen(received, "revoke grant", t, b.home(cb, t, b.revoke(t, id, "")))
		}
	case views.ActionReviewKeep, views.ActionReviewRemove, views.ActionReviewKeepRest, views.ActionBreakGlassAck, views.ActionBreakGlassStop:
		what, c, err := b.reviewAction(t, act)
		if err != nil {
			return err
		}
		b.commitThen(received, what, t, c)
	case views.ActionNewRequest:
		b.spawn("open request modal", func(ctx context.Context) {
			b.openRequestModal(ctx, received, cb.TriggerID, t, workflow.KindAdd, "", "")
		})
	case views.ActionRoleSelect:
		if cb.View.CallbackID == views.CallbackRequest && cb.View.ID != "" {
			value := act.SelectedOption.Value
			b.spawn("refresh request modal", func(ctx context.Context) { b.refreshRequestModal(ctx, cb, value) })
		}
	default:
		b.log.Debug().Str("action_id", act.ActionID).Msg("ignored action")
	}
	return nil
}

// commitment is a state change made before the ack; it returns what to do
// after the ack (tell the clicker, refresh their App Home).
type commitment func(ctx context.Context) (after func(ctx context.Context), err error)

// tooSlowMessage is what the clicker hears when the database did not
// answer within the ack budget: the change was rolled back.
const tooSlowMessage = "That took too long, so nothing changed. Please try again."

// commitThen runs commit now, bounded by the ack budget counted from when
// Slack sent the request, and the follow-up (or the refusal) after the ack.
func (b *Bot) commitThen(received time.Time, what string, t target, commit commitment) {
	ctx, cancel := context.WithDeadline(context.Background(), received.Add(b.budget))
	after, err := commit(ctx)
	timedOut := err != nil && ctx.Err() != nil
	cancel()
	b.spawn(what, func(ctx context.Context) {
		switch {
		case timedOut:
			b.log.Warn().Err(err).Str("slack_user", t.user).Msg(what + " ran out of time before the ack")
			b.reply(ctx, t, views.Error(tooSlowMessage))
		case err != nil:
			// Refused (not an owner, own request, already decided): only
			// the clicker hears about it, and nothing changed.
			b.replyError(ctx, t, what, err)
		case after != nil:
			after(ctx)
		}
	})
}

// home adds an App Home refresh to c's follow-up when the click came from
// the Home tab.
func (b *Bot) home(cb *slack.InteractionCallback, t target, c commitment) commitment {
	return func(ctx context.Context) (func(context.Context), error) {
		after, err := c(ctx)
		if err != nil || !fromHome(cb) {
			return after, err
		}
		return func(ctx context.Context) {
			if after != nil {
				after(ctx)
			}
			b.publishHome(ctx, t.user)
		}, nil
	}
}

// openDenyModal opens the modal asking for a reason, after checking that
// the clicker may decide, so a refusal comes before any typing.
func (b *Bot) openDenyModal(ctx context.Context, triggerID string, t target, id int64) {
	r, err := b.wf.Request(ctx, id)
	if err != nil {
		b.replyError(ctx, t, "load request", err)
		return
	}
	if err := b.wf.CanDecide(ctx, r, t.user); err != nil {
		b.replyError(ctx, t, "deny", err)
		return
	}
	if _, err := b.api.OpenViewContext(ctx, triggerID, views.DenyModal(r)); err != nil {
		b.log.Warn().Err(err).Str("slack_user", t.user).Msg("views.open for the deny modal")
		b.reply(ctx, t, views.Error("I couldn't open the form to deny "+r.Ref()+". Please click Deny again."))
	}
}

// refreshRequestModal offers the durations of the role just chosen.
func (b *Bot) refreshRequestModal(ctx context.Context, cb *slack.InteractionCallback, roleValue string) {
	meta, err := views.ParseRequestMetadata(cb.View.PrivateMetadata)
	if err != nil || meta.Kind != workflow.KindAdd {
		return
	}
	role, err := b.wf.ResolveRole(ctx, roleValue)
	if err != nil {
		return // the submission reports it on the role block
	}
	in := views.RequestModalInput{Kind: meta.Kind, Requester: cb.User.ID, Subject: meta.Subject, Role: &role,
		Durations: b.wf.DurationChoices(role), BreakGlass: b.breakGlassLimit(role)}
	external := false
	for _, blk := range cb.View.Blocks.BlockSet {
		if input, ok := blk.(*slack.InputBlock); ok && input.BlockID == views.BlockRole {
			if sel, ok := input.Element.(*slack.SelectBlockElement); ok && sel.Type == slack.OptTypeExternal {
				external = true
			}
		}
	}
	if external {
		in.External = true
	} else if in.Roles, err = b.wf.Roles(ctx); err != nil {
		in.External = true
	}
	// The hash makes Slack refuse the update if the person changed the
	// view meanwhile; their next choice brings another refresh.
	if _, err := b.api.UpdateViewContext(ctx, views.RequestModal(in), "", cb.View.Hash, cb.View.ID); err != nil {
		b.log.Debug().Err(err).Msg("views.update of the request modal")
	}
}

// onViewSubmission answers a modal submission synchronously: Slack shows
// the errors in the ack beside the fields, so the workflow call gets a
// budget inside Slack's three seconds.
func (b *Bot) onViewSubmission(received time.Time, cb *slack.InteractionCallback) (ack, error) {
	a := ack{kind: KindViewSubmission}
	switch cb.View.CallbackID {
	case views.CallbackRequest:
		return b.submitRequest(received, cb)
	case views.CallbackDeny:
		return b.submitDeny(received, cb)
	}
	return a, nil // not ours: close it
}

// stateOf returns the action value a modal holds for (block, action).
func stateOf(cb *slack.InteractionCallback, block, action string) (slack.BlockAction, bool) {
	if cb.View.State == nil {
		return slack.BlockAction{}, false
	}
	v, ok := cb.View.State.Values[block][action]
	return v, ok
}

func fieldErrors(block, msg string) ack {
	return ack{kind: KindViewSubmission, body: slack.NewErrorsViewSubmissionResponse(map[string]string{block: msg})}
}

func (b *Bot) submitRequest(received time.Time, cb *slack.InteractionCallback) (ack, error) {
	meta, err := views.ParseRequestMetadata(cb.View.PrivateMetadata)
	if err != nil {
		return ack{kind: KindViewSubmission}, badRequest{err}
	}
	role, _ := stateOf(cb, views.BlockRole, views.ActionRoleSelect)
	reason, _ := stateOf(cb, views.BlockReason, views.ActionReasonInput)
	in := workflow.NewRequest{
		Kind:        meta.Kind,
		RequesterID: cb.User.ID,
		SubjectID:   meta.Subject,
		Role:        role.SelectedOption.Value,
		Reason:      reason.Value,
		ViewID:      cb.View.ID,
	}
	if meta.Kind == workflow.KindAdd {
		dur, _ := stateOf(cb, views.BlockDuration, views.ActionDurationSelect)
		if dur.SelectedOption.Value == "" {
			return fieldErrors(views.BlockDuration, "Pick how long you need it."), nil
		}
		if in.Duration, err = views.ParseDurationValue(dur.SelectedOption.Value); err != nil {
			return fieldErrors(views.BlockDuration, "Pick one of the durations offered."), nil
		}
	}

	ctx, cancel := context.WithDeadline(context.Background(), received.Add(b.budget))
	defer cancel()
	create := b.wf.CreateRequest
	breakGlass := meta.Kind == workflow.KindAdd && breakGlassRequested(cb)
	if breakGlass {
		create = b.wf.BreakGlass().Use
	}
	r, err := create(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			b.log.Warn().Err(err).Str("slack_user", in.RequesterID).Msg("request submission ran out of time")
			return fieldErrors(views.BlockRole, slowMessage), nil
		}
		b.logWorkflowError(err, "create request", in.RequesterID)
		block := views.BlockRole
		switch workflow.ErrorField(err) {
		case "reason":
			block = views.BlockReason
		case "duration":
			if meta.Kind == workflow.KindAdd {
				block = views.BlockDuration
			}
		}
		return fieldErrors(block, workflow.ErrorMessage(err)), nil
	}
	b.log.Debug().Int64("request_id", r.ID).Str("slack_user", r.RequesterID).Bool("break_glass", breakGlass).Msg("request submitted")
	if breakGlass {
		b.spawn("break-glass confirmation", func(ctx context.Context) {
			if _, _, err := b.dm(ctx, r.RequesterID, views.BreakGlassGranted(r)); err != nil {
				_ = b.sendFailed(err, "DM break-glass confirmation", r.RequesterID, r.ID)
			}
		})
	}
	// The requester's confirmation DM comes with the created notification.
	return ack{kind: KindViewSubmission, body: slack.NewClearViewSubmissionResponse()}, nil
}

func (b *Bot) submitDeny(received time.Time, cb *slack.InteractionCallback) (ack, error) {
	meta, err := views.ParseDenyMetadata(cb.View.PrivateMetadata)
	if err != nil {
		return ack{kind: KindViewSubmission}, badRequest{err}
	}
	reason, _ := stateOf(cb, views.BlockDenyReason, views.ActionReasonInput)
	ctx, cancel := context.WithDeadline(context.Background(), received.Add(b.budget))
	defer cancel()
	if _, err := b.wf.Deny(ctx, meta.RequestID, cb.User.ID, reason.Value); err != nil {
		if ctx.Err() != nil {
			return fieldErrors(views.BlockDenyReason, "That took too long, so nothing changed. Please try again."), nil
		}
		b.logWorkflowError(err, "deny", cb.User.ID)
		return fieldErrors(views.BlockDenyReason, workflow.ErrorMessage(err)), nil
	}
	return ack{kind: KindViewSubmission, body: slack.NewClearViewSubmissionResponse()}, nil
}

// suggestionBudget bounds the role lookup of a typeahead answer.
const suggestionBudget = 2 * time.Second

// onSuggestion answers the role picker's typeahead with matching roles.
func (b *Bot) onSuggestion(received time.Time, cb *slack.InteractionCallback) ack {
	a := ack{kind: KindOptions, body: slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}}
	if cb.ActionID != views.ActionRoleSelect {
		return a
	}
	ctx, cancel := context.WithDeadline(context.Background(), received.Add(suggestionBudget))
	defer cancel()
	roles, err := b.wf.Roles(ctx)
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			b.logWorkflowError(err, "roles for typeahead", cb.User.ID)
		}
		return a
	}
	a.body = views.RoleOptions(roles, cb.Value)
	return a
}
