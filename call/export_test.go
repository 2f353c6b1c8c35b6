package call

// The per-node invite stream limits, for tests.
const (
	InviteRateForTest  = inviteRate
	InviteBurstForTest = inviteBurst
)

// The per-callee invite limits, for tests.
const (
	CalleeRateForTest  = calleeRate
	CalleeBurstForTest = calleeBurst
)
