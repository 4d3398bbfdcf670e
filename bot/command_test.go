package bot

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/accessbot/accessbot/workflow"
)

func TestParseCommand(t *testing.T) {
	may1 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		text string
		want Command
		err  string
	}{
		{"", Command{Verb: VerbRequest}, ""},
		{"   ", Command{Verb: VerbRequest}, ""},
		{"request", Command{Verb: VerbRequest}, ""},
		{"Request   Engineering", Command{Verb: VerbRequest, Role: "Engineering"}, ""},
		{"request Data &amp; Analytics", Command{Verb: VerbRequest, Role: "Data & Analytics"}, ""},
		{"request  Product\tAnalytics ", Command{Verb: VerbRequest, Role: "Product Analytics"}, ""},
		{"request Eng <@U0BOB>", Command{}, "only ask for access for yourself"},
		{"remove Engineering", Command{Verb: VerbRemove, Role: "Engineering"}, ""},
		{"remove Data Team <@U0ALICE|alice>", Command{Verb: VerbRemove, Role: "Data Team", User: "U0ALICE"}, ""},
		{"remove Eng <@W0ENTERPRISE>", Command{Verb: VerbRemove, Role: "Eng", User: "W0ENTERPRISE"}, ""},
		{"remove <@U0ALICE>", Command{}, "Say which role"},
		{"remove <@U0ALICE> Eng", Command{}, "Put the @user last"},
		{"remove", Command{}, "Say which role"},
		{"list", Command{Verb: VerbList}, ""},
		{"LIST", Command{Verb: VerbList}, ""},
		{"list all", Command{}, "takes nothing"},
		{"pending", Command{Verb: VerbPending}, ""},
		{"cancel 7", Command{Verb: VerbCancel, ID: 7}, ""},
		{"cancel #7", Command{Verb: VerbCancel, ID: 7}, ""},
		{"cancel", Command{}, "Say which request"},
		{"cancel 7 8", Command{}, "Say which request"},
		{"cancel #", Command{}, "not a request id"},
		{"cancel -3", Command{}, "not a request id"},
		{"cancel 0", Command{}, "not a request id"},
		{"cancel 99999999999999999999", Command{}, "not a request id"},
		{"revoke 7", Command{Verb: VerbRevoke, ID: 7}, ""},
		{"revoke #7 left the team &amp; moved", Command{Verb: VerbRevoke, ID: 7, Reason: "left the team & moved"}, ""},
		{"revoke", Command{}, "Say which grant"},
		{"revoke seven", Command{}, "not a request id"},
		{"roles", Command{Verb: VerbRoles}, ""},
		{"owners Engineering", Command{Verb: VerbOwners, Role: "Engineering"}, ""},
		{"owners Data Team", Command{Verb: VerbOwners, Role: "Data Team"}, ""},
		{"owners", Command{}, "Say which role"},
		{"owners add Engineering <@U0BOB>", Command{Verb: VerbOwnersAdd, Role: "Engineering", User: "U0BOB"}, ""},
		{"owners ADD Data Team <@U0BOB|bob>", Command{Verb: VerbOwnersAdd, Role: "Data Team", User: "U0BOB"}, ""},
		{"owners remove Engineering <@U0BOB>", Command{Verb: VerbOwnersRemove, Role: "Engineering", User: "U0BOB"}, ""},
		{"owners add Engineering", Command{}, "Name the user with a mention"},
		{"owners add Engineering @bob", Command{}, "Name the user with a mention"},
		{"owners add <@U0BOB>", Command{}, "Say which role"},
		{"owners Engineering <@U0BOB>", Command{}, "owners add ROLE @user"},
		{"audit", Command{Verb: VerbAudit}, ""},
		{"audit 2024-05-01", Command{Verb: VerbAudit, Since: may1}, ""},
		{"audit 2024-05-01T02:00:00+02:00", Command{Verb: VerbAudit, Since: may1}, ""},
		{"audit 7d", Command{Verb: VerbAudit, SinceAgo: 7 * 24 * time.Hour}, ""},
		{"audit 36h", Command{Verb: VerbAudit, SinceAgo: 36 * time.Hour}, ""},
		{"audit yesterday", Command{}, "as a start"},
		{"audit -7d", Command{}, "as a start"},
		{"audit 1 2", Command{}, "at most a start"},
		{"help", Command{Verb: VerbHelp}, ""},
		{"help me please", Command{Verb: VerbHelp}, ""},
		{"frobnicate", Command{}, "I don't know `frobnicate`"},
		{"&lt;b&gt;", Command{}, "I don't know `&lt;b&gt;`"},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			got, err := ParseCommand(c.text)
			if c.err != "" {
				if err == nil || !strings.Contains(workflow.ErrorMessage(err), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				if workflow.ErrorCode(err) != workflow.EINVALID {
					t.Errorf("code %s", workflow.ErrorCode(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !got.Since.Equal(c.want.Since) {
				t.Errorf("since %v, want %v", got.Since, c.want.Since)
			}
			got.Since, c.want.Since = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// FuzzParseCommand: any text gives a command or an EINVALID error with a
// message, never a panic; what it returns is well formed.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "request Eng", "remove Data &amp; Analytics <@U1|a>", "cancel #7", "revoke #7 done", "owners add R <@W9>",
		"audit 7d", "audit 2024-05-01T00:00:00Z", "list", "help", "\x00", "owners remove  <@U1>", "cancel #-1", "request <@U1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCommand(text)
		if err != nil {
			if workflow.ErrorCode(err) != workflow.EINVALID || workflow.ErrorMessage(err) == "" {
				t.Fatalf("%q: error %v", text, err)
			}
			if utf8.ValidString(text) && !utf8.ValidString(workflow.ErrorMessage(err)) {
				t.Fatalf("%q: message not UTF-8", text)
			}
			return
		}
		switch c.Verb {
		case VerbRequest, VerbList, VerbPending, VerbRoles, VerbHelp, VerbAudit:
		case VerbRemove, VerbOwners:
			if c.Role == "" {
				t.Fatalf("%q: %s without a role", text, c.Verb)
			}
		case VerbOwnersAdd, VerbOwnersRemove:
			if c.Role == "" || !mentionRe.MatchString("<@"+c.User+">") {
				t.Fatalf("%q: %+v", text, c)
			}
		case VerbCancel, VerbRevoke:
			if c.ID <= 0 {
				t.Fatalf("%q: id %d", text, c.ID)
			}
		default:
			t.Fatalf("%q: verb %q", text, c.Verb)
		}
		if c.Role != strings.TrimSpace(c.Role) || c.SinceAgo < 0 {
			t.Fatalf("%q: %+v", text, c)
		}
	})
}

// FuzzDecodeInteractionForm: any body gives a callback with a type and a
// user, or an error; never a panic.
func FuzzDecodeInteractionForm(f *testing.F) {
	for _, s := range []string{
		"payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D",
		`payload={"type":"view_submission","user":{"id":"U1"},"view":{"state":{"values":{"role":{"role_select":{"type":"static_select","selected_option":{"value":"x"}}}}}}}`,
		`payload={"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"request_approve","block_id":"decision","value":"7","type":"button"}],"state":{"values":{}}}`,
		`payload={"type":"block_suggestion","user":{"id":"U1"},"action_id":"role_select","value":"eng"}`,
		`payload={"type":"block_actions","user":{"id":"U1"},"message":{"blocks":[{"type":"section"},{"type":"nope"}]}}`,
		"payload=", "payload=%7B", "a=b&payload=null", "%zz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := DecodeInteractionForm(body)
		if err != nil {
			return
		}
		if cb == nil || cb.Type == "" || cb.User.ID == "" {
			t.Fatalf("%q: decoded %+v", body, cb)
		}
	})
}
