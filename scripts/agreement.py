#!/usr/bin/env python3
"""Compare svm's EVE alerts with Suricata 8.0.6's reference alerts for one capture.

    scripts/agreement.py REFERENCE.alerts.tsv EVE.json [--by-sid]

Alerts are matched as multisets by (pcap_cnt, signature_id), as the reference's README says;
the reference rows without pcap_cnt (flow-timeout pseudo packets) are matched by signature_id
and the flow's two endpoints against svm alerts without pcap_cnt. Prints one line
`matched M of N (P%), missed X, extra Y`; with --by-sid, the missed and extra counts per sid,
largest first.
"""
import collections
import csv
import json
import sys


def endpoints(a, b, c, d):
    return tuple(sorted([(a, str(b)), (c, str(d))]))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    by_sid = "--by-sid" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    ref, msgs = collections.Counter(), {}
    with open(args[0], newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            sid = int(row["signature_id"])
            msgs[sid] = row["signature"]
            if row["pcap_cnt"]:
                ref[(int(row["pcap_cnt"]), sid)] += 1
            else:
                ref[("flow", sid, endpoints(row["src_ip"], row["src_port"], row["dest_ip"], row["dest_port"]))] += 1
    # Alerts the README lists as moving between runs (left out of the file) are expected at
    # their packet with randomization off, as the README's table says.
    import os
    capture = os.path.basename(args[0]).split(".alerts.tsv")[0]
    readme = os.path.join(os.path.dirname(args[0]), "README.md")
    if os.path.exists(readme):
        for line in open(readme):
            cols = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cols) == 5 and cols[0] == capture and cols[1].isdigit() and cols[4].isdigit():
                ref[(int(cols[4]), int(cols[1]))] += 1
    got = collections.Counter()
    with open(args[1]) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event_type") != "alert" or ev["alert"].get("engine", "activity_scanner") != "activity_scanner":
                continue
            sid = ev["alert"]["signature_id"]
            msgs.setdefault(sid, ev["alert"].get("signature", ""))
            if ev.get("pcap_cnt") is not None:
                got[(ev["pcap_cnt"], sid)] += 1
            else:
                got[("flow", sid, endpoints(ev.get("src_ip"), ev.get("src_port", ""), ev.get("dest_ip"), ev.get("dest_port", "")))] += 1
    matched = sum((ref & got).values())
    missed = ref - got
    extra = got - ref
    total = sum(ref.values())
    pct = 100.0 * matched / total if total else 100.0
    print(f"matched {matched} of {total} ({pct:.1f}%), missed {sum(missed.values())}, extra {sum(extra.values())}")
    if by_sid:
        def sid_of(k):
            return k[1]
        for name, c in (("missed", missed), ("extra", extra)):
            per = collections.Counter()
            for k, n in c.items():
                per[sid_of(k)] += n
            for sid, n in per.most_common():
                print(f"  {name} {n:5} sid {sid} {msgs.get(sid, '')}")


if __name__ == "__main__":
    main()
