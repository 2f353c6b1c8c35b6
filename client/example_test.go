package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
)

// A terminal registers at its node, finds a callee and calls it. The
// examples/terminal program is this example made whole; its test builds
// it outside the module and calls between two real nodes.
func Example() {
	ctx := context.Background()
	api, err := client.New("http://127.0.0.1:7370", "")
	if err != nil {
		log.Fatal(err)
	}
	// phone.Start registers the terminal with its own (here ephemeral)
	// key, keeps it registered and takes calls over the WebSocket.
	p, err := phone.Start(ctx, phone.Options{
		Client:       api,
		Registration: client.Registration{Name: "Bo Example", Phone: "+49 30 1234567"},
		Answer:       phone.AnswerAuto,
		OnEvent:      func(e client.Event) { fmt.Println(e.Type) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	var callee client.Result
	found := errors.New("found")
	err = api.Search(ctx, client.Query{Text: "ana lima", Limit: 1}, func(r client.Result) error {
		callee = r
		return found
	})
	if !errors.Is(err, found) {
		log.Fatalf("ana lima not found: %v", err)
	}
	call, err := p.Call(ctx, callee, phone.CallOptions{HangupAfter: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	<-call.Done()
}
