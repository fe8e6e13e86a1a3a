"""Learning under drift: procmem vs no learning vs Memp's rule (issue 4 simulation).

A scripted order-fulfilment world (pure Python tools over in-memory dicts) and
1,000 seeded tasks such as "Ship order #O1234 for customer c_77 paying 120".
A task is done right when the order was charged once with the right amount from
the customer's own card or wallet, shipped once, and the customer was notified
with the tracking number. The world drifts at fixed task indices:

* #250 ``charge_card`` declines amounts over 100 (``charge_wallet`` keeps working);
* #500 ``get_order`` becomes 20x slower (a 0.2 ms sleep becomes 4 ms: replay
  times are measured by procmem's driver, so the slowness is real but tiny);
* #700 ``ship_standard`` fails for 30 % of orders, ``ship_express`` (new) always
  works, and 3 demonstrations of the express variant are recorded.

Every policy starts from the same 3 demonstrations (card + standard shipping),
has its own ``Memory(":memory:")`` and world, and sees the same task stream:

* **procmem**: replay the top search hit by name (procmem picks the version:
  Thompson sampling, promotion), report the world's verdict as evidence
  (``environment``); on failure the scripted agent finishes the task, recorded
  with ``metadata={"recovers": execution.id}``; ``optimize()`` every 25 tasks;
  ``learn()`` on the late demonstrations.
* **no learning**: replay the first learned procedure forever; fallback not recorded.
* **Memp's rule** (Fang et al. 2025, "Memp: Exploring Agent Procedural
  Memory"): a procedure used 3+ times with a success rate below 50 % is deleted
  (skipped in search); with no usable procedure the agent does the task from
  scratch and that trace is learned (``learn()``), as are the late demos. It
  reports no evidence and replays exactly the version it retrieved.
* **best** (oracle): the agent doing the task from scratch with the tools that
  are truly best in the current phase (card+standard, wallet+standard,
  wallet+express); it never peeks at a task's amount or shipping roll.

Success = the world is right after the replay alone; "+rec" = right after the
agent's recovery too. Regret = cumulative (best successes - policy successes).
Recovery after a drift = tasks from the drift until the rolling 50-task success
rate stays >= 95 % of the best's until the next drift (target <= 100).
Parts of the issue-4 API that are missing are reported as "not available yet".
Prints numbers only; asserts nothing (STYLE §8).

Run: ``.venv/bin/python benchmarks/bench_learning.py`` (well under 3 minutes).
"""

from __future__ import annotations

import inspect
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from _common import machine

from procmem.core.errors import ProcmemError
from procmem.core.model import Trace
from procmem.formats.record import Recorder
from procmem.memory import Memory

SEED = 7
N_TASKS = 1000
DRIFT_CARD, DRIFT_SLOW, DRIFT_EXPRESS = 250, 500, 700
DRIFTS = [(DRIFT_CARD, "#250 card declines > 100"), (DRIFT_SLOW, "#500 get_order 20x slow"),
          (DRIFT_EXPRESS, "#700 standard fails 30%")]
CARD_LIMIT, SHIP_FAIL = 100, 0.30
FAST_S, SLOW_S = 0.0002, 0.004
WINDOW, OPTIMIZE_EVERY, TARGET_TASKS, TARGET_SHARE = 50, 25, 100, 0.95
SHORT = {"find_customer": "F", "get_order": "G", "charge_card": "C", "charge_wallet": "W",
         "ship_standard": "S", "ship_express": "E", "notify": "N"}
API = ("report", "stats", "optimize", "history", "diff", "rollback", "pin", "decay",
       "delete_procedure")


# ------------------------------------------------------------------ world and tasks

@dataclass(frozen=True)
class Task:
    order_id: str
    customer_id: str
    amount: int
    roll: float  # ship_standard fails for this order after #700 when roll < SHIP_FAIL

    @property
    def text(self) -> str:
        return f"Ship order {self.order_id} for customer {self.customer_id} paying {self.amount}"


def make_tasks(rng: random.Random, order_ids: list[int]) -> list[Task]:
    return [Task(f"#O{o}", f"c_{rng.randint(10, 99)}", rng.randint(20, 200), rng.random())
            for o in order_ids]


class World:
    """Customers, orders, payments, shipments, notifications; ``t`` is the task index."""

    def __init__(self, tasks: list[Task], seed: int) -> None:
        rng = random.Random(seed)
        self.customers = {f"c_{n}": {"customer_id": f"c_{n}",
                                     "card_id": f"card_{rng.randint(1000, 9999)}",
                                     "wallet_id": f"wal_{rng.randint(1000, 9999)}"}
                          for n in range(10, 100)}
        self.orders = {t.order_id: t for t in tasks}
        self.t, self.payments = 0, []  # payments made during the current task: (instrument, amount)
        self.shipments: dict[str, list[str]] = {}
        self.notes: dict[str, list[tuple[str, str]]] = {}
        self.tools = {"find_customer": self.find_customer, "get_order": self.get_order,
                      "charge_card": self.charge_card, "charge_wallet": self.charge_wallet,
                      "ship_standard": self.ship_standard, "ship_express": self.ship_express,
                      "notify": self.notify}

    def begin(self, t: int) -> None:
        self.t, self.payments = t, []

    def find_customer(self, customer_id: str) -> dict[str, Any]:
        return dict(self.customers[customer_id])

    def get_order(self, order_id: str) -> dict[str, Any]:
        time.sleep(SLOW_S if self.t >= DRIFT_SLOW else FAST_S)
        o = self.orders[order_id]
        return {"order_id": order_id, "customer_id": o.customer_id, "amount": o.amount,
                "status": "shipped" if self.shipments.get(order_id) else "pending"}

    def charge_card(self, card_id: str, amount: int) -> dict[str, Any]:
        if self.t >= DRIFT_CARD and amount > CARD_LIMIT:
            raise RuntimeError(f"card declined: {amount} is over the {CARD_LIMIT} limit")
        self.payments.append((card_id, amount))
        return {"charge_id": f"ch_{self.t}_{len(self.payments)}", "amount": amount}

    def charge_wallet(self, wallet_id: str, amount: int) -> dict[str, Any]:
        self.payments.append((wallet_id, amount))
        return {"charge_id": f"wc_{self.t}_{len(self.payments)}", "amount": amount}

    def _ship(self, order_id: str, kind: str) -> dict[str, Any]:
        tracking = f"{kind}-{order_id[2:]}-{len(self.shipments.get(order_id, [])) + 1}"
        self.shipments.setdefault(order_id, []).append(tracking)
        return {"order_id": order_id, "tracking": tracking}

    def ship_standard(self, order_id: str) -> dict[str, Any]:
        if self.t >= DRIFT_EXPRESS and self.orders[order_id].roll < SHIP_FAIL:
            raise RuntimeError("carrier rejected the parcel")
        return self._ship(order_id, "STD")

    def ship_express(self, order_id: str) -> dict[str, Any]:
        if self.t < DRIFT_EXPRESS:
            raise RuntimeError("express shipping is not offered yet")
        return self._ship(order_id, "EXP")

    def notify(self, customer_id: str, order_id: str, tracking: str) -> dict[str, Any]:
        self.notes.setdefault(order_id, []).append((customer_id, tracking))
        return {"sent": True}

    def right(self, task: Task) -> bool:
        """The environment's verdict on one task."""
        c = self.customers[task.customer_id]
        ships = self.shipments.get(task.order_id, [])
        paid = self.payments in ([(c["card_id"], task.amount)], [(c["wallet_id"], task.amount)])
        return (paid and len(ships) == 1
                and self.notes.get(task.order_id) == [(task.customer_id, ships[0])])


def best_variant(t: int) -> tuple[str, str]:
    """The tools with the highest true success rate at task ``t`` (ties: the demonstrated ones)."""
    return ("charge_card" if t < DRIFT_CARD else "charge_wallet",
            "ship_standard" if t < DRIFT_EXPRESS else "ship_express")


def agent_finish(world: World, task: Task, tools: dict[str, Any], *, scratch: bool) -> None:
    """The scripted agent: does what is still missing with the tools that are right now."""
    charge, ship = best_variant(world.t)
    cust = world.customers[task.customer_id]
    try:
        if scratch:
            cust = tools["find_customer"](customer_id=task.customer_id)
            tools["get_order"](order_id=task.order_id)
        if not world.payments:
            key = "card_id" if charge == "charge_card" else "wallet_id"
            tools[charge](**{key: cust[key]}, amount=task.amount)
        if not world.shipments.get(task.order_id):
            tools[ship](order_id=task.order_id)
        if not world.notes.get(task.order_id):
            tools["notify"](customer_id=task.customer_id, order_id=task.order_id,
                            tracking=world.shipments[task.order_id][-1])
    except Exception:  # noqa: BLE001 - the agent gives up; the world says how it went
        pass


def demonstrations(tasks: list[Task], t: int) -> list[Trace]:
    """Traces of the agent doing ``tasks`` from scratch in a world at time ``t``."""
    world, out = World(tasks, SEED), []
    for task in tasks:
        world.begin(t)
        with Recorder(task.text, on_finish=out.append, source="demonstration") as rec:
            agent_finish(world, task, rec.wrap_tools(world.tools), scratch=True)
    return out


# ------------------------------------------------------------------------ policies

@dataclass
class Result:
    solved: bool  # right after the replay alone
    final: bool  # right after the agent's recovery too
    ms: float  # replay time (procmem's execution.duration_ms, or the oracle's calls)
    used: str = "-"  # procedure signature@version replayed


class Policy:
    label = "?"

    def __init__(self, early: list[Trace]) -> None:
        seeded = "seed" in inspect.signature(Memory).parameters  # Thompson sampling's generator
        self.mem = Memory(":memory:", seed=SEED) if seeded else Memory(":memory:")
        self.mem.learn(early)
        self.events: list[str] = []
        self._sig: dict[tuple[str, int], str] = {}

    def demonstrate(self, i: int, traces: list[Trace]) -> None:
        rep = self.mem.learn(traces)
        self.events.append(f"#{i} learn {len(traces)} demos: created {len(rep.created)}, "
                           f"updated {len(rep.updated)}")

    def short(self, name: str, version: int) -> str:
        if (name, version) not in self._sig:
            sig = self.mem.get_procedure(name, version).signature()
            self._sig[name, version] = "".join(SHORT.get(a, "?") for a in sig) + f"@{version}"
        return self._sig[name, version]

    def replay(self, proc: Any, world: World, task: Task) -> tuple[Any, bool]:
        try:
            ex = self.mem.replay(proc, tools=world.tools, task=task.text)
        except ProcmemError as err:
            self.events.append(f"#{world.t} replay raised {err.__class__.__name__}: {err}")
            return None, False
        return ex, world.right(task)

    def scratch(self, world: World, task: Task) -> Result:
        """No usable procedure: the agent does the task, recorded, and it is learned."""
        with self.mem.record(task.text, source="agent") as rec:
            agent_finish(world, task, rec.wrap_tools(world.tools), scratch=True)
        rep = self.mem.learn()
        if rep.created or rep.updated:
            self.events.append(f"#{world.t} learned from scratch: {rep.created + rep.updated}")
        return Result(False, world.right(task), 0.0)


class Procmem(Policy):
    label = "procmem"

    def __init__(self, early: list[Trace]) -> None:
        super().__init__(early)
        self.active: dict[str, int] = {}

    def step(self, i: int, task: Task, world: World) -> Result:
        hits = self.mem.search(task.text, limit=1)
        if not hits:
            return self.scratch(world, task)
        ex, ok = self.replay(hits[0].procedure.name, world, task)
        if ex is None:
            return self.scratch(world, task)
        self.mem.report(ex.id, reward=1.0 if ok else 0.0, source="environment")
        if not ok:
            with self.mem.record(task.text, source="agent", metadata={"recovers": ex.id}) as rec:
                agent_finish(world, task, rec.wrap_tools(world.tools), scratch=False)
        if (i + 1) % OPTIMIZE_EVERY == 0 and hasattr(self.mem, "optimize"):
            self.optimize(i)
        return Result(ok, world.right(task), ex.duration_ms, self.short(ex.procedure, ex.version))

    def optimize(self, i: int) -> None:
        rep = self.mem.optimize()
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for c in getattr(rep, "created", []):
            sig = self.short(c["name"], c["version"]).split("@")[0]
            groups.setdefault((c["kind"], sig), []).append(c)
        for (kind, sig), cs in groups.items():
            vs = ",".join(str(c["version"]) for c in cs)
            self.events.append(f"#{i} optimize: {len(cs)} {kind} candidate(s) {sig}@{vs} of "
                               f"{abbreviate(cs[0]['name'])}: {cs[0]['reason']}")
        rejected = getattr(rep, "rejected", [])
        if rejected:
            kinds = Counter(r["kind"] for r in rejected)
            self.events.append(f"#{i} optimize: rejected {dict(kinds)}, e.g. {rejected[0]['why']}")
        versions = {p.name: p.version for p in self.mem.list_procedures(status="active")}
        for name, v in versions.items():
            if self.active.get(name, v) != v:
                self.events.append(f"by #{i} active {self.short(name, self.active[name])} -> "
                                   f"{self.short(name, v)}")
        self.active = versions


class NoLearning(Policy):
    label = "no learning"

    def __init__(self, early: list[Trace]) -> None:
        super().__init__(early)
        self.proc = self.mem.list_procedures()[0]

    def demonstrate(self, i: int, traces: list[Trace]) -> None:
        self.events.append(f"#{i} ignores {len(traces)} demos")

    def step(self, i: int, task: Task, world: World) -> Result:
        ex, ok = self.replay(self.proc, world, task)
        if not ok:
            agent_finish(world, task, world.tools, scratch=False)
        used = self.short(ex.procedure, ex.version) if ex else "-"
        return Result(ok, world.right(task), ex.duration_ms if ex else 0.0, used)


class Memp(Policy):
    label = "Memp"

    def __init__(self, early: list[Trace]) -> None:
        super().__init__(early)
        self.uses: Counter[str] = Counter()
        self.wins: Counter[str] = Counter()
        self.deleted: set[str] = set()

    def step(self, i: int, task: Task, world: World) -> Result:
        hits = [h for h in self.mem.search(task.text, limit=5)
                if h.procedure.name not in self.deleted]
        if not hits:
            return self.scratch(world, task)
        name = hits[0].procedure.name
        ex, ok = self.replay(hits[0].procedure, world, task)  # exactly what it retrieved
        self.uses[name] += 1
        self.wins[name] += ok
        if self.uses[name] >= 3 and self.wins[name] / self.uses[name] < 0.5:
            self.deleted.add(name)
            self.events.append(f"#{i} deleted {self.short(name, hits[0].procedure.version)} "
                               f"({self.wins[name]}/{self.uses[name]} successes)")
        if not ok:
            agent_finish(world, task, world.tools, scratch=False)
        used = self.short(ex.procedure, ex.version) if ex else "-"
        return Result(ok, world.right(task), ex.duration_ms if ex else 0.0, used)


def run_oracle(tasks: list[Task]) -> list[Result]:
    """The best policy: the agent's from-scratch run with the tools that are best now."""
    world, out = World(tasks, SEED), []
    for i, task in enumerate(tasks):
        world.begin(i)
        start = time.perf_counter()
        agent_finish(world, task, world.tools, scratch=True)
        ms, ok = (time.perf_counter() - start) * 1000, world.right(task)
        charge, ship = best_variant(i)
        out.append(Result(ok, ok, ms, "".join(SHORT[a] for a in ("find_customer", "get_order",
                                                                   charge, ship, "notify"))))
    return out


def run_policy(policy: Policy, tasks: list[Task], late: list[Trace]) -> tuple[list[Result], float]:
    random.seed(SEED)  # Thompson sampling, if it draws from the global generator, is seeded too
    world, out, start = World(tasks, SEED), [], time.perf_counter()
    for i, task in enumerate(tasks):
        if i == DRIFT_EXPRESS:
            policy.demonstrate(i, late)
        world.begin(i)
        out.append(policy.step(i, task, world))
    return out, time.perf_counter() - start


# ------------------------------------------------------------------------- reports

def rolling(xs: list[bool], j: int) -> float:
    w = xs[max(0, j - WINDOW + 1): j + 1]
    return sum(w) / len(w)


def recovery(solved: list[bool], best: list[bool], start: int, end: int
             ) -> tuple[int | None, float]:
    """Tasks after ``start`` until the rolling rate stays >= 95 % of the best's up to ``end``."""
    last_bad, low = None, 1.0
    for j in range(start, end):
        share = rolling(solved, j) / max(rolling(best, j), 1e-9)
        low = min(low, rolling(solved, j))
        if share < TARGET_SHARE:
            last_bad = j
    if last_bad is None:
        return 0, low
    return (None if last_bad == end - 1 else last_bad + 1 - start), low


def print_api(mem: Memory) -> None:
    missing = [m for m in API if not hasattr(mem, m)]
    print(f"Memory API: {', '.join(m for m in API if hasattr(mem, m)) or '-'}; not available "
          f"yet: {', '.join(missing) or '-'}")


def print_windows(results: dict[str, list[Result]], best: list[Result]) -> None:
    names = list(results)
    head = f"{'tasks':>9} {'best':>5} |" + "".join(f" {n[:11]:>11} {'+rec':>5} {'regret':>6} |"
                                                  for n in names)
    print(head + "  drift")
    regret = dict.fromkeys(names, 0)
    for w0 in range(0, N_TASKS, WINDOW):
        sl = slice(w0, w0 + WINDOW)
        b = best[sl]
        line = f"{w0:>4}-{w0 + WINDOW - 1:<4} {_rate(b):>5.2f} |"
        for n in names:
            r = results[n][sl]
            regret[n] += sum(x.solved for x in b) - sum(x.solved for x in r)
            line += f" {_rate(r):>11.2f} {_rate(r, final=True):>5.2f} {regret[n]:>6} |"
        marks = [d for i, d in DRIFTS if w0 <= i < w0 + WINDOW]
        print(line + ("  <- " + "; ".join(marks) if marks else ""))


def _rate(rs: list[Result], final: bool = False) -> float:
    return sum(r.final if final else r.solved for r in rs) / len(rs)


def print_latency(results: dict[str, list[Result]], best: list[Result]) -> None:
    print("\nper 100 tasks: median replay time per task in ms, and the procedure each policy "
          "replayed most (share)")
    print("(F find_customer, G get_order, C charge_card, W charge_wallet, S ship_standard, "
          "E ship_express, N notify; @version; '-' = no replay)")
    print(f"{'tasks':>9} {'best':>5} {'':<5} |"
          + "".join(f" {n[:11]:>11} {'':<13} |" for n in results))
    for w0 in range(0, N_TASKS, WINDOW * 2):
        sl = slice(w0, w0 + WINDOW * 2)
        line = f"{w0:>4}-{w0 + WINDOW * 2 - 1:<4} {_med(best[sl]):>5} {best[w0].used:<5} |"
        for rs in results.values():
            (used, n), = Counter(r.used for r in rs[sl]).most_common(1)
            line += f" {_med(rs[sl]):>11} {used:>8} {n / (WINDOW * 2):>4.0%} |"
        print(line)


def _med(rs: list[Result]) -> str:
    ms = [r.ms for r in rs if r.used != "-"]
    return f"{statistics.median(ms):.2f}" if ms else "-"


def print_recovery(results: dict[str, list[Result]], best: list[Result]) -> None:
    print(f"\nrecovery after each drift: tasks until the rolling {WINDOW}-task success rate "
          f"stays >= {TARGET_SHARE:.0%} of the best's, up to the next drift "
          f"(target <= {TARGET_TASKS}); [lowest rolling rate]")
    b = [r.solved for r in best]
    bounds = [i for i, _ in DRIFTS] + [N_TASKS]
    print(f"{'drift':<26}" + "".join(f" {n:>22}" for n in results))
    for k, (start, label) in enumerate(DRIFTS):
        line = f"{label:<26}"
        for rs in results.values():
            tasks, low = recovery([r.solved for r in rs], b, start, bounds[k + 1])
            verdict = (f"not within {bounds[k + 1] - start}" if tasks is None
                       else f"{tasks} ({'meets' if tasks <= TARGET_TASKS else 'misses'})")
            line += f" {verdict + f' [{low:.2f}]':>22}"
        print(line)


def abbreviate(name: str) -> str:
    """``find_customer-then-get_order-5`` -> ``FG-5`` (a procedure name in action letters)."""
    for action, letter in SHORT.items():
        name = name.replace(action, letter)
    return name.replace("-then-", "")


def print_stats(policy: Policy) -> None:
    mem = policy.mem
    if not hasattr(mem, "stats"):
        print("\nprocmem stats(): not available yet (slow-step flags cannot be shown)")
        return
    print("\nprocmem stats() at the end: procedure (name as action letters), each version "
          "(steps@version), judged runs, reliability [5%, 95%], flags, step p50/p95 ms")
    for name in sorted({p.name for p in mem.list_procedures(limit=100)}):
        print(f"  {abbreviate(name)}")
        versions = mem.stats(name)
        if len(versions) > 6:
            print(f"    ... {len(versions) - 6} earlier versions")
        for s in versions[-6:]:
            steps = " ".join(f"{SHORT.get(st.action, '?')}:{st.p50_ms or 0:.2f}/"
                             f"{st.p95_ms or 0:.2f}" + ("*" if "slow" in st.flags else "")
                             for st in s.steps)
            print(f"    {policy.short(name, s.version):<9} {s.status:<10} runs {s.runs:>4} "
                  f"judged {s.successes:>3}+{s.failures:<3} rel {s.reliability:.2f} "
                  f"[{s.reliability_lower:.2f}, {s.reliability_upper:.2f}] "
                  f"{','.join(s.flags) or '-':<16} {steps}")
    print("  (* = step flagged slow; ? = a sub-procedure step)")


def main() -> None:
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    ids = rng.sample(range(1000, 10000), N_TASKS + 6)
    tasks = make_tasks(rng, ids[:N_TASKS])
    early = demonstrations(make_tasks(rng, ids[N_TASKS:N_TASKS + 3]), 0)
    late = demonstrations(make_tasks(rng, ids[N_TASKS + 3:]), DRIFT_EXPRESS)
    print("Learning under drift: procmem vs no learning vs Memp's rule (issue 4 simulation).")
    print(machine())
    big = sum(t.amount > CARD_LIMIT for t in tasks)
    rolled = sum(t.roll < SHIP_FAIL for t in tasks[DRIFT_EXPRESS:])
    print(f"world: {N_TASKS} tasks, seed {SEED}, e.g. {tasks[0].text!r}; {big} amounts > "
          f"{CARD_LIMIT}; {rolled} of the last {N_TASKS - DRIFT_EXPRESS} orders fail ship_standard")
    print(f"drifts: #{DRIFT_CARD} charge_card declines amounts > {CARD_LIMIT} (charge_wallet "
          f"works); #{DRIFT_SLOW} get_order {SLOW_S / FAST_S:.0f}x slower ({FAST_S * 1000} -> "
          f"{SLOW_S * 1000} ms); #{DRIFT_EXPRESS} ship_standard fails {SHIP_FAIL:.0%}, "
          "ship_express appears + 3 demos")
    policies = [Procmem(early), NoLearning(early), Memp(early)]
    print_api(policies[0].mem)
    best = run_oracle(tasks)
    results, secs = {}, {}
    for p in policies:
        results[p.label], secs[p.label] = run_policy(p, tasks, late)
    print("run time: " + ", ".join(f"{n} {s:.1f} s" for n, s in secs.items()) + "\n")
    print(f"success rate per window of {WINDOW} tasks (replay alone; '+rec' = after the agent's "
          "recovery too); regret = cumulative best - policy successes")
    print_windows(results, best)
    total = sum(b.solved for b in best)
    print(f"{'all':>9} {_rate(best):>5.2f} |" + "".join(
        f" {_rate(r):>11.2f} {_rate(r, final=True):>5.2f} {total - sum(x.solved for x in r):>6} |"
        for r in results.values()))
    print_latency(results, best)
    print_recovery(results, best)
    print_stats(policies[0])
    for p in policies:
        seen: dict[str, list[str]] = {}  # message -> task marks, repeats folded into one line
        for e in p.events:
            mark, msg = re.fullmatch(r"((?:by )?#\d+) (.*)", e, re.S).groups()  # type: ignore[union-attr]
            seen.setdefault(msg, []).append(mark)
        print(f"\nevents, {p.label} ({len(p.events)}, repeats folded):")
        for msg, marks in list(seen.items())[:16]:
            again = f" (x{len(marks)}, last {marks[-1]})" if len(marks) > 1 else ""
            print(f"  {marks[0]} {msg[:130]}{again}")
        if len(seen) > 16:
            print(f"  ... {len(seen) - 16} more")
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
