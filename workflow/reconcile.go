package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// snapshotKey names the setting that holds the last known members of a role.
func snapshotKey(roleID string) string { return "members:" + roleID }

// Reconcile compares every role's PostHog members with what the bot last
// saw and did. A difference is drift — someone changed the role outside the
// bot: it is audited and the role's owners are told. The first run records
// a baseline. Members whose request is being carried out are left to the
// executor.
//
// It reads every role with its memberships in one listing (one PostHog call
// per hundred roles, at background priority), and what it records is the
// local mirror that submissions check "already a member" against.
func (s *Service) Reconcile(ctx context.Context) error {
	ctx = WithPriority(ctx, PriorityBackground)
	roles, err := s.rolesList(ctx, true)
	if err != nil {
		return err
	}
	var errs []error
	for _, role := range roles {
		if role.MemberList == nil && role.Members > 0 {
			errs = append(errs, fmt.Errorf("role %s: the directory did not list its members", role.ID))
			continue
		}
		if err := s.reconcileRole(ctx, role, role.MemberList); err != nil && !errors.Is(err, errSettingMoved) {
			errs = append(errs, fmt.Errorf("reconcile role %s: %w", role.ID, err))
		}
	}
	s.nudge()
	return errors.Join(errs...)
}

func (s *Service) reconcileRole(ctx context.Context, role Role, current []RoleMember) error {
	return s.update(ctx, func(ctx context.Context, tx Tx) error {
		raw, ok, err := tx.Setting(ctx, snapshotKey(role.ID))
		if err != nil {
			return err
		}
		now := make(map[string]RoleMember, len(current))
		for _, m := range current {
			now[m.UUID] = m
		}
		if !ok {
			return putSnapshot(ctx, tx, role.ID, now)
		}
		known, err := parseSnapshot(raw)
		if err != nil {
			return err
		}
		busy, err := s.inFlightSubjects(ctx, tx, role.ID)
		if err != nil {
			return err
		}
		// A person no longer in the role holds no grant on it any more.
		ended, err := s.endGrantsOfGone(ctx, tx, role.ID, now, busy)
		if err != nil {
			return err
		}
		drift := Drift{RoleID: role.ID, RoleName: role.Name}
		refreshed := false
		for id, m := range now {
			if busy[id] {
				continue // the executor records its own change
			}
			k, had := known[id]
			switch {
			case !had:
				drift.Added = append(drift.Added, m.Member)
			case k.MembershipID != m.MembershipID:
				refreshed = true // re-created by hand: keep the mirror's id fresh
			}
			known[id] = m
		}
		for id, m := range known {
			if _, has := now[id]; !has && !busy[id] {
				drift.Removed = append(drift.Removed, m.Member)
				delete(known, id)
			}
		}
		if len(drift.Added) == 0 && len(drift.Removed) == 0 {
			if ended || refreshed {
				// Grants ended, or membership ids changed, without drift to
				// report: record the snapshot so replicas and submissions agree.
				return putSnapshot(ctx, tx, role.ID, known)
			}
			return nil
		}
		sortMembers(drift.Added)
		sortMembers(drift.Removed)
		e := AuditEntry{ActorID: SystemActor, Action: ActionDriftDetected, RoleID: role.ID, RoleName: role.Name, Time: s.Now()}
		e.Details = CanonicalDetails(map[string]any{"added": memberEmails(drift.Added), "removed": memberEmails(drift.Removed)})
		if err := s.auditOnce(ctx, tx, &e, snapshotKey(role.ID), raw); err != nil {
			return err
		}
		if err := putSnapshot(ctx, tx, role.ID, known); err != nil {
			return err
		}
		s.log.Warn().Str("role_id", role.ID).Int("added", len(drift.Added)).Int("removed", len(drift.Removed)).
			Msg("role membership drift found")
		return s.enqueueNotify(ctx, tx, 0, notifyPayload{Type: EventDrift, Actor: SystemActor, Drift: &drift})
	})
}

// inFlightSubjects are the users whose membership of the role the bot is
// adding or removing right now; their differences are not drift. A grant
// being revoked is not in flight: until PostHog takes the revocation the
// person is still a member, and anything else is drift to report.
func (s *Service) inFlightSubjects(ctx context.Context, tx Tx, roleID string) (map[string]bool, error) {
	rs, err := tx.FindRequests(ctx, RequestFilter{RoleID: roleID, States: []State{StateApproved, StateExecuting}})
	if err != nil {
		return nil, err
	}
	busy := map[string]bool{}
	for _, r := range rs {
		busy[r.SubjectUUID] = true
	}
	return busy, nil
}

// endGrantsOfGone supersedes the grants in force on the role of people
// PostHog no longer has in it (grant rule 2), and reports whether any ended.
func (s *Service) endGrantsOfGone(ctx context.Context, tx Tx, roleID string, now map[string]RoleMember, busy map[string]bool) (bool, error) {
	grants, err := tx.FindRequests(ctx, RequestFilter{RoleID: roleID, Kind: KindAdd, States: []State{StateCompleted}})
	if err != nil {
		return false, err
	}
	done := map[string]bool{}
	for _, g := range grants {
		if _, member := now[g.SubjectUUID]; member || busy[g.SubjectUUID] || done[g.SubjectUUID] {
			continue
		}
		done[g.SubjectUUID] = true
		if err := s.Grants().supersedeTx(ctx, tx, g.SubjectUUID, roleID, 0, "left the role in PostHog outside accessbot (found by reconciliation)"); err != nil {
			return false, err
		}
	}
	return len(done) > 0, nil
}

// recordOwnChange keeps the snapshot in step with a change the bot made, so
// the next reconciliation does not report it as drift and submissions see it.
func (s *Service) recordOwnChange(ctx context.Context, tx Tx, r *Request, added bool) error {
	raw, ok, err := tx.Setting(ctx, snapshotKey(r.RoleID))
	if err != nil || !ok {
		return err
	}
	known, err := parseSnapshot(raw)
	if err != nil {
		return err
	}
	if added {
		known[r.SubjectUUID] = RoleMember{MembershipID: r.MembershipID, Member: Member{UUID: r.SubjectUUID, Email: r.SubjectEmail}}
	} else {
		delete(known, r.SubjectUUID)
	}
	return putSnapshot(ctx, tx, r.RoleID, known)
}

func parseSnapshot(raw string) (map[string]RoleMember, error) {
	var list []RoleMember
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fmt.Errorf("decode membership snapshot: %w", err)
	}
	out := make(map[string]RoleMember, len(list))
	for _, m := range list {
		out[m.UUID] = m
	}
	return out, nil
}

func putSnapshot(ctx context.Context, tx Tx, roleID string, members map[string]RoleMember) error {
	list := make([]RoleMember, 0, len(members))
	for _, m := range members {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].UUID < list[j].UUID })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return tx.PutSetting(ctx, snapshotKey(roleID), string(b))
}

func sortMembers(ms []Member) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].UUID < ms[j].UUID })
}

func memberEmails(ms []Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Email)
	}
	return out
}

// mirrorMember looks userUUID up in the local mirror of the role's
// memberships (the reconciliation snapshot, kept fresh by the bot's own
// changes): known is false when the role has no mirror yet.
func (s *Service) mirrorMember(ctx context.Context, roleID, userUUID string) (m RoleMember, member, known bool, err error) {
	err = s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		raw, ok, err := tx.Setting(ctx, snapshotKey(roleID))
		if err != nil || !ok {
			return err
		}
		members, err := parseSnapshot(raw)
		if err != nil {
			return err
		}
		known = true
		m, member = members[userUUID]
		return nil
	})
	return m, member, known, err
}
