package views

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Message is a chat message: Text is the notification and fallback text,
// Blocks what Slack shows.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks,omitempty"`
}

// Options returns the chat.postMessage / chat.update options for m.
func (m Message) Options() []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	} else {
		// chat.update keeps the old blocks unless told to drop them.
		opts = append(opts, slack.MsgOptionBlocks())
	}
	return opts
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes user-provided text safe inside mrkdwn: Slack reads &, < and >
// as control characters (links, mentions, entities).
func Escape(s string) string { return mrkdwnEscaper.Replace(s) }

// Mention renders a Slack user id as a mention; "system" and "" read as the bot.
func Mention(userID string) string {
	if userID == "" || userID == workflow.SystemActor {
		return "accessbot"
	}
	if workflow.PostHogOnlySubject(userID) {
		// A member the bot never saw in Slack (removed by a review): their email.
		return Escape(strings.TrimPrefix(userID, "posthog:"))
	}
	return "<@" + userID + ">"
}

// Date renders t so each reader sees it in their own time zone, with a UTC
// fallback for clients that cannot.
func Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// DurationLabel is how a grant length reads in a menu: "1 hour", "8 hours",
// "1 day", "7 days", "Permanent".
func DurationLabel(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d <= 0:
		return "Permanent"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	default:
		return d.String()
	}
}

// durationPhrase is a grant length inside a sentence: "for 8 hours",
// "permanently".
func durationPhrase(d time.Duration) string {
	if d <= 0 {
		return "permanently"
	}
	return "for " + DurationLabel(d)
}

// DurationValue is the option value of a grant length; ParseDurationValue
// reads it back.
func DurationValue(d time.Duration) string { return workflow.DurationText(d) }

// ParseDurationValue reads an option value written by DurationValue.
func ParseDurationValue(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "permanent") {
		return 0, nil
	}
	d, err := workflow.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxSectionText), false, false)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(s), nil, nil)
}

func fieldsSection(fields ...string) *slack.SectionBlock {
	objs := make([]*slack.TextBlockObject, 0, len(fields))
	for _, f := range fields {
		objs = append(objs, slack.NewTextBlockObject(slack.MarkdownType, truncate(f, 2000), false, false))
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

func contextBlock(s string) *slack.ContextBlock {
	return slack.NewContextBlock("", mrkdwn(s))
}

func header(s string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plain(truncate(s, maxHeaderText)))
}

// truncate cuts s to at most n characters, marking the cut.
// truncate shortens mrkdwn s to at most n characters, ending in "…". It
// cuts between whole characters (never inside a UTF-8 sequence or a UTF-16
// surrogate pair, as Go strings hold whole code points) and never inside
// an entity (&amp;) or a control sequence (<@U123>, <!date^…>): a cut that
// would land in one moves before it.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	kept := string(r[:n-1])
	if i := strings.LastIndexByte(kept, '&'); i >= 0 && !strings.Contains(kept[i:], ";") {
		for _, e := range []string{"&amp;", "&lt;", "&gt;"} {
			if strings.HasPrefix(s[i:], e) {
				kept = kept[:i]
				break
			}
		}
	}
	if i := strings.LastIndexByte(kept, '<'); i >= 0 && !strings.Contains(kept[i:], ">") {
		kept = kept[:i]
	}
	return kept + "…"
}

// quote renders free text people typed as a mrkdwn block quote.
func quote(s string) string {
	lines := strings.Split(Escape(strings.TrimSpace(s)), "\n")
	return "> " + strings.Join(lines, "\n> ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
