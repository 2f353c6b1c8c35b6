package node

// Buckets of kad-dht's routing table (k) by profile. k is also how many of
// the closest nodes store each provider record the node publishes. A
// server keeps twice kad-dht's 20: after a third of a 1,000-node network
// left at once, the first DHT step then still reaches a node storing the
// record in most lookups (BENCHMARKS.md, issue 22). An access point keeps
// 20: kad-dht protects the connections to its first two buckets, 2k peers,
// and at k = 40 those alone would exceed the "ap" connection budget (64).
const (
	serverBucketSize = 40
	apBucketSize     = 20
)

// bucketSize is kad-dht's k for a profile.
func bucketSize(profile string) int {
	if profile == "ap" {
		return apBucketSize
	}
	return serverBucketSize
}
