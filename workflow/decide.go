package workflow

import (
	"context"
	"fmt"
	"time"
)

// CanDecide says whether actor may approve or deny r now: ECONFLICT when it
// is no longer pending, EFORBIDDEN for the requester or subject themselves
// and for anyone who is neither an owner of the role nor an admin.
func (s *Service) CanDecide(ctx context.Context, r *Request, actor string) error {
	if err := s.decidable(r); err != nil {
		return err
	}
	return s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		return s.canDecideTx(ctx, tx, r, actor)
	})
}

func (s *Service) canDecideTx(ctx context.Context, tx Tx, r *Request, actor string) error {
	if actor == r.RequesterID || actor == r.SubjectID {
		return Errorf(EFORBIDDEN, "You can't decide on your own request %s; one of the role's owners has to.", r.Ref())
	}
	ok, err := s.mayManage(ctx, tx, Role{ID: r.RoleID, Name: r.RoleName}, actor)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(EFORBIDDEN, "Only the owners of %s (or an admin) can decide on %s.", r.RoleName, r.Ref())
	}
	return nil
}

// decidable refuses a decision on a request that is no longer pending or
// whose time to decide has passed, even before the scheduler marks it
// expired.
func (s *Service) decidable(r *Request) error {
	if r.State != StatePending {
		return notPending(r)
	}
	if !r.ExpiresAt.IsZero() && !s.Now().Before(r.ExpiresAt) {
		return Errorf(ECONFLICT, "%s expired at %s without a decision; it can no longer be approved or denied.",
			r.Ref(), r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return nil
}

// notPending explains why a request can no longer be decided or cancelled.
func notPending(r *Request) error {
	var msg string
	var users []string
	switch r.State {
	case StateApproved, StateExecuting, StateCompleted, StateFailed, StateRevoked:
		msg = fmt.Sprintf("%s was already approved", r.Ref())
		if r.DecidedBy != "" && r.DecidedBy != SystemActor {
			msg += fmt.Sprintf(" by %s", userRef(r.DecidedBy))
			users = append(users, r.DecidedBy)
		}
	case StateDenied:
		msg = fmt.Sprintf("%s was already denied by %s", r.Ref(), userRef(r.DecidedBy))
		users = append(users, r.DecidedBy)
	case StateCancelled:
		msg = fmt.Sprintf("%s was cancelled by the requester", r.Ref())
	case StateExpired:
		msg = fmt.Sprintf("%s expired without a decision", r.Ref())
	default:
		msg = fmt.Sprintf("%s is %s", r.Ref(), r.State)
	}
	return Errorf(ECONFLICT, "%s.", msg).mentioning(users...)
}

// Approve records actor's approval of request id. When it completes the
// approvals the role needs, the request becomes approved and its execution
// is queued in the same transaction. Two approvers at once, or one clicking
// twice, give one decision and one execution.
//
// Errors: ENOTFOUND, EFORBIDDEN, ECONFLICT (already decided, or already
// approved by actor).
func (s *Service) Approve(ctx context.Context, id int64, actor string) (*Request, error) {
	actorEmail := s.optionalEmail(ctx, actor)
	var out *Request
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		r, err := tx.Request(ctx, id)
		if err != nil {
			return requestLookup(id, err)
		}
		if err := s.decidable(r); err != nil {
			return err
		}
		if err := s.canDecideTx(ctx, tx, r, actor); err != nil {
			return err
		}
		if r.HasApproved(actor) {
			return Errorf(ECONFLICT, "You already approved %s; it needs %d more approval(s) from other owners.", r.Ref(), r.ApprovalsRequired-len(r.Approvals))
		}
		a := Approval{RequestID: r.ID, ApproverID: actor, ApproverEmail: actorEmail, At: s.Now()}
		if err := tx.InsertApproval(ctx, a); err != nil {
			return stale(fmt.Errorf("record approval: %w", err))
		}
		r.Approvals = append(r.Approvals, a)
		if len(r.Approvals) < r.ApprovalsRequired {
			r.UpdatedAt = s.Now()
			// Bumping the version makes concurrent approvals of one request
			// serialize, so the last one always sees all the others.
			if err := tx.UpdateRequest(ctx, r); err != nil {
				return stale(err)
			}
			details := map[string]any{"approvals": len(r.Approvals), "approvals_required": r.ApprovalsRequired}
			if err := s.auditRequest(ctx, tx, r, actor, actorEmail, ActionApprovalRecorded, details); err != nil {
				return err
			}
			out = r
			return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventApprovalRecorded, Actor: actor})
		}
		event, err := s.approveTx(ctx, tx, r, actor, actorEmail, nil)
		if err != nil {
			return err
		}
		out = r
		return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: event, Actor: actor})
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("request_id", id).Str("role_id", out.RoleID).Str("slack_user", actor).
		Str("state", string(out.State)).Msg("approval recorded")
	return out, nil
}

// approveTx moves a pending request to approved and queues its execution;
// an extension is carried out at once, as it needs no PostHog call. It
// returns the event to tell people.
func (s *Service) approveTx(ctx context.Context, tx Tx, r *Request, actor, actorEmail string, extra map[string]any) (EventType, error) {
	now := s.Now()
	if err := r.moveTo(StateApproved); err != nil {
		return "", err
	}
	r.DecidedBy, r.DecidedAt, r.UpdatedAt = actor, now, now
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return "", stale(err)
	}
	details := map[string]any{"approvals": len(r.Approvals), "approvals_required": r.ApprovalsRequired}
	for k, v := range extra {
		details[k] = v
	}
	if err := s.auditRequest(ctx, tx, r, actor, actorEmail, ActionRequestApproved, details); err != nil {
		return "", err
	}
	if r.Kind == KindExtend {
		return s.Grants().applyExtensionTx(ctx, tx, r, actorEmail)
	}
	return EventApproved, s.enqueue(ctx, tx, &Job{Kind: JobExecute, RequestID: r.ID})
}

// Deny ends request id with actor's reason. Errors: EINVALID (no reason),
// ENOTFOUND, EFORBIDDEN, ECONFLICT (already decided).
func (s *Service) Deny(ctx context.Context, id int64, actor, reason string) (*Request, error) {
	reason, err := checkReason(reason, "Please say why you deny the request.")
	if err != nil {
		return nil, err
	}
	actorEmail := s.optionalEmail(ctx, actor)
	return s.closePending(ctx, id, actor, func(ctx context.Context, tx Tx, r *Request) (Action, EventType, error) {
		if err := s.decidable(r); err != nil {
			return "", "", err
		}
		if err := s.canDecideTx(ctx, tx, r, actor); err != nil {
			return "", "", err
		}
		r.DecisionReason = reason
		return ActionRequestDenied, EventDenied, r.moveTo(StateDenied)
	}, actorEmail, map[string]any{"reason": reason})
}

// Cancel withdraws actor's own pending request. Errors: ENOTFOUND,
// EFORBIDDEN (not the requester), ECONFLICT (no longer pending).
func (s *Service) Cancel(ctx context.Context, id int64, actor string) (*Request, error) {
	return s.closePending(ctx, id, actor, func(ctx context.Context, tx Tx, r *Request) (Action, EventType, error) {
		if r.RequesterID != actor {
			return "", "", Errorf(EFORBIDDEN, "Only the person who asked can cancel %s.", r.Ref())
		}
		r.DecisionReason = "cancelled by the requester"
		return ActionRequestCancelled, EventCancelled, r.moveTo(StateCancelled)
	}, "", nil)
}

// closePending moves a pending request to a final state chosen by decide.
func (s *Service) closePending(ctx context.Context, id int64, actor string,
	decide func(ctx context.Context, tx Tx, r *Request) (Action, EventType, error), actorEmail string, details map[string]any) (*Request, error) {
	var out *Request
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		r, err := tx.Request(ctx, id)
		if err != nil {
			return requestLookup(id, err)
		}
		if r.State != StatePending {
			return notPending(r)
		}
		action, event, err := decide(ctx, tx, r)
		if err != nil {
			return err
		}
		now := s.Now()
		r.DecidedBy, r.DecidedAt, r.UpdatedAt = actor, now, now
		if err := tx.UpdateRequest(ctx, r); err != nil {
			return stale(err)
		}
		if actorEmail == "" && actor == r.RequesterID {
			actorEmail = r.RequesterEmail
		}
		if err := s.auditRequest(ctx, tx, r, actor, actorEmail, action, details); err != nil {
			return err
		}
		out = r
		return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: event, Actor: actor})
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("request_id", id).Str("role_id", out.RoleID).Str("slack_user", actor).
		Str("state", string(out.State)).Msg("request closed")
	return out, nil
}

// queueRevocation marks a grant as being revoked and writes the removal
// job; action is what the audit log records (an owner's revocation, the
// holder's done, the end of its time).
func (s *Service) queueRevocation(ctx context.Context, tx Tx, r *Request, actor, actorEmail, reason string, action Action) error {
	if err := s.markRevocationTx(ctx, tx, r, actor, actorEmail, reason, action, nil); err != nil {
		return err
	}
	return s.enqueueRevocation(ctx, tx, r)
}

// markRevocationTx marks grant r as to be revoked for reason and audits it
// as action, with details besides the reason. The removal job is written
// by enqueueRevocation: at once for a grant in force, when the addition
// completes for one still being added (grant rule 8).
func (s *Service) markRevocationTx(ctx context.Context, tx Tx, r *Request, actor, actorEmail, reason string, action Action, details map[string]any) error {
	r.RevokeQueued, r.DecisionReason, r.UpdatedAt, r.NextWarningAt = true, reason, s.Now(), time.Time{}
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	d := map[string]any{"reason": reason}
	for k, v := range details {
		d[k] = v
	}
	return s.auditRequest(ctx, tx, r, actor, actorEmail, action, d)
}

// enqueueRevocation writes the job that removes grant r's membership.
func (s *Service) enqueueRevocation(ctx context.Context, tx Tx, r *Request) error {
	return s.enqueue(ctx, tx, &Job{Kind: JobRevoke, RequestID: r.ID})
}

// emailBudget bounds the actor-email lookup of a decision: the decision is
// committed before Slack's click is acknowledged, so a slow or rate-limited
// users.info must not hold it up (Users answers from its cache at once).
const emailBudget = 400 * time.Millisecond

// optionalEmail is the actor's email for the audit log when Slack has one
// within emailBudget.
func (s *Service) optionalEmail(ctx context.Context, slackID string) string {
	ctx, cancel := context.WithTimeout(ctx, emailBudget)
	defer cancel()
	email, err := s.users.Email(ctx, slackID)
	if err != nil {
		s.log.Debug().Err(err).Str("slack_user", slackID).Msg("no email for audit entry")
		return ""
	}
	return email
}

// withdrawTx cancels the pending request r for reason on actor's behalf
// (SystemActor when no person did it): audited as a cancellation, and the
// people concerned told.
func (s *Service) withdrawTx(ctx context.Context, tx Tx, r *Request, actor, actorEmail, reason string) error {
	if err := r.moveTo(StateCancelled); err != nil {
		return err
	}
	now := s.Now()
	r.DecidedBy, r.DecidedAt, r.UpdatedAt, r.DecisionReason = actor, now, now, reason
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	if err := s.auditRequest(ctx, tx, r, actor, actorEmail, ActionRequestCancelled, map[string]any{"reason": reason}); err != nil {
		return err
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventCancelled, Actor: actor})
}

func requestLookup(id int64, err error) error {
	if ErrorCode(err) == ENOTFOUND {
		return Errorf(ENOTFOUND, "There is no request #%d.", id)
	}
	return fmt.Errorf("load request %d: %w", id, err)
}
