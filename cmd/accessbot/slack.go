package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/accessbot/accessbot/bot"
)

// checkSlack calls auth.test with the bot token at start: a token Slack
// refuses stops serve in one line naming SLACK_BOT_TOKEN, and scopes the
// app needs (manifest.yaml) but the token lacks are named. A Slack that
// cannot be reached only warns: it may come back.
func checkSlack(ctx context.Context, apiURL, token string, hc *http.Client, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(apiURL, "/")+"/auth.test", strings.NewReader(url.Values{}.Encode()))
	if err != nil {
		return fmt.Errorf("SLACK_API_URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		log.Warn().Err(err).Msg("Slack is not reachable at start (auth.test); continuing, messages will wait for it")
		return nil
	}
	defer res.Body.Close()
	var body struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Team   string `json:"team"`
		User   string `json:"user"`
		UserID string `json:"user_id"`
	}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests {
		log.Warn().Int("status", res.StatusCode).Msg("Slack did not answer auth.test at start; continuing")
		return nil
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("SLACK_API_URL: auth.test answered HTTP %d that is not Slack's JSON", res.StatusCode)
	}
	if !body.OK {
		return fmt.Errorf("SLACK_BOT_TOKEN was refused by Slack (auth.test: %s); give the Bot User OAuth Token (xoxb-…) of the installed app", body.Error)
	}
	if missing := missingScopes(res.Header.Get("X-OAuth-Scopes")); len(missing) > 0 {
		return fmt.Errorf("SLACK_BOT_TOKEN lacks the scopes %s that manifest.yaml asks for; add them to the app and reinstall it", strings.Join(missing, ", "))
	}
	log.Info().Str("team", body.Team).Str("bot_user", body.UserID).Msg("Slack bot token checked")
	return nil
}

// missingScopes lists the scopes of bot.RequiredScopes not in header (a
// comma-separated X-OAuth-Scopes value). An absent header names nothing.
func missingScopes(header string) []string {
	if strings.TrimSpace(header) == "" {
		return nil
	}
	have := map[string]bool{}
	for _, s := range strings.Split(header, ",") {
		have[strings.TrimSpace(s)] = true
	}
	var missing []string
	for _, s := range bot.RequiredScopes {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing
}

// readyAll is ready when every part is.
type readyAll []readiness

func (r readyAll) Ready(ctx context.Context) error {
	var errs []error
	for _, p := range r {
		if err := p.Ready(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// slackMetrics are the Slack connection gauge and the dropped-notification
// counter.
type slackMetrics struct {
	dropped *prometheus.CounterVec
}

func newSlackMetrics(reg *prometheus.Registry, connected func() bool) *slackMetrics {
	m := &slackMetrics{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "accessbot_notifications_dropped_total",
		Help: "Slack notifications given up for good, by Slack's error (channel_not_found, is_archived, …); each is also logged as an error.",
	}, []string{"reason"})}
	reg.MustRegister(m.dropped, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "accessbot_slack_connected",
		Help: "1 while the bot can receive from Slack: in Socket Mode, while a socket is open; always 1 in HTTP mode.",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	}))
	return m
}
