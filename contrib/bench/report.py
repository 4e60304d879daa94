#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into a markdown table of medians and checks the issue's targets.

Input lines: {"server": "havend", "kind": "login", "run": 1, "rc": 0, "result": {RESULT json}}
usage: report.py results.jsonl [versions.json]
"""
import json
import statistics
import sys

ORDER = ["havend", "prosody", "ejabberd"]
NAMES = {"havend": "havend", "prosody": "Prosody", "ejabberd": "ejabberd"}
GEN_BOUND_PCT = 90  # a generator this busy may be what limits the result
POLICY_TARGET = 0.9  # policy on: at least this share of the policy-off messages/s


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


class Table:
    def __init__(self, rows, versions):
        rows = [r for r in rows if r["kind"] != "register"]
        # msg_policy_{off,on}_wW: one havend twice, so a table of its own (policy_table).
        self.policy_rows = [r for r in rows if r["kind"].startswith("msg_policy_")]
        self.rows = [r for r in rows if not r["kind"].startswith("msg_policy_")]
        self.servers = [s for s in ORDER if any(r["server"] == s for r in self.rows)]
        self.kinds = list(dict.fromkeys(r["kind"] for r in self.rows))
        self.versions = versions
        self.out = []

    def results(self, server, kind):
        return [r["result"] for r in self.rows if r["server"] == server and r["kind"] == kind]

    def med(self, server, kind, field):
        vals = [x.get(field) for x in self.results(server, kind)]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def per_cpu(self, server, kind, rate_field, cpu_field="server_cpu_pct"):
        """Median over runs of rate / server CPU share: work per server CPU-second."""
        vals = [x[rate_field] / (x[cpu_field] / 100) for x in self.results(server, kind)
                if x.get(cpu_field)]
        return statistics.median(vals) if vals else None

    def line(self, scenario, metric, cells):
        self.out.append(f"| {scenario} | {metric} | " + " | ".join(cells) + " |")

    def row(self, scenario, metric, kind, field, digits=0):
        self.line(scenario, metric, [fmt(self.med(s, kind, field), digits) for s in self.servers])

    def pair(self, scenario, metric, kind, f1, f2, digits=1):
        self.line(scenario, metric, [f"{fmt(self.med(s, kind, f1), digits)} / "
                                     f"{fmt(self.med(s, kind, f2), digits)}" for s in self.servers])

    def cpu_rows(self, kind):
        cells = []
        for s in self.servers:
            g = self.med(s, kind, "gen_cpu_pct")
            flag = " ⚠" if g is not None and g >= GEN_BOUND_PCT else ""
            cells.append(f"{fmt(self.med(s, kind, 'server_cpu_pct'))} / {fmt(g)}{flag}")
        self.line("", "CPU % server / generator", cells)
        self.pair("", "other load: CPU % / server waiting %", kind, "other_cpu_pct",
                  "server_wait_pct", 0)

    def build(self):
        head = [f"{NAMES[s]} {self.versions.get(s, '')}".strip() for s in self.servers]
        self.out.append("| scenario | metric | " + " | ".join(head) + " |")
        self.out.append("|---|---|" + "---|" * len(self.servers))
        for kind in self.kinds:
            sample = next(r["result"] for r in self.rows if r["kind"] == kind)
            runs = "/".join(str(len(self.results(s, kind))) for s in self.servers)
            if kind == "login":
                self.row(f"**login storm**: {sample['tls']} + {sample['mech']}, "
                         f"{sample['concurrency']:.0f} in flight, {sample['users']:.0f} accounts, "
                         f"runs {runs}", "logins/s", kind, "logins_per_s")
                self.line("", "logins per server CPU-second",
                          [fmt(self.per_cpu(s, kind, "logins_per_s")) for s in self.servers])
                self.pair("", "latency p50 / p99 ms", kind, "p50_ms", "p99_ms")
                self.cpu_rows(kind)
                self.row("", "failed logins", kind, "failed")
            elif kind.startswith("msg"):
                if sample.get("rooms", 0) > 0:
                    load = (f"{sample['rate']:,.0f} room msgs/s offered" if sample.get("rate", 0)
                            > 0 else f"max rate, window {sample['window']:.0f} per sender")
                    title = (f"**rooms: {sample['rooms']:.0f} x "
                             f"{sample['occupants_per_room']:.0f} occupants**, {load}, runs {runs}")
                    self.row(title, "delivered occupant-msgs/s", kind, "delivered_per_s")
                    self.line("", "occupant-msgs per server CPU-second",
                              [fmt(self.per_cpu(s, kind, "delivered_per_s"))
                               for s in self.servers])
                    self.pair("", "latency p50 / p99 ms", kind, "p50_ms", "p99_ms")
                    self.cpu_rows(kind)
                    self.pair("", "undelivered / lost connections", kind, "undelivered",
                              "lost_connections")
                    continue
                if sample.get("rate", 0) > 0:
                    title = (f"**messaging at {sample['rate']:,.0f} msgs/s** offered, "
                             f"{sample['clients']:.0f} clients, runs {runs}")
                else:
                    title = (f"**messaging at max rate**, {sample['clients']:.0f} clients, "
                             f"window {sample['window']:.0f} per sender, runs {runs}")
                self.row(title, "delivered msgs/s", kind, "delivered_per_s")
                if sample.get("rate", 0) <= 0:
                    self.line("", "msgs per server CPU-second",
                              [fmt(self.per_cpu(s, kind, "delivered_per_s"))
                               for s in self.servers])
                self.pair("", "latency p50 / p99 ms", kind, "p50_ms", "p99_ms")
                self.row("", "latency p99.9 ms", kind, "p999_ms", 1)
                self.cpu_rows(kind)
                self.pair("", "undelivered / lost connections", kind, "undelivered",
                          "lost_connections", 0)
            elif kind.startswith("idle"):
                what = "capacity" if kind == "idle_capacity" else "idle"
                self.row(f"**{what}**: {sample['clients']:.0f} authenticated {sample['tls']} "
                         f"connections, runs {runs}", "server RSS KiB per connection", kind,
                         "kb_per_conn", 1)
                self.row("", f"… just logged in (before {sample.get('settle_seconds', 0):.0f} s "
                         "idle)", kind, "kb_per_conn_online", 1)
                self.row("", "… right after a ping to every connection", kind,
                         "kb_per_conn_pinged", 1)
                self.line("", "server RSS MiB before → with connections",
                          [f"{fmt(_mib(self.med(s, kind, 'rss_before_kb')), 1)} → "
                           f"{fmt(_mib(self.med(s, kind, 'rss_after_kb')), 1)}"
                           for s in self.servers])
                self.line("", "connected / failed / lost / answered ping",
                          [" / ".join(fmt(self.med(s, kind, f)) for f in
                                      ("online", "failed", "lost", "alive"))
                           for s in self.servers])
                self.row("", "server CPU % while idle", kind, "server_idle_cpu_pct", 1)
        return "\n".join(self.out)

    def verdicts(self):
        lines = self.server_verdicts() + self.policy_verdicts()
        return "Targets (medians):\n\n" + "\n".join(lines) if lines else ""

    def server_verdicts(self):
        if "havend" not in self.servers:
            return []
        lines = []
        m = self.med
        for kind in [k for k in self.kinds if k.startswith("msg_max")]:
            h = m("havend", kind, "delivered_per_s")
            for other, need in (("ejabberd", 3), ("prosody", 20)):
                o = m(other, kind, "delivered_per_s") if other in self.servers else None
                if h and o:
                    r = h / o
                    lines.append(f"- messaging, max rate ({kind}): havend {r:.1f}x {other} "
                                 f"(target ≥ {need}x): **{'met' if r >= need else 'not met'}**")
        for kind in [k for k in self.kinds if k.startswith("msg_rate")]:
            h = m("havend", kind, "p99_ms")
            for other in ("ejabberd", "prosody"):
                o = m(other, kind, "p99_ms") if other in self.servers else None
                if h is not None and o is not None:
                    lines.append(f"- p99 latency at equal load ({kind}): havend {h:.1f} ms, "
                                 f"{other} {o:.1f} ms: **{'met' if h < o else 'not met'}**")
        if "login" in self.kinds and "ejabberd" in self.servers:
            h, o = m("havend", "login", "logins_per_s"), m("ejabberd", "login", "logins_per_s")
            if h and o:
                lines.append(f"- login rate (TLS + {self.results('havend', 'login')[0]['mech']}): "
                             f"havend {h / o:.1f}x ejabberd (target ≥ 2x): "
                             f"**{'met' if h >= 2 * o else 'not met'}**")
        if "idle" in self.kinds:
            h = m("havend", "idle", "kb_per_conn")
            for other in ("prosody", "ejabberd"):
                o = m(other, "idle", "kb_per_conn") if other in self.servers else None
                if h and o:
                    lines.append(f"- RSS per idle TLS connection: havend {h:.1f} KiB, {other} "
                                 f"{o:.1f} KiB = 1/{o / h:.1f} (target ≤ 1/4): "
                                 f"**{'met' if 4 * h <= o else 'not met'}**")
        if "idle_capacity" in self.kinds:
            res = self.results("havend", "idle_capacity")
            ok = all(x["online"] == x["clients"] and x["failed"] == 0 and x["lost"] == 0 and
                     x["alive"] == x["online"] for x in res)
            n = res[0]["clients"] if res else 0
            lines.append(f"- {n:.0f} concurrent authenticated connections on havend, "
                         f"{len(res)} run(s): **{'met' if ok and res else 'not met'}** (every "
                         f"connection authenticated, none lost, all answered a ping)")
        return lines

    # ---- policy scenario: havend with the peer-support policy off and on, same traffic ----

    def policy_windows(self):
        kinds = dict.fromkeys(r["kind"] for r in self.policy_rows)
        return list(dict.fromkeys(k.rsplit("_w", 1)[1] for k in kinds))

    def policy_results(self, mode, w):
        return [r["result"] for r in self.policy_rows if r["kind"] == f"msg_policy_{mode}_w{w}"]

    def policy_med(self, mode, w, field):
        vals = [x[field] for x in self.policy_results(mode, w) if x.get(field) is not None]
        return statistics.median(vals) if vals else None

    def policy_per_cpu(self, mode, w):
        vals = [x["delivered_per_s"] / (x["server_cpu_pct"] / 100)
                for x in self.policy_results(mode, w) if x.get("server_cpu_pct")]
        return statistics.median(vals) if vals else None

    def policy_ratio(self, w, per_cpu=False):
        """Policy on / off of the median delivered msgs/s (or of msgs per server CPU-second)."""
        off, on = (self.policy_per_cpu(m, w) if per_cpu else
                   self.policy_med(m, w, "delivered_per_s") for m in ("off", "on"))
        return on / off if on is not None and off else None

    def policy_table(self):
        if not self.policy_rows:
            return ""
        out = ["| policy scenario | metric | policy off | policy on | on / off |",
               "|---|---|---|---|---|"]
        for w in self.policy_windows():
            x = self.policy_results("off", w)[0] if self.policy_results("off", w) else \
                self.policy_results("on", w)[0]
            runs = "/".join(str(len(self.policy_results(m, w))) for m in ("off", "on"))
            members = x["clients"] - x["supporters"]
            title = (f"**peer-support traffic at max rate**, {x['clients']:.0f} clients: "
                     f"{x['supporters']:.0f} supporters of {members / x['supporters']:.0f} "
                     f"members, {x['inquiry_percent']:.0f} % of members' messages to a "
                     f"functional address, window {x['window']:.0f}, runs {runs}")

            def cells(field, digits=0):
                return [fmt(self.policy_med(m, w, field), digits) for m in ("off", "on")]

            def line(scenario, metric, vals, ratio=""):
                out.append(f"| {scenario} | {metric} | " + " | ".join(vals) + f" | {ratio} |")

            r = self.policy_ratio(w)
            line(title, "delivered msgs/s", cells("delivered_per_s"),
                 f"{r * 100:.1f} %" if r is not None else "–")
            rc = self.policy_ratio(w, per_cpu=True)
            line("", "msgs per server CPU-second",
                 [fmt(self.policy_per_cpu(m, w)) for m in ("off", "on")],
                 f"{rc * 100:.1f} %" if rc is not None else "–")
            line("", "latency p50 / p99 ms", [f"{a} / {b}" for a, b in
                                               zip(cells("p50_ms", 1), cells("p99_ms", 1))])
            line("", "CPU % server / generator", [f"{a} / {b}" for a, b in
                                                  zip(cells("server_cpu_pct"),
                                                      cells("gen_cpu_pct"))])
            line("", "error replies / undelivered / lost connections",
                 [f"{a} / {b} / {c}" for a, b, c in zip(cells("errors"), cells("undelivered"),
                                                        cells("lost_connections"))])
            line("", "members written to / inquiries delivered",
                 [f"{a} / {b}" for a, b in zip(cells("granted"), cells("inquiries_delivered"))])
        return "\n".join(out)

    def policy_verdicts(self):
        lines = []
        for w in self.policy_windows():
            r = self.policy_ratio(w)
            if r is None:
                continue
            errors = sum(x.get("errors", 0) for m in ("off", "on")
                         for x in self.policy_results(m, w))
            per_run = {}
            for row in self.policy_rows:
                if row["kind"].endswith(f"_w{w}"):
                    mode = "on" if row["kind"].startswith("msg_policy_on") else "off"
                    per_run.setdefault(row["run"], {})[mode] = row["result"]["delivered_per_s"]
            runs = ", ".join(f"{v['on'] / v['off'] * 100:.0f} %" for _, v in sorted(per_run.items())
                             if v.get("off") and "on" in v)
            ok = r >= POLICY_TARGET and errors == 0
            lines.append(f"- peer-support policy on vs off (window {w}): {r * 100:.1f} % of the "
                         f"policy-off msgs/s (per run: {runs}), {errors:.0f} error replies "
                         f"(target ≥ {POLICY_TARGET * 100:.0f} %, no errors): "
                         f"**{'met' if ok else 'not met'}**")
        return lines


def _mib(kb):
    return kb / 1024 if kb is not None else None


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    versions = {}
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            versions = json.load(f)
    t = Table(load(sys.argv[1]), versions)
    if t.rows:
        print(t.build())
        print()
    if t.policy_rows:
        print(t.policy_table())
        print()
    print("⚠ = generator above 90 % CPU: the server may be capable of more than shown.")
    print()
    print(t.verdicts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
