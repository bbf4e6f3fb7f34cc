package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// Schema returns the JSON Schema (draft 2020-12) of type t's payload, derived from the Go
// types so the documentation cannot drift from the code.
func Schema(t Type) ([]byte, error) {
	p, ok := PayloadFor(t)
	if !ok {
		return nil, fmt.Errorf("schema: unknown event type %q", t)
	}
	s := schemaOf(reflect.TypeOf(p).Elem())
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = SchemaID(t)
	s["title"] = string(t)
	return json.MarshalIndent(s, "", "  ")
}

// SchemaID is the `$id` of type t's payload schema, which events of that type carry in
// their dataschema attribute.
func SchemaID(t Type) string {
	return "https://wasmbed.dev/schemas/events/" + string(t) + ".json"
}

var (
	timeType = reflect.TypeFor[time.Time]()
	refType  = reflect.TypeFor[v1.Ref]()
)

func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case refType:
		return map[string]any{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var req []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs := schemaOf(f.Type)
			if d := f.Tag.Get("desc"); d != "" {
				fs["description"] = d
			}
			props[name] = fs
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				req = append(req, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props}
		if len(req) > 0 {
			s["required"] = req
		}
		return s
	default:
		return map[string]any{}
	}
}
