"""Import graph of mmfactor in a source tree: the modules, their import cycles, the folder
pairs on a cycle, the largest files and lines in all. ``MODE`` is ``module`` (imports at
module level) or ``all`` (imports inside functions too); ``TYPE_CHECKING`` imports are left
out. Compare two commits by checking them out as worktrees:

    python tools/import_graph.py TREE module|all
"""

import ast
import sys
from pathlib import Path

root = Path(sys.argv[1]) / "src"
MODE = sys.argv[2]
mods = {}
for f in (root / "mmfactor").rglob("*.py"):
    name = ".".join(f.relative_to(root).with_suffix("").parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    mods[name] = f


def resolve(name):
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


edges = {m: set() for m in mods}
for m, f in mods.items():
    tree = ast.parse(f.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(x) for x in ast.walk(node)}
    top_level = {
        id(x)
        for node in tree.body
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef))
        for x in ast.walk(node)
    }
    for n in ast.walk(tree):
        if id(n) in skip or (MODE == "module" and id(n) not in top_level):
            continue
        if True:
            if isinstance(n, ast.Import):
                for a in n.names:
                    t = resolve(a.name)
                    if t and a.name.startswith("mmfactor"):
                        edges[m].add(t)
            elif (
                isinstance(n, ast.ImportFrom)
                and n.module
                and n.module.startswith("mmfactor")
                and n.level == 0
            ):
                for a in n.names:
                    t = resolve(f"{n.module}.{a.name}") or resolve(n.module)
                    if t:
                        edges[m].add(t)
# Tarjan SCC
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def sc(v):
    idx[v] = low[v] = c[0]
    c[0] += 1
    st.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in idx:
            sc(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        out.append(comp)


for v in mods:
    if v not in idx:
        sc(v)


# a package's __init__ importing its own submodules is not a cycle between layers; report
# cycles that span more than one top-level folder
def top(m):
    p = m.split(".")
    return p[1] if len(p) > 1 else "(root)"


cycles = [sorted(c) for c in out if len(c) > 1]
cross = [c for c in cycles if len({top(m) for m in c}) > 1]
print(f"modules: {len(mods)}, import cycles: {len(cycles)}, spanning folders: {len(cross)}")
for c_ in cycles:
    print("  cycle:", ", ".join(m.removeprefix("mmfactor.") for m in c_))
lines = sorted(((len(f.read_text().splitlines()), m) for m, f in mods.items()), reverse=True)
print("largest files:", ", ".join(f"{m.removeprefix('mmfactor.')} {n}" for n, m in lines[:6]))
print(
    "files over 600 lines:",
    sum(n > 600 for n, _ in lines),
    "; total lines:",
    sum(n for n, _ in lines),
)
# folder level: estimators -> train means some estimators module imports some train module
fe = {}
for m, ts in edges.items():
    for t in ts:
        a, b = top(m), top(t)
        if a != b and "(root)" not in (a, b):
            fe.setdefault(a, set()).add(b)


def reach(a, b, seen=None):
    seen = seen or set()
    for n in fe.get(a, ()):
        if n == b:
            return True
        if n not in seen:
            seen.add(n)
            if reach(n, b, seen):
                return True
    return False


folders = sorted({top(m) for m in mods} - {"(root)"})
cyc = sorted(
    {
        tuple(sorted((a, b)))
        for a in folders
        for b in folders
        if a < b and reach(a, b) and reach(b, a)
    }
)
print("folder pairs on a cycle:", cyc or "none")
