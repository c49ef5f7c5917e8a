package main

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"sync"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Responses are read with protowire rather than decoded into messages: the
// load generator must keep up with 2,000 clients on one core, and it needs
// only names, versions and what identifies an endpoint. -verify checks this
// reader against the official types.

// wireCodec marshals requests with protobuf and reads responses in place,
// straight from gRPC's receive buffers, into a *received.
type wireCodec struct{}

// received is one response as read by wireCodec.
type received struct {
	delta  bool // what to parse: set before RecvMsg
	keep   bool // keep a copy of the bytes (for -verify)
	resp   *response
	size   int
	raw    []byte // only with keep
	parsed error
}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r := v.(*received)
	r.size = data.Len()
	if r.keep {
		r.raw = data.Materialize()
	}
	// A large response arrives in many buffers (one per HTTP/2 frame); only a
	// top-level field that spans two of them is copied.
	visit := sotwField
	if r.delta {
		visit = deltaField
	}
	r.resp = &response{}
	r.parsed = topLevelFields(data, func(num protowire.Number, v []byte) { visit(r.resp, num, v) })
	return nil
}

// topLevelFields reads the length-delimited fields of a message held in
// several buffers (a DiscoveryResponse has no other kind of field).
func topLevelFields(data mem.BufferSlice, fn func(protowire.Number, []byte)) error {
	var scratch []byte
	buf, at := 0, 0
	next := func() (byte, bool) {
		for buf < len(data) && at >= data[buf].Len() {
			buf, at = buf+1, 0
		}
		if buf == len(data) {
			return 0, false
		}
		b := data[buf].ReadOnlyData()[at]
		at++
		return b, true
	}
	varint := func() (uint64, bool) {
		var v uint64
		for shift := 0; shift < 64; shift += 7 {
			b, ok := next()
			if !ok {
				return 0, false
			}
			v |= uint64(b&0x7f) << shift
			if b < 0x80 {
				return v, true
			}
		}
		return 0, false
	}
	for {
		tag, ok := varint()
		if !ok {
			return nil // the end
		}
		num, typ := protowire.DecodeTag(tag)
		if typ != protowire.BytesType {
			return errWire
		}
		n, ok := varint()
		if !ok {
			return errWire
		}
		for buf < len(data) && at >= data[buf].Len() {
			buf, at = buf+1, 0
		}
		if buf < len(data) && at+int(n) <= data[buf].Len() {
			fn(num, data[buf].ReadOnlyData()[at:at+int(n)])
			at += int(n)
			continue
		}
		scratch = scratch[:0]
		for len(scratch) < int(n) {
			if buf == len(data) {
				return errWire
			}
			chunk := data[buf].ReadOnlyData()[at:]
			take := min(len(chunk), int(n)-len(scratch))
			scratch = append(scratch, chunk[:take]...)
			at += take
			if at == data[buf].Len() {
				buf, at = buf+1, 0
			}
		}
		fn(num, scratch)
	}
}

var errWire = errors.New("malformed protobuf")

// fields calls fn for each field of a message; fn sees bytes for length-
// delimited fields and the varint value for varints.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64)) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return errWire
		}
		b = b[l:]
		switch typ {
		case protowire.BytesType:
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return errWire
			}
			fn(num, typ, v, 0)
			b = b[l:]
		case protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return errWire
			}
			fn(num, typ, nil, v)
			b = b[l:]
		default:
			l := protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return errWire
			}
			b = b[l:]
		}
	}
	return nil
}

// resource is one resource of a response. Bodies are not kept: a load
// assignment is read for its name and fingerprint on arrival.
type resource struct {
	name        string // assignments only
	version     string // delta only
	assignment  bool
	fingerprint uint64
}

type response struct {
	version string
	nonce   string
	typeURL string
	res     []resource
	removed []string
}

// sotwField reads a field of a DiscoveryResponse (version_info 1,
// resources 2 as Any, type_url 4, nonce 5).
func sotwField(r *response, num protowire.Number, v []byte) {
	switch num {
	case 1:
		r.version = string(v)
	case 2:
		var res resource
		res.read(v)
		r.res = append(r.res, res)
	case 4:
		r.typeURL = string(v)
	case 5:
		r.nonce = string(v)
	}
}

// deltaField reads a field of a DeltaDiscoveryResponse (resources 2 as
// Resource{version 1, resource 2, name 3}, type_url 4, nonce 5,
// removed_resources 6).
func deltaField(r *response, num protowire.Number, v []byte) {
	switch num {
	case 2:
		var res resource
		_ = fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
			switch num {
			case 1:
				res.version = string(v)
			case 2:
				res.read(v)
			case 3:
				res.name = string(v)
			}
		})
		r.res = append(r.res, res)
	case 4:
		r.typeURL = string(v)
	case 5:
		r.nonce = string(v)
	case 6:
		r.removed = append(r.removed, string(v))
	}
}

// read takes in an Any (type_url 1, value 2); assignments are fingerprinted.
func (res *resource) read(any []byte) {
	var typeURL string
	var value []byte
	_ = fields(any, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
		switch num {
		case 1:
			typeURL = string(v)
		case 2:
			value = v
		}
	})
	if typeURL == endpointType {
		res.assignment = true
		res.name, res.fingerprint = assignments.fingerprint(value)
	}
}

// assignmentCache remembers what each distinct assignment body holds: the
// same bytes reach every client subscribed to the cluster, and hashing them
// is far cheaper than reading them again.
type assignmentCache struct {
	mu   sync.Mutex
	seen map[uint64]assignmentID
}

type assignmentID struct {
	name        string
	fingerprint uint64
}

var assignments = assignmentCache{seen: map[uint64]assignmentID{}}

func (c *assignmentCache) fingerprint(body []byte) (string, uint64) {
	key := maphash.Bytes(seed, body)
	c.mu.Lock()
	id, ok := c.seen[key]
	c.mu.Unlock()
	if !ok {
		id.name, id.fingerprint = claFingerprint(body)
		c.mu.Lock()
		c.seen[key] = id
		c.mu.Unlock()
	}
	return id.name, id.fingerprint
}

// firstString is field 1 of a message: Cluster.name, CLA.cluster_name.
func firstString(b []byte) string {
	var s string
	_ = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num == 1 && typ == protowire.BytesType && s == "" {
			s = string(v)
		}
	})
	return s
}

var seed = maphash.MakeSeed()

// fingerprint identifies a set of endpoints (address, port, healthy) whatever
// their order or grouping: a sum of per-endpoint hashes.
type fingerprint struct {
	sum   uint64
	count uint64
}

func (f *fingerprint) add(address string, port uint32, healthy bool) {
	f.addBytes([]byte(address), port, healthy)
}

func (f *fingerprint) addBytes(address []byte, port uint32, healthy bool) {
	var h maphash.Hash
	h.SetSeed(seed)
	h.Write(address)
	var tail [5]byte
	binary.LittleEndian.PutUint32(tail[:4], port)
	if healthy {
		tail[4] = 1
	}
	h.Write(tail[:])
	f.sum += h.Sum64()
	f.count++
}

func (f *fingerprint) value() uint64 { return f.sum ^ (f.count * 0x9E3779B97F4A7C15) }

// field is one field of a message: v for length-delimited ones, n for
// varints.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte
	n   uint64
}

// nextField reads the first field of b; ok is false at the end or on
// malformed input. Written without closures: this is the load generator's
// hottest loop.
func nextField(b []byte) (f field, rest []byte, ok bool) {
	if len(b) == 0 {
		return f, nil, false
	}
	num, typ, l := protowire.ConsumeTag(b)
	if l < 0 {
		return f, nil, false
	}
	b = b[l:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.BytesType:
		f.v, l = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.n, l = protowire.ConsumeVarint(b)
	default:
		l = protowire.ConsumeFieldValue(num, typ, b)
	}
	if l < 0 {
		return f, nil, false
	}
	return f, b[l:], true
}

// child is the first length-delimited field `num` of b.
func child(b []byte, num protowire.Number) []byte {
	for f, rest, ok := nextField(b); ok; f, rest, ok = nextField(rest) {
		if f.num == num && f.typ == protowire.BytesType {
			return f.v
		}
	}
	return nil
}

// claFingerprint reads a ClusterLoadAssignment: endpoints 2 ->
// LocalityLbEndpoints.lb_endpoints 2 -> LbEndpoint{endpoint 1, health_status
// 2} -> Endpoint.address 1 -> Address.socket_address 1 -> SocketAddress
// {address 2, port_value 3}. UNKNOWN (0) and HEALTHY (1) count as healthy.
func claFingerprint(b []byte) (string, uint64) {
	var name string
	var fp fingerprint
	for f, rest, ok := nextField(b); ok; f, rest, ok = nextField(rest) {
		switch f.num {
		case 1:
			name = string(f.v)
		case 2:
			for g, rest, ok := nextField(f.v); ok; g, rest, ok = nextField(rest) {
				if g.num != 2 {
					continue
				}
				var address []byte
				var port uint32
				health := uint64(0)
				for h, rest, ok := nextField(g.v); ok; h, rest, ok = nextField(rest) {
					switch h.num {
					case 1:
						socket := child(child(h.v, 1), 1)
						for a, rest, ok := nextField(socket); ok; a, rest, ok = nextField(rest) {
							switch a.num {
							case 2:
								address = a.v
							case 3:
								port = uint32(a.n)
							}
						}
					case 2:
						health = h.n
					}
				}
				fp.addBytes(address, port, health <= 1)
			}
		}
	}
	return name, fp.value()
}
