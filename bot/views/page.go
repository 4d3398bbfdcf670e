package views

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// MaxMessageChars is how much text (every text field of the blocks
// together) Slack accepts in one message; beyond it chat.postMessage
// answers msg_blocks_too_long. Lists stay within it and within 50 blocks.
const MaxMessageChars = 12000

// noteReserve is what a budget keeps back for the blocks that close a
// list: a "showing N of M" note and the headers after it.
const (
	noteReserveBlocks = 4
	noteReserveChars  = 600
)

// budget is what is left of one message's blocks and text.
type budget struct {
	blocks, chars int
}

func newBudget() *budget { return &budget{blocks: maxMessageBlocks, chars: MaxMessageChars} }

// add spends bs unconditionally (headers, notes) and returns them.
func (b *budget) add(bs ...slack.Block) []slack.Block {
	b.blocks -= len(bs)
	b.chars -= TextChars(bs...)
	return bs
}

// fits spends bs and reports true when they fit with the reserve for
// closing notes left over; otherwise it spends nothing.
func (b *budget) fits(bs ...slack.Block) bool {
	n := TextChars(bs...)
	if b.blocks-len(bs) < noteReserveBlocks || b.chars-n < noteReserveChars {
		return false
	}
	b.blocks -= len(bs)
	b.chars -= n
	return true
}

// TextChars counts the characters of every text field in blocks, as Slack
// measures a message against MaxMessageChars.
func TextChars(blocks ...slack.Block) int {
	js, err := json.Marshal(blocks)
	if err != nil {
		return 0
	}
	var v any
	if json.Unmarshal(js, &v) != nil {
		return 0
	}
	n := 0
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "text" {
				n += utf8.RuneCountInString(x)
			}
		}
	}
	walk(v, "")
	return n
}
