package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Binding a policy to role ids. Rules:
//  1. Every `role:` of the policy file is resolved to a PostHog role id at
//     start: by id, else by name (case-insensitive).
//  2. A name PostHog does not have stops start-up with file:line. When the
//     store knows the id under that old name (from the last start, or from
//     requests made for it) and PostHog still has the id under another name,
//     the message names the new one, so a policy never silently stops
//     applying after a rename.
//  3. Once bound, an entry matches its id only: a rename while running
//     changes nothing.
//  4. The names bound at a successful start are remembered, for rule 2 at
//     the next one.

// policyRolesSetting holds {lower-case policy name: role id} of the last bind.
const policyRolesSetting = "policy_roles"

// BindPolicy resolves every role entry of p against PostHog's roles and
// binds it to the role's id. Errors are *PolicyError naming the entry's line,
// one per entry PostHog has no role for (joined).
// When PostHog cannot be asked it binds the entries to the ids remembered
// from the last start and returns an EUNAVAILABLE error: the caller may go
// on (entries never bound still match by name). store may be nil (then
// renames cannot be recognised and nothing is remembered).
func BindPolicy(ctx context.Context, p *Policy, dir Directory, store Store) error {
	if len(p.Roles) == 0 {
		return nil
	}
	known := map[string]string{}
	if store != nil {
		if err := store.View(ctx, func(ctx context.Context, tx Tx) error {
			raw, ok, err := tx.Setting(ctx, policyRolesSetting)
			if err != nil || !ok {
				return err
			}
			return json.Unmarshal([]byte(raw), &known)
		}); err != nil {
			return fmt.Errorf("read the roles bound at the last start: %w", err)
		}
	}
	roles, err := dir.Roles(ctx)
	if err != nil {
		for i := range p.Roles {
			p.Roles[i].RoleID = known[strings.ToLower(p.Roles[i].Role)]
		}
		return directoryError("list the PostHog roles to check the policy", err)
	}
	byID := make(map[string]Role, len(roles))
	for _, r := range roles {
		byID[r.ID] = r
	}
	bound := make(map[string]string, len(p.Roles))
	var problems []error
	for i := range p.Roles {
		e := &p.Roles[i]
		role, ok := findRole(roles, e.Role)
		if !ok {
			problems = append(problems, unknownPolicyRole(ctx, p, e, roles, byID, known[strings.ToLower(e.Role)], store))
			continue
		}
		e.RoleID = role.ID
		bound[strings.ToLower(e.Role)] = role.ID
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	if store == nil {
		return nil
	}
	b, err := json.Marshal(bound)
	if err != nil {
		return err
	}
	return store.Update(ctx, func(ctx context.Context, tx Tx) error {
		return tx.PutSetting(ctx, policyRolesSetting, string(b))
	})
}

func findRole(roles []Role, ref string) (Role, bool) {
	for _, r := range roles {
		if r.ID == ref {
			return r, true
		}
	}
	for _, r := range roles {
		if strings.EqualFold(r.Name, ref) {
			return r, true
		}
	}
	return Role{}, false
}

// unknownPolicyRole explains a policy entry PostHog has no role for.
func unknownPolicyRole(ctx context.Context, p *Policy, e *Rules, roles []Role, byID map[string]Role, knownID string, store Store) error {
	pe := &PolicyError{File: p.Source, Line: e.Line, Column: e.Column}
	if pe.File == "" {
		pe.File = "policy"
	}
	where := pe.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", pe.File, e.Line)
	}
	if knownID == "" && store != nil {
		// Requests remember the role's name when they were made.
		_ = store.View(ctx, func(ctx context.Context, tx Tx) error {
			rs, err := tx.FindRequests(ctx, RequestFilter{RoleName: e.Role, NewestFirst: true, Limit: 1})
			if err == nil && len(rs) == 1 {
				knownID = rs[0].RoleID
			}
			return err
		})
	}
	if r, ok := byID[knownID]; ok && knownID != "" {
		pe.Reason = fmt.Sprintf("role %q was renamed to %q in PostHog; update %s", e.Role, r.Name, where)
		return pe
	}
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		names = append(names, fmt.Sprintf("%q", r.Name))
	}
	sort.Strings(names)
	if knownID != "" {
		pe.Reason = fmt.Sprintf("role %q was deleted in PostHog; remove it from %s", e.Role, where)
	} else {
		pe.Reason = fmt.Sprintf("PostHog has no role %q (it has %s); fix %s", e.Role, strings.Join(names, ", "), where)
	}
	return pe
}
