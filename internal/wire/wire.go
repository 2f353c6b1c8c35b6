// Package wire frames irmv's node-to-node messages (lookup, flood, roam
// notices, relay grants, call signalling): a uvarint length, then that many
// bytes of JSON. The rules are the same for every protocol:
//
//   - Every read names a size limit; a frame over it is refused
//     (ErrTooLarge) from its length alone, before its body is read.
//   - A frame of length 0 is malformed: JSON has no empty value.
//   - A stream that ends before its first byte is io.EOF (the peer is done);
//     one that ends anywhere else, or a body that is not JSON, is
//     ErrMalformed.
//   - The body is read as it arrives, so a peer that announces a large
//     frame and sends little holds little memory.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

var (
	// ErrTooLarge is returned, wrapped, for a frame over the limit.
	ErrTooLarge = errors.New("message too large")
	// ErrMalformed is returned, wrapped, for a frame that does not decode.
	ErrMalformed = errors.New("malformed message")
)

// chunk is how much of a body is allocated before the bytes arrive.
const chunk = 4 << 10

// Marshal encodes v as one frame of at most max body bytes.
func Marshal(v any, max int) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, len(data), max)
	}
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(data)), uint64(len(data)))
	return append(out, data...), nil
}

// Write encodes v as one frame. It refuses to send more than max bytes.
func Write(w io.Writer, v any, max int) error {
	frame, err := Marshal(v, max)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// ReadBody reads one frame of at most max bytes and returns its body. If
// r is not an io.ByteReader (a *bufio.Reader is), the length is read a
// byte at a time, so nothing after the frame is consumed.
func ReadBody(r io.Reader, max int) ([]byte, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = byteReader{r}
	}
	size, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: length: %v", ErrMalformed, err)
	}
	if size > uint64(max) {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, size, max)
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	// Capacity doubles as bytes arrive, up to the announced size.
	data := make([]byte, 0, min(size, chunk))
	for uint64(len(data)) < size {
		if len(data) == cap(data) {
			data = slices.Grow(data, int(min(uint64(cap(data)), size-uint64(len(data)))))
		}
		end := int(min(uint64(cap(data)), size))
		n, err := io.ReadFull(r, data[len(data):end])
		data = data[:len(data)+n]
		if err != nil {
			return nil, fmt.Errorf("%w: body ends after %d of %d bytes: %v", ErrMalformed, len(data), size, err)
		}
	}
	return data, nil
}

// Read decodes one frame of at most max bytes into v. It returns io.EOF,
// unwrapped, when r ends before the frame begins.
func Read(r io.Reader, v any, max int) error {
	data, err := ReadBody(r, max)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// byteReader reads one byte at a time, so the length never reads into
// the body.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var buf [1]byte
	if _, err := io.ReadFull(b.r, buf[:]); err != nil {
		return 0, err
	}
	return buf[0], nil
}
