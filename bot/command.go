package bot

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// Verb is the subcommand of `/access`.
type Verb string

// The subcommands of `/access`, as in the product spec.
const (
	VerbRequest      Verb = "request"       // open the request modal (Role prefilled when set)
	VerbRemove       Verb = "remove"        // open the modal in removal mode (Role, optional User)
	VerbList         Verb = "list"          // the caller's requests
	VerbPending      Verb = "pending"       // requests waiting for the caller's decision
	VerbCancel       Verb = "cancel"        // withdraw request ID
	VerbRevoke       Verb = "revoke"        // end grant ID early (owners, admins), with an optional reason
	VerbExtend       Verb = "extend"        // ask to extend the caller's grant ID (optional Duration)
	VerbDone         Verb = "done"          // the holder ends grant ID now
	VerbRoles        Verb = "roles"         // PostHog roles with owners and members
	VerbOwners       Verb = "owners"        // owners of Role
	VerbOwnersAdd    Verb = "owners add"    // make User an owner of Role
	VerbOwnersRemove Verb = "owners remove" // take User off Role's owners
	VerbAudit        Verb = "audit"         // export the audit log (Since / SinceAgo)
	VerbBreakGlass   Verb = "breakglass"    // take a break-glass role now (Role holds "ROLE REASON")
	VerbReview       Verb = "review"        // start an access review of Role
	VerbHelp         Verb = "help"          // usage
)

// Command is a parsed `/access` command line.
type Command struct {
	Verb     Verb
	Role     string        // role name or id as typed, unescaped; may contain spaces
	User     string        // Slack user id from a mention
	ID       int64         // request id
	Reason   string        // revoke: why, as typed
	Duration time.Duration // extend: how much longer (0: as long as the grant was given for)
	Since    time.Time     // audit: absolute start
	SinceAgo time.Duration // audit: relative start ("7d")
}

var (
	mentionRe = regexp.MustCompile(`^<@([UW][A-Z0-9]{1,30})(?:\|[^>]*)?>$`)
	unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")
)

// usageError is a command that cannot be understood, with what to say.
func usageError(format string, args ...any) error {
	return workflow.Errorf(workflow.EINVALID, format, args...)
}

// ParseCommand reads the text of an `/access` command as Slack sends it with
// should_escape on: mentions as <@U123> or <@U123|name>, and &, <, >
// escaped as entities. It never panics; anything it cannot read gives an
// EINVALID *workflow.Error whose message says what was wrong (the caller
// adds the usage).
func ParseCommand(text string) (Command, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{Verb: VerbRequest}, nil
	}
	verb, args := strings.ToLower(fields[0]), fields[1:]
	switch verb {
	case "request", "req", "ask":
		for _, a := range args {
			if strings.HasPrefix(a, "<@") {
				return Command{}, usageError("You can only ask for access for yourself. To take someone off a role, use `/access remove ROLE @user`.")
			}
		}
		return Command{Verb: VerbRequest, Role: joinRole(args)}, nil

	case "remove", "leave":
		role, user, err := roleAndMention(args, false)
		if err != nil {
			return Command{}, err
		}
		if role == "" {
			return Command{}, usageError("Say which role: `/access remove ROLE`.")
		}
		return Command{Verb: VerbRemove, Role: role, User: user}, nil

	case "list", "ls", "mine":
		if len(args) > 0 {
			return Command{}, usageError("`/access list` takes nothing after it.")
		}
		return Command{Verb: VerbList}, nil

	case "pending", "queue":
		if len(args) > 0 {
			return Command{}, usageError("`/access pending` takes nothing after it.")
		}
		return Command{Verb: VerbPending}, nil

	case "cancel", "withdraw":
		if len(args) != 1 {
			return Command{}, usageError("Say which request to cancel: `/access cancel 7`.")
		}
		id, err := parseRequestID(args[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Verb: VerbCancel, ID: id}, nil

	case "revoke":
		if len(args) == 0 {
			return Command{}, usageError("Say which grant to revoke: `/access revoke 7 [reason]`.")
		}
		id, err := parseRequestID(args[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Verb: VerbRevoke, ID: id, Reason: joinRole(args[1:])}, nil

	case "extend":
		if len(args) == 0 || len(args) > 2 {
			return Command{}, usageError("Say which grant to extend, and optionally by how much: `/access extend 7` or `/access extend 7 8h`.")
		}
		id, err := parseRequestID(args[0])
		if err != nil {
			return Command{}, err
		}
		c := Command{Verb: VerbExtend, ID: id}
		if len(args) == 2 {
			if c.Duration, err = workflow.ParseDuration(args[1]); err != nil || c.Duration <= 0 {
				return Command{}, usageError("`%s` is not a duration; say how much longer like `8h`, `90m` or `2d`.", echo(args[1]))
			}
		}
		return c, nil

	case "done":
		if len(args) != 1 {
			return Command{}, usageError("Say which of your grants to end: `/access done 7`.")
		}
		id, err := parseRequestID(args[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Verb: VerbDone, ID: id}, nil

	case "breakglass", "break-glass":
		if len(args) < 2 {
			return Command{}, usageError("Say which role and why: `/access breakglass ROLE REASON`.")
		}
		// Role names may have spaces: the bot splits role from reason
		// against the roles PostHog has.
		return Command{Verb: VerbBreakGlass, Role: joinRole(args)}, nil

	case "review":
		if len(args) == 0 {
			return Command{}, usageError("Say which role to review: `/access review ROLE`.")
		}
		return Command{Verb: VerbReview, Role: joinRole(args)}, nil

	case "roles":
		if len(args) > 0 {
			return Command{}, usageError("`/access roles` takes nothing after it.")
		}
		return Command{Verb: VerbRoles}, nil

	case "owners", "owner":
		if len(args) == 0 {
			return Command{}, usageError("Say which role: `/access owners ROLE`.")
		}
		sub := strings.ToLower(args[0])
		if (sub == "add" || sub == "remove") && len(args) > 1 && isMention(args[len(args)-1]) {
			role, user, err := roleAndMention(args[1:], true)
			if err != nil {
				return Command{}, err
			}
			if role == "" {
				return Command{}, usageError("Say which role: `/access owners %s ROLE @user`.", sub)
			}
			v := VerbOwnersAdd
			if sub == "remove" {
				v = VerbOwnersRemove
			}
			return Command{Verb: v, Role: role, User: user}, nil
		}
		if sub == "add" || sub == "remove" {
			return Command{}, usageError("Name the user with a mention: `/access owners %s ROLE @user`.", sub)
		}
		if isMention(args[len(args)-1]) {
			return Command{}, usageError("To change owners, say `/access owners add ROLE @user` or `/access owners remove ROLE @user`.")
		}
		return Command{Verb: VerbOwners, Role: joinRole(args)}, nil

	case "audit":
		if len(args) > 1 {
			return Command{}, usageError("`/access audit` takes at most a start: `/access audit 2024-05-01` or `/access audit 7d`.")
		}
		c := Command{Verb: VerbAudit}
		if len(args) == 1 {
			var err error
			if c.Since, c.SinceAgo, err = parseSince(args[0]); err != nil {
				return Command{}, err
			}
		}
		return c, nil

	case "help", "-h", "--help", "?", "usage":
		return Command{Verb: VerbHelp}, nil
	}
	return Command{}, usageError("I don't know `%s`.", echo(fields[0]))
}

// joinRole rebuilds a role name from its words, undoing Slack's escaping.
func joinRole(args []string) string {
	return strings.TrimSpace(unescaper.Replace(strings.Join(args, " ")))
}

func isMention(s string) bool { return mentionRe.MatchString(s) }

// roleAndMention splits "ROLE WORDS <@U1>" into the role and the user id.
// The mention must come last; with required, it must be there.
func roleAndMention(args []string, required bool) (role, user string, err error) {
	if n := len(args); n > 0 {
		if m := mentionRe.FindStringSubmatch(args[n-1]); m != nil {
			user, args = m[1], args[:n-1]
		}
	}
	if user == "" && required {
		return "", "", usageError("Name the user with a mention, like @alice.")
	}
	for _, a := range args {
		if strings.HasPrefix(a, "<@") || strings.HasPrefix(a, "@") {
			return "", "", usageError("Put the @user last, after the role name.")
		}
	}
	return joinRole(args), user, nil
}

// parseRequestID reads "7" or "#7".
func parseRequestID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError("`%s` is not a request id; ids look like `7` or `#7`.", echo(s))
	}
	return id, nil
}

// parseSince reads an audit start: a date (2024-05-01, UTC), an RFC 3339
// time, or a look-back like 7d or 24h.
func parseSince(s string) (time.Time, time.Duration, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), 0, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), 0, nil
	}
	if d, err := workflow.ParseDuration(s); err == nil && d > 0 {
		return time.Time{}, d, nil
	}
	return time.Time{}, 0, usageError("I can't read `%s` as a start: use a date like `2024-05-01`, an RFC 3339 time, or a look-back like `7d`.", echo(s))
}

// echo is a word the person typed, shortened and made safe to quote back
// to them in mrkdwn.
func echo(word string) string {
	return views.Escape(unescaper.Replace(truncateRunes(word, 40)))
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
