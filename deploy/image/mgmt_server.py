#!/usr/bin/env python3
"""Test management server of `make image-test` (deploy/image/test.sh).

It implements the enrollment endpoint of docs/api.md ("Enrollment") as a management server must:
a one-time token, the CSR's signature checked, a certificate issued by the management CA for the
SVM's key with the SVM's management address and host name as subject alternative names, the CA
and the first policy in the answer. Its own HTTPS key is what the SVM pins (management_pin).
It also holds the client certificate (CN=svm-management, an admin of the SVM's API) that the test
uses to drive the SVM through mTLS.

    mgmt_server.py init  DIR              CA, server key and certificate, client certificate, pin
    mgmt_server.py serve DIR ADDR PORT TOKEN POLICY_JSON
"""
import hmac
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_BODY = 64 * 1024


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


def init(d):
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "30",
            "-subj", "/CN=svm test management CA")
    # The enrollment endpoint's own certificate: self-signed, pinned by the SVM.
    openssl("req", "-x509", *ec, "-keyout", p("server.key"), "-out", p("server.crt"), "-days", "30",
            "-subj", "/CN=svm test management server")
    spki = openssl("pkey", "-in", p("server.key"), "-pubout", "-outform", "DER")
    pin = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=spki, capture_output=True,
                         check=True).stdout
    import base64
    with open(p("pin"), "w") as f:
        f.write("sha256//" + base64.b64encode(pin).decode() + "\n")
    # The management server as a client of the SVM's API (an admin there).
    openssl("req", "-new", *ec, "-keyout", p("client.key"), "-out", p("client.csr"),
            "-subj", "/CN=svm-management")
    ext = p("client.ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", p("client.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", p("client.crt"))


class Enroll(BaseHTTPRequestHandler):
    server_version = "svm-test-mgmt"

    def log_message(self, fmt, *args):
        sys.stderr.write("mgmt: " + (fmt % args) + "\n")

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, error, message):
        self.answer(status, {"error": error, "message": message})

    def do_POST(self):
        st = self.server.state
        if self.path != "/api/v1/enrollments":
            return self.fail(404, "not_found", "no such endpoint")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self.fail(415, "unsupported_media_type", "send application/json")
        try:
            n = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            return self.fail(400, "bad_request", "Content-Length missing or over 64 KiB")
        try:
            req = json.loads(self.rfile.read(n))
        except ValueError:
            return self.fail(400, "bad_request", "the body is not JSON")
        problems = []
        if not isinstance(req, dict):
            return self.fail(400, "bad_request", "the body is not a JSON object")
        token, csr = req.get("token"), req.get("csr")
        host, addr, port = req.get("hostname"), req.get("management_address"), req.get("api_port")
        if not isinstance(token, str):
            problems.append("token: missing")
        if not isinstance(csr, str) or "BEGIN CERTIFICATE REQUEST" not in csr:
            problems.append("csr: a PEM certificate request is required")
        if not isinstance(host, str) or not HOSTNAME.match(host):
            problems.append("hostname: a host name label is required")
        try:
            ipaddress.IPv4Address(addr)
        except (ValueError, TypeError):
            problems.append("management_address: an IPv4 address is required")
        if not isinstance(port, int) or not 0 < port < 65536:
            problems.append("api_port: a TCP port is required")
        if req.get("mode") not in ("inline", "mirror"):
            problems.append("mode: inline or mirror")
        if problems:
            return self.fail(400, "bad_request", "; ".join(problems))
        with st["lock"]:
            # One use only, compared in constant time; an unknown and a used token look the same.
            if st["used"] or not hmac.compare_digest(token.encode(), st["token"].encode()):
                return self.fail(401, "invalid_token", "unknown, expired or already used token")
            try:
                cert = self.issue(csr, host, addr)
            except subprocess.CalledProcessError as e:
                return self.fail(400, "bad_request", "csr: " + e.stderr.decode(errors="replace")[:200])
            st["used"] = True
            with open(os.path.join(st["dir"], "enrollments.jsonl"), "a") as f:
                f.write(json.dumps({"hostname": host, "management_address": addr, "api_port": port,
                                    "mode": req.get("mode"), "data_vlans": req.get("data_vlans"),
                                    "version": req.get("version"), "certificate": cert}) + "\n")
        with open(os.path.join(st["dir"], "ca.crt")) as f:
            ca = f.read()
        self.answer(201, {"certificate": cert, "ca": ca, "policy": st["policy"],
                          "admin": ["CN=svm-management"], "read_only": []})

    def issue(self, csr, host, addr):
        d = self.server.state["dir"]
        with tempfile.TemporaryDirectory() as t:
            req, ext = os.path.join(t, "req.pem"), os.path.join(t, "ext")
            with open(req, "w") as f:
                f.write(csr)
            openssl("req", "-in", req, "-noout", "-verify")
            # The names come from what the server accepted, not from the CSR's extensions.
            with open(ext, "w") as f:
                f.write(f"subjectAltName=IP:{addr},DNS:{host}\n"
                        "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n")
            return openssl("x509", "-req", "-in", req, "-CA", os.path.join(d, "ca.crt"),
                           "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial", "-days", "30",
                           "-subj", f"/CN={host}", "-extfile", ext).decode()


def serve(d, addr, port, token, policy_file):
    with open(policy_file) as f:
        policy = json.load(f)
    srv = ThreadingHTTPServer((addr, int(port)), Enroll)
    srv.state = {"dir": d, "token": token, "policy": policy, "used": False, "lock": threading.Lock()}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write(f"mgmt: enrollment endpoint on https://{addr}:{port}/api/v1/enrollments\n")
    srv.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "init":
        init(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    else:
        sys.exit(__doc__)
