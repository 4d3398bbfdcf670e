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
	mu     sync.Mutex
	seen   map[[32]byte]time.Time
	pruned time.Time
}

// firstTime records the request and reports whether it is new.
func (c *replayCache) firstTime(h http.Header, body []byte, now time.Time) bool {
	sum := sha256.New()
	sum.Write([]byte(h.Get("X-Slack-Request-Timestamp")))
	sum.Write([]byte{0})
	sum.Write(body)
	var key [32]byte
	copy(key[:], sum.Sum(nil))

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[[32]byte]time.Time{}
	}
	if now.Sub(c.pruned) > time.Minute {
		for k, at := range c.seen {
			if now.Sub(at) > replayWindow {
				delete(c.seen, k)
			}
		}
		c.pruned = now
	}
	if at, dup := c.seen[key]; dup && now.Sub(at) <= replayWindow {
		return false
	}
	c.seen[key] = now
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
