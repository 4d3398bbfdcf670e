// Package views renders what accessbot shows in Slack — modals, approver
// messages, replies and the App Home tab — as Block Kit built from
// slack-go's types. Every function here is pure: the same input gives the
// same blocks, so each is golden-tested as JSON under testdata/ and a change
// to what people see shows up in review.
//
// Views know nothing about HTTP, Slack's Web API or the workflow's rules;
// they turn workflow values into blocks, and the ids below are how the bot
// finds its way back from a click or a submission.
package views

import "strconv"

// Callback ids of the modals the bot opens.
const (
	CallbackRequest = "accessbot_request" // the request (or removal) modal
	CallbackDeny    = "accessbot_deny"    // asks a denier for a reason
)

// Block ids. The input blocks of the request modal are named after the
// workflow.Error fields ("role", "reason", "duration") so a field error lands
// on the right block with no mapping table.
const (
	BlockRole       = "role"
	BlockReason     = "reason"
	BlockDuration   = "duration"
	BlockDenyReason = "reason" // the deny modal's only input, also "reason"
	BlockDecision   = "decision"
)

// Action ids.
const (
	ActionRoleSelect     = "role_select"     // role picker in the request modal (static or external)
	ActionReasonInput    = "reason_input"    // reason text in the request and deny modals
	ActionDurationSelect = "duration_select" // duration picker in the request modal
	ActionApprove        = "request_approve" // Approve button; value is the request id
	ActionDeny           = "request_deny"    // Deny button; value is the request id
	ActionCancel         = "request_cancel"  // Cancel button on the requester's own pending request
	ActionNewRequest     = "request_new"     // "Request access" button on the App Home tab
	ActionExtend         = "grant_extend"    // Extend button on a grant; value is the grant's request id
	ActionDone           = "grant_done"      // I'm done button on a grant; value is the grant's request id
	ActionRetryRevoke    = "grant_revoke"    // Retry button on an overdue revocation; value is the grant's request id
)

// DecisionBlockID is the id of the Approve/Deny actions block of request id
// in a list, where block ids must be unique within one message or view.
func DecisionBlockID(id int64) string { return BlockDecision + "_" + strconv.FormatInt(id, 10) }

// Slack's limits that shape the views.
const (
	MaxStaticOptions = 100 // options in a static_select, and per block_suggestion answer
	maxOptionText    = 75  // characters of an option's text, and of its description
	maxOptionValue   = 150 // characters of an option's value
	maxHeaderText    = 150
	maxSectionText   = 3000
	maxMessageBlocks = 50
	maxViewBlocks    = 100
)
