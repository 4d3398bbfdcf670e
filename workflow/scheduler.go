package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunScheduler calls Tick every interval and Reconcile every
// reconcileInterval (0: never) until ctx ends.
func (s *Service) RunScheduler(ctx context.Context, interval, reconcileInterval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var reconcile <-chan time.Time
	if reconcileInterval > 0 {
		t := time.NewTicker(reconcileInterval)
		defer t.Stop()
		reconcile = t.C
		// A first pass at start builds the membership mirror submissions
		// check against.
		if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("reconciliation")
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("scheduler tick")
			}
		case <-reconcile:
			if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("reconciliation")
			}
		}
	}
}

// schedulerBatch bounds the work of one tick per kind of due item.
const schedulerBatch = 500

// Tick does what has fallen due: expires pending requests, reminds owners,
// queues the revocation of grants whose time is up, warns holders before
// their grant ends and reminds owners and admins of overdue revocations. Every change is a
// compare-and-set, so several processes ticking against one database do
// each thing once.
func (s *Service) Tick(ctx context.Context) error {
	now := s.Now()
	var errs []error
	due := []struct {
		filter RequestFilter
		apply  func(ctx context.Context, tx Tx, r *Request) error
	}{
		{RequestFilter{ExpiresBefore: now, Limit: schedulerBatch}, s.expireTx},
		{RequestFilter{RemindBefore: now, Limit: schedulerBatch}, s.remindTx},
		{RequestFilter{RevokeBefore: now, Kind: KindAdd, Limit: schedulerBatch}, func(ctx context.Context, tx Tx, r *Request) error {
			return s.queueRevocation(ctx, tx, r, SystemActor, "", "the grant's time ran out", ActionRevokeRequested)
		}},
		{RequestFilter{WarnBefore: now, Kind: KindAdd, Limit: schedulerBatch}, s.Grants().warnTx},
		{RequestFilter{OverdueNotifyBefore: now.Add(-overdueReminderEvery), Kind: KindAdd, Limit: schedulerBatch}, s.Grants().remindOverdueTx},
	}
	for _, d := range due {
		var found []*Request
		err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			found, err = tx.FindRequests(ctx, d.filter)
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range found {
			if err := s.applyDue(ctx, r, d.apply); err != nil {
				errs = append(errs, fmt.Errorf("request %d: %w", r.ID, err))
			}
		}
	}
	errs = append(errs, s.Reviews().tick(ctx, now))
	s.nudge()
	return errors.Join(errs...)
}

// applyDue applies one scheduled change under compare-and-set; losing the
// race to another process means the change was made there.
func (s *Service) applyDue(ctx context.Context, r *Request, apply func(ctx context.Context, tx Tx, r *Request) error) error {
	err := s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		return apply(ctx, tx, r)
	})
	var retry errRetry
	if errors.As(err, &retry) {
		return nil
	}
	return err
}

func (s *Service) expireTx(ctx context.Context, tx Tx, r *Request) error {
	now := s.Now()
	if err := r.moveTo(StateExpired); err != nil {
		return err
	}
	r.DecidedBy, r.DecidedAt, r.UpdatedAt = SystemActor, now, now
	r.DecisionReason = "no decision in time"
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	if err := s.auditRequest(ctx, tx, r, SystemActor, "", ActionRequestExpired,
		map[string]any{"expires_at": r.ExpiresAt.Format(time.RFC3339), "approvals": len(r.Approvals)}); err != nil {
		return err
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventExpired, Actor: SystemActor})
}

func (s *Service) remindTx(ctx context.Context, tx Tx, r *Request) error {
	r.RemindedAt, r.UpdatedAt = s.Now(), s.Now()
	if err := tx.UpdateRequest(ctx, r); err != nil {
		return stale(err)
	}
	return s.enqueueNotify(ctx, tx, r.ID, notifyPayload{Type: EventReminder, Actor: SystemActor})
}
