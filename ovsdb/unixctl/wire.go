package unixctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxMessageSize bounds one incoming JSON-RPC message, in bytes, not
// counting whitespace between messages. A client that sends a longer
// message has its connection closed. Requests from
// ovs-appctl are a method name and a few short arguments; the bound only
// stops a misbehaving peer from making the server buffer without limit.
// Replies are not bounded.
const MaxMessageSize = 1 << 20

// Wire errors. They end the connection they occur on, never the server.
var (
	errTooLarge    = errors.New("message exceeds MaxMessageSize")
	errNotObject   = errors.New("message is not a JSON object")
	errTruncated   = errors.New("connection closed inside a message")
	errBadMessage  = errors.New("bad JSON-RPC message")
	errUnsupported = errors.New("unexpected JSON-RPC message type")
)

// framer splits a byte stream into JSON objects. OVS sends one JSON
// object per message with no length prefix or separator, so the only way
// to find a message's end is to follow the JSON text: count brace and
// bracket depth outside strings and stop when it returns to zero. The
// framer checks only that much; json.Unmarshal validates the rest.
//
// Scanning is incremental: bytes already looked at are not looked at
// again when more arrive, so a peer trickling a large message costs
// linear time.
type framer struct {
	r   io.Reader
	max int

	buf  []byte // buf[start:end] holds bytes not yet returned
	off  int    // start of the current message in buf (after whitespace)
	pos  int    // next byte to scan
	end  int    // end of valid data in buf
	open bool   // a message has started at off

	depth int  // brace/bracket nesting outside strings
	inStr bool // inside a string
	esc   bool // previous byte was a backslash inside a string
}

func newFramer(r io.Reader, max int) *framer {
	return &framer{r: r, max: max, buf: make([]byte, 4096)}
}

// next returns the next complete message. The slice aliases the framer's
// buffer and is valid only until the following call. At a clean end of
// stream (no partial message) it returns io.EOF.
func (f *framer) next() ([]byte, error) {
	for {
		if msg, ok, err := f.scan(); err != nil || ok {
			return msg, err
		}
		if err := f.fill(); err != nil {
			if err == io.EOF && f.open {
				return nil, errTruncated
			}
			return nil, err
		}
	}
}

// scan looks at buf[pos:end] and reports a complete message if one ends
// there.
func (f *framer) scan() ([]byte, bool, error) {
	for ; f.pos < f.end; f.pos++ {
		c := f.buf[f.pos]
		if !f.open {
			switch c {
			case ' ', '\t', '\n', '\r':
				f.off = f.pos + 1
				continue
			case '{':
				f.open = true
				f.depth = 1
				continue
			default:
				return nil, false, errNotObject
			}
		}
		if f.inStr {
			switch {
			case f.esc:
				f.esc = false
			case c == '\\':
				f.esc = true
			case c == '"':
				f.inStr = false
			}
			continue
		}
		switch c {
		case '"':
			f.inStr = true
		case '{', '[':
			f.depth++
		case '}', ']':
			f.depth--
			if f.depth == 0 {
				if f.pos+1-f.off > f.max {
					return nil, false, errTooLarge
				}
				msg := f.buf[f.off : f.pos+1]
				f.pos++
				f.off = f.pos
				f.open = false
				return msg, true, nil
			}
		}
	}
	if f.open && f.pos-f.off > f.max {
		return nil, false, errTooLarge
	}
	return nil, false, nil
}

// fill reads more input, first moving unreturned bytes to the front of
// the buffer and growing it (up to max plus one read) when full.
func (f *framer) fill() error {
	if f.off > 0 {
		n := copy(f.buf, f.buf[f.off:f.end])
		f.pos -= f.off
		f.end = n
		f.off = 0
	}
	if f.end == len(f.buf) {
		if len(f.buf) > f.max {
			return errTooLarge
		}
		nb := make([]byte, 2*len(f.buf))
		copy(nb, f.buf[:f.end])
		f.buf = nb
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// request is one decoded unixctl request. Params keep their raw JSON so
// that dispatch can report a non-string argument with OVS's wording, after
// the command and argument-count checks, as OVS does.
type request struct {
	method string
	params []json.RawMessage
	id     json.RawMessage // compacted, never null
}

// decodeRequest parses one message with the rules of OVS's
// jsonrpc_msg_from_json: an object whose members are among method, params,
// result, error and id; null members count as absent. Only a request
// (method, params array, non-null id, no result or error) is acceptable
// to a unixctl server; every other message is an error, on which OVS
// closes the connection.
func decodeRequest(msg []byte, r *request) error {
	if !utf8.Valid(msg) {
		return fmt.Errorf("%w: invalid UTF-8", errBadMessage)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(msg, &obj); err != nil {
		return fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if obj == nil {
		return errNotObject
	}
	var method, params, result, errv, id json.RawMessage
	for k, v := range obj {
		if isNull(v) {
			v = nil
		}
		switch k {
		case "method":
			method = v
		case "params":
			params = v
		case "result":
			result = v
		case "error":
			errv = v
		case "id":
			id = v
		default:
			return fmt.Errorf("%w: unexpected member %q", errBadMessage, k)
		}
	}
	switch {
	case result != nil:
		return fmt.Errorf("%w: reply", errUnsupported)
	case errv != nil:
		return fmt.Errorf("%w: error", errUnsupported)
	case id == nil:
		return fmt.Errorf("%w: notification", errUnsupported)
	case method == nil:
		return fmt.Errorf("%w: request must have \"method\"", errBadMessage)
	case params == nil:
		return fmt.Errorf("%w: request must have \"params\"", errBadMessage)
	}
	r.method = ""
	if err := json.Unmarshal(method, &r.method); err != nil {
		return fmt.Errorf("%w: method is not a JSON string", errBadMessage)
	}
	r.params = r.params[:0]
	if params[0] != '[' {
		return fmt.Errorf("%w: \"params\" must be JSON array", errBadMessage)
	}
	if err := json.Unmarshal(params, &r.params); err != nil {
		return fmt.Errorf("%w: \"params\" must be JSON array", errBadMessage)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, id); err != nil {
		return fmt.Errorf("%w: %w", errBadMessage, err)
	}
	r.id = b.Bytes()
	return nil
}

func isNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

// appendReply appends the reply to one request in OVS's wire form:
//
//	{"id":ID,"result":"TEXT","error":null}   on success
//	{"id":ID,"error":"TEXT"}                 on failure
//
// As in OVS's unixctl_command_reply, a non-empty text gets a trailing
// newline if it lacks one.
func appendReply(dst []byte, id json.RawMessage, text string, failed bool) []byte {
	if text != "" && text[len(text)-1] != '\n' {
		text += "\n"
	}
	dst = append(dst, `{"id":`...)
	dst = append(dst, id...)
	if failed {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, text)
		return append(dst, '}')
	}
	dst = append(dst, `,"result":`...)
	dst = appendString(dst, text)
	return append(dst, `,"error":null}`...)
}

// appendString appends s as a JSON string escaped as OVS escapes it:
// '"', '\\' and control characters only, with \b \t \n \f \r short
// forms and \u00xx for the rest; everything else, including U+2028 and
// '<', is copied. Invalid UTF-8 becomes U+FFFD so that the reply stays
// valid JSON.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c < ' ':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
