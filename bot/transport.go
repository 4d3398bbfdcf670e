package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
	"github.com/slack-go/slack"
)

// Routes registers the Slack endpoints on r:
//
//	POST /slack/commands      slash commands
//	POST /slack/interactions  block_actions, view_submission, view_closed
//	POST /slack/options       block_suggestion (typeahead role picker)
//	POST /slack/events        Events API (url_verification, app_home_opened)
//
// Every request is verified with the signing secret before anything in it
// is read (except Slack's ssl_check, answered with an empty 200), and a
// signed request seen before is acknowledged without being acted on again.
func (b *Bot) Routes(r *mux.Router) {
	r.Handle("/slack/commands", b.endpoint(KindCommand, b.httpCommand)).Methods(http.MethodPost)
	r.Handle("/slack/interactions", b.endpoint(KindBlockActions, b.httpInteraction)).Methods(http.MethodPost)
	r.Handle("/slack/options", b.endpoint(KindOptions, b.httpInteraction)).Methods(http.MethodPost)
	r.Handle("/slack/events", b.endpoint(KindEvent, b.httpEvent)).Methods(http.MethodPost)
}

// ack is how a handler answers Slack: a JSON body, or an empty 200 when
// body is nil. kind names the request for metrics once it is decoded.
type ack struct {
	kind string
	body any
}

// badRequest marks a payload that is not what Slack sends: 400.
type badRequest struct{ err error }

func (e badRequest) Error() string { return "malformed payload: " + e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

func malformed(format string, args ...any) error {
	return badRequest{fmt.Errorf(format, args...)}
}

// endpoint wraps a handler with what every Slack endpoint needs: a body
// size limit, signature verification before any parsing, panic recovery,
// the status mapping and the Observe hook.
func (b *Bot) endpoint(defaultKind string, handle func(received time.Time, body []byte) (ack, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		kind, outcome := defaultKind, OutcomeOK
		log := b.log.With().Str("path", r.URL.Path).Logger()
		defer func() {
			if p := recover(); p != nil {
				outcome = OutcomeError
				log.Error().Interface("panic", p).Stack().Msg("panic in Slack handler")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
			b.observe(kind, outcome, time.Since(received))
		}()

		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.maxBody))
		if err != nil {
			outcome = OutcomeRejected
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				log.Warn().Int64("limit", b.maxBody).Msg("slack request rejected: body too large")
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			log.Warn().Err(err).Msg("slack request rejected: reading the body failed")
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if isSSLCheck(body) {
			// Before the signature: Slack's certificate check is answered
			// with an empty 200 and nothing else happens.
			log.Debug().Msg("ssl_check answered")
			w.WriteHeader(http.StatusOK)
			return
		}
		if err := b.verify(r.Header, body); err != nil {
			outcome = OutcomeRejected
			log.Warn().Str("reason", err.Error()).Str("remote", r.RemoteAddr).Msg("slack request rejected: signature")
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		if !b.replays.firstTime(r.Header, body, received) {
			outcome = OutcomeRejected
			log.Warn().Str("remote", r.RemoteAddr).Msg("slack request ignored: the same signed request was already handled")
			w.WriteHeader(http.StatusOK)
			return
		}

		a, err := handle(received, body)
		if a.kind != "" {
			kind = a.kind
		}
		var bad badRequest
		switch {
		case errors.As(err, &bad):
			outcome = OutcomeRejected
			log.Warn().Err(err).Msg("slack request rejected: malformed payload")
			http.Error(w, "malformed payload", http.StatusBadRequest)
			return
		case err != nil:
			outcome = OutcomeError
			log.Error().Err(err).Msg("slack request failed")
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if a.body == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		js, err := json.Marshal(a.body)
		if err != nil {
			outcome = OutcomeError
			log.Error().Err(err).Msg("encode Slack answer")
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(js)
	})
}

// verify checks Slack's v0 signature over the raw body: HMAC-SHA256 of
// "v0:timestamp:body" with the signing secret, compared in constant time,
// and a timestamp within five minutes (slack.NewSecretsVerifier).
func (b *Bot) verify(h http.Header, body []byte) error {
	if b.secret == "" {
		return errors.New("no signing secret configured")
	}
	sv, err := slack.NewSecretsVerifier(h, b.secret)
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// httpCommand decodes a slash command form.
func (b *Bot) httpCommand(received time.Time, body []byte) (ack, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ack{}, malformed("slash command form: %v", err)
	}
	cmd := slack.SlashCommand{
		Token:          form.Get("token"),
		TeamID:         form.Get("team_id"),
		TeamDomain:     form.Get("team_domain"),
		EnterpriseID:   form.Get("enterprise_id"),
		EnterpriseName: form.Get("enterprise_name"),
		ChannelID:      form.Get("channel_id"),
		ChannelName:    form.Get("channel_name"),
		UserID:         form.Get("user_id"),
		UserName:       form.Get("user_name"),
		Command:        form.Get("command"),
		Text:           form.Get("text"),
		ResponseURL:    form.Get("response_url"),
		TriggerID:      form.Get("trigger_id"),
		APIAppID:       form.Get("api_app_id"),
	}
	return b.onCommand(received, cmd)
}

// httpInteraction decodes the payload field of an interaction or options
// request.
func (b *Bot) httpInteraction(received time.Time, body []byte) (ack, error) {
	cb, err := DecodeInteractionForm(body)
	if err != nil {
		return ack{}, badRequest{err}
	}
	return b.onInteraction(received, cb)
}

// httpEvent handles an Events API delivery.
func (b *Bot) httpEvent(received time.Time, body []byte) (ack, error) {
	return b.onEvent(received, json.RawMessage(body))
}

// DecodeInteractionForm reads an interaction request body as Slack posts
// it (form-encoded, the JSON in the payload field).
func DecodeInteractionForm(body []byte) (*slack.InteractionCallback, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("interaction form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, errors.New("interaction form: no payload")
	}
	return DecodeInteraction([]byte(payload))
}

// DecodeInteraction reads an interaction payload (block_actions,
// view_submission, view_closed, block_suggestion, shortcut). It checks what
// every handler relies on — a type and a user — and never panics.
func DecodeInteraction(payload []byte) (cb *slack.InteractionCallback, err error) {
	defer func() {
		if p := recover(); p != nil {
			cb, err = nil, fmt.Errorf("interaction payload: %v", p)
		}
	}()
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return nil, errors.New("interaction payload: not a JSON object")
	}
	var c slack.InteractionCallback
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("interaction payload: %w", err)
	}
	if c.Type == "" {
		return nil, errors.New("interaction payload: no type")
	}
	if c.User.ID == "" {
		return nil, errors.New("interaction payload: no user")
	}
	return &c, nil
}
