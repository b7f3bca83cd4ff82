package rpc2

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a request.
const (
	// MaxBody is the largest request body accepted (413 beyond).
	MaxBody = 1 << 20
	// MaxDepth is how deep arrays and structs may nest in a request.
	MaxDepth = 32
)

// Decoded values are int64, bool, string, float64, time.Time, []byte
// (base64), map[string]any (struct), []any (array) and nil.

// errBadRequest marks a body that is not a well-formed XML-RPC call.
var errBadRequest = errors.New("malformed XML-RPC request")

func badf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// call is a decoded methodCall.
type call struct {
	Method string
	Params []any
}

type parser struct {
	d      *xml.Decoder
	tokens int // tokens read so far
}

// next returns the next token that matters: comments and the XML
// declaration are skipped; a DTD, any other directive or processing
// instruction is refused.
func (p *parser) next() (xml.Token, error) {
	for {
		t, err := p.d.Token()
		p.tokens++
		if err != nil {
			if err == io.EOF {
				return nil, badf("unexpected end of body")
			}
			return nil, fmt.Errorf("%w: %w", errBadRequest, err)
		}
		switch t := t.(type) {
		case xml.Comment:
			continue
		case xml.Directive:
			return nil, badf("DTDs and directives are refused")
		case xml.ProcInst:
			if t.Target == "xml" && p.tokens == 1 {
				continue // the declaration, first thing in the body
			}
			return nil, badf("processing instruction <?%s?> refused", t.Target)
		case xml.StartElement:
			if t.Name.Space != "" {
				return nil, badf("namespaced element <%s:%s>", t.Name.Space, t.Name.Local)
			}
			return t, nil
		case xml.CharData:
			return t.Copy(), nil
		default:
			return t, nil
		}
	}
}

// element returns the next start tag, skipping whitespace.
func (p *parser) element() (xml.StartElement, error) {
	for {
		t, err := p.next()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, badf("unexpected text %q", clip(t))
			}
		case xml.EndElement:
			return xml.StartElement{}, badf("unexpected </%s>", t.Name.Local)
		}
	}
}

// elementOrEnd returns the next start tag, or ok=false at an end tag.
func (p *parser) elementOrEnd() (xml.StartElement, bool, error) {
	for {
		t, err := p.next()
		if err != nil {
			return xml.StartElement{}, false, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, true, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, false, badf("unexpected text %q", clip(t))
			}
		case xml.EndElement:
			return xml.StartElement{}, false, nil
		}
	}
}

func (p *parser) expect(name string) error {
	se, err := p.element()
	if err != nil {
		return err
	}
	if se.Name.Local != name {
		return badf("<%s> where <%s> was expected", se.Name.Local, name)
	}
	return nil
}

// end consumes whitespace up to an end tag (the decoder checks it matches).
func (p *parser) end() error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return badf("unexpected text %q", clip(t))
			}
		case xml.StartElement:
			return badf("unexpected <%s>", t.Name.Local)
		}
	}
}

// text reads character data up to the end tag; no child elements.
func (p *parser) text() (string, error) {
	var b strings.Builder
	for {
		t, err := p.next()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.EndElement:
			return b.String(), nil
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			return "", badf("unexpected <%s> in text", t.Name.Local)
		}
	}
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func newStrictDecoder(r io.Reader) *xml.Decoder {
	d := xml.NewDecoder(r)
	d.Strict = true
	// Only the five predefined entities exist; no DTD can declare more.
	d.Entity = nil
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return in, nil
		}
		return nil, fmt.Errorf("encoding %q not supported (UTF-8 only)", label)
	}
	return d
}

// decodeCall reads a methodCall from r (already size-bounded).
func decodeCall(r io.Reader) (call, error) {
	d := newStrictDecoder(r)
	p := &parser{d: d}
	var c call
	if err := p.expect("methodCall"); err != nil {
		return c, err
	}
	if err := p.expect("methodName"); err != nil {
		return c, err
	}
	name, err := p.text()
	if err != nil {
		return c, err
	}
	c.Method = strings.TrimSpace(name)
	if c.Method == "" {
		return c, badf("empty methodName")
	}
	se, ok, err := p.elementOrEnd()
	if err != nil {
		return c, err
	}
	if ok {
		if se.Name.Local != "params" {
			return c, badf("<%s> where <params> was expected", se.Name.Local)
		}
		for {
			se, ok, err := p.elementOrEnd()
			if err != nil {
				return c, err
			}
			if !ok {
				break
			}
			if se.Name.Local != "param" {
				return c, badf("<%s> where <param> was expected", se.Name.Local)
			}
			if err := p.expect("value"); err != nil {
				return c, err
			}
			v, err := p.value(1)
			if err != nil {
				return c, err
			}
			c.Params = append(c.Params, v)
			if err := p.end(); err != nil { // </param>
				return c, err
			}
		}
		if err := p.end(); err != nil { // </methodCall>
			return c, err
		}
	}
	// Nothing but whitespace and comments may follow.
	for {
		t, err := d.Token()
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("%w: %w", errBadRequest, err)
		}
		switch t := t.(type) {
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return c, badf("text after </methodCall>")
			}
		default:
			return c, badf("content after </methodCall>")
		}
	}
}

// value reads what follows <value> up to and including </value>.
func (p *parser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, badf("values nested deeper than %d", MaxDepth)
	}
	var text []byte
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.EndElement: // </value>: an untyped value is a string
			return string(text), nil
		case xml.CharData:
			text = append(text, t...)
		case xml.StartElement:
			if len(bytes.TrimSpace(text)) != 0 {
				return nil, badf("text mixed with <%s>", t.Name.Local)
			}
			v, err := p.typed(t.Name.Local, depth)
			if err != nil {
				return nil, err
			}
			return v, p.end() // </value>
		}
	}
}

// typed reads a typed value after its start tag, through its end tag.
func (p *parser) typed(typ string, depth int) (any, error) {
	switch typ {
	case "int", "i4", "i8":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || (typ != "i8" && (n > math.MaxInt32 || n < math.MinInt32)) {
			return nil, badf("bad <%s> %q", typ, clip([]byte(s)))
		}
		return n, nil
	case "boolean":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, badf("bad <boolean> %q", clip([]byte(s)))
	case "string":
		return p.text()
	case "double":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, badf("bad <double> %q", clip([]byte(s)))
		}
		return f, nil
	case "dateTime.iso8601":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		for _, layout := range []string{"20060102T15:04:05", "2006-01-02T15:04:05", "20060102T150405"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		return nil, badf("bad <dateTime.iso8601> %q", clip([]byte(s)))
	case "base64":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, badf("bad <base64>")
		}
		return b, nil
	case "nil":
		return nil, p.end()
	case "array":
		if err := p.expect("data"); err != nil {
			return nil, err
		}
		arr := []any{}
		for {
			se, ok, err := p.elementOrEnd()
			if err != nil {
				return nil, err
			}
			if !ok { // </data>
				break
			}
			if se.Name.Local != "value" {
				return nil, badf("<%s> in <data>", se.Name.Local)
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, p.end() // </array>
	case "struct":
		m := map[string]any{}
		for {
			se, ok, err := p.elementOrEnd()
			if err != nil {
				return nil, err
			}
			if !ok { // </struct>
				return m, nil
			}
			if se.Name.Local != "member" {
				return nil, badf("<%s> in <struct>", se.Name.Local)
			}
			if err := p.expect("name"); err != nil {
				return nil, err
			}
			name, err := p.text()
			if err != nil {
				return nil, err
			}
			if err := p.expect("value"); err != nil {
				return nil, err
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[name] = v
			if err := p.end(); err != nil { // </member>
				return nil, err
			}
		}
	}
	return nil, badf("unknown type <%s>", typ)
}

// Encoding. Values: int, int64, bool, string, []byte (as a string: logs
// are text), float64, time.Time, map[string]any, []any, []string,
// []map[string]any, nil.

func encodeResponse(v any) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n")
	encodeValue(&b, v)
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes()
}

func encodeFault(f *Fault) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n")
	encodeValue(&b, map[string]any{"faultCode": f.Code, "faultString": f.String})
	b.WriteString("</fault>\n</methodResponse>\n")
	return b.Bytes()
}

func escape(b *bytes.Buffer, s string) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	xml.EscapeText(b, []byte(s)) // cannot fail on a bytes.Buffer; invalid XML chars become U+FFFD
}

func encodeValue(b *bytes.Buffer, v any) {
	b.WriteString("<value>")
	switch v := v.(type) {
	case nil:
		b.WriteString("<nil/>")
	case int:
		fmt.Fprintf(b, "<int>%d</int>", v)
	case int64:
		fmt.Fprintf(b, "<int>%d</int>", v)
	case bool:
		if v {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case string:
		b.WriteString("<string>")
		escape(b, v)
		b.WriteString("</string>")
	case []byte:
		b.WriteString("<string>")
		escape(b, string(v))
		b.WriteString("</string>")
	case float64:
		b.WriteString("<double>" + strconv.FormatFloat(v, 'f', -1, 64) + "</double>")
	case time.Time:
		b.WriteString("<dateTime.iso8601>" + v.Format("20060102T15:04:05") + "</dateTime.iso8601>")
	case map[string]any:
		b.WriteString("<struct>\n")
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b.WriteString("<member>\n<name>")
			escape(b, k)
			b.WriteString("</name>\n")
			encodeValue(b, v[k])
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct>")
	case []any:
		b.WriteString("<array><data>\n")
		for _, e := range v {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	case []string:
		b.WriteString("<array><data>\n")
		for _, e := range v {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	case []int:
		b.WriteString("<array><data>\n")
		for _, e := range v {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	case []map[string]any:
		b.WriteString("<array><data>\n")
		for _, e := range v {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	default:
		// A programming error: say so in the value rather than panic.
		b.WriteString("<string>")
		escape(b, fmt.Sprintf("unencodable %T", v))
		b.WriteString("</string>")
	}
	b.WriteString("</value>\n")
}
