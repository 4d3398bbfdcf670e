package sandbox

import (
	"fmt"
	"html"
	"html/template"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// text turns Slack's text formats into safe HTML. Every character that
// came from the app is escaped; only the tags text adds itself are markup.
type text struct {
	name func(id string) string // a Slack user id as people read it
	now  func() time.Time
	loc  *time.Location
}

// Placeholders stand for already-rendered pieces while the rest of a line
// is formatted; private-use runes never occur in what is rendered (they
// are removed first) and contain no formatting marker.
const (
	phOpen  = '\uE000'
	phClose = '\uE001'
)

var placeholderRE = regexp.MustCompile("\uE000([0-9]+)\uE001")

// entities decodes the three entities Slack's text uses for literal &, <, >.
var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// plain renders a plain_text object: escaped, with emoji shortcodes when
// the object asks for them.
func (x text) plain(s string, emoji bool) template.HTML {
	out := html.EscapeString(s)
	if emoji {
		out = emojify(out)
	}
	return template.HTML(out)
}

// mrkdwn renders Slack mrkdwn: *bold*, _italic_, ~strike~, `code`,
// ```pre```, > quotes, <links|text>, <@U…> mentions, <#C…|channels>,
// <!date^…> dates, <!here>, :emoji: and line breaks.
func (x text) mrkdwn(s string) template.HTML {
	s = strings.Map(func(r rune) rune {
		if r == phOpen || r == phClose {
			return -1
		}
		return r
	}, s)
	var pieces []string
	hold := func(h string) string {
		pieces = append(pieces, h)
		return string(phOpen) + strconv.Itoa(len(pieces)-1) + string(phClose)
	}
	// Code first: nothing inside it is formatted.
	s = preRE.ReplaceAllStringFunc(s, func(m string) string {
		body := strings.Trim(m[3:len(m)-3], "\n")
		return hold("<pre>" + html.EscapeString(entities.Replace(body)) + "</pre>")
	})
	s = codeRE.ReplaceAllStringFunc(s, func(m string) string {
		return hold("<code>" + html.EscapeString(entities.Replace(m[1:len(m)-1])) + "</code>")
	})
	s = angleRE.ReplaceAllStringFunc(s, func(m string) string { return hold(x.angle(m[1 : len(m)-1])) })

	var b strings.Builder
	inQuote := false
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		quoted := strings.HasPrefix(line, ">")
		if quoted {
			line = strings.TrimPrefix(strings.TrimPrefix(line, ">"), " ")
		}
		switch {
		case quoted && !inQuote:
			b.WriteString("<blockquote>")
		case !quoted && inQuote:
			b.WriteString("</blockquote>")
		case i > 0:
			b.WriteString("<br>")
		}
		inQuote = quoted
		b.WriteString(x.inline(line))
	}
	if inQuote {
		b.WriteString("</blockquote>")
	}
	out := placeholderRE.ReplaceAllStringFunc(b.String(), func(m string) string {
		n, _ := strconv.Atoi(m[len(string(phOpen)) : len(m)-len(string(phClose))])
		return pieces[n]
	})
	return template.HTML(out)
}

var (
	preRE   = regexp.MustCompile("(?s)```.*?```")
	codeRE  = regexp.MustCompile("`[^`\n]+`")
	angleRE = regexp.MustCompile(`<[^<>\n]+>`)
	emojiRE = regexp.MustCompile(`:([a-z0-9_+\-]+):`)
)

// inline formats one line of text (entities still encoded as Slack sends them).
func (x text) inline(line string) string {
	out := html.EscapeString(entities.Replace(line))
	out = emphasis(out, '*', "b")
	out = emphasis(out, '_', "i")
	out = emphasis(out, '~', "s")
	return emojify(out)
}

// emphasis wraps marker…marker spans in tag where Slack would: the opening
// marker starts a word, the closing one ends a word, and neither touches a
// space on its inner side.
func emphasis(s string, marker byte, tag string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		if s[i] == marker && (i == 0 || !wordBefore(s, i)) && i+1 < len(s) && s[i+1] != ' ' && s[i+1] != marker {
			if j := closing(s, i+1, marker); j > 0 {
				b.WriteString("<" + tag + ">")
				b.WriteString(s[i+1 : j])
				b.WriteString("</" + tag + ">")
				i = j + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func closing(s string, from int, marker byte) int {
	for j := from; j < len(s); j++ {
		if s[j] == marker && s[j-1] != ' ' && (j+1 == len(s) || !wordAt(s, j+1)) {
			return j
		}
	}
	return -1
}

func wordBefore(s string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func wordAt(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func emojify(s string) string {
	return emojiRE.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emoji[m[1:len(m)-1]]; ok {
			return e
		}
		return m
	})
}

// angle renders the inside of a <…> token.
func (x text) angle(tok string) string {
	written := "<" + tok + ">"
	label := ""
	if i := strings.LastIndexByte(tok, '|'); i >= 0 {
		tok, label = tok[:i], tok[i+1:]
	}
	esc := func(s string) string { return html.EscapeString(entities.Replace(s)) }
	switch {
	case strings.HasPrefix(tok, "@"):
		id := tok[1:]
		name := x.name(id)
		if name == id && label != "" {
			name = label
		}
		return `<span class="mention" title="` + esc(id) + `">@` + esc(name) + `</span>`
	case strings.HasPrefix(tok, "#"):
		name := label
		if name == "" {
			name = tok[1:]
		}
		return `<span class="mention">#` + esc(name) + `</span>`
	case strings.HasPrefix(tok, "!date^"):
		return x.date(tok, label)
	case strings.HasPrefix(tok, "!subteam^"):
		if label == "" {
			label = "@group"
		}
		return `<span class="mention">` + esc(label) + `</span>`
	case strings.HasPrefix(tok, "!"):
		name := tok[1:]
		if label != "" {
			name = strings.TrimPrefix(label, "@")
		}
		return `<span class="mention">@` + esc(name) + `</span>`
	}
	u, err := url.Parse(entities.Replace(tok))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "mailto") {
		// Not a link Slack would make: show the text as it was written.
		return html.EscapeString(entities.Replace(written))
	}
	if label == "" {
		label = tok
	}
	return `<a href="` + html.EscapeString(u.String()) + `" target="_blank" rel="noopener noreferrer">` + esc(label) + `</a>`
}

// date renders <!date^UNIX^FORMAT[^LINK]|FALLBACK> in the reader's time
// zone (the sandbox's), as Slack clients do.
func (x text) date(tok, fallback string) string {
	parts := strings.SplitN(tok, "^", 4)
	esc := func(s string) string { return html.EscapeString(entities.Replace(s)) }
	if len(parts) < 3 {
		return esc(fallback)
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return esc(fallback)
	}
	t := time.Unix(unix, 0).In(x.loc)
	now := x.now().In(x.loc)
	day := func(layout string, pretty bool) string {
		if pretty {
			switch days := civilDays(t) - civilDays(now); days {
			case 0:
				return "today"
			case -1:
				return "yesterday"
			case 1:
				return "tomorrow"
			}
		}
		return t.Format(layout)
	}
	repl := strings.NewReplacer(
		"{date_num}", t.Format("2006-01-02"),
		"{date}", day("January 2, 2006", false),
		"{date_short}", day("Jan 2, 2006", false),
		"{date_long}", day("Monday, January 2, 2006", false),
		"{date_pretty}", day("January 2, 2006", true),
		"{date_short_pretty}", day("Jan 2, 2006", true),
		"{date_long_pretty}", day("Monday, January 2, 2006", true),
		"{time}", t.Format("15:04"),
		"{time_secs}", t.Format("15:04:05"),
		"{ago}", ago(now.Sub(t)),
	)
	shown := repl.Replace(entities.Replace(parts[2]))
	return `<time datetime="` + t.UTC().Format(time.RFC3339) + `" title="` + esc(fallback) + `">` + html.EscapeString(shown) + `</time>`
}

func civilDays(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// ago is a duration as "5 minutes ago" (or "in 5 minutes" for the future).
func ago(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		if future {
			return "in a few seconds"
		}
		return "just now"
	case d < time.Hour:
		s = count(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = count(int(d/time.Hour), "hour")
	default:
		s = count(int(d/(24*time.Hour)), "day")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func count(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// emoji are the shortcodes the bot uses and a few common ones; others stay
// as written, as in a Slack without that custom emoji.
var emoji = map[string]string{
	"white_check_mark": "✅", "heavy_check_mark": "✔️", "x": "❌", "warning": "⚠️", "no_entry": "⛔",
	"no_entry_sign": "🚫", "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "stopwatch": "⏱️",
	"alarm_clock": "⏰", "timer_clock": "⏲️", "heavy_minus_sign": "➖", "heavy_plus_sign": "➕", "lock": "🔒",
	"unlock": "🔓", "key": "🔑", "bell": "🔔", "gear": "⚙️", "information_source": "ℹ️",
	"large_blue_circle": "🔵", "large_yellow_circle": "🟡", "large_green_circle": "🟢", "red_circle": "🔴",
	"white_circle": "⚪", "mag": "🔍", "outbox_tray": "📤", "inbox_tray": "📥", "relaxed": "☺️", "tada": "🎉",
	"thinking_face": "🤔", "page_facing_up": "📄", "memo": "📝", "clipboard": "📋", "calendar": "📅",
	"bust_in_silhouette": "👤", "busts_in_silhouette": "👥", "shield": "🛡️", "rotating_light": "🚨",
	"rocket": "🚀", "fire": "🔥", "zap": "⚡", "sparkles": "✨", "bulb": "💡", "question": "❓",
	"exclamation": "❗", "+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎", "wave": "👋",
	"eyes": "👀", "pray": "🙏", "ok_hand": "👌", "smile": "😄", "slightly_smiling_face": "🙂",
	"arrow_right": "➡️", "leftwards_arrow_with_hook": "↩️", "arrows_counterclockwise": "🔄", "repeat": "🔁",
	"link": "🔗", "door": "🚪", "stop_sign": "🛑", "raising_hand": "🙋", "envelope": "✉️", "hammer_and_wrench": "🛠️",
}
