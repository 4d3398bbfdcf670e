package sandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
)

// Block Kit as the app sent it, read loosely: unknown fields are ignored
// and unknown block or element types are shown as such, never dropped
// silently.

type textObject struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"`
}

type option struct {
	Text        textObject  `json:"text"`
	Value       string      `json:"value"`
	Description *textObject `json:"description"`
}

type optionGroup struct {
	Label   textObject `json:"label"`
	Options []option   `json:"options"`
}

type confirmObject struct {
	Title   *textObject `json:"title"`
	Text    *textObject `json:"text"`
	Confirm *textObject `json:"confirm"`
	Deny    *textObject `json:"deny"`
}

type element struct {
	Type          string         `json:"type"`
	ActionID      string         `json:"action_id"`
	Text          *textObject    `json:"text"` // button label, or a context text
	Value         string         `json:"value"`
	URL           string         `json:"url"`
	Style         string         `json:"style"`
	Placeholder   *textObject    `json:"placeholder"`
	Options       []option       `json:"options"`
	OptionGroups  []optionGroup  `json:"option_groups"`
	InitialOption *option        `json:"initial_option"`
	InitialValue  string         `json:"initial_value"`
	Multiline     bool           `json:"multiline"`
	MaxLength     int            `json:"max_length"`
	Confirm       *confirmObject `json:"confirm"`
	ImageURL      string         `json:"image_url"`
	AltText       string         `json:"alt_text"`
}

// context elements are text objects or images; both decode as element.
func (e *element) isText() bool { return e.Type == "mrkdwn" || e.Type == "plain_text" }

type block struct {
	Type           string       `json:"type"`
	BlockID        string       `json:"block_id"`
	Text           *textObject  `json:"text"`
	Fields         []textObject `json:"fields"`
	Accessory      *element     `json:"accessory"`
	Elements       []element    `json:"elements"`
	Element        *element     `json:"element"`
	Label          *textObject  `json:"label"`
	Hint           *textObject  `json:"hint"`
	Optional       bool         `json:"optional"`
	DispatchAction bool         `json:"dispatch_action"`
	ImageURL       string       `json:"image_url"`
	AltText        string       `json:"alt_text"`
	Title          *textObject  `json:"title"`
}

type viewObject struct {
	Type       string      `json:"type"`
	Title      *textObject `json:"title"`
	Submit     *textObject `json:"submit"`
	Close      *textObject `json:"close"`
	CallbackID string      `json:"callback_id"`
	Blocks     []block     `json:"blocks"`
}

// surface is where an element lives, so a click finds its way back: a
// message (channel and ts), an ephemeral message (ts) or a view (id).
type surface struct {
	Kind    string // "message", "ephemeral" or "view"
	Channel string
	TS      string
	ViewID  string
	InForm  bool // inside a modal's form: inputs are form fields
}

// Render model: what the templates show, every text already HTML.

type rOption struct {
	Label       template.HTML
	Value       string
	Selected    bool
	Description template.HTML // checkboxes: the line under the option
}

type rConfirm struct {
	Title, Text, Confirm, Deny string
}

type rElement struct {
	Type        string
	ActionID    string
	Value       string
	Style       string
	URL         string
	Label       template.HTML // button text
	Placeholder string
	Options     []rOption
	Selected    bool // some option is selected
	Multiline   bool
	MaxLength   int
	Initial     string
	Name        string // form field name in a modal ("" outside forms)
	ID          string // the element id its <label> points at
	Dispatch    bool   // a change is sent to the app at once
	External    bool   // options come from the app's options endpoint
	Confirm     *rConfirm
	Surface     surface
	Unsupported string
}

type rBlock struct {
	Type        string
	BlockID     string
	Text        template.HTML
	Fields      []template.HTML
	Accessory   *rElement
	Elements    []rElement
	Context     []template.HTML
	Label       template.HTML
	Hint        template.HTML
	Optional    bool
	Input       *rElement
	Error       string
	ImageAlt    string
	Unsupported string
}

type rModal struct {
	ViewID string
	Title  template.HTML
	Submit template.HTML
	Close  template.HTML
	Blocks []rBlock
}

// blocks renders a blocks array as sent in a message or view.
func (x text) blocks(raw json.RawMessage, s surface, errs map[string]string) ([]rBlock, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var bs []block
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, fmt.Errorf("blocks: %w", err)
	}
	return x.renderBlocks(bs, s, errs), nil
}

func (x text) renderBlocks(bs []block, s surface, errs map[string]string) []rBlock {
	out := make([]rBlock, 0, len(bs))
	for i, b := range bs {
		r := rBlock{Type: b.Type, BlockID: b.BlockID}
		switch b.Type {
		case "section":
			if b.Text != nil {
				r.Text = x.textObj(*b.Text)
			}
			for _, f := range b.Fields {
				r.Fields = append(r.Fields, x.textObj(f))
			}
			if b.Accessory != nil {
				el := x.element(*b.Accessory, s, b.BlockID, i)
				r.Accessory = &el
			}
		case "header":
			if b.Text != nil {
				r.Text = x.textObj(*b.Text)
			}
		case "divider":
		case "context":
			for _, e := range b.Elements {
				if e.isText() && e.Text != nil {
					r.Context = append(r.Context, x.textObj(*e.Text))
				} else if e.AltText != "" {
					r.Context = append(r.Context, template.HTML(`<span class="img-alt">[`+template.HTMLEscapeString(e.AltText)+`]</span>`))
				}
			}
		case "actions":
			for _, e := range b.Elements {
				r.Elements = append(r.Elements, x.element(e, s, b.BlockID, i))
			}
		case "input":
			if b.Label != nil {
				r.Label = x.textObj(*b.Label)
			}
			if b.Hint != nil {
				r.Hint = x.textObj(*b.Hint)
			}
			r.Optional = b.Optional
			if b.Element != nil {
				el := x.element(*b.Element, s, b.BlockID, i)
				el.Name = b.BlockID
				el.Dispatch = b.DispatchAction
				r.Input = &el
			}
			r.Error = errs[b.BlockID]
		case "image":
			r.ImageAlt = b.AltText
			if b.Title != nil {
				r.Text = x.textObj(*b.Title)
			}
		default:
			r.Unsupported = b.Type
		}
		out = append(out, r)
	}
	return out
}

// UnmarshalJSON reads an element, and a context text element whose text
// is a plain string.
func (e *element) UnmarshalJSON(b []byte) error {
	type plainElement element
	var head struct {
		Type  string          `json:"type"`
		Text  json.RawMessage `json:"text"`
		Emoji bool            `json:"emoji"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if (head.Type == "mrkdwn" || head.Type == "plain_text") && len(head.Text) > 0 && head.Text[0] == '"' {
		var s string
		if err := json.Unmarshal(head.Text, &s); err != nil {
			return err
		}
		*e = element{Type: head.Type, Text: &textObject{Type: head.Type, Text: s, Emoji: head.Emoji}}
		return nil
	}
	var pe plainElement
	if err := json.Unmarshal(b, &pe); err != nil {
		return err
	}
	*e = element(pe)
	return nil
}

func (x text) textObj(t textObject) template.HTML {
	if t.Type == "mrkdwn" {
		return x.mrkdwn(t.Text)
	}
	return x.plain(t.Text, t.Emoji)
}

func (x text) element(e element, s surface, blockID string, index int) rElement {
	r := rElement{Type: e.Type, ActionID: e.ActionID, Value: e.Value, Style: e.Style, URL: e.URL, Surface: s,
		Multiline: e.Multiline, MaxLength: e.MaxLength, Initial: e.InitialValue}
	r.ID = fmt.Sprintf("el-%s-%d-%s", blockID, index, e.ActionID)
	if e.Placeholder != nil {
		r.Placeholder = e.Placeholder.Text
	}
	if e.Confirm != nil {
		c := &rConfirm{Title: "Are you sure?", Confirm: "Yes", Deny: "Cancel"}
		if e.Confirm.Title != nil {
			c.Title = e.Confirm.Title.Text
		}
		if e.Confirm.Text != nil {
			c.Text = e.Confirm.Text.Text
		}
		if e.Confirm.Confirm != nil {
			c.Confirm = e.Confirm.Confirm.Text
		}
		if e.Confirm.Deny != nil {
			c.Deny = e.Confirm.Deny.Text
		}
		r.Confirm = c
	}
	switch e.Type {
	case "button":
		if e.Text != nil {
			r.Label = x.textObj(*e.Text)
		}
	case "static_select", "external_select":
		r.External = e.Type == "external_select"
		selected := ""
		if e.InitialOption != nil {
			selected = e.InitialOption.Value
		}
		add := func(o option) {
			r.Options = append(r.Options, rOption{Label: x.textObj(o.Text), Value: o.Value, Selected: o.Value == selected})
			r.Selected = r.Selected || o.Value == selected
		}
		for _, o := range e.Options {
			add(o)
		}
		for _, g := range e.OptionGroups {
			for _, o := range g.Options {
				add(o)
			}
		}
		if e.InitialOption != nil && !r.Selected {
			add(*e.InitialOption) // an external select's prefilled choice
		}
	case "checkboxes":
		for _, o := range e.Options {
			ro := rOption{Label: x.textObj(o.Text), Value: o.Value}
			if o.Description != nil {
				ro.Description = x.textObj(*o.Description)
			}
			r.Options = append(r.Options, ro)
		}
	case "plain_text_input":
	default:
		r.Unsupported = e.Type
	}
	return r
}

// modal renders a modal view with the errors its last submission got.
func (x text) modal(id string, raw json.RawMessage, errs map[string]string) (*rModal, error) {
	var v viewObject
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("view %s: %w", id, err)
	}
	m := &rModal{ViewID: id, Submit: "Submit", Close: "Cancel"}
	if v.Title != nil {
		m.Title = x.textObj(*v.Title)
	}
	if v.Submit != nil {
		m.Submit = x.textObj(*v.Submit)
	}
	if v.Close != nil {
		m.Close = x.textObj(*v.Close)
	}
	m.Blocks = x.renderBlocks(v.Blocks, surface{Kind: "view", ViewID: id, InForm: true}, errs)
	return m, nil
}

// viewBlocks renders a home tab's blocks.
func (x text) viewBlocks(id string, raw json.RawMessage) ([]rBlock, error) {
	var v viewObject
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("view %s: %w", id, err)
	}
	return x.renderBlocks(v.Blocks, surface{Kind: "view", ViewID: id}, nil), nil
}
