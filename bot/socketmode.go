package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode serves the same handlers over Slack's Socket Mode until ctx
// ends: slash commands, interactions and events arrive on a websocket
// opened with the app-level token (xapp-…, scope connections:write), and
// each is acknowledged with the same payload the HTTP endpoint would
// answer (modal errors, typeahead options, ephemeral replies). Signatures
// are not involved: the websocket itself is authenticated.
func (b *Bot) RunSocketMode(ctx context.Context, appToken string) error {
	if appToken == "" {
		return errors.New("socket mode needs an app-level token")
	}
	api := *b.api // same bot token and API URL, plus the app-level token
	slack.OptionAppLevelToken(appToken)(&api)
	client := socketmode.New(&api, socketmode.OptionLog(socketLogger{b.log}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- client.RunContext(ctx) }()

	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case evt := <-client.Events:
			switch evt.Type {
			case socketmode.EventTypeConnecting:
				b.log.Debug().Msg("socket mode: connecting")
			case socketmode.EventTypeConnected:
				b.log.Info().Msg("socket mode: connected")
			case socketmode.EventTypeConnectionError:
				b.log.Warn().Interface("error", evt.Data).Msg("socket mode: connection failed; retrying")
			case socketmode.EventTypeInvalidAuth:
				b.log.Error().Msg("socket mode: the app-level token was refused")
			case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					b.serveEnvelope(client, evt)
				}()
			}
		}
	}
}

// serveEnvelope handles one Socket Mode request and acknowledges it.
func (b *Bot) serveEnvelope(client *socketmode.Client, evt socketmode.Event) {
	received := time.Now()
	req := evt.Request
	if req == nil {
		return
	}
	kind := map[socketmode.EventType]string{
		socketmode.EventTypeSlashCommand: KindCommand,
		socketmode.EventTypeInteractive:  KindBlockActions,
		socketmode.EventTypeEventsAPI:    KindEvent,
	}[evt.Type]
	outcome := OutcomeOK
	var a ack
	defer func() {
		if p := recover(); p != nil {
			outcome = OutcomeError
			a = ack{}
			b.log.Error().Interface("panic", p).Stack().Msg("panic in Socket Mode handler")
		}
		var err error
		if a.body != nil {
			err = client.Ack(*req, a.body)
		} else {
			err = client.Ack(*req)
		}
		if err != nil {
			outcome = OutcomeError
			b.log.Error().Err(err).Str("envelope_id", req.EnvelopeID).Msg("socket mode ack")
		}
		b.observe(kind, outcome, time.Since(received))
	}()

	var err error
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		var cmd slack.SlashCommand
		if err = json.Unmarshal(req.Payload, &cmd); err != nil {
			err = badRequest{err}
			break
		}
		a, err = b.onCommand(received, cmd)
	case socketmode.EventTypeInteractive:
		var cb *slack.InteractionCallback
		if cb, err = DecodeInteraction(req.Payload); err != nil {
			err = badRequest{err}
			break
		}
		a, err = b.onInteraction(received, cb)
	case socketmode.EventTypeEventsAPI:
		a, err = b.onEvent(received, req.Payload)
	}
	if a.kind != "" {
		kind = a.kind
	}
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		outcome = OutcomeRejected
		b.log.Warn().Err(err).Str("envelope_id", req.EnvelopeID).Msg("socket mode request rejected: malformed payload")
		a = ack{}
	case err != nil:
		outcome = OutcomeError
		b.log.Error().Err(err).Str("envelope_id", req.EnvelopeID).Msg("socket mode request failed")
		a = ack{}
	}
}

// socketLogger sends slack-go's Socket Mode log lines to zerolog at debug.
type socketLogger struct{ log zerolog.Logger }

func (l socketLogger) Output(_ int, s string) error {
	l.log.Debug().Str("component", "socketmode").Msg(strings.TrimSpace(s))
	return nil
}
