package phone

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// recordFile is a recording's file, created with the first page the
// recorder writes (the first audio that arrives), so a party that sends
// nothing leaves no file behind, not even an empty one during the call.
// The recorder's writes and wait are serialised by media, so it needs no
// lock of its own.
type recordFile struct {
	path string
	f    *os.File
}

// RecordFormat gives the file the extension of its format ("ogg" for
// Opus, "wav" for G.711) when it was named for the other one, before the
// file is created (media.RecordFormatter).
func (r *recordFile) RecordFormat(ext string) {
	cur := strings.ToLower(filepath.Ext(r.path))
	switch cur {
	case ".ogg", ".opus", ".wav":
	default:
		return // a name the user chose without a known extension: kept
	}
	if (ext == "wav") != (cur == ".wav") {
		r.path = strings.TrimSuffix(r.path, filepath.Ext(r.path)) + "." + ext
	}
}

func (r *recordFile) Write(p []byte) (int, error) {
	if r.f == nil {
		f, err := os.Create(r.path)
		if err != nil {
			return 0, err
		}
		r.f = f
	}
	return r.f.Write(p)
}

// Seek and WriteAt let the recorder mark its last page as the end of the
// stream; it asks for the current offset before its first write, which is
// 0 while there is no file.
func (r *recordFile) Seek(offset int64, whence int) (int64, error) {
	if r.f == nil {
		if offset == 0 {
			return 0, nil // every whence: the file is empty
		}
		return 0, errors.New("seek before the recording's first write")
	}
	return r.f.Seek(offset, whence)
}

func (r *recordFile) WriteAt(p []byte, off int64) (int, error) {
	if r.f == nil {
		return 0, errors.New("write at an offset before the recording's first write")
	}
	return r.f.WriteAt(p, off)
}

// created reports whether anything was recorded.
func (r *recordFile) created() bool { return r.f != nil }

func (r *recordFile) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
