"""An event listener built on supervisor.childutils (Debian's package
`supervisor`), the helper superlance's listeners use: it records each
event as "eventname<TAB>payload" to $RECORD and acknowledges it."""
import os
import sys

from supervisor import childutils


def main():
    record = open(os.environ["RECORD"], "a", encoding="utf-8")
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers["eventname"].startswith("PROCESS_STATE"):
            pheaders, _ = childutils.eventdata(payload + "\n")
            payload = "processname=%s expected=%s" % (pheaders["processname"], pheaders.get("expected", "-"))
        record.write("%s\t%s\n" % (headers["eventname"], payload.replace("\n", "\\n")))
        record.flush()
        childutils.listener.ok(sys.stdout)


main()
