package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// MaxSocketFrameBytes is the largest frame Slack accepts over Socket Mode
// (20 KiB): a bigger acknowledgement is dropped and the connection closed.
const MaxSocketFrameBytes = 20480

// Socket Mode timings.
const (
	socketHelloTimeout = 15 * time.Second
	socketReadTimeout  = 2 * time.Minute // Slack pings far more often than this
	socketBackoffMin   = time.Second
	socketBackoffMax   = 5 * time.Minute
	// socketOverlap bounds how long an old connection Slack asked us to
	// leave keeps serving while the new one opens.
	socketOverlap = 30 * time.Second
	// socketFlapping: a connection that ends sooner than this counts as a
	// failed attempt, so a flapping socket backs off.
	socketFlapping = 10 * time.Second
)

// envelope is one Socket Mode frame from Slack.
type envelope struct {
	Type       string          `json:"type"`
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
	Reason     string          `json:"reason"`
}

// RunSocketMode serves the same handlers over Slack's Socket Mode until ctx
// ends: slash commands, interactions and events arrive on a websocket
// opened with the app-level token (xapp-…, scope connections:write), and
// each is acknowledged with the same payload the HTTP endpoint would
// answer. It never gives up: a refused token (invalid_auth,
// account_inactive) is logged once and retried with backoff, so the
// workers and the scheduler keep running while Slack is unreachable;
// SocketConnected says whether a connection is open. When Slack asks for
// a reconnect (a disconnect frame) the new connection is opened before the
// old one is closed, so no envelope finds the app away.
func (b *Bot) RunSocketMode(ctx context.Context, appToken string) error {
	if appToken == "" {
		return errors.New("socket mode needs an app-level token")
	}
	api := *b.api // same API URL, plus the app-level token
	slack.OptionAppLevelToken(appToken)(&api)
	b.socketMode.Store(true)

	var conns sync.WaitGroup
	defer conns.Wait()
	var failures int
	lastErr := ""
	var old *socketConn // a connection Slack asked us to leave
	for ctx.Err() == nil {
		c, err := b.dialSocket(ctx, &api)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := backoff(failures)
			var rl *slack.RateLimitedError
			if errors.As(err, &rl) {
				wait = max(wait, rl.RetryAfter)
			}
			// One line per kind of failure, not one per attempt.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				ev := b.log.Warn()
				if isAuthError(err) {
					ev = b.log.Error()
				}
				ev.Err(err).Dur("retry_in", wait).Msg("socket mode: could not connect; retrying with backoff (readiness false)")
			} else {
				b.log.Debug().Err(err).Dur("retry_in", wait).Msg("socket mode: still cannot connect")
			}
			// A connection Slack asked us to leave keeps serving until its
			// overlap ends or Slack closes it.
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		if lastErr != "" || failures > 0 {
			b.log.Info().Int("attempts", failures+1).Msg("socket mode: connected again")
		} else {
			b.log.Info().Msg("socket mode: connected")
		}
		lastErr = ""
		if old != nil {
			old.close() // the new connection is up: now leave the old one
			old = nil
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			c.serve(ctx)
		}()
		connectedAt := time.Now()
		select {
		case <-ctx.Done():
			c.close()
		case <-c.done:
			b.log.Warn().Msg("socket mode: connection lost; reconnecting")
			if time.Since(connectedAt) < socketFlapping {
				// Dropped right after opening: back off as after a failure.
				failures++
				select {
				case <-ctx.Done():
				case <-time.After(backoff(failures)):
				}
			} else {
				failures = 0
			}
		case <-c.leave:
			failures = 0
			b.log.Info().Str("reason", c.reason()).Msg("socket mode: Slack asked for a reconnect; opening the new connection first")
			old = c
			time.AfterFunc(socketOverlap, c.close)
		}
	}
	if old != nil {
		old.close()
	}
	return nil
}

// SocketConnected reports whether a Socket Mode connection is open.
func (b *Bot) SocketConnected() bool { return b.sockets.Load() > 0 }

// Ready is nil when the bot can receive from Slack: always in HTTP mode,
// and in Socket Mode while a connection is open. /readyz consults it.
func (b *Bot) Ready(context.Context) error {
	if b.socketMode.Load() && !b.SocketConnected() {
		return errors.New("slack socket mode is not connected")
	}
	return nil
}

func backoff(failures int) time.Duration {
	d := socketBackoffMin
	for i := 1; i < failures && d < socketBackoffMax; i++ {
		d *= 2
	}
	d = min(d, socketBackoffMax)
	return d/2 + rand.N(d/2+1)
}

func isAuthError(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "account_inactive", "token_revoked", "not_authed", "not_allowed_token_type":
			return true
		}
	}
	return false
}

// socketConn is one open Socket Mode websocket.
type socketConn struct {
	b       *Bot
	conn    *websocket.Conn
	writeMu sync.Mutex
	done    chan struct{} // closed when the connection has ended
	leave   chan struct{} // closed when Slack sent a disconnect frame
	leaveMu sync.Once
	why     atomic.Value
}

// dialSocket asks apps.connections.open for a URL, dials it and waits for
// Slack's hello.
func (b *Bot) dialSocket(ctx context.Context, api *slack.Client) (*socketConn, error) {
	_, url, err := api.StartSocketModeContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("apps.connections.open: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, socketHelloTimeout)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(dctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial socket mode: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(socketHelloTimeout))
	var hello envelope
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		_ = conn.Close()
		if err == nil {
			err = fmt.Errorf("first frame was %q, not hello", hello.Type)
		}
		return nil, fmt.Errorf("socket mode hello: %w", err)
	}
	c := &socketConn{b: b, conn: conn, done: make(chan struct{}), leave: make(chan struct{})}
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(socketReadTimeout))
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	b.sockets.Add(1)
	return c, nil
}

func (c *socketConn) reason() string {
	s, _ := c.why.Load().(string)
	return s
}

// close ends the connection; serve then returns.
func (c *socketConn) close() {
	_ = c.conn.Close()
}

// serve reads envelopes until the connection ends, handling each in its
// own goroutine, and waits for the handlers before returning.
func (c *socketConn) serve(ctx context.Context) {
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		c.b.sockets.Add(-1)
		close(c.done)
	}()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(socketReadTimeout))
		var env envelope
		if err := c.conn.ReadJSON(&env); err != nil {
			_ = c.conn.Close()
			if ctx.Err() == nil {
				c.b.log.Debug().Err(err).Msg("socket mode: connection ended")
			}
			return
		}
		switch env.Type {
		case "disconnect":
			c.why.Store(env.Reason)
			c.leaveMu.Do(func() { close(c.leave) })
		case "slash_commands", "interactive", "events_api":
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				c.b.serveEnvelope(c, env)
			}()
		case "hello":
		default:
			c.b.log.Debug().Str("type", env.Type).Msg("socket mode: ignored frame")
		}
	}
}

// ack answers one envelope. An answer over Slack's frame limit would be
// dropped with the connection, so it is logged and replaced by a bare ack.
func (c *socketConn) ack(envelopeID string, payload any) error {
	frame := map[string]any{"envelope_id": envelopeID}
	if payload != nil {
		frame["payload"] = payload
	}
	js, err := json.Marshal(frame)
	if err != nil {
		return fmt.Errorf("encode ack: %w", err)
	}
	if len(js) > MaxSocketFrameBytes {
		c.b.log.Error().Int("bytes", len(js)).Str("envelope_id", envelopeID).Msg("socket mode answer over 20 KiB; acknowledged without it")
		js, _ = json.Marshal(map[string]any{"envelope_id": envelopeID})
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, js)
}

// serveEnvelope handles one Socket Mode request and acknowledges it.
func (b *Bot) serveEnvelope(c *socketConn, env envelope) {
	received := time.Now()
	kind := map[string]string{"slash_commands": KindCommand, "interactive": KindBlockActions, "events_api": KindEvent}[env.Type]
	outcome := OutcomeOK
	var a ack
	defer func() {
		if p := recover(); p != nil {
			outcome = OutcomeError
			a = ack{}
			b.log.Error().Interface("panic", p).Stack().Msg("panic in Socket Mode handler")
		}
		if err := c.ack(env.EnvelopeID, a.body); err != nil {
			outcome = OutcomeError
			b.log.Error().Err(err).Str("envelope_id", env.EnvelopeID).Msg("socket mode ack")
		}
		b.observe(kind, outcome, time.Since(received))
	}()

	var err error
	switch env.Type {
	case "slash_commands":
		var cmd slack.SlashCommand
		if err = json.Unmarshal(env.Payload, &cmd); err != nil {
			err = badRequest{err}
			break
		}
		a, err = b.onCommand(received, cmd)
	case "interactive":
		var cb *slack.InteractionCallback
		if cb, err = DecodeInteraction(env.Payload); err != nil {
			err = badRequest{err}
			break
		}
		a, err = b.onInteraction(received, cb)
	case "events_api":
		a, err = b.onEvent(received, env.Payload)
	}
	if a.kind != "" {
		kind = a.kind
	}
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		outcome = OutcomeRejected
		b.log.Warn().Err(err).Str("envelope_id", env.EnvelopeID).Msg("socket mode request rejected: malformed payload")
		a = ack{}
	case err != nil:
		outcome = OutcomeError
		b.log.Error().Err(err).Str("envelope_id", env.EnvelopeID).Msg("socket mode request failed")
		a = ack{}
	}
}
