package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/workflow"
)

func runPolicy(ctx context.Context, c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		out := c.stderr
		if len(args) > 0 {
			out = c.stdout
		}
		fmt.Fprintln(out, "Usage: accessbot policy check [FILE]")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "check" {
		fmt.Fprintf(c.stderr, "accessbot policy: unknown subcommand %q (want: policy check [FILE])\n", args[0])
		return 2
	}
	return runPolicyCheck(ctx, c, args[1:])
}

func runPolicyCheck(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "policy check", "policy check [FILE]",
		"Validates a policy file and exits: 0 when valid, 1 with one line per problem as\n"+
			"file:line:col: reason. FILE defaults to ACCESSBOT_POLICY_FILE. Needs no secret; when\n"+
			"POSTHOG_PERSONAL_API_KEY and POSTHOG_ORGANIZATION_ID are set it also looks up every\n"+
			"role the file names in PostHog (POSTHOG_HOST), as serve does at start.")
	pos, code, ok := parseFlagsArgs(c, fs, args, 1)
	if !ok {
		return code
	}
	var file string
	if len(pos) == 1 {
		file = pos[0]
	}
	cfg, log, err := c.setup()
	if err != nil {
		return fail(c, "policy check", err)
	}
	if file == "" {
		file = cfg.PolicyFile
	}
	if file == "" {
		return fail(c, "policy check", errors.New("no policy file: give FILE or set ACCESSBOT_POLICY_FILE"))
	}
	p, err := workflow.LoadPolicy(file)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	summary := fmt.Sprintf("%s: valid, %d %s", file, len(p.Roles), plural(len(p.Roles), "role", "roles"))
	switch {
	case cfg.PostHogAPIKey == "" && cfg.PostHogOrgID == "":
		fmt.Fprintf(c.stdout, "%s (not looked up in PostHog: set POSTHOG_PERSONAL_API_KEY and POSTHOG_ORGANIZATION_ID to do so)\n", summary)
		return 0
	case cfg.PostHogAPIKey == "":
		return fail(c, "policy check", errors.New("POSTHOG_PERSONAL_API_KEY is required to look the roles up in PostHog (unset POSTHOG_ORGANIZATION_ID to check the file alone)"))
	case cfg.PostHogOrgID == "":
		return fail(c, "policy check", errors.New("POSTHOG_ORGANIZATION_ID is required to look the roles up in PostHog (unset POSTHOG_PERSONAL_API_KEY to check the file alone)"))
	}
	ph, err := posthog.NewClient(cfg.PostHogHost, cfg.PostHogAPIKey, cfg.PostHogOrgID,
		posthog.WithRetry(3, 20*time.Second),
		posthog.WithUserAgent("accessbot/"+buildVersion()),
		posthog.WithLogger(log.With().Str("component", "posthog").Logger()))
	if err != nil {
		return fail(c, "policy check", fmt.Errorf("POSTHOG_HOST: %w", err))
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The same binding serve does at start (without the database, so a
	// rename since the last start reads as a role PostHog does not have).
	if err := workflow.BindPolicy(bctx, p, posthogdir.New(ph), nil); err != nil {
		var pe *workflow.PolicyError
		if !errors.As(err, &pe) {
			var apiErr *posthog.APIError
			if errors.As(err, &apiErr) && !posthog.IsTemporary(apiErr) {
				err = keyError(apiErr, "organization:read") // the words serve's preflight uses
			}
			return fail(c, "policy check", err)
		}
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	fmt.Fprintf(c.stdout, "%s, every one found in PostHog\n", summary)
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
