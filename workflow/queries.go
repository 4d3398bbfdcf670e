package workflow

import (
	"context"
	"fmt"
)

// Request returns one request. Errors: ENOTFOUND.
func (s *Service) Request(ctx context.Context, id int64) (*Request, error) {
	var r *Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		r, err = tx.Request(ctx, id)
		if err != nil {
			return requestLookup(id, err)
		}
		return nil
	})
	return r, err
}

// ListMine returns the newest requests slackID made, at most limit.
func (s *Service) ListMine(ctx context.Context, slackID string, limit int) ([]*Request, error) {
	var out []*Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.FindRequests(ctx, RequestFilter{RequesterID: slackID, NewestFirst: true, Limit: limit})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list requests of %s: %w", slackID, err)
	}
	return out, nil
}

// PendingFor returns the pending requests slackID may decide and has not
// approved yet, oldest first.
func (s *Service) PendingFor(ctx context.Context, slackID string) ([]*Request, error) {
	var out []*Request
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		pending, err := tx.FindRequests(ctx, RequestFilter{States: []State{StatePending}})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range pending {
			if r.HasApproved(slackID) {
				continue
			}
			if err := s.canDecideTx(ctx, tx, r, slackID); err == nil {
				out = append(out, r)
			} else if ErrorCode(err) != EFORBIDDEN {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pending requests for %s: %w", slackID, err)
	}
	return out, nil
}

// RecordMessage remembers a Slack message sent about a request, so every
// copy can be updated after a decision.
func (s *Service) RecordMessage(ctx context.Context, m MessageRef) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.Now()
	}
	return s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		return tx.PutMessageRef(ctx, m)
	})
}

// Messages returns the Slack messages sent about a request.
func (s *Service) Messages(ctx context.Context, requestID int64) ([]MessageRef, error) {
	var out []MessageRef
	err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.MessageRefs(ctx, requestID)
		return err
	})
	return out, err
}
