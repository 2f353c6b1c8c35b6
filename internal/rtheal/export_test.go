package rtheal

// AliveForTest is how many peers the Healer remembers as found alive.
func (r *Healer) AliveForTest() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.alive)
}
