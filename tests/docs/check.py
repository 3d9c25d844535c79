"""Runs the examples of docs/*.md and compares their output with what the
page shows, so that a page cannot drift from the code.

An example is a ```sql block followed by an ```output block: what psql
prints for it (errors included). Other ```sql blocks are illustrations
and are not run. Each page's examples run top to bottom in a database of
its own, as a superuser, with a fresh extension.

    check.py PSQL_COMMAND... [--record]

--record writes the actual output into the pages instead of comparing.
"""
import pathlib
import re
import subprocess
import sys

args = sys.argv[1:]
record = "--record" in args
psql = [a for a in args if a != "--record"]
root = pathlib.Path(__file__).resolve().parents[2]
# A fenced block's body never holds a fence: (?:(?!```).)* keeps each
# match to one sql block and the output block right after it.
block = re.compile(r"```sql\n((?:(?!```).)*)```\n\n*```output\n((?:(?!```).)*)```\n", re.S)
failures = 0


def run(database, script):
    command = psql + ["-X", "-q", "-d", database]
    done = subprocess.run(command, input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.stdout


for page in sorted((root / "docs").glob("*.md")):
    text = page.read_text()
    examples = list(block.finditer(text))
    if not examples:
        continue
    database = "docs_" + page.stem.replace("-", "_")
    run("postgres", f"SET client_min_messages = warning;\nDROP DATABASE IF EXISTS {database};\nCREATE DATABASE {database};\n")
    # NOTICEs depend on what the cluster holds (roles, say): not shown.
    script = ["\\set SHOW_CONTEXT never", "SET client_min_messages = warning;", "CREATE EXTENSION audience;"]
    for i, example in enumerate(examples):
        script.append(f"\\echo '<<<example {i}>>>'")
        script.append(example.group(1).rstrip("\n"))
    output = run(database, "\n".join(script) + "\n")
    parts = re.split(r"^<<<example (\d+)>>>\n", output, flags=re.M)
    actual = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if parts[0].strip():
        print(f"{page.name}: before the first example: {parts[0].strip()}", file=sys.stderr)
        failures += 1
    if record:
        pieces, last = [], 0
        for i, example in enumerate(examples):
            pieces.append(text[last:example.start()])
            shown = actual.get(i, "").rstrip("\n")
            pieces.append(f"```sql\n{example.group(1)}```\n```output\n{shown}\n```\n")
            last = example.end()
        pieces.append(text[last:])
        page.write_text("".join(pieces))
        continue
    for i, example in enumerate(examples):
        expected = example.group(2).rstrip()
        got = actual.get(i, "").rstrip()
        if [l.rstrip() for l in expected.splitlines()] != [l.rstrip() for l in got.splitlines()]:
            failures += 1
            print(f"{page.name}, example {i + 1}:\n{example.group(1)}--- the page shows:\n{expected}\n--- psql prints:\n{got}\n", file=sys.stderr)
    run("postgres", f"DROP DATABASE IF EXISTS {database};\n")

if failures:
    sys.exit(f"{failures} documentation example(s) differ from what they show")
print("documentation examples: every output as shown")
