package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/workflow"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
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
	var file string
	if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
		file, args = args[n-1], args[:n-1]
	}
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
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
	roles, err := listPostHogRoles(ctx, ph)
	if err != nil {
		return fail(c, "policy check", err)
	}
	problems, err := unknownPolicyRoles(file, p, roles)
	if err != nil {
		return fail(c, "policy check", err)
	}
	for _, line := range problems {
		fmt.Fprintln(c.stderr, line)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(c.stdout, "%s, every one found in PostHog\n", summary)
	return 0
}

// listPostHogRoles reads every role of the organization, with errors that
// say which setting to fix.
func listPostHogRoles(ctx context.Context, ph *posthog.Client) ([]posthog.Role, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	roles, err := ph.Roles.ListAll(ctx)
	switch {
	case err == nil:
		return roles, nil
	case posthog.IsAuth(err):
		return nil, fmt.Errorf("POSTHOG_PERSONAL_API_KEY was refused by PostHog (%v); it needs the scopes organization:read, organization:write and organization_member:read", err)
	case posthog.IsNotFound(err):
		return nil, fmt.Errorf("POSTHOG_ORGANIZATION_ID: PostHog has no such organization for this key (%v)", err)
	default:
		return nil, fmt.Errorf("listing roles at POSTHOG_HOST: %w", err)
	}
}

// unknownPolicyRoles returns one "file:line: role "X" not found in PostHog"
// per policy entry that names no PostHog role, matching as the service does
// (by id, or by name ignoring case).
func unknownPolicyRoles(file string, p *workflow.Policy, roles []posthog.Role) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	ast, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	var out []string
	for i, rule := range p.Roles {
		found := false
		for _, r := range roles {
			if rule.Role == r.ID || strings.EqualFold(rule.Role, strings.TrimSpace(r.Name)) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		where := file
		if path, err := yaml.PathString(fmt.Sprintf("$.roles[%d].role", i)); err == nil {
			if n, err := path.FilterFile(ast); err == nil && n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
				where = fmt.Sprintf("%s:%d", file, n.GetToken().Position.Line)
			}
		}
		out = append(out, fmt.Sprintf("%s: role %q not found in PostHog", where, rule.Role))
	}
	return out, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
