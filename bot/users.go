package bot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Users resolves Slack users' emails with users.info (scope
// users:read.email), remembering answers for a while. It implements
// workflow.Users.
type Users struct {
	api *slack.Client
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedEmail
}

type cachedEmail struct {
	email string
	at    time.Time
}

var _ workflow.Users = (*Users)(nil)

// NewUsers returns a Users that keeps an answer for ttl (0: one minute).
func NewUsers(client *slack.Client, ttl time.Duration) *Users {
	if ttl <= 0 {
		ttl = time.Minute
	}
	return &Users{api: client, ttl: ttl, now: time.Now, cache: map[string]cachedEmail{}}
}

// Email returns the Slack user's email. ENOTFOUND when Slack has none (no
// such user, a bot, or the app lacks users:read.email); *TemporaryError
// when Slack rate-limits or cannot be reached.
func (u *Users) Email(ctx context.Context, slackUserID string) (string, error) {
	u.mu.Lock()
	c, ok := u.cache[slackUserID]
	u.mu.Unlock()
	if ok && u.now().Sub(c.at) < u.ttl {
		return c.email, nil
	}
	user, err := u.api.GetUserInfoContext(ctx, slackUserID)
	if err != nil {
		var se slack.SlackErrorResponse
		var rl *slack.RateLimitedError
		switch {
		case errors.As(err, &rl):
			return "", &workflow.TemporaryError{Err: err, RetryAfter: rl.RetryAfter}
		case retryable(err):
			return "", &workflow.TemporaryError{Err: err}
		case errors.As(err, &se) && (se.Err == "user_not_found" || se.Err == "user_not_visible"):
			return "", workflow.Errorf(workflow.ENOTFOUND, "Slack has no user %s.", slackUserID)
		}
		return "", err
	}
	email := user.Profile.Email
	if email == "" {
		return "", workflow.Errorf(workflow.ENOTFOUND, "Slack shows no email address for %s.", slackUserID)
	}
	u.mu.Lock()
	u.cache[slackUserID] = cachedEmail{email: email, at: u.now()}
	u.mu.Unlock()
	return email, nil
}
