"""An event listener that restarts what exits (issue 18's end-to-end test),
written from supervisord's documented protocol with the standard library.

Subscribe it to PROCESS_STATE_EXITED. For each exit of a process whose
group is in $PROGRAMS (comma-separated; every group when unset), it
appends "groupname:processname pid expected" to $RECORD and calls
supervisor.startProcess("group:name") on $SUPERVISOR_SERVER_URL
(unix:///path or http://host:port, with $SUPERVISOR_USERNAME and
$SUPERVISOR_PASSWORD when set), as supervisord gives its children; the
call's result or fault goes to $RECORD too. It answers OK either way.
"""
import http.client
import os
import socket
import sys
import urllib.parse
import xmlrpc.client


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        return UnixConnection(self.unix_path)


def rpc():
    url = os.environ["SUPERVISOR_SERVER_URL"]
    user = os.environ.get("SUPERVISOR_USERNAME", "")
    password = os.environ.get("SUPERVISOR_PASSWORD", "")
    if url.startswith("unix://"):
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=UnixTransport(url[len("unix://"):]))
    u = urllib.parse.urlsplit(url)
    auth = ""
    if user:
        auth = "%s:%s@" % (urllib.parse.quote(user, safe=""), urllib.parse.quote(password, safe=""))
    return xmlrpc.client.ServerProxy("%s://%s%s/RPC2" % (u.scheme, auth, u.netloc))


def main():
    record = open(os.environ["RECORD"], "a", encoding="utf-8")
    wanted = [g for g in os.environ.get("PROGRAMS", "").split(",") if g]
    server = rpc()
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return
        headers = dict(x.split(":", 1) for x in line.split())
        payload = sys.stdin.read(int(headers["len"]))
        if headers["eventname"] == "PROCESS_STATE_EXITED":
            p = dict(x.split(":", 1) for x in payload.split())
            if not wanted or p["groupname"] in wanted:
                name = "%s:%s" % (p["groupname"], p["processname"])
                record.write("%s %s %s\n" % (name, p["pid"], p["expected"]))
                try:
                    record.write("startProcess %s: %r\n" % (name, server.supervisor.startProcess(name)))
                except (xmlrpc.client.Error, OSError) as e:
                    record.write("startProcess %s: %s\n" % (name, e))
                record.flush()
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


main()
