// Command terminal is an irmv terminal built only on the module's public
// packages, client and call/phone, as a program outside the module builds
// one: it registers at a node with its own key and either answers the
// first call that comes in or finds a callee and calls it. It prints every
// event as a JSON line on stdout and exits 0 once its call connected and
// ended, 1 otherwise.
//
//	terminal -node http://127.0.0.1:7370 -name "Ana Lima"              # answers one call
//	terminal -node http://127.0.0.1:7371 -name Bob -call ana -hangup-after 3s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
)

func main() {
	nodeURL := flag.String("node", client.DefaultNode, "the node's terminal API")
	name := flag.String("name", "", "this terminal's name")
	number := flag.String("phone", "", "this terminal's phone number")
	callee := flag.String("call", "", "whom to call (any identifier); empty: answer one call")
	play := flag.String("play", "", "Ogg/Opus file to play into the call")
	hangupAfter := flag.Duration("hangup-after", 3*time.Second, "hang up this long after the call connected (caller)")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*nodeURL, *name, *number, *callee, *play, *hangupAfter, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "terminal:", err)
		os.Exit(1)
	}
}

func run(nodeURL, name, number, callee, play string, hangupAfter, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	api, err := client.New(nodeURL, "")
	if err != nil {
		return err
	}
	connected := make(chan struct{}, 1)
	ended := make(chan client.Event, 1)
	out := json.NewEncoder(os.Stdout)
	p, err := phone.Start(ctx, phone.Options{
		Client:       api,
		Registration: client.Registration{Name: name, Phone: number},
		Answer:       phone.AnswerAuto,
		Play:         play,
		OnEvent: func(e client.Event) {
			_ = out.Encode(e)
			switch e.Type {
			case client.EventConnected:
				select {
				case connected <- struct{}{}:
				default:
				}
			case client.EventEnded:
				select {
				case ended <- e:
				default:
				}
			}
		},
	})
	if err != nil {
		return err
	}
	defer p.Close()

	if callee != "" {
		to, err := find(ctx, api, callee)
		if err != nil {
			return err
		}
		if _, err := p.Call(ctx, to, phone.CallOptions{HangupAfter: hangupAfter}); err != nil {
			return err
		}
	}
	select {
	case e := <-ended:
		select {
		case <-connected:
			return nil
		default:
			return fmt.Errorf("the call ended before it connected: %s", e.Reason)
		}
	case <-ctx.Done():
		return fmt.Errorf("no call: %w", ctx.Err())
	}
}

// find searches until the callee turns up: a registration takes a moment
// to reach the DHT.
func find(ctx context.Context, api *client.Client, query string) (client.Result, error) {
	errFound := errors.New("found")
	for {
		var found client.Result
		err := api.Search(ctx, client.Query{Text: query, Limit: 1, Timeout: 2 * time.Second}, func(r client.Result) error {
			found = r
			return errFound
		})
		switch {
		case errors.Is(err, errFound):
			return found, nil
		case err != nil:
			return client.Result{}, err
		}
		select {
		case <-ctx.Done():
			return client.Result{}, fmt.Errorf("%q not found: %w", query, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
