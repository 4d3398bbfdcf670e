package posthog

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// page is PostHog's limit/offset page: {"count", "next", "previous", "results"}.
type page[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// list returns an iterator over every item of a paginated list endpoint. It asks for the
// client's page size and then follows "next" links, as PostHog recommends, rather than
// computing offsets. Each page fetch is a separate call with its own retries and throttle
// wait. The iterator yields a non-nil error at most once, as its last value. Stopping the
// loop early stops fetching.
func list[T any](ctx context.Context, c *Client, endpoint, path string, q url.Values) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		query := url.Values{}
		for k, v := range q {
			query[k] = v
		}
		query.Set("limit", strconv.Itoa(c.pageSize))
		u := c.baseURL.ResolveReference(&url.URL{Path: path, RawQuery: query.Encode()})
		seen := map[string]bool{}
		for {
			seen[u.String()] = true
			req, err := c.newRequest(http.MethodGet, u, nil)
			if err != nil {
				yield(zero, err)
				return
			}
			var p page[T]
			if _, err := c.do(ctx, &call{endpoint: endpoint, req: req, out: &p}); err != nil {
				yield(zero, err)
				return
			}
			for _, item := range p.Results {
				if !yield(item, nil) {
					return
				}
			}
			if p.Next == nil || *p.Next == "" || len(p.Results) == 0 {
				return
			}
			next, err := c.nextURL(u, *p.Next)
			if err != nil {
				yield(zero, fmt.Errorf("posthog: %s: %w", endpoint, err))
				return
			}
			if seen[next.String()] {
				yield(zero, fmt.Errorf("posthog: %s: pagination loops back to an earlier page", endpoint))
				return
			}
			u = next
		}
	}
}

// nextURL turns a "next" link into the URL of the next request. The link is absolute and
// built by PostHog from the Host it saw, which behind a proxy may differ from ours, so the
// request always goes to the configured scheme and host: the API key is never sent anywhere
// else. A link on the configured host contributes its path and query; a link elsewhere only
// its query (limit, offset and filters), applied to the current path.
func (c *Client) nextURL(cur *url.URL, link string) (*url.URL, error) {
	n, err := cur.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("invalid next link: %w", err)
	}
	u := *cur
	u.RawQuery = n.RawQuery
	if c.sameHost(n) {
		if !strings.HasPrefix(n.Path, c.baseURL.Path) {
			return nil, fmt.Errorf("next link leaves the API base path")
		}
		u.Path, u.RawPath = n.Path, n.RawPath
	} else {
		c.log.Debug().Str("path", cur.Path).Msg("posthog: next link names another host; following it on the configured host")
	}
	return &u, nil
}

// collect drains an iterator into a slice, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	out := []T{}
	for item, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}
