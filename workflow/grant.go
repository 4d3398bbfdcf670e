package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The grant lifecycle. A grant is a completed addition: a Request of kind
// add in state completed. Its rules:
//
//  1. A grant holds the id of the PostHog membership it created (or found,
//     when a retried create met its own earlier write) and its end time
//     (RevokeAt; zero for a permanent grant).
//  2. A grant ends exactly once, completed → revoked: at its end time (the
//     scheduler), when its holder says done, when an owner or admin revokes
//     it, or when it is superseded — by a completed removal of the person
//     from the role, by a later grant of the same person and role, or by
//     reconciliation finding the person no longer in the role.
//  3. Ending a grant deletes that membership id and nothing else; PostHog's
//     404 means already gone. Superseding deletes nothing: the membership is
//     gone already, or the later grant holds it. So ending a grant never
//     removes a membership a later grant or someone outside the bot made.
//  4. A revocation is never abandoned. Every failure, temporary or not, is
//     retried with backoff capped at revocationRetryCap until PostHog agrees.
//     From the first failure the grant is revocation overdue: audited once,
//     owners and admins told at once and then daily, counted by the
//     accessbot_revocations_overdue gauge; Revoke on it retries at once.
//  5. An extension is a request of kind extend, routed and decided like an
//     addition (same owners, same N-of-M, auto-approve where the role
//     auto-approves). Approved, it moves the grant's end — never earlier
//     than it was, and at most the role's max_duration after the approval —
//     with no PostHog call, in the approving transaction.
//  6. The holder is warned before the end, once per policy expiry_warning
//     shorter than the time left; the next warning's time is stored with the
//     grant, so a restart neither repeats nor skips one.
//  7. Pending extensions of a grant that ends are cancelled.
//  8. A grant revoked while it is still being added (approved or
//     executing) is marked at once and audited. If nothing was sent to
//     PostHog yet (approved), the execution makes no call and the request
//     fails with that reason (approved → failed); otherwise the transaction
//     that completes the addition queues its removal, so it ends as soon as
//     PostHog has it. Nobody has to click again.

const (
	// revocationRetryCap bounds the wait between two tries of a revocation.
	revocationRetryCap = 15 * time.Minute
	// overdueReminderEvery is how often owners and admins hear about an
	// overdue revocation again.
	overdueReminderEvery = 24 * time.Hour
)

// Grants ends and extends grants; see the rules above.
type Grants struct{ s *Service }

// Grants returns the grant lifecycle of s.
func (s *Service) Grants() *Grants { return s.grants }

// activeGrant loads request id and checks it is a grant in force.
func activeGrant(ctx context.Context, tx Tx, id int64) (*Request, error) {
	return loadGrant(ctx, tx, id, false)
}

// loadGrant loads request id and checks it is a grant in force or, when
// adding is true, one still being added (rule 8).
func loadGrant(ctx context.Context, tx Tx, id int64, adding bool) (*Request, error) {
	r, err := tx.Request(ctx, id)
	if err != nil {
		return nil, requestLookup(id, err)
	}
	if adding && r.Kind == KindAdd && (r.State == StateApproved || r.State == StateExecuting) {
		return r, nil
	}
	if r.Kind != KindAdd {
		return nil, Errorf(ECONFLICT, "%s is not a grant: it asks %s.", r.Ref(), kindVerb(r.Kind))
	}
	if r.State != StateCompleted {
		e := Errorf(ECONFLICT, "%s is not an active grant (it is %s).", r.Ref(), r.State)
		if !r.State.Open() {
			e.Err = ErrGrantEnding
		}
		return nil, e
	}
	return r, nil
}

// ErrGrantEnding is wrapped by the ECONFLICT of Grants.Revoke when the
// grant has ended already or its revocation is under way: there is
// nothing more to ask for.
var ErrGrantEnding = errors.New("the grant has ended or is being revoked")

// Revoke ends grant id now: an owner or admin asks, the removal of its
// membership is queued, and the grant becomes revoked once PostHog agrees.
// On a grant whose revocation is overdue it retries at once; on one still
// being added, the removal follows the addition (rule 8).
// Errors: EINVALID (reason too long), ENOTFOUND, EFORBIDDEN, ECONFLICT (not
// a grant in force or being added, or its revocation is already under way;
// wrapping ErrGrantEnding when it has ended or is ending).
func (g *Grants) Revoke(ctx context.Context, id int64, actor, reason string) (*Request, error) {
	s := g.s
	reason, err := checkReason(reason, "")
	if err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "revoked by an owner"
	}
	actorEmail := s.optionalEmail(ctx, actor)
	var out *Request
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		r, err := loadGrant(ctx, tx, id, true)
		if err != nil {
			return err
		}
		ok, err := s.mayManage(ctx, tx, Role{ID: r.RoleID, Name: r.RoleName}, actor)
		if err != nil {
			return err
		}
		if !ok {
			return Errorf(EFORBIDDEN, "Only the owners of %s (or an admin) can revoke %s.", r.RoleName, r.Ref())
		}
		out = r
		switch {
		case r.State != StateCompleted && r.RevokeQueued:
			e := Errorf(ECONFLICT, "%s is already to be revoked as soon as PostHog has added it.", r.Ref())
			e.Err = ErrGrantEnding
			return e
		case r.State != StateCompleted:
			// Rule 8: the transaction completing the addition queues the job.
			return s.markRevocationTx(ctx, tx, r, actor, actorEmail, reason, ActionRevokeRequested, map[string]any{"while_adding": true})
		case r.RevokeQueued:
			return g.retryNowTx(ctx, tx, r, actor, actorEmail)
		}
		return s.queueRevocation(ctx, tx, r, actor, actorEmail, reason, ActionRevokeRequested)
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("request_id", id).Str("role_id", out.RoleID).Str("slack_user", actor).Msg("grant revocation requested")
	return out, nil
}

// dropUnsentTx ends addition r, revoked before its execution sent
// anything to PostHog (rule 8): it fails with that reason, with no call.
// The job is finished by the caller, as for any request no longer
// executing.
func (g *Grants) dropUnsentTx(ctx context.Context, tx Tx, job *Job, r *Request) error {
	reason := "revoked before it was carried out"
	if r.DecisionReason != "" {
		reason += ": " + r.DecisionReason
	}
	return g.s.failRequestTx(ctx, tx, job, r, reason, map[string]any{"posthog_calls": 0})
}

// retryNowTx makes an overdue revocation run again at once.
func (g *Grants) retryNowTx(ctx context.Context, tx Tx, r *Request, actor, actorEmail string) error {
	s := g.s
	if !r.Overdue() {
		e := Errorf(ECONFLICT, "%s is already being revoked.", r.Ref())
		e.Err = ErrGrantEnding
		return e
	}
	n, err := tx.ExpediteJobs(ctx, r.ID, JobRevoke, s.Now())
	if err != nil {
		return err
	}
	if n == 0 {
		// The job is running right now, or was lost: one more is harmless,
		// as ending a grant is idempotent.
		if err := s.enqueue(ctx, tx, &Job{Kind: JobRevoke, RequestID: r.ID}); err != nil {
			return err
		}
	}
	return s.auditRequest(ctx, tx, r, actor, actorEmail, ActionRevokeRequested,
		map[string]any{"reason": r.DecisionReason, "retry": true, "overdue_since": r.OverdueSince.Format(time.RFC3339)})
}

// Done ends the holder's own grant id now. Errors: ENOTFOUND, EFORBIDDEN
// (not the holder), ECONFLICT (not an active grant, or already ending).
func (g *Grants) Done(ctx context.Context, id int64, actor string) (*Request, error) {
	s := g.s
	var out *Request
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		r, err := activeGrant(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.SubjectID != actor {
			return Errorf(EFORBIDDEN, "Only the person who holds %s can end it this way; owners can revoke it.", r.Ref())
		}
		out = r
		if r.RevokeQueued {
			return g.retryNowTx(ctx, tx, r, actor, r.SubjectEmail)
		}
		return s.queueRevocation(ctx, tx, r, actor, r.SubjectEmail, "ended by its holder", ActionGrantDone)
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("request_id", id).Str("role_id", out.RoleID).Str("slack_user", actor).Msg("grant ended by its holder")
	return out, nil
}

// Extend asks to move the end of the holder's grant id by d (0: as long
// again as the grant was given for). The extension request is routed like
// an addition; see rule 5. Errors: EINVALID (Field "duration"), ENOTFOUND,
// EFORBIDDEN (not the holder, or nobody else could decide), ECONFLICT (not
// an active time-bound grant, or an open request for the role exists).
func (g *Grants) Extend(ctx context.Context, id int64, actor string, d time.Duration) (*Request, error) {
	s := g.s
	var grant *Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		grant, err = activeGrant(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case grant.SubjectID != actor:
		return nil, Errorf(EFORBIDDEN, "Only the person who holds %s can ask to extend it.", grant.Ref())
	case grant.RevokeAt.IsZero():
		return nil, Errorf(ECONFLICT, "%s is permanent: it has no end to move.", grant.Ref())
	case grant.RevokeQueued:
		return nil, Errorf(ECONFLICT, "%s is ending already and can't be extended.", grant.Ref())
	}
	if d == 0 {
		d = grant.Duration
	}
	role := Role{ID: grant.RoleID, Name: grant.RoleName}
	rules := s.policy.RulesFor(role)
	switch {
	case d < 0:
		return nil, FieldErrorf("duration", "An extension must be a positive duration.")
	case rules.MaxDuration > 0 && d > rules.MaxDuration:
		return nil, FieldErrorf("duration", "Access to %s can last at most %s.", role.Name, DurationText(rules.MaxDuration))
	}
	now := s.Now()
	r := &Request{
		Kind:              KindExtend,
		State:             StatePending,
		RequesterID:       actor,
		RequesterEmail:    grant.SubjectEmail,
		SubjectID:         grant.SubjectID,
		SubjectEmail:      grant.SubjectEmail,
		SubjectUUID:       grant.SubjectUUID,
		RoleID:            grant.RoleID,
		RoleName:          grant.RoleName,
		Reason:            fmt.Sprintf("extend %s by %s", grant.Ref(), DurationText(d)),
		Duration:          d,
		GrantID:           grant.ID,
		ApprovalsRequired: rules.ApprovalsRequired,
		AutoApproved:      rules.AutoApprove,
		CreatedAt:         now,
		UpdatedAt:         now,
		// Deciding after the grant ended would be moot.
		ExpiresAt: minTime(now.Add(rules.PendingExpiry), grant.RevokeAt),
	}
	if rules.ReminderAfter > 0 && now.Add(rules.ReminderAfter).Before(r.ExpiresAt) {
		r.RemindAt = now.Add(rules.ReminderAfter)
	}
	return s.submit(ctx, r, rules)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// applyExtensionTx carries out an approved extension: it moves its grant's
// end and completes, or fails when the grant has ended meanwhile.
func (g *Grants) applyExtensionTx(ctx context.Context, tx Tx, ext *Request, actorEmail string) (EventType, error) {
	s := g.s
	now := s.Now()
	if err := ext.moveTo(StateExecuting); err != nil {
		return "", err
	}
	grant, err := tx.Request(ctx, ext.GrantID)
	if err != nil {
		return "", fmt.Errorf("load grant %d of extension %d: %w", ext.GrantID, ext.ID, err)
	}
	if !grant.Active() || grant.RevokeQueued || grant.RevokeAt.IsZero() {
		if err := ext.moveTo(StateFailed); err != nil {
			return "", err
		}
		ext.FailureReason, ext.UpdatedAt = fmt.Sprintf("%s had already ended, so there was nothing to extend.", grant.Ref()), now
		if err := tx.UpdateRequest(ctx, ext); err != nil {
			return "", stale(err)
		}
		return EventFailed, s.auditRequest(ctx, tx, ext, SystemActor, "", ActionExecutionFailed, map[string]any{"error": ext.FailureReason})
	}
	rules := s.policy.RulesFor(Role{ID: grant.RoleID, Name: grant.RoleName})
	from := grant.RevokeAt
	to := from.Add(ext.Duration)
	if rules.MaxDuration > 0 {
		to = minTime(to, now.Add(rules.MaxDuration))
	}
	if to.Before(from) {
		to = from // an extension never shortens a grant
	}
	grant.RevokeAt, grant.UpdatedAt = to, now
	grant.NextWarningAt = nextWarning(to, now, rules.ExpiryWarnings)
	if err := tx.UpdateRequest(ctx, grant); err != nil {
		return "", stale(err)
	}
	if err := s.auditRequest(ctx, tx, grant, ext.DecidedBy, actorEmail, ActionGrantExtended, map[string]any{
		"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "extension_request": ext.ID,
		"requested": DurationText(ext.Duration), "capped": !to.Equal(from.Add(ext.Duration))}); err != nil {
		return "", err
	}
	if err := ext.moveTo(StateCompleted); err != nil {
		return "", err
	}
	// The extension shows the grant's new end; the scheduler's selectors
	// only ever pick additions, never an extension.
	ext.CompletedAt, ext.RevokeAt, ext.UpdatedAt = now, to, now
	if err := tx.UpdateRequest(ctx, ext); err != nil {
		return "", stale(err)
	}
	return EventExtended, nil
}

// nextWarning is when the holder of a grant ending at end should next be
// warned, after now: the earliest end-w still ahead, for w in warnings
// (longest first). Zero when none is left.
func nextWarning(end, now time.Time, warnings []time.Duration) time.Time {
	if end.IsZero() {
		return time.Time{}
	}
	for _, w := range warnings {
		if at := end.Add(-w); at.After(now) {
			return at
		}
	}
	return time.Time{}
}

// warnTx queues an expiry warning to the holder of grant r and schedules
// the next one.
func (g *Grants) warnTx(ctx context.Context, tx Tx, r *Request) error {
	s := g.s
	now := s.Now()
	rules := s.policy.RulesFor(Role{ID: r.RoleID, Name: r.RoleName})
	r.NextWarningAt, r.UpdatedAt = nextWarning(r.RevokeAt, now, rules.ExpiryWarnings), now
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventExpiryWarning, Actor: SystemActor})
}

// remindOverdueTx tells owners and admins again about an overdue revocation.
func (g *Grants) remindOverdueTx(ctx context.Context, tx Tx, r *Request) error {
	s := g.s
	r.OverdueNotifiedAt, r.UpdatedAt = s.Now(), s.Now()
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventRevocationOverdue, Actor: SystemActor})
}

// revoke runs a revocation job: it deletes the grant's membership by id and
// ends the grant, or schedules another try (rule 4).
func (g *Grants) revoke(ctx context.Context, job *Job) error {
	s := g.s
	var r *Request
	if err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		r, err = tx.Request(ctx, job.RequestID)
		return err
	}); err != nil {
		return fmt.Errorf("load grant of job %d: %w", job.ID, err)
	}
	if !r.Active() || !r.RevokeQueued {
		// Ended meanwhile (superseded, or by another job): nothing to do.
		return s.finishJob(ctx, job, "done", func(ctx context.Context, tx Tx) error {
			return tx.FinishJob(ctx, job.ID, job.LeaseToken)
		})
	}
	membershipID, callErr := r.MembershipID, error(nil)
	if membershipID == "" {
		membershipID, callErr = g.legacyMembership(ctx, r)
	}
	existed := false
	if callErr == nil && membershipID != "" {
		existed, callErr = s.dir.RemoveRoleMember(ctx, r.RoleID, membershipID)
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if callErr != nil {
		return g.revocationFailed(ctx, job, r, callErr)
	}
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := tx.Request(ctx, r.ID)
		if err != nil {
			return err
		}
		if !cur.Active() || !cur.RevokeQueued {
			return tx.FinishJob(ctx, job.ID, job.LeaseToken)
		}
		now := s.Now()
		if err := cur.moveTo(StateRevoked); err != nil {
			return err
		}
		details := map[string]any{"membership_id": membershipID, "reason": cur.DecisionReason, "attempt": job.Attempts,
			"already_removed": !existed}
		if !cur.OverdueSince.IsZero() {
			details["overdue_since"] = cur.OverdueSince.Format(time.RFC3339)
		}
		cur.RevokedAt, cur.UpdatedAt, cur.NextWarningAt = now, now, time.Time{}
		if err := tx.UpdateRequest(ctx, cur); err != nil {
			return stale(err)
		}
		if err := s.auditRequest(ctx, tx, cur, SystemActor, "", ActionGrantRevoked, details); err != nil {
			return err
		}
		if err := s.recordOwnChange(ctx, tx, cur, false); err != nil {
			return err
		}
		if err := g.cancelExtensionsTx(ctx, tx, cur); err != nil {
			return err
		}
		if err := tx.FinishJob(ctx, job.ID, job.LeaseToken); err != nil {
			return err
		}
		r = cur
		return s.enqueueNotify(ctx, tx, cur.ID, notifyPayload{Type: EventRevoked, Actor: SystemActor})
	})
	if err != nil {
		return fmt.Errorf("finish revocation job %d: %w", job.ID, err)
	}
	s.observeJob(job.Kind, "done")
	s.nudge()
	s.log.Info().Int64("request_id", r.ID).Str("role_id", r.RoleID).Str("membership_id", membershipID).Msg("grant ended in PostHog")
	return nil
}

// legacyMembership finds the membership of a grant stored before grants kept
// their membership id: the subject's current membership, unless another
// grant in force holds it.
func (g *Grants) legacyMembership(ctx context.Context, r *Request) (string, error) {
	s := g.s
	m, ok, err := s.dir.FindRoleMember(ctx, r.RoleID, r.SubjectUUID)
	if err != nil || !ok {
		return "", err
	}
	id := m.MembershipID
	var held bool
	err = s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		others, err := tx.FindRequests(ctx, RequestFilter{SubjectUUID: r.SubjectUUID, RoleID: r.RoleID, Kind: KindAdd, States: []State{StateCompleted}})
		held = slices.ContainsFunc(others, func(o *Request) bool { return o.ID != r.ID && o.MembershipID == id })
		return err
	})
	if err != nil || held {
		return "", err
	}
	return id, nil
}

// revocationFailed schedules the next try of a revocation and, the first
// time, marks the grant overdue and tells owners and admins (rule 4).
func (g *Grants) revocationFailed(ctx context.Context, job *Job, r *Request, callErr error) error {
	s := g.s
	log := s.log.With().Int64("request_id", r.ID).Str("role_id", r.RoleID).Int("attempt", job.Attempts).Logger()
	if errors.Is(callErr, context.Canceled) {
		log.Info().Msg("revocation interrupted by shutdown; job released")
		return s.finishJob(ctx, job, "released", func(ctx context.Context, tx Tx) error {
			return tx.RetryJob(ctx, job.ID, job.LeaseToken, s.Now(), "interrupted by shutdown")
		})
	}
	var retryAfter time.Duration
	var temp *TemporaryError
	if errors.As(callErr, &temp) {
		retryAfter = temp.RetryAfter
	}
	now := s.Now()
	runAt := now.Add(max(min(s.retryDelay(job.Attempts, 0), revocationRetryCap), retryAfter))
	log.Error().Err(callErr).AnErr("cause", errors.Unwrap(callErr)).Time("retry_at", runAt).Msg("revocation failed; will retry")
	return s.finishJob(ctx, job, "retry", func(ctx context.Context, tx Tx) error {
		cur, err := tx.Request(ctx, r.ID)
		if err != nil {
			return err
		}
		if err := tx.RetryJob(ctx, job.ID, job.LeaseToken, runAt, callErr.Error()); err != nil {
			return err
		}
		if err := s.auditRequest(ctx, tx, cur, SystemActor, "", ActionExecutionRetry, map[string]any{
			"job": string(JobRevoke), "attempt": job.Attempts, "error": callErr.Error(), "retry_at": runAt.Format(time.RFC3339)}); err != nil {
			return err
		}
		if !cur.Active() || !cur.RevokeQueued || !cur.OverdueSince.IsZero() {
			return nil
		}
		cur.OverdueSince, cur.OverdueNotifiedAt, cur.UpdatedAt = now, now, now
		if err := tx.UpdateRequest(ctx, cur); err != nil {
			return stale(err)
		}
		details := map[string]any{"error": callErr.Error(), "attempt": job.Attempts, "reason": cur.DecisionReason}
		if !cur.RevokeAt.IsZero() {
			details["revoke_at"] = cur.RevokeAt.Format(time.RFC3339)
		}
		if err := s.auditRequest(ctx, tx, cur, SystemActor, "", ActionRevocationOverdue, details); err != nil {
			return err
		}
		return s.enqueueNotify(ctx, tx, cur.ID, notifyPayload{Type: EventRevocationOverdue, Actor: SystemActor})
	})
}

// supersedeTx ends every grant in force of the subject on the role,
// deleting nothing in PostHog (rule 3): by is the request that made them
// moot (0: none, as when reconciliation found the person gone), which is
// itself left alone; reason says it in words.
func (g *Grants) supersedeTx(ctx context.Context, tx Tx, subjectUUID, roleID string, by int64, reason string) error {
	s := g.s
	grants, err := tx.FindRequests(ctx, RequestFilter{SubjectUUID: subjectUUID, RoleID: roleID, Kind: KindAdd, States: []State{StateCompleted}})
	if err != nil {
		return err
	}
	now := s.Now()
	for _, gr := range grants {
		if gr.ID == by {
			continue
		}
		if err := gr.moveTo(StateRevoked); err != nil {
			return err
		}
		gr.RevokedAt, gr.UpdatedAt, gr.DecisionReason, gr.NextWarningAt = now, now, reason, time.Time{}
		if err := tx.UpdateRequest(ctx, gr); err != nil {
			return stale(err)
		}
		details := map[string]any{"reason": reason, "membership_id": gr.MembershipID}
		if by != 0 {
			details["by_request"] = by
		}
		if err := s.auditRequest(ctx, tx, gr, SystemActor, "", ActionGrantSuperseded, details); err != nil {
			return err
		}
		if err := g.cancelExtensionsTx(ctx, tx, gr); err != nil {
			return err
		}
		if err := s.enqueueNotify(ctx, tx, gr.ID, notifyPayload{Type: EventRevoked, Actor: SystemActor}); err != nil {
			return err
		}
		s.log.Info().Int64("request_id", gr.ID).Str("role_id", gr.RoleID).Str("reason", reason).Msg("grant superseded")
	}
	return nil
}

// cancelExtensionsTx withdraws the pending extensions of a grant that ended.
func (g *Grants) cancelExtensionsTx(ctx context.Context, tx Tx, grant *Request) error {
	s := g.s
	exts, err := tx.FindRequests(ctx, RequestFilter{GrantID: grant.ID, States: []State{StatePending}})
	if err != nil {
		return err
	}
	for _, e := range exts {
		if err := s.withdrawTx(ctx, tx, e, SystemActor, "", fmt.Sprintf("%s ended before the extension was decided", grant.Ref())); err != nil {
			return err
		}
	}
	return nil
}

// Overdue lists the grants whose revocation is overdue that slackID may
// manage (all of them for an admin), oldest first.
func (g *Grants) Overdue(ctx context.Context, slackID string) ([]*Request, error) {
	s := g.s
	var out []*Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		rs, err := tx.FindRequests(ctx, RequestFilter{Overdue: true})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range rs {
			ok, err := s.mayManage(ctx, tx, Role{ID: r.RoleID, Name: r.RoleName}, slackID)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list overdue revocations for %s: %w", slackID, err)
	}
	return out, nil
}
