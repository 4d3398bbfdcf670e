package bot

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// ephemeral is a reply only its reader sees, as an ack body or a
// response_url post.
type ephemeral struct {
	ResponseType    string        `json:"response_type"`
	Text            string        `json:"text"`
	Blocks          []slack.Block `json:"blocks,omitempty"`
	ReplaceOriginal bool          `json:"replace_original"`
}

func ephemeralBody(m views.Message) ephemeral {
	return ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: m.Text, Blocks: m.Blocks}
}

// target is where a reply to one person goes: the response_url of what
// they did when there is one, else an ephemeral message in the channel, else
// their DM.
type target struct {
	user        string
	channel     string
	responseURL string
}

// reply sends m to t's reader only. Failures are logged: there is nobody
// else to tell.
func (b *Bot) reply(ctx context.Context, t target, m views.Message) {
	if t.responseURL != "" {
		msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: m.Text}
		if len(m.Blocks) > 0 {
			msg.Blocks = &slack.Blocks{BlockSet: m.Blocks}
		}
		err := slack.PostWebhookCustomHTTPContext(ctx, t.responseURL, b.hc, msg)
		if err == nil {
			return
		}
		b.log.Warn().Err(err).Str("slack_user", t.user).Msg("posting to response_url failed; trying chat.postEphemeral")
	}
	if t.channel != "" {
		_, err := b.api.PostEphemeralContext(ctx, t.channel, t.user, m.Options()...)
		if err == nil {
			return
		}
		b.log.Warn().Err(err).Str("slack_user", t.user).Str("channel", t.channel).Msg("chat.postEphemeral failed; sending a DM")
	}
	if _, _, err := b.dm(ctx, t.user, m); err != nil {
		b.log.Error().Err(err).Str("slack_user", t.user).Msg("could not reply to a user")
	}
}

// replyError tells t's reader why what they did failed. Only internal
// errors are logged as errors; the others are the person's to fix.
func (b *Bot) replyError(ctx context.Context, t target, doing string, err error) {
	b.logWorkflowError(err, doing, t.user)
	b.reply(ctx, t, views.Failure(err))
}

func (b *Bot) logWorkflowError(err error, doing, user string) {
	switch workflow.ErrorCode(err) {
	case workflow.EINTERNAL:
		b.log.Error().Err(err).Str("slack_user", user).Msg(doing)
	case workflow.EUNAVAILABLE:
		b.log.Warn().Err(err).Str("slack_user", user).Msg(doing)
	default:
		b.log.Debug().Err(err).Str("slack_user", user).Msg(doing)
	}
}

// dmChannel returns the DM channel with user (conversations.open), cached:
// DM channel ids (D…) differ from user ids and never change.
func (b *Bot) dmChannel(ctx context.Context, user string) (string, error) {
	b.dmMu.Lock()
	ch, ok := b.dms[user]
	b.dmMu.Unlock()
	if ok {
		return ch, nil
	}
	c, _, _, err := b.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return "", err
	}
	if c == nil || c.ID == "" {
		return "", errors.New("conversations.open returned no channel")
	}
	b.dmMu.Lock()
	b.dms[user] = c.ID
	b.dmMu.Unlock()
	return c.ID, nil
}

// dm posts m to user's DM and returns where it landed.
func (b *Bot) dm(ctx context.Context, user string, m views.Message) (channel, ts string, err error) {
	ch, err := b.dmChannel(ctx, user)
	if err != nil {
		return "", "", err
	}
	return b.api.PostMessageContext(ctx, ch, m.Options()...)
}

// asTemporary returns err as a *workflow.TemporaryError when it is worth
// a retry (retryable), carrying Slack's Retry-After for a rate limit, and
// nil otherwise.
func asTemporary(err error) *workflow.TemporaryError {
	var rl *slack.RateLimitedError
	switch {
	case errors.As(err, &rl):
		return &workflow.TemporaryError{Err: err, RetryAfter: rl.RetryAfter}
	case retryable(err):
		return &workflow.TemporaryError{Err: err}
	}
	return nil
}

// retryable reports whether a Slack Web API failure is worth trying again:
// rate limits, 5xx, timeouts and network errors, and Slack's own
// transient error codes. Anything else (channel_not_found, invalid_blocks,
// …) fails the same way next time.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &rl):
		return true
	case errors.As(err, &sc):
		return sc.Retryable()
	case errors.As(err, &se):
		switch se.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited", "rate_limited":
			return true
		}
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &ne), errors.As(err, &ue):
		return true
	}
	// slack-go wraps some transport errors as plain text.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "EOF")
}
