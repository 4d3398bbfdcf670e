package workflow

import (
	"fmt"
	"strings"
	"time"
)

// ReviewRules are the policy keys of access reviews and break-glass (see
// review.go and breakglass.go). They sit in Rules and RawRules embedded, so
// the rest of the policy code needs no change for them.
type ReviewRules struct {
	// ReviewEvery is how often the role gets an access review (0: never
	// by schedule; `/access review ROLE` still starts one).
	ReviewEvery time.Duration
	// ReviewDeadline is how long owners have to answer a review.
	ReviewDeadline time.Duration
	// ReviewUnanswered is what happens at the deadline to members nobody
	// answered: DecisionKeep or DecisionRemove.
	ReviewUnanswered Decision
	// BreakGlass lets people take the role at once, without approval, with
	// `/access breakglass ROLE REASON`; owners review it afterwards.
	BreakGlass bool
	// BreakGlassMaxDuration bounds a break-glass grant.
	BreakGlassMaxDuration time.Duration
	// BreakGlassPerDay bounds how often one person may break glass in any
	// 24 hours, over every role.
	BreakGlassPerDay int
}

// Defaults of the review and break-glass keys.
const (
	DefaultReviewDeadline        = 7 * 24 * time.Hour
	DefaultBreakGlassMaxDuration = time.Hour
	DefaultBreakGlassPerDay      = 2
	maxBreakGlassPerDay          = 50
)

var defaultReviewRules = ReviewRules{
	ReviewDeadline:        DefaultReviewDeadline,
	ReviewUnanswered:      DecisionKeep,
	BreakGlassMaxDuration: DefaultBreakGlassMaxDuration,
	BreakGlassPerDay:      DefaultBreakGlassPerDay,
}

// RawReviewRules are the review and break-glass keys as written in YAML.
type RawReviewRules struct {
	ReviewEvery           *string `yaml:"review_every"`
	ReviewDeadline        *string `yaml:"review_deadline"`
	ReviewUnanswered      *string `yaml:"review_unanswered"`
	BreakGlass            *bool   `yaml:"break_glass"`
	BreakGlassMaxDuration *string `yaml:"break_glass_max_duration"`
	BreakGlassPerDay      *int    `yaml:"break_glass_per_day"`
}

// applyReviewRules sets the review and break-glass keys of r from raw.
func applyReviewRules(r *ReviewRules, raw RawReviewRules, path string, at func(path, reason string) error) error {
	durations := []struct {
		key   string
		val   *string
		dst   *time.Duration
		never bool
	}{
		{"review_every", raw.ReviewEvery, &r.ReviewEvery, true},
		{"review_deadline", raw.ReviewDeadline, &r.ReviewDeadline, false},
		{"break_glass_max_duration", raw.BreakGlassMaxDuration, &r.BreakGlassMaxDuration, false},
	}
	for _, d := range durations {
		if d.val == nil {
			continue
		}
		v := strings.TrimSpace(*d.val)
		if d.never && (strings.EqualFold(v, "never") || v == "0") {
			*d.dst = 0
			continue
		}
		dur, err := ParseDuration(v)
		switch {
		case err != nil:
			want := "a duration such as 8h, 7d or 90d"
			if d.never {
				want += ", or never"
			}
			return at(path+"."+d.key, fmt.Sprintf("%s must be %s, got %q", d.key, want, v))
		case dur <= 0:
			return at(path+"."+d.key, fmt.Sprintf("%s must be positive, got %q", d.key, v))
		}
		*d.dst = dur
	}
	if raw.ReviewUnanswered != nil {
		switch v := Decision(strings.ToLower(strings.TrimSpace(*raw.ReviewUnanswered))); v {
		case DecisionKeep, DecisionRemove:
			r.ReviewUnanswered = v
		default:
			return at(path+".review_unanswered", fmt.Sprintf("review_unanswered must be keep or remove, got %q", *raw.ReviewUnanswered))
		}
	}
	if raw.BreakGlass != nil {
		r.BreakGlass = *raw.BreakGlass
	}
	if raw.BreakGlassPerDay != nil {
		n := *raw.BreakGlassPerDay
		if n < 1 || n > maxBreakGlassPerDay {
			return at(path+".break_glass_per_day", fmt.Sprintf("break_glass_per_day must be between 1 and %d, got %d", maxBreakGlassPerDay, n))
		}
		r.BreakGlassPerDay = n
	}
	return nil
}
