package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// NewRequest is what a person asks for.
type NewRequest struct {
	Kind        Kind
	RequesterID string // Slack user id of who asks
	SubjectID   string // Slack user id of whose access changes; "" = the requester
	Role        string // PostHog role name or id
	Reason      string
	Duration    time.Duration // 0 = permanent; must be 0 for removals
	// ViewID is the Slack view (modal) submitted, when there is one: a view
	// creates at most one request, so a re-submitted or replayed
	// submission returns the request the first one created.
	ViewID string
}

// CreateRequest validates and stores a request, tells the owners, and — for
// auto-approve roles — queues its execution at once.
//
// Errors: EINVALID (with Field "role", "reason" or "duration"), EFORBIDDEN,
// ECONFLICT (an open request for the same thing exists), EUNAVAILABLE
// (PostHog or Slack did not answer).
func (s *Service) CreateRequest(ctx context.Context, in NewRequest) (*Request, error) {
	ctx = WithPriority(ctx, PriorityInteractive)
	if r, done, err := s.submittedView(ctx, in.ViewID); done || err != nil {
		return r, err
	}
	if !in.Kind.Valid() || in.Kind == KindExtend {
		return nil, Errorf(EINVALID, "Unknown request kind %q.", in.Kind)
	}
	if in.RequesterID == "" {
		return nil, Errorf(EINVALID, "A request needs a requester.")
	}
	subjectID := in.SubjectID
	if subjectID == "" {
		subjectID = in.RequesterID
	}
	reason, err := checkReason(in.Reason, "Please give a reason.")
	if err != nil {
		return nil, err
	}
	role, err := s.ResolveRole(ctx, in.Role)
	if err != nil {
		return nil, err
	}
	rules := s.policy.RulesFor(role)
	if err := checkDuration(in.Kind, in.Duration, rules, role); err != nil {
		return nil, err
	}
	if subjectID != in.RequesterID {
		if in.Kind == KindAdd {
			return nil, Errorf(EINVALID, "You can only ask for access for yourself.")
		}
		var ok bool
		err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			ok, err = s.mayManage(ctx, tx, role, in.RequesterID)
			return err
		})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, Errorf(EFORBIDDEN, "Only the owners of %s or an admin can ask to remove someone else from it.", role.Name)
		}
	}

	requesterEmail, err := s.email(ctx, in.RequesterID, "your")
	if err != nil {
		return nil, err
	}
	subjectEmail := requesterEmail
	if subjectID != in.RequesterID {
		if subjectEmail, err = s.email(ctx, subjectID, "@"+subjectID+"'s"); err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.mentioning(subjectID)
			}
			return nil, err
		}
	}
	member, err := s.dir.FindMember(ctx, subjectEmail)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			who := "You don't"
			if subjectID != in.RequesterID {
				who = fmt.Sprintf("%s doesn't", userRef(subjectID))
			}
			return nil, FieldErrorf("role", "%s have a PostHog account in this organization (no member with the email %s). Ask a PostHog admin for an invitation first.", who, subjectEmail).mentioning(subjectID)
		}
		return nil, directoryError("look up the PostHog account", err)
	}
	isMember, known, err := s.isRoleMember(ctx, role.ID, member.UUID)
	if err != nil {
		return nil, err
	}
	switch {
	case !known:
	case in.Kind == KindAdd && isMember:
		return nil, FieldErrorf("role", "%s already a member of %s.", youAre(subjectID, in.RequesterID), role.Name).mentioning(subjectID)
	case in.Kind == KindRemove && !isMember:
		return nil, FieldErrorf("role", "%s not a member of %s.", youAre(subjectID, in.RequesterID), role.Name).mentioning(subjectID)
	}

	now := s.Now()
	r := &Request{
		Kind:              in.Kind,
		State:             StatePending,
		RequesterID:       in.RequesterID,
		RequesterEmail:    requesterEmail,
		SubjectID:         subjectID,
		SubjectEmail:      subjectEmail,
		SubjectUUID:       member.UUID,
		RoleID:            role.ID,
		RoleName:          role.Name,
		Reason:            reason,
		Duration:          in.Duration,
		ApprovalsRequired: rules.ApprovalsRequired,
		AutoApproved:      rules.AutoApprove,
		CreatedAt:         now,
		UpdatedAt:         now,
		ExpiresAt:         now.Add(rules.PendingExpiry),
		viewID:            in.ViewID,
	}
	if rules.ReminderAfter > 0 && rules.ReminderAfter < rules.PendingExpiry {
		r.RemindAt = now.Add(rules.ReminderAfter)
	}
	return s.submit(ctx, r, rules)
}

// submit stores a new request r (an addition, removal or extension): it
// checks that no other request for the person and role is open and that
// someone besides the requester can decide it, audits it, tells the
// deciders, and — on auto-approve roles — approves it at once.
func (s *Service) submit(ctx context.Context, r *Request, rules Rules) (*Request, error) {
	role := Role{ID: r.RoleID, Name: r.RoleName}
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		req := *r
		if err := noOpenRequestTx(ctx, tx, req.SubjectID, req.RoleID, req.RequesterID); err != nil {
			return err
		}
		if !rules.AutoApprove {
			deciders, err := s.decidersTx(ctx, tx, &req)
			if err != nil {
				return err
			}
			if len(deciders) < req.ApprovalsRequired {
				return noDecidersError(role, req.ApprovalsRequired, len(deciders))
			}
		}
		if err := tx.InsertRequest(ctx, &req); err != nil {
			if ErrorCode(err) == ECONFLICT {
				// Another submission won the race for the one open request.
				return errRetry{err}
			}
			return fmt.Errorf("insert request: %w", err)
		}
		if req.viewID != "" {
			if err := tx.PutViewSubmission(ctx, req.viewID, req.ID); err != nil {
				if ErrorCode(err) == ECONFLICT {
					return errRetry{err} // the same view, submitted twice at once
				}
				return fmt.Errorf("record view submission: %w", err)
			}
		}
		details := map[string]any{"kind": string(req.Kind), "reason": req.Reason, "duration": DurationText(req.Duration),
			"approvals_required": req.ApprovalsRequired, "requester": req.RequesterID, "requester_email": req.RequesterEmail}
		if req.GrantID != 0 {
			details["grant"] = req.GrantID
		}
		if err := s.auditRequest(ctx, tx, &req, req.RequesterID, req.RequesterEmail, ActionRequestCreated, details); err != nil {
			return err
		}
		event := EventCreated
		if rules.AutoApprove {
			var err error
			if event, err = s.approveTx(ctx, tx, &req, SystemActor, "", map[string]any{"auto_approve": true}); err != nil {
				return err
			}
		}
		if err := s.enqueueNotify(ctx, tx, req.ID, notifyPayload{Type: event, Actor: req.RequesterID}); err != nil {
			return err
		}
		*r = req
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("request_id", r.ID).Str("role_id", r.RoleID).Str("slack_user", r.RequesterID).
		Str("kind", string(r.Kind)).Str("state", string(r.State)).Msg("request created")
	return r, nil
}

// openStates are the states of a request that is still open (State.Open):
// one per person and role at a time.
var openStates = []State{StatePending, StateApproved, StateExecuting}

// noOpenRequestTx refuses (openRequestError) when subjectID has an open
// request for roleID.
func noOpenRequestTx(ctx context.Context, tx Tx, subjectID, roleID, requesterID string) error {
	open, err := tx.FindRequests(ctx, RequestFilter{SubjectID: subjectID, RoleID: roleID, States: openStates, Limit: 1})
	if err != nil {
		return err
	}
	if len(open) > 0 {
		return openRequestError(open[0], requesterID)
	}
	return nil
}

// openRequestError names the open request that blocks a new one.
func openRequestError(o *Request, requesterID string) error {
	status := "is still waiting for a decision"
	if o.State != StatePending {
		status = "is still running"
	}
	var what string
	who := subjectName(o.SubjectID, requesterID)
	switch o.Kind {
	case KindRemove:
		what = fmt.Sprintf("to remove %s from %s", who, o.RoleName)
	case KindExtend:
		what = fmt.Sprintf("to extend %s access to %s", possessive(o.SubjectID, requesterID), o.RoleName)
	default:
		what = fmt.Sprintf("to add %s to %s", who, o.RoleName)
	}
	return FieldErrorf("role", "%s %s %s; only one request per person and role can be open at a time. /access list shows it.", o.Ref(), what, status).mentioning(o.SubjectID)
}

func possessive(subjectID, requesterID string) string {
	if subjectID == requesterID {
		return "your"
	}
	return userRef(subjectID).String() + "'s"
}

// noDecidersError refuses a request nobody but its requester could decide.
func noDecidersError(role Role, need, have int) error {
	if have == 0 {
		return &Error{Code: EFORBIDDEN, Field: "role", Message: fmt.Sprintf(
			"Nobody but you can approve a request for %s, so it could never be decided. Ask a bot admin to add another owner of %s.", role.Name, role.Name)}
	}
	return &Error{Code: EFORBIDDEN, Field: "role", Message: fmt.Sprintf(
		"%s needs %d approvals, but only %d person(s) other than you can approve it, so it could never be decided. Ask a bot admin to add owners of %s.",
		role.Name, need, have, role.Name)}
}

// checkReason trims a reason people typed and bounds it; ifEmpty is the
// error message for a missing one ("" when a reason is optional).
func checkReason(reason, ifEmpty string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "" && ifEmpty != "":
		return "", FieldErrorf("reason", "%s", ifEmpty)
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		return "", FieldErrorf("reason", "Please keep the reason under %d characters.", MaxReasonLength)
	}
	return reason, nil
}

// submittedView returns the request view viewID already created (done
// true), so a repeated submission of one modal changes nothing.
func (s *Service) submittedView(ctx context.Context, viewID string) (r *Request, done bool, err error) {
	if viewID == "" {
		return nil, false, nil
	}
	err = s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		id, ok, err := tx.ViewSubmission(ctx, viewID)
		if err != nil || !ok {
			return err
		}
		done = true
		r, err = tx.Request(ctx, id)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("look up view %s: %w", viewID, err)
	}
	if done {
		s.log.Info().Str("view_id", viewID).Int64("request_id", r.ID).Msg("view already submitted; nothing created")
	}
	return r, done, nil
}

func checkDuration(kind Kind, d time.Duration, rules Rules, role Role) error {
	switch {
	case d < 0:
		return FieldErrorf("duration", "A duration cannot be negative.")
	case kind == KindRemove && d != 0:
		return FieldErrorf("duration", "A removal has no duration.")
	case kind == KindAdd && rules.MaxDuration > 0 && (d == 0 || d > rules.MaxDuration):
		return FieldErrorf("duration", "Access to %s can last at most %s.", role.Name, DurationText(rules.MaxDuration))
	}
	return nil
}

func (s *Service) email(ctx context.Context, slackID, whose string) (string, error) {
	email, err := s.users.Email(ctx, slackID)
	switch {
	case err == nil && email != "":
		return email, nil
	case err == nil || ErrorCode(err) == ENOTFOUND:
		return "", Errorf(EINVALID, "I can't see %s email address in Slack, so I can't match it to a PostHog account.", whose)
	case IsTemporary(err):
		return "", &Error{Code: EUNAVAILABLE, Message: "Slack is not answering right now. Please try again in a minute.", Err: err}
	default:
		return "", fmt.Errorf("read email of %s: %w", slackID, err)
	}
}

// isRoleMember answers from the local mirror of the role's memberships, so
// a submission costs no PostHog call for it whatever the role's size. known
// is false when the role has no mirror yet: then PostHog has the final word
// when the request is carried out (an addition finding the person already
// there completes as already a member; a removal finding them gone, as
// already removed).
func (s *Service) isRoleMember(ctx context.Context, roleID, userUUID string) (member, known bool, err error) {
	_, member, known, err = s.mirrorMember(ctx, roleID, userUUID)
	if err != nil {
		return false, false, fmt.Errorf("read the membership mirror of role %s: %w", roleID, err)
	}
	return member, known, nil
}

func subjectName(subjectID, requesterID string) string {
	if subjectID == requesterID {
		return "you"
	}
	return userRef(subjectID).String()
}

func youAre(subjectID, requesterID string) string {
	if subjectID == requesterID {
		return "You are"
	}
	return subjectName(subjectID, requesterID) + " is"
}

func kindVerb(k Kind) string {
	switch k {
	case KindRemove:
		return "to leave"
	case KindExtend:
		return "to extend a grant"
	}
	return "to join"
}
