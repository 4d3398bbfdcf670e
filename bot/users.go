package bot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/accessbot/accessbot/workflow"
)

// Users resolves Slack users' emails with users.info (scope
// users:read.email), remembering answers for a while: after ttl an answer
// is still given at once while a fresh one is fetched behind it. Everyone
// asking about one user while a look-up is under way shares it: 300
// approvals by one owner at once make one users.info call, not 300 against
// its limit of 100 a minute. It implements workflow.Users.
type Users struct {
	api *slack.Client
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	cache  map[string]cachedEmail
	flight singleflight.Group // users.info calls under way, by user
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
// when Slack rate-limits (past what ctx leaves time to wait for) or cannot
// be reached.
func (u *Users) Email(ctx context.Context, slackUserID string) (string, error) {
	u.mu.Lock()
	c, ok := u.cache[slackUserID]
	age := u.now().Sub(c.at)
	u.mu.Unlock()
	if ok && age < staleEmailAge {
		if age >= u.ttl {
			// Answer at once from the cache and refresh behind (one call
			// however many ask): a decision waiting on users.info would
			// delay the click's acknowledgement.
			u.start(context.Background(), slackUserID)
		}
		return c.email, nil
	}
	email, err := u.lookup(ctx, slackUserID)
	var temp *workflow.TemporaryError
	if errors.As(err, &temp) && temp.RetryAfter > 0 {
		// Rate limited: when Slack's Retry-After still fits in the
		// caller's time, wait it out once rather than fail a person's
		// submission.
		if d, has := ctx.Deadline(); !has || time.Until(d) > temp.RetryAfter+500*time.Millisecond {
			select {
			case <-time.After(temp.RetryAfter):
				return u.lookup(ctx, slackUserID)
			case <-ctx.Done():
			}
		}
	}
	return email, err
}

// staleEmailAge is how long a cached email is still used (while a fresh one
// is fetched) after its ttl.
const staleEmailAge = 24 * time.Hour

// lookupTimeout bounds a shared users.info call: it serves everyone
// waiting on it, so no one caller's deadline cancels it.
const lookupTimeout = 10 * time.Second

// lookup fetches slackUserID's email, joining a call for them already under
// way, and waits for it no longer than ctx allows.
func (u *Users) lookup(ctx context.Context, slackUserID string) (string, error) {
	ch := u.start(ctx, slackUserID)
	select {
	case r := <-ch:
		email, _ := r.Val.(string)
		return email, r.Err
	case <-ctx.Done():
		return "", lookupError(ctx.Err(), slackUserID)
	}
}

// start starts a users.info call for slackUserID, or joins the one under
// way, and returns where its answer comes.
func (u *Users) start(ctx context.Context, slackUserID string) <-chan singleflight.Result {
	return u.flight.DoChan(slackUserID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return u.fetch(ctx, slackUserID)
	})
}

// lookupError is the error Email returns for err from users.info.
func lookupError(err error, slackUserID string) error {
	if temp := asTemporary(err); temp != nil {
		return temp
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && (se.Err == "user_not_found" || se.Err == "user_not_visible") {
		return workflow.Errorf(workflow.ENOTFOUND, "Slack has no user %s.", slackUserID)
	}
	return err
}

// fetch is one users.info call for slackUserID; it caches the answer.
func (u *Users) fetch(ctx context.Context, slackUserID string) (string, error) {
	user, err := u.api.GetUserInfoContext(ctx, slackUserID)
	if err != nil {
		return "", lookupError(err, slackUserID)
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
