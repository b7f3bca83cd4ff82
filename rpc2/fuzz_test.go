package rpc2

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRPC2 posts raw bodies to /RPC2: the handler must not panic, and
// must answer either 200 with a well-formed methodResponse (a value or a
// fault with an int faultCode and a string faultString) or an HTTP error.
func FuzzRPC2(f *testing.F) {
	for _, s := range []string{
		`<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>`,
		`<methodCall><methodName>supervisor.startProcess</methodName><params><param><value><string>web</string></value></param><param><value><boolean>0</boolean></value></param></params></methodCall>`,
		`<methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value>supervisor.getPID</value></member></struct></value></data></array></value></param></params></methodCall>`,
		`<methodCall><methodName>supervisor.tailProcessStdoutLog</methodName><params><param><value>web</value></param><param><value><int>-3</int></value></param><param><value><i4>99</i4></value></param></params></methodCall>`,
		`<!DOCTYPE a [<!ENTITY x "y">]><methodCall><methodName>&x;</methodName></methodCall>`,
	} {
		f.Add([]byte(s))
	}
	fk := newFake()
	fk.appendLog(LogRef{Group: "web", WID: 1, Stream: "stdout"}, "some output\n")
	h := NewHandler(fk, Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/RPC2", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			if rec.Code < 400 || rec.Code > 599 {
				t.Fatalf("HTTP %d", rec.Code)
			}
			return
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/xml" {
			t.Fatalf("Content-Type %q", ct)
		}
		v, fault, err := decodeResponse(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("invalid response: %v\n%s", err, rec.Body.String())
		}
		if fault != nil && (fault.Code == 0 || !strings.HasPrefix(fault.String, FaultName(fault.Code))) {
			t.Fatalf("bad fault %+v", fault)
		}
		_ = v
	})
}
