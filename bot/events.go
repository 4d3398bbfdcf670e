package bot

import (
	"context"
	"encoding/json"
	"time"

	"github.com/slack-go/slack/slackevents"
)

// eventEnvelope is the outer Events API payload, read loosely so event
// types the bot does not handle are acknowledged rather than refused.
type eventEnvelope struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

// onEvent answers url_verification and acts on app_home_opened after the ack.
func (b *Bot) onEvent(_ time.Time, raw json.RawMessage) (ack, error) {
	a := ack{kind: KindEvent}
	var env eventEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return a, malformed("event: %v", err)
	}
	switch env.Type {
	case slackevents.URLVerification:
		if env.Challenge == "" {
			return a, malformed("url_verification without a challenge")
		}
		a.body = map[string]string{"challenge": env.Challenge}
	case slackevents.CallbackEvent:
		var head struct {
			Type string `json:"type"`
		}
		if len(env.Event) == 0 || json.Unmarshal(env.Event, &head) != nil {
			return a, malformed("event_callback without an event")
		}
		if head.Type != string(slackevents.AppHomeOpened) {
			b.log.Debug().Str("event", head.Type).Msg("ignored event")
			return a, nil
		}
		var ev slackevents.AppHomeOpenedEvent
		if err := json.Unmarshal(env.Event, &ev); err != nil || ev.User == "" {
			return a, malformed("app_home_opened: no user")
		}
		if ev.Tab != "" && ev.Tab != "home" {
			return a, nil // the messages tab needs nothing
		}
		b.spawn("publish home", func(ctx context.Context) { b.publishHome(ctx, ev.User) })
	default:
		b.log.Debug().Str("type", env.Type).Msg("ignored Events API delivery")
	}
	return a, nil
}
