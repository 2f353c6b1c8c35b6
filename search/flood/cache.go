package flood

import (
	"container/list"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// route is what a node remembers about a GUID it has seen.
type route struct {
	// upstream is the peer the query came from; empty for our own queries.
	upstream peer.ID
	// hitsLeft is how many more hit messages may be routed back for it.
	hitsLeft int
	// sent is when we sent our own query; zero for others' queries.
	sent time.Time
	// asked are the neighbours our own query went to, with the hits each
	// has sent for it; nil for others' queries. Shared with the
	// pendingQuery while the query runs.
	asked map[peer.ID]int
}

type cacheEntry struct {
	guid    GUID
	route   route
	expires time.Time
}

// guidCache is a bounded, expiring LRU of GUIDs seen, holding the reverse
// path of each. It is not safe for concurrent use.
type guidCache struct {
	size  int
	ttl   time.Duration
	order *list.List // front: most recently added
	items map[GUID]*list.Element
}

func newGUIDCache(size int, ttl time.Duration) *guidCache {
	return &guidCache{size: size, ttl: ttl, order: list.New(), items: make(map[GUID]*list.Element)}
}

// add records g with r unless g is already present and unexpired; it
// reports whether g was new.
func (c *guidCache) add(g GUID, r route, now time.Time) bool {
	if el, ok := c.items[g]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) {
			return false
		}
		c.order.Remove(el)
		delete(c.items, g)
	}
	c.expire(now)
	for c.order.Len() >= c.size {
		c.removeElement(c.order.Back())
	}
	c.items[g] = c.order.PushFront(&cacheEntry{guid: g, route: r, expires: now.Add(c.ttl)})
	return true
}

// get returns g's entry if present and unexpired.
func (c *guidCache) get(g GUID, now time.Time) (*cacheEntry, bool) {
	el, ok := c.items[g]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.removeElement(el)
		return nil, false
	}
	return e, true
}

// expire drops expired entries from the back (entries are added in time
// order, so the oldest are at the back).
func (c *guidCache) expire(now time.Time) {
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		if now.Before(el.Value.(*cacheEntry).expires) {
			return
		}
		c.removeElement(el)
	}
}

func (c *guidCache) removeElement(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*cacheEntry).guid)
}

func (c *guidCache) len() int { return c.order.Len() }
