package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// config is everything read from the environment (see product.md,
// "Configuration"). Secrets are tagged so they never reach a log line.
type config struct {
	// slackUnpaced turns off pacing Slack calls to Slack's tiers: for the
	// demo, whose fake Slack has no limits. Not settable from the environment.
	slackUnpaced bool

	Listen             string   `env:"ACCESSBOT_LISTEN" envDefault:":8080"`
	DatabaseURL        string   `env:"DATABASE_URL" envDefault:"sqlite:accessbot.db"`
	SlackBotToken      string   `env:"SLACK_BOT_TOKEN" secret:"true"`
	SlackSigningSecret string   `env:"SLACK_SIGNING_SECRET" secret:"true"`
	SlackAppToken      string   `env:"SLACK_APP_TOKEN" secret:"true"`
	SlackAPIURL        string   `env:"SLACK_API_URL" envDefault:"https://slack.com/api/"`
	PostHogHost        string   `env:"POSTHOG_HOST" envDefault:"https://us.posthog.com"`
	PostHogAPIKey      string   `env:"POSTHOG_PERSONAL_API_KEY" secret:"true"`
	PostHogOrgID       string   `env:"POSTHOG_ORGANIZATION_ID"`
	PolicyFile         string   `env:"ACCESSBOT_POLICY_FILE"`
	Admins             []string `env:"ACCESSBOT_ADMINS" envSeparator:","`
	AuditToken         string   `env:"ACCESSBOT_AUDIT_TOKEN" secret:"true"`
	ApprovalsChannel   string   `env:"ACCESSBOT_APPROVALS_CHANNEL"`
	LogLevel           string   `env:"ACCESSBOT_LOG_LEVEL" envDefault:"info"`
	LogFormat          string   `env:"ACCESSBOT_LOG_FORMAT" envDefault:"json"`
	AdminListen        string   `env:"ACCESSBOT_ADMIN_LISTEN" envDefault:":9090"`

	// The audit log's anchors outside the database (see audit_serve.go).
	AuditSigningKey         string        `env:"ACCESSBOT_AUDIT_SIGNING_KEY"`
	AuditCheckpointInterval time.Duration `env:"ACCESSBOT_AUDIT_CHECKPOINT_INTERVAL" envDefault:"1h"`
	AuditChannel            string        `env:"ACCESSBOT_AUDIT_CHANNEL"`
	AuditWebhookURL         string        `env:"ACCESSBOT_AUDIT_WEBHOOK_URL" secret:"true"`
	AuditWebhookSecret      []string      `env:"ACCESSBOT_AUDIT_WEBHOOK_SECRET" envSeparator:"," secret:"true"`
	AuditWebhookFormat      string        `env:"ACCESSBOT_AUDIT_WEBHOOK_FORMAT" envDefault:"jsonl"`

	// Tuning beyond the contract; the defaults suit most installations.
	PostHogPerMinute  int           `env:"POSTHOG_REQUESTS_PER_MINUTE" envDefault:"450"` // PostHog allows 480 per key
	PostHogPerHour    int           `env:"POSTHOG_REQUESTS_PER_HOUR" envDefault:"4500"`  // PostHog allows 4800 per key
	Workers           int           `env:"ACCESSBOT_WORKERS" envDefault:"4"`
	ShutdownTimeout   time.Duration `env:"ACCESSBOT_SHUTDOWN_TIMEOUT" envDefault:"25s"`
	SchedulerInterval time.Duration `env:"ACCESSBOT_SCHEDULER_INTERVAL" envDefault:"30s"`
	ReconcileInterval time.Duration `env:"ACCESSBOT_RECONCILE_INTERVAL" envDefault:"15m"`
}

// loadConfig reads the environment given as a lookup function.
func loadConfig(environ []string) (config, error) {
	var c config
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	if err := env.ParseWithOptions(&c, env.Options{Environment: m}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) && len(agg.Errors) > 0 {
			err = agg.Errors[0]
		}
		var pe env.ParseError
		if errors.As(err, &pe) {
			if f, ok := reflect.TypeOf(c).FieldByName(pe.Name); ok {
				return c, fmt.Errorf("%s %q is not %s", f.Tag.Get("env"), m[f.Tag.Get("env")], kindOf(f.Type))
			}
		}
		return c, fmt.Errorf("configuration: %w", err)
	}
	for i, a := range c.Admins {
		c.Admins[i] = strings.TrimSpace(a)
	}
	return c, c.validate()
}

// kindOf says in words what a setting of type t looks like.
func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration such as 30s, 5m or 1h"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Float64:
		return "a number"
	default:
		return "valid for " + t.String()
	}
}

// validateServe checks what `serve` needs, naming the first missing or
// malformed setting in one line.
func (c config) validateServe() error {
	switch {
	case c.SlackBotToken == "":
		return errors.New("SLACK_BOT_TOKEN is required (the bot token, xoxb-…)")
	case c.SlackAppToken == "" && c.SlackSigningSecret == "":
		return errors.New("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
	case c.SlackAppToken != "" && !strings.HasPrefix(c.SlackAppToken, "xapp-"):
		return errors.New("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
	case c.PostHogAPIKey == "":
		return errors.New("POSTHOG_PERSONAL_API_KEY is required (a personal API key of a PostHog organization admin)")
	case c.PostHogOrgID == "":
		return errors.New("POSTHOG_ORGANIZATION_ID is required (the organization id, or @current)")
	case c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0"):
		return fmt.Errorf("ACCESSBOT_ADMIN_LISTEN must differ from ACCESSBOT_LISTEN (%s): the operator endpoints must not be on the Slack-facing listener", c.Listen)
	}
	if err := c.validateAudit(); err != nil {
		return err
	}
	return nil
}
