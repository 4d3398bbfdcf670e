package bot

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// replayWindow is how long a signed request stays acceptable: Slack's
// signature check allows a timestamp five minutes either side of now, so a
// body is remembered for ten.
const replayWindow = 10 * time.Minute

// replayCache remembers the signed bodies it has seen, so the same signed
// request sent twice (a replay by someone who captured it, or a duplicate
// delivery) is acted on once. Memory is bounded by what arrives in the
// window.
type replayCache struct {
	seen recentSet[[32]byte]
}

// firstTime records the request and reports whether it is new.
func (c *replayCache) firstTime(h http.Header, body []byte, now time.Time) bool {
	sum := sha256.New()
	sum.Write([]byte(h.Get("X-Slack-Request-Timestamp")))
	sum.Write([]byte{0})
	sum.Write(body)
	var key [32]byte
	copy(key[:], sum.Sum(nil))
	return c.seen.add(key, now, replayWindow)
}

// recentSet remembers keys for a while (ttl, given by the caller, the
// same on every call); memory is bounded by what was added within ttl.
type recentSet[K comparable] struct {
	mu     sync.Mutex
	at     map[K]time.Time
	pruned time.Time
}

// has reports whether key was added less than ttl before now.
func (s *recentSet[K]) has(key K, now time.Time, ttl time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.at[key]
	return ok && now.Sub(at) < ttl
}

// add records key at now and reports whether it is new: not added less
// than ttl before. Now and then (every tenth of ttl) it forgets the keys
// older than ttl.
func (s *recentSet[K]) add(key K, now time.Time, ttl time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[K]time.Time{}
	}
	if now.Sub(s.pruned) > ttl/10 {
		for k, at := range s.at {
			if now.Sub(at) >= ttl {
				delete(s.at, k)
			}
		}
		s.pruned = now
	}
	if at, ok := s.at[key]; ok && now.Sub(at) < ttl {
		return false
	}
	s.at[key] = now
	return true
}

// isSSLCheck reports Slack's certificate check (ssl_check=1), which Slack
// sends when a command URL is saved and which expects an empty 200.
func isSSLCheck(body []byte) bool {
	if len(body) > 4096 {
		return false
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("ssl_check") == "1"
}
