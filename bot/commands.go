package bot

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// modalLookupBudget is how long, after Slack sent a request with a
// trigger_id, the bot spends gathering what a modal shows before it opens
// it anyway: a trigger_id is valid for three seconds.
const modalLookupBudget = 1500 * time.Millisecond

// onCommand acknowledges an `/access` command. Help and usage errors are
// answered in the ack; decisions (cancel, revoke, extend, done) are
// committed before it; everything else runs after it.
func (b *Bot) onCommand(received time.Time, cmd slack.SlashCommand) (ack, error) {
	a := ack{kind: KindCommand}
	if cmd.UserID == "" {
		return a, malformed("slash command without user_id")
	}
	c, err := ParseCommand(cmd.Text)
	if err != nil {
		a.body = ephemeralBody(views.Usage(workflow.ErrorMessage(err)))
		return a, nil
	}
	t := target{user: cmd.UserID, channel: cmd.ChannelID, responseURL: cmd.ResponseURL}
	switch c.Verb {
	case VerbHelp:
		a.body = ephemeralBody(views.Help())
	case VerbCancel:
		b.commitThen(received, "cancel request", t, b.cancel(t, c.ID))
	case VerbRevoke:
		b.commitThen(received, "revoke grant", t, b.revoke(t, c.ID, c.Reason))
	case VerbExtend:
		b.commitThen(received, "extend grant", t, b.extend(t, c.ID, c.Duration))
	case VerbDone:
		b.commitThen(received, "end grant", t, b.done(t, c.ID))
	case VerbRequest, VerbRemove:
		kind := workflow.KindAdd
		if c.Verb == VerbRemove {
			kind = workflow.KindRemove
		}
		b.spawn("open request modal", func(ctx context.Context) {
			b.openRequestModal(ctx, received, cmd.TriggerID, t, kind, c.Role, c.User)
		})
	default:
		b.spawn("command "+string(c.Verb), func(ctx context.Context) { b.runCommand(ctx, t, c) })
	}
	return a, nil
}

// runCommand does the work of the commands that answer with a message.
func (b *Bot) runCommand(ctx context.Context, t target, c Command) {
	user := t.user
	switch c.Verb {
	case VerbList:
		reqs, err := b.wf.ListMine(ctx, user, views.MaxListed+1)
		if err != nil {
			b.replyError(ctx, t, "list requests", err)
			return
		}
		b.reply(ctx, t, views.RequestList(reqs))

	case VerbPending:
		reqs, err := b.wf.PendingFor(ctx, user)
		if err != nil {
			b.replyError(ctx, t, "list pending requests", err)
			return
		}
		overdue, err := b.wf.Grants().Overdue(ctx, user)
		if err != nil {
			b.replyError(ctx, t, "list overdue revocations", err)
			return
		}
		b.reply(ctx, t, views.PendingList(reqs, overdue))

	case VerbRoles:
		roles, err := b.wf.RoleDetails(ctx)
		if err != nil {
			b.replyError(ctx, t, "list roles", err)
			return
		}
		b.reply(ctx, t, views.RolesList(roles))

	case VerbOwners:
		role, err := b.wf.ResolveRole(ctx, c.Role)
		if err != nil {
			b.replyError(ctx, t, "resolve role", err)
			return
		}
		owners, err := b.wf.Owners(ctx, role)
		if err != nil {
			b.replyError(ctx, t, "list owners", err)
			return
		}
		b.reply(ctx, t, views.OwnersList(role, owners))

	case VerbOwnersAdd, VerbOwnersRemove:
		change := b.wf.AddOwner
		if c.Verb == VerbOwnersRemove {
			change = b.wf.RemoveOwner
		}
		owners, err := change(ctx, user, c.Role, c.User)
		if err != nil {
			b.replyError(ctx, t, "change owners", err)
			return
		}
		role, err := b.wf.ResolveRole(ctx, c.Role)
		if err != nil {
			role = workflow.Role{Name: c.Role}
		}
		b.reply(ctx, t, views.OwnersChanged(role, c.User, c.Verb == VerbOwnersAdd, owners))

	case VerbAudit:
		b.exportAudit(ctx, t, c)

	case VerbBreakGlass:
		b.breakGlass(ctx, t, c.Role)

	case VerbReview:
		b.startReview(ctx, t, c.Role)
	}
}

// exportAudit streams the audit log to a temporary file (constant memory
// however long the log) and uploads it to the caller's DM.
func (b *Bot) exportAudit(ctx context.Context, t target, c Command) {
	f := workflow.AuditFilter{Since: c.Since}
	if c.SinceAgo > 0 {
		f.Since = time.Now().UTC().Add(-c.SinceAgo)
	}
	tmp, err := os.CreateTemp("", "accessbot-audit-*.csv")
	if err != nil {
		b.replyError(ctx, t, "export audit log", err)
		return
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	n, err := b.wf.ExportAudit(ctx, t.user, "slack", f, workflow.FormatCSV, tmp)
	if err != nil {
		b.replyError(ctx, t, "export audit log", err)
		return
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		b.replyError(ctx, t, "export audit log", err)
		return
	}
	ch, err := b.dmChannel(ctx, t.user)
	if err != nil {
		b.log.Warn().Err(err).Str("slack_user", t.user).Msg("open DM for the audit export")
		b.reply(ctx, t, views.Error("I couldn't open a DM with you to send the file. Please try again."))
		return
	}
	stamp := time.Now().UTC()
	entries := "entries"
	if n == 1 {
		entries = "entry"
	}
	comment := fmt.Sprintf("Audit log export: %d %s", n, entries)
	if !f.Since.IsZero() {
		comment += " since " + views.Date(f.Since)
	}
	comment += ". Check it with `accessbot audit verify`."
	_, err = b.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader:         tmp,
		FileSize:       int(size),
		Filename:       "accessbot-audit-" + stamp.Format("20060102-150405") + ".csv",
		Title:          "accessbot audit log " + stamp.Format("2006-01-02 15:04 UTC"),
		Channel:        ch,
		InitialComment: comment,
	})
	if err != nil {
		b.log.Warn().Err(err).Str("slack_user", t.user).Msg("upload the audit export")
		b.reply(ctx, t, views.Error("I couldn't upload the export to Slack. Please try again."))
		return
	}
	b.reply(ctx, t, views.Text(fmt.Sprintf(":page_facing_up: I sent the audit log (%d %s) to your DMs.", n, entries)))
}

// openRequestModal opens the request modal for the trigger. It spends at
// most modalLookupBudget from when Slack sent the trigger on looking up
// roles: past that, the role picker loads its options by typeahead instead.
func (b *Bot) openRequestModal(ctx context.Context, received time.Time, triggerID string, t target, kind workflow.Kind, roleText, subject string) {
	lookup, cancel := context.WithDeadline(ctx, received.Add(modalLookupBudget))
	defer cancel()
	in := views.RequestModalInput{Kind: kind, Requester: t.user, Subject: subject}
	roles, err := b.wf.Roles(lookup)
	if err != nil {
		b.log.Warn().Err(err).Msg("roles not ready for the modal; using typeahead")
		in.External = true
	} else {
		in.Roles = roles
	}
	var chosen workflow.Role
	if roleText != "" {
		r, err := b.wf.ResolveRole(lookup, roleText)
		switch {
		case err == nil:
			chosen = r
			in.Role = &chosen
		case workflow.ErrorCode(err) == workflow.EINVALID:
			in.Notice = fmt.Sprintf("There is no PostHog role called “%s”. Pick one below.", views.Escape(roleText))
		default:
			// PostHog is slow: keep what they typed; the submission resolves it.
			chosen = workflow.Role{Name: roleText}
			in.Role = &chosen
			in.External = true
		}
	}
	if kind == workflow.KindAdd {
		in.Durations = b.wf.DurationChoices(chosen)
		in.BreakGlass = b.breakGlassLimit(chosen)
	}
	if _, err := b.api.OpenViewContext(ctx, triggerID, views.RequestModal(in)); err != nil {
		b.log.Warn().Err(err).Str("slack_user", t.user).Msg("views.open for the request modal")
		b.reply(ctx, t, views.Error("I couldn't open the request form (Slack said: "+views.Escape(err.Error())+"). Please run the command again."))
	}
}

// publishHome renders user's App Home tab.
func (b *Bot) publishHome(ctx context.Context, user string) {
	mine, err := b.wf.ListMine(ctx, user, views.HomeMaxMine+1)
	if err != nil {
		b.logWorkflowError(err, "list requests for App Home", user)
		return
	}
	pending, err := b.wf.PendingFor(ctx, user)
	if err != nil {
		b.logWorkflowError(err, "list pending requests for App Home", user)
		return
	}
	overdue, err := b.wf.Grants().Overdue(ctx, user)
	if err != nil {
		b.logWorkflowError(err, "list overdue revocations for App Home", user)
		return
	}
	home := views.Home(views.HomeInput{Mine: mine, Pending: pending, Overdue: overdue})
	if _, err := b.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: home}); err != nil {
		b.log.Warn().Err(err).Str("slack_user", user).Msg("views.publish")
	}
}

// revoke ends grant id for an owner or admin, or retries its overdue
// revocation.
func (b *Bot) revoke(t target, id int64, reason string) commitment {
	return func(ctx context.Context) (func(context.Context), error) {
		r, err := b.wf.Grants().Revoke(ctx, id, t.user, reason)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { b.reply(ctx, t, views.RevokeAccepted(r)) }, nil
	}
}

// extend asks for more time on the caller's grant id.
func (b *Bot) extend(t target, id int64, d time.Duration) commitment {
	return func(ctx context.Context) (func(context.Context), error) {
		r, err := b.wf.Grants().Extend(ctx, id, t.user, d)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) {
			if r.State == workflow.StatePending {
				b.reply(ctx, t, views.Text(fmt.Sprintf(":outbox_tray: I asked the owners of *%s* to extend #%d by %s (request %s). I'll tell you when they decide.",
					views.Escape(r.RoleName), id, strings.ToLower(views.DurationLabel(r.Duration)), r.Ref())))
				return
			}
			// Auto-approved: the holder's DM with the new end comes with
			// the notification.
			b.reply(ctx, t, views.Text(fmt.Sprintf(":white_check_mark: Extension %s of #%d: %s.", r.Ref(), id, views.StateLabel(r.State))))
		}, nil
	}
}

// done ends the caller's own grant id.
func (b *Bot) done(t target, id int64) commitment {
	return func(ctx context.Context) (func(context.Context), error) {
		r, err := b.wf.Grants().Done(ctx, id, t.user)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) {
			b.reply(ctx, t, views.Text(fmt.Sprintf(":wave: Ending %s now: you leave *%s* in PostHog shortly.", r.Ref(), views.Escape(r.RoleName))))
		}, nil
	}
}

// cancel withdraws the caller's request id.
func (b *Bot) cancel(t target, id int64) commitment {
	return func(ctx context.Context) (func(context.Context), error) {
		r, err := b.wf.Cancel(ctx, id, t.user)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) {
			b.reply(ctx, t, views.Text(fmt.Sprintf(":heavy_minus_sign: Cancelled %s (%s).", r.Ref(), views.Escape(r.RoleName))))
		}, nil
	}
}
