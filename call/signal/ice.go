package signal

// ICEServer is a STUN or TURN server in welcome (ICEServers) and in invite
// and accept (PeerICEServers): the JSON of the W3C RTCIceServer dictionary
// (https://www.w3.org/TR/webrtc/#rtciceserver-dictionary), as browsers and
// pion's webrtc.ICEServer read it. Credentials are passwords.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// CredentialType is "" or "password"; nodes refuse any other.
	CredentialType string `json:"credentialType,omitempty"`
}

// ICECandidate is one trickled ICE candidate in a candidate message: the
// JSON of the W3C RTCIceCandidateInit dictionary
// (https://www.w3.org/TR/webrtc/#dom-rtcicecandidateinit), as browsers and
// pion's webrtc.ICECandidateInit read it.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex"`
	UsernameFragment *string `json:"usernameFragment"`
}
