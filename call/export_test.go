package call

// The per-node invite stream limits, for tests.
const (
	InviteRateForTest  = inviteRate
	InviteBurstForTest = inviteBurst
)
