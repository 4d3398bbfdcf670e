package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// The queues workers serve apart: PostHog work, approver copies and the
// like, and the requester's own DMs — so a notification never waits behind
// PostHog work, and a requester never waits behind approver copies that
// Slack's chat.update limit holds back.
var (
	postHogJobs   = []JobKind{JobExecute, JobRevoke}
	notifyJobs    = []JobKind{JobNotify}
	requesterJobs = []JobKind{JobNotifyRequester}
)

// RunWorkers runs n workers for PostHog jobs (executions and revocations),
// max(2, n/2) for notifications and max(4, n) for requesters' DMs (one DM
// each, quick) until ctx ends. Jobs in flight when ctx ends get grace to
// finish; then their calls are cancelled and the jobs are released, to be
// resumed at the next start or by another replica — an interrupted job is
// never marked failed.
func (s *Service) RunWorkers(ctx context.Context, n int, grace time.Duration) {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancelJobs) })
	defer stopTimer()
	var wg sync.WaitGroup
	start := func(count int, kinds []JobKind, wake chan struct{}) {
		for i := 0; i < count; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.workLoop(ctx, jobCtx, kinds, wake)
			}()
		}
	}
	start(n, postHogJobs, s.wake)
	start(max(2, n/2), notifyJobs, s.wakeNotify)
	start(max(4, n), requesterJobs, s.wakeRequester)
	wg.Wait()
}

func (s *Service) workLoop(ctx, jobCtx context.Context, kinds []JobKind, wake chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-wake:
		}
		for ctx.Err() == nil {
			ran, err := s.runJob(jobCtx, kinds)
			if err != nil {
				s.log.Error().Err(err).Msg("job worker")
				break
			}
			if !ran {
				break
			}
		}
		timer.Reset(s.cfg.PollInterval)
	}
}

// RunJob claims one due job of any kind and carries it out. It reports
// whether there was a job. Exported so tests and the demo can drive
// execution step by step.
func (s *Service) RunJob(ctx context.Context) (bool, error) {
	return s.runJob(ctx, nil)
}

// RunJobOf is RunJob for a job of one of kinds (any kind when empty), as
// the notification workers claim them.
func (s *Service) RunJobOf(ctx context.Context, kinds []JobKind) (bool, error) {
	return s.runJob(ctx, kinds)
}

func (s *Service) runJob(ctx context.Context, kinds []JobKind) (bool, error) {
	job, err := s.store.ClaimJob(ctx, kinds, s.Now(), s.cfg.JobLease)
	if err != nil {
		return false, fmt.Errorf("claim job: %w", err)
	}
	if job == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JobLease*3/4)
	defer cancel()
	log := s.log.With().Int64("job_id", job.ID).Str("job_kind", string(job.Kind)).
		Int64("request_id", job.RequestID).Int("attempt", job.Attempts).Logger()
	ctx = withJob(WithPriority(log.WithContext(ctx), PriorityExecution), job.ID)
	switch job.Kind {
	case JobExecute:
		err = s.execute(ctx, job)
	case JobRevoke:
		err = s.Grants().revoke(ctx, job)
	case JobNotify, JobNotifyRequester:
		err = s.deliver(ctx, job)
	default:
		err = s.finishJob(ctx, job, "failed", func(ctx context.Context, tx Tx) error {
			return tx.FailJob(ctx, job.ID, job.LeaseToken, "unknown job kind "+string(job.Kind))
		})
	}
	if ErrorCode(err) == ECONFLICT {
		// Our lease ended and another worker owns the job now; it will
		// finish it idempotently.
		log.Warn().Err(err).Msg("lost the lease on a job")
		s.observeJob(job.Kind, "lost")
		return true, nil
	}
	return true, err
}

// finishJob commits how a job run ended and reports it to ObserveJob.
func (s *Service) finishJob(ctx context.Context, job *Job, outcome string, fn func(ctx context.Context, tx Tx) error) error {
	if err := s.update(ctx, fn); err != nil {
		return err
	}
	s.observeJob(job.Kind, outcome)
	return nil
}

func (s *Service) observeJob(kind JobKind, outcome string) {
	if s.cfg.ObserveJob != nil {
		s.cfg.ObserveJob(kind, outcome)
	}
}

// execute carries out an approved request against PostHog.
// It is idempotent, so a job resumed after a crash finishes without a
// second write: a member already there (or already gone) counts as done.
func (s *Service) execute(ctx context.Context, job *Job) error {
	var r *Request
	err := s.update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if r, err = tx.Request(ctx, job.RequestID); err != nil {
			return err
		}
		if r.State == StateApproved && r.Kind == KindAdd && r.RevokeQueued {
			// Grant rule 8: revoked before anything was sent to PostHog.
			return s.Grants().dropUnsentTx(ctx, tx, job, r)
		}
		if r.State == StateApproved {
			if err := r.moveTo(StateExecuting); err != nil {
				return err
			}
			r.UpdatedAt = s.Now()
			if err := tx.UpdateRequest(ctx, r); err != nil {
				return stale(err)
			}
			return s.auditRequest(ctx, tx, r, SystemActor, "", ActionExecutionStarted, map[string]any{"attempt": job.Attempts})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("start job %d: %w", job.ID, err)
	}
	if r.State != StateExecuting {
		return s.finishJob(ctx, job, "done", func(ctx context.Context, tx Tx) error {
			return tx.FinishJob(ctx, job.ID, job.LeaseToken)
		})
	}

	adding := r.Kind == KindAdd
	membershipID, already, callErr := s.applyMembership(ctx, r, adding)
	// PostHog has answered: what it said is recorded even if we are being
	// stopped right now.
	ctx, cancel := detached(ctx)
	defer cancel()
	if callErr != nil {
		return s.executionFailed(ctx, job, r, callErr)
	}
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := tx.Request(ctx, r.ID)
		if err != nil {
			return err
		}
		now := s.Now()
		details := map[string]any{"membership_id": membershipID, "attempt": job.Attempts}
		if cur.State != StateExecuting {
			return tx.FinishJob(ctx, job.ID, job.LeaseToken)
		}
		if err := cur.moveTo(StateCompleted); err != nil {
			return err
		}
		cur.CompletedAt, cur.UpdatedAt = now, now
		action, event := ActionMembershipRemoved, EventCompleted
		// A grant revoked while it was being added ends now (grant rule 8).
		revokeNow := adding && cur.RevokeQueued
		if adding {
			cur.MembershipID = membershipID
			if cur.Duration > 0 && !revokeNow {
				cur.RevokeAt = now.Add(cur.Duration)
				details["revoke_at"] = cur.RevokeAt.Format(time.RFC3339)
				rules := s.policy.RulesFor(Role{ID: cur.RoleID, Name: cur.RoleName})
				cur.NextWarningAt = nextWarning(cur.RevokeAt, now, rules.ExpiryWarnings)
			}
			details["already_member"] = already
			if revokeNow {
				details["revocation_queued"] = true
			}
			action = ActionMembershipAdded
		} else {
			details["already_removed"] = already
		}
		if err := tx.UpdateRequest(ctx, cur); err != nil {
			return stale(err)
		}
		if err := s.auditRequest(ctx, tx, cur, SystemActor, "", action, details); err != nil {
			return err
		}
		if err := s.recordOwnChange(ctx, tx, cur, adding); err != nil {
			return err
		}
		// This change makes every other grant of the person on the role
		// moot: a removal took the membership away, a new grant holds it.
		reason := "removed from the role by " + cur.Ref()
		if adding {
			reason = "replaced by " + cur.Ref()
		}
		if err := s.Grants().supersedeTx(ctx, tx, cur.SubjectUUID, cur.RoleID, cur.ID, reason); err != nil {
			return err
		}
		if err := tx.FinishJob(ctx, job.ID, job.LeaseToken); err != nil {
			return err
		}
		r = cur
		if revokeNow {
			// The requester hears once, when it has ended; the approver
			// copies follow then too.
			return s.enqueueRevocation(ctx, tx, cur)
		}
		return s.enqueueNotify(ctx, tx, cur.ID, notifyPayload{Type: event, Actor: SystemActor})
	})
	if err != nil {
		return fmt.Errorf("finish job %d: %w", job.ID, err)
	}
	s.observeJob(job.Kind, "done")
	s.nudge()
	s.log.Info().Int64("request_id", r.ID).Str("role_id", r.RoleID).Str("state", string(r.State)).
		Bool("already", already).Msg("PostHog membership changed")
	return nil
}

// applyMembership makes PostHog match the request in at most two calls,
// whatever the size of the role, and idempotently, so a retried job does not
// write twice. already reports that nothing needed changing.
//
// An addition creates the membership at once: PostHog's "already part of the
// role" means done (the directory then looks the membership up). A removal
// deletes the membership id the bot knows (from a grant of the person, or the
// mirror); when it knows none, or PostHog no longer has that id, it looks the
// person's membership up first.
func (s *Service) applyMembership(ctx context.Context, r *Request, adding bool) (membershipID string, already bool, err error) {
	if adding {
		return s.dir.AddRoleMember(ctx, r.RoleID, r.SubjectUUID)
	}
	if id, err := s.knownMembership(ctx, r); err != nil {
		return "", false, err
	} else if id != "" {
		existed, err := s.dir.RemoveRoleMember(ctx, r.RoleID, id)
		if err != nil || existed {
			return id, false, err
		}
		s.log.Info().Int64("request_id", r.ID).Str("membership_id", id).Msg("known membership id was gone; looking the member up")
	}
	m, ok, err := s.dir.FindRoleMember(ctx, r.RoleID, r.SubjectUUID)
	if err != nil || !ok {
		return "", err == nil, err
	}
	existed, err := s.dir.RemoveRoleMember(ctx, r.RoleID, m.MembershipID)
	return m.MembershipID, !existed, err
}

// knownMembership is the membership id the bot knows for the subject of a
// removal: the one a grant in force holds, else the mirror's ("" for none).
func (s *Service) knownMembership(ctx context.Context, r *Request) (string, error) {
	var id string
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		grants, err := tx.FindRequests(ctx, RequestFilter{SubjectUUID: r.SubjectUUID, RoleID: r.RoleID, Kind: KindAdd,
			States: []State{StateCompleted}, NewestFirst: true})
		for _, g := range grants {
			if g.MembershipID != "" {
				id = g.MembershipID
				return nil
			}
		}
		return err
	})
	if err != nil || id != "" {
		return id, err
	}
	m, member, _, err := s.mirrorMember(ctx, r.RoleID, r.SubjectUUID)
	if err != nil || !member {
		return "", err
	}
	return m.MembershipID, nil
}

// executionFailed retries a temporary failure later, or fails the request
// for good with the reason in plain words.
func (s *Service) executionFailed(ctx context.Context, job *Job, r *Request, callErr error) error {
	log := s.log.With().Int64("request_id", r.ID).Str("role_id", r.RoleID).Int("attempt", job.Attempts).Logger()
	if errors.Is(callErr, context.Canceled) {
		// Shutdown cut the call short: hand the job back untouched.
		log.Info().Msg("execution interrupted by shutdown; job released")
		return s.finishJob(ctx, job, "released", func(ctx context.Context, tx Tx) error {
			return tx.RetryJob(ctx, job.ID, job.LeaseToken, s.Now(), "interrupted by shutdown")
		})
	}
	var temp *TemporaryError
	if errors.As(callErr, &temp) && job.Attempts < s.cfg.ExecuteAttempts {
		runAt := s.Now().Add(s.retryDelay(job.Attempts, temp.RetryAfter))
		log.Warn().Err(callErr).AnErr("cause", errors.Unwrap(callErr)).Time("retry_at", runAt).Msg("PostHog call failed; will retry")
		return s.finishJob(ctx, job, "retry", func(ctx context.Context, tx Tx) error {
			if err := tx.RetryJob(ctx, job.ID, job.LeaseToken, runAt, callErr.Error()); err != nil {
				return err
			}
			return s.auditRequest(ctx, tx, r, SystemActor, "", ActionExecutionRetry,
				map[string]any{"attempt": job.Attempts, "error": callErr.Error(), "retry_at": runAt.Format(time.RFC3339)})
		})
	}
	reason := callErr.Error()
	if temp != nil {
		reason = fmt.Sprintf("PostHog kept failing after %d attempts: %v", job.Attempts, temp.Err)
	}
	log.Error().Err(callErr).AnErr("cause", errors.Unwrap(callErr)).Msg("execution failed for good")
	return s.finishJob(ctx, job, "failed", func(ctx context.Context, tx Tx) error {
		cur, err := tx.Request(ctx, r.ID)
		if err != nil {
			return err
		}
		if err := tx.FailJob(ctx, job.ID, job.LeaseToken, reason); err != nil {
			return err
		}
		return s.failRequestTx(ctx, tx, job, cur, reason, nil)
	})
}

// failRequestTx fails request r for good with reason (when it is still
// approved or executing; a job of a request ended otherwise fails alone),
// audits it with details besides the error, and tells everyone. Finishing
// or failing the job is the caller's.
func (s *Service) failRequestTx(ctx context.Context, tx Tx, job *Job, r *Request, reason string, details map[string]any) error {
	d := map[string]any{"error": reason, "attempt": job.Attempts, "job": string(job.Kind)}
	for k, v := range details {
		d[k] = v
	}
	if r.State == StateApproved || r.State == StateExecuting {
		if err := r.moveTo(StateFailed); err != nil {
			return err
		}
		r.FailureReason, r.UpdatedAt = reason, s.Now()
		if err := tx.UpdateRequest(ctx, r); err != nil {
			return stale(err)
		}
	}
	if err := s.auditRequest(ctx, tx, r, SystemActor, "", ActionExecutionFailed, d); err != nil {
		return err
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventFailed, Actor: SystemActor})
}

// detached is ctx without its cancellation, bounded in time: for recording
// the outcome of an external call that already happened.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

// retryDelay is exponential backoff with jitter, at least retryAfter.
func (s *Service) retryDelay(attempt int, retryAfter time.Duration) time.Duration {
	return max(s.backoff(attempt, s.cfg.RetryMax), retryAfter)
}

// backoff is the delay before the next attempt: RetryBase doubled for each
// attempt after the first, at most ceiling, with jitter (somewhere in
// [d/2, d]).
func (s *Service) backoff(attempt int, ceiling time.Duration) time.Duration {
	d := s.cfg.RetryBase
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}

// deliver hands one notification to the Notifier. A temporary failure is
// retried with capped backoff, never sooner than the Retry-After the
// Notifier passed on, for up to NotifyRetryWindow from when the
// notification was queued; a permanent one is dropped with an error log.
// A notification never touches the request.
func (s *Service) deliver(ctx context.Context, job *Job) error {
	var p notifyPayload
	if err := json.Unmarshal([]byte(job.Payload), &p); err != nil {
		return s.finishJob(ctx, job, "failed", func(ctx context.Context, tx Tx) error {
			return tx.FailJob(ctx, job.ID, job.LeaseToken, "bad payload: "+err.Error())
		})
	}
	ev := Event{Type: p.Type, Actor: p.Actor, Drift: p.Drift}
	if job.Kind == JobNotifyRequester {
		ev.Audience = AudienceRequester
	}
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		role := Role{}
		if job.RequestID != 0 {
			r, err := tx.Request(ctx, job.RequestID)
			if err != nil {
				return err
			}
			ev.Request = r
			role = Role{ID: r.RoleID, Name: r.RoleName}
		} else if p.Drift != nil {
			role = Role{ID: p.Drift.RoleID, Name: p.Drift.RoleName}
		}
		var err error
		switch {
		case p.Review != 0:
			ev.Owners, err = s.reviewEventTx(ctx, tx, &ev, p)
		case p.Type == EventRevocationOverdue:
			ev.Owners, err = s.ownersAndAdmins(ctx, tx, role)
		case ev.Request != nil:
			ev.Owners, err = s.decidersTx(ctx, tx, ev.Request)
		default:
			ev.Owners, err = s.ownersTx(ctx, tx, role)
		}
		return err
	})
	if err != nil {
		// The database is what failed: try again like a temporary error.
		err = &TemporaryError{Err: fmt.Errorf("prepare notification: %w", err)}
	} else if s.notifier != nil {
		err = s.notifier.Notify(ctx, ev)
	}
	return s.deliveryOutcome(ctx, job, ev, err)
}

// NotifyRetryWindow is how long a notification that keeps failing
// temporarily is retried before it is dropped.
const NotifyRetryWindow = 24 * time.Hour

// notifyRetryMax caps the backoff between retries of a notification
// (which starts at Config.RetryBase and doubles).
const notifyRetryMax = 5 * time.Minute

// deliveryOutcome records how a delivery went: done, retried later, or
// dropped for good.
func (s *Service) deliveryOutcome(ctx context.Context, job *Job, ev Event, sendErr error) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	log := s.log.With().Int64("request_id", job.RequestID).Str("event", string(ev.Type)).
		Str("job_kind", string(job.Kind)).Int("attempt", job.Attempts).Logger()
	var temp *TemporaryError
	now := s.Now()
	switch {
	case sendErr == nil:
		return s.finishJob(ctx, job, "done", func(ctx context.Context, tx Tx) error {
			return tx.FinishJob(ctx, job.ID, job.LeaseToken)
		})
	case errors.Is(sendErr, context.Canceled):
		log.Info().Msg("notification interrupted by shutdown; job released")
		return s.finishJob(ctx, job, "released", func(ctx context.Context, tx Tx) error {
			return tx.RetryJob(ctx, job.ID, job.LeaseToken, now, "interrupted by shutdown")
		})
	case errors.As(sendErr, &temp) && now.Before(job.CreatedAt.Add(NotifyRetryWindow)):
		var d time.Duration
		switch {
		case temp.Reserved:
			// The notifier set this turn aside for this job: take it.
			d = temp.RetryAfter
		case temp.RetryAfter > 0:
			// Slack said when: come back then (plus a little spread, so
			// many waiting jobs do not return in the same instant).
			d = temp.RetryAfter + rand.N(temp.RetryAfter/4+time.Millisecond)
		default:
			d = s.backoff(job.Attempts, min(notifyRetryMax, s.cfg.RetryMax))
		}
		runAt := now.Add(d)
		log.Warn().Err(sendErr).Time("retry_at", runAt).Msg("notification failed; will retry")
		return s.finishJob(ctx, job, "retry", func(ctx context.Context, tx Tx) error {
			return tx.RetryJob(ctx, job.ID, job.LeaseToken, runAt, sendErr.Error())
		})
	default:
		reason := "permanent error"
		if temp != nil {
			reason = "still failing after " + NotifyRetryWindow.String()
		}
		log.Error().Err(sendErr).Str("why", reason).Msg("notification dropped")
		return s.finishJob(ctx, job, "failed", func(ctx context.Context, tx Tx) error {
			return tx.FailJob(ctx, job.ID, job.LeaseToken, sendErr.Error())
		})
	}
}
