// Package wire frames irmv's node-to-node messages: a uvarint length, then
// that many bytes of JSON. Every read names a size limit; a frame over it
// is refused before its body is read.
package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrTooLarge is returned, wrapped, for a frame over the reader's limit.
	ErrTooLarge = errors.New("message too large")
	// ErrMalformed is returned, wrapped, for a frame that does not decode.
	ErrMalformed = errors.New("malformed message")
)

// Write encodes v as one frame. It refuses to send more than max bytes.
func Write(w io.Writer, v any, max int) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > max {
		return fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, len(data), max)
	}
	buf := make([]byte, binary.MaxVarintLen64, binary.MaxVarintLen64+len(data))
	n := binary.PutUvarint(buf, uint64(len(data)))
	_, err = w.Write(append(buf[:n], data...))
	return err
}

// Read decodes one frame of at most max bytes into v.
func Read(r *bufio.Reader, v any, max int) error {
	size, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("%w: length: %v", ErrMalformed, err)
	}
	if size > uint64(max) {
		return fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, size, max)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
