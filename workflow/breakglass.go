package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Break-glass: taking a role at once, without approval, in an emergency,
// and answering for it afterwards. Its rules:
//
//  1. Only roles with break_glass: true in the policy allow it, and only
//     for oneself, with a reason.
//  2. The grant is an ordinary grant (grant.go), approved by its own
//     requester — self-approval is the point — and executed at once. It
//     lasts the duration asked for, at most break_glass_max_duration (the
//     whole of it when none is asked for), and ends by the grant rules.
//  3. One person may break glass at most break_glass_per_day times in any
//     24 hours, over every role, so it never becomes the normal path.
//     Concurrent uses by one person are serialized on a setting row, so
//     replicas cannot both let the last one through.
//  4. In the same transaction a post-hoc review (a Review of kind
//     break_glass) opens, and every owner of the role, the admins and the
//     approvals channel are alerted, with Acknowledge and Revoke now. The
//     person who broke the glass cannot acknowledge it; Revoke now they may
//     (as an owner or admin), as it ends their own access.
//  5. The review stays open until an owner or admin answers; they are
//     reminded daily. The first answer counts and every copy shows it.
//  6. Revoke now ends the grant through Grants.Revoke (the revocation
//     rules apply: retried until PostHog agrees), and only then records the
//     answer, so a crash in between leaves the review open to answer again.
//     A grant still being added in PostHog is revoked as soon as the
//     addition lands (grant rule 8): nobody has to click again.

// Outcomes of a break-glass review.
const (
	BreakGlassAcknowledged = "acknowledged"
	BreakGlassRevoked      = "revoked"
)

// BreakGlass grants break-glass access and runs its post-hoc review.
type BreakGlass struct{ s *Service }

// BreakGlass returns the break-glass capability of s.
func (s *Service) BreakGlass() *BreakGlass { return &BreakGlass{s: s} }

// Allowed reports whether role allows break-glass, and for how long.
func (g *BreakGlass) Allowed(role Role) (bool, time.Duration) {
	rules := g.s.policy.RulesFor(role)
	return rules.BreakGlass, rules.BreakGlassMaxDuration
}

func breakGlassKey(slackID string) string { return "break_glass_uses:" + slackID }

// Use grants in.Role to in.RequesterID at once (rules 1–4); in.Kind and
// in.SubjectID are ignored. Errors: EINVALID (Field "role" or "reason"),
// EFORBIDDEN (the role does not allow it, or the daily limit is reached),
// ECONFLICT (an open request for the role exists), EUNAVAILABLE.
func (g *BreakGlass) Use(ctx context.Context, in NewRequest) (*Request, error) {
	s := g.s
	ctx = WithPriority(ctx, PriorityInteractive)
	actor := in.RequesterID
	reason, err := checkReason(in.Reason, "Break-glass needs a reason: say what is on fire.")
	if err != nil {
		return nil, err
	}
	role, err := s.ResolveRole(ctx, in.Role)
	if err != nil {
		return nil, err
	}
	rules := s.policy.RulesFor(role)
	if !rules.BreakGlass {
		return nil, &Error{Code: EFORBIDDEN, Field: "role", Message: fmt.Sprintf(
			"%s does not allow break-glass access. Ask for it with /access request %s; its owners decide.", role.Name, role.Name)}
	}
	d := rules.BreakGlassMaxDuration
	if in.Duration > 0 && in.Duration < d {
		d = in.Duration
	}
	email, err := s.email(ctx, actor, "your")
	if err != nil {
		return nil, err
	}
	member, err := s.dir.FindMember(ctx, email)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, FieldErrorf("role", "You don't have a PostHog account in this organization (no member with the email %s).", email)
		}
		return nil, directoryError("look up the PostHog account", err)
	}
	// Without a mirror of the role yet, PostHog has the final word when the
	// grant is carried out, as for any request.
	isMember, known, err := s.isRoleMember(ctx, role.ID, member.UUID)
	if err != nil {
		return nil, err
	}
	if known && isMember {
		return nil, FieldErrorf("role", "You are already a member of %s.", role.Name)
	}
	now := s.Now()
	r := &Request{
		Kind: KindAdd, State: StatePending, RequesterID: actor, RequesterEmail: email, SubjectID: actor, SubjectEmail: email,
		SubjectUUID: member.UUID, RoleID: role.ID, RoleName: role.Name, Reason: reason, Duration: d,
		ApprovalsRequired: 1, AutoApproved: true, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(rules.PendingExpiry),
	}
	var rev *Review
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		req := *r
		// Rule 3: this row lock serializes one person's uses, so the count
		// below sees every committed one.
		if err := tx.PutSetting(ctx, breakGlassKey(actor), now.Format(time.RFC3339Nano)); err != nil {
			return err
		}
		used, err := tx.FindReviews(ctx, ReviewFilter{Kind: ReviewBreakGlass, StartedBy: actor, StartedAfter: now.Add(-24 * time.Hour)})
		if err != nil {
			return err
		}
		if len(used) >= rules.BreakGlassPerDay {
			return &Error{Code: EFORBIDDEN, Field: "role", Message: fmt.Sprintf(
				"You have used break-glass %d time(s) in the last 24 hours, the most the policy allows. Ask for access with /access request %s instead.",
				len(used), role.Name)}
		}
		if err := noOpenRequestTx(ctx, tx, actor, role.ID, actor); err != nil {
			return err
		}
		if err := tx.InsertRequest(ctx, &req); err != nil {
			return stale(fmt.Errorf("insert break-glass request: %w", err))
		}
		if err := s.auditRequest(ctx, tx, &req, actor, email, ActionRequestCreated, map[string]any{"kind": string(req.Kind),
			"reason": reason, "duration": DurationText(d), "break_glass": true, "requester": actor, "requester_email": email}); err != nil {
			return err
		}
		if _, err := s.approveTx(ctx, tx, &req, actor, email, map[string]any{"break_glass": true}); err != nil {
			return err
		}
		rv := &Review{Kind: ReviewBreakGlass, State: ReviewOpen, RoleID: role.ID, RoleName: role.Name, RequestID: req.ID,
			StartedBy: actor, StartedAt: now, RemindAt: now.Add(breakGlassReminderEvery), Unanswered: DecisionKeep}
		if err := tx.InsertReview(ctx, rv); err != nil {
			return err
		}
		if err := s.auditRequest(ctx, tx, &req, actor, email, ActionBreakGlassUsed, map[string]any{
			reviewAuditReviewKey: rv.ID, "reason": reason, "duration": DurationText(d),
			"uses_in_24h": len(used) + 1, "per_day": rules.BreakGlassPerDay}); err != nil {
			return err
		}
		if err := s.enqueueNotify(ctx, tx, req.ID, notifyPayload{Type: EventBreakGlassUsed, Actor: actor, Review: rv.ID}); err != nil {
			return err
		}
		*r, rev = req, rv
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Warn().Int64("request_id", r.ID).Int64("review_id", rev.ID).Str("role_id", role.ID).Str("slack_user", actor).
		Dur("duration", d).Msg("break-glass access granted without approval")
	return r, nil
}

// Acknowledge records that an owner or admin accepts break-glass review
// id. Errors: ENOTFOUND, EFORBIDDEN, ECONFLICT (already answered).
func (g *BreakGlass) Acknowledge(ctx context.Context, id int64, actor string) (*Review, error) {
	return g.answer(ctx, id, actor, BreakGlassAcknowledged)
}

// RevokeNow ends the grant of break-glass review id now and records the
// answer (rule 6). Errors: ENOTFOUND, EFORBIDDEN, ECONFLICT (already
// answered).
func (g *BreakGlass) RevokeNow(ctx context.Context, id int64, actor string) (*Review, error) {
	return g.answer(ctx, id, actor, BreakGlassRevoked)
}

// Review returns break-glass review id and its grant. Errors: ENOTFOUND.
func (g *BreakGlass) Review(ctx context.Context, id int64) (*Review, *Request, error) {
	var rev *Review
	var r *Request
	err := g.s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if rev, err = g.lookupTx(ctx, tx, id); err != nil {
			return err
		}
		r, err = tx.Request(ctx, rev.RequestID)
		return err
	})
	return rev, r, err
}

func (g *BreakGlass) lookupTx(ctx context.Context, tx Tx, id int64) (*Review, error) {
	rev, err := reviewLookup(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if rev.Kind != ReviewBreakGlass {
		return nil, Errorf(ENOTFOUND, "There is no break-glass review #%d.", id)
	}
	return rev, nil
}

// checkAnswerTx refuses an answer to rev by actor: someone who may not
// manage the role, the person who broke the glass acknowledging it, a
// review answered.
func (g *BreakGlass) checkAnswerTx(ctx context.Context, tx Tx, rev *Review, grant *Request, actor, outcome string) error {
	if rev.State != ReviewOpen {
		return Errorf(ECONFLICT, "Break-glass use %s on %s was already answered: %s.", grant.Ref(), rev.RoleName, rev.Outcome)
	}
	if actor == grant.SubjectID && outcome == BreakGlassAcknowledged {
		return Errorf(EFORBIDDEN, "You can't review your own break-glass use; another owner of %s or an admin has to.", rev.RoleName)
	}
	ok, err := g.s.mayManage(ctx, tx, Role{ID: rev.RoleID, Name: rev.RoleName}, actor)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(EFORBIDDEN, "Only the owners of %s (or an admin) can answer a break-glass use of it.", rev.RoleName)
	}
	return nil
}

func (g *BreakGlass) answer(ctx context.Context, id int64, actor, outcome string) (*Review, error) {
	s := g.s
	var grant *Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		rev, err := g.lookupTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if grant, err = tx.Request(ctx, rev.RequestID); err != nil {
			return err
		}
		return g.checkAnswerTx(ctx, tx, rev, grant, actor, outcome)
	})
	if err != nil {
		return nil, err
	}
	if outcome == BreakGlassRevoked {
		// Rule 6: a grant that ended already, or is ending, needs nothing
		// more; any other refusal leaves the review open.
		if _, err := s.Grants().Revoke(ctx, grant.ID, actor, defaultRevokeNowReason); err != nil && !errors.Is(err, ErrGrantEnding) {
			return nil, err
		}
	}
	actorEmail := s.optionalEmail(ctx, actor)
	action := ActionBreakGlassAcknowledged
	if outcome == BreakGlassRevoked {
		action = ActionBreakGlassRevoked
	}
	var out *Review
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := g.lookupTx(ctx, tx, id)
		if err != nil {
			return err
		}
		r, err := tx.Request(ctx, cur.RequestID)
		if err != nil {
			return err
		}
		if err := g.checkAnswerTx(ctx, tx, cur, r, actor, outcome); err != nil {
			return err
		}
		now := s.Now()
		cur.State, cur.Outcome, cur.ClosedBy, cur.ClosedAt, cur.RemindAt = ReviewClosed, outcome, actor, now, time.Time{}
		if err := tx.UpdateReview(ctx, cur); err != nil {
			return stale(err)
		}
		if err := s.auditRequest(ctx, tx, r, actor, actorEmail, action, map[string]any{
			reviewAuditReviewKey: cur.ID, "open_for": now.Sub(cur.StartedAt).Round(time.Second).String()}); err != nil {
			return err
		}
		out = cur
		return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventBreakGlassAnswered, Actor: actor, Review: cur.ID})
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("review_id", id).Int64("request_id", grant.ID).Str("slack_user", actor).Str("outcome", outcome).Msg("break-glass review answered")
	return out, nil
}
