package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/accessbot/accessbot/workflow"
)

// Limits of the tuning settings. They are wide: they only catch values that
// cannot be meant (a typo, a unit forgotten) and would otherwise stop the
// process later, after it said it was serving.
const (
	maxWorkers           = 100
	minSchedulerInterval = 100 * time.Millisecond
	maxSchedulerInterval = time.Hour
	minReconcileInterval = time.Second
	maxShutdownTimeout   = 10 * time.Minute
)

// validate checks every address, duration and count in c, whatever the
// subcommand, and names the first bad one in one line. Secrets and
// required-for-serve settings are checked by validateServe.
//
// "0 means never" holds where switching something off is safe:
// ACCESSBOT_RECONCILE_INTERVAL=0 stops drift detection. The scheduler ends
// grants and expires requests, so it cannot be switched off.
func (c config) validate() error {
	if err := validateListen("ACCESSBOT_LISTEN", c.Listen); err != nil {
		return err
	}
	if err := validateListen("ACCESSBOT_ADMIN_LISTEN", c.AdminListen); err != nil {
		return err
	}
	for _, u := range []struct{ name, raw string }{{"SLACK_API_URL", c.SlackAPIURL}, {"POSTHOG_HOST", c.PostHogHost}} {
		if err := validateHTTPURL(u.name, u.raw); err != nil {
			return err
		}
	}
	switch {
	case c.Workers < 1 || c.Workers > maxWorkers:
		return fmt.Errorf("ACCESSBOT_WORKERS must be between 1 and %d, got %d", maxWorkers, c.Workers)
	case c.PostHogPerMinute < 1 || c.PostHogPerMinute > 480:
		return fmt.Errorf("POSTHOG_REQUESTS_PER_MINUTE must be between 1 and 480 (PostHog's limit per key), got %d", c.PostHogPerMinute)
	case c.PostHogPerHour < 1 || c.PostHogPerHour > 4800:
		return fmt.Errorf("POSTHOG_REQUESTS_PER_HOUR must be between 1 and 4800 (PostHog's limit per key), got %d", c.PostHogPerHour)
	case c.ShutdownTimeout <= 0 || c.ShutdownTimeout > maxShutdownTimeout:
		return fmt.Errorf("ACCESSBOT_SHUTDOWN_TIMEOUT must be between 1s and %s, got %s", workflow.DurationText(maxShutdownTimeout), c.ShutdownTimeout)
	case c.SchedulerInterval < minSchedulerInterval || c.SchedulerInterval > maxSchedulerInterval:
		return fmt.Errorf("ACCESSBOT_SCHEDULER_INTERVAL must be between %s and %s, got %s (the scheduler ends grants and expires requests, so it cannot be switched off)",
			workflow.DurationText(minSchedulerInterval), workflow.DurationText(maxSchedulerInterval), c.SchedulerInterval)
	case c.ReconcileInterval < 0 || (c.ReconcileInterval > 0 && c.ReconcileInterval < minReconcileInterval):
		return fmt.Errorf("ACCESSBOT_RECONCILE_INTERVAL must be 0 (never) or at least %s, got %s", workflow.DurationText(minReconcileInterval), c.ReconcileInterval)
	}
	return nil
}

// validateListen checks a listen address of the form [HOST]:PORT.
func validateListen(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s must be an address such as :8080 or 127.0.0.1:8080, got %q", name, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: port %q is not a number from 0 to 65535", name, port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("%s: %q is not an IP address or host name", name, host)
	}
	return nil
}

// validateHTTPURL checks an absolute http(s) URL.
func validateHTTPURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an http(s) URL, got %q", name, raw)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
