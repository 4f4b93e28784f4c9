package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The leaf encoding, re-implemented here from its specification (docs/verify-by-hand.md,
// "The encoding"), not from the bundle: the field order and each field's kind are fixed
// below, and a bundle that names other fields, or gives a field a value of another kind,
// fails the leaf step.
//
//   - a text is the netstring of its UTF-8 bytes: the byte length in decimal, ':', the
//     bytes, ',';
//   - an integer is the netstring of its decimal digits;
//   - a boolean is "4:true," or "5:false,";
//   - a list (of texts) is the netstring of its items' encodings, concatenated;
//   - a null is the two bytes "N,".
//
// The leaf hash is SHA-256(0x00 || the fields' encodings in this order), computed by
// tlog.RecordHash (RFC 6962 / RFC 9162 leaf hash).

type kind int

const (
	text kind = iota
	integer
	boolean
	list
)

type leafField struct {
	name string
	kind kind
}

// leafFields is the hashing order of the 27 fields of a disclosure row.
var leafFields = []leafField{
	{"chain_id", text},
	{"seq", integer},
	{"topic", text},
	{"kafka_partition", integer},
	{"kafka_offset", integer},
	{"event_id", text},
	{"occurred_at_ms", integer},
	{"subject_pseudonym", text},
	{"subject_type", text},
	{"recipient_id", text},
	{"recipient_category", text},
	{"data_categories", list},
	{"purpose", text},
	{"legal_basis", text},
	{"legal_reference", text},
	{"disclosure_kind", text},
	{"producer_service", text},
	{"producer_version", text},
	{"context", text},
	{"schema_version", integer},
	{"reference_version", text},
	{"ccpa_letters", list},
	{"business_purpose", text},
	{"sensitive", boolean},
	{"declared", boolean},
	{"flags", list},
	{"ingested_at_ms", integer},
}

func netstring(data []byte) []byte {
	out := strconv.AppendInt(nil, int64(len(data)), 10)
	out = append(out, ':')
	out = append(out, data...)
	return append(out, ',')
}

var null = []byte("N,")

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// decodeInteger reads a JSON integer exactly (no float64 rounding) in int64's range.
func decodeInteger(raw json.RawMessage) (int64, error) {
	// json.Number also takes a quoted number: a text is not an integer here.
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] == '"' {
		return 0, fmt.Errorf("is not a JSON number")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var number json.Number
	if err := dec.Decode(&number); err != nil {
		return 0, fmt.Errorf("is not a JSON number")
	}
	value, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", number)
	}
	return value, nil
}

func encodeField(field leafField, raw json.RawMessage) ([]byte, error) {
	if isNull(raw) {
		return null, nil
	}
	switch field.kind {
	case text:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("is not a text")
		}
		return netstring([]byte(s)), nil
	case integer:
		value, err := decodeInteger(raw)
		if err != nil {
			return nil, err
		}
		return netstring(strconv.AppendInt(nil, value, 10)), nil
	case boolean:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("is not a boolean")
		}
		if b {
			return netstring([]byte("true")), nil
		}
		return netstring([]byte("false")), nil
	case list:
		var items []*string
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("is not a list of texts")
		}
		var joined []byte
		for _, item := range items {
			if item == nil {
				joined = append(joined, null...)
			} else {
				joined = append(joined, netstring([]byte(*item))...)
			}
		}
		return netstring(joined), nil
	}
	return nil, fmt.Errorf("has an unknown kind")
}

// encodeLeaf gives the canonical bytes of a bundle's "leaf" object. Every field of the
// specification must be present (null is a value), and no other: a field the hash does not
// cover would be shown to the reader as if it were proven.
func encodeLeaf(leaf map[string]json.RawMessage) ([]byte, error) {
	known := make(map[string]bool, len(leafFields))
	var missing []string
	var encoding []byte
	for _, field := range leafFields {
		known[field.name] = true
		raw, ok := leaf[field.name]
		if !ok {
			missing = append(missing, field.name)
			continue
		}
		value, err := encodeField(field, raw)
		if err != nil {
			return nil, fmt.Errorf("the leaf field %s %v", field.name, err)
		}
		encoding = append(encoding, value...)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the leaf lacks the field(s) %s", strings.Join(missing, ", "))
	}
	var extra []string
	for name := range leaf {
		if !known[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf(
			"the leaf has field(s) %s that the leaf hash does not cover", strings.Join(extra, ", "))
	}
	return encoding, nil
}
