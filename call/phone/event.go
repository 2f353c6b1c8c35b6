package phone

import "github.com/irmv/irmv/client"

// Event is a call event, defined in package client with the rest of the
// terminal API's shapes.
type Event = client.Event

// Event types (see package client).
const (
	EventRegistered = client.EventRegistered
	EventSearching  = client.EventSearching
	EventFound      = client.EventFound
	EventRinging    = client.EventRinging
	EventConnected  = client.EventConnected
	EventQuality    = client.EventQuality
	EventRoute      = client.EventRoute
	EventText       = client.EventText
	EventDTMF       = client.EventDTMF
	EventWarning    = client.EventWarning
	EventIncoming   = client.EventIncoming
	EventEnded      = client.EventEnded
	EventMoved      = client.EventMoved
	EventSuperseded = client.EventSuperseded
)
