"""An event listener written from supervisord's documented protocol
(standard library only), for the evlistener tests.

It says READY, reads one header line and `len` characters of payload,
appends "pid<TAB>header<TAB>payload" (newlines in the payload as \\n) to
$RECORD, and answers by $MODE:
  ok        RESULT 2\\nOK to everything
  failonce  RESULT 4\\nFAIL the first time it sees a serial, OK after
  die       exits (code 3) without answering its first event
  dieonce   like die when $MARK does not exist (it creates it), else ok
  garbage   writes a line that is not READY, then reads on
"""
import os
import sys


def main():
    record = open(os.environ["RECORD"], "a", encoding="utf-8")
    mode = os.environ.get("MODE", "ok")
    if mode == "dieonce":
        mark = os.environ["MARK"]
        if os.path.exists(mark):
            mode = "ok"
        else:
            open(mark, "w").close()
            mode = "die"
    if mode == "garbage":
        sys.stdout.write("hello, I am not a listener\n")
        sys.stdout.flush()
    failed = set()
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return
        headers = dict(x.split(":", 1) for x in line.split())
        payload = sys.stdin.read(int(headers["len"]))
        record.write("%d\t%s\t%s\n" % (os.getpid(), line.rstrip("\n"), payload.replace("\n", "\\n")))
        record.flush()
        if mode == "die":
            os._exit(3)
        if mode == "failonce" and headers["serial"] not in failed:
            failed.add(headers["serial"])
            result = "FAIL"
        else:
            result = "OK"
        sys.stdout.write("RESULT %d\n%s" % (len(result), result))
        sys.stdout.flush()


main()
