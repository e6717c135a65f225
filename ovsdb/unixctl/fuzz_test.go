package unixctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// frames runs a framer with bound max over r until it stops, returning
// the messages (copied) and the final error.
func frames(r io.Reader, max int) ([]string, error) {
	f := newFramer(r, max)
	var out []string
	for {
		msg, err := f.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(msg))
	}
}

// chunkReader returns its data in pieces of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)])%17 + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzDecode checks the message decoder: framing must not depend on how
// the stream is split into reads, the size bound is exact, every decoded
// request is valid JSON, and a reply to it is valid JSON that carries the
// id back.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":0,"method":"version","params":[]}`,
		`{"id":"x","method":"bond/show","params":["bond0"]} {"id":1,"method":"a","params":[1,null,{"}":"]"}]}`,
		`{"id":1,"method":"a\"}","params":["\\", "\u00e9\n"]}`,
		`{"id":null,"method":"version","params":[]}`,
		`{"id":1,"result":"x","error":null}`,
		`{"id":1,"method":"version","params":[]]`,
		`[1]`,
		"\n\t {}",
		`{"id":1,"method":"vers`,
	} {
		f.Add([]byte(s), []byte{3, 1, 16})
	}
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		const max = 96
		whole, wholeErr := frames(bytes.NewReader(data), max)
		byByte, byteErr := frames(iotest.OneByteReader(bytes.NewReader(data)), max)
		chunked, chunkErr := frames(&chunkReader{data: data, sizes: sizes}, max)
		if !slices.Equal(whole, byByte) || !slices.Equal(whole, chunked) ||
			!errors.Is(byteErr, wholeErr) || !errors.Is(chunkErr, wholeErr) {
			t.Fatalf("framing depends on reads:\n whole %q %v\n bytes %q %v\n chunks %q %v",
				whole, wholeErr, byByte, byteErr, chunked, chunkErr)
		}
		if wholeErr == nil {
			t.Fatal("framer stopped without an error")
		}
		var req request
		for _, msg := range whole {
			if len(msg) > max || msg[0] != '{' {
				t.Fatalf("bad frame %q", msg)
			}
			if decodeRequest([]byte(msg), &req) != nil {
				continue
			}
			if !json.Valid([]byte(msg)) || !utf8.ValidString(req.method) || !json.Valid(req.id) {
				t.Fatalf("accepted %q: method %q id %s", msg, req.method, req.id)
			}
			for _, failed := range []bool{false, true} {
				reply := appendReply(nil, req.id, req.method, failed)
				var got struct {
					ID     json.RawMessage
					Result *string
					Error  *string
				}
				if err := json.Unmarshal(reply, &got); err != nil {
					t.Fatalf("reply %s: %v", reply, err)
				}
				text := got.Result
				if failed {
					text = got.Error
				}
				want := req.method
				if want != "" && want[len(want)-1] != '\n' {
					want += "\n"
				}
				if !bytes.Equal(got.ID, req.id) || text == nil || *text != want {
					t.Fatalf("reply %s does not carry id %s and text %q", reply, req.id, want)
				}
			}
		}
	})
}

// FuzzAppendString checks our OVS-style string escaping against
// encoding/json's decoder.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x01\b\t\n\f\r\x1f\x7f", "é\u2028<&>", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, enc, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes become U+FFFD
		}
		if got != want {
			t.Fatalf("%q -> %s -> %q", s, enc, got)
		}
	})
}
