package workflow

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// AddOwner makes user an owner of a role. Only admins may. Audited.
// Errors: EFORBIDDEN, EINVALID (unknown role), ECONFLICT (already an owner).
func (s *Service) AddOwner(ctx context.Context, actor, roleRef, user string) ([]string, error) {
	return s.changeOwner(ctx, actor, roleRef, user, true)
}

// RemoveOwner takes user off a role's owners, even one the policy file names.
// Only admins may. Audited. Errors: EFORBIDDEN, EINVALID, ECONFLICT (not an
// owner).
func (s *Service) RemoveOwner(ctx context.Context, actor, roleRef, user string) ([]string, error) {
	return s.changeOwner(ctx, actor, roleRef, user, false)
}

func (s *Service) changeOwner(ctx context.Context, actor, roleRef, user string, present bool) ([]string, error) {
	if !s.admins[actor] {
		return nil, Errorf(EFORBIDDEN, "Only bot admins can change role owners.")
	}
	user = strings.TrimSpace(user)
	if !slackUserID.MatchString(user) {
		return nil, Errorf(EINVALID, "Name the user as a Slack mention, like @alice.")
	}
	role, err := s.ResolveRole(ctx, roleRef)
	if err != nil {
		return nil, err
	}
	actorEmail := s.optionalEmail(ctx, actor)
	var owners []string
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		before, err := s.ownersTx(ctx, tx, role)
		if err != nil {
			return err
		}
		has := slices.Contains(before, user)
		switch {
		case present && has:
			return Errorf(ECONFLICT, "%s already owns %s.", userRef(user), role.Name)
		case !present && !has:
			return Errorf(ECONFLICT, "%s is not an owner of %s.", userRef(user), role.Name)
		case !present && s.policyNamesOwner(role, user):
			return Errorf(EFORBIDDEN, "%s owns %s because the policy file (%s) says so; an owner named there can only be removed by editing the file and restarting accessbot.",
				userRef(user), role.Name, s.policySource())
		}
		if err := tx.PutOwnerOverride(ctx, OwnerOverride{RoleID: role.ID, UserID: user, Present: present, ChangedBy: actor, ChangedAt: s.Now()}); err != nil {
			return err
		}
		if owners, err = s.ownersTx(ctx, tx, role); err != nil {
			return err
		}
		action := ActionOwnerAdded
		if !present {
			action = ActionOwnerRemoved
		}
		return s.audit(ctx, tx, AuditEntry{ActorID: actor, ActorEmail: actorEmail, Action: action, RoleID: role.ID, RoleName: role.Name, SubjectID: user},
			map[string]any{"owners_before": before, "owners_after": owners})
	})
	if err != nil {
		return nil, err
	}
	s.log.Info().Str("role_id", role.ID).Str("slack_user", actor).Str("owner", user).Bool("added", present).Msg("role owners changed")
	return owners, nil
}

// policyNamesOwner reports whether the policy file makes user an owner of
// the role: in the role's entry, or among the default owners that stand in
// for a role without owners of its own.
func (s *Service) policyNamesOwner(role Role, user string) bool {
	return slices.Contains(s.effectiveOwners(role, nil), user)
}

func (s *Service) policySource() string {
	if s.policy.Source == "" {
		return "ACCESSBOT_POLICY_FILE"
	}
	return s.policy.Source
}

const policyHashSetting = "policy_hash"

// RecordPolicy writes a policy_changed audit entry when the policy in force
// differs from the one seen at the last start. Safe when several processes
// start together: the audit chain lock serializes them and only the first
// records the change.
func (s *Service) RecordPolicy(ctx context.Context) error {
	hash := s.policy.Hash
	if hash == "" {
		hash = "default"
	}
	err := s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		prev, _, err := tx.Setting(ctx, policyHashSetting)
		if err != nil || prev == hash {
			return err
		}
		e := AuditEntry{ActorID: SystemActor, Action: ActionPolicyChanged, Time: s.Now()}
		e.Details = CanonicalDetails(map[string]any{"source": s.policy.Source, "hash": hash, "previous_hash": prev,
			"roles": len(s.policy.Roles)})
		if err := s.auditOnce(ctx, tx, &e, policyHashSetting, prev); err != nil {
			return err
		}
		return tx.PutSetting(ctx, policyHashSetting, hash)
	})
	if errors.Is(err, errSettingMoved) {
		return nil
	}
	return err
}
